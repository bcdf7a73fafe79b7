// The agent's --help text (docs/configuration.md has one section per setting).
#include <string>
#include <string_view>

#include "agent/ops/options.hpp"

namespace yuxi::config::agent {

std::string usage(std::string_view program) {
    std::string u = "Usage: " + std::string(program) + " [--flag value | --flag=value]...\n";
    u += R"(
Keeps configuration and knowledge-base metadata in a shared-memory segment that
API processes read through the yuxi-config client. Every flag has an environment
variable; a flag wins over its variable. See docs/configuration.md.

  --mode MODE               CONFIG_MODE: file (TOML and JSON files) or database
                            (PostgreSQL). Default: file
  --config-file PATH        YUXI_CONFIG_FILE (comma-separated): TOML file, may be
                            repeated; later files override earlier ones key by key
                            and tables merge. Default: saves/config/base.toml
  --metadata NAME=PATH      YUXI_METADATA (comma-separated): JSON document published
                            as metadata entry NAME, may be repeated. Default:
                            global_metadata=saves/knowledge_base_data/global_metadata.json
  --value-schema PATH       YUXI_CONFIG_VALUE_SCHEMA: file mode's JSON Schemas of the
                            config keys (a value-schemas document, or a pydantic
                            model's JSON Schema); a value that breaks its key's
                            schema is refused and the key keeps its last good
                            value. Default: none
  --segment NAME            YUXI_CONFIG_SEGMENT: shared-memory segment name
                            (/dev/shm/NAME). Default: yuxi-config
  --http HOST:PORT          YUXI_CONFIG_HTTP: address for /healthz, /readyz and
                            /metrics; port 0 turns the server off.
                            Default: 127.0.0.1:9464
  --max-value-bytes SIZE    YUXI_CONFIG_MAX_VALUE_BYTES: largest value published
                            (bytes, or with K/M/G/KiB/MiB/GiB); larger values are
                            refused and logged. Default: 64MiB
  --segment-layout N        YUXI_CONFIG_SEGMENT_LAYOUT: 2, or 1 for clients built
                            against the previous release's header (this release
                            only). Default: 2
  --log-level LEVEL         LOG_LEVEL: trace, debug, info, warn, error, critical,
                            off. Default: info
  --log-format FORMAT       LOG_FORMAT: human, or json (one object per line).
                            Default: human
  --database-url URL        DATABASE_URL, else DATABASE_URL_SYNC: PostgreSQL for
                            database mode (postgresql://, postgresql+asyncpg://
                            or host=... dbname=...). Required in database mode.
  --safety-poll DURATION    YUXI_CONFIG_SAFETY_POLL: how often database mode reads
                            the change log even without a notification (ms, s,
                            m, h; a bare number is seconds). Default: 30s
  --max-catchup-batch N     YUXI_CONFIG_MAX_CATCHUP_BATCH: change-log rows read
                            per catch-up query, 1 to 1000000. Default: 1000
  --redis-host HOST         REDIS_HOST: Redis for the relay's fan-out, the L2
                            snapshot and applied revisions. Default: none
  --redis-port PORT         REDIS_PORT. Default: 6379
  --redis-password PASS     REDIS_PASSWORD (AUTH; never logged). Default: none
  --redis-username USER     REDIS_USERNAME: an ACL user (AUTH USER PASS).
                            Default: none (AUTH with the password alone)
  --redis-db N              REDIS_DB. Default: 0
  --redis-replica-host HOST REDIS_REPLICA_HOST: a replica followers subscribe to
                            and read from. Default: none (the primary)
  --redis-replica-port PORT REDIS_REPLICA_PORT. Default: 6379
  --redis-sentinels LIST    REDIS_SENTINELS: host:port,... of Redis Sentinels;
                            the primary is asked from them and followed across
                            failovers (replaces --redis-host). Default: none
  --redis-sentinel-master NAME  REDIS_SENTINEL_MASTER. Default: mymaster
  --redis-sentinel-username USER  REDIS_SENTINEL_USERNAME. Default: none
  --redis-sentinel-password PASS  REDIS_SENTINEL_PASSWORD (never logged).
                            Default: none
  --relay auto|on|off       YUXI_CONFIG_RELAY: compete for the relay lease (one
                            agent listens to PostgreSQL, the rest follow Redis).
                            Default: auto (on when Redis is configured)
  --relay-lease-ttl DUR     YUXI_CONFIG_RELAY_LEASE_TTL: the lease's TTL; a dead
                            relay is replaced within it. Default: 5s
  --snapshot-ttl DURATION   YUXI_CONFIG_SNAPSHOT_TTL: TTL of the L2 snapshot.
                            Default: 300s
  --stream-length N         YUXI_CONFIG_STREAM_LENGTH: batches kept in the
                            yuxi:config:log stream. Default: 10000
  --log-keep N              YUXI_CONFIG_LOG_KEEP: the relay trims the PostgreSQL
                            change log to the last N revisions. Default: 0 (never)
  --serve-degraded BOOL     YUXI_CONFIG_SERVE_DEGRADED: ready while serving the L2
                            snapshot with PostgreSQL away. Default: true
  --pod-name NAME           POD_NAME: this agent's name in yuxi:config:agents.
                            Default: the host name
  --signing-key-file PATH   YUXI_CONFIG_SIGNING_KEY_FILE: the fleet's key (base64,
                            32+ bytes) to sign and verify Redis documents; re-read
                            when it changes. Or the key itself in the environment
                            variable YUXI_CONFIG_SIGNING_KEY (never a flag).
  --signing-key-previous-file PATH  YUXI_CONFIG_SIGNING_KEY_PREVIOUS_FILE (or
                            YUXI_CONFIG_SIGNING_KEY_PREVIOUS): also accepted while a
                            key rotates. Default: none
  --insecure-redis          YUXI_CONFIG_INSECURE_REDIS: run with Redis unsigned
                            (whoever can write to Redis decides what pods read).
  --snapshot-max-age DUR    YUXI_CONFIG_SNAPSHOT_MAX_AGE: never load an L2 snapshot
                            older than this. Default: 24h
  --check                   Validate the settings and, in file mode, parse every
                            file (the first problem is named with file, line and
                            key); touch no segment. Exit 0 if all is well, else 2.
  --help                    Print this text and exit.
  --version                 Print the version and exit.

Signals: SIGTERM or SIGINT stop the agent cleanly (exit 0; the segment stays
readable); SIGHUP reloads every file (file mode) or catches up with the
change log at once (database mode).
Exit status: 0 clean stop, 1 runtime failure (e.g. another agent holds the
segment), 2 bad flags or settings (including an unusable DATABASE_URL).
)";
    return u;
}

}  // namespace yuxi::config::agent
