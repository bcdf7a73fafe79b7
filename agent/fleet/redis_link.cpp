// hiredis's async API on libevent, with reconnects and deadlines.
#include "agent/fleet/redis_link.hpp"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <system_error>

#include "agent/ops/rejections.hpp"
#include "core/event_loop.hpp"

namespace yuxi::config::agent {
namespace {

std::string reply_error(const redisReply* r) {
    if (r == nullptr) {
        return "connection lost";
    }
    if (r->type == REDIS_REPLY_ERROR) {
        return std::string(r->str, r->len);
    }
    return {};
}

}  // namespace

// What a command's privdata carries: the link and the callback.
struct RedisLink::Pending {
    RedisLink* link;
    Callback done;
};

void RedisLink::ContextFree::operator()(redisAsyncContext* c) const noexcept {
    redisAsyncFree(c);
}

RedisLink::RedisLink(RedisLinkOptions options, event_base* base, Hooks hooks)
    : options_(std::move(options)),
      base_(base),
      hooks_(std::move(hooks)),
      backoff_(options_.backoff_base, options_.backoff_cap) {}

RedisLink::~RedisLink() {
    stop();
}

void RedisLink::start() {
    stopping_ = false;
    reconnect_timer_.reset(evtimer_new(base_, &RedisLink::on_timer, this));
    watchdog_.reset(event_new(base_, -1, EV_PERSIST, &RedisLink::on_watchdog, this));
    const timeval second{0, 250000};
    if (!reconnect_timer_ || !watchdog_ || event_add(watchdog_.get(), &second) != 0) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: Redis timers");
    }
    connect();
}

void RedisLink::stop() noexcept {
    stopping_ = true;
    reconnect_timer_.reset();
    watchdog_.reset();
    up_ = false;
    if (context_ != nullptr) {
        redisAsyncContext* c = context_;
        context_ = nullptr;
        c->data = nullptr;
        // Runs the pending callbacks with nullptr; they see stopping_ and return.
        redisAsyncFree(c);
    }
}

void RedisLink::connect() {
    connected_ = false;
    up_ = false;
    connect_started_ = std::chrono::steady_clock::now();
    context_ = redisAsyncConnect(options_.host.c_str(), options_.port);
    if (context_ == nullptr || context_->err != 0) {
        const std::string why = context_ != nullptr ? context_->errstr : "out of memory";
        if (context_ != nullptr) {
            redisAsyncFree(context_);
            context_ = nullptr;
        }
        lost("cannot connect: " + why);
        return;
    }
    context_->data = this;
    redisLibeventAttach(context_, base_);
    redisAsyncSetConnectCallback(context_, &RedisLink::on_connect);
    redisAsyncSetDisconnectCallback(context_, &RedisLink::on_disconnect);
}

void RedisLink::on_connect(const redisAsyncContext* c, int status) {
    guarded("redis", [&] {
        auto* me = static_cast<RedisLink*>(c->data);
        if (me == nullptr || me->stopping_) {
            return;
        }
        if (status != REDIS_OK) {
            // hiredis frees the context after this callback.
            me->context_ = nullptr;
            me->lost(std::string("cannot connect: ") + c->errstr);
            return;
        }
        me->connected_ = true;
        redisEnableKeepAlive(&me->context_->c);
        me->handshake();
    });
}

void RedisLink::on_disconnect(const redisAsyncContext* c, int status) {
    guarded("redis", [&] {
        auto* me = static_cast<RedisLink*>(c->data);
        if (me == nullptr || me->stopping_) {
            return;
        }
        me->context_ = nullptr;  // freed by hiredis after this callback
        me->lost(status == REDIS_OK ? "connection closed"
                                    : std::string("connection lost: ") + c->errstr);
    });
}

void RedisLink::handshake() {
    // AUTH, SELECT and SUBSCRIBE are pipelined; the first error drops the connection.
    auto step = [this](const char* what) {
        return [this, what](Reply r) {
            if (r == nullptr) {
                return;  // lost: lost() runs from the disconnect callback
            }
            if (const std::string e = reply_error(r); !e.empty()) {
                // Never the password: only what the server answered to the step.
                // Once per outage: the link retries with backoff.
                spdlog::log(failed_once_ ? spdlog::level::debug : spdlog::level::err,
                            "{}: Redis at {}:{} refused {}: {}", options_.name, options_.host,
                            options_.port, what, e);
                failed_once_ = true;
                if (context_ != nullptr) {
                    redisAsyncDisconnect(context_);
                }
            }
        };
    };
    if (!options_.password.empty()) {
        if (options_.username.empty()) {
            (void)send({"AUTH", options_.password}, step("AUTH (check REDIS_PASSWORD)"));
        } else {
            (void)send({"AUTH", options_.username, options_.password},
                       step("AUTH (check REDIS_USERNAME and REDIS_PASSWORD)"));
        }
    }
    if (options_.db != 0) {
        (void)send({"SELECT", std::to_string(options_.db)}, step("SELECT (check REDIS_DB)"));
    }
    if (options_.subscribe_channel.empty() && options_.require_primary) {
        (void)send({"ROLE"}, [this](Reply r) { role_checked(r); });
        return;
    }
    if (options_.subscribe_channel.empty()) {
        (void)send({"PING"}, [this](Reply r) {
            if (r != nullptr && reply_error(r).empty()) {
                became_up();
            }
        });
        return;
    }
    const std::string command = "SUBSCRIBE " + options_.subscribe_channel;
    redisAsyncCommand(context_, &RedisLink::on_subscribed, this, command.c_str());
}

void RedisLink::on_subscribed(redisAsyncContext* c, void* reply, void* privdata) {
    guarded("redis", [&] {
        auto* me = static_cast<RedisLink*>(privdata);
        const auto* r = static_cast<const redisReply*>(reply);
        if (c->data == nullptr || me->stopping_ || r == nullptr || r->type != REDIS_REPLY_ARRAY ||
            r->elements < 3) {
            return;
        }
        const redisReply* kind = r->element[0];
        if (kind == nullptr || kind->str == nullptr ||
            (kind->type != REDIS_REPLY_STRING && kind->type != REDIS_REPLY_STATUS)) {
            return;
        }
        const std::string_view k(kind->str, kind->len);
        if (k == "subscribe") {
            me->became_up();
        } else if (k == "message" && r->element[2] != nullptr &&
                   r->element[2]->type == REDIS_REPLY_STRING) {
            me->progress_ = std::chrono::steady_clock::now();
            if (me->hooks_.on_message) {
                me->hooks_.on_message(std::string_view(r->element[2]->str, r->element[2]->len));
            }
        }
    });
}

void RedisLink::became_up() {
    if (up_) {
        return;
    }
    up_ = true;
    failed_once_ = false;
    backoff_.reset();
    ++stats_.connects;
    spdlog::info("{}: connected to Redis at {}:{}{}", options_.name, options_.host, options_.port,
                 options_.subscribe_channel.empty()
                     ? ""
                     : " (subscribed to " + options_.subscribe_channel + ")");
    if (hooks_.on_up) {
        hooks_.on_up();
    }
}

void RedisLink::lost(std::string_view why) {
    const bool was_up = up_;
    up_ = false;
    connected_ = false;
    pending_ = 0;
    ++stats_.errors;
    const Backoff::Duration delay = backoff_.next();
    // One warning per outage; the retries of an outage go to debug.
    if (was_up) {
        failed_once_ = false;
    }
    if (!failed_once_) {
        spdlog::warn("{}: Redis at {}:{}: {}; retrying with backoff", options_.name, options_.host,
                     options_.port, why);
    } else {
        spdlog::debug("{}: Redis at {}:{}: {}", options_.name, options_.host, options_.port, why);
    }
    failed_once_ = true;
    if (reconnect_timer_) {
        const timeval tv = to_timeval(delay);
        event_add(reconnect_timer_.get(), &tv);
    }
    if (was_up && hooks_.on_down) {
        hooks_.on_down();
    }
}

void RedisLink::on_timer(evutil_socket_t, short, void* self) {
    guarded("redis", [&] {
        auto& me = *static_cast<RedisLink*>(self);
        ++me.stats_.reconnects;
        me.connect();
    });
}

void RedisLink::on_watchdog(evutil_socket_t, short, void* self) {
    guarded("redis", [&] {
        auto& me = *static_cast<RedisLink*>(self);
        if (me.context_ == nullptr) {
            return;
        }
        const auto now = std::chrono::steady_clock::now();
        const bool connect_late =
            !me.connected_ && now - me.connect_started_ > me.options_.deadline;
        const bool reply_late = me.pending_ > 0 && now - me.progress_ > me.options_.deadline;
        if (!connect_late && !reply_late) {
            return;
        }
        redisAsyncContext* c = me.context_;
        me.context_ = nullptr;
        c->data = nullptr;  // our disconnect callback ignores this context
        const bool was_connected = me.connected_;
        // Pending callbacks run with nullptr now; lost() below reports the outage once.
        redisAsyncFree(c);
        me.lost(was_connected ? "no answer within the deadline" : "connect timed out");
    });
}

bool RedisLink::command(std::vector<std::string> argv, Callback done) {
    if (!up_) {
        return false;
    }
    return send(std::move(argv), std::move(done));
}

bool RedisLink::send(std::vector<std::string> argv, Callback done) {
    if (context_ == nullptr) {
        return false;
    }
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const std::string& a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* pending = new Pending{this, std::move(done)};
    if (redisAsyncCommandArgv(context_, &RedisLink::on_reply, pending,
                              static_cast<int>(args.size()), args.data(),
                              lens.data()) != REDIS_OK) {
        delete pending;
        return false;
    }
    if (pending_++ == 0) {
        progress_ = std::chrono::steady_clock::now();
    }
    return true;
}

void RedisLink::on_reply(redisAsyncContext* c, void* reply, void* privdata) {
    guarded("redis", [&] {
        std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
        RedisLink& me = *pending->link;
        if (me.stopping_) {
            return;
        }
        if (c->data != nullptr && me.pending_ > 0) {
            --me.pending_;
            me.progress_ = std::chrono::steady_clock::now();
        }
        if (pending->done) {
            pending->done(static_cast<const redisReply*>(reply));
        }
    });
}

}  // namespace yuxi::config::agent
