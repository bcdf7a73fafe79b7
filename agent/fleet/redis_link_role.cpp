// RedisLink's failover support: the ROLE check after connecting, and moving to another
// server (redis_link.hpp).
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "agent/fleet/redis_link.hpp"
#include "lock/sentinel.hpp"

namespace yuxi::config::agent {

void RedisLink::role_checked(Reply r) {
    if (r == nullptr) {
        return;  // lost: lost() runs from the disconnect callback
    }
    if (detail::decode_role_is_master(r)) {
        became_up();
        return;
    }
    // Once per outage, as the link's other refusals: it retries with backoff, and the
    // Sentinel watch retargets it when the Sentinels name the new primary.
    spdlog::log(failed_once_ ? spdlog::level::debug : spdlog::level::warn,
                "{}: {}:{} is not the primary (a replica, or a failover under way); "
                "not writing to it",
                options_.name, options_.host, options_.port);
    failed_once_ = true;
    if (context_ != nullptr) {
        redisAsyncDisconnect(context_);
    }
}

void RedisLink::retarget(std::string host, std::uint16_t port) {
    if (host == options_.host && port == options_.port && context_ != nullptr) {
        return;
    }
    if (options_.host.empty()) {
        spdlog::debug("{}: Redis at {}:{}", options_.name, host, port);  // the first address
    } else {
        spdlog::info("{}: moving to Redis at {}:{} (was {}:{})", options_.name, host, port,
                     options_.host, options_.port);
    }
    options_.host = std::move(host);
    options_.port = port;
    if (stopping_ || !reconnect_timer_) {
        return;  // not started: start() connects to the new address
    }
    const bool was_up = up_;
    if (context_ != nullptr) {
        redisAsyncContext* c = context_;
        context_ = nullptr;
        c->data = nullptr;  // our disconnect callback ignores this context
        redisAsyncFree(c);  // pending callbacks run with nullptr now
    }
    event_del(reconnect_timer_.get());
    up_ = false;
    connected_ = false;
    pending_ = 0;
    backoff_.reset();
    failed_once_ = false;
    if (was_up && hooks_.on_down) {
        hooks_.on_down();
    }
    connect();
}

}  // namespace yuxi::config::agent
