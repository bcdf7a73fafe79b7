// The PostgreSQL source: libpq without blocking, on the libevent loop.
#include "postgres_source.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <random>
#include <system_error>
#include <utility>

#include "core/change_message.hpp"
#include "core/database_url.hpp"
#include "core/text.hpp"
#include "rejections.hpp"

namespace yuxi::config::agent {
namespace {

constexpr std::string_view kChannel = "yuxi_config";
constexpr const char* kCatchupStatement = "yuxi_config_catchup";

// LISTEN before anything is read, so that a commit after this point always wakes us.
//
// The catch-up query returns one watermark row (revision NULL: the trim watermark and the
// log's head) and the page of the log after $1, from one statement, hence one snapshot: a
// trim can never remove rows between the check and the read. The page is an index range
// scan under a LIMIT, in a plain UNION ALL (no join, no sort above it), so the plan stays
// an index scan whatever the statistics, cached or not. JIT is off for the session: it
// would cost milliseconds on queries that take microseconds.
constexpr const char* kCatchupPrepareSql =
    "PREPARE yuxi_config_catchup(bigint, integer) AS "
    "SELECT NULL::bigint AS revision, NULL::text AS namespace, NULL::text AS key, "
    "       NULL::text AS op, NULL::text AS value, NULL::text AS category, "
    "       NULL::bigint AS changed_us, NULL::text AS tx, "
    "       coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0) AS trimmed, "
    "       coalesce((SELECT max(revision) FROM yuxi_config_changes), 0) AS head "
    "UNION ALL "
    "(SELECT revision, namespace, key, op::text, new_value::text, coalesce(category, ''), "
    "        (extract(epoch FROM changed_at) * 1000000)::bigint, xmin::text, NULL, NULL "
    "   FROM yuxi_config_changes WHERE revision > $1 ORDER BY revision LIMIT $2)";

const std::string kSubscribeSql =
    std::string("SET jit = off; LISTEN yuxi_config; ") + kCatchupPrepareSql;
constexpr std::size_t kSubscribeStatements = 3;
// A poller (a relay's follower while Redis is away) must not LISTEN: N pods listening is
// the load on every commit that the relay exists to avoid.
const std::string kPollSetupSql = std::string("SET jit = off; ") + kCatchupPrepareSql;
constexpr std::size_t kPollSetupStatements = 2;

// One REPEATABLE READ transaction: the revision and both tables from one snapshot. The
// trigger writes the log in the writer's transaction and revisions commit in order, so
// the tables in this snapshot are exactly the state at this revision. After a complete
// trim the log can be empty: the watermark is then the revision.
constexpr const char* kSnapshotSql =
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
    "SELECT greatest(coalesce((SELECT max(revision) FROM yuxi_config_changes), 0), "
    "                coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0)); "
    "SELECT key, value::text, coalesce(category, '') FROM system_configs; "
    "SELECT key, content::text FROM global_metadata; "
    "COMMIT";

timeval to_timeval(std::chrono::microseconds us) {
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(us.count() / 1000000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>(us.count() % 1000000);
    return tv;
}

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

std::string field(const PGresult* r, int row, int col) {
    return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

// The catch-up reply's fields as text (views into `r`), for decode_catchup_page. A reply
// of another shape becomes rows without a watermark, which the decoder refuses.
std::vector<CatchupRow> catchup_rows(const PGresult* r) {
    std::vector<CatchupRow> rows;
    if (PQnfields(r) != kCatchupColumns) {
        return rows;
    }
    const int n = PQntuples(r);
    rows.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        for (int c = 0; c < kCatchupColumns; ++c) {
            if (PQgetisnull(r, i, c) == 0) {
                rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(c)] = std::string_view(
                    PQgetvalue(r, i, c), static_cast<std::size_t>(PQgetlength(r, i, c)));
            }
        }
    }
    return rows;
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
    spdlog::info("connected to {} (PostgreSQL {}.{}, backend pid {})", options_.redacted_url,
                 version / 10000, version % 10000, PQbackendPID(conn_.get()));
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
                           state_ == ConnState::catching_up || state_ == ConnState::trimming;
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

void PostgresSource::handle_subscribe() {
    for (const ResultPtr& r : results_) {
        if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
            fail_result("LISTEN", r.get());
            return;
        }
    }
    const std::size_t expected = options_.listen ? kSubscribeStatements : kPollSetupStatements;
    if (results_.size() != expected) {
        fail(DbError::query, "LISTEN",
             "expected " + std::to_string(expected) + " results, got " +
                 std::to_string(results_.size()));
        return;
    }
    results_.clear();
    ++stats_.connects;
    if (!has_snapshot_ || resync_needed_) {
        start_snapshot();
    } else {
        start_catchup();
    }
}

void PostgresSource::start_snapshot() {
    held_.clear();
    (void)send(ConnState::snapshotting, "snapshot",
               [this] { return PQsendQuery(conn_.get(), kSnapshotSql); });
}

void PostgresSource::handle_snapshot() {
    constexpr ExecStatusType kExpected[] = {PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_TUPLES_OK,
                                            PGRES_TUPLES_OK, PGRES_COMMAND_OK};
    for (std::size_t i = 0; i < results_.size(); ++i) {
        const ExecStatusType st = PQresultStatus(results_[i].get());
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            fail_result("snapshot", results_[i].get());
            return;
        }
        if (i >= std::size(kExpected) || st != kExpected[i]) {
            fail(DbError::query, "snapshot",
                 std::string("unexpected result ") + PQresStatus(st) + " of statement " +
                     std::to_string(i + 1));
            return;
        }
    }
    if (results_.size() != std::size(kExpected) || PQntuples(results_[1].get()) != 1) {
        fail(DbError::query, "snapshot",
             "expected 5 results, got " + std::to_string(results_.size()));
        return;
    }
    DbSnapshot snap;
    snap.query_time = std::chrono::steady_clock::now() - sent_at_;
    const auto snapshot_revision = parse_u64(PQgetvalue(results_[1].get(), 0, 0));
    snap.revision = snapshot_revision.value_or(0);
    if (!snapshot_revision || *snapshot_revision > kMaxRevision) {
        fail(DbError::query, "snapshot", "the revision is not a number");
        return;
    }
    const PGresult* configs = results_[2].get();
    const PGresult* metadata = results_[3].get();
    const int nc = PQntuples(configs);
    const int nm = PQntuples(metadata);
    snap.entries.reserve(static_cast<std::size_t>(nc) + static_cast<std::size_t>(nm));
    for (int i = 0; i < nc; ++i) {
        snap.entries.push_back(
            {Namespace::config, field(configs, i, 0), field(configs, i, 1), field(configs, i, 2)});
    }
    for (int i = 0; i < nm; ++i) {
        snap.entries.push_back(
            {Namespace::metadata, field(metadata, i, 0), field(metadata, i, 1), std::string()});
    }
    results_.clear();

    const bool first = !has_snapshot_;
    const std::uint64_t revision = snap.revision;
    if (!sink_.publish_snapshot(std::move(snap))) {
        fail(DbError::publish, "snapshot", "the segment did not take the snapshot");
        return;
    }
    ++stats_.snapshots;
    stats_.resyncs += first ? 0 : 1;
    has_snapshot_ = true;
    resync_needed_ = false;
    applied_ = fetched_ = revision;
    stats_.applied_revision = revision;
    held_.clear();
    // Whatever committed while the snapshot ran is in the log after `revision`.
    start_catchup();
}

void PostgresSource::start_catchup() {
    // Whatever was announced before this query is sent, it reads; only later
    // announcements can call for another round (so a bogus revision costs one, not a loop).
    announced_ = 0;
    announced_unknown_ = false;
    catchup_from_ = fetched_;
    const std::string after = std::to_string(fetched_);
    const std::string limit =
        std::to_string(std::max<std::uint32_t>(options_.max_catchup_batch, 1));
    (void)send(ConnState::catching_up, "catch-up", [this, &after, &limit] {
        const char* params[] = {after.c_str(), limit.c_str()};
        return PQsendQueryPrepared(conn_.get(), kCatchupStatement, 2, params, nullptr, nullptr, 0);
    });
}

void PostgresSource::handle_catchup() {
    if (results_.size() != 1 || PQresultStatus(results_[0].get()) != PGRES_TUPLES_OK) {
        for (const ResultPtr& r : results_) {
            if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
                fail_result("catch-up", r.get());
                return;
            }
        }
        fail(DbError::query, "catch-up",
             "expected 1 result, got " + std::to_string(results_.size()));
        return;
    }
    ++stats_.catchups;
    const ResultPtr result = std::move(results_[0]);
    results_.clear();
    auto decoded = decode_catchup_page(catchup_rows(result.get()));
    if (!decoded) {
        fail(DbError::query, "catch-up", decoded.reason());
        return;
    }
    CatchupPage& page = *decoded;
    const std::uint64_t trimmed = page.trimmed;
    const std::uint64_t head = page.head;
    if (trimmed > applied_) {
        spdlog::warn(
            "the change log was trimmed through revision {}, past revision {} applied here: "
            "full resync",
            trimmed, applied_);
        resync_needed_ = true;
        start_snapshot();
        return;
    }
    if (std::max(head, trimmed) < applied_) {
        spdlog::warn(
            "the database is at revision {}, behind revision {} applied here (restored from a "
            "backup, or another database?): full resync",
            std::max(head, trimmed), applied_);
        resync_needed_ = true;
        start_snapshot();
        return;
    }
    // Rows of the page, grouped into transactions; `held_` carries a transaction the
    // previous page cut.
    const int rows = static_cast<int>(page.rows.size());
    for (LogRow& row : page.rows) {
        if (!held_.empty() && held_.back().tx != row.tx) {
            if (!publish_group(held_)) {
                return;
            }
        }
        fetched_ = row.revision;
        held_.push_back(std::move(row));
    }
    const bool page_full = rows >= static_cast<int>(options_.max_catchup_batch);
    // A full page may have cut the last transaction: hold it until the next page shows
    // where it ends. Otherwise every transaction in it is complete (commits are atomic).
    if (!page_full && !held_.empty()) {
        if (!publish_group(held_)) {
            return;
        }
    }
    spdlog::debug("catch-up after revision {}: {} log rows{}", catchup_from_, rows,
                  page_full ? " (a full page: more follow)" : "");
    if (page_full || announced_unknown_ || announced_ > fetched_) {
        start_catchup();
        return;
    }
    become_ready();
}

bool PostgresSource::publish_group(std::vector<LogRow>& rows) {
    LogTransaction tx;
    tx.first_revision = rows.front().revision;
    tx.last_revision = rows.back().revision;
    tx.commit_ns = rows.back().changed_us * 1000;
    tx.changes.reserve(rows.size());
    for (LogRow& row : rows) {
        tx.changes.push_back(std::move(row.change));
    }
    rows.clear();
    const std::uint64_t last = tx.last_revision;
    if (!sink_.publish_transaction(std::move(tx))) {
        fail(DbError::publish, "catch-up",
             "the segment did not take revision " + std::to_string(last));
        return false;
    }
    applied_ = last;
    stats_.applied_revision = last;
    return true;
}

void PostgresSource::trim_log(std::uint64_t keep) {
    trim_keep_ = std::max<std::uint64_t>(keep, 1);
    if (state_ == ConnState::ready) {
        start_trim();
    }
}

void PostgresSource::start_trim() {
    // One implicit transaction (a multi-statement simple query): the log's lock first, as
    // every writer takes it, so the cut and the watermark agree with what commits next.
    const std::string keep = std::to_string(trim_keep_);
    trim_keep_ = 0;
    const std::string sql =
        "SELECT pg_advisory_xact_lock(yuxi_config_lock_key()); "
        "WITH cut AS (SELECT revision FROM yuxi_config_changes ORDER BY revision DESC "
        "             OFFSET " +
        keep +
        " LIMIT 1), "
        "     d AS (DELETE FROM yuxi_config_changes "
        "           WHERE revision <= (SELECT revision FROM cut) RETURNING 1), "
        "     u AS (UPDATE yuxi_config_log_state "
        "           SET trimmed_through = greatest(trimmed_through, (SELECT revision FROM cut)) "
        "           WHERE EXISTS (SELECT 1 FROM cut) RETURNING 1) "
        "SELECT coalesce((SELECT revision FROM cut), 0), (SELECT count(*) FROM d), "
        "       (SELECT count(*) FROM u)";
    (void)send(ConnState::trimming, "log trim",
               [this, sql] { return PQsendQuery(conn_.get(), sql.c_str()); });
}

void PostgresSource::handle_trim() {
    for (const ResultPtr& r : results_) {
        const ExecStatusType st = PQresultStatus(r.get());
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            fail_result("log trim", r.get());
            return;
        }
    }
    const pg_result* last = results_.empty() ? nullptr : results_.back().get();
    if (last != nullptr && PQntuples(last) == 1 && PQnfields(last) == 3) {
        const std::string cut = PQgetvalue(last, 0, 0);
        const std::string rows = PQgetvalue(last, 0, 1);
        if (rows != "0") {
            spdlog::info("change log trimmed: {} rows through revision {}", rows, cut);
        }
    }
    results_.clear();
    if (announced_unknown_ || announced_ > fetched_) {
        start_catchup();
        return;
    }
    become_ready();
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
