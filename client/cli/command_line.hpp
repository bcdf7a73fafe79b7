// The command line of yuxi-configctl: which commands exist, which options each takes, and
// the parse of argv into a CommandLine. Pure logic: no I/O, no segment.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace yuxi::config::cli {

// Exit statuses, the same for every command.
enum class Exit : int {
    ok = 0,         // found, or done
    not_found = 1,  // no such key, no key matched, no change before --timeout, unhealthy
    usage = 2,      // bad command line, or the segment cannot be opened
};

// A command line that does not parse; the message says what to change.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct OptionSpec {
    std::string_view name;  // with the dashes: "--prefix"
    bool takes_value = false;
};

struct CommandSpec {
    std::string_view name;
    std::size_t min_args = 0;
    std::size_t max_args = 0;
    std::vector<OptionSpec> options;
    std::string_view synopsis;  // "get KEY [--metadata] ..."
    std::string_view help;      // what it does, its options and exit statuses
};

struct CommandLine {
    std::string command;  // empty when only global options were given
    std::vector<std::string> args;
    std::map<std::string, std::string, std::less<>> values;  // option -> its last value
    std::vector<std::string> flags;                          // options without a value

    bool has(std::string_view option) const;
    std::optional<std::string> value(std::string_view option) const;
};

// The read commands, in the order the help lists them.
const std::vector<CommandSpec>& read_commands();

// The command of that name, or nullptr.
const CommandSpec* find_command(std::string_view name);

// Commands that write PostgreSQL (DESIGN.md §7); not in this release.
bool is_write_command(std::string_view name);

// Parses argv without the program name. Options may come before or after the command;
// "--" ends them. Throws UsageError.
CommandLine parse(std::span<const std::string> argv);

// "12", "0.5", "2.5s" -> seconds; throws UsageError naming `option`.
double parse_seconds(std::string_view option, std::string_view text);

// "3" -> 3; zero, signs and junk throw UsageError naming `option`.
std::uint64_t parse_count(std::string_view option, std::string_view text);

std::string general_help();
std::string command_help(const CommandSpec& spec);

}  // namespace yuxi::config::cli
