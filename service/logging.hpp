// Logging of a service: spdlog on stderr, in a human format or as one JSON object per line.
//
// Human (the default): `2024-05-01T12:00:00.123+0000 info published revision 7: ...`.
// JSON (--log-format json, for Fluentd and Elasticsearch): one object per line,
//   {"ts":"2024-05-01T12:00:00.123Z","level":"info","logger":"yuxi-config-agent","msg":"..."}
// with `ts` in UTC. The message is escaped so that every line is valid JSON whatever it
// holds: quotes, backslashes, newlines and other control characters are escaped, and
// bytes that are not UTF-8 become U+FFFD.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string>
#include <string_view>

#include "service/log_settings.hpp"

namespace yuxi::config::service {

// Makes the default logger, named `name`: stderr, `level`, `format`, every line flushed at
// once (a supervisor, or a test, reads it while the service runs).
void setup_logging(std::string_view name, LogLevel level, LogFormat format);

// Appends `text` to `out` as the inside of a JSON string.
void append_json_escaped(std::string_view text, std::string& out);

// The JSON-lines formatter (public for the tests).
class JsonFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace yuxi::config::service
