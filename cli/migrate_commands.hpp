// migrate (file mode's files → PostgreSQL, Yuxi-Know's migrate_config_to_db.py) and export
// (PostgreSQL → files, for going back to file mode). Both use the agent's TOML/JSON
// conversion (agent/toml_json.hpp), so the database holds exactly the entries file mode
// publishes, and the exported files publish exactly the database's entries.
#pragma once

#include <iosfwd>

#include "cli/command_line.hpp"

namespace yuxi::config::cli {

Exit run_migrate(const CommandLine& cl, std::ostream& out, std::ostream& err);
Exit run_export(const CommandLine& cl, std::ostream& out, std::ostream& err);

}  // namespace yuxi::config::cli
