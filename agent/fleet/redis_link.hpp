// One Redis connection on the agent's libevent loop: hiredis's asynchronous API and its
// libevent adapter. The only file of the agent that includes hiredis's async headers.
//
// The link connects (AUTH and SELECT when configured), runs commands with callbacks,
// and, for a subscriber link, subscribes to one channel. It reconnects by itself after
// any failure, with exponential backoff and jitter (backoff.hpp), and says so through
// on_up / on_down. A connect or a command that gets no answer within the deadline counts
// as a lost connection: hiredis 0.14 has no timeouts of its own, so the link keeps them.
//
// Every callback runs on the loop. A command's callback runs exactly once: with the reply,
// or with nullptr when the connection was lost before it came (never after stop()).
// Passwords are never logged.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/backoff.hpp"
#include "core/event_loop.hpp"

struct redisAsyncContext;
struct redisReply;

namespace yuxi::config::agent {

struct RedisLinkOptions {
    std::string name;  // for logs: "redis", "redis-subscriber", ...
    std::string host;
    std::uint16_t port = 6379;
    std::string username;  // Redis 6 ACL user; empty: AUTH with the password alone
    std::string password;  // empty: no AUTH
    std::uint32_t db = 0;
    std::string subscribe_channel;  // non-empty: a subscriber link (no other commands)
    std::chrono::milliseconds deadline{3000};
    Backoff::Duration backoff_base = std::chrono::milliseconds(100);
    Backoff::Duration backoff_cap = std::chrono::seconds(5);
    // Up only once ROLE says "master" (Sentinel: the address may be out of date, and a
    // replica must never be written to); otherwise the connection is dropped and retried.
    bool require_primary = false;
};

struct RedisLinkStats {
    std::uint64_t connects = 0;
    std::uint64_t reconnects = 0;  // connection attempts after a failure
    std::uint64_t errors = 0;      // failures: refused, lost, timed out, AUTH refused
};

class RedisLink {
  public:
    using Reply = const redisReply*;
    using Callback = std::function<void(Reply)>;

    struct Hooks {
        std::function<void()> on_up;                       // connected, authenticated, subscribed
        std::function<void()> on_down;                     // lost after being up
        std::function<void(std::string_view)> on_message;  // a subscriber link's messages
    };

    RedisLink(RedisLinkOptions options, event_base* base, Hooks hooks);
    ~RedisLink();
    RedisLink(const RedisLink&) = delete;
    RedisLink& operator=(const RedisLink&) = delete;

    // Starts connecting. Throws std::system_error if libevent cannot create its timers.
    void start();
    // Closes the connection; no callback runs after this.
    void stop() noexcept;

    bool up() const noexcept { return up_; }
    const RedisLinkStats& stats() const noexcept { return stats_; }
    const RedisLinkOptions& options() const noexcept { return options_; }

    // Sends a command; false (and no callback) if the link is not up.
    bool command(std::vector<std::string> argv, Callback done);

    // Points the link at another server (a failover): drops the current connection, if
    // any, and connects to `host`:`port` at once. on_down runs if the link was up.
    void retarget(std::string host, std::uint16_t port);

  private:
    struct ContextFree {
        void operator()(redisAsyncContext* c) const noexcept;
    };
    struct Pending;

    static void on_connect(const redisAsyncContext* c, int status);
    static void on_disconnect(const redisAsyncContext* c, int status);
    static void on_reply(redisAsyncContext* c, void* reply, void* privdata);
    static void on_subscribed(redisAsyncContext* c, void* reply, void* privdata);
    static void on_timer(evutil_socket_t, short, void* self);
    static void on_watchdog(evutil_socket_t, short, void* self);

    void connect();
    void handshake();
    void became_up();
    void role_checked(Reply r);  // redis_link_role.cpp
    void lost(std::string_view why);
    void schedule_reconnect();
    bool send(std::vector<std::string> argv, Callback done);

    RedisLinkOptions options_;
    event_base* base_;
    Hooks hooks_;
    Backoff backoff_;
    RedisLinkStats stats_;
    redisAsyncContext* context_ = nullptr;  // hiredis frees it after a disconnect callback
    bool connected_ = false;                // TCP connected (hiredis's callback said so)
    bool up_ = false;                       // and authenticated, selected, subscribed
    bool stopping_ = false;
    bool failed_once_ = false;
    std::uint64_t pending_ = 0;
    std::chrono::steady_clock::time_point progress_{};  // last reply, or the first send
    std::chrono::steady_clock::time_point connect_started_{};
    EventPtr reconnect_timer_;
    EventPtr watchdog_;
};

}  // namespace yuxi::config::agent
