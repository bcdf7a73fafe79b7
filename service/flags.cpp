// The command line's tokenizer (flags.hpp).
#include "service/flags.hpp"

namespace yuxi::config::service {
namespace {

// Nothing but white space, as core/text.hpp's trim() sees it.
bool blank(std::string_view s) {
    return s.find_first_not_of(" \t\n\r\v\f") == std::string_view::npos;
}

}  // namespace

Decoded<FlagValues> split_flags(std::span<const std::string_view> args, const FindFlag& find,
                                const SplitRules& rules) {
    FlagValues flags;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg == "-h") {
            flags["help"].emplace_back();
            continue;
        }
        if (!arg.starts_with("--") || arg.size() == 2) {
            return refuse("unexpected argument '" + std::string(arg) + "'" +
                          std::string(rules.not_a_flag_hint));
        }
        std::string_view name = arg.substr(2);
        std::optional<std::string_view> value;
        if (const auto eq = name.find('='); eq != std::string_view::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const std::optional<FlagShape> shape = find(name);
        if (!shape) {
            return refuse("unknown flag '--" + std::string(name) + "'");
        }
        if (!shape->takes_value) {
            if (value) {
                return refuse("--" + std::string(name) + " takes no value");
            }
            flags[shape->name].emplace_back();
            continue;
        }
        if (!value) {
            if (i + 1 >= args.size()) {
                return refuse("--" + std::string(name) + " needs a value");
            }
            value = args[++i];
        }
        if (rules.non_empty_values && blank(*value)) {
            return refuse("--" + std::string(name) + " needs a non-empty value");
        }
        flags[shape->name].emplace_back(*value);
    }
    return flags;
}

}  // namespace yuxi::config::service
