// Files as file mode reads them: JSON to TOML text that parses back to the same values,
// and replacing files atomically (a temporary file beside each, fsync, rename, fsync of
// the directory). Internal to the admin library and yuxi-configctl's export.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace yuxi::config::admin {

// The TOML text of a JSON object. TOML has no null, and its integers are signed 64-bit:
// such a value throws AdminError usage naming its key ("config 'a.b[1]' is null ...").
std::string toml_text(const nlohmann::json& config);

struct FileOutput {
    std::filesystem::path path;
    std::string text;
    std::filesystem::path temp;  // set while it is written
};

// Every temporary file complete and on disk before any is renamed; nothing is replaced
// unless every file could be written. Throws AdminError unavailable naming the file.
void write_atomically(std::vector<FileOutput>& outputs);

}  // namespace yuxi::config::admin
