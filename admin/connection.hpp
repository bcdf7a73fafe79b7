// The admin library's PostgreSQL connection: where the database is (DATABASE_URL,
// DATABASE_URL_SYNC), a blocking libpq connection, prepared statements, and errors a person
// can act on. Every message shows the URL with its password replaced by "***". Internal to
// the admin library and its tools (yuxi-configctl's schema, migrate and export).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yuxi/config/admin.hpp"

struct pg_conn;
struct pg_result;

namespace yuxi::config::admin {

// The database: the URL as given, and how it is shown.
struct DatabaseTarget {
    std::string url;
    std::string shown;  // redacted
};

// `url`, else DATABASE_URL, else DATABASE_URL_SYNC (an empty variable counts as unset).
// Nothing when there is none.
std::optional<DatabaseTarget> resolve_database(std::string_view url);

// One row of a result: NULL is an empty optional.
using DbRow = std::vector<std::optional<std::string>>;
using Params = std::vector<std::optional<std::string>>;

// A blocking libpq connection (connect_timeout 5 s unless the URL sets one). Failures
// throw AdminError: unavailable (naming the database), usage (class 22: the input).
class Connection {
  public:
    Connection(const DatabaseTarget& target, const std::string& application_name);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs `sql` with text parameters (nullopt is NULL); returns the rows, if any.
    std::vector<DbRow> query(std::string_view sql, const Params& params = {});
    // The first column of the first row; nullopt when there is no row or it is NULL.
    std::optional<std::string> scalar(std::string_view sql, const Params& params = {});
    // A statement prepared once per connection under `name`, then executed.
    std::vector<DbRow> prepared(const char* name, std::string_view sql, const Params& params);
    // Runs one or more statements without parameters (a migration file).
    void script(std::string_view sql);

    void begin() { (void)query("BEGIN"); }
    void commit() { (void)query("COMMIT"); }
    // After a failure: ends the transaction, ignoring errors (the connection may be gone).
    void rollback() noexcept;
    // Takes the log's advisory lock for the rest of the transaction (deploy/sql/002).
    void lock_log() { (void)query("SELECT pg_advisory_xact_lock(yuxi_config_lock_key())"); }
    // The revision the trigger drew in this transaction, nullopt if it logged nothing.
    std::optional<std::uint64_t> written_revision();

    const std::string& shown() const noexcept { return shown_; }

  private:
    [[noreturn]] void fail(pg_result* result, bool schema_hint);
    std::vector<DbRow> rows_of(pg_result* result, bool schema_hint);
    std::string scrub(std::string message) const;

    pg_conn* conn_ = nullptr;
    std::string shown_;
    std::string password_;  // only to scrub it from server messages
    std::vector<std::string> prepared_;
};

// The log's view of one key: its last change, and the trim watermark.
struct KeyRevision {
    std::uint64_t last_change = 0;
    std::uint64_t trimmed_through = 0;
    std::uint64_t effective() const noexcept {
        return last_change != 0 ? last_change : trimmed_through;
    }
};

KeyRevision key_revision(Connection& db, std::string_view ns, std::string_view key);
std::uint64_t database_revision(Connection& db);
std::uint64_t to_u64(const std::optional<std::string>& cell);

}  // namespace yuxi::config::admin
