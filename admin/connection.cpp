// The admin library's PostgreSQL connection.
#include "admin/connection.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/database_url.hpp"

namespace yuxi::config::admin {
namespace {

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        return std::nullopt;
    }
    return std::string(v);
}

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

AdminError unavailable(const std::string& message) {
    return AdminError(AdminError::Kind::unavailable, message);
}

}  // namespace

std::optional<DatabaseTarget> resolve_database(std::string_view given) {
    // A plain string, not an optional: GCC 12 at -O2 warns that the optional's string may
    // be used uninitialised (a false positive that -Werror turns into a failure).
    std::string url(given);
    for (const char* name : {"DATABASE_URL", "DATABASE_URL_SYNC"}) {
        if (url.empty()) {
            url = env(name).value_or("");
        }
    }
    if (url.empty()) {
        return std::nullopt;
    }
    return DatabaseTarget{url, redact_database_url(url)};
}

Connection::Connection(const DatabaseTarget& target, const std::string& application_name)
    : shown_(target.shown) {
    auto checked = database_conninfo(target.url, application_name);
    if (!checked) {
        throw AdminError(AdminError::Kind::usage, checked.reason());
    }
    const std::string conninfo = std::move(*checked);
    password_ = password_of(conninfo);
    // The URL's own connect_timeout wins: it comes after ours.
    const char* keywords[] = {"connect_timeout", "dbname", nullptr};
    const char* values[] = {"5", conninfo.c_str(), nullptr};
    conn_ = PQconnectdbParams(keywords, values, 1);
    if (conn_ == nullptr) {
        throw unavailable("out of memory connecting to " + shown_);
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
        const std::string why = scrub(trimmed(PQerrorMessage(conn_)));
        PQfinish(conn_);
        conn_ = nullptr;
        throw unavailable("cannot connect to " + shown_ + ": " + why +
                          "; check that PostgreSQL runs there and the database URL "
                          "(DATABASE_URL); nothing was changed");
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
}

Connection::~Connection() {
    PQfinish(conn_);
}

std::string Connection::scrub(std::string message) const {
    if (password_.empty()) {
        return message;
    }
    for (auto at = message.find(password_); at != std::string::npos;
         at = message.find(password_, at + 3)) {
        message.replace(at, password_.size(), "***");
    }
    return message;
}

void Connection::fail(PGresult* result, bool schema_hint) {
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const std::string sqlstate = state != nullptr ? state : "";
    std::string why = scrub(trimmed(PQerrorMessage(conn_)));
    PQclear(result);
    // 42P01 undefined table, 42883 undefined function: the schema is not there.
    if (schema_hint && (sqlstate == "42P01" || sqlstate == "42883")) {
        throw unavailable("the yuxi-config tables are missing in " + shown_ + " (" + why +
                          "): run `yuxi-configctl schema apply` first");
    }
    // Class 22, data exception: the input (a value jsonb refuses, a key too long).
    if (sqlstate.starts_with("22")) {
        throw AdminError(
            AdminError::Kind::usage,
            "PostgreSQL at " + shown_ + " refused the input: " + why + "; nothing was written");
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
        throw unavailable("lost the connection to " + shown_ + ": " + why +
                          "; the transaction was not committed, try again");
    }
    throw unavailable("PostgreSQL at " + shown_ + " refused: " + why);
}

std::vector<DbRow> Connection::rows_of(PGresult* r, bool schema_hint) {
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail(r, schema_hint);
    }
    const Result owned(r);
    std::vector<DbRow> rows;
    rows.reserve(static_cast<std::size_t>(PQntuples(r)));
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

namespace {

std::vector<const char*> values_of(const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) {
        values.push_back(p ? p->c_str() : nullptr);
    }
    return values;
}

}  // namespace

std::vector<DbRow> Connection::query(std::string_view sql, const Params& params) {
    const auto values = values_of(params);
    const std::string text(sql);
    return rows_of(PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, 0),
                   true);
}

std::vector<DbRow> Connection::prepared(const char* name, std::string_view sql,
                                        const Params& params) {
    if (std::find(prepared_.begin(), prepared_.end(), name) == prepared_.end()) {
        const std::string text(sql);
        (void)rows_of(
            PQprepare(conn_, name, text.c_str(), static_cast<int>(params.size()), nullptr), true);
        prepared_.emplace_back(name);
    }
    const auto values = values_of(params);
    return rows_of(PQexecPrepared(conn_, name, static_cast<int>(values.size()), values.data(),
                                  nullptr, nullptr, 0),
                   true);
}

std::optional<std::string> Connection::scalar(std::string_view sql, const Params& params) {
    const auto rows = query(sql, params);
    if (rows.empty() || rows[0].empty()) {
        return std::nullopt;
    }
    return rows[0][0];
}

void Connection::script(std::string_view sql) {
    const std::string text(sql);
    PGresult* r = PQexec(conn_, text.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        fail(r, false);  // a migration creates what may be missing
    }
    PQclear(r);
}

void Connection::rollback() noexcept {
    if (conn_ != nullptr && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
        PQclear(PQexec(conn_, "ROLLBACK"));
    }
}

std::optional<std::uint64_t> Connection::written_revision() {
    const auto v = scalar("SELECT current_setting('yuxi_config.revision', true)");
    if (!v || v->empty()) {
        return std::nullopt;
    }
    return to_u64(v);
}

KeyRevision key_revision(Connection& db, std::string_view ns, std::string_view key) {
    const auto rows = db.query(
        "SELECT (SELECT max(revision) FROM yuxi_config_changes WHERE namespace = $1 AND key = $2),"
        " (SELECT trimmed_through FROM yuxi_config_log_state)",
        {std::string(ns), std::string(key)});
    return {to_u64(rows.at(0).at(0)), to_u64(rows.at(0).at(1))};
}

std::uint64_t database_revision(Connection& db) {
    return to_u64(
        db.scalar("SELECT greatest(coalesce((SELECT max(revision) FROM yuxi_config_changes), 0), "
                  "coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0))"));
}

std::uint64_t to_u64(const std::optional<std::string>& cell) {
    return cell ? std::strtoull(cell->c_str(), nullptr, 10) : 0;
}

}  // namespace yuxi::config::admin
