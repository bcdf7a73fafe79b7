// (Over 600 lines: one table of hostile segments and the checks they share.)
// Segments with a valid header and a body that lies: truncated files, impossible geometry,
// random bytes, offsets out of bounds, huge lengths, broken version chains, a full index.
// Every read of the client must end in a value that was written, not-found or corrupt:
// never a crash, a hang or a read outside the mapping. Each case also drives SegmentView
// over an exact-size heap copy, where AddressSanitizer sees any byte read past the end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "support/sanitized.hpp"
#include "yuxi/config/client.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/segment_view.hpp"

namespace yuxi::config {
namespace {

using test::kSanitized;

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;
using layout::CopyHeader;
using layout::EntryHeader;
using layout::EntryTrailer;
using layout::SegmentHeader;
using layout::Slot;
using Status = detail::SegmentView::Status;

constexpr int kKeys = 24;
constexpr int kMetaKeys = 4;
constexpr std::uint64_t kLastRevision = 5;
// A hang would otherwise stall the whole suite until ctest's timeout.
constexpr unsigned kWatchdogSeconds = kSanitized ? 300 : 60;

std::string config_key(int k) {
    return "key-" + std::to_string(k);
}
std::string meta_key(int k) {
    return "meta-" + std::to_string(k);
}

std::string config_value(std::uint64_t rev, int k) {
    return "\"v" + std::to_string(rev) + "-" + std::string(static_cast<std::size_t>(k * 3), 'x') +
           "\"";
}
std::string meta_value(std::uint64_t rev, int k) {
    return "{\"rev\":" + std::to_string(rev) + ",\"m\":" + std::to_string(k) + "}";
}

// What the unaltered segment holds at kLastRevision.
std::optional<std::string> expected_value(Namespace ns, const std::string& key) {
    for (int k = 1; k < kKeys; ++k) {
        if (ns == Namespace::config && key == config_key(k)) {
            return config_value(kLastRevision, k);
        }
    }
    for (int k = 0; k < kMetaKeys; ++k) {
        if (ns == Namespace::metadata && key == meta_key(k)) {
            return meta_value(3, k);
        }
    }
    return std::nullopt;
}

template <class T>
T peek(const std::vector<unsigned char>& bytes, std::uint64_t offset) {
    T v;
    std::memcpy(&v, bytes.data() + offset, sizeof v);
    return v;
}

template <class T>
void poke(std::vector<unsigned char>& bytes, std::uint64_t offset, T v) {
    std::memcpy(bytes.data() + offset, &v, sizeof v);
}

// A slot word is {tag, offset} (layout.hpp); these read and write its parts.
std::uint64_t slot_offset(const std::vector<unsigned char>& bytes, std::uint64_t at) {
    return peek<std::uint64_t>(bytes, at) & layout::kOffsetMask;
}
void set_slot_offset(std::vector<unsigned char>& bytes, std::uint64_t at, std::uint64_t offset) {
    const auto w = peek<std::uint64_t>(bytes, at);
    poke(bytes, at, (w & ~layout::kOffsetMask) | (offset & layout::kOffsetMask));
}
void set_slot_hash(std::vector<unsigned char>& bytes, std::uint64_t at, std::uint64_t hash) {
    poke(bytes, at, layout::slot_word(layout::slot_tag(hash), slot_offset(bytes, at)));
}

// Where the trailer (prev_offset, hash, checksum) of the entry at `e` is.
std::uint64_t trailer_at(const std::vector<unsigned char>& bytes, std::uint64_t e) {
    const auto h = peek<EntryHeader>(bytes, e);
    return e + layout::trailer_at(h.key_len, h.category_len, h.value_len, h.extra_len);
}
std::uint64_t entry_hash(const std::vector<unsigned char>& bytes, std::uint64_t e) {
    return peek<EntryTrailer>(bytes, trailer_at(bytes, e)).hash;
}

// A real segment, as bytes, and where its parts are.
struct Template {
    std::vector<unsigned char> bytes;
    SegmentHeader header{};
    std::vector<std::uint64_t> entries;  // offsets, in arena order
    std::uint64_t arena_used = 0;

    std::uint64_t slot_at(unsigned copy, std::uint64_t i) const {
        return header.index_offset + copy * header.copy_bytes + sizeof(CopyHeader) +
               i * sizeof(Slot);
    }
    std::uint64_t copy_header_at(unsigned copy) const {
        return header.index_offset + copy * header.copy_bytes;
    }
};

// Keys updated at every revision up to kLastRevision (so every key has a version chain),
// key-0 deleted at the last one, metadata written twice, some categories.
Template make_template(const std::string& name, std::uint64_t min_slots) {
    WriterOptions options;
    options.name = name;
    options.min_arena_bytes = 1 << 16;
    options.min_slots = min_slots;
    options.max_value_bytes = 4096;
    Template t;
    {
        std::vector<Change> batch;
        for (int k = 0; k < kKeys; ++k) {
            batch.push_back(
                {Namespace::config, config_key(k), config_value(1, k), k % 2 == 1 ? "cat" : ""});
        }
        for (int k = 0; k < kMetaKeys; ++k) {
            batch.push_back({Namespace::metadata, meta_key(k), meta_value(1, k), ""});
        }
        auto w = SegmentWriter::create(options, batch, 1);
        for (std::uint64_t rev = 2; rev <= kLastRevision; ++rev) {
            batch.clear();
            for (int k = 0; k < kKeys; ++k) {
                if (k == 0 && rev == kLastRevision) {
                    batch.push_back({Namespace::config, config_key(k), std::nullopt, ""});
                } else {
                    batch.push_back({Namespace::config, config_key(k), config_value(rev, k),
                                     k % 2 == 1 ? "cat" : ""});
                }
            }
            if (rev == 3) {
                for (int k = 0; k < kMetaKeys; ++k) {
                    batch.push_back({Namespace::metadata, meta_key(k), meta_value(rev, k), ""});
                }
            }
            (void)w.apply(batch, rev);
        }
        EXPECT_EQ(w.compactions(), 0u) << "the template needs its version chains";
        std::ifstream in(detail::segment_path(name), std::ios::binary);
        t.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    ::unlink(detail::segment_path(name).c_str());
    ::unlink(detail::lock_path(name).c_str());
    ::unlink(detail::waiters_path(name).c_str());
    std::memcpy(&t.header, t.bytes.data(), sizeof t.header);
    t.arena_used = t.header.arena_used;
    for (std::uint64_t off = t.header.arena_offset; off < t.header.arena_offset + t.arena_used;) {
        const auto e = peek<EntryHeader>(t.bytes, off);
        t.entries.push_back(off);
        off += layout::entry_size(e.key_len, e.category_len, e.value_len, e.extra_len);
    }
    return t;
}

// Runs every SegmentView call over an exact-size, page-aligned heap copy of `bytes`.
// Returns how many decoded entries reached outside the copy (must be none).
int sweep_view(const std::vector<unsigned char>& bytes) {
    const std::size_t size = bytes.size();
    constexpr std::align_val_t kPage{4096};
    auto* buf = static_cast<unsigned char*>(::operator new(std::max<std::size_t>(size, 1), kPage));
    if (size != 0) {
        std::memcpy(buf, bytes.data(), size);
    }
    int escapes = 0;
    volatile std::uint64_t sink = 0;  // keeps the reads below from being optimized away
    const auto inside = [&](const detail::EntryRef& e) {
        const auto* end = reinterpret_cast<const unsigned char*>(e.value.data()) + e.value.size();
        if (reinterpret_cast<const unsigned char*>(e.header) < buf || end >= buf + size) {
            ++escapes;
        }
        // Reads every byte, so ASan sees it.
        sink = sink + detail::entry_checksum(e.key, e.category, e.value) +
               static_cast<unsigned char>(e.value.data()[e.value.size()]);
    };
    detail::SegmentView v;
    std::string error;
    if (v.attach(buf, size, error)) {
        for (unsigned copy = 0; copy < 2; ++copy) {
            (void)detail::load_acquire(v.copy_header(copy).revision);
        }
        for (std::uint64_t i = 0; i < v.slot_count(); ++i) {
            const auto r = v.slot_entry(i);
            if (r.status != Status::found) {
                continue;
            }
            inside(r.entry);
            for (const std::uint64_t rev : {0ULL, 1ULL, 3ULL, ~0ULL}) {
                const auto old = v.at_revision(r.entry, rev);
                if (old.status == Status::found) {
                    inside(old.entry);
                }
            }
            const Namespace ns = r.entry.ns();
            const std::string key(r.entry.key);
            for (unsigned copy = 0; copy < 2; ++copy) {
                const auto f = v.find(copy, ns, key, detail::key_hash(ns, key));
                if (f.status == Status::found) {
                    inside(f.entry);
                }
            }
            const auto n = v.find_newest(ns, key, detail::key_hash(ns, key));
            if (n.status == Status::found) {
                inside(n.entry);
            }
        }
        for (int k = 0; k < kKeys; ++k) {
            const std::string key = config_key(k);
            const auto f =
                v.find(0, Namespace::config, key, detail::key_hash(Namespace::config, key));
            if (f.status == Status::found) {
                inside(f.entry);
            }
        }
    }
    ::operator delete(buf, kPage);
    return escapes;
}

struct Outcome {
    int found = 0;       // Client get/view/read that returned a value
    int snap_found = 0;  // Snapshot get/view that returned a value
    int wrong = 0;       // values returned that the segment never held for that key
    int corrupt_reads = 0;
    int too_small = 0;
    bool for_each_ok = true;
    int listed = 0;
};

// Every read the client offers, for every key the template holds and two it does not.
Outcome exercise(const std::string& name) {
    Outcome out;
    auto c = Client::open(name);
    const Snapshot s = c.snapshot();
    std::array<char, 8192> buf{};
    const auto judge = [&](Namespace ns, const std::string& key, std::string_view got,
                           int& counter) {
        ++counter;
        if (expected_value(ns, key) != std::string(got)) {
            ++out.wrong;
        }
    };
    std::vector<std::pair<Namespace, std::string>> keys;
    for (int k = 0; k < kKeys; ++k) {
        keys.emplace_back(Namespace::config, config_key(k));
    }
    for (int k = 0; k < kMetaKeys; ++k) {
        keys.emplace_back(Namespace::metadata, meta_key(k));
    }
    keys.emplace_back(Namespace::config, "absent");
    keys.emplace_back(Namespace::metadata, config_key(1));
    for (const auto& [ns, key] : keys) {
        if (const auto g = c.get(key, ns)) {
            judge(ns, key, *g, out.found);
        }
        if (const auto v = c.view(key, ns)) {
            judge(ns, key, v->data(), out.found);
        }
        const ReadResult r = c.read(key, buf, ns);
        if (r.status == ReadResult::Status::ok) {
            judge(ns, key, std::string_view(buf.data(), r.size), out.found);
        }
        out.corrupt_reads += r.status == ReadResult::Status::corrupt ? 1 : 0;
        out.too_small += r.status == ReadResult::Status::too_small ? 1 : 0;
        if (const auto g = s.get(key, ns)) {
            judge(ns, key, *g, out.snap_found);
        }
        if (const auto v = s.view(key, ns)) {
            judge(ns, key, v->data(), out.snap_found);
        }
        (void)c.get_string(key, ns);
        (void)c.get_or<std::int64_t>(key, 0, ns);
    }
    for (const Namespace ns : {Namespace::config, Namespace::metadata}) {
        out.for_each_ok &= s.for_each(ns, "", [&](const EntryInfo&) { ++out.listed; });
    }
    (void)c.revision();
    (void)c.health();
    (void)c.wait_for_change(c.revision(), std::chrono::milliseconds(1));
    return out;
}

class HostileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ::alarm(kWatchdogSeconds);
        name_ = "yuxi-h1-hostile-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name();
        t_ = make_template(name_ + "-src", 64);
        ASSERT_FALSE(t_.bytes.empty());
        ASSERT_EQ(t_.entries.size(), kKeys * kLastRevision + 2 * kMetaKeys);
    }

    void TearDown() override {
        ::unlink(detail::segment_path(name_).c_str());
        ::alarm(0);
    }

    void install(const std::vector<unsigned char>& bytes) {
        const std::string path = detail::segment_path(name_);
        ::unlink(path.c_str());  // a new inode: clients of the previous bytes keep theirs
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0) << path;
        ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
        ::close(fd);
    }

    // Installs `bytes`, runs every client read and the heap sweep over them.
    Outcome run(const std::vector<unsigned char>& bytes) {
        install(bytes);
        EXPECT_EQ(sweep_view(bytes), 0);
        return exercise(name_);
    }

    void expect_refused(const std::vector<unsigned char>& bytes, const std::string& why) {
        install(bytes);
        EXPECT_EQ(sweep_view(bytes), 0);
        try {
            (void)Client::open(name_);
            ADD_FAILURE() << why << ": the segment was accepted";
        } catch (const SegmentError& e) {
            EXPECT_EQ(e.kind(), SegmentError::Kind::corrupt) << why << ": " << e.what();
        }
    }

    // Applies fn(bytes, slot position) to every slot given to a key, in both copies.
    template <class Fn>
    std::vector<unsigned char> with_used_slots(Fn&& fn) const {
        std::vector<unsigned char> b = t_.bytes;
        for (unsigned copy = 0; copy < 2; ++copy) {
            for (std::uint64_t i = 0; i < t_.header.slot_count; ++i) {
                const std::uint64_t at = t_.slot_at(copy, i);
                if (peek<std::uint64_t>(b, at + offsetof(Slot, word)) != 0) {
                    fn(b, at);
                }
            }
        }
        return b;
    }

    // Applies fn(bytes, entry offset) to every entry of the arena.
    template <class Fn>
    std::vector<unsigned char> with_entries(Fn&& fn) const {
        std::vector<unsigned char> b = t_.bytes;
        for (const std::uint64_t e : t_.entries) {
            fn(b, e);
        }
        return b;
    }

    int present_keys() const { return kKeys - 1 + kMetaKeys; }

    std::string name_;
    Template t_;
};

TEST_F(HostileTest, UnalteredSegmentReadsBack) {
    const Outcome o = run(t_.bytes);
    EXPECT_EQ(o.wrong, 0);
    EXPECT_EQ(o.found, 3 * present_keys());
    EXPECT_EQ(o.snap_found, 2 * present_keys());
    EXPECT_EQ(o.corrupt_reads, 0);
    EXPECT_TRUE(o.for_each_ok);
    EXPECT_EQ(o.listed, present_keys());
}

TEST_F(HostileTest, FileSmallerThanTheHeaderIsRefused) {
    for (const std::size_t size : {0UL, 1UL, 8UL, 64UL, 255UL, 4095UL}) {
        std::vector<unsigned char> b(t_.bytes.begin(),
                                     t_.bytes.begin() + static_cast<std::ptrdiff_t>(size));
        expect_refused(b, "size " + std::to_string(size));
    }
}

TEST_F(HostileTest, FileSmallerThanItsTotalSizeIsRefused) {
    const std::uint64_t total = t_.header.total_size;
    ASSERT_EQ(total, t_.bytes.size());
    for (const std::uint64_t size :
         {std::uint64_t{layout::kHeaderSize}, t_.header.index_offset + t_.header.copy_bytes,
          t_.header.arena_offset, t_.header.arena_offset + 8, total - 4096, total - 8, total - 1}) {
        std::vector<unsigned char> b(t_.bytes.begin(),
                                     t_.bytes.begin() + static_cast<std::ptrdiff_t>(size));
        expect_refused(b, "size " + std::to_string(size));
    }
}

TEST_F(HostileTest, ImpossibleGeometryIsRefused) {
    const SegmentHeader& h = t_.header;
    const std::uint64_t index_end = h.index_offset + 2 * h.copy_bytes;
    struct Case {
        const char* what;
        std::size_t field;
        std::uint64_t value;
    };
    const Case cases[] = {
        {"total_size past the file", offsetof(SegmentHeader, total_size), h.total_size + 8},
        {"total_size of ~0", offsetof(SegmentHeader, total_size), ~0ULL},
        {"no slots", offsetof(SegmentHeader, slot_count), 0},
        {"slots not a power of two", offsetof(SegmentHeader, slot_count), h.slot_count + 1},
        {"slots disagree with copy_bytes", offsetof(SegmentHeader, slot_count), h.slot_count * 2},
        {"2^41 slots", offsetof(SegmentHeader, slot_count), 1ULL << 41},
        {"2^63 slots", offsetof(SegmentHeader, slot_count), 1ULL << 63},
        {"copy_bytes off by one slot", offsetof(SegmentHeader, copy_bytes),
         h.copy_bytes + sizeof(Slot)},
        {"copy_bytes of ~0", offsetof(SegmentHeader, copy_bytes), ~0ULL},
        {"index inside the header", offsetof(SegmentHeader, index_offset), 64},
        {"index misaligned", offsetof(SegmentHeader, index_offset), h.index_offset + 8},
        {"index past the end", offsetof(SegmentHeader, index_offset), h.total_size + 64},
        {"index near 2^64", offsetof(SegmentHeader, index_offset), ~0ULL - 63},
        {"arena overlapping the index", offsetof(SegmentHeader, arena_offset), index_end - 8},
        {"arena misaligned", offsetof(SegmentHeader, arena_offset), h.arena_offset + 4},
        {"arena past the end", offsetof(SegmentHeader, arena_offset), h.total_size + 8},
        {"arena size past the end", offsetof(SegmentHeader, arena_size), h.arena_size + 8},
        {"arena size of ~0", offsetof(SegmentHeader, arena_size), ~0ULL},
    };
    for (const Case& c : cases) {
        std::vector<unsigned char> b = t_.bytes;
        poke(b, c.field, c.value);
        expect_refused(b, c.what);
    }
}

// Line 0 of the header stays valid; everything after it is noise. Some cases also scramble
// the latch, the retired flag and the writer's statistics (lines 1 to 3).
TEST_F(HostileTest, RandomBytesAfterAValidHeader) {
    const int iterations = kSanitized ? 30 : 200;
    std::mt19937_64 rng(20240611);
    for (int i = 0; i < iterations; ++i) {
        std::vector<unsigned char> b = t_.bytes;
        std::uint64_t from = layout::kHeaderSize;
        std::uint64_t to = b.size();
        switch (i % 4) {
            case 0:
                break;
            case 1:  // the index only: slots lead anywhere
                to = t_.header.arena_offset;
                break;
            case 2:  // the arena only: slots lead to noise
                from = t_.header.arena_offset;
                break;
            case 3:
                from = offsetof(SegmentHeader, seq);
                break;
        }
        for (std::uint64_t p = from; p < to; ++p) {
            b[p] = static_cast<unsigned char>(rng());
        }
        const Outcome o = run(b);
        EXPECT_EQ(o.found, 0) << "iteration " << i;
        EXPECT_EQ(o.snap_found, 0) << "iteration " << i;
        EXPECT_EQ(o.wrong, 0) << "iteration " << i;
        EXPECT_EQ(o.too_small, 0) << "iteration " << i;
        if (HasFailure()) {
            break;
        }
    }
}

TEST_F(HostileTest, SlotOffsetsOutsideTheArenaAreCorrupt) {
    const SegmentHeader& h = t_.header;
    const std::uint64_t arena_end = h.arena_offset + h.arena_size;
    const std::uint64_t bad[] = {
        h.total_size,         // just past the mapping
        h.total_size + 4096,  // well past it
        ~0ULL - 7,            // where offset + size wraps
        arena_end - 8,        // inside, but the header would cross the end
        0,                    // the segment header
        offsetof(SegmentHeader, seq),
        h.index_offset,  // the index
        h.index_offset + sizeof(CopyHeader) + 16,
        h.arena_offset - sizeof(EntryHeader),  // just before the arena
    };
    for (const std::uint64_t off : bad) {
        const auto b = with_used_slots([&](std::vector<unsigned char>& bytes, std::uint64_t at) {
            set_slot_offset(bytes, at, off);
        });
        const Outcome o = run(b);
        EXPECT_EQ(o.found + o.snap_found, 0) << "offset " << off;
        EXPECT_EQ(o.corrupt_reads, present_keys() + 1) << "offset " << off;  // + key-0
        EXPECT_FALSE(o.for_each_ok) << "offset " << off;
        EXPECT_EQ(o.listed, 0) << "offset " << off;
    }
}

TEST_F(HostileTest, MisalignedSlotOffsetsAreCorrupt) {
    for (std::uint64_t skew = 1; skew < layout::kEntryAlign; ++skew) {
        const auto b = with_used_slots([&](std::vector<unsigned char>& bytes, std::uint64_t at) {
            set_slot_offset(bytes, at, slot_offset(bytes, at) + skew);
        });
        const Outcome o = run(b);
        EXPECT_EQ(o.found + o.snap_found, 0) << "skew " << skew;
        EXPECT_EQ(o.corrupt_reads, present_keys() + 1) << "skew " << skew;
        EXPECT_FALSE(o.for_each_ok) << "skew " << skew;
    }
}

// Slots lead to well-formed entries of other keys: the key comparison turns them away.
TEST_F(HostileTest, SlotsPointingAtOtherKeysFindNothing) {
    std::vector<std::uint64_t> targets = t_.entries;
    std::rotate(targets.begin(), targets.begin() + 1, targets.end());
    std::size_t next = 0;
    const auto b = with_used_slots([&](std::vector<unsigned char>& bytes, std::uint64_t at) {
        const auto own = slot_offset(bytes, at);
        std::uint64_t other = targets[next++ % targets.size()];
        if (entry_hash(bytes, other) == entry_hash(bytes, own)) {
            other = targets[next++ % targets.size()];
        }
        set_slot_offset(bytes, at, other);
    });
    const Outcome o = run(b);
    EXPECT_EQ(o.wrong, 0);
    EXPECT_EQ(o.corrupt_reads, 0);
}

TEST_F(HostileTest, HugeOrImpossibleLengthsAreCorrupt) {
    struct Case {
        const char* what;
        std::size_t field;
        std::uint64_t value;
        std::size_t width;
    };
    const Case cases[] = {
        {"key_len 2^32-1", offsetof(EntryHeader, key_len), 0xffffffffULL, 4},
        {"key_len past kMaxKeyLen", offsetof(EntryHeader, key_len), layout::kMaxKeyLen + 1, 4},
        {"value_len 2^32-1", offsetof(EntryHeader, value_len), 0xffffffffULL, 4},
        {"value_len past kMaxValueLen", offsetof(EntryHeader, value_len), layout::kMaxValueLen + 1,
         4},
        {"value_len at the format's limit", offsetof(EntryHeader, value_len), layout::kMaxValueLen,
         4},
        {"value_len one past the arena", offsetof(EntryHeader, value_len), t_.header.arena_size, 4},
        {"extra_len 2^32-1", offsetof(EntryHeader, extra_len), 0xffffffffULL, 4},
        {"extra_len one past the arena", offsetof(EntryHeader, extra_len), t_.header.arena_size, 4},
        {"namespace 7", offsetof(EntryHeader, ns), 7, 1},
        {"scalar type 9", offsetof(EntryHeader, scalar_type), 9, 1},
    };
    for (const Case& c : cases) {
        const auto b = with_entries([&](std::vector<unsigned char>& bytes, std::uint64_t e) {
            std::memcpy(bytes.data() + e + c.field, &c.value, c.width);  // little endian
        });
        const Outcome o = run(b);
        EXPECT_EQ(o.found + o.snap_found, 0) << c.what;
        EXPECT_EQ(o.corrupt_reads, present_keys() + 1) << c.what;
        EXPECT_FALSE(o.for_each_ok) << c.what;
    }
}

// A snapshot at revision 1 must walk every chain back. Chains that point forward, at
// themselves, at other keys or outside the arena must end in corrupt, not loop.
TEST_F(HostileTest, BrokenVersionChainsEnd) {
    enum class Link { self, newest_of_key, forward, other_key, misaligned, header };
    std::map<std::uint64_t, std::uint64_t> newest;  // hash -> offset of its newest entry
    for (const std::uint64_t e : t_.entries) {
        newest[entry_hash(t_.bytes, e)] = e;
    }
    // The first entries of key-0 and key-1: each key links to the other's.
    const std::uint64_t first[2] = {t_.entries[0], t_.entries[1]};
    const std::uint64_t first_hash = entry_hash(t_.bytes, first[0]);
    for (const Link link : {Link::self, Link::newest_of_key, Link::forward, Link::other_key,
                            Link::misaligned, Link::header}) {
        auto b = with_entries([&](std::vector<unsigned char>& bytes, std::uint64_t e) {
            const std::uint64_t hash = entry_hash(bytes, e);
            std::uint64_t prev = 0;
            switch (link) {
                case Link::self:
                    prev = e;
                    break;
                case Link::newest_of_key:
                    prev = newest[hash];
                    break;
                case Link::forward:
                    prev = e + 64;
                    break;
                case Link::other_key:
                    prev = hash == first_hash ? first[1] : first[0];
                    break;
                case Link::misaligned:
                    prev = e - 4;
                    break;
                case Link::header:
                    prev = 8;
                    break;
            }
            poke(bytes, trailer_at(bytes, e) + offsetof(EntryTrailer, prev_offset), prev);
        });
        for (unsigned copy = 0; copy < 2; ++copy) {
            poke<std::uint64_t>(b, t_.copy_header_at(copy) + offsetof(CopyHeader, revision), 1);
        }
        const Outcome o = run(b);
        const int what = static_cast<int>(link);
        // The latched lookups read the newest entries, which are intact.
        EXPECT_EQ(o.wrong, 0) << "link " << what;
        EXPECT_EQ(o.found, 3 * present_keys()) << "link " << what;
        EXPECT_EQ(o.snap_found, 0) << "link " << what;
        EXPECT_FALSE(o.for_each_ok) << "link " << what;
    }
}

// The same chains intact: the walk back to revision 1 works (so the test above can fail).
TEST_F(HostileTest, IntactVersionChainsReachRevisionOne) {
    auto b = t_.bytes;
    for (unsigned copy = 0; copy < 2; ++copy) {
        poke<std::uint64_t>(b, t_.copy_header_at(copy) + offsetof(CopyHeader, revision), 1);
    }
    install(b);
    auto c = Client::open(name_);
    const Snapshot s = c.snapshot();
    EXPECT_EQ(s.revision(), 1u);
    EXPECT_EQ(s.get(config_key(0)), config_value(1, 0));
    EXPECT_EQ(s.get(config_key(7)), config_value(1, 7));
    EXPECT_EQ(s.metadata(meta_key(2)), meta_value(1, 2));
    int n = 0;
    EXPECT_TRUE(s.for_each(Namespace::config, "",
                           [&](const EntryInfo& e) { n += e.revision == 1 ? 1 : 0; }));
    EXPECT_EQ(n, kKeys);
}

// No empty slot anywhere and no hash that matches: every probe loop must stop on its own.
TEST_F(HostileTest, FullIndexWithoutEmptySlotEnds) {
    for (const bool entries_valid : {false, true}) {
        std::vector<unsigned char> b = t_.bytes;
        for (unsigned copy = 0; copy < 2; ++copy) {
            for (std::uint64_t i = 0; i < t_.header.slot_count; ++i) {
                const std::uint64_t at = t_.slot_at(copy, i);
                poke<std::uint64_t>(
                    b, at,
                    layout::slot_word(layout::slot_tag(0x5a5a5a5a5a5a5a5aULL + i),
                                      entries_valid ? t_.entries[i % t_.entries.size()] : 0));
            }
        }
        const Outcome o = run(b);
        EXPECT_EQ(o.found + o.snap_found, 0);
        // The whole table was probed, so the keys are known to be absent.
        EXPECT_EQ(o.corrupt_reads, 0);
        EXPECT_EQ(o.for_each_ok, entries_valid);
    }
}

// A table larger than the probe limit: an unending chain is reported as corrupt.
TEST_F(HostileTest, FullIndexLargerThanTheProbeLimitIsCorrupt) {
    const Template big = make_template(name_ + "-big", 2 * layout::kMaxProbe);
    ASSERT_GT(big.header.slot_count, layout::kMaxProbe);
    std::vector<unsigned char> b = big.bytes;
    for (unsigned copy = 0; copy < 2; ++copy) {
        for (std::uint64_t i = 0; i < big.header.slot_count; ++i) {
            set_slot_hash(b, big.slot_at(copy, i), 0x77ULL + i);
        }
    }
    const Outcome o = run(b);
    EXPECT_EQ(o.found + o.snap_found, 0);
    EXPECT_EQ(o.corrupt_reads, present_keys() + 3);  // every key probed, present or not
    EXPECT_FALSE(o.for_each_ok);
}

// The copies disagree at every position (copy 1 holds copy 0's slots shifted by one):
// whatever is found must still be the key's own value.
TEST_F(HostileTest, DisagreeingCopiesNeverMixKeys) {
    std::vector<unsigned char> b = t_.bytes;
    const std::uint64_t n = t_.header.slot_count;
    for (std::uint64_t i = 0; i < n; ++i) {
        std::array<unsigned char, sizeof(Slot)> slot;
        std::memcpy(slot.data(), t_.bytes.data() + t_.slot_at(0, i), sizeof slot);
        std::memcpy(b.data() + t_.slot_at(1, (i + 1) % n), slot.data(), sizeof slot);
    }
    for (const std::uint64_t seq : {0ULL, 1ULL}) {
        poke(b, offsetof(SegmentHeader, seq), seq);
        const Outcome o = run(b);
        EXPECT_EQ(o.wrong, 0) << "seq " << seq;
    }
}

// A writer killed half-way through updating copy 0 leaves `seq` odd: readers must use
// copy 1 and find every value, however garbled copy 0 is.
TEST_F(HostileTest, OddSequenceReadsTheWholeCopy) {
    std::vector<unsigned char> b = t_.bytes;
    std::mt19937_64 rng(7);
    for (std::uint64_t i = 0; i < t_.header.slot_count; ++i) {
        poke<std::uint64_t>(b, t_.slot_at(0, i) + offsetof(Slot, word), rng() | 1);
    }
    const auto seq = peek<std::uint64_t>(b, offsetof(SegmentHeader, seq));
    ASSERT_EQ(seq % 2, 0u);
    poke(b, offsetof(SegmentHeader, seq), seq + 1);
    const Outcome o = run(b);
    EXPECT_EQ(o.wrong, 0);
    EXPECT_EQ(o.found, 3 * present_keys());
    EXPECT_EQ(o.snap_found, 2 * present_keys());
}

// A segment marked retired with nothing to replace it stays readable, and reads stay fast
// (remap attempts are rate-limited, not retried on every read).
TEST_F(HostileTest, RetiredSegmentWithoutReplacementStaysReadable) {
    std::vector<unsigned char> b = t_.bytes;
    poke<std::uint32_t>(b, offsetof(SegmentHeader, retired), 1);
    install(b);
    auto c = Client::open(name_);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20000; ++i) {
        ASSERT_EQ(c.get(config_key(1 + i % (kKeys - 1))),
                  config_value(kLastRevision, 1 + i % (kKeys - 1)));
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(kSanitized ? 20 : 2));
    const Health h = c.health();
    EXPECT_TRUE(h.retired);
    EXPECT_FALSE(h.writer_alive);
    EXPECT_EQ(h.revision, kLastRevision);
}

}  // namespace
}  // namespace yuxi::config
