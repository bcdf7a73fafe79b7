// yuxi-config-agent's flags and environment: defaults, flag over variable, repeatable
// flags, both value forms, and the errors bad input gets.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "agent/ops/options.hpp"

namespace yuxi::config::agent {
namespace {

constexpr const char* kKey = "eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDE=";

using Env = std::map<std::string, std::string, std::less<>>;

Options parse(std::vector<std::string_view> args, const Env& env = {}) {
    return parse_options(args, [&env](std::string_view name) -> std::optional<std::string> {
        const auto it = env.find(name);
        if (it == env.end()) {
            return std::nullopt;
        }
        return it->second;
    });
}

// The message parse() throws, or "" if it does not.
std::string error_of(std::vector<std::string_view> args, const Env& env = {}) {
    try {
        (void)parse(std::move(args), env);
    } catch (const OptionsError& e) {
        return e.what();
    }
    return "";
}

TEST(OptionsTest, DefaultsAreYuxiKnowsLayout) {
    const Options o = parse({});
    EXPECT_EQ(o.mode, Mode::file);
    EXPECT_EQ(o.config_files, std::vector<std::string>{"saves/config/base.toml"});
    ASSERT_EQ(o.metadata.size(), 1u);
    EXPECT_EQ(o.metadata[0],
              (MetadataFile{"global_metadata", "saves/knowledge_base_data/global_metadata.json"}));
    EXPECT_EQ(o.segment, "yuxi-config");
    EXPECT_EQ(o.http, (ListenAddress{"127.0.0.1", 9464}));
    EXPECT_EQ(o.max_value_bytes, 64ULL << 20);
    EXPECT_GE(o.max_value_bytes, 16ULL << 20);
    EXPECT_EQ(o.log_level, LogLevel::info);
    EXPECT_FALSE(o.help);
    EXPECT_FALSE(o.version);
}

TEST(OptionsTest, EnvironmentSetsEverything) {
    const Env env = {{"CONFIG_MODE", "database"},
                     {"YUXI_CONFIG_FILE", "a.toml, b.toml"},
                     {"YUXI_METADATA", "global_metadata=g.json,milvus=m/metadata_milvus.json"},
                     {"YUXI_CONFIG_SEGMENT", "seg-env"},
                     {"YUXI_CONFIG_HTTP", "0.0.0.0:8080"},
                     {"YUXI_CONFIG_MAX_VALUE_BYTES", "16MiB"},
                     {"LOG_LEVEL", "DEBUG"},
                     {"DATABASE_URL", "postgresql+asyncpg://yuxi:pw@db:5432/yuxi"},
                     {"YUXI_CONFIG_SAFETY_POLL", "5s"},
                     {"YUXI_CONFIG_MAX_CATCHUP_BATCH", "250"}};
    const Options o = parse({}, env);
    EXPECT_EQ(o.mode, Mode::database);
    EXPECT_EQ(o.database_url, "postgresql+asyncpg://yuxi:pw@db:5432/yuxi");
    EXPECT_EQ(o.database_url_origin, "DATABASE_URL");
    EXPECT_EQ(o.safety_poll, std::chrono::seconds(5));
    EXPECT_EQ(o.max_catchup_batch, 250u);
    EXPECT_EQ(o.config_files, (std::vector<std::string>{"a.toml", "b.toml"}));
    ASSERT_EQ(o.metadata.size(), 2u);
    EXPECT_EQ(o.metadata[1], (MetadataFile{"milvus", "m/metadata_milvus.json"}));
    EXPECT_EQ(o.segment, "seg-env");
    EXPECT_EQ(o.http, (ListenAddress{"0.0.0.0", 8080}));
    EXPECT_EQ(o.max_value_bytes, 16ULL << 20);
    EXPECT_EQ(o.log_level, LogLevel::debug);
}

TEST(OptionsTest, FlagWinsOverEnvironment) {
    const Env env = {{"CONFIG_MODE", "database"},
                     {"YUXI_CONFIG_FILE", "env1.toml,env2.toml"},
                     {"YUXI_METADATA", "env=env.json"},
                     {"YUXI_CONFIG_SEGMENT", "seg-env"},
                     {"YUXI_CONFIG_HTTP", "0.0.0.0:8080"},
                     {"YUXI_CONFIG_MAX_VALUE_BYTES", "1K"},
                     {"LOG_LEVEL", "error"}};
    const Options o = parse({"--mode", "file", "--config-file=flag.toml", "--metadata", "f=f.json",
                             "--segment=seg-flag", "--http", "[::1]:9000", "--max-value-bytes=2M",
                             "--log-level", "trace"},
                            env);
    EXPECT_EQ(o.mode, Mode::file);
    // A repeatable flag replaces the variable's whole list; the two never mix.
    EXPECT_EQ(o.config_files, std::vector<std::string>{"flag.toml"});
    ASSERT_EQ(o.metadata.size(), 1u);
    EXPECT_EQ(o.metadata[0], (MetadataFile{"f", "f.json"}));
    EXPECT_EQ(o.segment, "seg-flag");
    EXPECT_EQ(o.http, (ListenAddress{"::1", 9000}));
    EXPECT_EQ(o.max_value_bytes, 2ULL << 20);
    EXPECT_EQ(o.log_level, LogLevel::trace);
}

TEST(OptionsTest, RepeatableFlagsKeepOrder) {
    const Options o = parse({"--config-file", "base.toml", "--config-file=custom_providers.toml",
                             "--metadata=global_metadata=g.json", "--metadata", "milvus=m.json"});
    EXPECT_EQ(o.config_files, (std::vector<std::string>{"base.toml", "custom_providers.toml"}));
    ASSERT_EQ(o.metadata.size(), 2u);
    EXPECT_EQ(o.metadata[0].name, "global_metadata");
    EXPECT_EQ(o.metadata[1].name, "milvus");
}

TEST(OptionsTest, SingleFlagGivenTwiceTakesTheLast) {
    EXPECT_EQ(parse({"--segment", "a", "--segment", "b"}).segment, "b");
}

TEST(OptionsTest, HelpAndVersion) {
    EXPECT_TRUE(parse({"--help"}).help);
    EXPECT_TRUE(parse({"-h"}).help);
    EXPECT_TRUE(parse({"--version"}).version);
    const std::string u = usage("yuxi-config-agent");
    for (const char* needle :
         {"--mode",      "CONFIG_MODE",        "--config-file",     "YUXI_CONFIG_FILE",
          "--metadata",  "YUXI_METADATA",      "--segment",         "YUXI_CONFIG_SEGMENT",
          "--http",      "YUXI_CONFIG_HTTP",   "--max-value-bytes", "YUXI_CONFIG_MAX_VALUE_BYTES",
          "--log-level", "LOG_LEVEL",          "--log-format",      "LOG_FORMAT",
          "REDIS_HOST",  "REDIS_REPLICA_HOST", "YUXI_CONFIG_RELAY", "POD_NAME"}) {
        EXPECT_NE(u.find(needle), std::string::npos) << needle;
    }
    EXPECT_NE(version_text().find("yuxi-config-agent "), std::string::npos);
}

TEST(OptionsTest, BadFlagsAreErrorsThatNameThem) {
    EXPECT_NE(error_of({"--bogus"}).find("unknown flag '--bogus'"), std::string::npos);
    EXPECT_NE(error_of({"positional"}).find("unexpected argument 'positional'"), std::string::npos);
    EXPECT_NE(error_of({"--segment"}).find("--segment needs a value"), std::string::npos);
    EXPECT_NE(error_of({"--segment="}).find("non-empty"), std::string::npos);
    EXPECT_NE(error_of({"--help=yes"}).find("takes no value"), std::string::npos);
    EXPECT_NE(error_of({"--mode", "redis"}).find("--mode: 'redis' is not a mode"),
              std::string::npos);
    EXPECT_NE(error_of({}, {{"CONFIG_MODE", "redis"}}).find("CONFIG_MODE: 'redis'"),
              std::string::npos);
    EXPECT_NE(error_of({"--segment", "a/b"}).find("--segment: invalid segment name"),
              std::string::npos);
    EXPECT_NE(error_of({"--log-level=loud"}).find("--log-level: 'loud' is not a log level"),
              std::string::npos);
    EXPECT_NE(error_of({}, {{"LOG_LEVEL", "loud"}}).find("LOG_LEVEL: 'loud'"), std::string::npos);
}

TEST(OptionsTest, MetadataMustBeNameEqualsPath) {
    EXPECT_EQ(parse_metadata("kb = dir/kb.json"), (MetadataFile{"kb", "dir/kb.json"}));
    EXPECT_EQ(parse_metadata("a=b=c"), (MetadataFile{"a", "b=c"}));
    EXPECT_NE(error_of({"--metadata", "nopath"}).find("--metadata: 'nopath' is not NAME=PATH"),
              std::string::npos);
    EXPECT_NE(error_of({"--metadata", "=x.json"}).find("empty NAME"), std::string::npos);
    EXPECT_NE(error_of({"--metadata", "x="}).find("empty PATH"), std::string::npos);
    EXPECT_NE(error_of({"--metadata", "x=a.json", "--metadata", "x=b.json"})
                  .find("metadata name 'x' given twice"),
              std::string::npos);
    EXPECT_NE(error_of({}, {{"YUXI_METADATA", "bad"}}).find("YUXI_METADATA: 'bad'"),
              std::string::npos);
    EXPECT_NE(error_of({}, {{"YUXI_METADATA", " , "}}).find("YUXI_METADATA: no value"),
              std::string::npos);
}

TEST(OptionsTest, HttpAddressIsValidated) {
    EXPECT_EQ(parse_listen_address("localhost:1"), (ListenAddress{"localhost", 1}));
    EXPECT_EQ(parse_listen_address("[::]:0"), (ListenAddress{"::", 0}));
    EXPECT_EQ(parse_listen_address("10.0.0.1:65535"), (ListenAddress{"10.0.0.1", 65535}));
    EXPECT_THROW((void)parse_listen_address("9464"), OptionsError);
    EXPECT_THROW((void)parse_listen_address(":9464"), OptionsError);
    EXPECT_THROW((void)parse_listen_address("host:"), OptionsError);
    EXPECT_THROW((void)parse_listen_address("host:65536"), OptionsError);
    EXPECT_THROW((void)parse_listen_address("host:12x"), OptionsError);
    EXPECT_THROW((void)parse_listen_address("::1:9464"), OptionsError);
    EXPECT_THROW((void)parse_listen_address("[zz]:9464"), OptionsError);
    EXPECT_THROW((void)parse_listen_address("bad_host!:9464"), OptionsError);
    EXPECT_NE(error_of({"--http", "nope"}).find("--http: 'nope' is not HOST:PORT"),
              std::string::npos);
    EXPECT_NE(error_of({}, {{"YUXI_CONFIG_HTTP", "h:99999"}}).find("YUXI_CONFIG_HTTP:"),
              std::string::npos);
}

TEST(OptionsTest, ByteSizes) {
    EXPECT_EQ(parse_byte_size("67108864"), 64ULL << 20);
    EXPECT_EQ(parse_byte_size("64MiB"), 64ULL << 20);
    EXPECT_EQ(parse_byte_size("64m"), 64ULL << 20);
    EXPECT_EQ(parse_byte_size("16 MiB"), 16ULL << 20);
    EXPECT_EQ(parse_byte_size("512K"), 512ULL << 10);
    EXPECT_EQ(parse_byte_size("1GiB"), 1ULL << 30);
    EXPECT_THROW((void)parse_byte_size("MiB"), OptionsError);
    EXPECT_THROW((void)parse_byte_size("-1"), OptionsError);
    EXPECT_THROW((void)parse_byte_size("12TB"), OptionsError);
    EXPECT_THROW((void)parse_byte_size("99999999999999999999"), OptionsError);
    EXPECT_THROW((void)parse_byte_size("17179869184G"), OptionsError);
    EXPECT_NE(error_of({"--max-value-bytes", "0"}).find("must be from 1 byte"), std::string::npos);
    EXPECT_NE(error_of({"--max-value-bytes", "3GiB"}).find("--max-value-bytes: must be from"),
              std::string::npos);
}

}  // namespace
}  // namespace yuxi::config::agent

namespace yuxi::config::agent {
namespace {

TEST(OptionsTest, DatabaseModeDefaults) {
    const Options o = parse({"--mode=database", "--database-url", "postgresql://u@h/db"});
    EXPECT_EQ(o.mode, Mode::database);
    EXPECT_EQ(o.database_url, "postgresql://u@h/db");
    EXPECT_EQ(o.database_url_origin, "--database-url");
    EXPECT_EQ(o.safety_poll, std::chrono::seconds(30));
    EXPECT_EQ(o.max_catchup_batch, 1000u);
}

TEST(OptionsTest, DatabaseUrlSources) {
    // The flag over DATABASE_URL over DATABASE_URL_SYNC.
    Env env = {{"CONFIG_MODE", "database"},
               {"DATABASE_URL", "postgresql://a@h/db"},
               {"DATABASE_URL_SYNC", "postgresql+psycopg2://b@h/db"}};
    EXPECT_EQ(parse({}, env).database_url, "postgresql://a@h/db");
    EXPECT_EQ(parse({"--database-url=host=h dbname=db"}, env).database_url, "host=h dbname=db");
    env.erase("DATABASE_URL");
    const Options o = parse({}, env);
    EXPECT_EQ(o.database_url, "postgresql+psycopg2://b@h/db");
    EXPECT_EQ(o.database_url_origin, "DATABASE_URL_SYNC");
    // File mode ignores a URL it cannot use: Yuxi-Know's environment always has one.
    EXPECT_NO_THROW(parse({}, {{"DATABASE_URL", "mysql://x:y@h/db"}}));
}

TEST(OptionsTest, DatabaseModeNeedsAUsableUrl) {
    EXPECT_NE(error_of({"--mode", "database"}).find("DATABASE_URL"), std::string::npos);
    const std::string e =
        error_of({"--mode", "database", "--database-url", "mysql://alice:s3cr3t@h/db"});
    EXPECT_NE(e.find("--database-url"), std::string::npos) << e;
    EXPECT_EQ(e.find("s3cr3t"), std::string::npos) << e;
    const std::string e2 =
        error_of({}, {{"CONFIG_MODE", "database"}, {"DATABASE_URL_SYNC", "redis://:s3cr3t@h/0"}});
    EXPECT_NE(e2.find("DATABASE_URL_SYNC"), std::string::npos) << e2;
    EXPECT_EQ(e2.find("s3cr3t"), std::string::npos) << e2;
}

TEST(OptionsTest, Durations) {
    EXPECT_EQ(parse_duration("30"), std::chrono::seconds(30));
    EXPECT_EQ(parse_duration("30s"), std::chrono::seconds(30));
    EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
    EXPECT_EQ(parse_duration(" 2m "), std::chrono::minutes(2));
    EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
    EXPECT_THROW((void)parse_duration("1.5s"), OptionsError);
    EXPECT_THROW((void)parse_duration("soon"), OptionsError);
    EXPECT_THROW((void)parse_duration("5d"), OptionsError);
    EXPECT_THROW((void)parse_duration("99999999999h"), OptionsError);
    EXPECT_NE(error_of({"--safety-poll", "5ms"}).find("at least 10ms"), std::string::npos);
    EXPECT_EQ(parse({"--safety-poll=10ms"}).safety_poll, std::chrono::milliseconds(10));
}

TEST(OptionsTest, CatchupBatch) {
    EXPECT_EQ(parse({"--max-catchup-batch", "1"}).max_catchup_batch, 1u);
    EXPECT_EQ(parse({"--max-catchup-batch", "1000000"}).max_catchup_batch, 1000000u);
    for (const char* bad : {"0", "1000001", "ten", "-5", "12x"}) {
        EXPECT_NE(error_of({"--max-catchup-batch", bad}).find("--max-catchup-batch"),
                  std::string::npos)
            << bad;
    }
}

// Database mode with Redis signs its documents: without a key it refuses to start, naming
// every way to give one; a key that is not one is refused without quoting it.
TEST(OptionsTest, SigningIsRequiredWithRedisAndKeysAreChecked) {
    const std::vector<std::string_view> redis = {
        "--mode", "database", "--database-url", "postgresql://h/db", "--redis-host", "r"};
    const std::string refused = error_of(redis);
    for (const char* name : {"YUXI_CONFIG_SIGNING_KEY", "--signing-key-file", "--insecure-redis"}) {
        EXPECT_NE(refused.find(name), std::string::npos) << refused;
    }
    const Options signed_ = parse(redis, {{"YUXI_CONFIG_SIGNING_KEY", kKey}});
    EXPECT_TRUE(signed_.signing.configured());
    EXPECT_FALSE(signed_.signing.insecure);
    const std::string short_key = "c2hvcnQ=";  // "short"
    const std::string bad = error_of(redis, {{"YUXI_CONFIG_SIGNING_KEY", short_key}});
    EXPECT_NE(bad.find("YUXI_CONFIG_SIGNING_KEY holds 5 bytes"), std::string::npos) << bad;
    EXPECT_EQ(bad.find(short_key), std::string::npos) << bad;
    EXPECT_NE(error_of(redis, {{"YUXI_CONFIG_SIGNING_KEY", "not base64!"}}).find("not base64"),
              std::string::npos);
    std::vector<std::string_view> with_file = redis;
    with_file.insert(with_file.end(), {"--signing-key-file", "/nonexistent/key"});
    EXPECT_NE(error_of(with_file).find("cannot read /nonexistent/key"), std::string::npos);
    // Where Redis is not used the keys are not read (one ConfigMap may serve both modes).
    EXPECT_EQ(error_of({"--signing-key-file", "/nonexistent/key"}), "");
    // File mode, and database mode without Redis, need no key.
    EXPECT_FALSE(
        parse({"--mode", "database", "--database-url", "postgresql://h/db"}).signing.configured());
    EXPECT_EQ(parse({"--snapshot-max-age", "2h"}).snapshot_max_age, std::chrono::hours(2));
}

TEST(OptionsTest, RedisAndRelaySettings) {
    const Options none = parse({"--mode", "database", "--database-url", "postgresql://h/db"});
    EXPECT_FALSE(none.redis.enabled());
    EXPECT_FALSE(none.relay_enabled());
    EXPECT_FALSE(none.pod_name.empty());  // the host name

    const Options o = parse({"--mode", "database", "--database-url", "postgresql://h/db",
                             "--redis-port", "6380", "--redis-db", "2", "--log-format", "json"},
                            {{"REDIS_HOST", "redis.local"},
                             {"REDIS_PASSWORD", "s3cret"},
                             {"YUXI_CONFIG_SIGNING_KEY", kKey},
                             {"POD_NAME", "api-7"},
                             {"YUXI_CONFIG_SNAPSHOT_TTL", "60s"}});
    EXPECT_EQ(o.redis.host, "redis.local");
    EXPECT_EQ(o.redis.port, 6380);
    EXPECT_EQ(o.redis.db, 2u);
    EXPECT_EQ(o.redis.password, "s3cret");
    EXPECT_EQ(o.pod_name, "api-7");
    EXPECT_EQ(o.snapshot_ttl, std::chrono::seconds(60));
    EXPECT_EQ(o.log_format, LogFormat::json);
    EXPECT_TRUE(o.relay_enabled());

    const Options off = parse({"--mode", "database", "--database-url", "postgresql://h/db",
                               "--redis-host", "r", "--relay", "off", "--insecure-redis"});
    EXPECT_TRUE(off.signing.insecure);
    EXPECT_FALSE(off.relay_enabled());
    EXPECT_TRUE(off.redis.enabled());

    EXPECT_NE(error_of({"--redis-port", "0"}).find("--redis-port: '0' is not a number"),
              std::string::npos);
    EXPECT_NE(error_of({"--log-format", "xml"}).find("not a log format"), std::string::npos);
    EXPECT_NE(error_of({"--serve-degraded", "maybe"}).find("not true or false"), std::string::npos);
    EXPECT_NE(
        error_of({"--mode", "database", "--database-url", "postgresql://h/db", "--relay", "on"})
            .find("needs Redis"),
        std::string::npos);
}

// The previous release's layout, for one release, for clients built against its header.
TEST(OptionsTest, SegmentLayout) {
    EXPECT_EQ(parse({}).segment_layout, layout::kVersion);
    EXPECT_EQ(parse({"--segment-layout", "1"}).segment_layout, 1u);
    EXPECT_EQ(parse({"--segment-layout=2"}).segment_layout, 2u);
    EXPECT_EQ(parse({}, {{"YUXI_CONFIG_SEGMENT_LAYOUT", "1"}}).segment_layout, 1u);
    EXPECT_EQ(
        parse({"--segment-layout", "2"}, {{"YUXI_CONFIG_SEGMENT_LAYOUT", "1"}}).segment_layout, 2u);
    for (const char* bad : {"0", "3", "v1", "2.0"}) {
        EXPECT_NE(error_of({"--segment-layout", bad}).find("--segment-layout"), std::string::npos)
            << bad;
    }
    EXPECT_NE(
        error_of({}, {{"YUXI_CONFIG_SEGMENT_LAYOUT", "3"}}).find("YUXI_CONFIG_SEGMENT_LAYOUT"),
        std::string::npos);
}

}  // namespace
}  // namespace yuxi::config::agent
