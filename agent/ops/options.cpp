// Command-line flags and environment variables of yuxi-config-agent.
// (Over 600 lines: one table of 37 settings, each with its parser and the one-line error
// it gives; split by subsystem it would scatter the precedence rules a reader checks here.)
#include "agent/ops/options.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>

#include "core/database_url.hpp"
#include "core/signing.hpp"
#include "core/text.hpp"
#include "service/flags.hpp"
#include "yuxi/config/detail/mapping.hpp"
#include "yuxi/config/layout.hpp"

#ifndef YUXI_CONFIG_VERSION
#define YUXI_CONFIG_VERSION "unknown"
#endif

namespace yuxi::config::agent {
namespace {

// 'text', built by appending: GCC 12 at -O3 reports a false -Wrestrict on
// `"'" + std::string(...)` (GCC bug 105651).
std::string quote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '\'';
    out += text;
    out += '\'';
    return out;
}

enum class Arity {
    single,  // takes a value; given twice, the last wins
    repeat,  // takes a value, may be given many times; the variable is comma-separated
    none,    // takes no value
};

struct FlagSpec {
    std::string_view flag;  // without the leading "--"
    std::string_view env;   // empty: no variable
    Arity arity;
};

constexpr std::array<FlagSpec, 38> kFlags = {{
    {"mode", "CONFIG_MODE", Arity::single},
    {"config-file", "YUXI_CONFIG_FILE", Arity::repeat},
    {"metadata", "YUXI_METADATA", Arity::repeat},
    {"value-schema", "YUXI_CONFIG_VALUE_SCHEMA", Arity::single},
    {"segment", "YUXI_CONFIG_SEGMENT", Arity::single},
    {"http", "YUXI_CONFIG_HTTP", Arity::single},
    {"max-value-bytes", "YUXI_CONFIG_MAX_VALUE_BYTES", Arity::single},
    {"segment-layout", "YUXI_CONFIG_SEGMENT_LAYOUT", Arity::single},
    {"log-level", "LOG_LEVEL", Arity::single},
    {"database-url", "DATABASE_URL", Arity::single},  // falls back to DATABASE_URL_SYNC
    {"safety-poll", "YUXI_CONFIG_SAFETY_POLL", Arity::single},
    {"max-catchup-batch", "YUXI_CONFIG_MAX_CATCHUP_BATCH", Arity::single},
    {"log-format", "LOG_FORMAT", Arity::single},
    {"redis-host", "REDIS_HOST", Arity::single},
    {"redis-port", "REDIS_PORT", Arity::single},
    {"redis-password", "REDIS_PASSWORD", Arity::single},
    {"redis-username", "REDIS_USERNAME", Arity::single},
    {"redis-db", "REDIS_DB", Arity::single},
    {"redis-replica-host", "REDIS_REPLICA_HOST", Arity::single},
    {"redis-replica-port", "REDIS_REPLICA_PORT", Arity::single},
    {"redis-sentinels", "REDIS_SENTINELS", Arity::single},
    {"redis-sentinel-master", "REDIS_SENTINEL_MASTER", Arity::single},
    {"redis-sentinel-username", "REDIS_SENTINEL_USERNAME", Arity::single},
    {"redis-sentinel-password", "REDIS_SENTINEL_PASSWORD", Arity::single},
    {"relay", "YUXI_CONFIG_RELAY", Arity::single},
    {"relay-lease-ttl", "YUXI_CONFIG_RELAY_LEASE_TTL", Arity::single},
    {"snapshot-ttl", "YUXI_CONFIG_SNAPSHOT_TTL", Arity::single},
    {"stream-length", "YUXI_CONFIG_STREAM_LENGTH", Arity::single},
    {"log-keep", "YUXI_CONFIG_LOG_KEEP", Arity::single},
    {"serve-degraded", "YUXI_CONFIG_SERVE_DEGRADED", Arity::single},
    {"pod-name", "POD_NAME", Arity::single},
    {"signing-key-file", "YUXI_CONFIG_SIGNING_KEY_FILE", Arity::single},
    {"signing-key-previous-file", "YUXI_CONFIG_SIGNING_KEY_PREVIOUS_FILE", Arity::single},
    {"insecure-redis", "YUXI_CONFIG_INSECURE_REDIS", Arity::none},
    {"snapshot-max-age", "YUXI_CONFIG_SNAPSHOT_MAX_AGE", Arity::single},
    {"help", "", Arity::none},
    {"version", "", Arity::none},
    {"check", "", Arity::none},
}};

const FlagSpec* find_flag(std::string_view name) {
    for (const FlagSpec& f : kFlags) {
        if (f.flag == name) {
            return &f;
        }
    }
    return nullptr;
}

std::vector<std::string> split_commas(std::string_view s) {
    std::vector<std::string> out;
    for (;;) {
        const auto comma = s.find(',');
        const std::string_view item = trim(s.substr(0, comma));
        if (!item.empty()) {
            out.emplace_back(item);
        }
        if (comma == std::string_view::npos) {
            return out;
        }
        s.remove_prefix(comma + 1);
    }
}

// Where a setting came from, for error messages: "--http" or "YUXI_CONFIG_HTTP".
struct Setting {
    std::vector<std::string> values;  // empty: not set by either
    std::string origin;
};

Setting resolve(const FlagSpec& spec,
                const std::map<std::string_view, std::vector<std::string>>& flags,
                const EnvLookup& env) {
    Setting s;
    if (const auto it = flags.find(spec.flag); it != flags.end()) {
        s.values = it->second;
        s.origin = "--" + std::string(spec.flag);
        if (spec.arity == Arity::single) {
            s.values = {s.values.back()};
        }
        return s;
    }
    if (spec.env.empty()) {
        return s;
    }
    if (const auto v = env(spec.env)) {
        s.origin = std::string(spec.env);
        if (spec.arity == Arity::repeat) {
            s.values = split_commas(*v);
            if (s.values.empty()) {
                throw OptionsError(s.origin + ": no value in '" + *v + "'");
            }
        } else {
            s.values = {std::string(trim(*v))};
        }
    }
    return s;
}

// Runs `parse` on a setting's value, prefixing its error with where the value came from.
template <class Fn>
auto parse_setting(const Setting& s, std::string_view value, Fn&& parse) {
    try {
        return parse(value);
    } catch (const OptionsError& e) {
        throw OptionsError(s.origin + ": " + e.what());
    }
}

bool valid_host_name(std::string_view host) {
    if (host.empty() || host.size() > 253) {
        return false;
    }
    return std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
    });
}

// A whole number from `min` to `max`; the error names where the value came from.
std::uint64_t parse_number(const Setting& s, std::uint64_t min, std::uint64_t max) {
    const std::string_view v = trim(s.values[0]);
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n < min || n > max) {
        throw OptionsError(s.origin + ": '" + s.values[0] + "' is not a number from " +
                           std::to_string(min) + " to " + std::to_string(max));
    }
    return n;
}

bool parse_bool(const Setting& s) {
    const std::string v = lower(trim(s.values[0]));
    if (v == "1" || v == "true" || v == "yes" || v == "on") {
        return true;
    }
    if (v == "0" || v == "false" || v == "no" || v == "off") {
        return false;
    }
    throw OptionsError(s.origin + ": '" + s.values[0] + "' is not true or false");
}

std::string local_host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') {
        return "unknown";
    }
    return name;
}

template <class Get>
void parse_sentinels(const Get& get, Options& o) {
    constexpr std::uint16_t kSentinelPort = 26379;
    if (const Setting list = get("redis-sentinels"); !list.values.empty()) {
        auto sentinels = parse_host_list(list.values[0], kSentinelPort);
        if (!sentinels) {
            throw OptionsError(list.origin + ": " + sentinels.reason());
        }
        for (const HostPort& s : *sentinels) {
            if (!valid_host_name(s.host)) {
                throw OptionsError(list.origin + ": '" + s.host + "' is not a host name");
            }
        }
        o.redis.sentinels = std::move(*sentinels);
    }
    if (const Setting master = get("redis-sentinel-master"); !master.values.empty()) {
        if (master.values[0].find_first_of(" \t\r\n") != std::string::npos) {
            throw OptionsError(master.origin + ": a master name has no spaces");
        }
        o.redis.sentinel_master = master.values[0];
    }
    if (const Setting user = get("redis-sentinel-username"); !user.values.empty()) {
        o.redis.sentinel_username = user.values[0];
    }
    if (const Setting pw = get("redis-sentinel-password"); !pw.values.empty()) {
        o.redis.sentinel_password = pw.values[0];
    }
    if (!o.redis.sentinels.empty() && !o.redis.replica_host.empty()) {
        throw OptionsError(
            "REDIS_REPLICA_HOST and REDIS_SENTINELS: with Sentinel, followers read the primary "
            "the Sentinels name; unset one");
    }
}

void parse_redis(const std::map<std::string_view, std::vector<std::string>>& flags,
                 const EnvLookup& env, Options& o) {
    const auto get = [&](std::string_view flag) { return resolve(*find_flag(flag), flags, env); };
    if (const Setting host = get("redis-host"); !host.values.empty()) {
        if (!valid_host_name(host.values[0])) {
            throw OptionsError(host.origin + ": '" + host.values[0] + "' is not a host name");
        }
        o.redis.host = host.values[0];
    }
    if (const Setting port = get("redis-port"); !port.values.empty()) {
        o.redis.port = static_cast<std::uint16_t>(parse_number(port, 1, 65535));
    }
    if (const Setting pw = get("redis-password"); !pw.values.empty()) {
        o.redis.password = pw.values[0];
    }
    if (const Setting user = get("redis-username"); !user.values.empty()) {
        o.redis.username = user.values[0];
    }
    if (const Setting db = get("redis-db"); !db.values.empty()) {
        o.redis.db = static_cast<std::uint32_t>(parse_number(db, 0, 1000000));
    }
    if (const Setting host = get("redis-replica-host"); !host.values.empty()) {
        if (!valid_host_name(host.values[0])) {
            throw OptionsError(host.origin + ": '" + host.values[0] + "' is not a host name");
        }
        o.redis.replica_host = host.values[0];
    }
    if (const Setting port = get("redis-replica-port"); !port.values.empty()) {
        o.redis.replica_port = static_cast<std::uint16_t>(parse_number(port, 1, 65535));
    }
    parse_sentinels(get, o);
}

void parse_relay(const std::map<std::string_view, std::vector<std::string>>& flags,
                 const EnvLookup& env, Options& o) {
    const auto get = [&](std::string_view flag) { return resolve(*find_flag(flag), flags, env); };
    if (const Setting relay = get("relay"); !relay.values.empty()) {
        const std::string v = lower(trim(relay.values[0]));
        if (v == "auto") {
            o.relay = RelayMode::automatic;
        } else {
            o.relay = parse_bool(relay) ? RelayMode::on : RelayMode::off;
        }
    }
    if (const Setting ttl = get("relay-lease-ttl"); !ttl.values.empty()) {
        o.relay_lease_ttl = parse_setting(ttl, ttl.values[0], parse_duration);
        if (o.relay_lease_ttl < std::chrono::milliseconds(100)) {
            throw OptionsError(ttl.origin + ": must be at least 100ms");
        }
    }
    if (const Setting ttl = get("snapshot-ttl"); !ttl.values.empty()) {
        o.snapshot_ttl = parse_setting(ttl, ttl.values[0], parse_duration);
        if (o.snapshot_ttl < std::chrono::milliseconds(1000)) {
            throw OptionsError(ttl.origin + ": must be at least 1s");
        }
    }
    if (const Setting n = get("stream-length"); !n.values.empty()) {
        o.stream_length = static_cast<std::uint32_t>(parse_number(n, 10, 100000000));
    }
    if (const Setting n = get("log-keep"); !n.values.empty()) {
        o.log_keep = parse_number(n, 0, std::numeric_limits<std::int64_t>::max());
    }
    if (const Setting d = get("serve-degraded"); !d.values.empty()) {
        o.serve_degraded = parse_bool(d);
    }
    const Setting pod = get("pod-name");
    o.pod_name = pod.values.empty() ? local_host_name() : pod.values[0];
}

// The key's text from `file` (bounded read), or why not; the reason names the file only.
Decoded<std::string> read_key_file(const std::string& path, const std::string& origin) {
    std::FILE* f = std::fopen(path.c_str(), "rbe");
    if (f == nullptr) {
        return refuse(origin + ": cannot read " + path + ": " + std::strerror(errno));
    }
    std::string text(4096, '\0');
    const std::size_t n = std::fread(text.data(), 1, text.size(), f);
    std::fclose(f);
    if (n == text.size()) {
        return refuse(origin + ": " + path + " is larger than a key");
    }
    text.resize(n);
    return text;
}

// Checks that a key source decodes to a key; the text is dropped at once.
void check_key(const std::string& text, const std::string& origin) {
    if (const auto key = SigningKey::from_base64(text, origin); !key) {
        throw OptionsError(key.reason());
    }
}

void parse_signing(const std::map<std::string_view, std::vector<std::string>>& flags,
                   const EnvLookup& env, Options& o) {
    const auto get = [&](std::string_view flag) { return resolve(*find_flag(flag), flags, env); };
    SigningSettings& s = o.signing;
    // Keys matter only where the agent talks to Redis: elsewhere they are not read at all
    // (one ConfigMap may serve pods in both modes).
    const bool used = o.mode == Mode::database && o.redis.enabled();
    if (const Setting f = get("signing-key-file"); !f.values.empty()) {
        s.key_file = f.values[0];
        const auto text = read_key_file(s.key_file, f.origin);
        if (used && !text) {
            throw OptionsError(text.reason());
        }
        if (used) {
            check_key(*text, f.origin + " (" + s.key_file + ")");
        }
    }
    if (const Setting f = get("signing-key-previous-file"); !f.values.empty()) {
        // Absent or empty: no previous key (a rotation is over, or has not begun).
        s.previous_file = f.values[0];
        const auto text = read_key_file(s.previous_file, f.origin);
        if (used && text && !trim(*text).empty()) {
            check_key(*text, f.origin + " (" + s.previous_file + ")");
        }
    }
    if (const auto v = env("YUXI_CONFIG_SIGNING_KEY"); v && s.key_file.empty()) {
        s.key_env = *v;
        if (used) {
            check_key(s.key_env, "YUXI_CONFIG_SIGNING_KEY");
        }
    }
    if (const auto v = env("YUXI_CONFIG_SIGNING_KEY_PREVIOUS"); v && s.previous_file.empty()) {
        s.previous_env = *v;
        if (used) {
            check_key(s.previous_env, "YUXI_CONFIG_SIGNING_KEY_PREVIOUS");
        }
    }
    if (!s.configured() && !s.previous_env.empty()) {
        throw OptionsError(
            "a previous signing key needs a current one: set YUXI_CONFIG_SIGNING_KEY or "
            "--signing-key-file");
    }
    if (const Setting f = get("insecure-redis"); !f.values.empty()) {
        s.insecure = f.origin.starts_with("--") || parse_bool(f);
    }
    if (const Setting age = get("snapshot-max-age"); !age.values.empty()) {
        o.snapshot_max_age = parse_setting(age, age.values[0], parse_duration);
    }
    if (s.insecure && s.configured()) {
        throw OptionsError(
            "--insecure-redis and a signing key were both given: with a key the agent signs "
            "(drop --insecure-redis), without one it runs unsigned");
    }
    // Secure by default: whoever can write to Redis must not decide what pods read.
    if (o.mode == Mode::database && o.redis.enabled() && !s.configured() && !s.insecure) {
        throw OptionsError(
            "database mode with Redis needs a signing key: set YUXI_CONFIG_SIGNING_KEY or "
            "--signing-key-file (yuxi-configctl keygen makes one), or run unsigned with "
            "--insecure-redis");
    }
}

}  // namespace

std::optional<std::string> process_env(std::string_view name) {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') {
        return std::nullopt;
    }
    return std::string(v);
}

MetadataFile parse_metadata(std::string_view text) {
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) {
        throw OptionsError(quote(text) + " is not NAME=PATH");
    }
    MetadataFile m{std::string(trim(text.substr(0, eq))), std::string(trim(text.substr(eq + 1)))};
    if (m.name.empty()) {
        throw OptionsError(quote(text) + " has an empty NAME");
    }
    if (m.name.size() > layout::kMaxKeyLen) {
        throw OptionsError("NAME in '" + std::string(text) + "' is longer than " +
                           std::to_string(layout::kMaxKeyLen) + " bytes");
    }
    if (m.path.empty()) {
        throw OptionsError(quote(text) + " has an empty PATH");
    }
    return m;
}

ListenAddress parse_listen_address(std::string_view text) {
    const std::string quoted = quote(text);
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        throw OptionsError(quoted + " is not HOST:PORT");
    }
    std::string_view host = text.substr(0, colon);
    const std::string_view port_text = text.substr(colon + 1);
    ListenAddress a;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
        in6_addr addr{};
        if (::inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
            throw OptionsError(quoted + ": '" + std::string(host) + "' is not an IPv6 address");
        }
    } else if (host.find(':') != std::string_view::npos) {
        throw OptionsError(quoted + ": write an IPv6 address in brackets, as [::1]:9464");
    } else if (!valid_host_name(host)) {
        throw OptionsError(quoted + ": '" + std::string(host) +
                           "' is not an IPv4 address or a host name");
    }
    a.host = std::string(host);
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port > 65535) {
        throw OptionsError(quoted + ": the port must be a number from 0 to 65535");
    }
    a.port = static_cast<std::uint16_t>(port);
    return a;
}

std::uint64_t parse_byte_size(std::string_view text) {
    const std::string quoted = quote(text);
    text = trim(text);
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data()) {
        throw OptionsError(quoted + " is not a size in bytes (e.g. 67108864, 64MiB)");
    }
    const std::string suffix = lower(trim(std::string_view(end, text.data() + text.size() - end)));
    unsigned shift = 0;
    if (suffix.empty() || suffix == "b") {
        shift = 0;
    } else if (suffix == "k" || suffix == "kib") {
        shift = 10;
    } else if (suffix == "m" || suffix == "mib") {
        shift = 20;
    } else if (suffix == "g" || suffix == "gib") {
        shift = 30;
    } else {
        throw OptionsError(quoted + ": unknown unit '" + suffix + "' (use K, KiB, M, MiB, G, GiB)");
    }
    if (n > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
        throw OptionsError(quoted + " is too large");
    }
    return n << shift;
}

LogLevel parse_log_level(std::string_view text) {
    if (const auto level = service::parse_log_level(lower(trim(text)))) {
        return *level;
    }
    throw OptionsError(quote(text) +
                       " is not a log level (trace, debug, info, warn, error, critical, off)");
}

std::chrono::milliseconds parse_duration(std::string_view text) {
    const std::string quoted = quote(text);
    text = trim(text);
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data()) {
        throw OptionsError(quoted + " is not a duration (e.g. 30s, 500ms, 2m)");
    }
    const std::string unit = lower(trim(std::string_view(end, text.data() + text.size() - end)));
    std::uint64_t ms_per_unit = 0;
    if (unit.empty() || unit == "s") {
        ms_per_unit = 1000;
    } else if (unit == "ms") {
        ms_per_unit = 1;
    } else if (unit == "m" || unit == "min") {
        ms_per_unit = 60 * 1000;
    } else if (unit == "h") {
        ms_per_unit = 3600 * 1000;
    } else {
        throw OptionsError(quoted + ": unknown unit '" + unit + "' (use ms, s, m, h)");
    }
    constexpr std::uint64_t kMaxMs = 7ULL * 24 * 3600 * 1000;
    if (n > kMaxMs / ms_per_unit) {
        throw OptionsError(quoted + " is too long");
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(n * ms_per_unit));
}

std::uint32_t parse_segment_layout(std::string_view text) {
    const std::string_view t = trim(text);
    if (t == "1") {
        return 1;
    }
    if (t == std::to_string(layout::kVersion)) {
        return layout::kVersion;
    }
    throw OptionsError("'" + std::string(text) +
                       "' is not a segment layout this agent writes (1 or " +
                       std::to_string(layout::kVersion) + ")");
}

LogFormat parse_log_format(std::string_view text) {
    const std::string f = lower(trim(text));
    if (f == "human" || f == "text") {
        return LogFormat::human;
    }
    if (f == "json") {
        return LogFormat::json;
    }
    throw OptionsError(quote(text) + " is not a log format (human or json)");
}

std::string_view to_string(Mode mode) noexcept {
    switch (mode) {
        case Mode::file:
            return "file";
        case Mode::database:
            return "database";
    }
    return "?";
}

Options parse_options(std::span<const std::string_view> args, const EnvLookup& env) {
    const auto split =
        service::split_flags(args,
                             [](std::string_view name) -> std::optional<service::FlagShape> {
                                 const FlagSpec* spec = find_flag(name);
                                 if (spec == nullptr) {
                                     return std::nullopt;
                                 }
                                 return service::FlagShape{spec->flag, spec->arity != Arity::none};
                             },
                             {" (the agent takes only --flags)", true});
    if (!split) {
        throw OptionsError(split.reason());
    }
    const service::FlagValues& flags = *split;

    Options o;
    o.help = flags.contains("help");
    o.version = flags.contains("version");
    o.check = flags.contains("check");

    const Setting mode = resolve(*find_flag("mode"), flags, env);
    if (!mode.values.empty()) {
        const std::string m = lower(mode.values[0]);
        if (m == "file") {
            o.mode = Mode::file;
        } else if (m == "database") {
            o.mode = Mode::database;
        } else {
            throw OptionsError(mode.origin + ": '" + mode.values[0] +
                               "' is not a mode (file or database)");
        }
    }

    const Setting files = resolve(*find_flag("config-file"), flags, env);
    o.config_files = files.values.empty()
                         ? std::vector<std::string>{std::string(kDefaultConfigFile)}
                         : files.values;

    Setting metadata = resolve(*find_flag("metadata"), flags, env);
    if (metadata.values.empty()) {
        metadata.values = {std::string(kDefaultMetadata)};
        metadata.origin = "default";
    }
    for (const std::string& m : metadata.values) {
        MetadataFile f = parse_setting(metadata, m, parse_metadata);
        const bool duplicate = std::any_of(o.metadata.begin(), o.metadata.end(),
                                           [&](const MetadataFile& x) { return x.name == f.name; });
        if (duplicate) {
            throw OptionsError(metadata.origin + ": metadata name '" + f.name + "' given twice");
        }
        o.metadata.push_back(std::move(f));
    }

    if (const Setting schema = resolve(*find_flag("value-schema"), flags, env);
        !schema.values.empty()) {
        o.value_schema_file = schema.values[0];
    }

    const Setting segment = resolve(*find_flag("segment"), flags, env);
    o.segment = segment.values.empty() ? std::string(kDefaultSegment) : segment.values[0];
    try {
        detail::check_name(o.segment);
    } catch (const SegmentError& e) {
        throw OptionsError((segment.origin.empty() ? "--segment" : segment.origin) + ": " +
                           e.what());
    }

    const Setting http = resolve(*find_flag("http"), flags, env);
    o.http = parse_setting(http, http.values.empty() ? kDefaultHttp : http.values[0],
                           parse_listen_address);

    const Setting max_value = resolve(*find_flag("max-value-bytes"), flags, env);
    if (!max_value.values.empty()) {
        o.max_value_bytes = parse_setting(max_value, max_value.values[0], parse_byte_size);
        if (o.max_value_bytes == 0 || o.max_value_bytes > layout::kMaxValueLen) {
            throw OptionsError(max_value.origin + ": must be from 1 byte to " +
                               std::to_string(layout::kMaxValueLen >> 20) + " MiB");
        }
    }

    const Setting seg_layout = resolve(*find_flag("segment-layout"), flags, env);
    if (!seg_layout.values.empty()) {
        o.segment_layout = parse_setting(seg_layout, seg_layout.values[0], parse_segment_layout);
    }

    const Setting level = resolve(*find_flag("log-level"), flags, env);
    if (!level.values.empty()) {
        o.log_level = parse_setting(level, level.values[0], parse_log_level);
    }

    const Setting format = resolve(*find_flag("log-format"), flags, env);
    if (!format.values.empty()) {
        o.log_format = parse_setting(format, format.values[0], parse_log_format);
    }

    Setting url = resolve(*find_flag("database-url"), flags, env);
    if (url.values.empty()) {
        // Yuxi-Know's deployments set one or both; the sync driver's URL works as well.
        if (const auto v = env("DATABASE_URL_SYNC")) {
            url.values = {std::string(trim(*v))};
            url.origin = "DATABASE_URL_SYNC";
        }
    }
    if (!url.values.empty() && !url.values[0].empty()) {
        o.database_url = url.values[0];
        o.database_url_origin = url.origin;
    }

    const Setting poll = resolve(*find_flag("safety-poll"), flags, env);
    if (!poll.values.empty()) {
        o.safety_poll = parse_setting(poll, poll.values[0], parse_duration);
        if (o.safety_poll < std::chrono::milliseconds(10)) {
            throw OptionsError(poll.origin + ": must be at least 10ms");
        }
    }

    const Setting batch = resolve(*find_flag("max-catchup-batch"), flags, env);
    if (!batch.values.empty()) {
        const std::string_view v = trim(batch.values[0]);
        std::uint64_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size() || n < 1 || n > kMaxCatchupBatchLimit) {
            throw OptionsError(batch.origin + ": '" + batch.values[0] +
                               "' is not a number of rows from 1 to " +
                               std::to_string(kMaxCatchupBatchLimit));
        }
        o.max_catchup_batch = static_cast<std::uint32_t>(n);
    }

    parse_redis(flags, env, o);
    parse_relay(flags, env, o);
    parse_signing(flags, env, o);
    if (o.relay == RelayMode::on && o.mode == Mode::database && !o.redis.enabled()) {
        throw OptionsError("--relay on needs Redis: set REDIS_HOST or give --redis-host");
    }

    if (o.mode == Mode::database) {
        if (o.database_url.empty()) {
            throw OptionsError(
                "database mode needs a PostgreSQL URL: set DATABASE_URL (or DATABASE_URL_SYNC), "
                "or give --database-url");
        }
        // Everything about the URL is checked here, before anything is bound or mapped,
        // so that a bad URL is always exit status 2.
        const auto conninfo = database_conninfo(o.database_url, "yuxi-config-agent");
        if (!conninfo) {
            // The message starts with "DATABASE_URL '...'": name the flag only if it was one.
            throw OptionsError(o.database_url_origin == "DATABASE_URL"
                                   ? conninfo.reason()
                                   : o.database_url_origin + ": " + conninfo.reason());
        }
    }
    return o;
}

std::string version_text() {
    return std::string("yuxi-config-agent ") + YUXI_CONFIG_VERSION;
}

}  // namespace yuxi::config::agent
