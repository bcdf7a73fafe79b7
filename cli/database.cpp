// PostgreSQL for yuxi-configctl: the URL, the connection, and errors a person can act on.
#include "cli/database.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <memory>

#include "core/database_url.hpp"

namespace yuxi::config::cli {
namespace {

constexpr const char* kApplicationName = "yuxi-configctl";

// The password libpq would send, so that it can be scrubbed from server messages.
std::string password_of(const std::string& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
    PQfreemem(error);
    std::string out;
    for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) {
        if (std::string_view(o->keyword) == "password" && o->val != nullptr) {
            out = o->val;
        }
    }
    PQconninfoFree(options);
    return out;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

struct ResultDeleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

}  // namespace

DatabaseTarget database_target(const CommandLine& cl) {
    // A plain string, not an optional: GCC 12 at -O2 warns that the optional's string may
    // be used uninitialised (a false positive that -Werror turns into a failure).
    std::string url = cl.value("--database-url").value_or("");
    for (const char* name : {"DATABASE_URL", "DATABASE_URL_SYNC"}) {
        if (url.empty()) {
            url = env(name).value_or("");
        }
    }
    if (url.empty()) {
        throw UsageError("'" + cl.command +
                         "' needs the database: pass --database-url URL or set DATABASE_URL "
                         "(e.g. postgresql://user:password@host:5432/yuxi_know)");
    }
    return {url, redact_database_url(url)};
}

Database::Database(const DatabaseTarget& target) : shown_(target.shown) {
    auto checked = database_conninfo(target.url, kApplicationName);
    if (!checked) {
        throw UsageError(checked.reason());
    }
    const std::string conninfo = std::move(*checked);
    password_ = password_of(conninfo);
    // The URL's own connect_timeout wins: it comes after ours.
    const char* keywords[] = {"connect_timeout", "dbname", nullptr};
    const char* values[] = {"5", conninfo.c_str(), nullptr};
    conn_ = PQconnectdbParams(keywords, values, 1);
    if (conn_ == nullptr) {
        throw CommandError(Exit::unavailable, "out of memory connecting to " + shown_);
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
        const std::string why = scrub(trimmed(PQerrorMessage(conn_)));
        PQfinish(conn_);
        conn_ = nullptr;
        throw CommandError(Exit::unavailable,
                           "cannot connect to " + shown_ + ": " + why +
                               "; check that PostgreSQL runs there and the URL (--database-url "
                               "or DATABASE_URL); nothing was changed");
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
}

Database::~Database() {
    PQfinish(conn_);
}

std::string Database::scrub(std::string message) const {
    if (password_.empty()) {
        return message;
    }
    for (auto at = message.find(password_); at != std::string::npos;
         at = message.find(password_, at + 3)) {
        message.replace(at, password_.size(), "***");
    }
    return message;
}

void Database::fail(PGresult* result, bool schema_hint) {
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const std::string sqlstate = state != nullptr ? state : "";
    std::string why = scrub(trimmed(PQerrorMessage(conn_)));
    PQclear(result);
    // 42P01 undefined table, 42883 undefined function: the schema is not there.
    if (schema_hint && (sqlstate == "42P01" || sqlstate == "42883")) {
        throw CommandError(Exit::unavailable, "the yuxi-config tables are missing in " + shown_ +
                                                  " (" + why +
                                                  "): run `yuxi-configctl schema apply` first");
    }
    // Class 22, data exception: the input (a value jsonb refuses, a key too long).
    if (sqlstate.starts_with("22")) {
        throw CommandError(Exit::usage, "PostgreSQL at " + shown_ + " refused the input: " + why +
                                            "; nothing was written");
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
        throw CommandError(Exit::unavailable, "lost the connection to " + shown_ + ": " + why +
                                                  "; the transaction was not committed, try again");
    }
    throw CommandError(Exit::unavailable, "PostgreSQL at " + shown_ + " refused: " + why);
}

std::vector<DbRow> Database::query(std::string_view sql,
                                   const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) {
        values.push_back(p ? p->c_str() : nullptr);
    }
    const std::string text(sql);
    PGresult* r = PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail(r, true);
    }
    const Result owned(r);
    std::vector<DbRow> rows;
    for (int i = 0; i < PQntuples(r); ++i) {
        DbRow row;
        for (int j = 0; j < PQnfields(r); ++j) {
            if (PQgetisnull(r, i, j) != 0) {
                row.emplace_back();
            } else {
                row.emplace_back(std::string(PQgetvalue(r, i, j),
                                             static_cast<std::size_t>(PQgetlength(r, i, j))));
            }
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

std::optional<std::string> Database::scalar(std::string_view sql,
                                            const std::vector<std::optional<std::string>>& params) {
    const auto rows = query(sql, params);
    if (rows.empty() || rows[0].empty()) {
        return std::nullopt;
    }
    return rows[0][0];
}

void Database::script(std::string_view sql) {
    const std::string text(sql);
    PGresult* r = PQexec(conn_, text.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        fail(r, false);  // a migration creates what may be missing
    }
    PQclear(r);
}

void Database::rollback() noexcept {
    if (conn_ != nullptr && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
        PQclear(PQexec(conn_, "ROLLBACK"));
    }
}

std::optional<std::uint64_t> Database::written_revision() {
    const auto v = scalar("SELECT current_setting('yuxi_config.revision', true)");
    if (!v || v->empty()) {
        return std::nullopt;
    }
    return to_u64(v);
}

KeyRevision key_revision(Database& db, std::string_view ns, std::string_view key) {
    const auto rows = db.query(
        "SELECT (SELECT max(revision) FROM yuxi_config_changes WHERE namespace = $1 AND key = $2),"
        " (SELECT trimmed_through FROM yuxi_config_log_state)",
        {std::string(ns), std::string(key)});
    return {to_u64(rows.at(0).at(0)), to_u64(rows.at(0).at(1))};
}

std::uint64_t database_revision(Database& db) {
    return to_u64(
        db.scalar("SELECT greatest(coalesce((SELECT max(revision) FROM yuxi_config_changes), 0), "
                  "coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0))"));
}

std::uint64_t to_u64(const std::optional<std::string>& cell) {
    return cell ? std::strtoull(cell->c_str(), nullptr, 10) : 0;
}

}  // namespace yuxi::config::cli
