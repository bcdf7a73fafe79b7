// A bounds-checked reader over the bytes of a segment: the one place that interprets
// them. Every offset and length read from the segment is checked against the mapping
// before use, and every loop is bounded, so a corrupt or hostile segment yields
// SegmentView::Status::corrupt, never a crash, a hang or an out-of-bounds read.
// The fuzz target tests/fuzz/segment_fuzz.cpp drives exactly this code.
//
// find_hit() is the lookup of the read path: it returns the entry's header only, and
// everything a read needs is a few arithmetic operations away from it (see Hit). The
// richer EntryRef is for snapshots, listings and the writer.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "yuxi/config/detail/atomic.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/layout.hpp"

#define YUXI_CONFIG_INLINE inline __attribute__((always_inline))

namespace yuxi::config::detail {

// The payload of an entry (key, category, value, NUL, extra) starts after its header.
YUXI_CONFIG_INLINE const char* payload(const layout::EntryHeader* h) noexcept {
    return reinterpret_cast<const char*>(h + 1);
}

YUXI_CONFIG_INLINE std::string_view value_of(const layout::EntryHeader* h) noexcept {
    return {payload(h) + h->key_len + h->category_len, h->value_len};
}

YUXI_CONFIG_INLINE bool is_tombstone(const layout::EntryHeader* h) noexcept {
    return (h->flags & layout::kEntryTombstone) != 0;
}

// The unescaped text of a string entry, or nothing; the range is checked against the entry.
inline bool scalar_text(const layout::EntryHeader* h, std::string_view& out) noexcept {
    if (h->scalar_type != static_cast<std::uint8_t>(layout::ScalarType::string)) {
        return false;
    }
    const std::uint64_t at = h->scalar >> 32;
    const std::uint64_t len = h->scalar & 0xffffffffULL;
    const std::uint64_t payload_len = std::uint64_t{h->key_len} + h->category_len + h->value_len +
                                      1 + std::uint64_t{h->extra_len};
    if (at > payload_len || len > payload_len - at) {
        return false;
    }
    out = std::string_view(payload(h) + at, len);
    return true;
}

// A decoded entry; the views point into the mapping.
struct EntryRef {
    const layout::EntryHeader* header = nullptr;
    std::uint64_t offset = 0;
    std::string_view key;
    std::string_view category;
    std::string_view value;  // followed by a NUL in the mapping

    bool tombstone() const noexcept { return is_tombstone(header); }
    std::uint64_t revision() const noexcept { return header->revision; }
    Namespace ns() const noexcept { return static_cast<Namespace>(header->ns); }
    const layout::EntryTrailer& trailer() const noexcept {
        return *reinterpret_cast<const layout::EntryTrailer*>(
            reinterpret_cast<const char*>(header) +
            layout::trailer_at(header->key_len, header->category_len, header->value_len,
                               header->extra_len));
    }
    std::uint64_t prev_offset() const noexcept { return trailer().prev_offset; }
    std::uint64_t hash() const noexcept { return trailer().hash; }
};

class SegmentView {
  public:
    enum class Status { found, not_found, corrupt };

    struct Lookup {
        Status status = Status::not_found;
        EntryRef entry;
    };

    // What the read path gets back: the entry's header when `status` is found. Small enough
    // to travel in two registers.
    struct Hit {
        const layout::EntryHeader* entry = nullptr;
        Status status = Status::not_found;

        bool live() const noexcept { return status == Status::found && !is_tombstone(entry); }
    };

    SegmentView() = default;

    // The key hash of this layout.
    static std::uint64_t hash_of(Namespace ns, std::string_view key) noexcept {
        return key_hash(ns, key);
    }

    // Checks the header against the mapping. On failure returns false and says why in
    // `error`, in words a person can act on.
    [[nodiscard]] bool attach(const void* base, std::size_t size, std::string& error) noexcept {
        base_ = static_cast<const unsigned char*>(base);
        size_ = size;
        header_ = nullptr;
        if (base == nullptr || size < layout::kHeaderSize) {
            error = "segment is truncated: " + std::to_string(size) + " bytes, smaller than its " +
                    std::to_string(layout::kHeaderSize) + "-byte header";
            return false;
        }
        const auto* h = static_cast<const layout::SegmentHeader*>(base);
        if (h->magic != layout::kMagic) {
            error = "not a yuxi-config segment (bad magic number)";
            return false;
        }
        if (h->version != layout::kVersion) {
            error = "segment written by layout v" + std::to_string(h->version) +
                    ", this client reads v" + std::to_string(layout::kVersion) + ": upgrade the " +
                    (h->version > layout::kVersion ? "client" : "agent");
            return false;
        }
        if (h->fingerprint != layout::kFingerprint) {
            error =
                "segment layout fingerprint differs from this build's (same version, "
                "different struct sizes): rebuild the client and the agent from one release";
            return false;
        }
        if (!geometry_ok(*h, size)) {
            error = "segment is corrupt: header sizes do not fit the " + std::to_string(size) +
                    "-byte mapping";
            return false;
        }
        header_ = h;
        arena_begin_ = h->arena_offset;
        arena_end_ = h->arena_offset + h->arena_size;
        last_entry_ = h->arena_size - layout::kEntryAlign;
        mask_ = h->slot_count - 1;
        probe_limit_ = h->slot_count < layout::kMaxProbe ? h->slot_count : layout::kMaxProbe;
        slots_[0] =
            reinterpret_cast<const layout::Slot*>(copy_base(0) + sizeof(layout::CopyHeader));
        slots_[1] =
            reinterpret_cast<const layout::Slot*>(copy_base(1) + sizeof(layout::CopyHeader));
        return true;
    }

    bool attached() const noexcept { return header_ != nullptr; }
    const layout::SegmentHeader& header() const noexcept { return *header_; }
    const unsigned char* base() const noexcept { return base_; }
    std::size_t size() const noexcept { return size_; }

    std::uint64_t seq_acquire() const noexcept { return load_acquire(header_->seq); }
    std::uint64_t seq_relaxed() const noexcept { return load_relaxed(header_->seq); }
    bool retired() const noexcept { return load_acquire(header_->retired) != 0; }

    const layout::CopyHeader& copy_header(unsigned copy) const noexcept {
        return *reinterpret_cast<const layout::CopyHeader*>(copy_base(copy));
    }

    const layout::Slot* slots(unsigned copy) const noexcept { return slots_[copy & 1]; }

    std::uint64_t slot_count() const noexcept { return mask_ + 1; }

    // The newest entry of `key` in index copy `copy` (0 or 1), for the read path.
    YUXI_CONFIG_INLINE Hit find_hit(unsigned copy, Namespace ns, std::string_view key,
                                    std::uint64_t hash) const noexcept {
        const layout::Slot* table = slots_[copy & 1];
        const std::uint64_t tag = layout::slot_tag(hash);
        std::uint64_t i = hash & mask_;
        for (std::uint64_t n = 0; n < probe_limit_; ++n, i = (i + 1) & mask_) {
            const std::uint64_t w = load_acquire(table[i].word);
            if (w == 0) {
                return {nullptr, Status::not_found};
            }
            if ((w >> layout::kOffsetBits) != tag) [[unlikely]] {
                continue;
            }
            const layout::EntryHeader* e = checked(w & layout::kOffsetMask);
            if (e == nullptr) [[unlikely]] {
                return {nullptr, Status::corrupt};
            }
            if (e->ns == static_cast<std::uint8_t>(ns) && e->key_len == key.size() &&
                same_bytes(payload(e), key.data(), key.size())) [[likely]] {
                return {e, Status::found};
            }
        }
        return {nullptr, probe_limit_ == mask_ + 1 ? Status::not_found : Status::corrupt};
    }

    // find_hit with the entry decoded.
    Lookup find(unsigned copy, Namespace ns, std::string_view key,
                std::uint64_t hash) const noexcept {
        const Hit h = find_hit(copy, ns, key, hash);
        Lookup r;
        r.status = h.status;
        if (h.status == Status::found) {
            r.entry = ref(h.entry);
        }
        return r;
    }

    // Like find, but reads the slot in both copies at each probe position and keeps the
    // newer entry. Both copies receive the same slot operations in the same order, so a
    // key sits at the same position in each; while one copy is being written the other
    // is whole, so the newer of the two is at least as new as any published revision.
    // This needs no latch and never retries: snapshots and iteration use it.
    Lookup find_newest(Namespace ns, std::string_view key, std::uint64_t hash) const noexcept {
        const std::uint64_t tag = layout::slot_tag(hash);
        std::uint64_t i = hash & mask_;
        for (std::uint64_t n = 0; n < probe_limit_; ++n, i = (i + 1) & mask_) {
            const std::uint64_t off = newest_offset(i, tag);
            if (off == kEmpty) {
                return {};
            }
            if (off == kOther) {
                continue;
            }
            Lookup r = match(off, ns, key);
            if (r.status != Status::not_found) {
                return r;
            }
        }
        return {probe_limit_ == mask_ + 1 ? Status::not_found : Status::corrupt, {}};
    }

    // The newest entry of slot `i` across both copies (see find_newest), or nothing.
    Lookup slot_entry(std::uint64_t i) const noexcept {
        const std::uint64_t w0 = load_acquire(slots_[0][i].word);
        const std::uint64_t w1 = load_acquire(slots_[1][i].word);
        const std::uint64_t w = w0 != 0 ? w0 : w1;
        if (w == 0) {
            return {};
        }
        const std::uint64_t off = newest_offset(i, w >> layout::kOffsetBits);
        if (off == kEmpty || off == kOther) {
            return {Status::corrupt, {}};
        }
        Lookup r;
        r.status = decode(off, r.entry) ? Status::found : Status::corrupt;
        return r;
    }

    // Walks back from `newest` to the entry of the same key at `revision`: the first with
    // revision <= `revision`. Offsets strictly decrease along the chain, so it ends.
    Lookup at_revision(const EntryRef& newest, std::uint64_t revision) const noexcept {
        EntryRef e = newest;
        for (;;) {
            if (e.header->revision <= revision) {
                return {Status::found, e};
            }
            const std::uint64_t prev = e.prev_offset();
            if (prev == 0) {
                return {};
            }
            if (prev >= e.offset) {
                return {Status::corrupt, {}};
            }
            EntryRef p;
            if (!decode(prev, p) || p.key != e.key || p.header->ns != e.header->ns) {
                return {Status::corrupt, {}};
            }
            e = p;
        }
    }

    // Decodes the entry at `offset`, checking that all of it lies inside the arena.
    bool decode(std::uint64_t offset, EntryRef& out) const noexcept {
        const layout::EntryHeader* h = checked(offset);
        if (h == nullptr) {
            return false;
        }
        out = ref(h);
        return true;
    }

  private:
    static constexpr std::uint64_t kEmpty = 0;
    static constexpr std::uint64_t kOther = 1;  // offsets are >= kHeaderSize, never 1

    const unsigned char* copy_base(unsigned copy) const noexcept {
        return base_ + header_->index_offset + copy * header_->copy_bytes;
    }

    // The header of the entry at `offset` if all of the entry lies inside the arena, with
    // lengths the format can describe and a known namespace; else nullptr.
    YUXI_CONFIG_INLINE const layout::EntryHeader* checked(std::uint64_t offset) const noexcept {
        // Unsigned: an offset before the arena wraps around and fails too. An entry takes
        // at least kEntryAlign bytes.
        const std::uint64_t at = offset - arena_begin_;
        if (at > last_entry_ || (offset & (layout::kEntryAlign - 1)) != 0) [[unlikely]] {
            return nullptr;
        }
        const auto* h = reinterpret_cast<const layout::EntryHeader*>(base_ + offset);
        const std::uint64_t bytes =
            layout::entry_size(h->key_len, h->category_len, h->value_len, h->extra_len);
        if (bytes == 0 || bytes > arena_end_ - offset || h->ns > 1 ||
            h->scalar_type > static_cast<std::uint8_t>(layout::ScalarType::string)) [[unlikely]] {
            return nullptr;
        }
        return h;
    }

    EntryRef ref(const layout::EntryHeader* h) const noexcept {
        EntryRef e;
        const char* p = payload(h);
        e.header = h;
        e.offset = static_cast<std::uint64_t>(reinterpret_cast<const unsigned char*>(h) - base_);
        e.key = std::string_view(p, h->key_len);
        e.category = std::string_view(p + h->key_len, h->category_len);
        e.value = std::string_view(p + h->key_len + h->category_len, h->value_len);
        return e;
    }

    // The larger offset of slot `i`'s two copies among those carrying `tag`; kEmpty if
    // both are empty, kOther if neither carries the tag.
    std::uint64_t newest_offset(std::uint64_t i, std::uint64_t tag) const noexcept {
        const std::uint64_t a = load_acquire(slots_[0][i].word);
        const std::uint64_t b = load_acquire(slots_[1][i].word);
        if (a == 0 && b == 0) {
            return kEmpty;
        }
        const bool ma = a != 0 && (a >> layout::kOffsetBits) == tag;
        const bool mb = b != 0 && (b >> layout::kOffsetBits) == tag;
        if (!ma && !mb) {
            return kOther;
        }
        const std::uint64_t oa = ma ? a & layout::kOffsetMask : 0;
        const std::uint64_t ob = mb ? b & layout::kOffsetMask : 0;
        // Entries are appended, so within one segment a larger offset is a newer entry. A
        // hostile offset of 0 or 1 must not pass for kEmpty or kOther: it is corrupt.
        const std::uint64_t off = oa > ob ? oa : ob;
        return off <= kOther ? layout::kHeaderSize - 1 : off;
    }

    Lookup match(std::uint64_t offset, Namespace ns, std::string_view key) const noexcept {
        Lookup r;
        if (!decode(offset, r.entry)) {
            r.status = Status::corrupt;
            return r;
        }
        if (r.entry.header->ns == static_cast<std::uint8_t>(ns) && r.entry.key == key) {
            r.status = Status::found;
        } else {
            r.status = Status::not_found;
        }
        return r;
    }

    static bool geometry_ok(const layout::SegmentHeader& h, std::size_t size) noexcept {
        const std::uint64_t n = h.slot_count;
        if (h.total_size > size || h.total_size > layout::kMaxSegmentBytes || n == 0 ||
            (n & (n - 1)) != 0 || n > (1ULL << 36)) {
            return false;
        }
        if (h.copy_bytes != layout::copy_bytes_for(n) || h.index_offset < layout::kHeaderSize ||
            h.index_offset % layout::kCacheLine != 0) {
            return false;
        }
        if (h.index_offset > h.total_size || 2 * h.copy_bytes > h.total_size - h.index_offset) {
            return false;
        }
        const std::uint64_t index_end = h.index_offset + 2 * h.copy_bytes;
        return h.arena_offset >= index_end && h.arena_offset % layout::kEntryAlign == 0 &&
               h.arena_offset <= h.total_size && h.arena_size <= h.total_size - h.arena_offset &&
               h.arena_size >= layout::kEntryAlign;
    }

    const unsigned char* base_ = nullptr;
    std::size_t size_ = 0;
    const layout::SegmentHeader* header_ = nullptr;
    const layout::Slot* slots_[2] = {nullptr, nullptr};
    std::uint64_t arena_begin_ = 0;
    std::uint64_t arena_end_ = 0;
    std::uint64_t last_entry_ = 0;  // the arena offset past which no entry fits
    std::uint64_t mask_ = 0;
    std::uint64_t probe_limit_ = 0;
};

}  // namespace yuxi::config::detail
