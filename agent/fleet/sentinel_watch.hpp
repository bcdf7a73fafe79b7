// Follows a Redis primary through its Sentinels, on the loop (lock/sentinel.hpp has the
// protocol; this is its asynchronous side).
//
// The watch keeps two links to one Sentinel at a time: one subscribed to +switch-master,
// which announces a failover the moment the Sentinels finish it, and one that asks
// `SENTINEL get-master-addr-by-name` at start, on every reconnect and every `reask`
// (pub/sub loses what is published while a link is away, so the question is the safety
// net). A Sentinel whose links stay down past `deadline`, or that does not know the
// master, is left for the next one in the list. Whenever the answer differs from the last
// one, on_primary runs with the new address; the links that use it retarget, and their
// ROLE check refuses a server that is not the primary yet.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/fleet/redis_link.hpp"
#include "core/event_loop.hpp"
#include "core/host_port.hpp"

namespace yuxi::config::agent {

struct SentinelWatchOptions {
    std::vector<HostPort> sentinels;
    std::string master;
    std::string username;
    std::string password;  // never logged
    std::chrono::milliseconds reask{1000};
    std::chrono::milliseconds deadline{2000};
};

struct SentinelWatchStats {
    std::uint64_t switches = 0;        // primary address changes seen (after the first)
    std::uint64_t sentinel_moves = 0;  // times the watch moved to another Sentinel
};

class SentinelWatch {
  public:
    using OnPrimary = std::function<void(const HostPort&)>;

    // Registers nothing yet; `base` must outlive this object.
    SentinelWatch(SentinelWatchOptions options, event_base* base, OnPrimary on_primary);
    ~SentinelWatch();
    SentinelWatch(const SentinelWatch&) = delete;
    SentinelWatch& operator=(const SentinelWatch&) = delete;

    // Throws std::system_error if libevent cannot create its timer.
    void start();
    void stop() noexcept;

    // The primary the Sentinels named last; nothing before the first answer.
    const std::optional<HostPort>& primary() const noexcept { return primary_; }
    // The Sentinel asked now ("host:port").
    std::string sentinel() const;
    const SentinelWatchStats& stats() const noexcept { return stats_; }

  private:
    static void on_timer(evutil_socket_t, short, void* self);
    void open(std::size_t index);
    void ask();
    void answered(const redisReply* reply);
    void announced(std::string_view message);
    void adopt(HostPort primary, std::string_view how);
    void move_on(std::string_view why);

    SentinelWatchOptions options_;
    event_base* base_;
    OnPrimary on_primary_;
    std::size_t index_ = 0;
    std::unique_ptr<RedisLink> command_;
    std::unique_ptr<RedisLink> events_;
    EventPtr timer_;
    std::optional<HostPort> primary_;
    bool asking_ = false;
    std::string move_reason_;  // set from a link's callback; the timer moves on
    std::chrono::steady_clock::time_point last_answer_{};
    SentinelWatchStats stats_;
};

}  // namespace yuxi::config::agent
