// The publishing shell that file mode and database mode both feed: the segment writer,
// the heartbeat, the source state readers see, the metrics of every batch, and the clean
// stop. A mode decides *what* to publish; the Publisher does the publishing the same way
// for both.
//
// Not thread-safe: everything runs on the loop that `base` drives.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"
#include "agent/segment/segment_writer.hpp"
#include "core/event_loop.hpp"

namespace yuxi::config::agent {

inline constexpr std::chrono::seconds kHeartbeat{1};

// The writer's settings from the agent's (segment name, value limit).
WriterOptions writer_options(const Options& options);

class Publisher {
  public:
    // Registers nothing yet; `base` must outlive this object. `on_tick` runs after each
    // heartbeat (once a second), for the mode's own periodic work.
    Publisher(WriterOptions options, event_base* base, std::function<void()> on_tick = {});
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    // Starts the heartbeat timer. Throws std::system_error if libevent fails.
    void start();
    // The state `stopped`, a last heartbeat and a wake-up; then nothing more is written.
    void stop() noexcept;

    // Where to report batches and heartbeats; null reports nothing.
    void set_metrics(Metrics* metrics) noexcept { metrics_ = metrics; }

    // A segment exists: readers can open it.
    bool published() const noexcept { return writer_.has_value(); }
    std::uint64_t revision() const noexcept { return writer_ ? writer_->revision() : 0; }
    SegmentWriter& writer() { return *writer_; }
    const SegmentWriter& writer() const { return *writer_; }

    // A new segment holding `entries` at `revision` (replacing any), published with
    // `state`. Changes the writer refuses are added to `rejected`. Throws WriterError.
    void create(std::span<const Change> entries, std::uint64_t revision, SourceState state,
                std::vector<Rejected>* rejected);

    // Publishes `batch` as `revision`, times it into the metrics, counts what it wrote,
    // and wakes waiting readers. Throws what SegmentWriter::apply throws.
    ApplyResult apply(std::span<const Change> batch, std::uint64_t revision,
                      std::uint64_t commit_ns = 0);

    // Wakes readers (after a batch published some other way, or a state change).
    void notify() noexcept;

    // The source state readers see; true if it changed.
    bool set_state(SourceState state) noexcept;
    SourceState state() const noexcept { return state_; }

    // Fills the segment's fields of `status` (published, revision, entries, bytes, fill).
    void describe(ModeStatus& status) const;

  private:
    static void on_tick(evutil_socket_t fd, short what, void* self);
    void beat() noexcept;

    WriterOptions options_;
    event_base* base_;
    std::function<void()> on_tick_;
    std::optional<SegmentWriter> writer_;
    SourceState state_ = SourceState::starting;
    EventPtr tick_event_;
    Metrics* metrics_ = nullptr;
};

}  // namespace yuxi::config::agent
