// Parsing yuxi-configctl's command line, and its help texts.
#include "cli/command_line.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace yuxi::config::cli {
namespace {

const std::vector<OptionSpec> kGlobalOptions = {
    {"--segment", true},
    {"--help", false},
    {"--version", false},
};

const OptionSpec* find_option(const std::vector<OptionSpec>& options, std::string_view name) {
    const auto it = std::find_if(options.begin(), options.end(),
                                 [&](const OptionSpec& o) { return o.name == name; });
    return it == options.end() ? nullptr : &*it;
}

}  // namespace

bool CommandLine::has(std::string_view option) const {
    return values.find(option) != values.end() ||
           std::find(flags.begin(), flags.end(), option) != flags.end();
}

std::vector<std::string> CommandLine::values_of(std::string_view option) const {
    std::vector<std::string> out;
    for (const auto& [name, v] : all_values) {
        if (name == option) {
            out.push_back(v);
        }
    }
    return out;
}

std::optional<std::string> CommandLine::value(std::string_view option) const {
    const auto it = values.find(option);
    if (it == values.end()) {
        return std::nullopt;
    }
    return it->second;
}

const OptionSpec kDatabaseUrl = {"--database-url", true};

// `own` and the options of a command that reaches Redis; with `fleet`, also those that
// say how the agents' reports are verified.
std::vector<OptionSpec> with_redis(std::vector<OptionSpec> own, bool fleet) {
    for (const OptionSpec o :
         {OptionSpec{"--redis-host", true}, OptionSpec{"--redis-port", true},
          OptionSpec{"--redis-sentinels", true}, OptionSpec{"--redis-sentinel-master", true}}) {
        own.push_back(o);
    }
    if (fleet) {
        own.push_back({"--signing-key-file", true});
        own.push_back({"--insecure-redis", false});
    }
    return own;
}

// set, delete and rollback: read-your-write on this host, and on the fleet.
std::vector<OptionSpec> write_options(std::vector<OptionSpec> own) {
    for (const OptionSpec o :
         {kDatabaseUrl, OptionSpec{"--metadata", false}, OptionSpec{"--wait", false},
          OptionSpec{"--wait-all", false}, OptionSpec{"--timeout", true},
          OptionSpec{"--stale-after", true}, OptionSpec{"--json", false}}) {
        own.push_back(o);
    }
    return with_redis(std::move(own), true);
}

#define YUXI_CONFIGCTL_REDIS_HELP                                          \
    "  --redis-host H, --redis-port P  default $REDIS_HOST, $REDIS_PORT\n" \
    "  --redis-sentinels LIST, --redis-sentinel-master NAME  Redis through Sentinel\n"

#define YUXI_CONFIGCTL_WAIT_HELP                                                         \
    "  --metadata      KEY names a metadata document (global_metadata; default: a\n"     \
    "                  config key in system_configs)\n"                                  \
    "  --wait          return once the local segment (--segment) shows the revision\n"   \
    "  --wait-all      return once every live agent in Redis (yuxi:config:agents) has\n" \
    "                  applied the revision; no live agent: nothing to wait for\n"       \
    "  --timeout S     how long each wait lasts (default 10 for --wait, 30 for\n"        \
    "                  --wait-all); --wait-all fails at once if an agent refused a\n"    \
    "                  value up to the revision (it keeps that key's last good value)\n" \
    "  --stale-after S an agent whose heartbeat is older is not live (default 10)\n"     \
    "  --redis-host H, --redis-port P  Redis for --wait-all (default $REDIS_HOST,\n"     \
    "                  $REDIS_PORT)\n"                                                   \
    "  --redis-sentinels LIST, --redis-sentinel-master NAME  Redis through Sentinel\n"   \
    "                  (default $REDIS_SENTINELS, $REDIS_SENTINEL_MASTER)\n"             \
    "  --signing-key-file F  the fleet's key, to verify the agents' reports (default\n"  \
    "                  $YUXI_CONFIG_SIGNING_KEY_FILE, else $YUXI_CONFIG_SIGNING_KEY)\n"  \
    "  --insecure-redis  the fleet runs unsigned: take the reports unverified\n"         \
    "  --json          print one JSON object\n"                                          \
    "  --database-url URL  default $DATABASE_URL, else $DATABASE_URL_SYNC\n"

#define YUXI_CONFIGCTL_WRITE_EXITS                                                          \
    "Exit status: 0 done, 1 no such key, 2 usage or bad input, 3 --if-revision conflict,\n" \
    "4 database or Redis unreachable, 5 a wait timed out, 7 an agent refused a value up\n"  \
    "to the revision (for both, the write is committed), 8 the value breaks its key's\n"    \
    "JSON Schema (nothing was written).\n"

std::vector<CommandSpec> admin_commands() {
    return {
        {"set", 2, 2, write_options({{"--category", true}, {"--if-revision", true}}),
         "set KEY JSON [--category C] [--metadata] [--if-revision N] [--wait | --wait-all]",
         "Writes KEY = JSON in PostgreSQL (an upsert, logged and pushed to every agent) and\n"
         "prints the revision it made. JSON must be valid JSON: a string is \"\\\"text\\\"\".\n"
         "Writing the value (and category) the key already has writes nothing and prints\n"
         "\"unchanged (revision R)\", R being the key's last change.\n"
         "  --category C    the config key's category (default: kept; for a new key, the\n"
         "                  migrate mapping, see docs/cli.md)\n"
         "  --if-revision N compare-and-set: write only if the key's last change is at\n"
         "                  revision N or older; 0: only if the key does not "
         "exist\n" YUXI_CONFIGCTL_WAIT_HELP YUXI_CONFIGCTL_WRITE_EXITS,
         Target::database},
        {"delete", 1, 1, write_options({{"--if-revision", true}}),
         "delete KEY [--metadata] [--if-revision N] [--wait | --wait-all]",
         "Deletes KEY from PostgreSQL and prints the revision it made.\n"
         "  --if-revision N delete only if the key's last change is at revision N or "
         "older\n" YUXI_CONFIGCTL_WAIT_HELP YUXI_CONFIGCTL_WRITE_EXITS,
         Target::database},
        {"history",
         1,
         1,
         {kDatabaseUrl, {"--metadata", false}, {"--limit", true}, {"--json", false}},
         "history KEY [--metadata] [--limit N] [--json]",
         "Prints the changes of KEY from the change log, newest first: revision, time (UTC),\n"
         "who (the database role), U (set) or D (delete), and old -> new (long values cut;\n"
         "--json has them whole).\n"
         "  --metadata      KEY names a metadata document\n"
         "  --limit N       at most N changes (default 20)\n"
         "  --json          a JSON array of {revision, changed_at, changed_by, op,\n"
         "                  old_value, new_value, category}\n"
         "Exit status: 0 printed, 1 no change of KEY in the log, 2 usage, 4 database.\n",
         Target::database},
        {"rollback", 1, 1, write_options({{"--to-revision", true}}),
         "rollback KEY --to-revision N [--metadata] [--wait | --wait-all]",
         "Gives KEY the value it had right after revision N (deletes it if it did not exist\n"
         "then). A normal write: logged, pushed, undone by another rollback. Refused when\n"
         "the log was trimmed past N.\n"
         "  --to-revision N the revision whose value to restore ('history KEY' lists "
         "them)\n" YUXI_CONFIGCTL_WAIT_HELP
         "Exit status: 0 done, 1 revision N is no longer in the log, 2 usage, 4 database,\n"
         "5 a wait timed out, 7 an agent refused a value, 8 the value of revision N breaks\n"
         "the key's JSON Schema now.\n",
         Target::database},
        {"schema",
         1,
         1,
         {kDatabaseUrl, {"--dry-run", false}, {"--sql-dir", true}, {"--roles", false}},
         "schema apply|status [--dry-run] [--sql-dir DIR] [--roles]",
         "apply: applies the SQL migrations (deploy/sql) not yet recorded in the table\n"
         "yuxi_config_schema, in order, each in one transaction, under a lock so that two\n"
         "runs never race. Safe on a database where Yuxi-Know's tables hold data.\n"
         "status: prints the applied and pending migrations.\n"
         "  --dry-run       print what apply would do, change nothing\n"
         "  --sql-dir DIR   the migrations (default $YUXI_CONFIG_SQL_DIR, else\n"
         "                  <prefix>/share/yuxi-config/sql beside the program)\n"
         "  --roles         then create the least-privilege roles yuxi_config_agent and\n"
         "                  yuxi_config_admin and their grants (roles.sql; docs/security.md)\n"
         "Exit status: 0 done, 2 usage or no migrations found, 4 database (the failing\n"
         "migration is rolled back; those before it stay applied).\n",
         Target::database},
        {"log",
         1,
         1,
         {kDatabaseUrl, {"--keep", true}, {"--json", false}},
         "log trim --keep N | log status [--json]",
         "trim: deletes all but the newest N rows of the change log and records the\n"
         "highest revision deleted (yuxi_config_log_state.trimmed_through); agents behind\n"
         "it resync. history and rollback cannot reach what was trimmed.\n"
         "status: the log's oldest and newest revision, its rows and trimmed_through.\n"
         "Exit status: 0 done, 2 usage, 4 database.\n",
         Target::database},
        {"migrate",
         0,
         0,
         {kDatabaseUrl,
          {"--config-file", true},
          {"--metadata", true},
          {"--dry-run", false},
          {"--json", false}},
         "migrate --config-file FILE... [--metadata NAME=PATH...] [--dry-run] [--json]",
         "Loads file mode's files into PostgreSQL (Yuxi-Know's migrate_config_to_db.py):\n"
         "the TOML files' top-level keys into system_configs, exactly as file mode\n"
         "publishes them (files layered in order), with categories (docs/cli.md), and\n"
         "each JSON file into global_metadata under NAME. One transaction; writes only\n"
         "keys whose value (compared as JSON) or category differ, so a second run changes\n"
         "nothing. Keys in the database but not in the files are left alone.\n"
         "  --config-file FILE    TOML, repeatable (later files override earlier ones)\n"
         "  --metadata NAME=PATH  a JSON document, repeatable\n"
         "  --dry-run             print what would change, write nothing\n"
         "  --json                print one JSON object\n"
         "Exit status: 0 done, 2 usage or a file that cannot be read, 4 database.\n",
         Target::database},
        {"export",
         0,
         0,
         {kDatabaseUrl, {"--config-file", true}, {"--metadata", true}},
         "export --config-file FILE [--metadata NAME=PATH...]",
         "Writes the database back to file mode's files: every config key into the TOML\n"
         "FILE, each metadata document NAME into the JSON file PATH. Each file is replaced\n"
         "atomically (a temporary file, fsync, rename); nothing is written unless every\n"
         "file can be. A value TOML cannot hold (null) fails the export, naming the key.\n"
         "Exit status: 0 done, 1 no metadata document NAME, 2 usage, a value TOML cannot\n"
         "hold or a file that cannot be written, 4 database.\n",
         Target::database},
        {"wait", 0, 1,
         with_redis({kDatabaseUrl,
                     {"--all", false},
                     {"--timeout", true},
                     {"--stale-after", true},
                     {"--json", false}},
                    true),
         "wait [REVISION] [--all] [--timeout S]",
         "Waits until the local segment (--segment) shows REVISION (default: the database's\n"
         "revision), or with --all until every live agent in Redis has applied it. --all\n"
         "fails at once when an agent reports that it refused a value up to REVISION (it\n"
         "keeps that key's last good value), naming the pods, keys and reasons.\n"
         "  --all           wait for the fleet (yuxi:config:agents) instead of this host\n"
         "  --timeout S     how long (default 10, 30 with --all)\n"
         "  --stale-after S an agent whose heartbeat is older is not live (default "
         "10)\n" YUXI_CONFIGCTL_REDIS_HELP
         "  --signing-key-file F  the fleet's key, to verify the agents' reports (default\n"
         "                  $YUXI_CONFIG_SIGNING_KEY_FILE, else $YUXI_CONFIG_SIGNING_KEY)\n"
         "  --insecure-redis  the fleet runs unsigned: take the reports unverified\n"
         "  --json          print one JSON object\n"
         "Exit status: 0 seen, 2 usage or no segment, 4 database or Redis unreachable,\n"
         "5 timed out, 7 an agent refused a value up to REVISION.\n",
         Target::database},
        {"value-schema",
         1,
         3,
         {kDatabaseUrl, {"--metadata", false}, {"--force", false}, {"--json", false}},
         "value-schema set PATTERN FILE | get PATTERN | list | delete PATTERN | import FILE",
         "The JSON Schema of each key (table yuxi_config_value_schemas): every writer refuses\n"
         "a value that breaks its key's schema, and agents refuse one that slips past (raw\n"
         "SQL), keeping the key's last good value. PATTERN is a key, or a key with * (any\n"
         "characters); a key's schema is its exact pattern's, else the longest matching one.\n"
         "  set PATTERN FILE  store the JSON Schema (draft 7) in FILE (- for stdin); refused\n"
         "                    if a value it governs breaks it, unless --force\n"
         "  get PATTERN       print the schema\n"
         "  list              print every pattern (with --json, the schemas too)\n"
         "  delete PATTERN    delete the schema\n"
         "  import FILE       a pydantic model's JSON Schema (model_json_schema()): one\n"
         "                    schema per property, its $defs inlined, in one transaction\n"
         "  --metadata        PATTERN names metadata documents (default: config keys)\n"
         "  --force           store even if current values break it\n"
         "  --json            print JSON\n"
         "Exit status: 0 done, 1 no such schema, 2 usage or a schema that cannot be used,\n"
         "4 database, 8 a current value breaks the schema.\n",
         Target::database},
        {"lock", 2, 100000, with_redis({{"--ttl", true}, {"--wait", true}}, false),
         "lock NAME [--ttl S] [--wait S] -- CMD [ARGS...]",
         "Runs CMD while holding the distributed lock NAME (Redis key yuxi:lock:NAME),\n"
         "renewed every TTL/3; CMD gets YUXI_LOCK_NAME and YUXI_LOCK_FENCING_TOKEN in its\n"
         "environment. SIGINT, SIGTERM and SIGHUP are passed on to CMD. If the lock is lost\n"
         "while CMD runs, CMD gets SIGTERM.\n"
         "  --ttl S         the lock's time to live (default 30)\n"
         "  --wait S        how long to try to acquire (default 0: one "
         "attempt)\n" YUXI_CONFIGCTL_REDIS_HELP
         "                  (default $REDIS_SENTINELS, $REDIS_SENTINEL_MASTER)\n"
         "Exit status: CMD's (128+N if a signal N ended it); 4 Redis unreachable, 6 lock\n"
         "lost while CMD ran, 75 the lock stayed held by another for all of --wait, 126\n"
         "CMD cannot run, 127 CMD not found.\n",
         Target::redis},
        {"agents", 0, 0,
         with_redis({kDatabaseUrl, {"--json", false}, {"--stale-after", true}}, true),
         "agents [--json] [--stale-after S]",
         "Lists the agents that report to Redis (hash yuxi:config:agents): pod, role,\n"
         "applied revision, lag behind the database's revision (behind the highest\n"
         "revision reported when the database is not reachable), heartbeat age, state.\n"
         "  --stale-after S an agent whose heartbeat is older is not live (default 10)\n"
         "  --json          one JSON object\n"
         "  --signing-key-file F  the fleet's key: only reports it signed are listed\n"
         "                  (default $YUXI_CONFIG_SIGNING_KEY_FILE, else\n"
         "                  $YUXI_CONFIG_SIGNING_KEY)\n"
         "  --insecure-redis  the fleet runs unsigned: list the reports unverified\n"
         "Exit status: 0 listed (even none), 2 usage, 4 Redis unreachable.\n",
         Target::redis},
        {"keygen",
         0,
         0,
         {},
         "keygen",
         "Prints a new signing key for the fleet: 32 random bytes (OpenSSL), base64. Put\n"
         "it in a Secret (the agents' --signing-key-file) or YUXI_CONFIG_SIGNING_KEY; see\n"
         "docs/security.md for rotating it.\n"
         "Exit status: 0.\n",
         Target::none},
    };
}

#undef YUXI_CONFIGCTL_WAIT_HELP
#undef YUXI_CONFIGCTL_WRITE_EXITS

const std::vector<CommandSpec>& read_commands_table() {
    static const std::vector<CommandSpec> commands = {
        {"get",
         1,
         1,
         {{"--metadata", false}, {"--raw", false}, {"--pretty", false}, {"--json", false}},
         "get KEY [--metadata] [--raw | --pretty | --json]",
         "Prints the value of KEY as the JSON text the segment holds.\n"
         "  --metadata   KEY names a metadata document (default: a config key)\n"
         "  --raw        print a JSON string without its quotes and escapes\n"
         "  --pretty     indent the JSON\n"
         "  --json       print {\"namespace\",\"key\",\"value\",\"revision\",\"category\"}\n"
         "Exit status: 0 found, 1 no such key, 2 usage or segment error.\n"},
        {"list",
         0,
         0,
         {{"--prefix", true}, {"--metadata", false}, {"--json", false}},
         "list [--prefix P] [--metadata] [--json]",
         "Prints the keys of one namespace, sorted, one per line.\n"
         "  --prefix P   only keys that start with P\n"
         "  --metadata   list metadata documents (default: config keys)\n"
         "  --json       print a JSON array of the keys\n"
         "Exit status: 0 some key listed, 1 none matched, 2 usage or segment error.\n"},
        {"dump",
         0,
         0,
         {{"--json", false}, {"--pretty", false}},
         "dump [--json [--pretty]]",
         "Prints every entry of both namespaces, all of one revision, sorted by key.\n"
         "  --json       one JSON object {\"revision\":R,\"config\":{...},\"metadata\":{...}}\n"
         "  --pretty     indent the JSON (with --json)\n"
         "Exit status: 0 done, 2 usage or segment error.\n"},
        {"watch",
         1,
         1000,
         {{"--timeout", true},
          {"--count", true},
          {"--metadata", false},
          {"--raw", false},
          {"--json", false}},
         "watch KEY... [--timeout S] [--count N] [--metadata] [--raw | --json]",
         "Prints each change of the KEYs as it is published, one line per key changed:\n"
         "\"REVISION KEY VALUE\", VALUE being \"(deleted)\" for a deletion. It sleeps on the\n"
         "segment between changes (no polling). Changes published faster than they are\n"
         "read are seen together, at the newest revision. On stderr, one line says when\n"
         "watching starts.\n"
         "  --timeout S  stop after S seconds (default: never)\n"
         "  --count N    stop after N changes printed\n"
         "  --metadata   the KEYs name metadata documents\n"
         "  --raw        print JSON strings without their quotes\n"
         "  --json       one object per line: {\"revision\",\"namespace\",\"key\",\"value\","
         "\"deleted\"}\n"
         "Exit status: 0 a change was printed, 1 none before the timeout, 2 usage or\n"
         "segment error.\n"},
        {"status",
         0,
         0,
         {{"--json", false}, {"--max-age", true}},
         "status [--json] [--max-age S]",
         "Prints the segment's revision, writer heartbeat age, whether the writer is alive,\n"
         "the source state, entries and bytes.\n"
         "  --json       one JSON object\n"
         "  --max-age S  the heartbeat age above which the writer is not fresh (default 5)\n"
         "Exit status: 0 the segment was read, 2 usage or segment error.\n"},
        {"health",
         0,
         0,
         {{"--json", false}, {"--max-age", true}},
         "health [--json] [--max-age S]",
         "Prints what status prints, and tells by its exit status whether the segment can\n"
         "be trusted: the writer is alive, beat within --max-age seconds (default 5) and\n"
         "its source state is ok.\n"
         "Exit status: 0 healthy, 1 not healthy (stale, degraded, starting, stopped or no\n"
         "writer), 2 usage or segment error.\n"},
    };
    return commands;
}

const std::vector<CommandSpec>& commands() {
    static const std::vector<CommandSpec> all = [] {
        std::vector<CommandSpec> out = read_commands_table();
        for (CommandSpec& c : admin_commands()) {
            out.push_back(std::move(c));
        }
        out.push_back({"help",
                       0,
                       1,
                       {},
                       "help [COMMAND]",
                       "Prints the help of yuxi-configctl or of COMMAND.\n",
                       Target::none});
        return out;
    }();
    return all;
}

const CommandSpec* find_command(std::string_view name) {
    const auto& all = commands();
    const auto it =
        std::find_if(all.begin(), all.end(), [&](const CommandSpec& c) { return c.name == name; });
    return it == all.end() ? nullptr : &*it;
}

CommandLine parse(std::span<const std::string> argv) {
    CommandLine cl;
    const CommandSpec* spec = nullptr;
    bool options_done = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (!options_done && arg == "--") {
            options_done = true;
            continue;
        }
        // "-5" and "-0.5" are JSON values (set KEY -5), not options.
        const bool negative_number = arg.size() > 1 && arg[0] == '-' &&
                                     (std::isdigit(static_cast<unsigned char>(arg[1])) != 0);
        const bool is_option = !options_done && arg.size() > 1 && arg[0] == '-' && !negative_number;
        if (!is_option) {
            if (cl.command.empty()) {
                cl.command = arg;
                spec = find_command(arg);
                if (spec == nullptr) {
                    throw UsageError("unknown command '" + arg +
                                     "'; run 'yuxi-configctl --help' for the list");
                }
            } else {
                cl.args.push_back(arg);
            }
            continue;
        }
        std::string name = arg == "-h" ? std::string("--help") : arg;
        std::optional<std::string> inline_value;
        if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        const OptionSpec* option = find_option(kGlobalOptions, name);
        if (option == nullptr && spec != nullptr) {
            option = find_option(spec->options, name);
        }
        if (option == nullptr) {
            if (spec == nullptr) {
                throw UsageError("unknown option '" + name +
                                 "' (command options go after the command)");
            }
            throw UsageError("unknown option '" + name + "' for '" + std::string(spec->name) +
                             "'; run 'yuxi-configctl " + std::string(spec->name) + " --help'");
        }
        if (!option->takes_value) {
            if (inline_value) {
                throw UsageError("option '" + name + "' takes no value");
            }
            cl.flags.push_back(name);
            continue;
        }
        if (!inline_value) {
            if (i + 1 >= argv.size()) {
                throw UsageError("option '" + name + "' needs a value");
            }
            inline_value = argv[++i];
        }
        cl.values[name] = *inline_value;
        cl.all_values.emplace_back(name, *inline_value);
    }
    // What the table says of arguments; every other rule is the request's (requests.cpp).
    if (spec != nullptr && !cl.has("--help") &&
        (cl.args.size() < spec->min_args || cl.args.size() > spec->max_args)) {
        throw UsageError("usage: yuxi-configctl " + std::string(spec->synopsis));
    }
    return cl;
}

double parse_seconds(std::string_view option, std::string_view text) {
    std::string s(text);
    if (!s.empty() && s.back() == 's') {
        s.pop_back();
    }
    char* end = nullptr;
    errno = 0;
    const double v = s.empty() ? -1 : std::strtod(s.c_str(), &end);
    if (s.empty() || errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0 ||
        v > 1e9) {
        throw UsageError("option '" + std::string(option) + "' needs a number of seconds, not '" +
                         std::string(text) + "'");
    }
    return v;
}

std::uint64_t parse_revision(std::string_view option, std::string_view text) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
        throw UsageError("option '" + std::string(option) +
                         "' needs a non-negative integer, not '" + std::string(text) + "'");
    }
    return v;
}

std::uint64_t parse_count(std::string_view option, std::string_view text) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v == 0) {
        throw UsageError("option '" + std::string(option) + "' needs a positive integer, not '" +
                         std::string(text) + "'");
    }
    return v;
}

std::string general_help() {
    std::string out =
        "Usage: yuxi-configctl [--segment NAME] COMMAND [ARGS] [OPTIONS]\n"
        "\n"
        "Reads the shared-memory segment that yuxi-config-agent keeps current: the\n"
        "configuration (namespace 'config') and knowledge-base metadata ('metadata');\n"
        "writes them in PostgreSQL, the source of truth (database mode); runs commands\n"
        "under a Redis lock and shows the agents of the fleet.\n";
    const std::pair<Target, const char*> groups[] = {
        {Target::segment, "Reading the segment"},
        {Target::database, "Writing PostgreSQL (--database-url URL, else $DATABASE_URL)"},
        {Target::redis, "Redis ($REDIS_HOST, $REDIS_PORT, $REDIS_PASSWORD, $REDIS_DB)"},
        {Target::none, "Help"},
    };
    for (const auto& [target, title] : groups) {
        out += std::string("\n") + title + ":\n";
        for (const CommandSpec& c : commands()) {
            if (c.target == target) {
                out += "  " + std::string(c.synopsis) + "\n";
            }
        }
    }
    out +=
        "\n"
        "Options for every command:\n"
        "  --segment NAME  the segment (default: $YUXI_CONFIG_SEGMENT, else yuxi-config)\n"
        "  -h, --help      this help, or the command's (yuxi-configctl get --help)\n"
        "  --version       the version\n"
        "\n"
        "Exit status: 0 found or done; 1 not found (no such key, no key matched, no change\n"
        "before --timeout, not healthy); 2 usage error or bad input, or the segment cannot\n"
        "be opened; 3 --if-revision conflict; 4 PostgreSQL or Redis unreachable or refused;\n"
        "5 --wait/--wait-all timed out (the write is committed); 6 lock lost while the\n"
        "command ran; 7 an agent refused a value (--wait-all, wait --all); 8 a value that\n"
        "breaks its key's JSON Schema (nothing written); 75 lock held by somebody else.\n"
        "The reason is on stderr.\n"
        "docs/cli.md has every command, option and output.\n";
    return out;
}

std::string command_help(const CommandSpec& spec) {
    return "Usage: yuxi-configctl [--segment NAME] " + std::string(spec.synopsis) + "\n\n" +
           std::string(spec.help);
}

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        return std::nullopt;
    }
    return std::string(v);
}

}  // namespace yuxi::config::cli
