// Segment layout version 1, the previous release's: kept so that this client still reads a
// segment written by an older agent (or by this one with --segment-layout 1), and so that
// this agent can still write one for clients built against the older header. The segment
// header and the index copy headers are those of layout.hpp; slots and entries differ.
// Frozen: never change anything here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "yuxi/config/layout.hpp"

namespace yuxi::config::layout::v1 {

inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kAlign = 8;

// hash == 0 means empty. A slot is claimed by storing `offset`, then `hash` (both release).
struct Slot {
    std::uint64_t hash;
    std::uint64_t offset;  // of the newest entry of the key, from the segment start
};

// An entry in the arena, followed by key bytes, category bytes, value bytes and a NUL,
// padded to kAlign.
struct EntryHeader {
    std::uint64_t hash;         // of (namespace, key), never 0
    std::uint64_t revision;     // the revision that wrote this entry
    std::uint64_t prev_offset;  // the previous entry of the same key, 0 if none; < own offset
    std::uint64_t value_len;
    std::uint64_t checksum;  // of key, category and value bytes (detail::hash_bytes)
    std::uint32_t key_len;
    std::uint8_t ns;  // a Namespace
    std::uint8_t flags;
    std::uint8_t category_len;
    std::uint8_t reserved;
};

static_assert(sizeof(Slot) == 16);
static_assert(sizeof(EntryHeader) == 48);

inline constexpr std::uint32_t kFingerprint = static_cast<std::uint32_t>(
    sizeof(SegmentHeader) ^ (sizeof(CopyHeader) << 8) ^ (sizeof(Slot) << 12) ^
    (sizeof(EntryHeader) << 16) ^ (offsetof(SegmentHeader, heartbeat_ns) << 20) ^
    (offsetof(EntryHeader, key_len) << 24));
static_assert(kFingerprint == 0x24314100u, "layout v1 is frozen");

constexpr std::uint64_t align_up(std::uint64_t n) noexcept {
    return (n + (kAlign - 1)) & ~static_cast<std::uint64_t>(kAlign - 1);
}

// Bytes an entry takes in the arena, or 0 if the lengths cannot be described.
constexpr std::uint64_t entry_size(std::uint64_t key_len, std::uint64_t category_len,
                                   std::uint64_t value_len) noexcept {
    if (key_len > kMaxKeyLen || category_len > kMaxCategoryLen || value_len > kMaxValueLen) {
        return 0;
    }
    return align_up(sizeof(EntryHeader) + key_len + category_len + value_len + 1);
}

constexpr std::uint64_t copy_bytes_for(std::uint64_t slot_count) noexcept {
    return sizeof(CopyHeader) + slot_count * sizeof(Slot);
}

}  // namespace yuxi::config::layout::v1
