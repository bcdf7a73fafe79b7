// The injector's settings: command-line flags and environment variables.
//
// Every flag has an environment variable and a flag wins over it; values are given as
// `--flag value` or `--flag=value`. The defaults of the sidecar come from the embedded
// template (the kustomize component), and the flags replace them for every pod:
// --agent-image, --agent-env NAME=VALUE (repeatable; or one variable
// YUXI_INJECTOR_AGENT_ENV_<NAME> per name), --agent-secret, --agent-{cpu,memory}-
// {request,limit}, --native-sidecar. docs/injector.md describes each setting.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "annotations.hpp"
#include "service/log_settings.hpp"

namespace yuxi::config::injector {

struct SidecarTemplate;

using service::LogFormat;
using service::LogLevel;

// A host and port to listen on: an IPv4 address, a host name, or a bracketed IPv6 address.
struct ListenAddress {
    std::string host;
    std::uint16_t port = 0;
    bool operator==(const ListenAddress&) const = default;
};

inline constexpr std::string_view kDefaultListen = "127.0.0.1:8443";
inline constexpr std::chrono::milliseconds kDefaultTlsReloadInterval{10000};
inline constexpr std::chrono::milliseconds kDefaultRequestTimeout{10000};
// The API server stores objects of up to 1.5 MiB; a review carries one, plus its envelope.
inline constexpr std::size_t kDefaultMaxRequestBytes = 2 << 20;
inline constexpr std::size_t kDefaultMaxConnections = 64;

struct Options {
    ListenAddress listen;  // HTTPS: /mutate, /healthz, /readyz, /metrics
    std::string tls_cert;  // PEM: the certificate, then its chain
    std::string tls_key;   // PEM: its private key (never logged)
    std::chrono::milliseconds tls_reload_interval = kDefaultTlsReloadInterval;
    // Plain HTTP for /healthz, /readyz and /metrics (never /mutate); port 0: off.
    ListenAddress metrics_listen;
    std::chrono::milliseconds request_timeout = kDefaultRequestTimeout;
    std::size_t max_request_bytes = kDefaultMaxRequestBytes;
    std::size_t max_connections = kDefaultMaxConnections;
    LogLevel log_level = LogLevel::info;
    LogFormat log_format = LogFormat::human;
    SidecarSettings sidecar;  // every pod's defaults, before its annotations
    bool help = false;
    bool version = false;
};

// A flag or variable the injector cannot use; the message names it and says what is wrong.
class OptionsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// The process environment (empty variables left out).
using Environment = std::map<std::string, std::string, std::less<>>;
Environment process_environment();

// Parses `args` (without the program name) over `env`, with `t`'s sidecar as the
// defaults. Throws OptionsError.
[[nodiscard]] Options parse_options(std::span<const std::string_view> args, const Environment& env,
                                    const SidecarTemplate& t);

// Pieces of parse_options, public for the tests.
[[nodiscard]] ListenAddress parse_listen_address(std::string_view text);
// A duration: a number with a unit ms, s, m or h (a bare number is seconds).
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);
// Bytes, with an optional suffix K, KiB, M, MiB (powers of 1024).
[[nodiscard]] std::size_t parse_byte_size(std::string_view text);

std::string_view version() noexcept;
std::string usage(std::string_view program);

}  // namespace yuxi::config::injector
