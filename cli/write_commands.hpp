// The commands that write or read PostgreSQL's configuration tables and change log: set,
// delete, rollback, history and log. Each write is one transaction that first takes the
// log's advisory lock (deploy/sql/002), so that what it checks (--if-revision, the current
// value) cannot change before it commits; the triggers log it and wake the agents.
#pragma once

#include <iosfwd>

#include "cli/command_line.hpp"

namespace yuxi::config::cli {

Exit run_write_command(const CommandLine& cl, std::ostream& out, std::ostream& err);

}  // namespace yuxi::config::cli
