// The publishing shell: writer, heartbeat, state, metrics, stop.
#include "agent/segment/publisher.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <system_error>

#include "agent/ops/rejections.hpp"

namespace yuxi::config::agent {

WriterOptions writer_options(const Options& options) {
    WriterOptions wo;
    wo.name = options.segment;
    wo.max_value_bytes = options.max_value_bytes;
    wo.layout = options.segment_layout;
    return wo;
}

Publisher::Publisher(WriterOptions options, event_base* base, std::function<void()> on_tick)
    : options_(std::move(options)), base_(base), on_tick_(std::move(on_tick)) {}

void Publisher::start() {
    tick_event_.reset(event_new(base_, -1, EV_PERSIST, &Publisher::on_tick, this));
    const timeval tick = to_timeval(kHeartbeat);
    if (!tick_event_ || event_add(tick_event_.get(), &tick) != 0) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: heartbeat timer");
    }
}

void Publisher::stop() noexcept {
    tick_event_.reset();
    if (writer_) {
        writer_->mark_stopped();
        spdlog::info("segment '{}': stopped at revision {}; it stays readable", options_.name,
                     writer_->revision());
    }
}

void Publisher::create(std::span<const Change> entries, std::uint64_t revision, SourceState state,
                       std::vector<Rejected>* rejected) {
    WriterOptions wo = options_;
    wo.initial_state = state;
    writer_.reset();  // a replacement takes the writer lock after the old one lets it go
    writer_.emplace(SegmentWriter::create(wo, entries, revision, rejected));
    state_ = state;
    beat();
    writer_->notify();
}

ApplyResult Publisher::apply(std::span<const Change> batch, std::uint64_t revision,
                             std::uint64_t commit_ns) {
    const auto t0 = std::chrono::steady_clock::now();
    ApplyResult result = writer_->apply(batch, revision, commit_ns);
    if (metrics_ != nullptr) {
        metrics_->observe_apply(std::chrono::steady_clock::now() - t0);
        metrics_->count_updates_applied(result.applied);
    }
    writer_->notify();
    return result;
}

void Publisher::notify() noexcept {
    if (writer_) {
        writer_->notify();
    }
}

bool Publisher::set_state(SourceState state) noexcept {
    const bool changed = state != state_;
    state_ = state;
    if (writer_) {
        writer_->set_source_state(state);
    }
    return changed;
}

void Publisher::describe(ModeStatus& status) const {
    status.state = state_;
    if (!writer_) {
        return;
    }
    status.published = true;
    status.revision = writer_->revision();
    status.entries = writer_->live_entries();
    status.segment_bytes = writer_->segment_bytes();
    const auto arena = writer_->arena_size();
    status.fill_ratio =
        arena > 0 ? static_cast<double>(writer_->arena_used()) / static_cast<double>(arena) : 0.0;
}

void Publisher::beat() noexcept {
    if (writer_) {
        writer_->heartbeat();
        if (metrics_ != nullptr) {
            metrics_->heartbeat();
        }
    }
}

void Publisher::on_tick(evutil_socket_t, short, void* self) {
    guarded("segment", [&] {
        auto& me = *static_cast<Publisher*>(self);
        me.beat();
        if (me.on_tick_) {
            me.on_tick_();
        }
    });
}

}  // namespace yuxi::config::agent
