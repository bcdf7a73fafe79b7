// Logging: spdlog on stderr, human lines or one JSON object per line.
//
// JSON (--log-format json): {"ts":"2024-05-01T12:00:00.123Z","level":"info",
// "logger":"yuxi-config-injector","msg":"..."}, `ts` in UTC; every line is valid JSON
// whatever the message holds (control characters escaped, bytes that are not UTF-8
// replaced by U+FFFD).
//
// What is logged: namespaces, pod names, review uids, decisions and reasons. Never a
// pod's environment, a certificate's key, or a request body.
#pragma once

#include <string_view>

#include "options.hpp"
#include "service/logging.hpp"

namespace yuxi::config::injector {

inline constexpr std::string_view kLoggerName = "yuxi-config-injector";

inline void setup_logging(LogLevel level, LogFormat format) {
    service::setup_logging(kLoggerName, level, format);
}

}  // namespace yuxi::config::injector
