// migrate (file mode's files → PostgreSQL, Yuxi-Know's migrate_config_to_db.py) and export
// (PostgreSQL → files, for going back to file mode). Both use the agent's TOML/JSON
// conversion (core/toml_json.hpp), so the database holds exactly the entries file mode
// publishes, and the exported files publish exactly the database's entries.
#pragma once

#include "cli/admin_support.hpp"

namespace yuxi::config::cli {

Exit run(const MigrateRequest& r, Io io);
Exit run(const ExportRequest& r, Io io);

}  // namespace yuxi::config::cli
