// Logging of a service: the default logger and the JSON-lines formatter (logging.hpp).
#include "service/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <ctime>
#include <utility>

namespace yuxi::config::service {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel l) {
    switch (l) {
        case LogLevel::trace:
            return spdlog::level::trace;
        case LogLevel::debug:
            return spdlog::level::debug;
        case LogLevel::info:
            return spdlog::level::info;
        case LogLevel::warn:
            return spdlog::level::warn;
        case LogLevel::error:
            return spdlog::level::err;
        case LogLevel::critical:
            return spdlog::level::critical;
        case LogLevel::off:
            return spdlog::level::off;
    }
    return spdlog::level::info;
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool in(unsigned char c, unsigned lo, unsigned hi) {
    return c >= lo && c <= hi;
}

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_length(std::string_view s) {
    const auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = at(0);
    if (c < 0x80) {
        return 1;
    }
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (in(c, 0xC2, 0xDF)) {
        n = 2;
    } else if (in(c, 0xE0, 0xEF)) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (in(c, 0xF0, 0xF4)) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (s.size() < n || !in(at(1), lo, hi)) {
        return 0;
    }
    for (std::size_t i = 2; i < n; ++i) {
        if (!in(at(i), 0x80, 0xBF)) {
            return 0;
        }
    }
    return n;
}

void append_control(unsigned char c, std::string& out) {
    switch (c) {
        case '\n':
            out += "\\n";
            return;
        case '\r':
            out += "\\r";
            return;
        case '\t':
            out += "\\t";
            return;
        case '\b':
            out += "\\b";
            return;
        case '\f':
            out += "\\f";
            return;
        default:
            break;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\u00";
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
}

// UTC, milliseconds: 2024-05-01T12:00:00.123Z
void append_timestamp(spdlog::log_clock::time_point t, std::string& out) {
    const auto since = t.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    const std::time_t tt = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[40];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    out.append(buf, n);
    out += fmt::format(".{:03}Z", ms);
}

}  // namespace

void append_json_escaped(std::string_view text, std::string& out) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20 || c == 0x7F) {
            append_control(c, out);
            ++i;
        } else if (const std::size_t n = utf8_length(text.substr(i)); n > 0) {
            out.append(text.substr(i, n));
            i += n;
        } else {
            out += kReplacement;
            ++i;
        }
    }
}

void JsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    std::string line;
    line.reserve(msg.payload.size() + 96);
    line += "{\"ts\":\"";
    append_timestamp(msg.time, line);
    line += "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += "\",\"logger\":\"";
    append_json_escaped(std::string_view(msg.logger_name.data(), msg.logger_name.size()), line);
    line += "\",\"msg\":\"";
    append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), line);
    line += "\"}\n";
    dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonFormatter::clone() const {
    return std::make_unique<JsonFormatter>();
}

void setup_logging(std::string_view name, LogLevel level, LogFormat format) {
    std::shared_ptr<spdlog::logger> logger;
    if (format == LogFormat::json) {
        // No colour codes in a line a machine parses, even on a terminal.
        logger = spdlog::stderr_logger_st(std::string(name));
        logger->set_formatter(std::make_unique<JsonFormatter>());
    } else {
        logger = spdlog::stderr_color_st(std::string(name));
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    }
    logger->set_level(to_spdlog(level));
    // Every line reaches stderr at once: a supervisor (or a test) reads it while we run.
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
}

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::trace:
            return "trace";
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
        case LogLevel::critical:
            return "critical";
        case LogLevel::off:
            return "off";
    }
    return "?";
}

std::string_view to_string(LogFormat format) noexcept {
    return format == LogFormat::json ? "json" : "human";
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
    static constexpr std::array<std::pair<std::string_view, LogLevel>, 9> kNames = {{
        {"trace", LogLevel::trace},
        {"debug", LogLevel::debug},
        {"info", LogLevel::info},
        {"warn", LogLevel::warn},
        {"warning", LogLevel::warn},
        {"error", LogLevel::error},
        {"err", LogLevel::error},
        {"critical", LogLevel::critical},
        {"off", LogLevel::off},
    }};
    for (const auto& [known, level] : kNames) {
        if (known == name) {
            return level;
        }
    }
    return std::nullopt;
}

}  // namespace yuxi::config::service
