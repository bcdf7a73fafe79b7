// yuxi::config::Value (a value read in place, keeping its mapping alive) and
// yuxi::config::Snapshot (every read at one revision). Include client.hpp, which has the
// Client that makes them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "yuxi/config/detail/mapping.hpp"
#include "yuxi/config/detail/reads.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config {

// A value in the segment, read in place. It keeps the mapping it points into alive, so
// the view stays valid however long it is held, whatever the agent does meanwhile, and it
// may be handed to another thread.
class Value {
  public:
    Value() = default;
    Value(std::shared_ptr<const detail::Mapping> map, std::string_view data,
          std::string_view category, std::uint64_t revision) noexcept
        : map_(std::move(map)), data_(data), category_(category), revision_(revision) {}
    // A layout-2 entry, with the scalar the agent decoded from it.
    Value(std::shared_ptr<const detail::Mapping> map, const layout::EntryHeader* e) noexcept
        : map_(std::move(map)),
          data_(detail::value_of(e)),
          category_(detail::payload(e) + e->key_len, e->category_len),
          revision_(e->revision),
          entry_(e) {}

    std::string_view data() const noexcept { return data_; }
    const char* c_str() const noexcept { return data_.data(); }  // NUL-terminated in place
    std::size_t size() const noexcept { return data_.size(); }
    std::string str() const { return std::string(data_); }
    std::string_view category() const noexcept { return category_; }
    std::uint64_t revision() const noexcept { return revision_; }  // that last wrote it

    // The value as T (bool, std::int64_t, double, or std::string_view: a JSON string
    // unescaped, valid as long as this Value), or nothing if the JSON does not hold a T.
    // Reads the scalar the agent stored beside the text; parses only a layout-1 entry.
    template <class T>
    std::optional<T> as() const noexcept {
        static_assert(detail::kTypedScalar<T> || std::is_same_v<T, std::string_view>,
                      "Value::as supports bool, std::int64_t, double and std::string_view");
        if (entry_ != nullptr) {
            return detail::scalar_as<T>(entry_);
        }
        return detail::text_as<T>(data_);
    }

    // What the agent decoded (none for a layout-1 entry, whose text must be parsed).
    layout::ScalarType scalar_type() const noexcept {
        return entry_ != nullptr ? static_cast<layout::ScalarType>(entry_->scalar_type)
                                 : layout::ScalarType::none;
    }

  private:
    std::shared_ptr<const detail::Mapping> map_;
    std::string_view data_;
    std::string_view category_;
    std::uint64_t revision_ = 0;
    const layout::EntryHeader* entry_ = nullptr;  // layout 2 only
};

// An entry as listed by Snapshot::for_each.
struct EntryInfo {
    Namespace ns;
    std::string_view key;
    std::string_view value;
    std::string_view category;
    std::uint64_t revision;
};

// A consistent view of the whole segment at one revision: every read through it returns
// the state of that revision, however the segment changes meanwhile. Cheap to take (one
// reference count and a few loads); holds its mapping alive while it lives.
class Snapshot {
  public:
    Snapshot(std::shared_ptr<const detail::Mapping> map, std::uint64_t revision) noexcept
        : map_(std::move(map)), revision_(revision) {}

    std::uint64_t revision() const noexcept { return revision_; }

    std::optional<std::string> get(std::string_view key, Namespace ns = Namespace::config) const {
        const Found f = lookup(ns, key);
        if (!f.live()) {
            return std::nullopt;
        }
        return std::optional<std::string>(std::in_place, f.value);
    }

    std::optional<std::string> metadata(std::string_view name) const {
        return get(name, Namespace::metadata);
    }

    std::optional<Value> view(std::string_view key, Namespace ns = Namespace::config) const {
        const Found f = lookup(ns, key);
        if (!f.live()) {
            return std::nullopt;
        }
        if (f.entry != nullptr) {
            return std::optional<Value>(std::in_place, map_, f.entry);
        }
        return std::optional<Value>(std::in_place, map_, f.value, f.category, f.revision);
    }

    // Calls fn(EntryInfo) for every live entry of `ns` whose key starts with `prefix`,
    // in no particular order. Returns false if the segment turned out to be corrupt.
    template <class Fn>
    bool for_each(Namespace ns, std::string_view prefix, Fn&& fn) const {
        if (map_->legacy()) {
            return for_each_in(map_->legacy_view(), ns, prefix, fn);
        }
        return for_each_in(map_->view(), ns, prefix, fn);
    }

  private:
    // An entry at this snapshot's revision, whichever layout holds it.
    struct Found {
        detail::SegmentView::Status status = detail::SegmentView::Status::not_found;
        const layout::EntryHeader* entry = nullptr;  // layout 2
        std::string_view value;
        std::string_view category;
        std::uint64_t revision = 0;

        bool live() const noexcept { return status == detail::SegmentView::Status::found; }
    };

    // The entry of `key` at this snapshot's revision; `found` only if it is live.
    Found lookup(Namespace ns, std::string_view key) const noexcept {
        if (map_->legacy()) [[unlikely]] {
            return lookup_in(map_->legacy_view(), ns, key);
        }
        return lookup_in(map_->view(), ns, key);
    }

    template <class View>
    Found lookup_in(const View& v, Namespace ns, std::string_view key) const noexcept {
        Found f;
        const auto newest = v.find_newest(ns, key, View::hash_of(ns, key));
        f.status = newest.status;
        if (newest.status != detail::SegmentView::Status::found) {
            return f;
        }
        const auto r = v.at_revision(newest.entry, revision_);
        f.status = r.status;
        if (r.status == detail::SegmentView::Status::found) {
            if (r.entry.tombstone()) {
                f.status = detail::SegmentView::Status::not_found;
                return f;
            }
            if constexpr (std::is_same_v<View, detail::SegmentView>) {
                f.entry = r.entry.header;
            }
            f.value = r.entry.value;
            f.category = r.entry.category;
            f.revision = r.entry.revision();
        }
        return f;
    }

    template <class View, class Fn>
    bool for_each_in(const View& v, Namespace ns, std::string_view prefix, Fn& fn) const {
        bool ok = true;
        for (std::uint64_t i = 0, n = v.slot_count(); i < n; ++i) {
            const auto newest = v.slot_entry(i);
            if (newest.status == detail::SegmentView::Status::not_found) {
                continue;
            }
            if (newest.status == detail::SegmentView::Status::corrupt) {
                ok = false;
                continue;
            }
            if (newest.entry.ns() != ns || newest.entry.key.substr(0, prefix.size()) != prefix) {
                continue;
            }
            const auto r = v.at_revision(newest.entry, revision_);
            if (r.status == detail::SegmentView::Status::corrupt) {
                ok = false;
            } else if (r.status == detail::SegmentView::Status::found && !r.entry.tombstone()) {
                fn(EntryInfo{ns, r.entry.key, r.entry.value, r.entry.category, r.entry.revision()});
            }
        }
        return ok;
    }

    std::shared_ptr<const detail::Mapping> map_;
    std::uint64_t revision_;
};

}  // namespace yuxi::config
