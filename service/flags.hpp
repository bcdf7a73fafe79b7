// The command line of a service, split into flags: `--name value`, `--name=value`,
// `--switch`, and `-h` for `--help`. What each flag means is the service's own (its
// options); this only finds them, so that both services refuse a command line alike.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/decoded.hpp"

namespace yuxi::config::service {

// A flag as the tokenizer needs it: its name (static storage: it keys the result) and
// whether it takes a value.
struct FlagShape {
    std::string_view name;
    bool takes_value = false;
};
using FindFlag = std::function<std::optional<FlagShape>(std::string_view name)>;

// Values by flag name, in command-line order; a switch holds one empty value per use.
using FlagValues = std::map<std::string_view, std::vector<std::string>>;

struct SplitRules {
    std::string_view not_a_flag_hint;  // appended to "unexpected argument 'x'"
    bool non_empty_values = false;     // refuse `--name ""` (and values of white space)
};

// The flags of `args` (without the program name), or why not, in one line: an argument
// that is not a flag, an unknown flag, a switch given a value, a flag without its value.
Decoded<FlagValues> split_flags(std::span<const std::string_view> args, const FindFlag& find,
                                const SplitRules& rules);

}  // namespace yuxi::config::service
