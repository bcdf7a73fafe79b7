// migrate and export: between file mode's files and PostgreSQL.
#include "cli/migrate_commands.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "admin/connection.hpp"
#include "admin/toml_file.hpp"
#include "core/toml_json.hpp"
#include "core/value_schema.hpp"

namespace yuxi::config::cli {
namespace {

namespace fs = std::filesystem;
using admin::DbRow;
using nlohmann::json;
using Database = admin::Connection;

// ---------------------------------------------------------------------------------------
// migrate

struct Wanted {
    bool metadata = false;
    std::string key;
    std::string value;  // canonical JSON text, as file mode publishes it
    std::optional<std::string> category;
};

// The entries file mode publishes for these files (agent/file_source.cpp: config files
// merged in order, one entry per top-level key; one metadata entry per JSON file).
// The document, or a usage error naming the file's problem.
json document_or_fail(const DocumentResult& doc) {
    if (!doc) {
        throw CommandError(Exit::usage, doc.reason().message + "; nothing was written");
    }
    return *doc;
}

std::vector<Wanted> wanted_entries(const MigrateRequest& r) {
    std::vector<Wanted> out;
    json merged = json::object();
    for (const std::string& path : r.config_files) {
        merge_json(merged, document_or_fail(parse_toml_document(read_input(path), path)));
    }
    for (const auto& [k, v] : merged.items()) {
        out.push_back({false, k, canonical(v), default_category(k)});
    }
    for (const MetadataFileArg& m : r.metadata) {
        out.push_back({true,
                       m.name,
                       canonical(document_or_fail(parse_json_document(read_input(m.path), m.path))),
                       {}});
    }
    return out;
}

enum class Action { insert, update, unchanged };

// Compared as jsonb, so formatting and key order never count as a change. A key the
// mapping has no category for keeps the category it has.
Action plan(Database& db, Wanted& w) {
    if (w.metadata) {
        const auto rows = db.query("SELECT content = $2::jsonb FROM global_metadata WHERE key = $1",
                                   {w.key, w.value});
        return rows.empty()        ? Action::insert
               : rows[0][0] == "t" ? Action::unchanged
                                   : Action::update;
    }
    const auto rows = db.query(
        "SELECT value = $2::jsonb, category FROM system_configs WHERE key = $1", {w.key, w.value});
    if (rows.empty()) {
        return Action::insert;
    }
    if (!w.category) {
        w.category = rows[0][1];
    }
    return rows[0][0] == "t" && rows[0][1] == w.category ? Action::unchanged : Action::update;
}

const char* action_name(Action a) {
    return a == Action::insert ? "insert" : a == Action::update ? "update" : "unchanged";
}

void print_migrate(const MigrateRequest& r, const std::vector<std::pair<Wanted, Action>>& done,
                   std::optional<std::uint64_t> revision, std::ostream& out) {
    const bool dry = r.dry_run;
    int counts[3] = {0, 0, 0};
    for (const auto& [w, a] : done) {
        ++counts[static_cast<int>(a)];
    }
    if (r.json) {
        out << "{\"dry_run\":" << (dry ? "true" : "false") << ",\"inserted\":" << counts[0]
            << ",\"updated\":" << counts[1] << ",\"unchanged\":" << counts[2]
            << ",\"revision\":" << (revision ? std::to_string(*revision) : "null")
            << ",\"changes\":[";
        bool first = true;
        for (const auto& [w, a] : done) {
            if (a != Action::unchanged) {
                out << (first ? "" : ",") << "{\"namespace\":\""
                    << (w.metadata ? "metadata" : "config") << "\",\"key\":" << quote(w.key)
                    << ",\"action\":\"" << action_name(a)
                    << "\",\"category\":" << (w.category ? quote(*w.category) : "null") << '}';
                first = false;
            }
        }
        out << "]}\n";
        return;
    }
    for (const auto& [w, a] : done) {
        if (a != Action::unchanged) {
            out << (dry ? "would " : "") << action_name(a) << ' '
                << (w.metadata ? "metadata" : "config") << " '" << w.key << "'"
                << (w.category ? " (" + *w.category + ")" : std::string()) << '\n';
        }
    }
    if (dry) {
        out << "dry run: " << counts[0] << " would be inserted, " << counts[1] << " updated, "
            << counts[2] << " unchanged; nothing was written\n";
    } else {
        out << counts[0] << " inserted, " << counts[1] << " updated, " << counts[2] << " unchanged"
            << (revision ? " (revision " + std::to_string(*revision) + ")" : "") << '\n';
    }
}

}  // namespace

Exit run(const MigrateRequest& r, Io io) {
    std::vector<Wanted> wanted = wanted_entries(r);
    std::vector<std::pair<Wanted, Action>> done;
    {
        // What the database holds now, to report what changes; the write itself is one
        // transaction of the admin library, which checks every value against its schema.
        Database db(database_target(r.db), "yuxi-configctl");
        for (Wanted& w : wanted) {
            const Action a = plan(db, w);
            done.emplace_back(w, a);
        }
    }
    std::optional<std::uint64_t> revision;
    if (!r.dry_run) {
        std::vector<Write> writes;
        for (const auto& [w, a] : done) {
            if (a != Action::unchanged) {
                Write x;
                x.key = w.key;
                x.value = w.value;
                x.options.metadata = w.metadata;
                x.options.category = w.metadata ? std::nullopt : w.category;
                writes.push_back(std::move(x));
            }
        }
        Admin admin = open_admin(r.db);
        if (!writes.empty()) {
            const WriteResult result = admin.set_many(writes);
            if (result.changed) {
                revision = result.revision;
            }
        }
    }
    print_migrate(r, done, revision, io.out);
    return Exit::ok;
}

Exit run(const ExportRequest& r, Io io) {
    Database db(database_target(r.db), "yuxi-configctl");
    // One snapshot: the files describe the database at one revision.
    db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const std::uint64_t revision = admin::database_revision(db);
    std::vector<admin::FileOutput> outputs;
    std::vector<std::string> what;
    if (r.config_file) {
        json config = json::object();
        for (const DbRow& row : db.query("SELECT key, value::text FROM system_configs")) {
            config[*row[0]] = json::parse(*row[1]);
        }
        outputs.push_back({*r.config_file, admin::toml_text(config), {}});
        what.push_back(std::to_string(config.size()) + " config keys");
    }
    std::vector<std::string> named;
    for (const MetadataFileArg& m : r.metadata) {
        const auto content =
            db.scalar("SELECT content::text FROM global_metadata WHERE key = $1", {m.name});
        if (!content) {
            io.err << "yuxi-configctl: no metadata document '" << m.name << "' in " << db.shown()
                   << "; no file was written\n";
            return Exit::not_found;
        }
        outputs.push_back({m.path, json::parse(*content).dump(2, ' ', false) + "\n", {}});
        what.push_back("metadata '" + m.name + "'");
        named.push_back(m.name);
    }
    for (const DbRow& row : db.query("SELECT key FROM global_metadata ORDER BY key")) {
        if (*row[0] != kValueSchemasKey &&
            std::find(named.begin(), named.end(), *row[0]) == named.end()) {
            io.err << "yuxi-configctl: warning: metadata document '" << *row[0]
                   << "' not exported (add --metadata " << *row[0] << "=PATH)\n";
        }
    }
    db.rollback();
    admin::write_atomically(outputs);
    for (std::size_t i = 0; i < outputs.size(); ++i) {
        io.out << "wrote " << outputs[i].path.string() << " (" << what[i] << ")\n";
    }
    io.out << "exported revision " << revision << '\n';
    return Exit::ok;
}

}  // namespace yuxi::config::cli
