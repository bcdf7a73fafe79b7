// Instruction counts of the read and write paths, for scripts/check-instructions: a plain
// program run under `valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no`,
// which counts only the timed loop (the callgrind client requests below switch counting
// on around it, so setting up a segment of a million entries is not instrumented).
// Instruction counts are repeatable on a shared machine, where times are not.
//
//   instruction_probe OP ITERATIONS
//
// OP: get (Client::get, a new std::string), read (into a buffer), view (Client::view, a
// Value), pin_view (Pin::view), miss (Client::get of an absent key), typed
// (Client::get<std::int64_t>), pin_typed (Pin::get<std::int64_t>), apply (one 1-change
// SegmentWriter::apply with 1,000,000 entries loaded, without notify). Reads walk 10,000
// keys of 20 bytes (100-byte values; integers for the typed reads) in a fixed shuffled
// order. Each op is counted with its share of the loop (a few instructions). Without
// valgrind the program just runs, and prints the nanoseconds per op as a sanity check.
#include <unistd.h>
#include <valgrind/callgrind.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/client.hpp"

namespace {

using yuxi::config::Client;
using yuxi::config::Namespace;
namespace agent = yuxi::config::agent;
namespace detail = yuxi::config::detail;

constexpr std::size_t kKeys = 10000;
constexpr std::size_t kApplyEntries = 1000000;

template <class T>
inline void keep(const T& v) {
    asm volatile("" : : "r"(&v) : "memory");
}

std::string key_of(const char* prefix, std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%08zu", prefix, i);
    return buf;  // 20 bytes
}

std::string string_value(std::size_t i) {
    std::string v = "\"";
    std::mt19937_64 rng(i);
    while (v.size() < 99) {
        v.push_back(static_cast<char>('a' + rng() % 26));
    }
    return v + "\"";
}

struct Segment {
    std::string name;
    std::optional<agent::SegmentWriter> writer;
    ~Segment() {
        writer.reset();
        ::unlink(detail::segment_path(name).c_str());
        ::unlink(detail::lock_path(name).c_str());
        ::unlink(detail::waiters_path(name).c_str());
    }
};

void make_segment(Segment& s, std::size_t n, bool integers, const char* tag) {
    s.name = std::string("yuxi-probe-") + tag + "-" + std::to_string(::getpid());
    agent::WriterOptions o;
    o.name = s.name;
    std::vector<agent::Change> initial;
    initial.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        initial.push_back({Namespace::config, key_of("svc.cfg.key.", i),
                           integers ? std::to_string(i * 7919 % 1000003) : string_value(i), ""});
    }
    s.writer.emplace(agent::SegmentWriter::create(o, initial, 1));
}

// The keys to read, one block, in a fixed shuffled order.
struct Keys {
    std::string blob;
    std::vector<std::uint32_t> order;
    std::string_view at(std::size_t i) const { return {blob.data() + order[i] * 20, 20}; }
};

Keys make_keys(const char* prefix) {
    Keys k;
    for (std::size_t i = 0; i < kKeys; ++i) {
        k.blob += key_of(prefix, i);
        k.order.push_back(static_cast<std::uint32_t>(i));
    }
    std::shuffle(k.order.begin(), k.order.end(), std::mt19937_64(42));
    return k;
}

// Runs fn(i) for i in [0, n) with counting on. noinline so that the loop is one place.
template <class Fn>
[[gnu::noinline]] double counted(std::size_t n, Fn&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_TOGGLE_COLLECT;
    for (std::size_t i = 0; i < n; ++i) {
        fn(i);
    }
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_STOP_INSTRUMENTATION;
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
}

double reads(std::string_view op, std::size_t n) {
    Segment seg;
    const bool typed = op == "typed" || op == "pin_typed";
    make_segment(seg, kKeys, typed, "read");
    const Keys keys = make_keys(op == "miss" ? "svc.cfg.mis." : "svc.cfg.key.");
    const Client c = Client::open(seg.name);
    const yuxi::config::Pin pin = c.pin();
    char buf[256];
    keep(c.get(keys.at(0)));  // the thread's slot, made outside the count
    const auto key = [&](std::size_t i) { return keys.at(i % kKeys); };
    if (op == "get" || op == "miss") {
        return counted(n, [&](std::size_t i) { keep(c.get(key(i))); });
    }
    if (op == "read") {
        return counted(n, [&](std::size_t i) {
            keep(c.read(key(i), buf));
            keep(buf);
        });
    }
    if (op == "view") {
        return counted(n, [&](std::size_t i) { keep(c.view(key(i))); });
    }
    if (op == "pin_view") {
        return counted(n, [&](std::size_t i) { keep(pin.view(key(i))); });
    }
    if (op == "typed") {
        return counted(n, [&](std::size_t i) { keep(c.get<std::int64_t>(key(i))); });
    }
    if (op == "pin_typed") {
        return counted(n, [&](std::size_t i) { keep(pin.get<std::int64_t>(key(i))); });
    }
    std::fprintf(stderr, "instruction_probe: unknown op '%.*s'\n", static_cast<int>(op.size()),
                 op.data());
    std::exit(2);
}

// The 8 decimal digits of `i` at `out`, in a few instructions: the count is the writer's,
// not a formatter's.
void write_digits(char* out, std::uint64_t i) noexcept {
    for (int p = 7; p >= 0; --p) {
        out[p] = static_cast<char>('0' + i % 10);
        i /= 10;
    }
}

// One 1-change apply at a time, rewriting a random existing key with a new 100-byte value,
// as writer_bench does.
double applies(std::size_t n) {
    Segment seg;
    make_segment(seg, kApplyEntries, false, "apply");
    agent::SegmentWriter& w = *seg.writer;
    std::vector<agent::Change> ring;
    for (std::size_t i = 0; i < 16; ++i) {
        ring.push_back({Namespace::config, key_of("svc.cfg.key.", 0), string_value(i + 1), ""});
    }
    std::uint64_t rng = 0x9e3779b97f4a7c15ULL;
    const auto apply_one = [&](std::size_t i) {
        agent::Change& c = ring[i % ring.size()];
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        const std::uint64_t k = rng % kApplyEntries;
        write_digits(c.key.data() + 12, k);
        auto r = w.apply(std::span<const agent::Change>(&c, 1), w.revision() + 1);
        keep(r);
    };
    for (std::size_t i = 0; i < 64; ++i) {
        apply_one(i);  // warm: scratch vectors grown, first pages faulted
    }
    const double ns = counted(n, apply_one);
    if (w.compacting() || w.compactions() != 0) {
        std::fprintf(stderr, "instruction_probe: a compaction ran during the count\n");
        std::exit(1);
    }
    return ns;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s get|read|view|pin_view|miss|typed|pin_typed|apply N\n",
                     argv[0]);
        return 2;
    }
    const std::string_view op = argv[1];
    const std::size_t n = std::strtoull(argv[2], nullptr, 10);
    if (n == 0) {
        std::fprintf(stderr, "instruction_probe: N must be a positive number\n");
        return 2;
    }
    const double ns = op == "apply" ? applies(n) : reads(op, n);
    std::printf("%.*s: %zu ops, %.1f ns per op\n", static_cast<int>(op.size()), op.data(), n, ns);
    return 0;
}
