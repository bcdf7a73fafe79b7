// The Redis side of yuxi-configctl: `lock NAME -- CMD` (DistributedLock), `keygen` and `agents`,
// the fleet's reports in the hash yuxi:config:agents (read through the admin library's Fleet; the
// report's contract is core/agent_report.hpp). An agent is live while its heartbeat is younger than
// --stale-after (default 10 s).
#pragma once

#include "cli/admin_support.hpp"
#include "cli/requests.hpp"

namespace yuxi::config::cli {

Exit run(const LockRequest& r, Io io);
Exit run(const AgentsRequest& r, Io io);
// keygen: a new signing key for the fleet (base64) on the output.
Exit run(const KeygenRequest& r, Io io);

}  // namespace yuxi::config::cli
