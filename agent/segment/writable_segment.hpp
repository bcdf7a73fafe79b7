// A layout-2 segment as its writer sees it: mapped read-write, with the counters the writer
// keeps, the writing of entries (with their decoded scalars), probes, and the index
// operations of a segment no reader sees yet. The latch protocol on a published segment is
// SegmentWriter's; this is what it shares with the background compactor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/segment/prefaulter.hpp"
#include "agent/segment/segment_types.hpp"
#include "yuxi/config/detail/segment_view.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent {

// The decoded form of a value (layout::ScalarType), found with the client's own json_as, so
// that a typed read gives what parsing the text would.
struct Scalar {
    layout::ScalarType type = layout::ScalarType::none;
    std::uint64_t bits = 0;  // bool, int64 or double
    std::string_view text;   // a string's unescaped text: inside the value, or in `scratch`
    bool escaped = false;    // `text` differs from the value's bytes: stored after the value
};
Scalar classify(std::string_view json, std::string& scratch);

// An entry to write.
struct NewEntry {
    std::uint64_t hash = 0;
    Namespace ns = Namespace::config;
    std::string_view key;
    std::string_view category;
    std::optional<std::string_view> value;  // nothing: a tombstone
    std::uint64_t revision = 0;
    std::uint64_t prev = 0;  // the key's previous entry in this segment, 0 if none
    const Scalar* scalar = nullptr;
};

// Bytes an entry for `c` takes, with its scalar.
std::uint64_t entry_bytes(const Change& c, const Scalar& s);

// The slot of (ns, key) in a copy: where it is, or the empty slot where it would go.
struct Probe {
    std::uint64_t pos = 0;
    std::uint64_t offset = 0;  // of the key's newest entry, 0 if absent
};

// What a new segment is made for.
struct Geometry {
    std::uint64_t slots = 0;
    std::uint64_t arena = 0;
};
Geometry geometry_for(const WriterOptions& options, std::uint64_t keys, std::uint64_t bytes);

class WritableSegment {
  public:
    WritableSegment() = default;

    // Creates an empty segment at `path` (a temporary name), mapped read-write, its
    // header written; throws WriterError.
    static WritableSegment create(const std::string& path, const Geometry& g,
                                  std::uint64_t writer_start_ns, SourceState state);

    void unmap() noexcept;
    bool mapped() const noexcept { return base != nullptr; }

    layout::SegmentHeader& header() const noexcept {
        return *reinterpret_cast<layout::SegmentHeader*>(base);
    }
    std::uint64_t arena_used() const noexcept;
    std::uint64_t arena_size() const noexcept { return view.header().arena_size; }
    layout::Slot* table(unsigned copy) const noexcept {
        return const_cast<layout::Slot*>(view.slots(copy));
    }
    // Whether `bytes` more arena and `new_keys` more slots fit (load factor at most 1/2).
    bool fits(std::uint64_t bytes, std::uint64_t new_keys) const noexcept;

    // Finds (ns, key) in the index, reading the writer's own copy of it (`mirror`).
    Probe probe(Namespace ns, std::string_view key, std::uint64_t hash) const noexcept;
    // Starts the misses a change of `hash` will take: its home slot's line in the mirror and,
    // for writing, in both copies.
    void prefetch_slots(std::uint64_t hash) const noexcept;
    // Starts the miss on the entry the home slot of `hash` points to, if its tag matches:
    // almost always the key's newest entry, which the probe will read.
    void prefetch_entry(std::uint64_t hash) const noexcept;

    // Appends an entry and keeps the live counters; returns its offset. The bytes are
    // published (arena_used, release) but no slot points at them yet.
    std::uint64_t append(const NewEntry& e);
    // Appends a copy of `e`, an entry of another segment, linked to `prev`.
    std::uint64_t copy(const detail::EntryRef& e, std::uint64_t prev);

    // Index operations on a segment no reader sees yet (no latch); they keep the mirror.
    void set_slot(std::uint64_t pos, std::uint64_t hash, std::uint64_t offset) noexcept;
    std::uint64_t claim_slot(std::uint64_t hash) noexcept;  // a new key: both copies
    void set_copy_headers(std::uint64_t revision, std::uint64_t commit_ns) noexcept;

    // Pages of the arena up to `end` (and a step beyond) are faulted in ahead of use.
    void prefault(std::uint64_t end) noexcept;
    // Starts the misses of the next entry's first lines now, for the next append.
    void prefetch_next() const noexcept;

    std::string path;  // while private: its temporary name
    unsigned char* base = nullptr;
    std::uint64_t size = 0;
    // The writer's private copy of index copy 0's slot words, in anonymous memory on huge
    // pages where the kernel gives them: a probe reads it instead of the shared index, whose
    // 4 KiB pages cost a TLB miss on top of the cache miss at a million entries
    // (docs/benchmarks.md). Always equal to copy 0 once a publish is complete.
    std::uint64_t* mirror = nullptr;
    detail::SegmentView view;
    std::uint64_t prefaulted = 0;  // offset up to which pages are populated
    Prefaulter* ahead = nullptr;   // populates pages ahead of appends, if set
    std::uint64_t live_entries = 0;
    std::uint64_t live_bytes = 0;  // arena bytes of the newest live entries
    std::uint64_t used_slots = 0;

  private:
    void account(std::uint64_t prev, std::uint64_t bytes, bool live) noexcept;
    std::uint64_t reserve(std::uint64_t bytes);
};

// Copies into `dst`, which no reader sees yet, every entry of `src`'s arena between
// `from` and `to` (offsets), in order: newer entries replace older ones, tombstones remove
// keys. Replaying an entry dst already holds is harmless (a later one follows it). False if
// dst is full.
bool replay(WritableSegment& dst, const detail::SegmentView& src, std::uint64_t from,
            std::uint64_t to);

}  // namespace yuxi::config::agent
