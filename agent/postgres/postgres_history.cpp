// What the PostgreSQL source does on a new connection between LISTEN and catching up: draw
// the relay's fencing token, and check that the database still holds the history applied
// here, recording and resyncing if a failover rewound it (postgres_source.hpp,
// history_check.hpp).
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include "agent/postgres/postgres_source.hpp"
#include "agent/postgres/queries.hpp"
#include "core/text.hpp"

namespace yuxi::config::agent {
namespace {

using namespace queries;

std::optional<std::uint64_t> u64_at(const PGresult* r, int row, int col) {
    if (PQgetisnull(r, row, col) != 0) {
        return std::nullopt;
    }
    return parse_u64(PQgetvalue(r, row, col));
}

// The history query's reply, or nothing if it is not of the expected shape.
std::optional<DatabaseHistory> history_rows(const PGresult* r) {
    if (PQnfields(r) != 4 || PQntuples(r) < 1) {
        return std::nullopt;
    }
    DatabaseHistory db;
    bool watermark = false;
    const int n = PQntuples(r);
    for (int i = 0; i < n; ++i) {
        if (PQgetisnull(r, i, 0) != 0) {
            const auto trimmed = u64_at(r, i, 2);
            const auto head = u64_at(r, i, 3);
            if (watermark || !trimmed || !head) {
                return std::nullopt;
            }
            watermark = true;
            db.trimmed = *trimmed;
            db.head = *head;
            continue;
        }
        const auto revision = u64_at(r, i, 0);
        const auto changed_us = u64_at(r, i, 1);
        if (!revision || !changed_us) {
            return std::nullopt;
        }
        db.rows.push_back({*revision, *changed_us});
    }
    if (!watermark) {
        return std::nullopt;
    }
    return db;
}

}  // namespace

void PostgresSource::after_subscribe() {
    if (fence_pending_) {
        start_fence();
    } else if (verify_pending_ && has_snapshot_ && !resync_needed_ && !history_.marks().empty()) {
        start_verify();
    } else if (!has_snapshot_ || resync_needed_) {
        start_snapshot();
    } else {
        start_catchup();
    }
}

void PostgresSource::start_fence() {
    fence_pending_ = false;
    (void)send(ConnState::fencing, "relay fence",
               [this] { return PQsendQuery(conn_.get(), kFenceSql); });
}

void PostgresSource::handle_fence() {
    const pg_result* r = results_.empty() ? nullptr : results_.front().get();
    if (r != nullptr && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        if (const auto fence = u64_at(r, 0, 0)) {
            results_.clear();
            sink_.relay_fence(*fence);
            after_subscribe();
            return;
        }
    }
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
        fail(DbError::connection_lost, "relay fence", one_line(PQerrorMessage(conn_.get())));
        return;
    }
    // An older schema: the relay keeps the fence Redis gave it, as before.
    if (!fence_missing_logged_) {
        fence_missing_logged_ = true;
        spdlog::warn(
            "cannot draw the relay's fencing token from PostgreSQL ({}): using Redis's, which "
            "a Redis failover can hand out twice; run `yuxi-configctl schema apply`",
            r != nullptr ? one_line(PQresultErrorMessage(r)) : std::string("no result"));
    }
    results_.clear();
    after_subscribe();
}

void PostgresSource::start_verify() {
    verify_pending_ = false;
    const std::string revisions = history_.revisions_array();
    (void)send(ConnState::verifying, "history check", [this, &revisions] {
        const char* params[] = {revisions.c_str()};
        return PQsendQueryParams(conn_.get(), kHistorySql, 1, nullptr, params, nullptr, nullptr, 0);
    });
}

void PostgresSource::handle_verify() {
    if (results_.size() != 1 || PQresultStatus(results_[0].get()) != PGRES_TUPLES_OK) {
        fail_result("history check", results_.empty() ? nullptr : results_[0].get());
        return;
    }
    const auto db = history_rows(results_[0].get());
    results_.clear();
    if (!db) {
        fail(DbError::query, "history check", "a reply of another shape");
        return;
    }
    const auto rewind = check_history(history_, *db);
    if (!rewind) {
        after_subscribe();
        return;
    }
    ++stats_.history_rewinds;
    spdlog::error(
        "HISTORY REWOUND at {}: the database (now at revision {}) does not hold {}: a failover "
        "to a standby that lacked them. Those changes are gone; resyncing to the database's "
        "state now, without merging",
        server_, rewind->database_head, rewind->describe());
    rewound_pending_ = true;
    resync_needed_ = true;
    start_record(*rewind);
}

void PostgresSource::start_record(const Rewind& rewind) {
    // Best effort, so that `yuxi-configctl log status` shows it: an older schema, a
    // read-only role or a standby refuses, and the resync goes on regardless.
    char* name =
        PQescapeLiteral(conn_.get(), options_.agent_name.data(), options_.agent_name.size());
    const std::string who = name != nullptr ? name : "NULL";
    PQfreemem(name);
    const std::string sql =
        "DO $$ BEGIN INSERT INTO yuxi_config_rewinds (first_lost, last_applied, "
        "database_revision, detected_by) VALUES (" +
        std::to_string(rewind.first_lost) + ", " + std::to_string(rewind.last_applied) + ", " +
        std::to_string(rewind.database_head) + ", " + who +
        ") ON CONFLICT DO NOTHING; EXCEPTION WHEN undefined_table OR insufficient_privilege OR "
        "read_only_sql_transaction THEN NULL; END $$";
    (void)send(ConnState::recording, "rewind record",
               [this, &sql] { return PQsendQuery(conn_.get(), sql.c_str()); });
}

void PostgresSource::handle_record() {
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
        fail(DbError::connection_lost, "rewind record", one_line(PQerrorMessage(conn_.get())));
        return;
    }
    results_.clear();
    start_snapshot();
}

}  // namespace yuxi::config::agent
