// The category of a config key: the group of Yuxi-Know's Config class the key belongs to
// (docs/design.md, "Command line"), as migrate and a new key's set assign it. docs/cli.md has the
// table.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace yuxi::config::cli {

// "basic", "features", "models", "agents" or "sandbox"; nullopt (NULL in system_configs)
// for a key that is none of the Config class's fields.
std::optional<std::string> category_for(std::string_view key);

}  // namespace yuxi::config::cli
