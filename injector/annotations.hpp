// What one pod gets: the sidecar's settings (the injector's defaults with the pod's
// `config.yuxi.dev/` annotations over them), and the checks every value passes.
//
// Annotations a pod may carry (docs/injector.md, "Annotations"):
//
//   config.yuxi.dev/inject          "true" injects; "false" (or absent) leaves the pod alone
//   config.yuxi.dev/image           the agent's image
//   config.yuxi.dev/segment         YUXI_CONFIG_SEGMENT, in the agent and every app container
//   config.yuxi.dev/mode            CONFIG_MODE: database or file
//   config.yuxi.dev/log-level       LOG_LEVEL: trace, debug, info, warn, error, critical, off
//   config.yuxi.dev/serve-degraded  YUXI_CONFIG_SERVE_DEGRADED: true or false
//   config.yuxi.dev/cpu-request, cpu-limit, memory-request, memory-limit   Kubernetes quantities
//   config.yuxi.dev/status          written by the injector ("injected"); read by nobody
//
// A pod that asks to be injected and carries a value that is wrong, or an annotation under
// the prefix that is not one of these (a typo would otherwise be ignored silently), is
// refused with a message that names the annotation and says what would be right: the
// user reads it in `kubectl` ("admission webhook ... denied the request: ...").
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/decoded.hpp"

namespace yuxi::config::injector {

inline constexpr std::string_view kAnnotationPrefix = "config.yuxi.dev/";
inline constexpr std::string_view kInjectAnnotation = "config.yuxi.dev/inject";
inline constexpr std::string_view kStatusAnnotation = "config.yuxi.dev/status";
inline constexpr std::string_view kStatusInjected = "injected";

// The agent's variables that annotations set.
inline constexpr std::string_view kSegmentVar = "YUXI_CONFIG_SEGMENT";
inline constexpr std::string_view kModeVar = "CONFIG_MODE";
inline constexpr std::string_view kLogLevelVar = "LOG_LEVEL";
inline constexpr std::string_view kServeDegradedVar = "YUXI_CONFIG_SERVE_DEGRADED";

// The agent container's resources, as Kubernetes quantities; empty: not set.
struct Resources {
    std::string cpu_request;
    std::string cpu_limit;
    std::string memory_request;
    std::string memory_limit;
    bool operator==(const Resources&) const = default;
};

struct EnvVar {
    std::string name;
    std::string value;
    bool operator==(const EnvVar&) const = default;
};

struct SidecarSettings {
    std::string image;
    std::vector<EnvVar> env;  // the agent's literal variables, in order, names unique
    Resources resources;
    std::string secret;  // envFrom secretRef (optional: true): DATABASE_URL, REDIS_PASSWORD
    bool native = true;  // an initContainer with restartPolicy: Always, else a container

    // The value of `name` in `env`; empty if absent.
    std::string_view env_value(std::string_view name) const noexcept;
    // Sets `name` (replacing its value, or appending it).
    void set_env(std::string_view name, std::string value);
};

// What the pod asks for with config.yuxi.dev/inject.
enum class InjectRequest {
    absent,   // no annotation: not asked
    inject,   // "true"
    opt_out,  // "false"
};

// The pod's inject annotation; a value other than "true" or "false" is refused.
// `annotations` is metadata.annotations (null or an object).
Decoded<InjectRequest> read_inject_request(const nlohmann::json* annotations);

// `defaults` with the pod's annotations over them, or why not (a wrong value, an unknown
// annotation under the prefix, a request above its limit).
Decoded<SidecarSettings> apply_annotations(const nlohmann::json* annotations,
                                           SidecarSettings defaults);

// Checks shared by the annotations and the injector's flags: each returns what is wrong
// with the value, in words that follow its name ("... is not ..."), or nothing.
std::optional<std::string> image_problem(std::string_view image);
std::optional<std::string> segment_problem(std::string_view segment);
std::optional<std::string> mode_problem(std::string_view mode);
std::optional<std::string> log_level_problem(std::string_view level);
std::optional<std::string> bool_problem(std::string_view value);
std::optional<std::string> quantity_problem(std::string_view quantity);
// A Kubernetes object name (DNS-1123 subdomain, at most 253 bytes).
std::optional<std::string> object_name_problem(std::string_view name);
// An environment variable name the injector may set for the agent.
std::optional<std::string> env_name_problem(std::string_view name);

// A quantity's value in base units (cores, bytes); nothing if it is not a quantity.
std::optional<long double> parse_quantity(std::string_view quantity);

// Why `r` cannot be a container's resources (a request above its limit), or nothing.
// `origin` names where the values came from, for the message.
std::optional<std::string> resources_problem(const Resources& r, std::string_view origin);

// A value as it appears in a message: quoted, escaped, at most ~128 bytes.
std::string quote_value(std::string_view value);

}  // namespace yuxi::config::injector
