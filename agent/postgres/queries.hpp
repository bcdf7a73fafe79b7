// The SQL of the PostgreSQL source (docs/design.md, "PostgreSQL"): what it sends on a new
// connection, the snapshot transaction and the prepared catch-up query.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace yuxi::config::agent::queries {

inline constexpr std::string_view kChannel = "yuxi_config";
inline constexpr const char* kCatchupStatement = "yuxi_config_catchup";

// LISTEN before anything is read, so that a commit after this point always wakes us.
//
// The catch-up query returns one watermark row (revision NULL: the trim watermark and the
// log's head) and the page of the log after $1, from one statement, hence one snapshot: a
// trim can never remove rows between the check and the read. The page is an index range
// scan under a LIMIT, in a plain UNION ALL (no join, no sort above it), so the plan stays
// an index scan whatever the statistics, cached or not. JIT is off for the session: it
// would cost milliseconds on queries that take microseconds.
inline constexpr const char* kCatchupPrepareSql =
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

inline const std::string kSubscribeSql =
    std::string("SET jit = off; LISTEN yuxi_config; ") + kCatchupPrepareSql;
inline constexpr std::size_t kSubscribeStatements = 3;
// A poller (a relay's follower while Redis is away) must not LISTEN: N pods listening is
// the load on every commit that the relay exists to avoid.
inline const std::string kPollSetupSql = std::string("SET jit = off; ") + kCatchupPrepareSql;
inline constexpr std::size_t kPollSetupStatements = 2;

// One REPEATABLE READ transaction: the revision and both tables from one snapshot. The
// trigger writes the log in the writer's transaction and revisions commit in order, so
// the tables in this snapshot are exactly the state at this revision. After a complete
// trim the log can be empty: the watermark is then the revision.
inline constexpr const char* kSnapshotSql =
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
    "SELECT r, (SELECT (extract(epoch FROM changed_at) * 1000000)::bigint "
    "             FROM yuxi_config_changes WHERE revision = r) "
    "  FROM (SELECT greatest(coalesce((SELECT max(revision) FROM yuxi_config_changes), 0), "
    "                coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0)) AS r) s; "
    "SELECT key, value::text, coalesce(category, '') FROM system_configs; "
    "SELECT key, content::text FROM global_metadata; "
    "COMMIT";

// The history check (history_check.hpp): the watermark row (revision NULL), then
// changed_at of each revision asked ($1, a bigint array) that the log still has.
inline constexpr const char* kHistorySql =
    "SELECT NULL::bigint, NULL::bigint, "
    "       coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0), "
    "       coalesce((SELECT max(revision) FROM yuxi_config_changes), 0) "
    "UNION ALL "
    "SELECT revision, (extract(epoch FROM changed_at) * 1000000)::bigint, NULL, NULL "
    "  FROM yuxi_config_changes WHERE revision = ANY($1::bigint[])";

// The relay's fencing token: from PostgreSQL, so that it never goes back when a Redis
// failover loses the lease counter (deploy/sql/003_high_availability.sql).
inline constexpr const char* kFenceSql = "SELECT nextval('yuxi_config_relay_fence')";

}  // namespace yuxi::config::agent::queries
