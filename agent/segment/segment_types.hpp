// What the segment writers take and give: changes, options, results, errors.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/change.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent {

// The writer takes the sources' changes (core/change.hpp).
using Change = yuxi::config::Change;

struct WriterOptions {
    std::string name = "yuxi-config";
    std::uint64_t max_value_bytes = 64ULL << 20;  // larger values are refused
    std::uint64_t min_arena_bytes = 8ULL << 20;   // sparse on tmpfs: costs only what is used
    std::uint64_t min_slots = 1024;
    // The source state the first segment is published with, so that readers never see
    // a fully loaded segment still marked `starting`.
    SourceState initial_state = SourceState::starting;
    // The segment layout to write: layout::kVersion, or 1 for clients built against the
    // previous release's header (for one release; layout 1 compacts in the foreground).
    std::uint32_t layout = layout::kVersion;
};

// A change the writer refused; the rest of its batch was applied.
struct Rejected {
    std::string key;
    std::string reason;
};

struct ApplyResult {
    std::uint64_t applied = 0;  // entries written
    std::vector<Rejected> rejected;
    bool compacted = false;  // the batch went into a new, compacted segment
};

// Another agent holds the segment, or the segment cannot be created.
class WriterError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

}  // namespace yuxi::config::agent
