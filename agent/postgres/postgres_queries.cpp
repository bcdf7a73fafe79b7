// The PostgreSQL source's queries: subscribing, the snapshot, the catch-up by revision
// and the log trim, and what each reply means (postgres_source.hpp has the protocol).
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/postgres/postgres_source.hpp"
#include "agent/postgres/queries.hpp"
#include "core/change_message.hpp"
#include "core/text.hpp"

namespace yuxi::config::agent {
namespace {

using namespace queries;

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
    after_subscribe();
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
    if (PQnfields(results_[1].get()) > 1 && PQgetisnull(results_[1].get(), 0, 1) == 0) {
        snap.changed_us = parse_u64(PQgetvalue(results_[1].get(), 0, 1)).value_or(0);
    }
    snap.rewound = rewound_pending_;
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
    const std::uint64_t changed_us = snap.changed_us;
    if (!sink_.publish_snapshot(std::move(snap))) {
        fail(DbError::publish, "snapshot", "the segment did not take the snapshot");
        return;
    }
    ++stats_.snapshots;
    stats_.resyncs += first ? 0 : 1;
    has_snapshot_ = true;
    resync_needed_ = false;
    rewound_pending_ = false;
    history_.reset(revision, changed_us);
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
    const std::uint64_t changed_us = rows.back().changed_us;
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
    history_.applied(last, changed_us);
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

}  // namespace yuxi::config::agent
