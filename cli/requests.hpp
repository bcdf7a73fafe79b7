// yuxi-configctl's commands as typed requests: each command's flags are parsed once, here,
// at the edge (the way the agent's options.cpp turns its flag table into Options), and the
// commands run on the request; no command reads the raw command line. Pure logic: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cli/command_line.hpp"

namespace yuxi::config::cli {

// --redis-host, --redis-port, --redis-sentinels, --redis-sentinel-master (over REDIS_* from
// the environment), and how the agents' reports are verified (--signing-key-file,
// --insecure-redis; over YUXI_CONFIG_SIGNING_KEY*).
struct RedisFlags {
    std::optional<std::string> host;
    std::optional<std::uint16_t> port;
    std::optional<std::string> sentinels;  // "host:port,...", checked
    std::optional<std::string> sentinel_master;
    std::string signing_key_file;
    bool insecure = false;
};

// What the database commands share: where the database is, and the segment (for --wait).
struct DatabaseFlags {
    std::string command;       // for messages: "'set' needs the database"
    std::string database_url;  // --database-url; empty: DATABASE_URL, DATABASE_URL_SYNC
    std::string segment;       // --segment; empty: $YUXI_CONFIG_SEGMENT or yuxi-config
};

// --wait / --wait-all and what goes with them.
struct WaitFlags {
    bool local = false;
    bool all = false;
    std::optional<double> timeout;  // seconds; default 10 (local), 30 (all)
    double stale_after = 10;
    RedisFlags redis;
};

struct KeyArg {
    bool metadata = false;
    std::string key;
};

struct GetRequest {
    std::string segment;
    KeyArg key;
    enum class Form { plain, raw, pretty, json } form = Form::plain;
};
struct ListRequest {
    std::string segment;
    bool metadata = false;
    std::string prefix;
    bool json = false;
};
struct DumpRequest {
    std::string segment;
    bool json = false;
    bool pretty = false;
};
struct WatchRequest {
    std::string segment;
    bool metadata = false;
    std::vector<std::string> keys;
    std::optional<double> timeout;
    std::uint64_t count = ~0ULL;  // changes still to print
    bool raw = false;
    bool json = false;
};
struct StatusRequest {
    std::string segment;
    bool json = false;
    double max_age = 5;
    bool probe = false;  // health: the exit status tells
};
struct SetRequest {
    DatabaseFlags db;
    KeyArg key;
    std::string value;
    std::optional<std::string> category;
    std::optional<std::uint64_t> if_revision;
    WaitFlags wait;
    bool json = false;
};
struct DeleteRequest {
    DatabaseFlags db;
    KeyArg key;
    std::optional<std::uint64_t> if_revision;
    WaitFlags wait;
    bool json = false;
};
struct RollbackRequest {
    DatabaseFlags db;
    KeyArg key;
    std::uint64_t to_revision = 0;
    WaitFlags wait;
    bool json = false;
};
struct HistoryRequest {
    DatabaseFlags db;
    KeyArg key;
    std::uint64_t limit = 20;
    bool json = false;
};
struct WaitRequest {
    DatabaseFlags db;
    std::optional<std::uint64_t> revision;  // default: the database's
    WaitFlags wait;
    bool json = false;
};
struct LogRequest {
    DatabaseFlags db;
    std::optional<std::uint64_t> trim_keep;  // log trim --keep N; nothing: log status
    bool json = false;
};
struct SchemaRequest {
    DatabaseFlags db;
    bool apply = false;  // else status
    bool dry_run = false;
    std::string sql_dir;  // empty: the default search
    bool roles = false;   // then the least-privilege roles (roles.sql)
};
struct MetadataFileArg {
    std::string name;
    std::string path;
};
struct MigrateRequest {
    DatabaseFlags db;
    std::vector<std::string> config_files;
    std::vector<MetadataFileArg> metadata;
    bool dry_run = false;
    bool json = false;
};
struct ExportRequest {
    DatabaseFlags db;
    std::optional<std::string> config_file;
    std::vector<MetadataFileArg> metadata;
};
struct ValueSchemaRequest {
    DatabaseFlags db;
    enum class Op { set, get, list, remove, import } op = Op::list;
    std::string pattern;  // set, get, remove
    std::string file;     // set, import
    bool metadata = false;
    bool force = false;
    bool json = false;
};
struct LockRequest {
    RedisFlags redis;
    std::string name;
    std::vector<std::string> command;
    double ttl = 30;
    std::optional<double> wait;
};
struct KeygenRequest {};
struct AgentsRequest {
    DatabaseFlags db;
    RedisFlags redis;
    double stale_after = 10;
    bool json = false;
};

using Request = std::variant<GetRequest, ListRequest, DumpRequest, WatchRequest, StatusRequest,
                             SetRequest, DeleteRequest, RollbackRequest, HistoryRequest,
                             WaitRequest, LogRequest, SchemaRequest, MigrateRequest, ExportRequest,
                             ValueSchemaRequest, LockRequest, AgentsRequest, KeygenRequest>;

// The request of a parsed command line (a command, not help). Throws UsageError.
Request to_request(const CommandLine& cl);

}  // namespace yuxi::config::cli
