// The PostgreSQL source: one libpq connection, never blocking, driven by the libevent loop.
//
// It follows docs/design.md, "PostgreSQL". On every connection: LISTEN yuxi_config first, so that
// any commit from then on wakes us; then, the first time (or when the log was trimmed past what we
// applied), a snapshot of both tables and the log's revision in one REPEATABLE READ transaction;
// then catch-ups, each reading the log after the last revision it handed on, in revision order,
// page by page. A catch-up runs on every notification (a burst while one is in flight is coalesced
// into one more), after every snapshot, on every reconnect, on the safety-poll timer, and on wake()
// (SIGHUP). The notification payload is only a hint: the log is the data. Revisions have holes
// where transactions rolled back; a hole is never taken for a loss, only the trim watermark
// (yuxi_config_log_state.trimmed_through) says that rows are gone.
//
// Transactions: the rows a catch-up returns are grouped by the transaction that wrote
// them (consecutive rows with the same xmin: the trigger's advisory lock makes each
// transaction's revisions contiguous), and each group is handed on as one batch at the
// group's last revision. Readers therefore never see half a transaction, and every
// revision the segment shows is one at which the database committed. A transaction cut
// by the page limit is held until its last row has been read.
//
// Failures of the environment (refused or lost connections, server restarts, missing
// schema, bad credentials, timeouts) are never fatal: close the connection, log one line
// that says what to do, count it, reconnect after an exponential backoff with full jitter
// (backoff.hpp). The sink keeps serving what it last published meanwhile.
//
// Not thread-safe: everything runs on the loop that `base` drives.
#pragma once

#include <event2/event.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "agent/postgres/catchup_page.hpp"
#include "agent/postgres/history_check.hpp"
#include "agent/segment/segment_writer.hpp"
#include "core/backoff.hpp"
#include "core/event_loop.hpp"

struct pg_conn;
struct pg_result;

namespace yuxi::config::agent {

// What the connection is doing. In the states marked "in flight", exactly one query is
// outstanding on the connection, and its deadline timer is armed.
enum class ConnState {
    // No connection, and nothing scheduled: before start(), or after stop() (final).
    idle,
    // No connection; the reconnect timer is armed (backoff). Whatever was published stays
    // published; nothing is read from PostgreSQL until the timer fires.
    waiting,
    // PQconnectStart succeeded and PQconnectPoll is driven by socket readiness, under the
    // connect deadline. Nothing is known about the server yet.
    connecting,
    // Connected; LISTEN and the PREPARE of the catch-up query in flight. Once it
    // succeeds, every commit that touches the tables reaches us as a notification.
    subscribing,
    // The snapshot transaction in flight (REPEATABLE READ: tables and revision agree).
    // Notifications that arrive meanwhile are recorded; a catch-up always follows.
    snapshotting,
    // A catch-up query in flight for the log after the last revision read. Notifications
    // that arrive meanwhile are recorded and, if the page does not cover them, cause one
    // more catch-up.
    catching_up,
    // Connected, listening, caught up with every wake-up seen; nothing in flight.
    ready,
    // Trimming the change log (the relay's timer): one transaction in flight.
    trimming,
    // The relay's fencing token being drawn from PostgreSQL (postgres_history.cpp).
    fencing,
    // The history check in flight: does the database still hold what was applied
    // (history_check.hpp)? Run on every new connection before catching up.
    verifying,
    // A detected rewind being recorded in yuxi_config_rewinds; the resync follows.
    recording,
};

std::string_view to_string(ConnState state) noexcept;

// The kinds of errors counted (yuxi_config_errors_total{kind}).
enum class DbError : std::size_t {
    connect,          // the server could not be reached, or refused the start-up
    auth,             // the server refused the credentials (wrong password, pg_hba.conf)
    schema,           // the tables of deploy/sql are missing: `yuxi-configctl schema apply`
    query,            // a query failed for another reason (e.g. permissions)
    connection_lost,  // an established connection broke (terminated, restart, network)
    timeout,          // connect or a query passed its deadline
    publish,          // the segment could not take a batch (e.g. /dev/shm full)
};
inline constexpr std::size_t kDbErrorKinds = 7;

std::string_view to_string(DbError kind) noexcept;

// Counters of database mode; the later metrics issue exports them.
struct DatabaseStats {
    std::uint64_t connects = 0;              // connections that got to LISTEN
    std::uint64_t reconnects = 0;            // connection attempts after the first
    std::uint64_t snapshots = 0;             // full loads published (the first, then resyncs)
    std::uint64_t resyncs = 0;               // full loads after the first (log trimmed, DB behind)
    std::uint64_t notifications = 0;         // NOTIFY yuxi_config received
    std::uint64_t bad_notifications = 0;     // payload not a revision: a plain wake-up
    std::uint64_t catchups = 0;              // catch-up queries completed
    std::uint64_t safety_polls = 0;          // safety-poll timer firings
    std::uint64_t transactions_applied = 0;  // batches published from the log
    std::uint64_t changes_applied = 0;       // log rows in them
    std::uint64_t refused_values = 0;        // changes the segment's limits refused
    std::array<std::uint64_t, kDbErrorKinds> errors{};
    std::uint64_t last_commit_to_publish_ns = 0;  // change's clock_timestamp() → published
    std::uint64_t applied_revision = 0;           // last revision published
    std::uint64_t history_rewinds = 0;            // failovers found to have lost applied revisions

    std::uint64_t& error(DbError kind) noexcept { return errors[static_cast<std::size_t>(kind)]; }
    std::uint64_t error(DbError kind) const noexcept {
        return errors[static_cast<std::size_t>(kind)];
    }
};

// The full state of both tables at one revision.
struct DbSnapshot {
    std::uint64_t revision = 0;  // greatest(max(log revision), trimmed_through)
    std::vector<Change> entries;
    std::chrono::nanoseconds query_time{0};  // from sending the query to its last row
    std::uint64_t changed_us = 0;            // changed_at of the log row at `revision`; 0 if none
    bool rewound = false;  // the history check found lost revisions: replace, never merge
};

// The rows of one transaction of the log, in revision order.
struct LogTransaction {
    std::uint64_t first_revision = 0;
    std::uint64_t last_revision = 0;  // the revision to publish the batch at
    std::uint64_t commit_ns = 0;      // CLOCK_REALTIME of the last row's changed_at
    std::vector<Change> changes;      // as logged: later changes of a key win
};

// What the source hands its results to (database_mode.hpp). The calls come from the loop.
class SourceSink {
  public:
    virtual ~SourceSink() = default;
    // Publish `snapshot` (the first load, or a resync). False if it could not be published:
    // the source then reconnects after a backoff and loads it again.
    virtual bool publish_snapshot(DbSnapshot&& snapshot) = 0;
    // Publish one transaction, above the last published revision. False as above.
    virtual bool publish_transaction(LogTransaction&& tx) = 0;
    // `true` when caught up on a working connection, `false` when the connection is lost.
    virtual void source_up(bool up) = 0;
    // A fencing token drawn from PostgreSQL for the relay (want_fence()).
    virtual void relay_fence(std::uint64_t fence) { (void)fence; }
};

struct PostgresSourceOptions {
    std::string conninfo;      // what libpq connects with (to_libpq_conninfo's output)
    std::string redacted_url;  // what logs show instead
    std::chrono::milliseconds safety_poll{30000};
    std::uint32_t max_catchup_batch = 1000;  // log rows per catch-up query
    Backoff::Duration backoff_base = Backoff::kDefaultBase;
    Backoff::Duration backoff_cap = Backoff::kDefaultCap;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds query_timeout{60000};
    // LISTEN for notifications; without it only the safety poll (and wake()) catch up.
    bool listen = true;
    std::string agent_name;  // who detected a rewind, in yuxi_config_rewinds
};

class PostgresSource {
  public:
    // Registers nothing yet. `base`, `sink` and `stats` must outlive this object.
    PostgresSource(PostgresSourceOptions options, event_base* base, SourceSink& sink,
                   DatabaseStats& stats);
    ~PostgresSource();
    PostgresSource(const PostgresSource&) = delete;
    PostgresSource& operator=(const PostgresSource&) = delete;

    // Starts the first connection attempt and the safety-poll timer. Throws
    // std::system_error if libevent cannot create its events.
    void start();

    // Closes the connection and cancels every timer; the state becomes `idle` for good.
    void stop() noexcept;

    // Stops, and makes the next start() continue from `revision` (published by someone
    // else: a relay's messages, the L2 snapshot) with a catch-up instead of a snapshot;
    // 0 means load a snapshot first. `listen` replaces the option's.
    void resume_from(std::uint64_t revision, bool listen);

    // What was applied by another path (a relay's batch, the L2 snapshot), for the history
    // check of the next connection: a batch's revision and commit time, or a snapshot's.
    void note_applied(std::uint64_t revision, std::uint64_t changed_us) {
        history_.applied(revision, changed_us);
    }
    void note_snapshot(std::uint64_t revision, std::uint64_t changed_us) {
        history_.reset(revision, changed_us);
    }
    // Draw a fencing token from PostgreSQL on every new connection (the relay's leader).
    void want_fence(bool want) noexcept { want_fence_ = want; }
    // The server of the current connection ("host:port"); empty when not connected.
    const std::string& server() const noexcept { return server_; }

    bool running() const noexcept { return state_ != ConnState::idle; }

    // Deletes all but the newest `keep` rows of the change log and records the watermark,
    // in one transaction under the log's lock, when nothing else is in flight (now, or
    // once ready).
    void trim_log(std::uint64_t keep);

    // Catch up now (SIGHUP), as a notification of unknown revision would.
    void wake();

    ConnState state() const noexcept { return state_; }
    bool has_snapshot() const noexcept { return has_snapshot_; }
    std::uint64_t applied_revision() const noexcept { return applied_; }

  private:
    struct ConnDeleter {
        void operator()(pg_conn* c) const noexcept;
    };
    struct ResultDeleter {
        void operator()(pg_result* r) const noexcept;
    };
    using ConnPtr = std::unique_ptr<pg_conn, ConnDeleter>;
    using ResultPtr = std::unique_ptr<pg_result, ResultDeleter>;

    static void on_io(evutil_socket_t fd, short what, void* self);
    static void on_reconnect_timer(evutil_socket_t fd, short what, void* self);
    static void on_deadline(evutil_socket_t fd, short what, void* self);
    static void on_poll_timer(evutil_socket_t fd, short what, void* self);

    void connect();
    void continue_connect();
    void on_connected();
    void watch(short events);
    bool send(ConnState next, std::string_view what, const std::function<int()>& submit);
    void flush();
    void read_input();
    void drain_notifications();
    void handle_results();
    void start_snapshot();
    void start_catchup();
    void handle_subscribe();
    void handle_snapshot();
    void handle_catchup();
    bool publish_group(std::vector<LogRow>& rows);
    void become_ready();
    bool arm_poll_timer();
    void start_trim();
    void handle_trim();
    // postgres_history.cpp: what follows LISTEN on a new connection.
    void after_subscribe();
    void start_fence();
    void handle_fence();
    void start_verify();
    void handle_verify();
    void start_record(const Rewind& rewind);
    void handle_record();
    void wake_for(std::uint64_t revision, bool known);
    void fail(DbError kind, std::string_view what, std::string detail);
    void fail_result(std::string_view what, const pg_result* result);
    void close_connection() noexcept;
    void arm_deadline(std::chrono::milliseconds after);
    void disarm_deadline() noexcept;

    PostgresSourceOptions options_;
    event_base* base_;
    SourceSink& sink_;
    DatabaseStats& stats_;
    Backoff backoff_;

    ConnState state_ = ConnState::idle;
    ConnPtr conn_;
    EventPtr io_;
    int io_fd_ = -1;
    short io_events_ = 0;
    bool want_write_ = false;  // PQflush has more to send
    EventPtr reconnect_timer_;
    EventPtr deadline_;
    EventPtr poll_timer_;
    std::vector<ResultPtr> results_;  // of the query in flight
    std::chrono::steady_clock::time_point sent_at_{};

    bool has_snapshot_ = false;       // a snapshot was published: catch-ups can follow
    bool resync_needed_ = false;      // the next connection loads a snapshot
    std::uint64_t applied_ = 0;       // last revision handed to the sink
    std::uint64_t fetched_ = 0;       // last revision read (>= applied_: held rows)
    std::uint64_t catchup_from_ = 0;  // `fetched_` when the catch-up in flight was sent
    std::vector<LogRow> held_;        // the start of a transaction cut by the page limit
    // Wake-ups since the last catch-up was sent: the highest revision announced, and
    // whether one came without a revision.
    std::uint64_t announced_ = 0;
    bool announced_unknown_ = false;
    bool was_up_ = false;  // what source_up last said
    std::mt19937_64 jitter_{std::random_device{}()};
    std::uint64_t trim_keep_ = 0;  // a trim asked for and not yet sent (0: none)
    AppliedHistory history_;
    bool want_fence_ = false;
    bool fence_pending_ = false;    // this connection has not drawn its fence yet
    bool verify_pending_ = false;   // this connection has not checked the history yet
    bool rewound_pending_ = false;  // the next snapshot replaces a rewound history
    bool fence_missing_logged_ = false;
    std::string server_;
};

}  // namespace yuxi::config::agent
