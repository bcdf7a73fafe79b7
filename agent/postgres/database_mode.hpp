// Database mode (CONFIG_MODE=database): keeps the segment equal to PostgreSQL's
// system_configs and global_metadata, on one libevent loop.
//
// The PostgreSQL source (postgres_source.hpp) reads; this file publishes. The first
// snapshot creates the segment at the database's revision (a segment at revision R holds
// exactly the database's state at R, docs/design.md, "PostgreSQL"), each transaction of the log is
// then applied as one batch at its last revision, and a resync (the log trimmed past what was
// applied) publishes the difference between the segment and the new snapshot as one batch
// at the snapshot's revision, so readers jump to it atomically and keep their mapping. If
// the database is behind the segment (restored from a backup, or another database), the
// snapshot replaces the segment, and readers remap.
//
// Values are the text PostgreSQL's jsonb::text gives: that is the canonical JSON of
// database mode. A value over --max-value-bytes, or one that breaks its key's JSON Schema,
// is refused (admission.hpp): the key keeps what it had (or stays absent), the refusal is
// logged with the key and the reason (never the value), counted, reported in
// yuxi:config:agents, and the rest of the batch is applied.
//
// Source state (what readers see in Health):
//   starting  nothing published yet (the segment is not touched before the first snapshot:
//             a previous agent's segment keeps serving, its writer seen as dead)
//   ok        connected, caught up, every value published
//   stale     the connection is lost (reconnecting with backoff), or a value is refused;
//             readers keep the last good values
//   stopped   after SIGTERM; the segment stays readable
// The agent is ready (ready()) once the first snapshot is published.
#pragma once

#include <event2/event.h>

#include <memory>
#include <optional>
#include <string>

#include "agent/fleet/relay.hpp"
#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"
#include "agent/postgres/admission.hpp"
#include "agent/postgres/postgres_source.hpp"
#include "agent/segment/publisher.hpp"
#include "core/event_loop.hpp"

namespace yuxi::config::agent {

class DatabaseMode final : private SourceSink, private RelayHost {
  public:
    // Registers nothing yet; `base` must outlive this object.
    DatabaseMode(const Options& options, event_base* base);
    ~DatabaseMode() override;
    DatabaseMode(const DatabaseMode&) = delete;
    DatabaseMode& operator=(const DatabaseMode&) = delete;

    // Checks the connection string (throws OptionsError: exit 2) and that no other
    // agent writes the segment (throws WriterError: exit 1), then starts connecting and
    // the heartbeat. Throws std::system_error if libevent fails.
    void start();

    // Catches up now (SIGHUP).
    void wake();

    // Marks the segment `stopped` and wakes its readers; closes the connection.
    void stop() noexcept;

    // A first snapshot is published (and, unless --serve-degraded, it is not the L2
    // snapshot of an agent that has not reached PostgreSQL yet).
    bool ready() const noexcept {
        return publisher_.published() &&
               !(publisher_.state() == SourceState::degraded && !options_.serve_degraded);
    }
    const DatabaseStats& stats() const noexcept { return stats_; }
    ConnState connection_state() const noexcept { return source_.state(); }

    // Where to report applied batches and heartbeats; null (the default) reports nothing.
    void set_metrics(Metrics* metrics) noexcept {
        metrics_ = metrics;
        publisher_.set_metrics(metrics);
    }
    // For /readyz and /metrics. Ready: ready(), and unless degraded, fed (by PostgreSQL or
    // the relay) within the stale limit: kStalePolls safety polls, at least kMinStaleLimit.
    ModeStatus status() const;
    static constexpr int kStalePolls = 2;
    static constexpr std::chrono::seconds kMinStaleLimit{1};

    // Non-zero once a fatal error (another agent took the segment) broke the loop.
    int exit_code() const noexcept { return exit_code_; }

  private:
    bool publish_snapshot(DbSnapshot&& snapshot) override;
    bool publish_transaction(LogTransaction&& tx) override;
    void source_up(bool up) override;
    void relay_fence(std::uint64_t fence) override;

    // RelayHost
    std::uint64_t applied_revision() const override;
    bool apply_batch(Batch&& batch) override;
    bool load_snapshot(L2Snapshot&& snapshot, bool degraded) override;
    std::vector<Change> published_entries() const override;
    void use_postgres(PgUse use) override;
    void trim_log(std::uint64_t keep) override { source_.trim_log(keep); }
    std::string_view state_name() const override;
    std::vector<ValueRejection> rejected_values(std::size_t max) const override;
    std::uint64_t rejected_keys() const override { return admission_.size(); }

    static void on_pg_use(evutil_socket_t fd, short what, void* self);
    static void on_boot_timer(evutil_socket_t fd, short what, void* self);
    bool publish_entries(std::vector<Change>&& entries, std::uint64_t revision,
                         std::chrono::nanoseconds query_time);
    bool apply_changes(std::vector<Change>&& changes, std::uint64_t revision,
                       std::uint64_t commit_ns, const std::string& origin);

    void tick();

    // The changes admission.hpp lets in (`snapshot`: each key comes once, and the set is
    // the whole state).
    std::vector<Change> admit(std::vector<Change>&& changes, std::uint64_t revision, bool snapshot);
    void note_rejected(const std::vector<Rejected>& rejected, std::uint64_t revision);
    bool create_segment(const std::vector<Change>& entries, std::uint64_t revision);
    void fatal(const std::string& message);
    void update_state();

    Options options_;
    event_base* base_;
    DatabaseStats stats_;
    PostgresSource source_;
    Publisher publisher_;
    Admission admission_;  // what is held back, and why
    bool up_ = false;
    int exit_code_ = 0;
    Metrics* metrics_ = nullptr;
    // When the segment was last fed (connected and caught up, or a current follower),
    // checked every heartbeat.
    std::chrono::steady_clock::time_point last_fed_ = std::chrono::steady_clock::now();
    bool fed() const noexcept;
    bool degraded_ =
        false;  // the segment came from the L2 snapshot; PostgreSQL has not confirmed it
    PgUse pg_use_ = PgUse::listen;  // what use_postgres() asked for
    PgUse pg_applied_use_ = PgUse::off;
    EventPtr pg_use_event_;  // applies pg_use_ outside the source's own callbacks
    EventPtr boot_event_;    // PostgreSQL silent at start: try the L2 snapshot
    std::unique_ptr<Relay> relay_;
};

}  // namespace yuxi::config::agent
