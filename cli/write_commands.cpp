// set, delete, rollback, history and log: PostgreSQL's tables and change log.
#include "cli/write_commands.hpp"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "cli/categories.hpp"
#include "cli/database.hpp"
#include "cli/redis_commands.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config::cli {
namespace {

using OrderedJson = nlohmann::ordered_json;
using Seconds = std::chrono::duration<double>;

std::string quote(std::string_view s) {
    return OrderedJson(std::string(s)).dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// jsonb's text ({"a": 1}) as compact JSON ({"a":1}), keeping jsonb's key order.
std::string compact(const std::string& jsonb_text) {
    const auto j = OrderedJson::parse(jsonb_text, nullptr, false);
    return j.is_discarded() ? jsonb_text
                            : j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// One key of one namespace, and the SQL that reaches its table.
struct Target {
    bool metadata = false;
    std::string key;

    std::string_view ns() const { return metadata ? "metadata" : "config"; }
    std::string shown() const { return std::string(ns()) + " '" + key + "'"; }
};

Target target_of(const CommandLine& cl) {
    return {cl.has("--metadata"), cl.args.at(0)};
}

struct Current {
    bool exists = false;
    std::string value;                    // jsonb text
    std::optional<std::string> category;  // config only
};

Current read_current(Database& db, const Target& t) {
    const auto rows =
        db.query(t.metadata ? "SELECT content::text, NULL FROM global_metadata WHERE key = $1"
                            : "SELECT value::text, category FROM system_configs WHERE key = $1",
                 {t.key});
    if (rows.empty()) {
        return {};
    }
    return {true, rows[0][0].value_or("null"), rows[0][1]};
}

bool same_json(Database& db, const std::string& a, const std::string& b) {
    return db.scalar("SELECT $1::jsonb = $2::jsonb", {a, b}) == "t";
}

void upsert(Database& db, const Target& t, const std::string& value,
            const std::optional<std::string>& category) {
    if (t.metadata) {
        db.query(
            "INSERT INTO global_metadata (key, content, updated_at) VALUES ($1, $2::jsonb, "
            "now()) ON CONFLICT (key) DO UPDATE SET content = EXCLUDED.content, updated_at = "
            "now()",
            {t.key, value});
    } else {
        db.query(
            "INSERT INTO system_configs (key, value, category, updated_at) VALUES ($1, "
            "$2::jsonb, $3, now()) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
            "category = EXCLUDED.category, updated_at = now()",
            {t.key, value, category});
    }
}

void remove(Database& db, const Target& t) {
    db.query(t.metadata ? "DELETE FROM global_metadata WHERE key = $1"
                        : "DELETE FROM system_configs WHERE key = $1",
             {t.key});
}

// What --wait and --wait-all need, prepared before the write so that a segment that cannot
// be opened or a Redis that does not answer fails the command with nothing changed.
struct Waits {
    std::optional<Client> local;
    bool all = false;
};

Waits prepare_waits(const CommandLine& cl) {
    Waits w;
    if (cl.has("--wait")) {
        w.local.emplace(Client::open(cl.value("--segment").value_or("")));
    }
    if (cl.has("--wait-all")) {
        check_redis(cl);
        w.all = true;
    }
    return w;
}

Seconds timeout_or(const CommandLine& cl, double fallback) {
    const auto v = cl.value("--timeout");
    return Seconds(v ? parse_seconds("--timeout", *v) : fallback);
}

Exit finish_waits(const CommandLine& cl, const Waits& w, std::uint64_t revision,
                  std::ostream& err) {
    if (w.local) {
        const Seconds timeout = timeout_or(cl, 10);
        if (!w.local->wait_for_revision(
                revision, std::chrono::duration_cast<std::chrono::nanoseconds>(timeout))) {
            err << "yuxi-configctl: the write is committed (revision " << revision
                << "), but segment '" << w.local->name() << "' still shows revision "
                << w.local->revision() << " after " << timeout.count()
                << " s; is its agent running in database mode on this database? "
                   "(yuxi-configctl status)\n";
            return Exit::timeout;
        }
    }
    if (w.all) {
        return wait_for_all_agents(cl, revision, timeout_or(cl, 30), err);
    }
    return Exit::ok;
}

void print_result(const CommandLine& cl, const Target& t, std::string_view op,
                  std::uint64_t revision, bool changed, std::ostream& out) {
    if (cl.has("--json")) {
        out << "{\"namespace\":" << quote(t.ns()) << ",\"key\":" << quote(t.key)
            << ",\"op\":" << quote(op) << ",\"revision\":" << revision
            << ",\"changed\":" << (changed ? "true" : "false") << "}\n";
    } else if (changed) {
        out << "revision " << revision << '\n';
    } else {
        out << "unchanged (revision " << revision << ")\n";
    }
    out.flush();
}

// --if-revision N: the key's last change must be at N or older; N = 0: it must not exist.
// Prints the refusal and returns false when the condition fails.
bool if_revision_holds(const CommandLine& cl, Database& db, const Target& t, bool exists,
                       std::ostream& out, std::ostream& err) {
    const auto v = cl.value("--if-revision");
    if (!v) {
        return true;
    }
    const std::uint64_t n = parse_revision("--if-revision", *v);
    const KeyRevision kr = key_revision(db, t.ns(), t.key);
    std::string why;
    if (n == 0 && exists) {
        why = "exists (last changed at revision " + std::to_string(kr.effective()) +
              "); --if-revision 0 writes only a key that does not exist";
    } else if (n != 0 && !exists) {
        why = "does not exist (last changed at revision " + std::to_string(kr.effective()) +
              "); --if-revision 0 creates a key only if it is absent";
    } else if (kr.effective() > n) {
        why = "was changed at revision " + std::to_string(kr.effective()) + ", after revision " +
              std::to_string(n);
    } else {
        return true;
    }
    if (cl.has("--json")) {
        out << "{\"namespace\":" << quote(t.ns()) << ",\"key\":" << quote(t.key)
            << ",\"conflict\":true,\"revision\":" << kr.effective() << "}\n";
    }
    err << "yuxi-configctl: conflict: " << t.shown() << ' ' << why
        << "; nothing was written (read the key again and retry)\n";
    return false;
}

void check_json(const std::string& text) {
    try {
        const auto parsed = OrderedJson::parse(text);
        (void)parsed;
    } catch (const OrderedJson::parse_error& e) {
        throw CommandError(Exit::usage,
                           "the value is not valid JSON (" + std::string(e.what()) +
                               "); a JSON string needs its quotes: '\"text\"'; nothing was "
                               "written");
    }
}

// Writes `value` (nullopt: deletes) unless the key already holds it. Returns the revision
// written, or the key's last change when nothing was, and whether something was.
std::pair<std::uint64_t, bool> write(Database& db, const Target& t, const Current& now,
                                     const std::optional<std::string>& value,
                                     const std::optional<std::string>& category) {
    const bool same = value ? now.exists && same_json(db, now.value, *value) &&
                                  (t.metadata || now.category == category)
                            : !now.exists;
    if (same) {
        const std::uint64_t r = key_revision(db, t.ns(), t.key).effective();
        db.rollback();
        return {r, false};
    }
    if (value) {
        upsert(db, t, *value, category);
    } else {
        remove(db, t);
    }
    const auto revision = db.written_revision();
    db.commit();
    if (!revision) {
        throw CommandError(Exit::unavailable,
                           "the write committed but logged no revision: are the triggers of "
                           "deploy/sql installed? run `yuxi-configctl schema apply`");
    }
    return {*revision, true};
}

Exit run_set(const CommandLine& cl, std::ostream& out, std::ostream& err) {
    const Target t = target_of(cl);
    const std::string& value = cl.args.at(1);
    check_json(value);
    if (t.metadata && cl.has("--category")) {
        throw UsageError("option '--category' is for config keys; metadata has no category");
    }
    const Waits waits = prepare_waits(cl);
    Database db(database_target(cl));
    db.begin();
    db.lock_log();
    const Current now = read_current(db, t);
    if (!if_revision_holds(cl, db, t, now.exists, out, err)) {
        db.rollback();
        return Exit::conflict;
    }
    std::optional<std::string> category = cl.value("--category");
    if (!category && !t.metadata) {
        category = now.exists ? now.category : category_for(t.key);
    }
    const auto [revision, changed] = write(db, t, now, value, category);
    print_result(cl, t, "set", revision, changed, out);
    return finish_waits(cl, waits, revision, err);
}

Exit run_delete(const CommandLine& cl, std::ostream& out, std::ostream& err) {
    const Target t = target_of(cl);
    const Waits waits = prepare_waits(cl);
    Database db(database_target(cl));
    db.begin();
    db.lock_log();
    const Current now = read_current(db, t);
    if (!if_revision_holds(cl, db, t, now.exists, out, err)) {
        db.rollback();
        return Exit::conflict;
    }
    if (!now.exists) {
        db.rollback();
        err << "yuxi-configctl: no " << t.shown() << " in " << db.shown() << "; nothing deleted\n";
        return Exit::not_found;
    }
    const auto [revision, changed] = write(db, t, now, std::nullopt, std::nullopt);
    print_result(cl, t, "delete", revision, changed, out);
    return finish_waits(cl, waits, revision, err);
}

// The key as it was right after revision `n`: the log's latest change at or before n; if
// none, the first change after n tells what it replaced (its old value; none: unchanged
// since). Valid only if n is at or past the trim watermark, below which rows are gone.
struct PastState {
    bool known_from_log = false;
    std::optional<std::string> value;  // nullopt: the key did not exist
    std::optional<std::string> category;
};

PastState state_at(Database& db, const Target& t, std::uint64_t n, const Current& now) {
    const std::string ns(t.ns());
    const std::string rev = std::to_string(n);
    auto rows = db.query(
        "SELECT op, new_value::text, category FROM yuxi_config_changes WHERE namespace = $1 AND "
        "key = $2 AND revision <= $3 ORDER BY revision DESC LIMIT 1",
        {ns, t.key, rev});
    if (!rows.empty()) {
        return {true, rows[0][0] == "U" ? rows[0][1] : std::nullopt, rows[0][2]};
    }
    rows = db.query(
        "SELECT old_value::text FROM yuxi_config_changes WHERE namespace = $1 AND key = $2 AND "
        "revision > $3 ORDER BY revision LIMIT 1",
        {ns, t.key, rev});
    if (!rows.empty()) {
        return {true, rows[0][0], now.category};
    }
    return {false, now.exists ? std::optional(now.value) : std::nullopt, now.category};
}

Exit run_rollback(const CommandLine& cl, std::ostream& out, std::ostream& err) {
    const Target t = target_of(cl);
    const std::uint64_t n = parse_revision("--to-revision", *cl.value("--to-revision"));
    const Waits waits = prepare_waits(cl);
    Database db(database_target(cl));
    db.begin();
    db.lock_log();
    const KeyRevision kr = key_revision(db, t.ns(), t.key);
    if (n < kr.trimmed_through) {
        db.rollback();
        err << "yuxi-configctl: the change log was trimmed through revision " << kr.trimmed_through
            << ", so the state of " << t.shown() << " at revision " << n
            << " is no longer known; the oldest revision rollback can reach is "
            << kr.trimmed_through << "; nothing was written\n";
        return Exit::not_found;
    }
    const Current now = read_current(db, t);
    const PastState past = state_at(db, t, n, now);
    if (!past.value && now.exists) {
        err << "yuxi-configctl: " << t.shown() << " did not exist at revision " << n
            << "; deleting it\n";
    }
    const auto [revision, changed] = write(db, t, now, past.value, past.category);
    print_result(cl, t, past.value ? "set" : "delete", revision, changed, out);
    return finish_waits(cl, waits, revision, err);
}

std::string cut(const std::string& s, std::size_t max) {
    if (s.size() <= max) {
        return s;
    }
    std::size_t n = max - 3;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;  // not in the middle of a UTF-8 sequence
    }
    return s.substr(0, n) + "...";
}

Exit run_history(const CommandLine& cl, std::ostream& out, std::ostream& err) {
    const Target t = target_of(cl);
    const auto limit = cl.value("--limit");
    Database db(database_target(cl));
    const auto rows = db.query(
        "SELECT revision, to_char(changed_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), changed_by, op, old_value::text, "
        "new_value::text, category FROM yuxi_config_changes WHERE namespace = $1 AND key = $2 "
        "ORDER BY revision DESC LIMIT $3",
        {std::string(t.ns()), t.key, std::to_string(limit ? parse_count("--limit", *limit) : 20)});
    if (rows.empty()) {
        const KeyRevision kr = key_revision(db, t.ns(), t.key);
        err << "yuxi-configctl: no change of " << t.shown() << " in the log"
            << (kr.trimmed_through != 0
                    ? " (trimmed through revision " + std::to_string(kr.trimmed_through) + ")"
                    : std::string())
            << '\n';
        if (cl.has("--json")) {
            out << "[]\n";
        }
        return Exit::not_found;
    }
    const auto value = [](const std::optional<std::string>& v) {
        return v ? compact(*v) : std::string("null");
    };
    if (cl.has("--json")) {
        out << '[';
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const DbRow& r = rows[i];
            out << (i != 0 ? "," : "") << "{\"revision\":" << *r[0]
                << ",\"changed_at\":" << quote(*r[1]) << ",\"changed_by\":" << quote(*r[2])
                << ",\"op\":" << quote(*r[3]) << ",\"old_value\":" << value(r[4])
                << ",\"new_value\":" << value(r[5])
                << ",\"category\":" << (r[6] ? quote(*r[6]) : "null") << '}';
        }
        out << "]\n";
        return Exit::ok;
    }
    for (const DbRow& r : rows) {
        const std::string old_v = r[4] ? cut(compact(*r[4]), 60) : "(absent)";
        const std::string new_v = r[5] ? cut(compact(*r[5]), 60) : "(deleted)";
        out << *r[0] << "  " << *r[1] << "  " << *r[2] << "  " << *r[3] << "  " << old_v << " -> "
            << new_v << '\n';
    }
    return Exit::ok;
}

// Histories found rewound by a failover (deploy/sql/003_high_availability.sql): nothing
// on a schema without the table. With --json, the field "rewinds":[...] of the object.
void print_rewinds(Database& db, const CommandLine& cl, std::ostream& out) {
    if (!db.scalar("SELECT to_regclass('yuxi_config_rewinds')::text")) {
        if (cl.has("--json")) {
            out << ",\"rewinds\":[]";
        }
        return;
    }
    const auto rows = db.query(
        "SELECT first_lost, last_applied, database_revision, "
        "       to_char(min(detected_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "       count(*) FROM yuxi_config_rewinds "
        "GROUP BY 1, 2, 3 ORDER BY min(detected_at) DESC LIMIT 20");
    const auto num = [](const std::optional<std::string>& v) { return v.value_or("0"); };
    if (cl.has("--json")) {
        out << ",\"rewinds\":[";
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const DbRow& r = rows[i];
            out << (i ? "," : "") << "{\"first_lost\":" << num(r[0])
                << ",\"last_applied\":" << num(r[1]) << ",\"database_revision\":" << num(r[2])
                << ",\"detected_at\":\"" << r[3].value_or("") << "\",\"agents\":" << num(r[4])
                << "}";
        }
        out << "]";
        return;
    }
    if (rows.empty()) {
        out << "history rewound  never\n";
        return;
    }
    for (const DbRow& r : rows) {
        out << "history rewound  at " << r[3].value_or("?") << ": revisions " << num(r[0]) << ".."
            << num(r[1]) << " lost in a failover (database then at " << num(r[2]) << "; seen by "
            << num(r[4]) << " agent(s))\n";
    }
}

Exit log_status(Database& db, const CommandLine& cl, std::ostream& out) {
    const auto rows = db.query(
        "SELECT min(revision), max(revision), count(*), (SELECT trimmed_through FROM "
        "yuxi_config_log_state) FROM yuxi_config_changes");
    const DbRow& r = rows.at(0);
    const std::uint64_t revision = database_revision(db);
    const auto num = [](const std::optional<std::string>& v) { return v.value_or("null"); };
    if (cl.has("--json")) {
        out << "{\"oldest_revision\":" << num(r[0]) << ",\"newest_revision\":" << num(r[1])
            << ",\"rows\":" << num(r[2]) << ",\"trimmed_through\":" << to_u64(r[3])
            << ",\"database_revision\":" << revision;
    } else {
        out << "revisions        " << (r[0] ? *r[0] + " .. " + *r[1] : std::string("(empty)"))
            << '\n'
            << "rows             " << num(r[2]) << '\n'
            << "trimmed through  " << to_u64(r[3]) << '\n'
            << "database revision " << revision << '\n';
    }
    print_rewinds(db, cl, out);
    if (cl.has("--json")) {
        out << "}\n";
    }
    return Exit::ok;
}

Exit log_trim(Database& db, const CommandLine& cl, std::ostream& out) {
    const std::uint64_t keep = parse_revision("--keep", *cl.value("--keep"));
    db.begin();
    db.lock_log();
    const auto cut_at = db.scalar(
        "SELECT revision FROM yuxi_config_changes ORDER BY revision DESC OFFSET $1 "
        "LIMIT 1",
        {std::to_string(keep)});
    if (!cut_at) {
        db.rollback();
        out << "nothing to trim: the log has at most " << keep << " rows\n";
        return Exit::ok;
    }
    const auto deleted = db.scalar(
        "WITH d AS (DELETE FROM yuxi_config_changes WHERE revision <= $1 RETURNING 1) "
        "SELECT count(*) FROM d",
        {*cut_at});
    db.query("UPDATE yuxi_config_log_state SET trimmed_through = greatest(trimmed_through, $1)",
             {*cut_at});
    db.commit();
    out << "trimmed " << deleted.value_or("0") << " rows through revision " << *cut_at
        << "; the log keeps the newest " << keep << '\n';
    return Exit::ok;
}

Exit run_log(const CommandLine& cl, std::ostream& out) {
    Database db(database_target(cl));
    return cl.args.at(0) == "trim" ? log_trim(db, cl, out) : log_status(db, cl, out);
}

}  // namespace

Exit run_write_command(const CommandLine& cl, std::ostream& out, std::ostream& err) {
    const std::string& c = cl.command;
    if (c == "set") {
        return run_set(cl, out, err);
    }
    if (c == "delete") {
        return run_delete(cl, out, err);
    }
    if (c == "rollback") {
        return run_rollback(cl, out, err);
    }
    if (c == "history") {
        return run_history(cl, out, err);
    }
    if (c == "log") {
        return run_log(cl, out);
    }
    throw UsageError("unknown command '" + c + "'");
}

}  // namespace yuxi::config::cli
