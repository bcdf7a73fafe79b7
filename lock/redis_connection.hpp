// A synchronous Redis connection (hiredis): the lock's own, and the one the agent and
// yuxi-configctl use for short blocking calls. Part of yuxi_config_lock, not of the public
// API: include/yuxi/config/lock.hpp includes nothing of Redis.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "yuxi/config/errors.hpp"
#include "yuxi/config/lock.hpp"

namespace yuxi::config::detail {

struct ReplyDeleter {
    void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// A synchronous hiredis connection: connect with a timeout, AUTH, SELECT, commands with
// owned replies. Not thread-safe; movable. It connects lazily (on the first command) and
// after a failure: a transport error closes it and the next command reconnects. SIGPIPE
// is blocked in the calling thread during each call (a library must not die of a peer
// that went away). Errors: LockError as documented there; std::bad_alloc if hiredis
// cannot allocate. No message ever contains the password.
class RedisConnection {
  public:
    explicit RedisConnection(RedisEndpoint endpoint);
    RedisConnection(RedisConnection&&) noexcept;
    RedisConnection& operator=(RedisConnection&&) noexcept;
    ~RedisConnection();

    const RedisEndpoint& endpoint() const noexcept { return endpoint_; }
    bool connected() const noexcept { return context_ != nullptr; }
    void close() noexcept;

    // Closes any current connection and opens a new one: to the endpoint's host, or to
    // the primary its Sentinels name (sentinel.hpp), checked with ROLE. Throws LockError
    // connect (also: no Sentinel answered, or the server named is not the primary), auth
    // or protocol (SELECT refused).
    void connect();

    // Where the connection goes (or went last): the endpoint's host, or the primary the
    // Sentinels named. For messages and tests.
    const std::string& target_host() const noexcept { return target_host_; }
    std::uint16_t target_port() const noexcept { return target_port_; }

    // Sends one command (arguments binary-safe) and returns its reply, never an error
    // reply: those throw LockError auth (NOAUTH, WRONGPASS) or protocol.
    ReplyPtr command(std::initializer_list<std::string_view> args) {
        return command(std::span<const std::string_view>(args.begin(), args.size()));
    }
    ReplyPtr command(std::span<const std::string_view> args);

    // command() for a reply that must be an integer. Throws LockError protocol otherwise.
    long long command_integer(std::initializer_list<std::string_view> args);

  private:
    struct ContextDeleter {
        void operator()(redisContext* context) const noexcept { redisFree(context); }
    };
    using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

    [[noreturn]] void fail(LockError::Kind kind, const std::string& what) const;
    bool readable_now() const noexcept;
    ReplyPtr send(std::span<const std::string_view> args, LockError::Kind transport_kind);

    void open_target();
    bool target_is_primary();

    RedisEndpoint endpoint_;
    ContextPtr context_;
    std::string target_host_;
    std::uint16_t target_port_ = 0;
    std::size_t sentinel_index_ = 0;  // the Sentinel that answered last: asked first next
};

// `message` with every occurrence of `password` masked: our messages never include it, but
// a server's error text is not ours to vouch for.
std::string redact(std::string message, const std::string& password);

// 128 random bits as 32 hex digits: tokens of different acquisitions never collide, so a
// stale holder's release or renewal can never match a newer holder's token.
std::string random_token();

}  // namespace yuxi::config::detail
