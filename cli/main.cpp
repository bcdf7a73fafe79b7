// yuxi-configctl: inspects the configuration segment, writes PostgreSQL, runs commands under
// a Redis lock. main holds only the dispatch and the mapping of errors to exit statuses
// (see command_line.hpp).
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command_line.hpp"
#include "cli/migrate_commands.hpp"
#include "cli/read_commands.hpp"
#include "cli/redis_commands.hpp"
#include "cli/schema_command.hpp"
#include "cli/write_commands.hpp"
#include "yuxi/config/client.hpp"

#ifndef YUXI_CONFIG_VERSION
#define YUXI_CONFIG_VERSION "unknown"
#endif

namespace {

using yuxi::config::cli::Exit;

int code(Exit e) {
    return static_cast<int>(e);
}

Exit dispatch(const yuxi::config::cli::CommandLine& cl) {
    namespace cli = yuxi::config::cli;
    const std::string& c = cl.command;
    if (c == "schema") {
        return cli::run_schema(cl, std::cout, std::cerr);
    }
    if (c == "migrate") {
        return cli::run_migrate(cl, std::cout, std::cerr);
    }
    if (c == "export") {
        return cli::run_export(cl, std::cout, std::cerr);
    }
    if (c == "lock") {
        return cli::run_lock(cl, std::cout, std::cerr);
    }
    if (c == "agents") {
        return cli::run_agents(cl, std::cout, std::cerr);
    }
    if (c == "keygen") {
        return cli::run_keygen(std::cout);
    }
    if (cli::find_command(c)->target == cli::Target::database) {
        return cli::run_write_command(cl, std::cout, std::cerr);
    }
    const auto client = yuxi::config::Client::open(cl.value("--segment").value_or(""));
    return cli::run_read_command(client, cl, std::cout, std::cerr);
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
    } catch (const std::exception& e) {
        // UsageError and SegmentError: their messages say what to change.
        std::cerr << "yuxi-configctl: " << e.what() << '\n';
    }
    return code(Exit::usage);
}
