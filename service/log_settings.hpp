// The log settings of a service (--log-level, --log-format), apart from the logger
// itself (logging.hpp), so that options can name them without including spdlog.
#pragma once

#include <optional>
#include <string_view>

namespace yuxi::config::service {

enum class LogLevel { trace, debug, info, warn, error, critical, off };

enum class LogFormat {
    human,  // one readable line per event
    json,   // one JSON object per line (Fluentd, Elasticsearch)
};

std::string_view to_string(LogLevel level) noexcept;
// A level by its exact name: trace, debug, info, warn (or warning), error (or err), critical,
// off. Trimming and case are the caller's rule.
std::optional<LogLevel> parse_log_level(std::string_view name);
std::string_view to_string(LogFormat format) noexcept;

}  // namespace yuxi::config::service
