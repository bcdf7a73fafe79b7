// Redis Sentinel discovery, shared by the lock's synchronous connection and the agent's
// asynchronous links: hiredis has no Sentinel support of its own.
//
// Protocol (the Sentinel documentation's client guidelines). Ask the Sentinels in order
// `SENTINEL get-master-addr-by-name <master>`; the first that answers with an address
// wins. A Sentinel that cannot be reached, refuses, or does not know the master is skipped.
// After connecting to the address, check `ROLE`: a Sentinel may be out of date (it was
// partitioned, or a failover is under way), and a client that writes to a replica writes
// nothing that lasts. Only a server whose ROLE says "master" is used; anything else is a
// failed connection, retried from discovery. Failovers are followed by the Sentinels'
// pub/sub (`+switch-master <master> <old ip> <old port> <new ip> <new port>`), by READONLY
// errors, and by any lost connection, all of which lead back to discovery.
//
// The functions here are pure (replies in, values out) or synchronous (discover());
// none keeps state. Passwords never appear in what they return or throw.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/host_port.hpp"
#include "yuxi/config/lock.hpp"

namespace yuxi::config::detail {

inline constexpr std::uint16_t kDefaultSentinelPort = 26379;
inline constexpr std::string_view kSwitchMasterChannel = "+switch-master";

// "h1:p1,h2:p2,..." (port 26379 by default). Throws std::invalid_argument naming the bad
// item; an empty list is an empty vector.
std::vector<HostPort> parse_sentinel_list(std::string_view text);

// The reply to SENTINEL get-master-addr-by-name: [ip, port], or nothing (nil: the
// master is unknown to this Sentinel; anything else is malformed).
std::optional<HostPort> decode_master_addr(const redisReply* reply);

// Whether a ROLE reply says "master".
bool decode_role_is_master(const redisReply* reply);

// A +switch-master message "<master> <old-ip> <old-port> <new-ip> <new-port>" for
// `master`: the new address, or nothing (another master's, or malformed).
std::optional<HostPort> decode_switch_master(std::string_view message, std::string_view master);

// The Sentinel settings of an endpoint, checked: its list parsed. Throws
// std::invalid_argument as parse_sentinel_list.
std::vector<HostPort> sentinels_of(const RedisEndpoint& endpoint);

// Asks the Sentinels in order, starting at `first` (wrapping), for the primary's address.
// Each try is bounded by the endpoint's connect and command timeouts. Returns the address
// and, in `answered`, the index of the Sentinel that gave it. Throws LockError connect
// listing why each Sentinel failed (never a password), or auth if one refused the
// Sentinel credentials and none answered.
HostPort discover_primary(const RedisEndpoint& endpoint, std::size_t first = 0,
                          std::size_t* answered = nullptr);

}  // namespace yuxi::config::detail
