// yuxi-configctl: inspects the configuration segment, writes PostgreSQL, runs commands under
// a Redis lock. main holds only the dispatch and the mapping of errors to exit statuses
// (see command_line.hpp).
#include <exception>
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include "cli/admin_support.hpp"
#include "cli/command_line.hpp"
#include "cli/migrate_commands.hpp"
#include "cli/read_commands.hpp"
#include "cli/redis_commands.hpp"
#include "cli/requests.hpp"
#include "cli/schema_command.hpp"
#include "cli/write_commands.hpp"
#include "yuxi/config/admin.hpp"
#include "yuxi/config/client.hpp"

#ifndef YUXI_CONFIG_VERSION
#define YUXI_CONFIG_VERSION "unknown"
#endif

namespace {

using yuxi::config::cli::Exit;

int code(Exit e) {
    return static_cast<int>(e);
}

// The request's command, on the request: no command sees the raw command line.
Exit dispatch(const yuxi::config::cli::CommandLine& cl) {
    namespace cli = yuxi::config::cli;
    const cli::Request request = cli::to_request(cl);
    const cli::Io io{std::cout, std::cerr};
    return std::visit([&](const auto& r) { return cli::run(r, io); }, request);
}

int run(const std::vector<std::string>& argv) {
    namespace cli = yuxi::config::cli;
    const cli::CommandLine cl = cli::parse(argv);
    if (cl.has("--version")) {
        std::cout << "yuxi-configctl " << YUXI_CONFIG_VERSION << '\n';
        return code(Exit::ok);
    }
    if (cl.command == "help" || cl.command.empty() || cl.has("--help")) {
        const std::string topic =
            cl.command == "help" ? (cl.args.empty() ? "" : cl.args[0]) : cl.command;
        if (topic.empty()) {
            (cl.command.empty() && !cl.has("--help") ? std::cerr : std::cout)
                << cli::general_help();
            return code(cl.command.empty() && !cl.has("--help") ? Exit::usage : Exit::ok);
        }
        const cli::CommandSpec* spec = cli::find_command(topic);
        if (spec == nullptr) {
            throw cli::UsageError("no command '" + topic + "'");
        }
        std::cout << cli::command_help(*spec);
        return code(Exit::ok);
    }
    const Exit e = dispatch(cl);
    std::cout.flush();
    if (!std::cout) {
        std::cerr << "yuxi-configctl: cannot write the output\n";
        return code(Exit::usage);
    }
    return code(e);
}

}  // namespace

int main(int argc, char** argv) {
    std::ios::sync_with_stdio(false);
    try {
        return run(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const yuxi::config::cli::CommandError& e) {
        std::cerr << "yuxi-configctl: " << e.what() << '\n';
        return code(e.exit());
    } catch (const yuxi::config::AdminError& e) {
        std::cerr << "yuxi-configctl: " << e.what() << '\n';
        return code(yuxi::config::cli::exit_of(e.kind()));
    } catch (const std::exception& e) {
        // UsageError and SegmentError: their messages say what to change.
        std::cerr << "yuxi-configctl: " << e.what() << '\n';
    }
    return code(Exit::usage);
}
