// Parsing yuxi-configctl's command line, and its help texts.
#include "command_line.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace yuxi::config::cli {
namespace {

const std::vector<OptionSpec> kGlobalOptions = {
    {"--segment", true},
    {"--help", false},
    {"--version", false},
};

constexpr std::array<std::string_view, 9> kWriteCommands = {
    "set", "delete", "history", "rollback", "schema", "migrate", "export", "lock", "agents"};

const OptionSpec* find_option(const std::vector<OptionSpec>& options, std::string_view name) {
    const auto it = std::find_if(options.begin(), options.end(),
                                 [&](const OptionSpec& o) { return o.name == name; });
    return it == options.end() ? nullptr : &*it;
}

// What the option table cannot say: argument counts, exclusive options, values.
void check(const CommandSpec& spec, const CommandLine& cl) {
    if (cl.args.size() < spec.min_args || cl.args.size() > spec.max_args) {
        throw UsageError("usage: yuxi-configctl " + std::string(spec.synopsis));
    }
    // get and watch print one form of the value; dump's --pretty qualifies its --json.
    std::vector<std::string_view> forms;
    for (const std::string_view o : {"--raw", "--pretty", "--json"}) {
        if (cl.has(o) && !(spec.name == "dump" && o == "--pretty")) {
            forms.push_back(o);
        }
    }
    if (forms.size() > 1) {
        throw UsageError("options " + std::string(forms[0]) + " and " + std::string(forms[1]) +
                         " cannot be combined");
    }
    if (spec.name == "dump" && cl.has("--pretty") && !cl.has("--json")) {
        throw UsageError("option --pretty of dump goes with --json");
    }
    for (const std::string_view o : {"--timeout", "--max-age"}) {
        if (const auto v = cl.value(o)) {
            (void)parse_seconds(o, *v);
        }
    }
    if (const auto v = cl.value("--count")) {
        (void)parse_count("--count", *v);
    }
}

}  // namespace

bool CommandLine::has(std::string_view option) const {
    return values.find(option) != values.end() ||
           std::find(flags.begin(), flags.end(), option) != flags.end();
}

std::optional<std::string> CommandLine::value(std::string_view option) const {
    const auto it = values.find(option);
    if (it == values.end()) {
        return std::nullopt;
    }
    return it->second;
}

const std::vector<CommandSpec>& read_commands() {
    static const std::vector<CommandSpec> commands = {
        {"get",
         1,
         1,
         {{"--metadata", false}, {"--raw", false}, {"--pretty", false}, {"--json", false}},
         "get KEY [--metadata] [--raw | --pretty | --json]",
         "Prints the value of KEY as the JSON text the segment holds.\n"
         "  --metadata   KEY names a metadata document (default: a config key)\n"
         "  --raw        print a JSON string without its quotes and escapes\n"
         "  --pretty     indent the JSON\n"
         "  --json       print {\"namespace\",\"key\",\"value\",\"revision\",\"category\"}\n"
         "Exit status: 0 found, 1 no such key, 2 usage or segment error.\n"},
        {"list",
         0,
         0,
         {{"--prefix", true}, {"--metadata", false}, {"--json", false}},
         "list [--prefix P] [--metadata] [--json]",
         "Prints the keys of one namespace, sorted, one per line.\n"
         "  --prefix P   only keys that start with P\n"
         "  --metadata   list metadata documents (default: config keys)\n"
         "  --json       print a JSON array of the keys\n"
         "Exit status: 0 some key listed, 1 none matched, 2 usage or segment error.\n"},
        {"dump",
         0,
         0,
         {{"--json", false}, {"--pretty", false}},
         "dump [--json [--pretty]]",
         "Prints every entry of both namespaces, all of one revision, sorted by key.\n"
         "  --json       one JSON object {\"revision\":R,\"config\":{...},\"metadata\":{...}}\n"
         "  --pretty     indent the JSON (with --json)\n"
         "Exit status: 0 done, 2 usage or segment error.\n"},
        {"watch",
         1,
         1000,
         {{"--timeout", true},
          {"--count", true},
          {"--metadata", false},
          {"--raw", false},
          {"--json", false}},
         "watch KEY... [--timeout S] [--count N] [--metadata] [--raw | --json]",
         "Prints each change of the KEYs as it is published, one line per key changed:\n"
         "\"REVISION KEY VALUE\", VALUE being \"(deleted)\" for a deletion. It sleeps on the\n"
         "segment between changes (no polling). Changes published faster than they are\n"
         "read are seen together, at the newest revision. On stderr, one line says when\n"
         "watching starts.\n"
         "  --timeout S  stop after S seconds (default: never)\n"
         "  --count N    stop after N changes printed\n"
         "  --metadata   the KEYs name metadata documents\n"
         "  --raw        print JSON strings without their quotes\n"
         "  --json       one object per line: {\"revision\",\"namespace\",\"key\",\"value\","
         "\"deleted\"}\n"
         "Exit status: 0 a change was printed, 1 none before the timeout, 2 usage or\n"
         "segment error.\n"},
        {"status",
         0,
         0,
         {{"--json", false}, {"--max-age", true}},
         "status [--json] [--max-age S]",
         "Prints the segment's revision, writer heartbeat age, whether the writer is alive,\n"
         "the source state, entries and bytes.\n"
         "  --json       one JSON object\n"
         "  --max-age S  the heartbeat age above which the writer is not fresh (default 5)\n"
         "Exit status: 0 the segment was read, 2 usage or segment error.\n"},
        {"health",
         0,
         0,
         {{"--json", false}, {"--max-age", true}},
         "health [--json] [--max-age S]",
         "Prints what status prints, and tells by its exit status whether the segment can\n"
         "be trusted: the writer is alive, beat within --max-age seconds (default 5) and\n"
         "its source state is ok.\n"
         "Exit status: 0 healthy, 1 not healthy (stale, degraded, starting, stopped or no\n"
         "writer), 2 usage or segment error.\n"},
        {"help", 0, 1, {}, "help [COMMAND]", "Prints the help of yuxi-configctl or of COMMAND.\n"},
    };
    return commands;
}

const CommandSpec* find_command(std::string_view name) {
    const auto& commands = read_commands();
    const auto it = std::find_if(commands.begin(), commands.end(),
                                 [&](const CommandSpec& c) { return c.name == name; });
    return it == commands.end() ? nullptr : &*it;
}

bool is_write_command(std::string_view name) {
    return std::find(kWriteCommands.begin(), kWriteCommands.end(), name) != kWriteCommands.end();
}

CommandLine parse(std::span<const std::string> argv) {
    CommandLine cl;
    const CommandSpec* spec = nullptr;
    bool options_done = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        if (!options_done && arg == "--") {
            options_done = true;
            continue;
        }
        const bool is_option = !options_done && arg.size() > 1 && arg[0] == '-';
        if (!is_option) {
            if (cl.command.empty()) {
                cl.command = arg;
                if (is_write_command(arg)) {
                    return cl;  // the caller explains; their options are not ours to check
                }
                spec = find_command(arg);
                if (spec == nullptr) {
                    throw UsageError("unknown command '" + arg +
                                     "'; run 'yuxi-configctl --help' for the list");
                }
            } else {
                cl.args.push_back(arg);
            }
            continue;
        }
        std::string name = arg == "-h" ? std::string("--help") : arg;
        std::optional<std::string> inline_value;
        if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        const OptionSpec* option = find_option(kGlobalOptions, name);
        if (option == nullptr && spec != nullptr) {
            option = find_option(spec->options, name);
        }
        if (option == nullptr) {
            if (spec == nullptr) {
                throw UsageError("unknown option '" + name +
                                 "' (command options go after the command)");
            }
            throw UsageError("unknown option '" + name + "' for '" + std::string(spec->name) +
                             "'; run 'yuxi-configctl " + std::string(spec->name) + " --help'");
        }
        if (!option->takes_value) {
            if (inline_value) {
                throw UsageError("option '" + name + "' takes no value");
            }
            cl.flags.push_back(name);
            continue;
        }
        if (!inline_value) {
            if (i + 1 >= argv.size()) {
                throw UsageError("option '" + name + "' needs a value");
            }
            inline_value = argv[++i];
        }
        cl.values[name] = *inline_value;
    }
    if (spec != nullptr && !cl.has("--help")) {
        check(*spec, cl);
    }
    return cl;
}

double parse_seconds(std::string_view option, std::string_view text) {
    std::string s(text);
    if (!s.empty() && s.back() == 's') {
        s.pop_back();
    }
    char* end = nullptr;
    errno = 0;
    const double v = s.empty() ? -1 : std::strtod(s.c_str(), &end);
    if (s.empty() || errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0 ||
        v > 1e9) {
        throw UsageError("option '" + std::string(option) + "' needs a number of seconds, not '" +
                         std::string(text) + "'");
    }
    return v;
}

std::uint64_t parse_count(std::string_view option, std::string_view text) {
    std::uint64_t v = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size() || v == 0) {
        throw UsageError("option '" + std::string(option) + "' needs a positive integer, not '" +
                         std::string(text) + "'");
    }
    return v;
}

std::string general_help() {
    std::string out =
        "Usage: yuxi-configctl [--segment NAME] COMMAND [ARGS] [OPTIONS]\n"
        "\n"
        "Reads the shared-memory segment that yuxi-config-agent keeps current: the\n"
        "configuration (namespace 'config') and knowledge-base metadata ('metadata').\n"
        "\n"
        "Commands:\n";
    for (const CommandSpec& c : read_commands()) {
        out += "  " + std::string(c.synopsis) + "\n";
    }
    out +=
        "\n"
        "Options for every command:\n"
        "  --segment NAME  the segment (default: $YUXI_CONFIG_SEGMENT, else yuxi-config)\n"
        "  -h, --help      this help, or the command's (yuxi-configctl get --help)\n"
        "  --version       the version\n"
        "\n"
        "Exit status: 0 found or done; 1 not found (no such key, no key matched, no change\n"
        "before --timeout, not healthy); 2 usage error, or the segment cannot be opened\n"
        "(the reason is on stderr).\n"
        "\n"
        "Writes (set, delete, history, rollback, schema, migrate, export, lock, agents) go\n"
        "to PostgreSQL in database mode, which comes in a later release.\n";
    return out;
}

std::string command_help(const CommandSpec& spec) {
    return "Usage: yuxi-configctl [--segment NAME] " + std::string(spec.synopsis) + "\n\n" +
           std::string(spec.help);
}

}  // namespace yuxi::config::cli
