// Writes the fuzzer's seed corpus: segments made by the real writer in the states a reader
// meets (empty, fresh, with version chains and deletions, compacted, retired, with the
// latch half-way through a batch, and one of layout 1), one file each, into the directory
// given.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;

using Bytes = std::vector<char>;

Bytes read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The writer's clocks and pid, zeroed: the seeds are then the same bytes on every run, so
// that CI's fuzzing (a fixed -seed over them) is the same every time.
Bytes normalized(Bytes b) {
    using H = layout::SegmentHeader;
    for (const std::size_t field :
         {offsetof(H, heartbeat_ns), offsetof(H, writer_pid), offsetof(H, writer_start_ns),
          offsetof(H, created_ns), offsetof(H, source_changed_ns)}) {
        if (field + 8 <= b.size()) {
            std::memset(b.data() + field, 0, 8);
        }
    }
    return b;
}

void write_seed(const std::filesystem::path& dir, const std::string& label, const Bytes& raw) {
    const Bytes b = normalized(raw);
    std::ofstream out(dir / ("seed-" + label), std::ios::binary | std::ios::trunc);
    out.write(b.data(), static_cast<std::streamsize>(b.size()));
    if (!out) {
        throw std::runtime_error("cannot write seed " + label);
    }
    std::printf("seed-%s: %zu bytes\n", label.c_str(), b.size());
}

Change set(Namespace ns, std::string key, std::string value, std::string category = "") {
    return Change{ns, std::move(key), std::move(value), std::move(category)};
}

Change del(std::string key) {
    return Change{Namespace::config, std::move(key), std::nullopt, ""};
}

// The segment `name`, its writer lock and its waiters page.
void remove_files(const std::string& name) {
    ::unlink(detail::segment_path(name).c_str());
    ::unlink(detail::lock_path(name).c_str());
    ::unlink(detail::waiters_path(name).c_str());
}

void make(const std::filesystem::path& dir) {
    WriterOptions options;
    options.name = "yuxi-fuzz-corpus-" + std::to_string(::getpid());
    // The smallest segments the writer makes (12 KiB): the fuzzer mutates them faster.
    options.min_slots = 16;
    options.min_arena_bytes = 1;
    options.max_value_bytes = 256;
    const std::string path = detail::segment_path(options.name);
    {
        auto w = SegmentWriter::create(options, {}, 1);
        write_seed(dir, "empty", read_file(path));
    }
    {
        std::vector<Change> one = {set(Namespace::config, "top_k", "10")};
        auto w = SegmentWriter::create(options, one, 1);
        write_seed(dir, "one", read_file(path));
    }
    std::vector<Change> initial = {
        set(Namespace::config, "embed_model", "\"bge-m3\"", "model"),
        set(Namespace::config, "top_k", "10"),
        set(Namespace::config, "k0", "{\"a\":[1,2,3]}"),
        set(Namespace::config, "k1", "true", "flags"),
        set(Namespace::metadata, "global_metadata", "{\"databases\":{}}"),
    };
    auto w = SegmentWriter::create(options, initial, 1);
    for (std::uint64_t rev = 2; rev <= 6; ++rev) {
        std::vector<Change> batch = {set(Namespace::config, "top_k", std::to_string(rev)),
                                     set(Namespace::config, "k" + std::to_string(rev), "null")};
        if (rev == 4) {
            batch.push_back(del("k1"));
        }
        if (rev == 5) {
            batch.push_back(
                set(Namespace::metadata, "global_metadata", "{\"databases\":{\"a\":1}}"));
        }
        (void)w.apply(batch, rev);
    }
    if (w.compactions() != 0) {
        throw std::runtime_error("the chains seed was compacted; enlarge its arena");
    }
    Bytes chains = read_file(path);
    write_seed(dir, "chains", chains);

    // A writer that died inside a batch leaves `seq` odd.
    std::uint64_t seq = 0;
    std::memcpy(&seq, chains.data() + offsetof(layout::SegmentHeader, seq), sizeof seq);
    seq |= 1;
    std::memcpy(chains.data() + offsetof(layout::SegmentHeader, seq), &seq, sizeof seq);
    write_seed(dir, "odd-seq", chains);

    // The replaced segment stays readable through an open descriptor, with `retired` set.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::uint64_t rev = 7;
    while (w.compactions() == 0) {
        std::vector<Change> batch = {set(Namespace::config, "pad" + std::to_string(rev % 3),
                                         "\"" + std::string(200, 'p') + "\"")};
        (void)w.apply(batch, rev++);
    }
    Bytes retired(static_cast<std::size_t>(::lseek(fd, 0, SEEK_END)));
    if (::pread(fd, retired.data(), retired.size(), 0) != static_cast<ssize_t>(retired.size())) {
        throw std::runtime_error("cannot read the retired segment");
    }
    ::close(fd);
    write_seed(dir, "retired", retired);
    w.finish_compaction();
    write_seed(dir, "compacted", read_file(path));
    remove_files(options.name);
    {
        // Layout 1, which this client still reads: an older agent's segment. Under a name of
        // its own: `w` still holds the writer lock of the first.
        WriterOptions old = options;
        old.name += "-layout1";
        old.layout = 1;
        auto w1 = SegmentWriter::create(old, initial, 1);
        std::vector<Change> batch = {set(Namespace::config, "top_k", "2"), del("k1")};
        (void)w1.apply(batch, 2);
        write_seed(dir, "layout1", read_file(detail::segment_path(old.name)));
        remove_files(old.name);
    }
}

}  // namespace
}  // namespace yuxi::config

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\nwrites seed segments for segment_fuzz into DIR\n",
                     argv[0]);
        return 2;
    }
    try {
        std::filesystem::create_directories(argv[1]);
        yuxi::config::make(argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_corpus: %s\n", e.what());
        return 1;
    }
    return 0;
}
