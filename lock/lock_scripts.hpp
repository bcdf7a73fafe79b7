// The lock's Lua scripts and key names, shared by DistributedLock and the agent's relay
// lease, which runs the same protocol on its event loop.
#pragma once

#include <string_view>

namespace yuxi::config::detail {

// KEYS[1] lock, KEYS[2] fence counter; ARGV[1] token, ARGV[2] TTL in ms. Returns the
// fencing token, or 0 if the lock is held. The counter is raised to the server's clock
// in microseconds so that it stays above every token issued before a restart that lost
// it; replicate_commands() lets TIME precede writes on Redis 3.2-4 (a no-op from 5 on,
// deprecated in 7, hence the guard).
inline constexpr std::string_view kAcquireScript = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local n = redis.call('INCR', KEYS[2])
  local t = redis.call('TIME')
  local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if n < floor then
    n = floor
    redis.call('SET', KEYS[2], string.format('%.0f', n))
  end
  return n
end
return 0
)lua";

// KEYS[1] lock; ARGV[1] token. 1: deleted; 0: the key is gone; -1: another token holds it.
inline constexpr std::string_view kReleaseScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('DEL', KEYS[1]) end
if v then return -1 end
return 0
)lua";

// KEYS[1] lock; ARGV[1] token, ARGV[2] TTL in ms. 1: extended; 0: gone; -1: taken.
inline constexpr std::string_view kRenewScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if v then return -1 end
return 0
)lua";

inline constexpr std::string_view kKeyPrefix = "yuxi:lock:";  // core/redis_keys.hpp agrees
inline constexpr std::string_view kFenceSuffix = ":fence";

}  // namespace yuxi::config::detail
