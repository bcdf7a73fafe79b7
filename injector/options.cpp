// Command-line flags and environment variables of yuxi-config-injector.
#include "options.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>
#include <vector>

#include "patch.hpp"
#include "service/flags.hpp"

#ifndef YUXI_CONFIG_VERSION
#define YUXI_CONFIG_VERSION "unknown"
#endif

extern char** environ;

namespace yuxi::config::injector {
namespace {

constexpr std::string_view kAgentEnvPrefix = "YUXI_INJECTOR_AGENT_ENV_";

struct FlagSpec {
    std::string_view flag;  // without the leading "--"
    std::string_view env;   // empty: no variable
    bool takes_value;
};

constexpr std::array<FlagSpec, 20> kFlags = {{
    {"listen", "YUXI_INJECTOR_LISTEN", true},
    {"tls-cert", "YUXI_INJECTOR_TLS_CERT", true},
    {"tls-key", "YUXI_INJECTOR_TLS_KEY", true},
    {"tls-reload-interval", "YUXI_INJECTOR_TLS_RELOAD_INTERVAL", true},
    {"metrics-listen", "YUXI_INJECTOR_METRICS_LISTEN", true},
    {"request-timeout", "YUXI_INJECTOR_REQUEST_TIMEOUT", true},
    {"max-request-bytes", "YUXI_INJECTOR_MAX_REQUEST_BYTES", true},
    {"max-connections", "YUXI_INJECTOR_MAX_CONNECTIONS", true},
    {"log-level", "LOG_LEVEL", true},
    {"log-format", "LOG_FORMAT", true},
    {"agent-image", "YUXI_INJECTOR_AGENT_IMAGE", true},
    {"agent-env", "", true},  // repeatable; variables YUXI_INJECTOR_AGENT_ENV_<NAME>
    {"agent-secret", "YUXI_INJECTOR_AGENT_SECRET", true},
    {"agent-cpu-request", "YUXI_INJECTOR_AGENT_CPU_REQUEST", true},
    {"agent-cpu-limit", "YUXI_INJECTOR_AGENT_CPU_LIMIT", true},
    {"agent-memory-request", "YUXI_INJECTOR_AGENT_MEMORY_REQUEST", true},
    {"agent-memory-limit", "YUXI_INJECTOR_AGENT_MEMORY_LIMIT", true},
    {"native-sidecar", "YUXI_INJECTOR_NATIVE_SIDECAR", true},
    {"help", "", false},
    {"version", "", false},
}};

const FlagSpec* find_flag(std::string_view name) {
    for (const FlagSpec& f : kFlags) {
        if (f.flag == name) {
            return &f;
        }
    }
    return nullptr;
}

using Flags = std::map<std::string_view, std::vector<std::string>>;

// A setting's value and where it came from ("--listen" or "YUXI_INJECTOR_LISTEN"); the
// last occurrence of a flag wins.
struct Setting {
    std::optional<std::string> value;
    std::string origin;
};

Setting resolve(std::string_view flag, const Flags& flags, const Environment& env) {
    const FlagSpec& spec = *find_flag(flag);
    if (const auto it = flags.find(spec.flag); it != flags.end()) {
        return {it->second.back(), "--" + std::string(spec.flag)};
    }
    if (!spec.env.empty()) {
        if (const auto it = env.find(spec.env); it != env.end()) {
            return {it->second, std::string(spec.env)};
        }
    }
    return {std::nullopt, "--" + std::string(spec.flag)};
}

// Runs `parse` on the setting's value, prefixing an error with its origin.
template <class Parse>
auto parse_setting(const Setting& s, Parse parse) {
    try {
        return parse(*s.value);
    } catch (const OptionsError& e) {
        throw OptionsError(s.origin + ": " + e.what());
    }
}

// Throws when `check` finds a problem with the setting's value.
void check(const Setting& s, const std::optional<std::string>& problem) {
    if (problem) {
        throw OptionsError(s.origin + ": " + quote_value(*s.value) + " " + *problem);
    }
}

std::uint64_t parse_count(std::string_view text, std::uint64_t min, std::uint64_t max) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < min || n > max) {
        throw OptionsError("'" + std::string(text) + "' is not a number from " +
                           std::to_string(min) + " to " + std::to_string(max));
    }
    return n;
}

Flags parse_flags(std::span<const std::string_view> args) {
    auto split =
        service::split_flags(args,
                             [](std::string_view name) -> std::optional<service::FlagShape> {
                                 const FlagSpec* spec = find_flag(name);
                                 if (spec == nullptr) {
                                     return std::nullopt;
                                 }
                                 return service::FlagShape{spec->flag, spec->takes_value};
                             },
                             {});
    if (!split) {
        throw OptionsError(split.reason());
    }
    return std::move(*split);
}

// The template's image with this version's tag, unless the template names a tag itself.
std::string default_image(std::string image) {
    const auto slash = image.rfind('/');
    const auto colon = image.rfind(':');
    const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
    if (!tagged && image.find('@') == std::string::npos) {
        image += ":";
        image += YUXI_CONFIG_VERSION;
    }
    return image;
}

// --agent-env NAME=VALUE and YUXI_INJECTOR_AGENT_ENV_<NAME>=VALUE over the template's.
void apply_agent_env(const Flags& flags, const Environment& env, SidecarSettings& s) {
    std::vector<std::pair<std::string, std::string>> vars;  // origin, NAME=VALUE
    for (const auto& [name, value] : env) {
        if (name.starts_with(kAgentEnvPrefix)) {
            vars.emplace_back(name, name.substr(kAgentEnvPrefix.size()) + "=" + value);
        }
    }
    if (const auto it = flags.find("agent-env"); it != flags.end()) {
        for (const std::string& v : it->second) {
            vars.emplace_back("--agent-env", v);
        }
    }
    for (const auto& [origin, text] : vars) {
        const auto eq = text.find('=');
        if (eq == std::string::npos) {
            throw OptionsError(origin + ": '" + text + "' is not NAME=VALUE");
        }
        const std::string name = text.substr(0, eq);
        const std::string value = text.substr(eq + 1);
        if (auto p = env_name_problem(name)) {
            throw OptionsError(origin + ": " + quote_value(name) + " " + *p);
        }
        std::optional<std::string> problem;
        if (name == kSegmentVar) {
            problem = segment_problem(value);
        } else if (name == kModeVar) {
            problem = mode_problem(value);
        } else if (name == kLogLevelVar) {
            problem = log_level_problem(value);
        } else if (name == kServeDegradedVar) {
            problem = bool_problem(value);
        }
        if (problem) {
            throw OptionsError(origin + ": " + name + "=" + quote_value(value) + " " + *problem);
        }
        s.set_env(name, value);
    }
}

void apply_sidecar(const Flags& flags, const Environment& env, const SidecarTemplate& t,
                   SidecarSettings& s) {
    s = t.defaults();
    s.image = default_image(s.image);
    if (const Setting v = resolve("agent-image", flags, env); v.value) {
        check(v, image_problem(*v.value));
        s.image = *v.value;
    }
    if (const Setting v = resolve("agent-secret", flags, env); v.value) {
        check(v, object_name_problem(*v.value));
        s.secret = *v.value;
    }
    const std::array<std::pair<std::string_view, std::string*>, 4> quantities = {{
        {"agent-cpu-request", &s.resources.cpu_request},
        {"agent-cpu-limit", &s.resources.cpu_limit},
        {"agent-memory-request", &s.resources.memory_request},
        {"agent-memory-limit", &s.resources.memory_limit},
    }};
    for (const auto& [flag, field] : quantities) {
        if (const Setting v = resolve(flag, flags, env); v.value) {
            check(v, quantity_problem(*v.value));
            *field = *v.value;
        }
    }
    if (auto p = resources_problem(s.resources, "--agent-* flags and the template")) {
        throw OptionsError(*p);
    }
    if (const Setting v = resolve("native-sidecar", flags, env); v.value) {
        check(v, bool_problem(*v.value));
        s.native = *v.value == "true";
    }
    apply_agent_env(flags, env, s);
}

LogLevel parse_log_level(std::string_view text) {
    if (const auto level = service::parse_log_level(text)) {
        return *level;
    }
    throw OptionsError("'" + std::string(text) +
                       "' is not a log level (trace, debug, info, warn, error, critical, off)");
}

}  // namespace

Environment process_environment() {
    Environment env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view v(*e);
        const auto eq = v.find('=');
        if (eq != std::string_view::npos && eq + 1 < v.size()) {
            env.emplace(std::string(v.substr(0, eq)), std::string(v.substr(eq + 1)));
        }
    }
    return env;
}

ListenAddress parse_listen_address(std::string_view text) {
    const std::string quoted_text = "'" + std::string(text) + "'";
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        throw OptionsError(quoted_text + " is not HOST:PORT");
    }
    std::string_view host = text.substr(0, colon);
    if (host.front() == '[') {
        if (host.back() != ']') {
            throw OptionsError(quoted_text + " is not HOST:PORT");
        }
        host = host.substr(1, host.size() - 2);
        in6_addr a{};
        if (::inet_pton(AF_INET6, std::string(host).c_str(), &a) != 1) {
            throw OptionsError(quoted_text + ": '" + std::string(host) +
                               "' is not an IPv6 address");
        }
    } else if (host.find(':') != std::string_view::npos) {
        throw OptionsError(quoted_text + ": write an IPv6 address in brackets, as [::1]:8443");
    }
    try {
        const auto port = parse_count(text.substr(colon + 1), 0, 65535);
        return {std::string(host), static_cast<std::uint16_t>(port)};
    } catch (const OptionsError&) {
        throw OptionsError(quoted_text + ": the port must be a number from 0 to 65535");
    }
}

std::chrono::milliseconds parse_duration(std::string_view text) {
    const std::string quoted_text = "'" + std::string(text) + "'";
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    if (digits == 0 || digits > 9) {
        throw OptionsError(quoted_text + " is not a duration (e.g. 10s, 500ms, 2m)");
    }
    const auto n = static_cast<std::int64_t>(parse_count(text.substr(0, digits), 0, 999999999));
    const std::string_view unit = text.substr(digits);
    if (unit == "ms") {
        return std::chrono::milliseconds(n);
    }
    if (unit.empty() || unit == "s") {
        return std::chrono::seconds(n);
    }
    if (unit == "m") {
        return std::chrono::minutes(n);
    }
    if (unit == "h") {
        return std::chrono::hours(n);
    }
    throw OptionsError(quoted_text + ": unknown unit '" + std::string(unit) + "' (ms, s, m, h)");
}

std::size_t parse_byte_size(std::string_view text) {
    const std::string quoted_text = "'" + std::string(text) + "'";
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
        ++digits;
    }
    if (digits == 0 || digits > 12) {
        throw OptionsError(quoted_text + " is not a size in bytes (e.g. 2097152, 2MiB)");
    }
    const std::uint64_t n = parse_count(text.substr(0, digits), 0, 999999999999);
    const std::string_view suffix = text.substr(digits);
    std::uint64_t scale = 0;
    if (suffix.empty()) {
        scale = 1;
    } else if (suffix == "K" || suffix == "KiB") {
        scale = 1024;
    } else if (suffix == "M" || suffix == "MiB") {
        scale = 1024 * 1024;
    } else {
        throw OptionsError(quoted_text + ": unknown unit '" + std::string(suffix) +
                           "' (K, KiB, M, MiB)");
    }
    if (n > (std::uint64_t{1} << 40) / scale) {
        throw OptionsError(quoted_text + " is too large");
    }
    return static_cast<std::size_t>(n * scale);
}

Options parse_options(std::span<const std::string_view> args, const Environment& env,
                      const SidecarTemplate& t) {
    const Flags flags = parse_flags(args);
    Options o;
    o.help = flags.contains("help");
    o.version = flags.contains("version");
    if (o.help || o.version) {
        return o;
    }
    const Setting listen = resolve("listen", flags, env);
    o.listen =
        parse_setting(listen.value ? listen : Setting{std::string(kDefaultListen), "--listen"},
                      parse_listen_address);
    if (o.listen.port == 0) {
        throw OptionsError(listen.origin + ": the webhook needs a port (1 to 65535)");
    }
    for (const auto& [flag, into] : {std::pair{"tls-cert", &o.tls_cert}, {"tls-key", &o.tls_key}}) {
        const Setting s = resolve(flag, flags, env);
        if (!s.value || s.value->empty()) {
            throw OptionsError(s.origin + " is required: the API server calls webhooks over HTTPS");
        }
        *into = *s.value;
    }
    if (const Setting s = resolve("tls-reload-interval", flags, env); s.value) {
        o.tls_reload_interval = parse_setting(s, parse_duration);
        if (o.tls_reload_interval < std::chrono::milliseconds(100) ||
            o.tls_reload_interval > std::chrono::hours(1)) {
            throw OptionsError(s.origin + ": must be from 100ms to 1h");
        }
    }
    if (const Setting s = resolve("metrics-listen", flags, env); s.value && !s.value->empty()) {
        o.metrics_listen = parse_setting(s, parse_listen_address);
    }
    if (const Setting s = resolve("request-timeout", flags, env); s.value) {
        o.request_timeout = parse_setting(s, parse_duration);
        if (o.request_timeout < std::chrono::milliseconds(100) ||
            o.request_timeout > std::chrono::minutes(5)) {
            throw OptionsError(s.origin + ": must be from 100ms to 5m");
        }
    }
    if (const Setting s = resolve("max-request-bytes", flags, env); s.value) {
        o.max_request_bytes = parse_setting(s, parse_byte_size);
        if (o.max_request_bytes < 4096 || o.max_request_bytes > (64u << 20)) {
            throw OptionsError(s.origin + ": must be from 4KiB to 64MiB");
        }
    }
    if (const Setting s = resolve("max-connections", flags, env); s.value) {
        o.max_connections = parse_setting(s, [](std::string_view v) {
            return static_cast<std::size_t>(parse_count(v, 1, 10000));
        });
    }
    if (const Setting s = resolve("log-level", flags, env); s.value) {
        o.log_level = parse_setting(s, parse_log_level);
    }
    if (const Setting s = resolve("log-format", flags, env); s.value) {
        if (*s.value != "human" && *s.value != "json") {
            throw OptionsError(s.origin + ": '" + *s.value +
                               "' is not a log format (human or json)");
        }
        o.log_format = *s.value == "json" ? LogFormat::json : LogFormat::human;
    }
    apply_sidecar(flags, env, t, o.sidecar);
    return o;
}

std::string_view version() noexcept {
    return YUXI_CONFIG_VERSION;
}

std::string usage(std::string_view program) {
    std::string u = "Usage: " + std::string(program) +
                    " --tls-cert FILE --tls-key FILE [--flag value | --flag=value]...\n";
    u += R"(
A mutating admission webhook: pods annotated config.yuxi.dev/inject: "true" get the
yuxi-config agent as a sidecar, as deploy/k8s/components/config-agent adds it.
Every flag has an environment variable; a flag wins over it. See docs/injector.md.

  --listen HOST:PORT         YUXI_INJECTOR_LISTEN: HTTPS address for /mutate,
                             /healthz, /readyz, /metrics. Default: 127.0.0.1:8443
  --tls-cert FILE            YUXI_INJECTOR_TLS_CERT: PEM certificate and chain.
                             Required
  --tls-key FILE             YUXI_INJECTOR_TLS_KEY: PEM private key. Required
  --tls-reload-interval DUR  YUXI_INJECTOR_TLS_RELOAD_INTERVAL: how often the two
                             files are read again; a new pair is used for new
                             connections (ms, s, m, h). Default: 10s
  --metrics-listen HOST:PORT YUXI_INJECTOR_METRICS_LISTEN: plain HTTP address for
                             /healthz, /readyz and /metrics. Default: none
  --request-timeout DUR      YUXI_INJECTOR_REQUEST_TIMEOUT: a connection's TLS
                             handshake and request must arrive within it, and a
                             kept-alive connection's next request. Default: 10s
  --max-request-bytes SIZE   YUXI_INJECTOR_MAX_REQUEST_BYTES: largest request
                             body (bytes, or K/KiB/M/MiB). Default: 2MiB
  --max-connections N        YUXI_INJECTOR_MAX_CONNECTIONS: connections served at
                             once; more are closed unanswered. Default: 64
  --log-level LEVEL          LOG_LEVEL: trace, debug, info, warn, error, critical,
                             off. Default: info
  --log-format FORMAT        LOG_FORMAT: human, or json (one object per line).
                             Default: human

The sidecar, for every pod (its annotations may override each):
  --agent-image IMAGE        YUXI_INJECTOR_AGENT_IMAGE. Default: yuxi-config:VERSION
  --agent-env NAME=VALUE     YUXI_INJECTOR_AGENT_ENV_<NAME>: sets a variable of the
                             agent (repeatable). Default: the component's agent.env
  --agent-secret NAME        YUXI_INJECTOR_AGENT_SECRET: the Secret with
                             DATABASE_URL and REDIS_PASSWORD (optional in the pod).
                             Default: yuxi-config-secrets
  --agent-cpu-request Q      YUXI_INJECTOR_AGENT_CPU_REQUEST. Default: 50m
  --agent-cpu-limit Q        YUXI_INJECTOR_AGENT_CPU_LIMIT. Default: 200m
  --agent-memory-request Q   YUXI_INJECTOR_AGENT_MEMORY_REQUEST. Default: 32Mi
  --agent-memory-limit Q     YUXI_INJECTOR_AGENT_MEMORY_LIMIT. Default: 128Mi
  --native-sidecar BOOL      YUXI_INJECTOR_NATIVE_SIDECAR: the agent as an
                             initContainer with restartPolicy: Always (Kubernetes
                             >= 1.29); false: a regular container. Default: true
  --help                     Print this text and exit.
  --version                  Print the version and exit.

Signals: SIGTERM or SIGINT stop the injector (answers in progress are finished);
SIGHUP reads the certificate and key again at once.
Exit status: 0 clean stop, 1 runtime failure (no certificate, cannot listen),
2 bad flags or settings.
)";
    return u;
}

}  // namespace yuxi::config::injector
