// The file-mode source: reads the TOML config files and the JSON metadata files, keeps each
// file's last good content, and plans the changes that bring the segment up to date.
//
// Each file is read on its own: a file that is missing or bad keeps the content it last
// had when it was good (nothing, if it never was), so one broken file never takes down
// the keys of the others. The entries are then rebuilt from every file's content: the
// config files merged in order (docs/design.md, "Data model"; core/toml_json.hpp has the rules),
// one metadata entry per metadata file.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/ops/options.hpp"
#include "agent/segment/segment_writer.hpp"
#include "core/value_schema.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent {

enum class FileKind {
    config,    // TOML; its top-level keys are config entries
    metadata,  // JSON; the whole document is one metadata entry
};

enum class FileStatus {
    unread,   // not read yet
    ok,       // the last read succeeded; the content is the file's
    missing,  // the file was not there; the content is the last good one, if any
    invalid,  // the last read failed (syntax, nan/inf, I/O); the content is the last good one
};

struct SourceFile {
    FileKind kind = FileKind::config;
    std::string name;   // metadata: the entry's key
    std::string path;   // absolute, so that a later chdir cannot move it
    std::string shown;  // as the operator wrote it, for logs
    FileStatus status = FileStatus::unread;
    std::optional<nlohmann::json> table;  // config: the converted TOML
    std::optional<std::string> text;      // metadata: the canonical document
    std::string problem;                  // why the last read failed (file:line:col: ...)
};

// Counts for /metrics. Monotonic.
struct FileSourceStats {
    std::uint64_t reloads = 0;            // reload passes (one per debounced burst)
    std::uint64_t files_read = 0;         // files read successfully
    std::uint64_t syntax_errors = 0;      // TOML/JSON that does not parse, invalid UTF-8
    std::uint64_t conversion_errors = 0;  // valid TOML that JSON cannot hold (nan, inf)
    std::uint64_t missing_files = 0;      // reads that found no file
    std::uint64_t read_errors = 0;        // other I/O errors (permissions, a directory...)
    std::uint64_t refused_values = 0;     // keys refused by the limits (--max-value-bytes)
    std::uint64_t publish_errors = 0;     // batches the segment writer could not apply
    std::uint64_t revisions_published = 0;
    std::uint64_t entries_written = 0;  // sets and deletes published
    std::uint64_t watch_overflows = 0;  // inotify queue overflows (every file is re-read)

    std::uint64_t errors() const noexcept {
        return syntax_errors + conversion_errors + missing_files + read_errors + refused_values +
               publish_errors;
    }
};

struct EntryKey {
    Namespace ns = Namespace::config;
    std::string key;
    auto operator<=>(const EntryKey&) const = default;
};

// Entries by key: the JSON text of each.
using EntryMap = std::map<EntryKey, std::string>;

struct Refusal {
    EntryKey key;
    std::string reason;
    std::string_view kind;  // key, too_large, schema (a fixed word: a metric's label)
};

struct Plan {
    std::vector<Change> changes;   // sets and deletes, in key order
    std::vector<Refusal> refused;  // keys left as they are published (or absent)
};

// The changes that turn `published` into `wanted`, leaving out what the segment would
// refuse (an empty or too long key, a value over `max_value_bytes`) and values that break
// their key's JSON Schema in `schemas`: a refused key keeps its published value, so a bad
// edit never deletes a good value.
[[nodiscard]] Plan plan_changes(const EntryMap& published, const EntryMap& wanted,
                                std::uint64_t max_value_bytes,
                                const ValueSchemas& schemas = ValueSchemas());

class FileSource {
  public:
    explicit FileSource(const Options& options);

    const std::vector<SourceFile>& files() const noexcept { return files_; }

    // Reads file `index` again. On failure logs the file and the line and column (or the
    // key) and keeps the last good content. Returns whether the read succeeded.
    bool reload(std::size_t index);

    // The entries all files describe now.
    [[nodiscard]] EntryMap entries() const;

    // Every file was read successfully the last time.
    bool healthy() const noexcept;

    FileSourceStats& stats() noexcept { return stats_; }
    const FileSourceStats& stats() const noexcept { return stats_; }

  private:
    std::vector<SourceFile> files_;
    FileSourceStats stats_;
};

}  // namespace yuxi::config::agent
