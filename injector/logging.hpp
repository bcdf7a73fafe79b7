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

#include <spdlog/formatter.h>

#include <memory>

#include "options.hpp"

namespace yuxi::config::injector {

void setup_logging(LogLevel level, LogFormat format);

// The JSON-lines formatter (public for the tests).
class JsonLineFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace yuxi::config::injector
