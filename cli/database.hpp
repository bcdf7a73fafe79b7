// PostgreSQL for yuxi-configctl: where the database is (--database-url, DATABASE_URL,
// DATABASE_URL_SYNC), a blocking libpq connection, and the errors that end a command.
// Every message shows the URL with its password replaced by "***".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command_line.hpp"

struct pg_conn;
struct pg_result;

namespace yuxi::config::cli {

// The database a command works on: the URL as given, and how it is shown.
struct DatabaseTarget {
    std::string url;
    std::string shown;  // redacted
};

// From --database-url, else DATABASE_URL, else DATABASE_URL_SYNC (an empty variable
// counts as unset). Throws UsageError when there is none.
DatabaseTarget database_target(const CommandLine& cl);

// One row of a result: NULL is an empty optional.
using DbRow = std::vector<std::optional<std::string>>;

// A blocking libpq connection (application_name yuxi-configctl, connect_timeout 5 s unless
// the URL sets one). Every failure throws CommandError: Exit::unavailable with a message
// that names the database (redacted) and says what to do.
class Database {
  public:
    explicit Database(const DatabaseTarget& target);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Runs `sql` with text parameters (nullopt is NULL); returns the rows, if any.
    std::vector<DbRow> query(std::string_view sql,
                             const std::vector<std::optional<std::string>>& params = {});
    // The first column of the first row; nullopt when there is no row or it is NULL.
    std::optional<std::string> scalar(std::string_view sql,
                                      const std::vector<std::optional<std::string>>& params = {});
    // Runs one or more statements without parameters (a migration file).
    void script(std::string_view sql);

    void begin() { (void)query("BEGIN"); }
    void commit() { (void)query("COMMIT"); }
    // After a failure: ends the transaction, ignoring errors (the connection may be gone).
    void rollback() noexcept;

    // Takes the log's advisory lock for the rest of the transaction: writers serialize on
    // it (deploy/sql/002), so what this transaction reads stays true until it commits.
    void lock_log() { (void)query("SELECT pg_advisory_xact_lock(yuxi_config_lock_key())"); }

    // The revision the trigger drew in this transaction, nullopt if it logged nothing.
    std::optional<std::uint64_t> written_revision();

    const std::string& shown() const noexcept { return shown_; }

  private:
    // `schema_hint`: a missing table or function means `schema apply` was not run.
    [[noreturn]] void fail(pg_result* result, bool schema_hint);
    std::string scrub(std::string message) const;

    pg_conn* conn_ = nullptr;
    std::string shown_;
    std::string password_;  // only to scrub it from server messages
};

// The log's view of one key: its last change, and the trim watermark.
struct KeyRevision {
    std::uint64_t last_change = 0;      // 0 when the log has no row for the key
    std::uint64_t trimmed_through = 0;  // yuxi_config_log_state
    // The revision to compare --if-revision with: the last change, or, when the log has
    // none (trimmed, or written before the schema), the watermark (it was at most that).
    std::uint64_t effective() const noexcept {
        return last_change != 0 ? last_change : trimmed_through;
    }
};

KeyRevision key_revision(Database& db, std::string_view ns, std::string_view key);

// The database's revision: the newest change in the log, or the watermark if later.
std::uint64_t database_revision(Database& db);

std::uint64_t to_u64(const std::optional<std::string>& cell);

}  // namespace yuxi::config::cli
