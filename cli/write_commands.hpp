// The commands that write or read PostgreSQL's configuration tables and change log: set,
// delete, rollback, history, log and wait. Each is a thin caller of the admin library
// (include/yuxi/config/admin.hpp), which holds the one implementation of every write.
#pragma once

#include "cli/admin_support.hpp"
#include "cli/requests.hpp"

namespace yuxi::config::cli {

Exit run(const SetRequest& r, Io io);
Exit run(const DeleteRequest& r, Io io);
Exit run(const RollbackRequest& r, Io io);
Exit run(const HistoryRequest& r, Io io);
Exit run(const LogRequest& r, Io io);
Exit run(const WaitRequest& r, Io io);
// value-schema set|get|list|delete|import (value_schema_command.cpp).
Exit run(const ValueSchemaRequest& r, Io io);

}  // namespace yuxi::config::cli
