// schema apply / schema status.
#include "cli/schema_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "admin/connection.hpp"
#include "cli/admin_support.hpp"

#ifndef YUXI_CONFIG_SOURCE_SQL_DIR
#define YUXI_CONFIG_SOURCE_SQL_DIR ""
#endif

namespace yuxi::config::cli {
namespace {

constexpr const char* kRolesFile = "roles.sql";

namespace fs = std::filesystem;
using admin::DbRow;
using Database = admin::Connection;

// Not the log's key (yuxi_config_lock_key()): a migration may write the tables, whose
// triggers take that one.
constexpr const char* kSchemaLockKey = "7956331478243718001";

struct Migration {
    int version = 0;
    std::string name;  // the file name
    fs::path path;
};

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        throw CommandError(Exit::usage, "cannot read migration " + p.string());
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool has_migrations(const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".sql") {
            return true;
        }
    }
    return false;
}

// --sql-dir, $YUXI_CONFIG_SQL_DIR, <prefix>/share/yuxi-config/sql beside the installed
// program, the source tree's deploy/sql.
fs::path sql_dir(const SchemaRequest& r) {
    if (!r.sql_dir.empty()) {
        return r.sql_dir;
    }
    if (const char* v = std::getenv("YUXI_CONFIG_SQL_DIR"); v != nullptr && *v != '\0') {
        return v;
    }
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path installed = exe.parent_path().parent_path() / "share/yuxi-config/sql";
        if (has_migrations(installed)) {
            return installed;
        }
    }
    return YUXI_CONFIG_SOURCE_SQL_DIR;
}

// NNN_name.sql, in version order.
std::vector<Migration> migrations(const fs::path& dir) {
    if (dir.empty() || !has_migrations(dir)) {
        throw CommandError(Exit::usage,
                           "no SQL migrations (*.sql) in '" + dir.string() +
                               "'; pass --sql-dir DIR or set YUXI_CONFIG_SQL_DIR to the "
                               "deploy/sql directory (installed as share/yuxi-config/sql)");
    }
    std::vector<Migration> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() != ".sql" || name == kRolesFile) {
            continue;  // roles.sql: applied by --roles, after the migrations
        }
        const std::size_t digits = static_cast<std::size_t>(
            std::find_if_not(
                name.begin(), name.end(),
                [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }) -
            name.begin());
        if (digits == 0 || digits > 6) {
            throw CommandError(Exit::usage, "migration " + e.path().string() +
                                                " does not start with its version number "
                                                "(NNN_name.sql)");
        }
        out.push_back({std::stoi(name.substr(0, digits)), name, e.path()});
    }
    std::sort(out.begin(), out.end(),
              [](const Migration& a, const Migration& b) { return a.version < b.version; });
    for (std::size_t i = 1; i < out.size(); ++i) {
        if (out[i].version == out[i - 1].version) {
            throw CommandError(Exit::usage, "migrations " + out[i - 1].name + " and " +
                                                out[i].name + " have the same version");
        }
    }
    return out;
}

struct Applied {
    std::string name;
    std::string checksum;
};

// Version → what was applied; empty when the table does not exist yet.
std::map<int, Applied> applied(Database& db) {
    std::map<int, Applied> out;
    if (!db.scalar("SELECT to_regclass('yuxi_config_schema')::text")) {
        return out;
    }
    for (const DbRow& r :
         db.query("SELECT version, name, coalesce(checksum, '') FROM yuxi_config_schema")) {
        out[std::stoi(*r[0])] = {*r[1], *r[2]};
    }
    return out;
}

void warn_if_edited(Database& db, const Migration& m, const Applied& a, std::ostream& err) {
    const auto sum = db.scalar("SELECT md5($1)", {read_file(m.path)});
    if (!a.checksum.empty() && sum != a.checksum) {
        err << "yuxi-configctl: warning: " << m.name << " changed since it was applied as version "
            << m.version << "; applied migrations never run again: put changes in a new file\n";
    }
}

void apply_one(Database& db, const Migration& m) {
    const std::string sql = read_file(m.path);
    db.begin();
    try {
        db.script(sql);
    } catch (const AdminError& e) {
        db.rollback();
        throw AdminError(e.kind(), std::string(e.what()) + " (in " + m.name +
                                       ", rolled back; the migrations before it stay applied)");
    }
    db.query("INSERT INTO yuxi_config_schema (version, name, checksum) VALUES ($1, $2, md5($3))",
             {std::to_string(m.version), m.name, sql});
    db.commit();
}

// roles.sql: the least-privilege roles and their grants (idempotent), in one transaction.
void apply_roles(Database& db, const fs::path& dir, bool dry, std::ostream& out) {
    const fs::path file = dir / kRolesFile;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw CommandError(Exit::usage, "--roles: no " + file.string());
    }
    if (dry) {
        out << "would apply " << kRolesFile << " (roles yuxi_config_agent, yuxi_config_admin)\n";
        return;
    }
    const std::string sql((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    db.begin();
    try {
        db.script(sql);
    } catch (const AdminError& e) {
        db.rollback();
        throw AdminError(e.kind(), std::string(e.what()) + " (in " + kRolesFile + ", rolled back)");
    }
    db.commit();
    out << "applied " << kRolesFile << " (roles yuxi_config_agent, yuxi_config_admin)\n";
}

Exit status(Database& db, const std::vector<Migration>& all, std::ostream& out) {
    const auto done = applied(db);
    for (const Migration& m : all) {
        out << (done.contains(m.version) ? "applied  " : "pending  ") << m.name << '\n';
    }
    return Exit::ok;
}

Exit apply(Database& db, const SchemaRequest& r, const std::vector<Migration>& all,
           std::ostream& out, std::ostream& err) {
    const bool dry = r.dry_run;
    if (!dry) {
        // Session-level: held across the per-migration transactions, released on exit.
        db.query(std::string("SELECT pg_advisory_lock(") + kSchemaLockKey + ")");
        db.query(
            "CREATE TABLE IF NOT EXISTS yuxi_config_schema (version INT PRIMARY KEY, name TEXT "
            "NOT NULL, checksum TEXT, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    }
    const auto done = applied(db);
    int newest = done.empty() ? 0 : done.rbegin()->first;
    int count = 0;
    for (const Migration& m : all) {
        if (const auto it = done.find(m.version); it != done.end()) {
            warn_if_edited(db, m, it->second, err);
            continue;
        }
        if (dry) {
            out << "would apply " << m.name << " (version " << m.version << ")\n";
        } else {
            apply_one(db, m);
            out << "applied " << m.name << " (version " << m.version << ")\n";
        }
        newest = std::max(newest, m.version);
        ++count;
    }
    if (count == 0) {
        out << "schema is up to date (version " << newest << ")\n";
    } else if (dry) {
        out << "dry run: " << count << " migration(s) would be applied; nothing was changed\n";
    } else {
        out << "schema is at version " << newest << '\n';
    }
    return Exit::ok;
}

}  // namespace

Exit run(const SchemaRequest& r, Io io) {
    const fs::path dir = sql_dir(r);
    const auto all = migrations(dir);
    Database db(database_target(r.db), "yuxi-configctl");
    if (!r.apply) {
        return status(db, all, io.out);
    }
    const Exit e = apply(db, r, all, io.out, io.err);
    if (e == Exit::ok && r.roles) {
        apply_roles(db, dir, r.dry_run, io.out);
    }
    return e;
}

}  // namespace yuxi::config::cli
