// `schema apply` and `schema status`: the SQL migrations of deploy/sql, versioned in the
// table yuxi_config_schema, applied in order, each in one transaction, under a session
// advisory lock so that concurrent runs (two pods starting) apply each migration once.
#pragma once

#include "cli/admin_support.hpp"

namespace yuxi::config::cli {

Exit run(const SchemaRequest& r, Io io);

}  // namespace yuxi::config::cli
