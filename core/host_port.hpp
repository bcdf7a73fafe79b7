// A host and port as settings give them ("host:port", "[v6]:port"), and lists of them: the
// Redis Sentinels. Header-only, so that the lock library (which links no core code) and the
// agent's options share one parser.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decoded.hpp"

namespace yuxi::config {

struct HostPort {
    std::string host;
    std::uint16_t port = 0;
    bool operator==(const HostPort&) const = default;
};

namespace host_port_detail {

inline std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace host_port_detail

// A TCP port 1-65535, or nothing.
inline std::optional<std::uint16_t> parse_port_number(std::string_view text) {
    unsigned value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || value == 0 ||
        value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

// "host[:port]" or "[v6][:port]", `default_port` when none is given. Nothing if malformed.
inline std::optional<HostPort> parse_host_port(std::string_view text, std::uint16_t default_port) {
    text = host_port_detail::trimmed(text);
    HostPort hp;
    hp.port = default_port;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close == 1) {
            return std::nullopt;
        }
        hp.host = std::string(text.substr(1, close - 1));
        text.remove_prefix(close + 1);
        if (!text.empty()) {
            if (!text.starts_with(':')) {
                return std::nullopt;
            }
            port = text.substr(1);
            if (port.empty()) {
                return std::nullopt;
            }
        }
    } else {
        const auto colon = text.find(':');
        hp.host = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = text.substr(colon + 1);
            if (port.empty()) {
                return std::nullopt;
            }
        }
    }
    if (hp.host.empty() || hp.host.size() > 253 ||
        hp.host.find_first_of(" \t,") != std::string::npos) {
        return std::nullopt;
    }
    if (!port.empty()) {
        const auto p = parse_port_number(port);
        if (!p) {
            return std::nullopt;
        }
        hp.port = *p;
    }
    return hp;
}

inline constexpr std::size_t kMaxHostList = 64;

// "h1:p1, h2:p2, ..." (empty items skipped), or why not: the bad item, or over 64 items.
inline Decoded<std::vector<HostPort>> parse_host_list(std::string_view text,
                                                      std::uint16_t default_port) {
    std::vector<HostPort> out;
    for (;;) {
        const auto comma = text.find(',');
        const std::string_view item = host_port_detail::trimmed(text.substr(0, comma));
        if (!item.empty()) {
            auto hp = parse_host_port(item, default_port);
            if (!hp) {
                return refuse("'" + std::string(item) + "' is not host:port");
            }
            if (out.size() == kMaxHostList) {
                return refuse("more than " + std::to_string(kMaxHostList) + " addresses");
            }
            out.push_back(std::move(*hp));
        }
        if (comma == std::string_view::npos) {
            return out;
        }
        text.remove_prefix(comma + 1);
    }
}

}  // namespace yuxi::config
