// The bounds-checked reader of layout version 1 (detail/layout_v1.hpp), the previous
// release's, kept so that this client reads an older agent's segment. Same rules as
// segment_view.hpp: every offset and length is checked before use, every loop is bounded.
// attach() is the previous release's, message for message: it is what a client of that
// release says when it meets a newer segment. tests/fuzz/segment_fuzz.cpp drives it too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "yuxi/config/detail/atomic.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/layout_v1.hpp"
#include "yuxi/config/detail/segment_view.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::detail::v1 {

namespace lv1 = layout::v1;

// A decoded entry; the views point into the mapping.
struct EntryRef {
    const lv1::EntryHeader* header = nullptr;
    std::uint64_t offset = 0;
    std::string_view key;
    std::string_view category;
    std::string_view value;  // followed by a NUL in the mapping

    bool tombstone() const noexcept { return (header->flags & layout::kEntryTombstone) != 0; }
    std::uint64_t revision() const noexcept { return header->revision; }
    Namespace ns() const noexcept { return static_cast<Namespace>(header->ns); }
    std::uint64_t prev_offset() const noexcept { return header->prev_offset; }
    std::uint64_t hash() const noexcept { return header->hash; }
};

class SegmentView {
  public:
    using Status = detail::SegmentView::Status;

    struct Lookup {
        Status status = Status::not_found;
        EntryRef entry;
    };

    SegmentView() = default;

    // The key hash of this layout.
    static std::uint64_t hash_of(Namespace ns, std::string_view key) noexcept {
        return v1::key_hash(ns, key);
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
        if (h->version != lv1::kVersion) {
            error = "segment written by layout v" + std::to_string(h->version) +
                    ", this client reads v" + std::to_string(lv1::kVersion) + ": upgrade the " +
                    (h->version > lv1::kVersion ? "client" : "agent");
            return false;
        }
        if (h->fingerprint != lv1::kFingerprint) {
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
        mask_ = h->slot_count - 1;
        probe_limit_ = h->slot_count < layout::kMaxProbe ? h->slot_count : layout::kMaxProbe;
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

    const lv1::Slot* slots(unsigned copy) const noexcept {
        return reinterpret_cast<const lv1::Slot*>(copy_base(copy) + sizeof(layout::CopyHeader));
    }

    std::uint64_t slot_count() const noexcept { return mask_ + 1; }

    // The newest entry of `key` in index copy `copy` (0 or 1).
    Lookup find(unsigned copy, Namespace ns, std::string_view key,
                std::uint64_t hash) const noexcept {
        const lv1::Slot* table = slots(copy);
        std::uint64_t i = hash & mask_;
        for (std::uint64_t n = 0; n < probe_limit_; ++n, i = (i + 1) & mask_) {
            const std::uint64_t h = load_acquire(table[i].hash);
            if (h == 0) {
                return {};
            }
            if (h != hash) {
                continue;
            }
            Lookup r = match(load_acquire(table[i].offset), ns, key);
            if (r.status != Status::not_found) {
                return r;
            }
        }
        return {probe_limit_ == mask_ + 1 ? Status::not_found : Status::corrupt, {}};
    }

    // Like find, but reads the slot in both copies at each probe position and keeps the
    // newer entry. Both copies receive the same slot operations in the same order, so a
    // key sits at the same position in each; while one copy is being written the other
    // is whole, so the newer of the two is at least as new as any published revision.
    // This needs no latch and never retries: snapshots and iteration use it.
    Lookup find_newest(Namespace ns, std::string_view key, std::uint64_t hash) const noexcept {
        const lv1::Slot* t0 = slots(0);
        const lv1::Slot* t1 = slots(1);
        std::uint64_t i = hash & mask_;
        for (std::uint64_t n = 0; n < probe_limit_; ++n, i = (i + 1) & mask_) {
            const std::uint64_t off = newest_offset(t0[i], t1[i], hash);
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
        const std::uint64_t h0 = load_acquire(slots(0)[i].hash);
        const std::uint64_t h1 = load_acquire(slots(1)[i].hash);
        const std::uint64_t h = h0 != 0 ? h0 : h1;
        if (h == 0) {
            return {};
        }
        const std::uint64_t off = newest_offset(slots(0)[i], slots(1)[i], h);
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
            const std::uint64_t prev = e.header->prev_offset;
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
        if (offset < arena_begin_ || offset % lv1::kAlign != 0 || offset >= arena_end_ ||
            arena_end_ - offset < sizeof(lv1::EntryHeader)) {
            return false;
        }
        const auto* h = reinterpret_cast<const lv1::EntryHeader*>(base_ + offset);
        const std::uint64_t bytes = lv1::entry_size(h->key_len, h->category_len, h->value_len);
        if (bytes == 0 || bytes > arena_end_ - offset || h->ns > 1) {
            return false;
        }
        const char* p = reinterpret_cast<const char*>(h + 1);
        out.header = h;
        out.offset = offset;
        out.key = std::string_view(p, h->key_len);
        out.category = std::string_view(p + h->key_len, h->category_len);
        out.value = std::string_view(p + h->key_len + h->category_len, h->value_len);
        return true;
    }

  private:
    static constexpr std::uint64_t kEmpty = 0;
    static constexpr std::uint64_t kOther = 1;  // offsets are >= kHeaderSize, never 1

    const unsigned char* copy_base(unsigned copy) const noexcept {
        return base_ + header_->index_offset + copy * header_->copy_bytes;
    }

    static std::uint64_t newest_offset(const lv1::Slot& a, const lv1::Slot& b,
                                       std::uint64_t hash) noexcept {
        const std::uint64_t ha = load_acquire(a.hash);
        const std::uint64_t hb = load_acquire(b.hash);
        if (ha == 0 && hb == 0) {
            return kEmpty;
        }
        if (ha != hash && hb != hash) {
            return kOther;
        }
        const std::uint64_t oa = ha == hash ? load_acquire(a.offset) : 0;
        const std::uint64_t ob = hb == hash ? load_acquire(b.offset) : 0;
        // Entries are appended, so within one segment a larger offset is a newer entry.
        return oa > ob ? oa : ob;
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
        if (h.total_size > size || n == 0 || (n & (n - 1)) != 0 || n > (1ULL << 40)) {
            return false;
        }
        if (h.copy_bytes != lv1::copy_bytes_for(n) || h.index_offset < layout::kHeaderSize ||
            h.index_offset % layout::kCacheLine != 0) {
            return false;
        }
        if (h.index_offset > h.total_size || 2 * h.copy_bytes > h.total_size - h.index_offset) {
            return false;
        }
        const std::uint64_t index_end = h.index_offset + 2 * h.copy_bytes;
        return h.arena_offset >= index_end && h.arena_offset % lv1::kAlign == 0 &&
               h.arena_offset <= h.total_size && h.arena_size <= h.total_size - h.arena_offset;
    }

    const unsigned char* base_ = nullptr;
    std::size_t size_ = 0;
    const layout::SegmentHeader* header_ = nullptr;
    std::uint64_t arena_begin_ = 0;
    std::uint64_t arena_end_ = 0;
    std::uint64_t mask_ = 0;
    std::uint64_t probe_limit_ = 0;
};

}  // namespace yuxi::config::detail::v1
