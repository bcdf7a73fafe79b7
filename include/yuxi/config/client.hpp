// yuxi::config::Client — reads configuration and knowledge-base metadata from the
// shared-memory segment that yuxi-config-agent keeps up to date.
//
//   auto cfg = yuxi::config::Client::open();          // $YUXI_CONFIG_SEGMENT or "yuxi-config"
//   std::optional<std::string> raw = cfg.get("embed_model");         // JSON text
//   std::optional<std::string> s = cfg.get_string("embed_model");    // unquoted JSON string
//   std::optional<std::int64_t> k = cfg.get<std::int64_t>("top_k");  // no parsing
//   auto kbs = cfg.metadata("global_metadata");                      // JSON text
//   auto snap = cfg.snapshot();       // a consistent view of many keys at one revision
//   {
//       auto pin = cfg.pin();         // borrowed views, valid until `pin` ends
//       std::optional<std::string_view> model = pin.get<std::string_view>("embed_model");
//   }
//   cfg.wait_for_change(cfg.revision(), std::chrono::seconds(5));
//
// Values are JSON text, as the source holds them; the agent also stores each scalar
// (bool, integer, double, string) decoded, which get<T> reads without parsing. A missing
// key is an empty optional; only open() throws (SegmentError, with a message a person can
// act on).
//
// The read path (get, read, view, get<T>, get_string, get_or, metadata, revision, pinned
// and snapshot reads) takes no lock, makes no system call and writes no shared memory:
// the segment is mapped read-only. The one exception is the rare remap after the agent
// replaced the segment (compaction or restart), noticed with one load on the next read.
// Waiting (wait_for_change, wait_for_revision) writes one word of a separate page to ask
// for a wake-up, so that the agent makes no system call when nobody waits.
//
// Thread rules: a Client may be shared by any number of threads; each thread keeps its
// own reference to the current mapping (so readers share no written cache line). Values
// returned by view() and Snapshots keep their mapping alive and may cross threads. A Pin
// belongs to the thread that made it and should be short-lived (one request): its views
// borrow its reference, with no reference count per read.
//
// Memory ordering: see layout.hpp. Lookups go through the seqcount latch and re-check the
// sequence after the probe; the value bytes are copied after the re-check, since an
// entry reached through an acquire load of its slot never changes again.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
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
#include "yuxi/config/detail/reads.hpp"
#include "yuxi/config/detail/thread_cache.hpp"
#include "yuxi/config/errors.hpp"
#include "yuxi/config/layout.hpp"
#include "yuxi/config/snapshot.hpp"

namespace yuxi::config {

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

// A scope in which reads return views into the segment without copying and without a
// reference count per read: they borrow the pin's reference to the mapping, and stay
// valid until the Pin is destroyed. The rule a caller must follow: use the views only
// while the Pin lives, and keep a Pin short (a request, a batch): inside it, reads see
// the mapping current when it was made, so after the agent replaces the segment they see
// changes only once a new Pin is made. A Pin belongs to one thread. Making one costs two
// uncontended atomic operations (on this thread's own reference count).
class Pin {
  public:
    Pin(Pin&&) noexcept = default;
    Pin& operator=(Pin&&) noexcept = default;
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;

    // The JSON text of `key`, in place (NUL-terminated), or nothing.
    YUXI_CONFIG_INLINE std::optional<std::string_view> view(
        std::string_view key, Namespace ns = Namespace::config) const noexcept {
        if (legacy_) [[unlikely]] {
            const auto h = detail::legacy_find(map_->legacy_view(), ns, key);
            return h.live() ? std::optional<std::string_view>(h.value) : std::nullopt;
        }
        const auto h = detail::latched_find(*view_, ns, key, detail::key_hash(ns, key));
        if (!h.live()) {
            return std::nullopt;
        }
        return detail::value_of(h.entry);
    }

    // The value of `key` as T: bool, std::int64_t, double, or std::string_view (a JSON
    // string unescaped, in place), read from the scalar the agent stored; nothing if the
    // key is absent or its JSON does not hold a T (a string is not a number).
    template <class T>
    YUXI_CONFIG_INLINE std::optional<T> get(std::string_view key,
                                            Namespace ns = Namespace::config) const noexcept {
        static_assert(detail::kTypedScalar<T> || std::is_same_v<T, std::string_view>,
                      "Pin::get supports bool, std::int64_t, double and std::string_view");
        if (legacy_) [[unlikely]] {
            const auto h = detail::legacy_find(map_->legacy_view(), ns, key);
            return h.live() ? detail::text_as<T>(h.value) : std::nullopt;
        }
        const auto h = detail::latched_find(*view_, ns, key, detail::key_hash(ns, key));
        if (!h.live()) {
            return std::nullopt;
        }
        return detail::scalar_as<T>(h.entry);
    }

    // The revision of the newest change the pinned mapping reflects.
    std::uint64_t revision() const noexcept {
        return legacy_ ? detail::latched_revision(map_->legacy_view())
                       : detail::latched_revision(*view_);
    }

  private:
    friend class Client;
    explicit Pin(std::shared_ptr<const detail::Mapping> map) noexcept
        : map_(std::move(map)), view_(&map_->view()), legacy_(map_->legacy()) {}

    std::shared_ptr<const detail::Mapping> map_;
    const detail::SegmentView* view_;
    bool legacy_;
};

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
    YUXI_CONFIG_INLINE std::optional<std::string> get(std::string_view key,
                                                      Namespace ns = Namespace::config) const {
        const detail::Mapping& m = mapping();
        if (m.legacy()) [[unlikely]] {
            const auto h = detail::legacy_find(m.legacy_view(), ns, key);
            return h.live() ? std::optional<std::string>(h.value) : std::nullopt;
        }
        const auto h = detail::latched_find(m.view(), ns, key, detail::key_hash(ns, key));
        if (!h.live()) {
            return std::nullopt;
        }
        return std::optional<std::string>(std::in_place, detail::value_of(h.entry));
    }

    // The value of `key` as T (bool, std::int64_t or double), read from the scalar the
    // agent stored beside the JSON text: no parsing. Nothing if the key is absent or its
    // JSON does not hold a T. For strings without a copy, use Pin::get<std::string_view>.
    template <class T>
    YUXI_CONFIG_INLINE std::optional<T> get(std::string_view key,
                                            Namespace ns = Namespace::config) const noexcept {
        static_assert(
            !std::is_same_v<T, std::string_view>,
            "a std::string_view needs a Pin to stay valid: cfg.pin().get<std::string_view>");
        static_assert(detail::kTypedScalar<T>, "get<T> supports bool, std::int64_t and double");
        const detail::Mapping& m = mapping();
        if (m.legacy()) [[unlikely]] {
            const auto h = detail::legacy_find(m.legacy_view(), ns, key);
            return h.live() ? detail::text_as<T>(h.value) : std::nullopt;
        }
        const auto h = detail::latched_find(m.view(), ns, key, detail::key_hash(ns, key));
        if (!h.live()) {
            return std::nullopt;
        }
        return detail::scalar_as<T>(h.entry);
    }

    // Copies the JSON text of `key` into `buffer`; allocates nothing.
    YUXI_CONFIG_INLINE ReadResult read(std::string_view key, std::span<char> buffer,
                                       Namespace ns = Namespace::config) const noexcept {
        const detail::Mapping& m = mapping();
        std::string_view value;
        if (m.legacy()) [[unlikely]] {
            const auto h = detail::legacy_find(m.legacy_view(), ns, key);
            if (!h.live()) {
                return {h.status == detail::SegmentView::Status::corrupt
                            ? ReadResult::Status::corrupt
                            : ReadResult::Status::not_found,
                        0};
            }
            value = h.value;
        } else {
            const auto h = detail::latched_find(m.view(), ns, key, detail::key_hash(ns, key));
            if (!h.live()) {
                return {h.status == detail::SegmentView::Status::corrupt
                            ? ReadResult::Status::corrupt
                            : ReadResult::Status::not_found,
                        0};
            }
            value = detail::value_of(h.entry);
        }
        if (value.size() > buffer.size()) {
            return {ReadResult::Status::too_small, value.size()};
        }
        std::memcpy(buffer.data(), value.data(), value.size());
        return {ReadResult::Status::ok, value.size()};
    }

    // The value of `key` in place, without copying it; the Value keeps its mapping alive
    // (one reference count per view). In a loop of many reads, a Pin is cheaper.
    YUXI_CONFIG_INLINE std::optional<Value> view(std::string_view key,
                                                 Namespace ns = Namespace::config) const {
        const detail::ThreadSlot& slot = thread_slot();
        if (slot.map->legacy()) [[unlikely]] {
            const auto h = detail::legacy_find(slot.map->legacy_view(), ns, key);
            if (!h.live()) {
                return std::nullopt;
            }
            return std::optional<Value>(std::in_place, slot.ref, h.value, h.category, h.revision);
        }
        const auto h = detail::latched_find(slot.map->view(), ns, key, detail::key_hash(ns, key));
        if (!h.live()) {
            return std::nullopt;  // a miss costs no reference count
        }
        return std::optional<Value>(std::in_place, slot.ref, h.entry);
    }

    // A scope for borrowed views (see Pin).
    Pin pin() const noexcept { return Pin(thread_slot().ref); }

    // The value unquoted if it is a JSON string; other JSON as text.
    std::optional<std::string> get_string(std::string_view key,
                                          Namespace ns = Namespace::config) const {
        const Live e = find_live(mapping(), ns, key);
        if (!e.found) {
            return std::nullopt;
        }
        std::string_view s;
        if (e.header != nullptr && detail::scalar_text(e.header, s)) {
            return std::string(s);
        }
        return detail::json_string_or_text(e.value);
    }

    // The value as T (bool, an integer, a floating point type or std::string), or
    // `fallback` if the key is absent or its JSON does not hold a T.
    template <class T>
    T get_or(std::string_view key, T fallback, Namespace ns = Namespace::config) const {
        if constexpr (detail::kTypedScalar<T>) {
            return get<T>(key, ns).value_or(fallback);
        } else {
            const Live e = find_live(mapping(), ns, key);
            if (!e.found) {
                return fallback;
            }
            if constexpr (std::is_same_v<T, std::string>) {
                std::string_view s;
                if (e.header != nullptr && detail::scalar_text(e.header, s)) {
                    return std::string(s);
                }
            }
            return detail::json_as<T>(e.value).value_or(std::move(fallback));
        }
    }

    std::optional<std::string> metadata(std::string_view name) const {
        return get(name, Namespace::metadata);
    }

    // The revision of the newest change the segment reflects.
    std::uint64_t revision() const noexcept { return revision_of(mapping()); }

    Snapshot snapshot() const {
        const detail::ThreadSlot& slot = thread_slot();
        return Snapshot(slot.ref, revision_of(*slot.map));
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
        const detail::ThreadSlot& slot = thread_slot();
        const auto map = slot.ref;
        const layout::SegmentHeader& h = map->header();
        Health out;
        out.revision = revision_of(*map);
        const std::uint64_t now = detail::monotonic_ns();
        const std::uint64_t beat = detail::load_acquire(h.heartbeat_ns);
        out.heartbeat_age = std::chrono::nanoseconds(now > beat ? now - beat : 0);
        const std::uint64_t changed = detail::load_relaxed(h.source_changed_ns);
        out.source_state_age = std::chrono::nanoseconds(now > changed ? now - changed : 0);
        out.source_state = static_cast<SourceState>(detail::load_acquire(h.source_state));
        out.writer_pid = detail::load_relaxed(h.writer_pid);
        out.arena_used = detail::load_relaxed(h.arena_used);
        out.segment_bytes = map->size();
        const auto live = [](const auto& v) {
            const std::uint64_t s = v.seq_acquire();
            return detail::load_acquire(v.copy_header(static_cast<unsigned>(s & 1)).live_entries);
        };
        out.entries = map->legacy() ? live(map->legacy_view()) : live(map->view());
        out.retired = map->retired();
        out.writer_alive = !out.retired && detail::writer_lock_held(state_->name);
        return out;
    }

  private:
    explicit Client(std::shared_ptr<detail::ClientState> state) : state_(std::move(state)) {}

    // A live entry of either layout, for the calls that are not on the hot path.
    struct Live {
        bool found = false;
        std::string_view value;
        const layout::EntryHeader* header = nullptr;  // layout 2
    };

    static Live find_live(const detail::Mapping& m, Namespace ns, std::string_view key) noexcept {
        if (m.legacy()) [[unlikely]] {
            const auto h = detail::legacy_find(m.legacy_view(), ns, key);
            return {h.live(), h.value, nullptr};
        }
        const auto h = detail::latched_find(m.view(), ns, key, detail::key_hash(ns, key));
        if (!h.live()) {
            return {};
        }
        return {true, detail::value_of(h.entry), h.entry};
    }

    static std::uint64_t revision_of(const detail::Mapping& m) noexcept {
        if (m.legacy()) [[unlikely]] {
            return detail::latched_revision(m.legacy_view());
        }
        return detail::latched_revision(m.view());
    }

    template <class Done>
    bool wait_until(Done&& done, std::chrono::nanoseconds timeout) const {
        constexpr std::uint64_t kCap = 1000000000ULL;        // see below
        constexpr std::uint64_t kUnannounced = 10000000ULL;  // no waiters page: 10 ms
        const std::uint64_t deadline =
            detail::monotonic_ns() +
            static_cast<std::uint64_t>(std::max<std::int64_t>(timeout.count(), 0));
        for (;;) {
            const detail::Mapping& m = mapping();
            const auto& h = m.header();
            const std::uint32_t seen = detail::load_acquire(h.notify);
            if (done(revision_of(m))) {
                return true;
            }
            const std::uint64_t now = detail::monotonic_ns();
            if (now >= deadline) {
                return false;
            }
            // Capped so that a segment replaced without a wake-up is still noticed.
            std::uint64_t until = std::min(deadline, now + kCap);
            if (detail::WaitersMapping* w = state_->waiters()) {
                w->announce(until);
            } else if (!m.legacy()) {
                // This agent wakes only announced sleepers (an older one wakes everyone).
                until = std::min(until, now + kUnannounced);
            }
            detail::futex_wait_until(&h.notify, seen, until);
        }
    }

    // This thread's reference to the current mapping, remapping if it was retired.
    const detail::Mapping& mapping() const noexcept { return *thread_slot().map; }

    YUXI_CONFIG_INLINE const detail::ThreadSlot& thread_slot() const noexcept {
        const detail::ClientState& st = *state_;
        if (detail::ThreadCache* c = detail::thread_cache; c != nullptr) [[likely]] {
            const detail::ThreadSlot& first = c->slots[0];
            if (first.id == st.id &&
                first.generation == st.generation.load(std::memory_order_acquire) &&
                !first.map->retired()) [[likely]] {
                return first;
            }
        }
        return detail::thread_slot_slow(*state_);
    }

    std::shared_ptr<detail::ClientState> state_;
};

}  // namespace yuxi::config
