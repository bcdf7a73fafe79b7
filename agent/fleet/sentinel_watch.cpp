// Following a Redis primary through its Sentinels (sentinel_watch.hpp).
#include "agent/fleet/sentinel_watch.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "agent/ops/rejections.hpp"
#include "lock/sentinel.hpp"

namespace yuxi::config::agent {
namespace {

std::string shown(const HostPort& hp) {
    return hp.host + ":" + std::to_string(hp.port);
}

}  // namespace

SentinelWatch::SentinelWatch(SentinelWatchOptions options, event_base* base, OnPrimary on_primary)
    : options_(std::move(options)), base_(base), on_primary_(std::move(on_primary)) {}

SentinelWatch::~SentinelWatch() {
    stop();
}

std::string SentinelWatch::sentinel() const {
    return options_.sentinels.empty() ? std::string() : shown(options_.sentinels[index_]);
}

void SentinelWatch::start() {
    timer_.reset(event_new(base_, -1, EV_PERSIST, &SentinelWatch::on_timer, this));
    const timeval every = to_timeval(options_.reask);
    if (!timer_ || event_add(timer_.get(), &every) != 0) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: Sentinel timer");
    }
    last_answer_ = std::chrono::steady_clock::now();
    open(0);
}

void SentinelWatch::stop() noexcept {
    timer_.reset();
    if (command_) {
        command_->stop();
    }
    if (events_) {
        events_->stop();
    }
}

void SentinelWatch::open(std::size_t index) {
    if (command_) {
        command_->stop();
    }
    if (events_) {
        events_->stop();
    }
    index_ = index % options_.sentinels.size();
    asking_ = false;
    RedisLinkOptions l;
    l.host = options_.sentinels[index_].host;
    l.port = options_.sentinels[index_].port;
    l.password = options_.password;
    l.username = options_.username;
    l.deadline = options_.deadline;
    l.backoff_cap = options_.deadline;
    l.name = "sentinel";
    command_ = std::make_unique<RedisLink>(l, base_,
                                           RedisLink::Hooks{[this] { ask(); }, nullptr, nullptr});
    l.name = "sentinel-events";
    l.subscribe_channel = std::string(detail::kSwitchMasterChannel);
    events_ = std::make_unique<RedisLink>(
        l, base_,
        RedisLink::Hooks{[this] { ask(); }, nullptr, [this](std::string_view m) { announced(m); }});
    command_->start();
    events_->start();
}

void SentinelWatch::on_timer(evutil_socket_t, short, void* self) {
    guarded("sentinel", [&] {
        auto& me = *static_cast<SentinelWatch*>(self);
        const auto silent = std::chrono::steady_clock::now() - me.last_answer_;
        if (!me.move_reason_.empty() && me.options_.sentinels.size() > 1) {
            me.move_on(std::exchange(me.move_reason_, {}));
            return;
        }
        if (silent > me.options_.deadline && me.options_.sentinels.size() > 1) {
            me.move_on("no answer within " + std::to_string(me.options_.deadline.count()) + " ms");
            return;
        }
        me.ask();
    });
}

void SentinelWatch::ask() {
    if (asking_ || !command_ || !command_->up()) {
        return;
    }
    asking_ = command_->command({"SENTINEL", "get-master-addr-by-name", options_.master},
                                [this](const redisReply* r) {
                                    asking_ = false;
                                    answered(r);
                                });
}

void SentinelWatch::answered(const redisReply* r) {
    if (r == nullptr) {
        return;  // the link is down; the timer moves on if it stays down
    }
    auto primary = detail::decode_master_addr(r);
    if (!primary) {
        if (options_.sentinels.size() > 1) {
            // Not from inside the link's own callback: the timer moves on.
            move_reason_ = r->type == REDIS_REPLY_NIL
                               ? "it does not know master '" + options_.master + "'"
                               : "its answer is not an address";
        } else {
            spdlog::warn("sentinel {}: no address for master '{}'", sentinel(), options_.master);
        }
        return;
    }
    last_answer_ = std::chrono::steady_clock::now();
    adopt(std::move(*primary), "asked");
}

void SentinelWatch::announced(std::string_view message) {
    if (auto primary = detail::decode_switch_master(message, options_.master)) {
        last_answer_ = std::chrono::steady_clock::now();
        adopt(std::move(*primary), "+switch-master");
    }
}

void SentinelWatch::adopt(HostPort primary, std::string_view how) {
    if (primary_ && *primary_ == primary) {
        return;
    }
    if (primary_) {
        ++stats_.switches;
        spdlog::warn("sentinel {}: the primary of '{}' moved from {} to {} ({})", sentinel(),
                     options_.master, shown(*primary_), shown(primary), how);
    } else {
        spdlog::info("sentinel {}: the primary of '{}' is {}", sentinel(), options_.master,
                     shown(primary));
    }
    primary_ = primary;
    if (on_primary_) {
        on_primary_(*primary_);
    }
}

void SentinelWatch::move_on(std::string_view why) {
    const std::string from = sentinel();
    ++stats_.sentinel_moves;
    last_answer_ = std::chrono::steady_clock::now();
    open(index_ + 1);
    spdlog::warn("sentinel {}: {}; asking {} instead", from, why, sentinel());
}

}  // namespace yuxi::config::agent
