// The pod's config.yuxi.dev/ annotations over the injector's defaults, and the value checks.
#include "annotations.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

namespace yuxi::config::injector {
namespace {

using nlohmann::json;

// The override annotations, without the prefix.
constexpr std::array<std::string_view, 9> kOverrides = {
    "image",       "segment",        "mode",      "log-level",    "serve-degraded",
    "cpu-request", "memory-request", "cpu-limit", "memory-limit",
};

bool is_alnum(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string known_list() {
    std::string out = "inject";
    for (const std::string_view k : kOverrides) {
        out += ", ";
        out += k;
    }
    return out;
}

// Sets one override on `s`; the problem with the value, if any.
std::optional<std::string> apply_one(std::string_view key, const std::string& value,
                                     SidecarSettings& s) {
    if (key == "image") {
        if (auto p = image_problem(value)) {
            return p;
        }
        s.image = value;
    } else if (key == "segment") {
        if (auto p = segment_problem(value)) {
            return p;
        }
        s.set_env(kSegmentVar, value);
    } else if (key == "mode") {
        if (auto p = mode_problem(value)) {
            return p;
        }
        s.set_env(kModeVar, value);
    } else if (key == "log-level") {
        if (auto p = log_level_problem(value)) {
            return p;
        }
        s.set_env(kLogLevelVar, value);
    } else if (key == "serve-degraded") {
        if (auto p = bool_problem(value)) {
            return p;
        }
        s.set_env(kServeDegradedVar, value);
    } else {
        if (auto p = quantity_problem(value)) {
            return p;
        }
        std::string* field = key == "cpu-request"      ? &s.resources.cpu_request
                             : key == "cpu-limit"      ? &s.resources.cpu_limit
                             : key == "memory-request" ? &s.resources.memory_request
                                                       : &s.resources.memory_limit;
        *field = value;
    }
    return std::nullopt;
}

// The multiplier of a quantity's suffix; nothing if it is not one.
std::optional<long double> suffix_scale(std::string_view s) {
    struct Suffix {
        std::string_view name;
        long double scale;
    };
    static constexpr std::array<Suffix, 16> kSuffixes = {{
        {"", 1.0L},
        {"n", 1e-9L},
        {"u", 1e-6L},
        {"m", 1e-3L},
        {"k", 1e3L},
        {"M", 1e6L},
        {"G", 1e9L},
        {"T", 1e12L},
        {"P", 1e15L},
        {"E", 1e18L},
        {"Ki", 1024.0L},
        {"Mi", 1048576.0L},
        {"Gi", 1073741824.0L},
        {"Ti", 1099511627776.0L},
        {"Pi", 1125899906842624.0L},
        {"Ei", 1152921504606846976.0L},
    }};
    for (const Suffix& x : kSuffixes) {
        if (x.name == s) {
            return x.scale;
        }
    }
    return std::nullopt;
}

}  // namespace

std::string_view SidecarSettings::env_value(std::string_view name) const noexcept {
    for (const EnvVar& v : env) {
        if (v.name == name) {
            return v.value;
        }
    }
    return {};
}

void SidecarSettings::set_env(std::string_view name, std::string value) {
    for (EnvVar& v : env) {
        if (v.name == name) {
            v.value = std::move(value);
            return;
        }
    }
    env.push_back({std::string(name), std::move(value)});
}

std::string quote_value(std::string_view value) {
    constexpr std::size_t kMax = 128;
    std::string out = "\"";
    for (std::size_t i = 0; i < value.size() && i < kMax; ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7F) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        } else {
            out += static_cast<char>(c);
        }
    }
    out += value.size() > kMax ? "...\"" : "\"";
    return out;
}

Decoded<InjectRequest> read_inject_request(const json* annotations) {
    if (annotations == nullptr || !annotations->is_object()) {
        return InjectRequest::absent;
    }
    const auto it = annotations->find(kInjectAnnotation);
    if (it == annotations->end()) {
        return InjectRequest::absent;
    }
    if (!it->is_string()) {
        return refuse(std::string(kInjectAnnotation) + " must be \"true\" or \"false\"");
    }
    const auto& v = it->get_ref<const std::string&>();
    if (v == "true") {
        return InjectRequest::inject;
    }
    if (v == "false") {
        return InjectRequest::opt_out;
    }
    return refuse(std::string(kInjectAnnotation) + ": " + quote_value(v) +
                  " must be \"true\" or \"false\"");
}

Decoded<SidecarSettings> apply_annotations(const json* annotations, SidecarSettings defaults) {
    SidecarSettings s = std::move(defaults);
    bool resources_annotated = false;
    if (annotations != nullptr && annotations->is_object()) {
        for (const auto& [name, value] : annotations->items()) {
            if (!std::string_view(name).starts_with(kAnnotationPrefix) ||
                name == kInjectAnnotation || name == kStatusAnnotation) {
                continue;
            }
            const std::string_view key = std::string_view(name).substr(kAnnotationPrefix.size());
            if (std::find(kOverrides.begin(), kOverrides.end(), key) == kOverrides.end()) {
                return refuse(
                    quote_value(name) +
                    " is not an annotation of yuxi-config-injector (known: " + known_list() + ")");
            }
            if (!value.is_string()) {
                return refuse(name + " must be a string");
            }
            if (auto problem = apply_one(key, value.get_ref<const std::string&>(), s)) {
                return refuse(name + ": " + quote_value(value.get_ref<const std::string&>()) + " " +
                              *problem);
            }
            resources_annotated =
                resources_annotated || key.ends_with("-request") || key.ends_with("-limit");
        }
    }
    if (auto p = resources_problem(
            s.resources, resources_annotated ? "the pod's annotations and the injector's defaults"
                                             : "the injector's defaults")) {
        return refuse(*p);
    }
    return s;
}

std::optional<std::string> image_problem(std::string_view image) {
    // A reference as the container runtime parses it: [registry[:port]/]path[:tag][@digest].
    // Only the alphabet and the shape are checked here; the kubelet reports a name it
    // cannot pull, on the pod.
    if (image.empty() || image.size() > 512) {
        return "is not an image reference (1 to 512 characters)";
    }
    if (!is_alnum(image.front())) {
        return "is not an image reference: it must start with a letter or digit";
    }
    for (const char c : image) {
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && c != '/' && c != ':' && c != '@') {
            return "is not an image reference (letters, digits and . _ - / : @ only)";
        }
    }
    if (image.back() == ':' || image.back() == '/' || image.back() == '@') {
        return "is not an image reference: it ends in '" + std::string(1, image.back()) + "'";
    }
    return std::nullopt;
}

std::optional<std::string> segment_problem(std::string_view segment) {
    // The client's rule (1 to 200 characters, no '/', not . or ..), narrowed to characters
    // that need no quoting anywhere: the name is also an environment value and a file name.
    if (segment.empty() || segment.size() > 200 || segment == "." || segment == "..") {
        return "is not a segment name (1 to 200 characters, not . or ..)";
    }
    for (const char c : segment) {
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
            return "is not a segment name (letters, digits, '.', '_' and '-' only)";
        }
    }
    return std::nullopt;
}

std::optional<std::string> mode_problem(std::string_view mode) {
    if (mode == "database" || mode == "file") {
        return std::nullopt;
    }
    return "is not a mode of the agent (database or file)";
}

std::optional<std::string> log_level_problem(std::string_view level) {
    static constexpr std::array<std::string_view, 7> kLevels = {"trace", "debug",    "info", "warn",
                                                                "error", "critical", "off"};
    if (std::find(kLevels.begin(), kLevels.end(), level) != kLevels.end()) {
        return std::nullopt;
    }
    return "is not a log level (trace, debug, info, warn, error, critical, off)";
}

std::optional<std::string> bool_problem(std::string_view value) {
    if (value == "true" || value == "false") {
        return std::nullopt;
    }
    return "must be \"true\" or \"false\"";
}

std::optional<long double> parse_quantity(std::string_view q) {
    // Kubernetes' quantity grammar, unsigned (resources are never negative): digits with
    // an optional fraction, then a decimal exponent or an SI or binary suffix.
    if (q.empty() || q.size() > 64) {
        return std::nullopt;
    }
    std::size_t i = 0;
    long double mantissa = 0;
    std::size_t digits = 0;
    for (; i < q.size() && std::isdigit(static_cast<unsigned char>(q[i])) != 0; ++i, ++digits) {
        mantissa = mantissa * 10 + (q[i] - '0');
    }
    if (i < q.size() && q[i] == '.') {
        long double scale = 0.1L;
        for (++i; i < q.size() && std::isdigit(static_cast<unsigned char>(q[i])) != 0;
             ++i, ++digits) {
            mantissa += (q[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (digits == 0) {
        return std::nullopt;
    }
    std::string_view rest = q.substr(i);
    if (!rest.empty() && (rest[0] == 'e' || rest[0] == 'E') && rest.size() > 1) {
        std::string_view exp = rest.substr(1);
        const bool negative = exp.front() == '-';
        if (exp.front() == '+' || exp.front() == '-') {
            exp.remove_prefix(1);
        }
        if (exp.empty() || exp.size() > 3 || !std::all_of(exp.begin(), exp.end(), [](char c) {
                return std::isdigit(static_cast<unsigned char>(c)) != 0;
            })) {
            return std::nullopt;
        }
        int e = 0;
        for (const char c : exp) {
            e = e * 10 + (c - '0');
        }
        return mantissa * std::pow(10.0L, negative ? -e : e);
    }
    const auto scale = suffix_scale(rest);
    if (!scale) {
        return std::nullopt;
    }
    return mantissa * *scale;
}

std::optional<std::string> quantity_problem(std::string_view quantity) {
    if (parse_quantity(quantity)) {
        return std::nullopt;
    }
    return "is not a Kubernetes quantity (e.g. 100m or 0.5 for CPU, 64Mi or 1Gi for memory)";
}

std::optional<std::string> resources_problem(const Resources& r, std::string_view origin) {
    const auto over = [&](const std::string& request, const std::string& limit,
                          std::string_view what) -> std::optional<std::string> {
        if (request.empty() || limit.empty()) {
            return std::nullopt;
        }
        const auto req = parse_quantity(request);
        const auto lim = parse_quantity(limit);
        if (req && lim && *req > *lim) {
            return "the agent's " + std::string(what) + " request " + request +
                   " is above its limit " + limit + " (from " + std::string(origin) +
                   "): set config.yuxi.dev/" + std::string(what) + "-request and config.yuxi.dev/" +
                   std::string(what) + "-limit together";
        }
        return std::nullopt;
    };
    if (auto p = over(r.cpu_request, r.cpu_limit, "cpu")) {
        return p;
    }
    return over(r.memory_request, r.memory_limit, "memory");
}

std::optional<std::string> object_name_problem(std::string_view name) {
    if (name.empty() || name.size() > 253 || !is_lower_alnum(name.front()) ||
        !is_lower_alnum(name.back())) {
        return "is not a Kubernetes object name (1 to 253 characters, starting and ending with "
               "a lowercase letter or digit)";
    }
    for (const char c : name) {
        if (!is_lower_alnum(c) && c != '-' && c != '.') {
            return "is not a Kubernetes object name (lowercase letters, digits, '-' and '.')";
        }
    }
    return std::nullopt;
}

std::optional<std::string> env_name_problem(std::string_view name) {
    if (name.empty() || name.size() > 128 ||
        std::isdigit(static_cast<unsigned char>(name.front())) != 0) {
        return "is not an environment variable name";
    }
    for (const char c : name) {
        if (!is_alnum(c) && c != '_') {
            return "is not an environment variable name (letters, digits and '_')";
        }
    }
    // Literal values end up in the pod spec, readable by anyone who can read pods.
    static constexpr std::array<std::string_view, 5> kSecrets = {
        "DATABASE_URL", "DATABASE_URL_SYNC", "REDIS_PASSWORD", "YUXI_CONFIG_SIGNING_KEY",
        "YUXI_CONFIG_SIGNING_KEY_PREVIOUS"};
    if (std::find(kSecrets.begin(), kSecrets.end(), name) != kSecrets.end()) {
        return "is a secret: it belongs in the agent's Secret (--agent-secret), never in the pod "
               "spec";
    }
    if (name == "POD_NAME") {
        return "is set by the injector from the pod's name";
    }
    return std::nullopt;
}

}  // namespace yuxi::config::injector
