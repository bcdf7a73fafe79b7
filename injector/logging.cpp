// Logging: the default logger and the JSON-lines formatter.
#include "logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>

namespace yuxi::config::injector {
namespace {

constexpr const char* kLoggerName = "yuxi-config-injector";

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

// UTC with milliseconds: 2024-05-01T12:00:00.123Z
std::string timestamp(spdlog::log_clock::time_point t) {
    const auto since = t.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    const std::time_t tt = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[40];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return std::string(buf, n) + fmt::format(".{:03}Z", ms);
}

}  // namespace

void JsonLineFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    const auto level = spdlog::level::to_string_view(msg.level);
    const nlohmann::ordered_json line = {
        {"ts", timestamp(msg.time)},
        {"level", std::string(level.data(), level.size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
        {"msg", std::string(msg.payload.data(), msg.payload.size())},
    };
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
}

std::unique_ptr<spdlog::formatter> JsonLineFormatter::clone() const {
    return std::make_unique<JsonLineFormatter>();
}

void setup_logging(LogLevel level, LogFormat format) {
    std::shared_ptr<spdlog::logger> logger;
    if (format == LogFormat::json) {
        // No colour codes in a line a machine parses, even on a terminal.
        logger = spdlog::stderr_logger_st(kLoggerName);
        logger->set_formatter(std::make_unique<JsonLineFormatter>());
    } else {
        logger = spdlog::stderr_color_st(kLoggerName);
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    }
    logger->set_level(to_spdlog(level));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace yuxi::config::injector
