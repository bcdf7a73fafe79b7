// The read commands of yuxi-configctl: get, list, dump, watch, status and health. They use
// only the public client headers (include/yuxi/config/), as any reader would.
#pragma once

#include <iosfwd>

#include "cli/command_line.hpp"

namespace yuxi::config {
class Client;
}

namespace yuxi::config::cli {

// Runs the read command `cl.command` on `client`, printing results to `out` and
// explanations to `err`. Throws UsageError for a bad option value.
Exit run_read_command(const Client& client, const CommandLine& cl, std::ostream& out,
                      std::ostream& err);

}  // namespace yuxi::config::cli
