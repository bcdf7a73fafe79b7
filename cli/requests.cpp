// From a parsed command line to a typed request: every flag's value parsed and checked once.
#include "cli/requests.hpp"

#include <algorithm>

#include "core/host_port.hpp"

namespace yuxi::config::cli {
namespace {

std::optional<double> seconds_of(const CommandLine& cl, std::string_view option) {
    const auto v = cl.value(option);
    return v ? std::optional(parse_seconds(option, *v)) : std::nullopt;
}

std::optional<std::uint64_t> revision_of(const CommandLine& cl, std::string_view option) {
    const auto v = cl.value(option);
    return v ? std::optional(parse_revision(option, *v)) : std::nullopt;
}

RedisFlags redis_of(const CommandLine& cl) {
    RedisFlags r;
    r.host = cl.value("--redis-host");
    if (const auto v = cl.value("--redis-port")) {
        const std::uint64_t port = parse_revision("--redis-port", *v);
        if (port == 0 || port > 65535) {
            throw UsageError("option '--redis-port' needs a port from 1 to 65535, not '" + *v +
                             "'");
        }
        r.port = static_cast<std::uint16_t>(port);
    }
    if (const auto list = cl.value("--redis-sentinels")) {
        const auto hosts = parse_host_list(*list, 26379);
        if (!hosts) {
            throw UsageError("option '--redis-sentinels' needs host:port,...: " + hosts.reason());
        }
        r.sentinels = *list;
    }
    r.sentinel_master = cl.value("--redis-sentinel-master");
    r.signing_key_file = cl.value("--signing-key-file").value_or("");
    r.insecure = cl.has("--insecure-redis");
    return r;
}

DatabaseFlags database_of(const CommandLine& cl) {
    return {cl.command, cl.value("--database-url").value_or(""),
            cl.value("--segment").value_or("")};
}

KeyArg key_of(const CommandLine& cl) {
    return {cl.has("--metadata"), cl.args.at(0)};
}

// --wait, --wait-all and their options; `wait` itself spells --wait-all as --all.
WaitFlags wait_of(const CommandLine& cl, bool wait_command) {
    WaitFlags w;
    w.local = wait_command ? !cl.has("--all") : cl.has("--wait");
    w.all = wait_command ? cl.has("--all") : cl.has("--wait-all");
    w.timeout = seconds_of(cl, "--timeout");
    w.stale_after = seconds_of(cl, "--stale-after").value_or(10.0);
    w.redis = redis_of(cl);
    if (!wait_command && w.timeout && !w.local && !w.all) {
        throw UsageError("option '--timeout' goes with --wait or --wait-all");
    }
    return w;
}

std::string_view subcommand_of(const CommandLine& cl, std::string_view synopsis,
                               std::initializer_list<std::string_view> known) {
    const std::string_view sub = cl.args.empty() ? std::string_view() : cl.args[0];
    if (std::find(known.begin(), known.end(), sub) == known.end()) {
        throw UsageError("unknown '" + cl.command + "' subcommand '" + std::string(sub) +
                         "'; usage: yuxi-configctl " + std::string(synopsis));
    }
    return sub;
}

std::vector<MetadataFileArg> metadata_files(const CommandLine& cl) {
    std::vector<MetadataFileArg> out;
    for (const std::string& v : cl.values_of("--metadata")) {
        const auto eq = v.find('=');
        if (eq == 0 || eq == std::string::npos || eq + 1 == v.size()) {
            throw UsageError(
                "option '--metadata' needs NAME=PATH (the metadata key and its JSON "
                "file), not '" +
                v + "'");
        }
        out.push_back({v.substr(0, eq), v.substr(eq + 1)});
    }
    return out;
}

GetRequest get_request(const CommandLine& cl) {
    GetRequest r{cl.value("--segment").value_or(""), key_of(cl), GetRequest::Form::plain};
    std::vector<std::string_view> forms;
    for (const auto& [option, form] : {std::pair{"--raw", GetRequest::Form::raw},
                                       {"--pretty", GetRequest::Form::pretty},
                                       {"--json", GetRequest::Form::json}}) {
        if (cl.has(option)) {
            forms.push_back(option);
            r.form = form;
        }
    }
    if (forms.size() > 1) {
        throw UsageError("options " + std::string(forms[0]) + " and " + std::string(forms[1]) +
                         " cannot be combined");
    }
    return r;
}

WatchRequest watch_request(const CommandLine& cl) {
    if (cl.has("--raw") && cl.has("--json")) {
        throw UsageError("options --raw and --json cannot be combined");
    }
    WatchRequest r;
    r.segment = cl.value("--segment").value_or("");
    r.metadata = cl.has("--metadata");
    r.keys = cl.args;
    r.timeout = seconds_of(cl, "--timeout");
    if (const auto v = cl.value("--count")) {
        r.count = parse_count("--count", *v);
    }
    r.raw = cl.has("--raw");
    r.json = cl.has("--json");
    return r;
}

SetRequest set_request(const CommandLine& cl) {
    SetRequest r{database_of(cl),
                 key_of(cl),
                 cl.args.at(1),
                 cl.value("--category"),
                 revision_of(cl, "--if-revision"),
                 wait_of(cl, false),
                 cl.has("--json")};
    if (r.key.metadata && r.category) {
        throw UsageError("option '--category' is for config keys; metadata has no category");
    }
    return r;
}

RollbackRequest rollback_request(const CommandLine& cl) {
    const auto to = revision_of(cl, "--to-revision");
    if (!to) {
        throw UsageError("rollback needs --to-revision N; 'yuxi-configctl history KEY' lists them");
    }
    return {database_of(cl), key_of(cl), *to, wait_of(cl, false), cl.has("--json")};
}

LogRequest log_request(const CommandLine& cl) {
    const std::string_view sub =
        subcommand_of(cl, "log trim --keep N | log status [--json]", {"trim", "status"});
    const auto keep = revision_of(cl, "--keep");
    if ((sub == "trim") != keep.has_value()) {
        throw UsageError(sub == "trim" ? "log trim needs --keep N"
                                       : "option '--keep' goes with log trim");
    }
    return {database_of(cl), keep, cl.has("--json")};
}

MigrateRequest migrate_request(const CommandLine& cl) {
    if (!cl.has("--config-file") && !cl.has("--metadata")) {
        throw UsageError(cl.command +
                         " needs --config-file FILE or --metadata NAME=PATH (or both)");
    }
    return {database_of(cl), cl.values_of("--config-file"), metadata_files(cl), cl.has("--dry-run"),
            cl.has("--json")};
}

ExportRequest export_request(const CommandLine& cl) {
    if (!cl.has("--config-file") && !cl.has("--metadata")) {
        throw UsageError(cl.command +
                         " needs --config-file FILE or --metadata NAME=PATH (or both)");
    }
    if (cl.values_of("--config-file").size() > 1) {
        throw UsageError("export writes one --config-file (the database holds the merge)");
    }
    return {database_of(cl), cl.value("--config-file"), metadata_files(cl)};
}

ValueSchemaRequest value_schema_request(const CommandLine& cl) {
    using Op = ValueSchemaRequest::Op;
    constexpr std::string_view kSynopsis =
        "value-schema set PATTERN FILE | get PATTERN | list | delete PATTERN | import FILE";
    const std::string_view sub =
        subcommand_of(cl, kSynopsis, {"set", "get", "list", "delete", "import"});
    ValueSchemaRequest r;
    r.db = database_of(cl);
    r.metadata = cl.has("--metadata");
    r.force = cl.has("--force");
    r.json = cl.has("--json");
    const std::size_t args = sub == "set" ? 3 : sub == "list" ? 1 : 2;
    if (cl.args.size() != args) {
        throw UsageError("usage: yuxi-configctl " + std::string(kSynopsis));
    }
    if (sub == "set") {
        r.op = Op::set;
        r.pattern = cl.args[1];
        r.file = cl.args[2];
    } else if (sub == "get" || sub == "delete") {
        r.op = sub == "get" ? Op::get : Op::remove;
        r.pattern = cl.args[1];
    } else if (sub == "import") {
        r.op = Op::import;
        r.file = cl.args[1];
        if (r.metadata) {
            throw UsageError(
                "value-schema import writes config keys' schemas; --metadata does "
                "not apply");
        }
    }
    if (r.force && r.op != Op::set && r.op != Op::import) {
        throw UsageError("option '--force' goes with value-schema set or import");
    }
    return r;
}

LockRequest lock_request(const CommandLine& cl) {
    LockRequest r;
    r.redis = redis_of(cl);
    r.name = cl.args.at(0);
    r.command.assign(cl.args.begin() + 1, cl.args.end());
    r.ttl = seconds_of(cl, "--ttl").value_or(30.0);
    if (r.ttl < 0.01) {
        throw UsageError("option '--ttl' needs at least 0.01 seconds");
    }
    r.wait = seconds_of(cl, "--wait");
    return r;
}

StatusRequest status_request(const CommandLine& cl) {
    return {cl.value("--segment").value_or(""), cl.has("--json"),
            seconds_of(cl, "--max-age").value_or(5.0), cl.command == "health"};
}

}  // namespace

Request to_request(const CommandLine& cl) {
    const std::string& c = cl.command;
    const std::string segment = cl.value("--segment").value_or("");
    if (c == "get") {
        return get_request(cl);
    }
    if (c == "list") {
        return ListRequest{segment, cl.has("--metadata"), cl.value("--prefix").value_or(""),
                           cl.has("--json")};
    }
    if (c == "dump") {
        if (cl.has("--pretty") && !cl.has("--json")) {
            throw UsageError("option --pretty of dump goes with --json");
        }
        return DumpRequest{segment, cl.has("--json"), cl.has("--pretty")};
    }
    if (c == "watch") {
        return watch_request(cl);
    }
    if (c == "status" || c == "health") {
        return status_request(cl);
    }
    if (c == "set") {
        return set_request(cl);
    }
    if (c == "delete") {
        return DeleteRequest{database_of(cl), key_of(cl), revision_of(cl, "--if-revision"),
                             wait_of(cl, false), cl.has("--json")};
    }
    if (c == "rollback") {
        return rollback_request(cl);
    }
    if (c == "history") {
        const auto limit = cl.value("--limit");
        return HistoryRequest{database_of(cl), key_of(cl),
                              limit ? parse_count("--limit", *limit) : 20, cl.has("--json")};
    }
    if (c == "wait") {
        return WaitRequest{
            database_of(cl),
            cl.args.empty() ? std::nullopt : std::optional(parse_revision("REVISION", cl.args[0])),
            wait_of(cl, true), cl.has("--json")};
    }
    if (c == "log") {
        return log_request(cl);
    }
    if (c == "schema") {
        const std::string_view sub = subcommand_of(
            cl, "schema apply|status [--dry-run] [--sql-dir DIR]", {"apply", "status"});
        return SchemaRequest{database_of(cl), sub == "apply", cl.has("--dry-run"),
                             cl.value("--sql-dir").value_or(""), cl.has("--roles")};
    }
    if (c == "migrate") {
        return migrate_request(cl);
    }
    if (c == "export") {
        return export_request(cl);
    }
    if (c == "value-schema") {
        return value_schema_request(cl);
    }
    if (c == "lock") {
        return lock_request(cl);
    }
    if (c == "agents") {
        return AgentsRequest{database_of(cl), redis_of(cl),
                             seconds_of(cl, "--stale-after").value_or(10.0), cl.has("--json")};
    }
    if (c == "keygen") {
        return KeygenRequest{};
    }
    throw UsageError("unknown command '" + c + "'; run 'yuxi-configctl --help' for the list");
}

}  // namespace yuxi::config::cli
