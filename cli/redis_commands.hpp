// The Redis side of yuxi-configctl: `lock NAME -- CMD` (DistributedLock), `agents`, and
// --wait-all, which read the agents' reports in the hash yuxi:config:agents.
//
// The hash's contract (docs/design.md, "Redis"; each agent writes its own field every second and
// deletes it on a clean stop): field = pod name, value =
//   {"v":1,"revision":R,"heartbeat_ms":<unix epoch ms>,"segment":"yuxi-config",
//    "role":"relay"|"follower"|"direct","state":"ok"|"stale"|"degraded"|"starting"}
// An agent is live while its heartbeat is younger than --stale-after (default 10 s).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "cli/command_line.hpp"

namespace yuxi::config::cli {

Exit run_lock(const CommandLine& cl, std::ostream& out, std::ostream& err);
// keygen: a new signing key on `out`.
Exit run_keygen(std::ostream& out);

Exit run_agents(const CommandLine& cl, std::ostream& out, std::ostream& err);

// --wait-all: polls the hash until every live agent has applied `revision`, or `timeout`
// passes (then lists the agents behind, and returns Exit::timeout). No live agent: says so
// and returns Exit::ok.
Exit wait_for_all_agents(const CommandLine& cl, std::uint64_t revision,
                         std::chrono::duration<double> timeout, std::ostream& err);

// Checks that Redis answers, before a write that will --wait-all on it, so that an
// unreachable Redis fails the command with nothing changed.
void check_redis(const CommandLine& cl);

}  // namespace yuxi::config::cli
