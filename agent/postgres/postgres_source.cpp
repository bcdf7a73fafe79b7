// The PostgreSQL source: libpq without blocking, on the libevent loop.
#include "agent/postgres/postgres_source.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <random>
#include <system_error>
#include <utility>

#include "agent/ops/rejections.hpp"
#include "agent/postgres/queries.hpp"
#include "core/change_message.hpp"
#include "core/database_url.hpp"
#include "core/event_loop.hpp"
#include "core/text.hpp"

namespace yuxi::config::agent {
namespace {

using namespace queries;

std::string format_delay(Backoff::Duration d) {
    if (d < std::chrono::seconds(1)) {
        return std::to_string(d.count() / 1000) + " ms";
    }
    const auto tenths = d.count() / 100000;
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}

// The error kind of a failed connection attempt: libpq gives only a message there.
DbError classify_connect_failure(std::string_view message) {
    const std::string m = lower(message);
    for (const std::string_view needle :
         {"password authentication failed", "authentication failed", "no password supplied",
          "pg_hba.conf", "password is required", "scram"}) {
        if (m.find(needle) != std::string::npos) {
            return DbError::auth;
        }
    }
    if (m.find("role \"") != std::string::npos && m.find("does not exist") != std::string::npos) {
        return DbError::auth;
    }
    return DbError::connect;
}

// The error kind of a failed query, from its SQLSTATE.
DbError classify_sqlstate(std::string_view state) {
    if (state == "42P01" || state == "42883" || state == "42703" || state == "3F000") {
        return DbError::schema;  // undefined table, function, column; no such schema
    }
    if (state.starts_with("08") || state.starts_with("57P")) {
        return DbError::connection_lost;  // connection exception, operator intervention
    }
    if (state.starts_with("28")) {
        return DbError::auth;
    }
    return DbError::query;
}

// Routes the server's notices (and the FATAL a terminated backend sends between queries)
// to the log instead of libpq's default, stderr.
void log_notice(void*, const char* message) {
    spdlog::info("PostgreSQL: {}", one_line(message == nullptr ? "" : message));
}

}  // namespace

std::string_view to_string(ConnState state) noexcept {
    switch (state) {
        case ConnState::idle:
            return "idle";
        case ConnState::waiting:
            return "waiting";
        case ConnState::connecting:
            return "connecting";
        case ConnState::subscribing:
            return "subscribing";
        case ConnState::snapshotting:
            return "snapshotting";
        case ConnState::catching_up:
            return "catching_up";
        case ConnState::ready:
            return "ready";
        case ConnState::trimming:
            return "trimming";
        case ConnState::fencing:
            return "fencing";
        case ConnState::verifying:
            return "verifying";
        case ConnState::recording:
            return "recording";
    }
    return "?";
}

std::string_view to_string(DbError kind) noexcept {
    switch (kind) {
        case DbError::connect:
            return "connect";
        case DbError::auth:
            return "auth";
        case DbError::schema:
            return "schema";
        case DbError::query:
            return "query";
        case DbError::connection_lost:
            return "connection_lost";
        case DbError::timeout:
            return "timeout";
        case DbError::publish:
            return "publish";
    }
    return "?";
}

void PostgresSource::ConnDeleter::operator()(pg_conn* c) const noexcept {
    PQfinish(c);
}
void PostgresSource::ResultDeleter::operator()(pg_result* r) const noexcept {
    PQclear(r);
}

PostgresSource::PostgresSource(PostgresSourceOptions options, event_base* base, SourceSink& sink,
                               DatabaseStats& stats)
    : options_(std::move(options)),
      base_(base),
      sink_(sink),
      stats_(stats),
      backoff_(options_.backoff_base, options_.backoff_cap) {}

PostgresSource::~PostgresSource() {
    stop();
}

void PostgresSource::start() {
    reconnect_timer_.reset(evtimer_new(base_, &PostgresSource::on_reconnect_timer, this));
    deadline_.reset(evtimer_new(base_, &PostgresSource::on_deadline, this));
    poll_timer_.reset(evtimer_new(base_, &PostgresSource::on_poll_timer, this));
    if (!reconnect_timer_ || !deadline_ || !poll_timer_) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: evtimer_new");
    }
    if (!arm_poll_timer()) {
        throw std::system_error(EINVAL, std::generic_category(), "libevent: event_add");
    }
    connect();
}

void PostgresSource::stop() noexcept {
    close_connection();
    reconnect_timer_.reset();
    deadline_.reset();
    poll_timer_.reset();
    state_ = ConnState::idle;
}

void PostgresSource::resume_from(std::uint64_t revision, bool listen) {
    stop();
    options_.listen = listen;
    has_snapshot_ = revision > 0;
    resync_needed_ = false;
    applied_ = revision;
    fetched_ = revision;
    held_.clear();
    announced_ = 0;
    announced_unknown_ = false;
    was_up_ = false;
    backoff_.reset();
}

void PostgresSource::wake() {
    wake_for(0, false);
}

void PostgresSource::on_reconnect_timer(evutil_socket_t, short, void* self) {
    guarded("postgres", [&] {
        auto& me = *static_cast<PostgresSource*>(self);
        ++me.stats_.reconnects;
        me.connect();
    });
}

void PostgresSource::on_deadline(evutil_socket_t, short, void* self) {
    guarded("postgres", [&] {
        auto& me = *static_cast<PostgresSource*>(self);
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - me.sent_at_);
        me.fail(DbError::timeout, to_string(me.state_),
                "no answer after " + std::to_string(waited.count()) + " ms");
    });
}

bool PostgresSource::arm_poll_timer() {
    // A listener polls on the dot. Pollers (a fleet's followers while Redis is away, who
    // all lost it at the same moment) draw each interval from [0.5, 1.5] of it, so that
    // they spread over the interval instead of querying together.
    std::chrono::microseconds next = options_.safety_poll;
    if (!options_.listen) {
        std::uniform_int_distribution<std::int64_t> d(next.count() / 2, next.count() * 3 / 2);
        next = std::chrono::microseconds(d(jitter_));
    }
    const timeval tv = to_timeval(next);
    return event_add(poll_timer_.get(), &tv) == 0;
}

void PostgresSource::on_poll_timer(evutil_socket_t, short, void* self) {
    guarded("postgres", [&] {
        auto& me = *static_cast<PostgresSource*>(self);
        ++me.stats_.safety_polls;
        if (!me.arm_poll_timer()) {
            spdlog::error("libevent: cannot re-arm the safety poll; notifications still work");
        }
        // Only when nothing is in flight: a query in flight reads everything committed
        // before it, and a lost connection is the reconnect timer's business.
        if (me.state_ == ConnState::ready) {
            me.start_catchup();
        }
    });
}

void PostgresSource::on_io(evutil_socket_t, short what, void* self) {
    guarded("postgres", [&] {
        auto& me = *static_cast<PostgresSource*>(self);
        if (me.state_ == ConnState::connecting) {
            me.continue_connect();
            return;
        }
        if ((what & EV_WRITE) != 0 && me.want_write_) {
            me.flush();
            if (!me.conn_) {
                return;
            }
        }
        if ((what & EV_READ) != 0) {
            me.read_input();
        }
    });
}

void PostgresSource::connect() {
    close_connection();
    state_ = ConnState::connecting;
    // Defaults first: the URL's own settings, expanded from "dbname", override them.
    // libpq ignores connect_timeout in non-blocking connects; the deadline timer is ours.
    const char* keywords[] = {"keepalives",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "tcp_user_timeout",
                              "dbname",
                              nullptr};
    const char* values[] = {"1", "10", "5", "3", "15000", options_.conninfo.c_str(), nullptr};
    conn_.reset(PQconnectStartParams(keywords, values, 1));
    if (!conn_) {
        fail(DbError::connect, "connect", "libpq: out of memory");
        return;
    }
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
        const std::string message = one_line(PQerrorMessage(conn_.get()));
        fail(classify_connect_failure(message), "connect", message);
        return;
    }
    PQsetNoticeProcessor(conn_.get(), &log_notice, nullptr);
    sent_at_ = std::chrono::steady_clock::now();
    arm_deadline(options_.connect_timeout);
    // As if PQconnectPoll had last returned PGRES_POLLING_WRITING (libpq's documentation).
    watch(EV_WRITE | EV_PERSIST);
}

void PostgresSource::continue_connect() {
    // libpq may close the socket and open another (the next address or host), which can
    // get the same descriptor number: register afresh after every step, as an event on a
    // closed and reused descriptor would never fire.
    io_.reset();
    switch (PQconnectPoll(conn_.get())) {
        case PGRES_POLLING_READING:
            watch(EV_READ | EV_PERSIST);
            return;
        case PGRES_POLLING_WRITING:
            watch(EV_WRITE | EV_PERSIST);
            return;
        case PGRES_POLLING_OK:
            on_connected();
            return;
        case PGRES_POLLING_FAILED:
        default: {
            const std::string message = one_line(PQerrorMessage(conn_.get()));
            fail(classify_connect_failure(message), "connect", message);
            return;
        }
    }
}

void PostgresSource::on_connected() {
    disarm_deadline();
    if (PQsetnonblocking(conn_.get(), 1) != 0) {
        fail(DbError::connect, "connect", one_line(PQerrorMessage(conn_.get())));
        return;
    }
    const int version = PQserverVersion(conn_.get());
    const char* host = PQhost(conn_.get());
    const char* port = PQport(conn_.get());
    server_ = std::string(host != nullptr ? host : "?") + ":" + (port != nullptr ? port : "?");
    fence_pending_ = want_fence_;
    verify_pending_ = true;
    spdlog::info("connected to {} (server {}, PostgreSQL {}.{}, backend pid {})",
                 options_.redacted_url, server_, version / 10000, version % 10000,
                 PQbackendPID(conn_.get()));
    const char* sql = options_.listen ? kSubscribeSql.c_str() : kPollSetupSql.c_str();
    (void)send(ConnState::subscribing, options_.listen ? "LISTEN" : "PREPARE",
               [this, sql] { return PQsendQuery(conn_.get(), sql); });
}

// Registers interest in `events` on the connection's socket, which libpq may change while
// connecting (another address, another host).
void PostgresSource::watch(short events) {
    const int fd = PQsocket(conn_.get());
    if (fd < 0) {
        fail(DbError::connection_lost, to_string(state_), "libpq has no socket");
        return;
    }
    if (io_ && fd == io_fd_ && events == io_events_) {
        return;
    }
    io_.reset(event_new(base_, fd, events, &PostgresSource::on_io, this));
    if (!io_ || event_add(io_.get(), nullptr) != 0) {
        io_.reset();
        fail(DbError::connect, to_string(state_), "libevent: cannot watch the socket");
        return;
    }
    io_fd_ = fd;
    io_events_ = events;
}

bool PostgresSource::send(ConnState next, std::string_view what,
                          const std::function<int()>& submit) {
    state_ = next;
    results_.clear();
    sent_at_ = std::chrono::steady_clock::now();
    if (submit() != 1) {
        fail(DbError::connection_lost, what, one_line(PQerrorMessage(conn_.get())));
        return false;
    }
    arm_deadline(options_.query_timeout);
    flush();
    return conn_ != nullptr;
}

void PostgresSource::flush() {
    const int r = PQflush(conn_.get());
    if (r < 0) {
        fail(DbError::connection_lost, to_string(state_), one_line(PQerrorMessage(conn_.get())));
        return;
    }
    want_write_ = r == 1;
    // Always readable: notifications arrive at any time, and libpq needs input consumed
    // while it waits to write (its documentation for PQflush).
    watch(static_cast<short>(EV_READ | EV_PERSIST | (want_write_ ? EV_WRITE : 0)));
}

void PostgresSource::read_input() {
    if (PQconsumeInput(conn_.get()) != 1) {
        fail(DbError::connection_lost, to_string(state_), one_line(PQerrorMessage(conn_.get())));
        return;
    }
    drain_notifications();
    if (!conn_) {
        return;
    }
    const bool in_flight = state_ == ConnState::subscribing || state_ == ConnState::snapshotting ||
                           state_ == ConnState::catching_up || state_ == ConnState::trimming ||
                           state_ == ConnState::fencing || state_ == ConnState::verifying ||
                           state_ == ConnState::recording;
    if (!in_flight) {
        if (PQstatus(conn_.get()) == CONNECTION_BAD) {
            fail(DbError::connection_lost, to_string(state_),
                 one_line(PQerrorMessage(conn_.get())));
        }
        return;
    }
    while (PQisBusy(conn_.get()) == 0) {
        PGresult* r = PQgetResult(conn_.get());
        if (r == nullptr) {
            disarm_deadline();
            handle_results();
            // Parsing the results may have queued notifications that came after them;
            // the socket will not be readable again for those.
            if (conn_) {
                drain_notifications();
            }
            return;
        }
        results_.emplace_back(r);
    }
}

void PostgresSource::drain_notifications() {
    while (PGnotify* n = PQnotifies(conn_.get())) {
        const bool ours = n->relname != nullptr && kChannel == n->relname;
        const auto notified =
            ours && n->extra != nullptr ? notify_revision(n->extra) : std::nullopt;
        const bool known = notified.has_value();
        const std::uint64_t revision = notified.value_or(0);
        if (ours) {
            ++stats_.notifications;
            if (!known) {
                // The payload is not ours to trust or to print: its length only. A flood
                // of them is logged sparingly (the counter has them all).
                const std::uint64_t bad = ++stats_.bad_notifications;
                if (bad <= 10 || bad % 1000 == 0) {
                    spdlog::warn(
                        "notification on {} with a payload that is not a revision ({} bytes; "
                        "{} so far); treated as a plain wake-up",
                        kChannel, n->extra != nullptr ? std::string_view(n->extra).size() : 0, bad);
                }
            }
        }
        PQfreemem(n);
        if (ours) {
            wake_for(revision, known);
            if (!conn_) {
                return;
            }
        }
    }
}

void PostgresSource::wake_for(std::uint64_t revision, bool known) {
    if (known) {
        if (revision <= fetched_) {
            return;  // already read: an echo of a burst we caught up with
        }
        announced_ = std::max(announced_, revision);
    } else {
        announced_unknown_ = true;
    }
    if (state_ == ConnState::ready) {
        start_catchup();
    }
}

void PostgresSource::handle_results() {
    switch (state_) {
        case ConnState::subscribing:
            handle_subscribe();
            return;
        case ConnState::snapshotting:
            handle_snapshot();
            return;
        case ConnState::catching_up:
            handle_catchup();
            return;
        case ConnState::trimming:
            handle_trim();
            return;
        case ConnState::fencing:
            handle_fence();
            return;
        case ConnState::verifying:
            handle_verify();
            return;
        case ConnState::recording:
            handle_record();
            return;
        default:
            return;
    }
}

void PostgresSource::fail_result(std::string_view what, const pg_result* result) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    std::string message = one_line(PQresultErrorMessage(result));
    if (message.empty()) {
        message = one_line(PQerrorMessage(conn_.get()));
    }
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
        fail(DbError::connection_lost, what, message);
        return;
    }
    fail(classify_sqlstate(state != nullptr ? state : ""), what, message);
}

void PostgresSource::become_ready() {
    if (trim_keep_ != 0) {
        start_trim();
        return;
    }
    state_ = ConnState::ready;
    backoff_.reset();
    if (!was_up_) {
        was_up_ = true;
        spdlog::info("caught up with {} at revision {}", options_.redacted_url, applied_);
        sink_.source_up(true);
    }
}

void PostgresSource::fail(DbError kind, std::string_view what, std::string detail) {
    ++stats_.error(kind);
    close_connection();
    held_.clear();
    fetched_ = applied_;
    state_ = ConnState::waiting;
    const Backoff::Duration delay = backoff_.next();
    const std::string retry = "retrying in " + format_delay(delay) +
                              (has_snapshot_ ? "" : " (not ready: nothing published yet)");
    const std::string& url = options_.redacted_url;
    switch (kind) {
        case DbError::auth:
            spdlog::error(
                "PostgreSQL at {} refused the credentials: {}; check the user and password in "
                "DATABASE_URL (and pg_hba.conf); {}",
                url, detail, retry);
            break;
        case DbError::schema:
            spdlog::error(
                "the yuxi-config tables are missing in {} ({}): run `yuxi-configctl schema "
                "apply`; {}",
                url, detail, retry);
            break;
        case DbError::connect:
            spdlog::warn("cannot connect to {}: {}; {}", url, detail, retry);
            break;
        case DbError::connection_lost:
            spdlog::warn("lost the connection to {} ({}): {}; {}", url, what, detail, retry);
            break;
        case DbError::timeout:
            spdlog::warn("{} at {} timed out: {}; {}", what, url, detail, retry);
            break;
        case DbError::query:
        case DbError::publish:
            spdlog::error("{} failed ({}): {}; {}", what, url, detail, retry);
            break;
    }
    if (was_up_) {
        was_up_ = false;
        sink_.source_up(false);
    }
    if (reconnect_timer_) {
        const timeval tv = to_timeval(delay);
        if (event_add(reconnect_timer_.get(), &tv) != 0) {
            spdlog::critical("libevent: cannot arm the reconnect timer");
        }
    }
}

void PostgresSource::close_connection() noexcept {
    disarm_deadline();
    io_.reset();
    io_fd_ = -1;
    io_events_ = 0;
    want_write_ = false;
    results_.clear();
    conn_.reset();
    server_.clear();
}

void PostgresSource::arm_deadline(std::chrono::milliseconds after) {
    if (!deadline_) {
        return;
    }
    const timeval tv = to_timeval(after);
    if (event_add(deadline_.get(), &tv) != 0) {
        spdlog::error("libevent: cannot arm a deadline; a hung server will not be noticed");
    }
}

void PostgresSource::disarm_deadline() noexcept {
    if (deadline_) {
        event_del(deadline_.get());
    }
}

}  // namespace yuxi::config::agent
