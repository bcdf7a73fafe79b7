// The names of everything yuxi-config keeps in Redis (docs/design.md, "Redis").
#pragma once

#include <string_view>

namespace yuxi::config {

// The relay lease (the distributed lock's protocol) and its fencing counter.
inline constexpr std::string_view kRelayLeaseKey = "yuxi:config:relay";
inline constexpr std::string_view kRelayFenceKey = "yuxi:config:relay:fence";
// Batches on pub/sub, and the same documents in a stream (ID <revision>-0, field "d").
inline constexpr std::string_view kChangesChannel = "yuxi:config:changes";
inline constexpr std::string_view kLogStream = "yuxi:config:log";
inline constexpr std::string_view kLogStreamField = "d";
// The L2 snapshot.
inline constexpr std::string_view kSnapshotKey = "yuxi:config:snapshot";
// Every agent's report (field: the pod name), read by `agents` and `--wait-all`.
inline constexpr std::string_view kAgentsHash = "yuxi:config:agents";
// Distributed locks: yuxi:lock:<name>.
inline constexpr std::string_view kLockPrefix = "yuxi:lock:";

}  // namespace yuxi::config
