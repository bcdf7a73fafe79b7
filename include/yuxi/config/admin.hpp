// Writing the configuration: the admin library (target yuxi::config_admin, links libpq and
// hiredis). One implementation of every write: yuxi-configctl's write commands and the
// Python module's Admin and Config call this.
//
//   yuxi::config::Admin admin = yuxi::config::Admin::from_env();   // DATABASE_URL
//   auto r = admin.set("embed_model", "\"bge-m3\"");                // JSON text
//   admin.wait(r.revision, yuxi::config::WaitScope::fleet, std::chrono::seconds(30));
//
// Database mode. Each write is one transaction that takes the change log's lock, so what it
// checks (compare-and-set, the current value, the schemas) holds until it commits; a set or
// a delete is one round trip (deploy/sql/003's functions). Every value is checked against
// its key's JSON Schema (yuxi_config_value_schemas) before it is sent, with the schemas
// the database has at the write: a value that breaks its schema changes nothing and
// throws InvalidValueError naming the JSON pointer and the rule ("/models: required").
// Agents apply the same rule to what reaches them another way (raw SQL), keep the key's
// last good value and report the rejection; wait(fleet) fails naming them.
//
// File mode. ConfigFileWriter rewrites a TOML file the agent watches (base.toml), under an
// flock, atomically (a temporary file, fsync, rename, fsync of the directory), after the
// same check against a schema file.
//
// Errors are exceptions derived from AdminError, whose kind() says which; messages name
// the database with its password replaced by "***" and say what to do. Thread rules: an
// Admin, a Fleet and a ConfigFileWriter are each used by one thread at a time (an Admin
// holds one connection); make one per thread, or lock around one.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "yuxi/config/lock.hpp"  // RedisEndpoint

namespace yuxi::config {

class AdminError : public std::runtime_error {
  public:
    enum class Kind {
        usage,          // a bad argument: a key, JSON that does not parse, a schema
        conflict,       // compare-and-set: the key changed since the given revision
        invalid_value,  // the value breaks its key's JSON Schema
        unavailable,    // PostgreSQL or Redis unreachable, or refused the work
        timeout,        // a wait ran out (the write is committed)
        rejected,       // a wait found agents that refused a value (the write is committed)
        not_found,      // no such key, revision or schema
    };
    AdminError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    Kind kind() const noexcept { return kind_; }

  private:
    Kind kind_;
};

// "usage", "conflict", "invalid_value", "unavailable", "timeout", "rejected", "not_found".
std::string_view to_string(AdminError::Kind kind) noexcept;

class ConflictError : public AdminError {
  public:
    ConflictError(const std::string& message, std::string key, std::uint64_t revision)
        : AdminError(Kind::conflict, message), key_(std::move(key)), revision_(revision) {}
    const std::string& key() const noexcept { return key_; }
    // The key's last change (0 if never changed in the log's memory).
    std::uint64_t revision() const noexcept { return revision_; }

  private:
    std::string key_;
    std::uint64_t revision_;
};

class InvalidValueError : public AdminError {
  public:
    InvalidValueError(const std::string& message, std::string key, std::string path,
                      std::string reason)
        : AdminError(Kind::invalid_value, message),
          key_(std::move(key)),
          path_(std::move(path)),
          reason_(std::move(reason)) {}
    const std::string& key() const noexcept { return key_; }
    // An RFC 6901 pointer into the value ("" for the whole value).
    const std::string& path() const noexcept { return path_; }
    // The rule and its words: "required (missing required property 'models')".
    const std::string& reason() const noexcept { return reason_; }

  private:
    std::string key_;
    std::string path_;
    std::string reason_;
};

// One value an agent refused, as it reports it in yuxi:config:agents.
struct AgentRejection {
    std::uint64_t revision = 0;
    std::string ns;  // "config" or "metadata"
    std::string key;
    std::string reason;
};

// An agent as its report in yuxi:config:agents describes it.
struct AgentStatus {
    std::string pod;
    std::string role;   // relay, follower, direct
    std::string state;  // the segment's source state
    std::string segment;
    std::uint64_t revision = 0;
    std::int64_t heartbeat_age_ms = 0;
    bool live = false;                     // its heartbeat is younger than the stale limit
    std::vector<AgentRejection> rejected;  // keys holding a last good value, newest first
    std::uint64_t rejected_keys = 0;       // how many (the list is bounded)
};

class WaitError : public AdminError {
  public:
    WaitError(Kind kind, const std::string& message, std::uint64_t revision,
              std::vector<AgentStatus> agents)
        : AdminError(kind, message), revision_(revision), agents_(std::move(agents)) {}
    std::uint64_t revision() const noexcept { return revision_; }
    // timeout: the live agents still behind; rejected: those reporting rejections.
    const std::vector<AgentStatus>& agents() const noexcept { return agents_; }

  private:
    std::uint64_t revision_;
    std::vector<AgentStatus> agents_;
};

enum class WaitScope {
    local,  // the segment on this host shows the revision
    fleet,  // every live agent in Redis has applied it, and none refused a value up to it
};

struct WriteOptions {
    bool metadata = false;                     // the key names a metadata document
    std::optional<std::string> category;       // config only; default: kept, or the mapping
    std::optional<std::uint64_t> if_revision;  // write only if the key's last change is at
                                               // most this; 0: only if the key is absent
};

// One entry of set_many.
struct Write {
    std::string key;
    std::optional<std::string> value;  // JSON text; nothing deletes the key
    WriteOptions options;
};

struct WriteResult {
    std::uint64_t revision = 0;  // the revision written; unchanged: the key's last change
    bool changed = false;
};

// A key as the database holds it now.
struct KeyValue {
    std::string value;  // JSON text
    std::optional<std::string> category;
    std::uint64_t revision = 0;  // its last change: what a compare-and-set compares with
};

struct HistoryEntry {
    std::uint64_t revision = 0;
    std::string changed_at;                // UTC, ISO 8601 with milliseconds
    std::string changed_by;                // the database role
    char op = 'U';                         // U (set) or D (delete)
    std::optional<std::string> old_value;  // JSON text
    std::optional<std::string> new_value;
    std::optional<std::string> category;
};

struct RolledBack {
    std::string ns;  // "config" or "metadata"
    std::string key;
    bool deleted = false;  // the key did not exist at the revision
};

struct RollbackResult {
    std::uint64_t revision = 0;  // unchanged: the database's revision
    bool changed = false;
    std::vector<RolledBack> keys;  // every key changed after the revision, in key order
};

struct ValueSchemaInfo {
    bool metadata = false;
    std::string pattern;
    std::string schema;  // JSON text
    std::string updated_by;
    std::string updated_at;
};

// A history found rewound by a database failover (yuxi_config_rewinds): revisions
// first_lost..last_applied were applied by agents and then lost.
struct Rewind {
    std::uint64_t first_lost = 0;
    std::uint64_t last_applied = 0;
    std::uint64_t database_revision = 0;  // the database's revision when it was found
    std::string detected_at;              // ISO 8601, UTC
    std::uint64_t agents = 0;             // agents that reported it
};

struct LogStatus {
    std::optional<std::uint64_t> oldest;
    std::optional<std::uint64_t> newest;
    std::uint64_t rows = 0;
    std::uint64_t trimmed_through = 0;
    std::uint64_t database_revision = 0;
    std::vector<Rewind> rewinds;  // newest first, at most 20; none before migration 003
};

// How the agents' reports are verified: the agents sign every document they put in Redis
// with the fleet's key (docs/security.md), and a report that does not verify is not
// believed. Each field left empty comes from the environment as the agent reads it:
// YUXI_CONFIG_SIGNING_KEY_FILE, else YUXI_CONFIG_SIGNING_KEY (base64), and the _PREVIOUS
// pair during a rotation; YUXI_CONFIG_INSECURE_REDIS for a fleet that runs unsigned.
struct FleetTrust {
    std::string key_file;   // a file holding the key's base64 text
    std::string key;        // the key's base64 text
    bool insecure = false;  // the fleet runs unsigned (--insecure-redis): take reports as they are
};

// The fleet's reports in Redis (hash yuxi:config:agents).
class Fleet {
  public:
    // Throws AdminError usage if no key is found (and the fleet is not insecure), or the key
    // is unreadable or malformed.
    explicit Fleet(RedisEndpoint endpoint,
                   std::chrono::milliseconds stale_after = std::chrono::seconds(10),
                   FleetTrust trust = {});
    ~Fleet();
    Fleet(Fleet&&) noexcept;
    Fleet& operator=(Fleet&&) noexcept;

    // Throws AdminError unavailable.
    void ping();
    // Every report, sorted by pod. A field that is not a report is left out and named in
    // warnings(). Throws AdminError unavailable.
    std::vector<AgentStatus> agents();
    std::vector<std::string> take_warnings();

    // Returns once every live agent has applied `revision` (the number of agents waited
    // for; 0: no live agent, nothing to wait for). Throws WaitError rejected as soon as a
    // live agent that has applied it still holds back a value refused at or below it (it
    // serves another state than the database's), WaitError timeout once `timeout` passes,
    // AdminError unavailable.
    std::size_t wait(std::uint64_t revision, std::chrono::milliseconds timeout);

    const RedisEndpoint& endpoint() const noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct AdminOptions {
    std::string database_url;  // empty: $DATABASE_URL, else $DATABASE_URL_SYNC
    std::string segment;       // wait(local): empty is $YUXI_CONFIG_SEGMENT or yuxi-config
    std::optional<RedisEndpoint> redis;  // wait(fleet): nothing is REDIS_* from the env
    std::chrono::milliseconds stale_after = std::chrono::seconds(10);
    FleetTrust trust;  // wait(fleet): how the agents' reports are verified
    std::string application_name = "yuxi-config-admin";
};

class Admin {
  public:
    // Checks the URL (AdminError usage) and connects (AdminError unavailable).
    explicit Admin(AdminOptions options);
    static Admin from_env() { return Admin(AdminOptions{}); }
    ~Admin();
    Admin(Admin&&) noexcept;
    Admin& operator=(Admin&&) noexcept;

    // Writes `json` (JSON text) to `key`. Writing what the key holds changes nothing.
    WriteResult set(std::string_view key, std::string_view json, const WriteOptions& options = {});
    // Every write in one transaction: all or none, one wake-up, seen at once.
    WriteResult set_many(const std::vector<Write>& writes);
    // Deletes `key`; an absent key is unchanged (changed false).
    WriteResult remove(std::string_view key, const WriteOptions& options = {});
    // The key as the database holds it (for a read-modify-write with if_revision).
    std::optional<KeyValue> get(std::string_view key, bool metadata = false);

    // The changes of `key`, newest first. Throws AdminError not_found if none.
    std::vector<HistoryEntry> history(std::string_view key, bool metadata = false,
                                      std::size_t limit = 20);
    // Gives every key changed after `revision` (or only `key`) the value it had right after
    // it, as one write. Throws AdminError not_found when the log was trimmed past it.
    RollbackResult rollback_to(std::uint64_t revision,
                               std::optional<std::pair<std::string, bool>> key = std::nullopt);

    // Blocks until the scope shows `revision`: AdminError usage (no segment, no Redis),
    // WaitError timeout or rejected.
    void wait(std::uint64_t revision, WaitScope scope, std::chrono::milliseconds timeout);

    // The database's revision: the log's newest, or the trim watermark if later.
    std::uint64_t revision();
    // What set would refuse, without writing: throws InvalidValueError or AdminError usage.
    void check_value(std::string_view key, std::string_view json, bool metadata = false);

    // Value schemas (yuxi_config_value_schemas). Setting one checks it (AdminError usage)
    // and the values it governs now (InvalidValueError naming the first that breaks it;
    // `force` writes it anyway).
    void set_value_schema(std::string_view pattern, std::string_view schema, bool metadata = false,
                          bool force = false);
    std::optional<ValueSchemaInfo> value_schema(std::string_view pattern, bool metadata = false);
    std::vector<ValueSchemaInfo> value_schemas();
    bool remove_value_schema(std::string_view pattern, bool metadata = false);
    // A pydantic model's JSON Schema: one schema per property, in one transaction.
    std::vector<std::string> import_value_schemas(std::string_view model_schema,
                                                  bool force = false);

    LogStatus log_status();
    // Deletes all but the newest `keep` rows; returns (rows deleted, revision cut at).
    std::pair<std::uint64_t, std::uint64_t> trim_log(std::uint64_t keep);

    // The database as messages show it (password replaced by "***").
    const std::string& database() const noexcept;
    // The Redis side, from the options (or REDIS_* ): AdminError usage if not configured.
    Fleet& fleet();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The category a new config key gets (the group of Yuxi-Know's Config class it belongs to:
// basic, features, models, agents, sandbox), or nothing.
std::optional<std::string> default_category(std::string_view key);

// One change of a TOML file: the path of keys from the top level (["embed_model"], or
// ["model_names", "ollama"] for a table inside one), and JSON text, or nothing to remove it.
using FileWrite = std::pair<std::vector<std::string>, std::optional<std::string>>;

// File mode's writer of a TOML file (base.toml) that the agent watches.
class ConfigFileWriter {
  public:
    // `value_schema_file`: the agent's --value-schema file (empty: no rules). Throws
    // AdminError usage if it cannot be read or compiled.
    explicit ConfigFileWriter(std::string path, std::string value_schema_file = {});
    ~ConfigFileWriter();
    ConfigFileWriter(ConfigFileWriter&&) noexcept;
    ConfigFileWriter& operator=(ConfigFileWriter&&) noexcept;

    // Under an flock on ".NAME.lock" beside the file: reads it, applies `writes` (a path
    // through a missing or non-table key makes tables), checks each top-level key written
    // against its schema (InvalidValueError: nothing written), and replaces the file
    // atomically. Returns whether its content changed. A value TOML
    // cannot hold (null) is AdminError usage; I/O errors are AdminError unavailable.
    bool apply(const std::vector<FileWrite>& writes);
    // The file's top-level table as a JSON object (text); "{}" if the file is absent.
    std::string read() const;
    const std::string& path() const noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace yuxi::config
