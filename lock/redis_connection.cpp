// The synchronous Redis connection of the lock library (redis_connection.hpp).
#include "lock/redis_connection.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <array>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "core/timeval.hpp"
#include "lock/sentinel.hpp"

namespace yuxi::config::detail {
namespace {

// hiredis writes with write(2); a peer that has gone raises SIGPIPE, whose default action
// kills the process, and a library must not. Like libpq: block SIGPIPE in this thread for
// the call and discard one that we raised.
class SigpipeGuard {
  public:
    SigpipeGuard() noexcept {
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~SigpipeGuard() {
        if (!was_pending_) {
            sigset_t pending;
            sigpending(&pending);
            if (sigismember(&pending, SIGPIPE) == 1) {
                sigset_t pipe_set;
                sigemptyset(&pipe_set);
                sigaddset(&pipe_set, SIGPIPE);
                const timespec zero{};
                sigtimedwait(&pipe_set, nullptr, &zero);
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

  private:
    sigset_t old_mask_{};
    bool was_pending_ = false;
};

std::string reply_text(const redisReply& reply) {
    return reply.str != nullptr ? std::string(reply.str, reply.len) : std::string();
}

}  // namespace

// Belt and braces: our messages never include the password, but a server's error text
// is not ours to vouch for.
std::string redact(std::string message, const std::string& password) {
    if (password.empty()) {
        return message;
    }
    constexpr std::string_view kMask = "<redacted>";
    for (std::size_t at = message.find(password); at != std::string::npos;
         at = message.find(password, at + kMask.size())) {
        message.replace(at, password.size(), kMask);
    }
    return message;
}

// 128 random bits as 32 hex digits: tokens of different acquisitions never collide, so a
// stale holder's release or renewal can never match a newer holder's token.
std::string random_token() {
    std::random_device device;
    constexpr std::string_view kHex = "0123456789abcdef";
    std::string token;
    token.reserve(32);
    for (int word = 0; word < 4; ++word) {
        std::uint32_t bits = device();
        for (int nibble = 0; nibble < 8; ++nibble) {
            token.push_back(kHex[bits & 0xFU]);
            bits >>= 4;
        }
    }
    return token;
}

RedisConnection::RedisConnection(RedisEndpoint endpoint) : endpoint_(std::move(endpoint)) {}
RedisConnection::RedisConnection(RedisConnection&&) noexcept = default;
RedisConnection& RedisConnection::operator=(RedisConnection&&) noexcept = default;
RedisConnection::~RedisConnection() = default;

void RedisConnection::close() noexcept {
    context_.reset();
}

void RedisConnection::connect() {
    close();
    const SigpipeGuard guard;
    if (!endpoint_.uses_sentinel()) {
        target_host_ = endpoint_.host;
        target_port_ = endpoint_.port;
        open_target();
        return;
    }
    // A Sentinel may name the old primary for a moment after a failover (it has not yet
    // heard of the switch): ask again, a bounded number of times, before giving up.
    constexpr int kRounds = 3;
    for (int round = 0;; ++round) {
        const HostPort primary = discover_primary(endpoint_, sentinel_index_, &sentinel_index_);
        target_host_ = primary.host;
        target_port_ = primary.port;
        open_target();
        if (target_is_primary()) {
            return;
        }
        close();
        if (round + 1 == kRounds) {
            fail(LockError::Kind::connect, "the Sentinels name a server that is not the primary");
        }
        // The next round starts at the next Sentinel: this one's view may be the stale one.
        sentinel_index_ += 1;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

void RedisConnection::open_target() {
    const timeval connect_tv = to_timeval(endpoint_.connect_timeout);
    ContextPtr context(endpoint_.connect_timeout.count() > 0
                           ? redisConnectWithTimeout(target_host_.c_str(), target_port_, connect_tv)
                           : redisConnect(target_host_.c_str(), target_port_));
    if (context == nullptr) {
        throw std::bad_alloc();
    }
    if (context->err != 0) {
        fail(LockError::Kind::connect, "cannot connect: " + std::string(context->errstr));
    }
    if (endpoint_.command_timeout.count() > 0 &&
        redisSetTimeout(context.get(), to_timeval(endpoint_.command_timeout)) != REDIS_OK) {
        fail(LockError::Kind::connect, "cannot set the command timeout");
    }
    context_ = std::move(context);
    try {
        if (!endpoint_.password.empty()) {
            const ReplyPtr reply =
                endpoint_.username.empty()
                    ? send(std::array<std::string_view, 2>{"AUTH", endpoint_.password},
                           LockError::Kind::connect)
                    : send(std::array<std::string_view, 3>{"AUTH", endpoint_.username,
                                                           endpoint_.password},
                           LockError::Kind::connect);
            if (reply->type == REDIS_REPLY_ERROR) {
                fail(LockError::Kind::auth, "AUTH refused: " + reply_text(*reply));
            }
        }
        if (endpoint_.db != 0) {
            const std::string db = std::to_string(endpoint_.db);
            const ReplyPtr reply =
                send(std::array<std::string_view, 2>{"SELECT", db}, LockError::Kind::connect);
            if (reply->type == REDIS_REPLY_ERROR) {
                fail(LockError::Kind::protocol, "SELECT " + db + " refused: " + reply_text(*reply));
            }
        }
    } catch (...) {
        close();
        throw;
    }
}

bool RedisConnection::target_is_primary() {
    const ReplyPtr reply = send(std::array<std::string_view, 1>{"ROLE"}, LockError::Kind::connect);
    return decode_role_is_master(reply.get());
}

ReplyPtr RedisConnection::command(std::span<const std::string_view> args) {
    // A connection that is readable before we send has been closed by the server
    // (restart, idle timeout, proxy) or holds junk: reconnect now, while we still know
    // that the command did not run, rather than fail it with io.
    if (connected() && readable_now()) {
        close();
    }
    if (!connected()) {
        connect();
    }
    ReplyPtr reply = send(args, LockError::Kind::io);
    if (reply->type == REDIS_REPLY_ERROR && endpoint_.uses_sentinel() &&
        reply_text(*reply).starts_with("READONLY")) {
        // The primary we were told of was demoted: nothing ran, so ask the Sentinels again
        // and send the command to the primary they name now (once).
        connect();
        reply = send(args, LockError::Kind::io);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        const std::string text = reply_text(*reply);
        const bool auth = text.starts_with("NOAUTH") || text.starts_with("WRONGPASS");
        fail(auth ? LockError::Kind::auth : LockError::Kind::protocol,
             std::string(args.begin()->substr(0, 16)) + " refused: " + text);
    }
    return reply;
}

long long RedisConnection::command_integer(std::initializer_list<std::string_view> args) {
    const ReplyPtr reply = command(args);
    if (reply->type != REDIS_REPLY_INTEGER) {
        fail(LockError::Kind::protocol,
             "expected an integer reply, got type " + std::to_string(reply->type));
    }
    return reply->integer;
}

void RedisConnection::fail(LockError::Kind kind, const std::string& what) const {
    const std::string& host = target_host_.empty() ? endpoint_.host : target_host_;
    const std::uint16_t port = target_host_.empty() ? endpoint_.port : target_port_;
    throw LockError(kind, redact("redis " + host + ":" + std::to_string(port) + ": " + what,
                                 endpoint_.password));
}

bool RedisConnection::readable_now() const noexcept {
    pollfd pfd{};
    pfd.fd = context_->fd;
    pfd.events = POLLIN;
    return poll(&pfd, 1, 0) != 0;  // readable, hung up, or poll itself failed
}

ReplyPtr RedisConnection::send(std::span<const std::string_view> args,
                               LockError::Kind transport_kind) {
    std::vector<const char*> argv;
    std::vector<std::size_t> argv_len;
    argv.reserve(args.size());
    argv_len.reserve(args.size());
    for (const std::string_view arg : args) {
        argv.push_back(arg.data());
        argv_len.push_back(arg.size());
    }
    const SigpipeGuard guard;
    ReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(
        context_.get(), static_cast<int>(argv.size()), argv.data(), argv_len.data())));
    if (reply == nullptr) {
        const std::string why = context_->err != 0 ? context_->errstr : "no reply";
        close();
        fail(transport_kind, why);
    }
    return reply;
}

}  // namespace yuxi::config::detail
