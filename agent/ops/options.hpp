// The agent's settings: command-line flags and environment variables (docs/design.md, "Command
// line").
//
// Every setting has a flag and an environment variable (12-factor); a flag wins over its
// variable. For the repeatable flags (--config-file, --metadata) any occurrence of the
// flag replaces the whole list the variable gives, so the result never mixes the two.
// Flags take their value as `--flag value` or `--flag=value`. docs/configuration.md
// describes each setting.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/host_port.hpp"
#include "service/log_settings.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent {

enum class Mode {
    file,      // TOML and JSON files, watched with inotify
    database,  // PostgreSQL: LISTEN/NOTIFY and the change log (Redis fan-out comes later)
};

using service::LogFormat;
using service::LogLevel;

// Whether a database-mode agent competes for the relay lease (docs/design.md, "Redis").
enum class RelayMode {
    automatic,  // on when both PostgreSQL and Redis are configured
    on,
    off,  // every agent listens to PostgreSQL itself; Redis only records applied revisions
};

// Redis, for the relay's fan-out, the L2 snapshot and the fleet's applied revisions.
struct RedisSettings {
    std::string host;  // empty: no Redis
    std::uint16_t port = 6379;
    std::string username;  // Redis 6 ACL user (AUTH user pass); empty: the password alone
    std::string password;  // never logged
    std::uint32_t db = 0;
    std::string replica_host;  // empty: followers read the primary
    std::uint16_t replica_port = 6379;
    // Redis Sentinel: when set, the primary of `sentinel_master` is asked from these
    // (host and port above are then not used), and followed across failovers.
    std::vector<HostPort> sentinels;
    std::string sentinel_master = "mymaster";
    std::string sentinel_username;
    std::string sentinel_password;  // never logged
    bool enabled() const noexcept { return !host.empty() || !sentinels.empty(); }
};

// Where the signing keys come from. Each of current and previous: a file (re-read when it
// changes, as a Kubernetes Secret volume is updated) or an environment variable.
struct SigningSettings {
    std::string key_file;       // --signing-key-file, YUXI_CONFIG_SIGNING_KEY_FILE
    std::string key_env;        // YUXI_CONFIG_SIGNING_KEY (the key's base64 text)
    std::string previous_file;  // --signing-key-previous-file
    std::string previous_env;   // YUXI_CONFIG_SIGNING_KEY_PREVIOUS
    bool insecure = false;      // --insecure-redis: run unsigned, and say so
    bool configured() const noexcept { return !key_file.empty() || !key_env.empty(); }
};

// One --metadata NAME=PATH: the whole JSON document at `path` becomes metadata entry `name`.
struct MetadataFile {
    std::string name;
    std::string path;
    bool operator==(const MetadataFile&) const = default;
};

// A host and port to listen on: an IPv4 address, a host name, or a bracketed IPv6 address.
struct ListenAddress {
    std::string host;
    std::uint16_t port = 0;
    bool operator==(const ListenAddress&) const = default;
};

inline constexpr std::uint64_t kDefaultMaxValueBytes = 64ULL << 20;
inline constexpr std::string_view kDefaultConfigFile = "saves/config/base.toml";
inline constexpr std::string_view kDefaultMetadata =
    "global_metadata=saves/knowledge_base_data/global_metadata.json";
inline constexpr std::string_view kDefaultSegment = "yuxi-config";
inline constexpr std::string_view kDefaultHttp = "127.0.0.1:9464";
inline constexpr std::chrono::milliseconds kDefaultSafetyPoll{30000};
inline constexpr std::uint32_t kDefaultMaxCatchupBatch = 1000;
inline constexpr std::uint32_t kMaxCatchupBatchLimit = 1000000;
inline constexpr std::chrono::milliseconds kDefaultSnapshotTtl{300000};
inline constexpr std::chrono::milliseconds kDefaultRelayLeaseTtl{5000};
inline constexpr std::uint32_t kDefaultStreamLength = 10000;
inline constexpr std::chrono::milliseconds kDefaultSnapshotMaxAge{24 * 3600 * 1000};

struct Options {
    Mode mode = Mode::file;
    std::vector<std::string> config_files;  // in order: later files override earlier ones
    std::vector<MetadataFile> metadata;
    // File mode: the JSON Schemas of the config keys (core/value_schema.hpp's rules file);
    // empty: none.
    std::string value_schema_file;
    std::string segment;
    ListenAddress http;
    std::uint64_t max_value_bytes = kDefaultMaxValueBytes;
    std::uint32_t segment_layout = layout::kVersion;  // 1: for clients of the previous release
    LogLevel log_level = LogLevel::info;
    LogFormat log_format = LogFormat::human;
    // Database mode. The URL as given (libpq URI, SQLAlchemy URL or keyword=value): log
    // it only through redact_database_url().
    std::string database_url;
    std::string database_url_origin;  // "--database-url", "DATABASE_URL", "DATABASE_URL_SYNC"
    std::chrono::milliseconds safety_poll = kDefaultSafetyPoll;
    std::uint32_t max_catchup_batch = kDefaultMaxCatchupBatch;
    // Redis (database mode). The password is never logged.
    RedisSettings redis;
    RelayMode relay = RelayMode::automatic;
    std::chrono::milliseconds relay_lease_ttl = kDefaultRelayLeaseTtl;
    std::chrono::milliseconds snapshot_ttl = kDefaultSnapshotTtl;  // the L2 snapshot's TTL
    std::uint32_t stream_length = kDefaultStreamLength;            // yuxi:config:log, approximate
    std::uint64_t log_keep = 0;  // the relay trims the PostgreSQL log to this many; 0: never
    bool serve_degraded = true;  // ready while serving the L2 snapshot without PostgreSQL
    std::string pod_name;        // field in yuxi:config:agents: POD_NAME, else the host name
    // Signing the Redis documents (docs/security.md). The keys themselves come only from
    // the environment or files, never a flag (a flag shows in /proc/PID/cmdline); the
    // text is kept here only until the key ring is made, and is never logged.
    SigningSettings signing;
    std::chrono::milliseconds snapshot_max_age = kDefaultSnapshotMaxAge;

    // The relay is on: database mode, Redis configured, and not --relay=off.
    bool relay_enabled() const noexcept {
        return mode == Mode::database && redis.enabled() && relay != RelayMode::off;
    }
    bool help = false;     // --help: print usage, exit 0
    bool version = false;  // --version: print the version, exit 0
    bool check = false;    // --check: validate the settings (and files), touch nothing
};

// A flag or variable the agent cannot use. The message names it and says what is wrong.
class OptionsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Looks an environment variable up; nothing if unset. Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

// The process environment, treating an empty variable as unset.
std::optional<std::string> process_env(std::string_view name);

// Parses `args` (without the program name) over the environment. Throws OptionsError.
[[nodiscard]] Options parse_options(std::span<const std::string_view> args,
                                    const EnvLookup& env = process_env);

// Pieces of parse_options, public for the tests.
[[nodiscard]] MetadataFile parse_metadata(std::string_view text);
[[nodiscard]] ListenAddress parse_listen_address(std::string_view text);
// Bytes, with an optional suffix: K, KiB, M, MiB, G, GiB (all powers of 1024).
[[nodiscard]] std::uint64_t parse_byte_size(std::string_view text);
[[nodiscard]] LogLevel parse_log_level(std::string_view text);
[[nodiscard]] LogFormat parse_log_format(std::string_view text);
// 1 or layout::kVersion.
[[nodiscard]] std::uint32_t parse_segment_layout(std::string_view text);
// A duration: a number with a unit ms, s, m or h (a bare number is seconds).
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);

std::string_view to_string(Mode mode) noexcept;
using service::to_string;  // of LogLevel and LogFormat

// The --help text.
std::string usage(std::string_view program);

// The --version text.
std::string version_text();

}  // namespace yuxi::config::agent
