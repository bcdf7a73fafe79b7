// The lookups behind Client, Pin and Snapshot: the seqcount latch over a layout-2 view
// (the read path, kept small so that it inlines at -O2 as at -O3), typed scalars, and
// the slower, out-of-line reads of a layout-1 segment written by an older agent.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "yuxi/config/detail/json_text.hpp"
#include "yuxi/config/detail/segment_view.hpp"
#include "yuxi/config/detail/segment_view_v1.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::detail {

// A writer that moves `seq` this often is hostile or broken; after this many attempts a
// reader keeps what it found, which is still an entry that was published.
inline constexpr int kMaxRetries = 1024;

// The newest entry of `key` through the latch: load `seq`, look up in copy `seq & 1`,
// re-check `seq`. The value bytes are read after the re-check by the caller: an entry
// reached through an acquire load of its slot never changes again.
YUXI_CONFIG_INLINE SegmentView::Hit latched_find(const SegmentView& v, Namespace ns,
                                                 std::string_view key,
                                                 std::uint64_t hash) noexcept {
    SegmentView::Hit r;
    for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
        const std::uint64_t s = v.seq_acquire();
        r = v.find_hit(static_cast<unsigned>(s & 1), ns, key, hash);
        if (v.seq_relaxed() == s) [[likely]] {
            return r;
        }
    }
    return r;
}

template <class View>
std::uint64_t latched_revision(const View& v) noexcept {
    std::uint64_t rev = 0;
    for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
        const std::uint64_t s = v.seq_acquire();
        rev = load_acquire(v.copy_header(static_cast<unsigned>(s & 1)).revision);
        if (v.seq_relaxed() == s) {
            break;
        }
    }
    return rev;
}

// The scalar types a typed read offers; std::string_view only inside a Pin.
template <class T>
inline constexpr bool kTypedScalar =
    std::is_same_v<T, bool> || std::is_same_v<T, std::int64_t> || std::is_same_v<T, double>;

// The stored scalar of a live layout-2 entry as T, or nothing if it holds no T. The same
// answer as json_as<T> on the entry's text: the writer classifies with json_as.
template <class T>
YUXI_CONFIG_INLINE std::optional<T> scalar_as(const layout::EntryHeader* h) noexcept {
    const auto type = static_cast<layout::ScalarType>(h->scalar_type);
    if constexpr (std::is_same_v<T, bool>) {
        if (type == layout::ScalarType::boolean) {
            return h->scalar != 0;
        }
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
        if (type == layout::ScalarType::integer) {
            return std::bit_cast<std::int64_t>(h->scalar);
        }
    } else if constexpr (std::is_same_v<T, double>) {
        if (type == layout::ScalarType::real) {
            return std::bit_cast<double>(h->scalar);
        }
        if (type == layout::ScalarType::integer) {
            return static_cast<double>(std::bit_cast<std::int64_t>(h->scalar));
        }
    } else {
        static_assert(std::is_same_v<T, std::string_view>);
        std::string_view s;
        if (scalar_text(h, s)) {
            return s;
        }
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Layout 1. A newer client reads an older agent's segment with these, one call out of
// line per read, so that the layout-2 read path stays small.

struct LegacyHit {
    SegmentView::Status status = SegmentView::Status::not_found;  // not_found for tombstones
    std::string_view value;
    std::string_view category;
    std::uint64_t revision = 0;

    bool live() const noexcept { return status == SegmentView::Status::found; }
};

inline LegacyHit legacy_hit(const v1::SegmentView::Lookup& r) noexcept {
    LegacyHit h;
    h.status = r.status;
    if (r.status == SegmentView::Status::found) {
        if (r.entry.tombstone()) {
            h.status = SegmentView::Status::not_found;
        } else {
            h.value = r.entry.value;
            h.category = r.entry.category;
            h.revision = r.entry.revision();
        }
    }
    return h;
}

[[gnu::noinline, gnu::cold]] inline LegacyHit legacy_find(const v1::SegmentView& v, Namespace ns,
                                                          std::string_view key) noexcept {
    const std::uint64_t hash = v1::key_hash(ns, key);
    v1::SegmentView::Lookup r;
    for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
        const std::uint64_t s = v.seq_acquire();
        r = v.find(static_cast<unsigned>(s & 1), ns, key, hash);
        if (v.seq_relaxed() == s) {
            break;
        }
    }
    return legacy_hit(r);
}

// The text's value as T, for a layout-1 entry, which stores no scalar.
template <class T>
std::optional<T> text_as(std::string_view text) noexcept {
    if constexpr (std::is_same_v<T, std::string_view>) {
        text = trim_json(text);
        if (text.size() < 2 || text.front() != '"' || text.back() != '"' ||
            text.find('\\') != std::string_view::npos) {
            return std::nullopt;  // an escaped string has no unescaped copy to point at
        }
        return text.substr(1, text.size() - 2);
    } else {
        return json_as<T>(text);
    }
}

}  // namespace yuxi::config::detail
