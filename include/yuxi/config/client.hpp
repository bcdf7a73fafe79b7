// yuxi::config::Client — reads configuration and knowledge-base metadata from the
// shared-memory segment that yuxi-config-agent keeps up to date.
//
//   auto cfg = yuxi::config::Client::open();          // $YUXI_CONFIG_SEGMENT or "yuxi-config"
//   std::optional<std::string> raw = cfg.get("embed_model");         // JSON text
//   std::optional<std::string> s = cfg.get_string("embed_model");    // unquoted JSON string
//   std::int64_t k = cfg.get_or<std::int64_t>("top_k", 10);
//   auto kbs = cfg.metadata("global_metadata");                      // JSON text
//   auto snap = cfg.snapshot();       // a consistent view of many keys at one revision
//   cfg.wait_for_change(cfg.revision(), std::chrono::seconds(5));
//
// Values are JSON text, as the source holds them. A missing key is an empty optional;
// only open() throws (SegmentError, with a message a person can act on).
//
// The read path (get, read, view, get_string, get_or, metadata, revision, snapshot reads)
// is noexcept, takes no lock, makes no system call and writes no shared memory: the
// segment is mapped read-only. The one exception is the rare remap after the agent
// replaced the segment (compaction or restart), noticed with one load on the next read.
//
// Thread rules: a Client may be shared by any number of threads; each thread keeps its
// own reference to the current mapping (so readers share no written cache line). Values
// returned by view() and Snapshots keep their mapping alive and may cross threads.
//
// Memory ordering: see layout.hpp. Lookups go through the seqcount latch and re-check the
// sequence after the probe; the value bytes are copied after the re-check, since an
// entry reached through an acquire load of its offset never changes again.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "yuxi/config/detail/json_text.hpp"
#include "yuxi/config/detail/mapping.hpp"
#include "yuxi/config/errors.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config {

// A value in the segment, read in place. It keeps the mapping it points into alive, so
// the view stays valid however long it is held, whatever the agent does meanwhile.
class Value {
  public:
    Value() = default;
    Value(std::shared_ptr<const detail::Mapping> map, const detail::EntryRef& e) noexcept
        : map_(std::move(map)), data_(e.value), category_(e.category), revision_(e.revision()) {}

    std::string_view data() const noexcept { return data_; }
    const char* c_str() const noexcept { return data_.data(); }  // NUL-terminated in place
    std::size_t size() const noexcept { return data_.size(); }
    std::string str() const { return std::string(data_); }
    std::string_view category() const noexcept { return category_; }
    std::uint64_t revision() const noexcept { return revision_; }  // that last wrote it

  private:
    std::shared_ptr<const detail::Mapping> map_;
    std::string_view data_;
    std::string_view category_;
    std::uint64_t revision_ = 0;
};

// Result of Client::read into a caller's buffer.
struct ReadResult {
    enum class Status {
        ok,         // the value is in the buffer, `size` bytes
        not_found,  // no such key
        too_small,  // the buffer is too small; `size` is the length needed
        corrupt,    // the segment is damaged; nothing was copied
    };
    Status status = Status::not_found;
    std::size_t size = 0;
    explicit operator bool() const noexcept { return status == Status::ok; }
};

struct Health {
    std::uint64_t revision = 0;
    std::chrono::nanoseconds heartbeat_age{0};  // since the writer's last heartbeat
    bool writer_alive = false;                  // a process holds the segment's writer lock
    SourceState source_state = SourceState::starting;
    std::chrono::nanoseconds source_state_age{0};
    std::uint64_t entries = 0;        // live keys, both namespaces
    std::uint64_t segment_bytes = 0;  // size of the mapping
    std::uint64_t arena_used = 0;
    std::uint64_t writer_pid = 0;
    bool retired = false;  // this mapping was replaced and could not be remapped yet

    // The writer is alive and beat within `max_age`.
    bool fresh(std::chrono::nanoseconds max_age = std::chrono::seconds(5)) const noexcept {
        return writer_alive && heartbeat_age <= max_age;
    }
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
        const auto r = lookup(ns, key);
        if (r.status != detail::SegmentView::Status::found) {
            return std::nullopt;
        }
        return std::optional<std::string>(std::in_place, r.entry.value);
    }

    std::optional<std::string> metadata(std::string_view name) const {
        return get(name, Namespace::metadata);
    }

    std::optional<Value> view(std::string_view key, Namespace ns = Namespace::config) const {
        const auto r = lookup(ns, key);
        if (r.status != detail::SegmentView::Status::found) {
            return std::nullopt;
        }
        return std::optional<Value>(std::in_place, map_, r.entry);
    }

    // Calls fn(EntryInfo) for every live entry of `ns` whose key starts with `prefix`,
    // in no particular order. Returns false if the segment turned out to be corrupt.
    template <class Fn>
    bool for_each(Namespace ns, std::string_view prefix, Fn&& fn) const {
        const detail::SegmentView& v = map_->view();
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

  private:
    // The entry of `key` at this snapshot's revision; `found` only if it is live.
    detail::SegmentView::Lookup lookup(Namespace ns, std::string_view key) const noexcept {
        const detail::SegmentView& v = map_->view();
        const auto newest = v.find_newest(ns, key, detail::key_hash(ns, key));
        if (newest.status != detail::SegmentView::Status::found) {
            return newest;
        }
        auto r = v.at_revision(newest.entry, revision_);
        if (r.status == detail::SegmentView::Status::found && r.entry.tombstone()) {
            r.status = detail::SegmentView::Status::not_found;
        }
        return r;
    }

    std::shared_ptr<const detail::Mapping> map_;
    std::uint64_t revision_;
};

namespace detail {

// Shared by a Client and its copies: the current mapping, replaced on remap.
struct ClientState {
    std::string name;
    std::uint64_t id = 0;  // unique per state, never reused: keys the thread caches
    std::atomic<std::uint64_t> generation{0};
    std::mutex mu;
    std::shared_ptr<const Mapping> current;       // guarded by mu
    std::atomic<std::uint64_t> next_remap_ns{0};  // rate-limits failed remaps
};

inline std::uint64_t next_client_id() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// Each thread's reference to the current mapping of the last few clients it used. A
// thread drops its reference to a retired mapping on its next read, so a replaced
// segment is unmapped once every thread has moved on.
struct ThreadSlot {
    std::uint64_t id = 0;
    std::uint64_t generation = 0;
    std::shared_ptr<const Mapping> map;
};
inline thread_local std::array<ThreadSlot, 4> thread_slots;

}  // namespace detail

class Client {
  public:
    // Opens segment `name` (empty: $YUXI_CONFIG_SEGMENT, else "yuxi-config").
    // Throws SegmentError if it is absent, unreadable, corrupt or of another layout.
    [[nodiscard]] static Client open(std::string_view name = {}) {
        auto state = std::make_shared<detail::ClientState>();
        state->name = detail::segment_name(name);
        state->id = detail::next_client_id();
        state->current = detail::Mapping::open(state->name);
        return Client(std::move(state));
    }

    const std::string& name() const noexcept { return state_->name; }

    // The JSON text of `key`, or nothing.
    std::optional<std::string> get(std::string_view key, Namespace ns = Namespace::config) const {
        const auto r = latched_find(mapping().view(), ns, key, detail::key_hash(ns, key));
        if (!live(r)) {
            return std::nullopt;
        }
        return std::optional<std::string>(std::in_place, r.entry.value);
    }

    // Copies the JSON text of `key` into `buffer`; allocates nothing.
    ReadResult read(std::string_view key, std::span<char> buffer,
                    Namespace ns = Namespace::config) const noexcept {
        const detail::Mapping& m = mapping();
        const auto h = detail::key_hash(ns, key);
        const auto r = latched_find(m.view(), ns, key, h);
        if (r.status == detail::SegmentView::Status::corrupt) {
            return {ReadResult::Status::corrupt, 0};
        }
        if (r.status != detail::SegmentView::Status::found || r.entry.tombstone()) {
            return {ReadResult::Status::not_found, 0};
        }
        if (r.entry.value.size() > buffer.size()) {
            return {ReadResult::Status::too_small, r.entry.value.size()};
        }
        std::memcpy(buffer.data(), r.entry.value.data(), r.entry.value.size());
        return {ReadResult::Status::ok, r.entry.value.size()};
    }

    // The value of `key` in place, without copying it.
    std::optional<Value> view(std::string_view key, Namespace ns = Namespace::config) const {
        const detail::ThreadSlot& slot = thread_slot();
        const auto r = latched_find(slot.map->view(), ns, key, detail::key_hash(ns, key));
        if (!live(r)) {
            return std::nullopt;  // a miss costs no reference count
        }
        return std::optional<Value>(std::in_place, slot.map, r.entry);
    }

    // The value unquoted if it is a JSON string; other JSON as text.
    std::optional<std::string> get_string(std::string_view key,
                                          Namespace ns = Namespace::config) const {
        const auto r = latched_find(mapping().view(), ns, key, detail::key_hash(ns, key));
        if (!live(r)) {
            return std::nullopt;
        }
        return detail::json_string_or_text(r.entry.value);
    }

    // The value as T (bool, an integer, a floating point type or std::string), or
    // `fallback` if the key is absent or its JSON does not hold a T.
    template <class T>
    T get_or(std::string_view key, T fallback, Namespace ns = Namespace::config) const {
        const auto r = latched_find(mapping().view(), ns, key, detail::key_hash(ns, key));
        if (!live(r)) {
            return fallback;
        }
        return detail::json_as<T>(r.entry.value).value_or(std::move(fallback));
    }

    std::optional<std::string> metadata(std::string_view name) const {
        return get(name, Namespace::metadata);
    }

    // The revision of the newest change the segment reflects.
    std::uint64_t revision() const noexcept { return latched_revision(mapping().view()); }

    Snapshot snapshot() const {
        auto map = current();
        const std::uint64_t rev = latched_revision(map->view());
        return Snapshot(std::move(map), rev);
    }

    // Sleeps until the revision differs from `revision` or `timeout` passes. Returns
    // whether it moved. Uses a futex on the segment: no polling.
    bool wait_for_change(std::uint64_t revision, std::chrono::nanoseconds timeout) const {
        return wait_until([&](std::uint64_t r) { return r != revision; }, timeout);
    }

    // Sleeps until the revision is at least `revision` (read-your-write).
    bool wait_for_revision(std::uint64_t revision, std::chrono::nanoseconds timeout) const {
        return wait_until([&](std::uint64_t r) { return r >= revision; }, timeout);
    }

    Health health() const {
        const auto map = current();
        const detail::SegmentView& v = map->view();
        const layout::SegmentHeader& h = v.header();
        Health out;
        out.revision = latched_revision(v);
        const std::uint64_t now = detail::monotonic_ns();
        const std::uint64_t beat = detail::load_acquire(h.heartbeat_ns);
        out.heartbeat_age = std::chrono::nanoseconds(now > beat ? now - beat : 0);
        const std::uint64_t changed = detail::load_relaxed(h.source_changed_ns);
        out.source_state_age = std::chrono::nanoseconds(now > changed ? now - changed : 0);
        out.source_state = static_cast<SourceState>(detail::load_acquire(h.source_state));
        out.writer_pid = detail::load_relaxed(h.writer_pid);
        out.arena_used = detail::load_relaxed(h.arena_used);
        out.segment_bytes = v.size();
        const std::uint64_t s = v.seq_acquire();
        out.entries = detail::load_acquire(v.copy_header(s & 1).live_entries);
        out.retired = v.retired();
        out.writer_alive = !out.retired && detail::writer_lock_held(state_->name);
        return out;
    }

  private:
    explicit Client(std::shared_ptr<detail::ClientState> state) : state_(std::move(state)) {}

    static constexpr int kMaxRetries = 1024;

    static detail::SegmentView::Lookup latched_find(const detail::SegmentView& v, Namespace ns,
                                                    std::string_view key,
                                                    std::uint64_t hash) noexcept {
        detail::SegmentView::Lookup r;
        for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
            const std::uint64_t s = v.seq_acquire();
            r = v.find(static_cast<unsigned>(s & 1), ns, key, hash);
            if (v.seq_relaxed() == s) {
                return r;
            }
        }
        // A writer this fast is hostile or broken; the entry found is still one that was
        // published, only possibly older than one seen before.
        return r;
    }

    static bool live(const detail::SegmentView::Lookup& r) noexcept {
        return r.status == detail::SegmentView::Status::found && !r.entry.tombstone();
    }

    static std::uint64_t latched_revision(const detail::SegmentView& v) noexcept {
        std::uint64_t rev = 0;
        for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
            const std::uint64_t s = v.seq_acquire();
            rev = detail::load_acquire(v.copy_header(static_cast<unsigned>(s & 1)).revision);
            if (v.seq_relaxed() == s) {
                break;
            }
        }
        return rev;
    }

    template <class Done>
    bool wait_until(Done&& done, std::chrono::nanoseconds timeout) const {
        const std::uint64_t deadline =
            detail::monotonic_ns() +
            static_cast<std::uint64_t>(std::max<std::int64_t>(timeout.count(), 0));
        for (;;) {
            const detail::Mapping& m = mapping();
            const auto& h = m.view().header();
            const std::uint32_t seen = detail::load_acquire(h.notify);
            if (done(latched_revision(m.view()))) {
                return true;
            }
            const std::uint64_t now = detail::monotonic_ns();
            if (now >= deadline) {
                return false;
            }
            // Capped so that a segment replaced without a wake-up is still noticed.
            const auto left = std::min<std::uint64_t>(deadline - now, 1000000000ULL);
            detail::futex_wait(&h.notify, seen, std::chrono::nanoseconds(left));
        }
    }

    // This thread's reference to the current mapping, remapping if it was retired.
    const detail::Mapping& mapping() const noexcept { return *thread_slot().map; }

    std::shared_ptr<const detail::Mapping> current() const noexcept { return thread_slot().map; }

    detail::ThreadSlot& thread_slot() const noexcept {
        detail::ThreadSlot& first = detail::thread_slots[0];
        if (first.id == state_->id &&
            first.generation == state_->generation.load(std::memory_order_acquire) &&
            !first.map->view().retired()) [[likely]] {
            return first;
        }
        return thread_slot_slow();
    }

    [[gnu::noinline, gnu::cold]] detail::ThreadSlot& thread_slot_slow() const noexcept {
        detail::ThreadSlot& first = detail::thread_slots[0];
        detail::ThreadSlot& slot = first.id == state_->id ? first : claim_thread_slot();
        if (slot.generation != state_->generation.load(std::memory_order_acquire)) {
            refresh(slot);
        }
        if (slot.map->view().retired()) {
            remap();
            if (slot.generation != state_->generation.load(std::memory_order_acquire)) {
                refresh(slot);
            }
        }
        return slot;
    }

    // Moves this client's slot to the front, taking the least recently used one if
    // this thread has none for it.
    detail::ThreadSlot& claim_thread_slot() const noexcept {
        auto& slots = detail::thread_slots;
        std::size_t i = 1;
        while (i + 1 < slots.size() && slots[i].id != state_->id) {
            ++i;
        }
        if (slots[i].id != state_->id) {
            slots[i] = detail::ThreadSlot{state_->id, ~0ULL, nullptr};  // forces a refresh
        }
        std::rotate(slots.begin(), slots.begin() + static_cast<std::ptrdiff_t>(i),
                    slots.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        return slots[0];
    }

    // Each thread's reference gets a control block of its own (the aliasing constructor
    // over a per-thread holder), so that views taken by different threads count on
    // different cache lines instead of all on the mapping's.
    void refresh(detail::ThreadSlot& slot) const noexcept {
        std::shared_ptr<const detail::Mapping> current;
        {
            std::lock_guard<std::mutex> lock(state_->mu);
            current = state_->current;
            slot.generation = state_->generation.load(std::memory_order_relaxed);
        }
        try {
            auto holder = std::make_shared<std::shared_ptr<const detail::Mapping>>(current);
            slot.map = std::shared_ptr<const detail::Mapping>(holder, current.get());
        } catch (...) {
            slot.map = std::move(current);  // out of memory: share the mapping's count
        }
    }

    // Maps the segment now under the name. On failure keeps the retired mapping, which
    // stays readable and whole, and tries again at most every 100 ms.
    void remap() const noexcept {
        // Checked before the mutex: while the replacement cannot be mapped, readers keep
        // reading the retired mapping without contending on the lock.
        const std::uint64_t now = detail::monotonic_ns();
        if (now < state_->next_remap_ns.load(std::memory_order_relaxed)) {
            return;
        }
        std::lock_guard<std::mutex> lock(state_->mu);
        if (!state_->current->view().retired()) {
            return;  // another thread did it
        }
        try {
            auto fresh = detail::Mapping::open(state_->name);
            if (fresh->view().retired()) {
                throw SegmentError(SegmentError::Kind::system, "replacement not ready");
            }
            state_->current = std::move(fresh);
            state_->generation.fetch_add(1, std::memory_order_release);
        } catch (...) {
            state_->next_remap_ns.store(now + 100000000ULL, std::memory_order_relaxed);
        }
    }

    std::shared_ptr<detail::ClientState> state_;
};

}  // namespace yuxi::config
