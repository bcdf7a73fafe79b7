// Logging: spdlog on stderr, in a human format or as one JSON object per line.
//
// Human (the default): `2024-05-01T12:00:00.123+0000 info published revision 7: ...`.
// JSON (--log-format json, for Fluentd and Elasticsearch): one object per line,
//   {"ts":"2024-05-01T12:00:00.123Z","level":"info","logger":"yuxi-config-agent","msg":"..."}
// with `ts` in UTC. The message is escaped so that every line is valid JSON whatever it
// holds: quotes, backslashes, newlines and other control characters are escaped, and
// bytes that are not UTF-8 become U+FFFD.
//
// What is logged is the callers' business, and the rule is: keys, paths, sizes and
// revisions, never a configuration value, and URLs only through redact_database_url().
#pragma once

#include <string_view>

#include "agent/ops/options.hpp"
#include "service/logging.hpp"

namespace yuxi::config::agent {

inline constexpr std::string_view kLoggerName = "yuxi-config-agent";

// Makes the default logger: stderr, `level`, `format`, every line flushed at once.
inline void setup_logging(LogLevel level, LogFormat format) {
    service::setup_logging(kLoggerName, level, format);
}

using service::append_json_escaped;
using service::JsonFormatter;

}  // namespace yuxi::config::agent
