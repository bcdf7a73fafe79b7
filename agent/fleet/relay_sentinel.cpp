// The relay on a Sentinel-managed Redis: its links go where the Sentinels say the primary
// is, and move with it (relay.hpp, sentinel_watch.hpp).
#include <spdlog/spdlog.h>

#include "agent/fleet/relay.hpp"

namespace yuxi::config::agent {

std::string Relay::redis_serving() const {
    if (!primary_ || primary_->options().host.empty()) {
        return {};
    }
    return primary_->options().host + ":" + std::to_string(primary_->options().port);
}

bool Relay::start_sentinel() {
    if (options_.redis.sentinels.empty()) {
        return false;
    }
    SentinelWatchOptions w;
    w.sentinels = options_.redis.sentinels;
    w.master = options_.redis.sentinel_master;
    w.username = options_.redis.sentinel_username;
    w.password = options_.redis.sentinel_password;
    sentinel_ = std::make_unique<SentinelWatch>(std::move(w), base_,
                                                [this](const HostPort& p) { sentinel_primary(p); });
    spdlog::info("Redis: asking {} Sentinel(s) for the primary of '{}'",
                 options_.redis.sentinels.size(), options_.redis.sentinel_master);
    sentinel_->start();
    return true;
}

void Relay::sentinel_primary(const HostPort& primary) {
    // Followers read the primary too: with Sentinel there is no fixed replica address.
    // A link that is not running only takes the address, for when it starts.
    primary_->retarget(primary.host, primary.port);
    if (subscriber_) {
        subscriber_->retarget(primary.host, primary.port);
    }
    if (!links_started_) {
        links_started_ = true;
        primary_->start();
        if (subscriber_) {
            subscriber_->start();
        }
    }
}

}  // namespace yuxi::config::agent
