// The shared-memory segment layout: the only definition, shared by the agent (the single
// writer) and every client (readers).
//
// A segment is one file under /dev/shm:
//
//   [ SegmentHeader  | index copy 0 | index copy 1 | arena ........................ ]
//     4 KiB            CopyHeader +   same shape     entries, appended, never changed
//                      slot_count                    while the segment is live
//                      Slots
//
// Entries are immutable. An index copy is an open-addressing hash table (linear probing)
// of 8-byte slot words {hash tag, entry offset}; a slot, once given to a key, belongs to
// that key until the segment is compacted (deletions are tombstone entries), so probe
// chains never break.
//
// Protocol (a seqcount latch, as Linux's seqcount_latch): for each batch the writer
// appends the new entries to the arena, bumps `seq` (odd: readers use copy 1), updates
// copy 0, bumps `seq` (even: readers use copy 0), updates copy 1. A reader loads `seq`,
// reads copy `seq & 1`, and re-checks `seq`; if it moved, it retries. The copy a reader is
// directed to is never being written, so a reader never waits, and a writer killed at any
// instruction leaves one whole copy behind.
//
// Memory ordering: every field the writer changes while readers run is accessed only
// through std::atomic_ref. `seq` is bumped by the single writer's plain atomic stores and
// read with an acquire load first; slot words are written with release stores and read with
// acquire loads; the final re-check of `seq` is relaxed. A slot store is ordered after the
// `seq` bump before it (release), so a reader that loads a slot value written after the
// bump (acquire) must then see the bumped `seq` and retry. A slot word loaded with acquire
// synchronizes with its release store, which followed the writing of the entry's bytes,
// so the entry bytes a reader copies are never raced, even on a read it throws away.
// ThreadSanitizer checks all of it (it does not model stand-alone fences; we use none).
//
// Compaction: when the arena or the index fills up the writer builds a new segment under a
// temporary name (in the background, while it keeps publishing into the old one), renames
// it over the live name, and sets `retired` in the old one, which is never written again.
// Readers see the flag with one load on their next read and remap.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace yuxi::config {

// Namespaces of entries (docs/design.md, "Data model").
enum class Namespace : std::uint8_t {
    config = 0,
    metadata = 1,
};

// What the agent reports about its source; readers see it in Health.
enum class SourceState : std::uint32_t {
    starting = 0,  // no snapshot of the source has been published yet
    ok = 1,        // the segment reflects the source
    degraded = 2,  // serving a fallback (e.g. the L2 snapshot); the source is unreachable
    stale = 3,     // the last reload failed; serving the last good state
    stopped = 4,   // the writer exited cleanly; the state is the last it published
};

constexpr std::string_view to_string(SourceState s) noexcept {
    switch (s) {
        case SourceState::starting:
            return "starting";
        case SourceState::ok:
            return "ok";
        case SourceState::degraded:
            return "degraded";
        case SourceState::stale:
            return "stale";
        case SourceState::stopped:
            return "stopped";
    }
    return "unknown";
}

namespace layout {

inline constexpr std::uint64_t kMagic = 0x3147464349585559ULL;  // "YUXICFG1", little endian
// Increment whenever the layout changes, in any way. A client refuses versions it does not
// know (this one also reads version 1: detail/layout_v1.hpp).
inline constexpr std::uint32_t kVersion = 2;
inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kHeaderSize = 4096;
// Entries start on a cache line, so that the first line a lookup touches holds the fields
// it checks and the start of the key.
inline constexpr std::size_t kEntryAlign = 64;
inline constexpr std::uint32_t kMaxKeyLen = 4096;
inline constexpr std::uint32_t kMaxCategoryLen = 255;
// The largest value the format can describe; the agent enforces a lower, configurable one.
inline constexpr std::uint64_t kMaxValueLen = 1ULL << 31;
// Probe chains longer than this are treated as corruption (the writer keeps the load
// factor at or under 1/2, where the expected chain is ~1.5 slots).
inline constexpr std::uint64_t kMaxProbe = 4096;
// A slot word holds an entry offset in its low kOffsetBits bits, so a segment is smaller.
inline constexpr unsigned kOffsetBits = 40;
inline constexpr std::uint64_t kOffsetMask = (1ULL << kOffsetBits) - 1;
inline constexpr std::uint64_t kMaxSegmentBytes = 1ULL << kOffsetBits;

enum EntryFlags : std::uint8_t {
    kEntryTombstone = 1,  // the key was deleted at this revision
};

// The decoded form of a value the writer stores beside its JSON text, so that typed reads
// need no parsing. The writer decides; a reader only trusts what the entry says.
enum class ScalarType : std::uint8_t {
    none = 0,     // an object, an array, null, or a number that fits neither below
    boolean = 1,  // scalar: 0 or 1
    integer = 2,  // scalar: the int64_t's bits
    real = 3,     // scalar: the double's bits
    string = 4,   // scalar: (offset << 32) | length of the unescaped text in the payload
};

// Cache line 0: written once when the segment is created, then only read.
// Cache line 1: `seq` and `retired`, read by every lookup.
// Cache line 2+: written by the writer often (heartbeat, statistics), read rarely.
// The same in layout versions 1 and 2, so that any writer can retire any segment.
struct SegmentHeader {
    // line 0
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t fingerprint;  // sizes and offsets of this layout, see kFingerprint
    std::uint64_t total_size;   // bytes of the whole segment
    std::uint64_t index_offset;
    std::uint64_t copy_bytes;  // bytes of one index copy (CopyHeader + slots)
    std::uint64_t slot_count;  // a power of two
    std::uint64_t arena_offset;
    std::uint64_t arena_size;
    // line 1
    alignas(kCacheLine) std::uint64_t seq;  // latch sequence
    std::uint32_t retired;                  // non-zero: replaced, remap by name
    std::uint32_t reserved1;
    // line 2: the futex readers sleep on, bumped after every publish and on retirement
    alignas(kCacheLine) std::uint32_t notify;
    std::uint32_t reserved2;
    // line 3: the writer's liveness and statistics
    alignas(kCacheLine) std::uint64_t heartbeat_ns;  // CLOCK_MONOTONIC of the last beat
    std::uint64_t writer_pid;
    std::uint64_t writer_start_ns;  // CLOCK_REALTIME when the writer started
    std::uint64_t created_ns;       // CLOCK_REALTIME when this segment was created
    std::uint64_t arena_used;       // bytes of the arena in use
    std::uint64_t updates_applied;  // entries written since the segment was created
    std::uint32_t source_state;     // a SourceState
    std::uint32_t reserved3;
    std::uint64_t source_changed_ns;  // CLOCK_MONOTONIC of the last source state change
};

// Each index copy starts with this header, on its own cache line.
struct CopyHeader {
    std::uint64_t revision;      // the revision this copy reflects
    std::uint64_t live_entries;  // keys with a non-tombstone newest entry
    std::uint64_t used_slots;    // slots given to a key
    std::uint64_t commit_ns;     // CLOCK_REALTIME of the source commit, 0 if unknown
    std::uint64_t reserved[4];
};

// One 8-byte word, loaded and stored whole: 0 is empty; otherwise the top 24 bits are a
// tag of the key's hash (never 0) and the low 40 bits the offset, from the segment start,
// of the key's newest entry. A lookup compares tags before it touches an entry, so probing
// past other keys costs no entry read. Eight slots share a cache line.
struct Slot {
    std::uint64_t word;
};

constexpr std::uint64_t slot_tag(std::uint64_t hash) noexcept {
    const std::uint64_t t = hash >> kOffsetBits;
    return t != 0 ? t : 1;
}

constexpr std::uint64_t slot_word(std::uint64_t tag, std::uint64_t offset) noexcept {
    return (tag << kOffsetBits) | (offset & kOffsetMask);
}

// An entry in the arena, at a kEntryAlign boundary: this header, then key bytes, category
// bytes, value bytes and a NUL (so a value can be handed to C APIs in place), then
// `extra_len` bytes (for a string with escapes: its unescaped text and a NUL), then, at the
// next 8-byte boundary, an EntryTrailer. The header holds what a lookup checks and what a
// read returns; the trailer what only snapshots and the writer need.
struct EntryHeader {
    std::uint32_t key_len;
    std::uint32_t value_len;
    std::uint8_t ns;  // a Namespace
    std::uint8_t flags;
    std::uint8_t category_len;
    std::uint8_t scalar_type;  // a ScalarType
    std::uint32_t extra_len;
    std::uint64_t scalar;    // see ScalarType
    std::uint64_t revision;  // the revision that wrote this entry
};

struct EntryTrailer {
    std::uint64_t prev_offset;  // the previous entry of the same key, 0 if none; < own offset
    std::uint64_t hash;         // of (namespace, key), never 0
    std::uint64_t checksum;     // of key, category and value bytes (detail::hash_bytes)
};

static_assert(sizeof(SegmentHeader) <= kHeaderSize);
static_assert(offsetof(SegmentHeader, version) == 8);
static_assert(offsetof(SegmentHeader, seq) == 64);
static_assert(offsetof(SegmentHeader, notify) == 128);
static_assert(offsetof(SegmentHeader, heartbeat_ns) == 192);
static_assert(sizeof(CopyHeader) == kCacheLine);
static_assert(sizeof(Slot) == 8);
static_assert(sizeof(EntryHeader) == 32);
static_assert(sizeof(EntryTrailer) == 24);
static_assert(kHeaderSize % kEntryAlign == 0 && kEntryAlign % 8 == 0);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);

// Incompatible builds (different sizes or offsets) refuse to share a segment even when
// someone forgot to bump kVersion.
inline constexpr std::uint32_t kFingerprint = static_cast<std::uint32_t>(
    sizeof(SegmentHeader) ^ (sizeof(CopyHeader) << 8) ^ (sizeof(Slot) << 12) ^
    (sizeof(EntryHeader) << 16) ^ (offsetof(SegmentHeader, heartbeat_ns) << 20) ^
    (offsetof(EntryHeader, revision) << 24) ^ (sizeof(EntryTrailer) << 26) ^ (kEntryAlign << 1) ^
    kOffsetBits);

constexpr std::uint64_t align_up(std::uint64_t n, std::uint64_t to) noexcept {
    return (n + (to - 1)) & ~(to - 1);
}

// Where an entry's trailer starts, from the entry's start.
constexpr std::uint64_t trailer_at(std::uint64_t key_len, std::uint64_t category_len,
                                   std::uint64_t value_len, std::uint64_t extra_len) noexcept {
    return align_up(sizeof(EntryHeader) + key_len + category_len + value_len + 1 + extra_len, 8);
}

// Bytes an entry takes in the arena, or 0 if the lengths cannot be described.
constexpr std::uint64_t entry_size(std::uint64_t key_len, std::uint64_t category_len,
                                   std::uint64_t value_len, std::uint64_t extra_len = 0) noexcept {
    if (key_len > kMaxKeyLen || category_len > kMaxCategoryLen || value_len > kMaxValueLen ||
        extra_len > kMaxValueLen) {
        return 0;
    }
    return align_up(trailer_at(key_len, category_len, value_len, extra_len) + sizeof(EntryTrailer),
                    kEntryAlign);
}

constexpr std::uint64_t copy_bytes_for(std::uint64_t slot_count) noexcept {
    return sizeof(CopyHeader) + slot_count * sizeof(Slot);
}

// /dev/shm/<name>.waiters: one page beside the segment, created by the agent (mode 0660:
// the readers' group may write it) and kept across segments and agent restarts. A reader
// about to sleep on `notify` first raises `sleep_until_ns` to the CLOCK_MONOTONIC time its
// sleep ends at the latest; the writer wakes sleepers only while that time is ahead, so a
// publish with nobody waiting makes no system call. The segment itself stays read-only.
struct WaitersPage {
    std::uint64_t magic;  // kWaitersMagic
    std::uint32_t version;
    std::uint32_t reserved;
    alignas(kCacheLine) std::uint64_t sleep_until_ns;
};

inline constexpr std::uint64_t kWaitersMagic = 0x5354494157585559ULL;  // "YUXWAITS"
inline constexpr std::uint32_t kWaitersVersion = 1;
inline constexpr std::size_t kWaitersSize = 4096;
static_assert(sizeof(WaitersPage) <= kWaitersSize);
static_assert(offsetof(WaitersPage, sleep_until_ns) == 64);

}  // namespace layout
}  // namespace yuxi::config
