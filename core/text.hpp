// Small text helpers shared by the agent, the CLI and the Python module.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace yuxi::config {

// `s` without leading and trailing ASCII white space.
std::string_view trim(std::string_view s) noexcept;

// `s` in ASCII lower case.
std::string lower(std::string_view s);

// A message on one line: runs of newlines, tabs and spaces become one space, and the
// ends are trimmed (libpq's messages end in newlines and continue on indented lines).
std::string one_line(std::string_view text);

// `s` as printable ASCII for a log or a terminal: other bytes become '?', and anything
// past `max` bytes becomes "...". For text someone else wrote (a pod name, a key).
std::string printable(std::string_view s, std::size_t max = 128);

// The whole of `s` as a number, or nothing: no sign, no spaces, no suffix, in range.
std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept;
std::optional<std::int64_t> parse_i64(std::string_view s) noexcept;

}  // namespace yuxi::config
