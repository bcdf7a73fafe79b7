// The report each agent keeps in the hash `yuxi:config:agents` (field: its pod name):
//   {"v":1,"revision":R,"heartbeat_ms":T,"segment":S,"role":"relay"|...,"state":"ok"|...,
//    "rejected":[{"revision":R,"namespace":"config","key":K,"reason":W}],"rejected_keys":N}
// ("rejected" and "rejected_keys" only while the agent refuses values: the keys that keep
// a last good value instead of the database's, newest first, at most kMaxReportedRejections)
// written by the agent every second and on every new revision, read by `yuxi-configctl
// agents` and `--wait-all`, and by the relay to prune agents gone silent. One type and
// one decoder for all of them, so that they never disagree on what a report is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/decoded.hpp"

namespace yuxi::config {

inline constexpr std::size_t kMaxAgentReportBytes = 16384;
inline constexpr std::size_t kMaxReportedRejections = 8;
inline constexpr std::size_t kMaxRejectionKeyBytes = 255;
inline constexpr std::size_t kMaxRejectionReasonBytes = 300;
inline constexpr std::size_t kMaxPodNameBytes = 253;  // a Kubernetes object name

// A value the agent refused (its key keeps its last good value): when, which, and why.
struct ValueRejection {
    std::uint64_t revision = 0;
    std::string ns;  // "config" or "metadata"
    std::string key;
    std::string reason;
};

struct AgentReport {
    std::uint64_t revision = 0;
    std::uint64_t heartbeat_ms = 0;  // CLOCK_REALTIME, milliseconds
    std::string segment;
    std::string role;                      // relay, follower, direct
    std::string state;                     // the segment's source state
    std::vector<ValueRejection> rejected;  // at most kMaxReportedRejections
    std::uint64_t rejected_keys = 0;       // all of them, listed or not
};

std::string encode_agent_report(const AgentReport& report);
Decoded<AgentReport> decode_agent_report(std::string_view text);

// A pod name (the hash's field) as it may be shown on a terminal: 1 to 253 bytes of
// printable ASCII; anything else is refused, since it could carry terminal escapes.
Decoded<std::string> decode_pod_name(std::string_view field);

}  // namespace yuxi::config
