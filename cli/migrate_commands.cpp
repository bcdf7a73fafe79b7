// migrate and export: between file mode's files and PostgreSQL.
#include "cli/migrate_commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
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

#include "cli/categories.hpp"
#include "cli/database.hpp"
#include "core/toml_json.hpp"

namespace yuxi::config::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string quote(std::string_view s) {
    return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::pair<std::string, std::string> name_and_path(const std::string& spec) {
    const auto eq = spec.find('=');
    return {spec.substr(0, eq), spec.substr(eq + 1)};
}

std::string read_input(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    if (in) {
        ss << in.rdbuf();
    }
    if (!in || in.bad()) {
        throw CommandError(Exit::usage, "cannot read '" + path + "': " + std::strerror(errno) +
                                            "; nothing was written");
    }
    return ss.str();
}

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

std::vector<Wanted> wanted_entries(const CommandLine& cl) {
    std::vector<Wanted> out;
    json merged = json::object();
    for (const std::string& path : cl.values_of("--config-file")) {
        merge_json(merged, document_or_fail(parse_toml_document(read_input(path), path)));
    }
    for (const auto& [k, v] : merged.items()) {
        out.push_back({false, k, canonical(v), category_for(k)});
    }
    for (const std::string& spec : cl.values_of("--metadata")) {
        const auto [name, path] = name_and_path(spec);
        out.push_back({true,
                       name,
                       canonical(document_or_fail(parse_json_document(read_input(path), path))),
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

void write(Database& db, const Wanted& w) {
    if (w.metadata) {
        db.query(
            "INSERT INTO global_metadata (key, content, updated_at) VALUES ($1, $2::jsonb, "
            "now()) ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, updated_at = "
            "now()",
            {w.key, w.value});
    } else {
        db.query(
            "INSERT INTO system_configs (key, value, category, updated_at) VALUES ($1, "
            "$2::jsonb, $3, now()) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
            "category = EXCLUDED.category, updated_at = now()",
            {w.key, w.value, w.category});
    }
}

const char* action_name(Action a) {
    return a == Action::insert ? "insert" : a == Action::update ? "update" : "unchanged";
}

void print_migrate(const CommandLine& cl, const std::vector<std::pair<Wanted, Action>>& done,
                   std::optional<std::uint64_t> revision, std::ostream& out) {
    const bool dry = cl.has("--dry-run");
    int counts[3] = {0, 0, 0};
    for (const auto& [w, a] : done) {
        ++counts[static_cast<int>(a)];
    }
    if (cl.has("--json")) {
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

// ---------------------------------------------------------------------------------------
// export

// JSON → TOML. TOML has no null, and integers are signed 64-bit: those fail, naming the key.
toml::table to_table(const json& object, const std::string& path);

void refuse(const std::string& path, std::string_view what) {
    throw CommandError(Exit::usage,
                       "config '" + path + "' " + std::string(what) +
                           ", which TOML cannot hold, so file mode could not publish it: change "
                           "the value (yuxi-configctl set) or stay in database mode; nothing "
                           "was written");
}

// Where a converted value goes: the end of an array, or a key of a table.
struct ArraySink {
    toml::array& array;
    template <typename T>
    void operator()(T&& x) {
        array.push_back(std::forward<T>(x));
    }
};

struct TableSink {
    toml::table& table;
    const std::string& key;
    template <typename T>
    void operator()(T&& x) {
        table.insert_or_assign(key, std::forward<T>(x));
    }
};

template <typename Sink>
void add_value(Sink sink, const json& v, const std::string& path) {
    switch (v.type()) {
        case json::value_t::null:
            refuse(path, "is null");
            break;
        case json::value_t::boolean:
            sink(v.get<bool>());
            break;
        case json::value_t::number_integer:
            sink(v.get<std::int64_t>());
            break;
        case json::value_t::number_unsigned:
            if (v.get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                refuse(path, "holds an integer above 2^63-1");
            }
            sink(v.get<std::int64_t>());
            break;
        case json::value_t::number_float:
            sink(v.get<double>());
            break;
        case json::value_t::string:
            sink(v.get<std::string>());
            break;
        case json::value_t::array: {
            toml::array a;
            for (std::size_t i = 0; i < v.size(); ++i) {
                add_value(ArraySink{a}, v[i], path + "[" + std::to_string(i) + "]");
            }
            sink(std::move(a));
            break;
        }
        case json::value_t::object:
            sink(to_table(v, path));
            break;
        default:
            refuse(path, "holds binary data");
    }
}

toml::table to_table(const json& object, const std::string& path) {
    toml::table t;
    for (const auto& [k, v] : object.items()) {
        const std::string p = path.empty() ? k : key_path_append(path, k);
        add_value(TableSink{t, k}, v, p);
    }
    return t;
}

std::string toml_text(const json& config) {
    std::ostringstream ss;
    // No literal or multi-line strings, no relaxed float precision: what is written parses
    // back to exactly the same values.
    ss << toml::toml_formatter(to_table(config, ""), toml::format_flags::allow_unicode_strings |
                                                         toml::format_flags::indent_array_elements)
       << '\n';
    return ss.str();
}

struct Output {
    fs::path path;
    std::string text;
    std::string what;  // for the report
    fs::path temp;
};

[[noreturn]] void write_failed(const fs::path& p, const char* step, int error) {
    throw CommandError(Exit::usage, "cannot write '" + p.string() + "' (" + step +
                                        "): " + std::strerror(error) + "; no file was replaced");
}

void fsync_dir(const fs::path& dir) {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)::fsync(fd);
        ::close(fd);
    }
}

// A temporary file beside the target (same file system, so rename is atomic), complete
// and on disk before anything is renamed.
void write_temp(Output& o) {
    const fs::path dir = o.path.parent_path();
    // Not `"." + std::string&&`: GCC 12 at -O3 reports a false -Wrestrict on it (bug 105651).
    std::string name = ".";
    name += o.path.filename().string();
    name += ".tmp-XXXXXX";
    std::string tmpl = (dir / name).string();
    const int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0) {
        write_failed(o.path, "create a temporary file", errno);
    }
    o.temp = tmpl;
    struct stat st {};
    const mode_t mode = ::stat(o.path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
    std::size_t done = 0;
    while (done < o.text.size()) {
        const ssize_t n = ::write(fd, o.text.data() + done, o.text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            write_failed(o.path, "write", e);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        write_failed(o.path, "fsync", e);
    }
    ::close(fd);
}

void write_atomically(std::vector<Output>& outputs) {
    try {
        for (Output& o : outputs) {
            write_temp(o);
        }
    } catch (...) {
        for (const Output& o : outputs) {
            if (!o.temp.empty()) {
                ::unlink(o.temp.c_str());
            }
        }
        throw;
    }
    for (const Output& o : outputs) {
        if (::rename(o.temp.c_str(), o.path.c_str()) != 0) {
            write_failed(o.path, "rename", errno);
        }
        fsync_dir(o.path.parent_path());
    }
}

}  // namespace

Exit run_migrate(const CommandLine& cl, std::ostream& out, std::ostream&) {
    std::vector<Wanted> wanted = wanted_entries(cl);
    Database db(database_target(cl));
    db.begin();
    db.lock_log();
    std::vector<std::pair<Wanted, Action>> done;
    for (Wanted& w : wanted) {
        const Action a = plan(db, w);
        done.emplace_back(w, a);
    }
    std::optional<std::uint64_t> revision;
    if (cl.has("--dry-run")) {
        db.rollback();
    } else {
        for (const auto& [w, a] : done) {
            if (a != Action::unchanged) {
                write(db, w);
            }
        }
        revision = db.written_revision();
        db.commit();
    }
    print_migrate(cl, done, revision, out);
    return Exit::ok;
}

Exit run_export(const CommandLine& cl, std::ostream& out, std::ostream& err) {
    Database db(database_target(cl));
    // One snapshot: the files describe the database at one revision.
    db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const std::uint64_t revision = database_revision(db);
    std::vector<Output> outputs;
    if (const auto file = cl.value("--config-file")) {
        json config = json::object();
        for (const DbRow& r : db.query("SELECT key, value::text FROM system_configs")) {
            config[*r[0]] = json::parse(*r[1]);
        }
        outputs.push_back(
            {*file, toml_text(config), std::to_string(config.size()) + " config keys", {}});
    }
    std::vector<std::string> named;
    for (const std::string& spec : cl.values_of("--metadata")) {
        const auto [name, path] = name_and_path(spec);
        const auto content =
            db.scalar("SELECT content::text FROM global_metadata WHERE key = $1", {name});
        if (!content) {
            err << "yuxi-configctl: no metadata document '" << name << "' in " << db.shown()
                << "; no file was written\n";
            return Exit::not_found;
        }
        outputs.push_back({path,
                           json::parse(*content).dump(2, ' ', false) + "\n",
                           "metadata '" + name + "'",
                           {}});
        named.push_back(name);
    }
    for (const DbRow& r : db.query("SELECT key FROM global_metadata ORDER BY key")) {
        if (std::find(named.begin(), named.end(), *r[0]) == named.end()) {
            err << "yuxi-configctl: warning: metadata document '" << *r[0]
                << "' not exported (add --metadata " << *r[0] << "=PATH)\n";
        }
    }
    db.rollback();
    write_atomically(outputs);
    for (const Output& o : outputs) {
        out << "wrote " << o.path.string() << " (" << o.what << ")\n";
    }
    out << "exported revision " << revision << '\n';
    return Exit::ok;
}

}  // namespace yuxi::config::cli
