// The command line of yuxi-configctl: which commands exist, which options each takes, and
// the parse of argv into a CommandLine. Pure logic: no I/O, no segment, no database.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace yuxi::config::cli {

// Exit statuses, the same for every command (docs/cli.md has the full table).
enum class Exit : int {
    ok = 0,           // found, or done
    not_found = 1,    // no such key, no key matched, no change before --timeout, unhealthy
    usage = 2,        // bad command line or input, or the segment cannot be opened
    conflict = 3,     // --if-revision: the key changed since that revision
    unavailable = 4,  // the database or Redis cannot be reached, or refused the work
    timeout = 5,      // --wait / --wait-all: committed, but not seen in time
    lock_lost = 6,    // lock: the lock was lost while the command ran
    rejected = 7,     // --wait-all, wait --all: an agent refused a value up to the revision
    invalid = 8,      // the value breaks its key's JSON Schema; nothing was written
    lock_busy = 75,   // lock: somebody else held the lock for all of --wait (EX_TEMPFAIL)
};

// A command line that does not parse; the message says what to change.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A command that cannot go on; the message says why and what to do, `exit` how to end.
class CommandError : public std::runtime_error {
  public:
    CommandError(Exit exit, const std::string& message)
        : std::runtime_error(message), exit_(exit) {}
    Exit exit() const noexcept { return exit_; }

  private:
    Exit exit_;
};

// Where a command writes: results to `out`, explanations to `err`.
struct Io {
    std::ostream& out;
    std::ostream& err;
};

struct OptionSpec {
    std::string_view name;  // with the dashes: "--prefix"
    bool takes_value = false;
};

// What a command works on, which decides how main runs it.
enum class Target {
    none,      // help
    segment,   // reads the shared-memory segment
    database,  // PostgreSQL (and, for --wait/--wait-all, the segment and Redis)
    redis,     // Redis only
};

struct CommandSpec {
    std::string_view name;
    std::size_t min_args = 0;
    std::size_t max_args = 0;
    std::vector<OptionSpec> options;
    std::string_view synopsis;  // "get KEY [--metadata] ..."
    std::string_view help;      // what it does, its options and exit statuses
    Target target = Target::segment;
};

struct CommandLine {
    std::string command;  // empty when only global options were given
    std::vector<std::string> args;
    std::map<std::string, std::string, std::less<>> values;       // option -> its last value
    std::vector<std::pair<std::string, std::string>> all_values;  // every value, in order
    std::vector<std::string> flags;                               // options without a value

    bool has(std::string_view option) const;
    std::optional<std::string> value(std::string_view option) const;
    // Every value given to a repeatable option (--config-file, --metadata NAME=PATH).
    std::vector<std::string> values_of(std::string_view option) const;
};

// Every command, in the order the help lists them.
const std::vector<CommandSpec>& commands();

// The command of that name, or nullptr.
const CommandSpec* find_command(std::string_view name);

// Parses argv without the program name against the command's option table and argument
// count (values are checked by to_request, requests.hpp). Options may come before or
// after the command; "--" ends them. Throws UsageError.
CommandLine parse(std::span<const std::string> argv);

// "12", "0.5", "2.5s" -> seconds; throws UsageError naming `option`.
double parse_seconds(std::string_view option, std::string_view text);

// "3" -> 3; zero, signs and junk throw UsageError naming `option`.
std::uint64_t parse_count(std::string_view option, std::string_view text);

// "0", "42" -> the number; signs and junk throw UsageError naming `option`.
std::uint64_t parse_revision(std::string_view option, std::string_view text);

std::string general_help();
std::string command_help(const CommandSpec& spec);

// An environment variable; nothing if unset or empty.
std::optional<std::string> env(const char* name);

}  // namespace yuxi::config::cli
