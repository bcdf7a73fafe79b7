// yuxi::config::DistributedLock — a lock shared by processes on many machines, kept in
// Redis: the seed's DistributedLock, for the API (e.g. `index_file_{db_id}_{file_id}`) and
// for the agent's relay lease (DESIGN.md §4). Needs hiredis (0.14 or 1.x) and nothing else.
//
//   yuxi::config::DistributedLock lock(yuxi::config::RedisEndpoint::from_env(),
//                                      "index_file_3_17", std::chrono::seconds(30));
//   if (!lock.acquire(std::chrono::seconds(5))) { /* somebody else is indexing */ }
//   lock.start_renewal();                     // a long job: keep the lock alive
//   storage.write(data, lock.fencing_token()); // the storage refuses tokens older than seen
//   lock.release();                           // or let the destructor do it
//
// Protocol. The lock is the key `yuxi:lock:<name>`, set with `SET NX PX ttl` to a random
// 128-bit token of this acquisition, in one Lua script that also bumps the fencing counter
// `yuxi:lock:<name>:fence`. Release and renewal are Lua scripts that act only if the key
// still holds our token, so a holder whose lock expired can never delete or extend the
// next holder's lock.
//
// What the lock guarantees, and what not (read this before relying on it):
//   - While the key lives, nobody else acquires: mutual exclusion holds as long as Redis
//     keeps its data and every holder finishes (or renews) within the TTL.
//   - A holder that dies stops nobody for longer than its TTL: the key expires.
//   - A holder that pauses longer than the TTL (GC, swap, SIGSTOP, a network partition)
//     may believe it holds a lock that another process now holds. No lock based on
//     expiry can prevent that; the fencing token is the defence. Pass it with every write
//     to the protected resource, and have the resource refuse a token lower than the
//     highest it has seen.
//   - Fencing tokens strictly increase per lock name, across acquisitions by any process,
//     and across a Redis restart that lost the data (see "Redis restarts" below).
//   - No fairness: waiters in acquire() poll with jittered backoff; any of them may win.
//
// Redis restarts. A Redis without persistence loses every lock when it restarts, so two
// processes may then hold "the same" lock: the old holder until it next renews (its
// renewal reports the loss, reason `gone`) and whoever acquires after the restart.
// Production Redis for locks should persist (`appendonly yes`, `appendfsync always` for
// the strongest guarantee); with the data kept, a held lock survives a restart and its
// renewal continues. The fencing counter is made to survive data loss regardless: the
// acquire script never issues a token below the Redis server's clock in microseconds
// (`max(INCR, TIME)`), so after a restart that lost the counter the next token is still
// above every token issued before — provided the server's clock did not step back across
// the loss (and after a failover, that the new primary's clock is not behind the old
// one's by more than the time since the last acquisition). Tokens are therefore large
// numbers (about 1.7e15 in 2024), consecutive only within one microsecond; compare
// them, never subtract them. A single Redis only: this is not Redlock.
//
// Errors. Network and server failures throw LockError, whose kind says which (the full
// list is at LockError). Misuse (acquiring a lock already held, using a moved-from lock)
// throws std::logic_error; invalid arguments throw std::invalid_argument. No message ever
// contains the password. If an acquisition fails with an io error the script may still
// have run: the lock is then held under a token nobody knows and frees after its TTL.
//
// Thread rules. A DistributedLock is used by one thread at a time (like std::unique_lock):
// calls on one object need external synchronisation, except lost() and loss_reason(),
// which any thread may call at any time. Distinct objects, even for the same name, are
// independent (each has its own connection). start_renewal() runs one background thread
// with a second connection of its own; the on_lost callback runs on that thread, must not
// throw, must not call this lock's other members and must not wait for the owning thread:
// set a flag, cancel the job, and let the owner call release(). Do not use a lock in both
// processes after fork().
//
// Memory ordering: the renewal thread stores loss_reason relaxed, then lost with release,
// then calls on_lost; lost() loads with acquire, so a reader that sees lost() == true
// also sees the reason, and the callback always finds lost() == true.
#pragma once

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace yuxi::config {

// Where Redis is and how long to wait for it. A timeout of zero means "wait forever"
// (hiredis's default); keep command_timeout well below a lock's TTL, since a renewal that
// waits longer than the TTL has already lost the lock.
struct RedisEndpoint {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string password;  // empty: no AUTH
    int db = 0;            // SELECTed after connecting when not 0
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds command_timeout{2000};

    // REDIS_HOST (default 127.0.0.1), REDIS_PORT (default 6379), REDIS_PASSWORD (default
    // none), REDIS_DB (default 0); an unset or empty variable takes the default.
    // Throws std::invalid_argument naming the variable if REDIS_PORT is not 1-65535 or
    // REDIS_DB is not a non-negative integer.
    static RedisEndpoint from_env();
};

// A failure to talk to Redis. Every error the lock can meet is one of these kinds:
class LockError : public std::runtime_error {
  public:
    enum class Kind {
        // No usable connection could be made: the TCP connection was refused, timed out
        // (connect_timeout), the host did not resolve, or the server dropped the
        // connection during the handshake. Nothing was sent; safe to retry.
        connect,
        // The server refused our credentials: AUTH rejected (WRONGPASS, invalid
        // password, AUTH sent to a server without a password) or a command refused with
        // NOAUTH (the server needs a password and none is configured). Retrying will not
        // help until the configuration changes.
        auth,
        // The server answered with an error or an unexpected reply: SELECT of a database
        // out of range, READONLY (connected to a replica), OOM, LOADING (restarting),
        // BUSY (a script is stuck), Lua disabled, a reply of the wrong type. The
        // connection stays usable.
        protocol,
        // An established connection failed during a command: reset, closed by the server
        // or a proxy, or no reply within command_timeout. The connection is dropped and
        // the next call reconnects. The command may or may not have run.
        io,
    };

    LockError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

    Kind kind() const noexcept { return kind_; }

  private:
    Kind kind_;
};

// Why a held lock was lost, as the renewal thread (or renew()) found it.
enum class LossReason {
    none,         // not lost
    gone,         // the key no longer exists: expired, deleted, FLUSHALL, Redis restarted
    taken,        // the key holds another token: it expired and someone else acquired it
    unreachable,  // renewal could not reach Redis before the TTL ran out
};

inline const char* to_string(LockError::Kind kind) noexcept {
    switch (kind) {
        case LockError::Kind::connect:
            return "connect";
        case LockError::Kind::auth:
            return "auth";
        case LockError::Kind::protocol:
            return "protocol";
        case LockError::Kind::io:
            return "io";
    }
    return "unknown";
}

inline const char* to_string(LossReason reason) noexcept {
    switch (reason) {
        case LossReason::none:
            return "none";
        case LossReason::gone:
            return "gone";
        case LossReason::taken:
            return "taken";
        case LossReason::unreachable:
            return "unreachable";
    }
    return "unknown";
}

namespace detail {

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

inline constexpr std::string_view kKeyPrefix = "yuxi:lock:";
inline constexpr std::string_view kFenceSuffix = ":fence";

// Belt and braces: our messages never include the password, but a server's error text
// is not ours to vouch for.
inline std::string redact(std::string message, const std::string& password) {
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

inline timeval to_timeval(std::chrono::milliseconds ms) noexcept {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

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

struct ReplyDeleter {
    void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// A synchronous hiredis connection: connect with a timeout, AUTH, SELECT, commands with
// owned replies. Not thread-safe; movable. It connects lazily (on the first command) and
// after a failure: a transport error closes it and the next command reconnects.
// Errors: LockError as documented there; std::bad_alloc if hiredis cannot allocate.
class RedisConnection {
  public:
    explicit RedisConnection(RedisEndpoint endpoint) : endpoint_(std::move(endpoint)) {}

    const RedisEndpoint& endpoint() const noexcept { return endpoint_; }
    bool connected() const noexcept { return context_ != nullptr; }
    void close() noexcept { context_.reset(); }

    // Closes any current connection and opens a new one. Throws LockError connect, auth
    // or protocol (SELECT refused).
    void connect() {
        close();
        const SigpipeGuard guard;
        const timeval connect_tv = to_timeval(endpoint_.connect_timeout);
        ContextPtr context(
            endpoint_.connect_timeout.count() > 0
                ? redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, connect_tv)
                : redisConnect(endpoint_.host.c_str(), endpoint_.port));
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
                const ReplyPtr reply = send({"AUTH", endpoint_.password}, LockError::Kind::connect);
                if (reply->type == REDIS_REPLY_ERROR) {
                    fail(LockError::Kind::auth, "AUTH refused: " + reply_text(*reply));
                }
            }
            if (endpoint_.db != 0) {
                const std::string db = std::to_string(endpoint_.db);
                const ReplyPtr reply = send({"SELECT", db}, LockError::Kind::connect);
                if (reply->type == REDIS_REPLY_ERROR) {
                    fail(LockError::Kind::protocol,
                         "SELECT " + db + " refused: " + reply_text(*reply));
                }
            }
        } catch (...) {
            close();
            throw;
        }
    }

    // Sends one command (arguments binary-safe) and returns its reply, never an error
    // reply: those throw LockError auth (NOAUTH, WRONGPASS) or protocol.
    ReplyPtr command(std::initializer_list<std::string_view> args) {
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
        if (reply->type == REDIS_REPLY_ERROR) {
            const std::string text = reply_text(*reply);
            const bool auth = text.starts_with("NOAUTH") || text.starts_with("WRONGPASS");
            fail(auth ? LockError::Kind::auth : LockError::Kind::protocol,
                 std::string(args.begin()->substr(0, 16)) + " refused: " + text);
        }
        return reply;
    }

    // command() for a reply that must be an integer. Throws LockError protocol otherwise.
    long long command_integer(std::initializer_list<std::string_view> args) {
        const ReplyPtr reply = command(args);
        if (reply->type != REDIS_REPLY_INTEGER) {
            fail(LockError::Kind::protocol,
                 "expected an integer reply, got type " + std::to_string(reply->type));
        }
        return reply->integer;
    }

  private:
    struct ContextDeleter {
        void operator()(redisContext* context) const noexcept { redisFree(context); }
    };
    using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

    static std::string reply_text(const redisReply& reply) {
        return reply.str != nullptr ? std::string(reply.str, reply.len) : std::string();
    }

    [[noreturn]] void fail(LockError::Kind kind, const std::string& what) const {
        throw LockError(kind, redact("redis " + endpoint_.host + ":" +
                                         std::to_string(endpoint_.port) + ": " + what,
                                     endpoint_.password));
    }

    bool readable_now() const noexcept {
        pollfd pfd{};
        pfd.fd = context_->fd;
        pfd.events = POLLIN;
        return poll(&pfd, 1, 0) != 0;  // readable, hung up, or poll itself failed
    }

    // A transport failure closes the connection and throws `transport_kind`.
    ReplyPtr send(std::initializer_list<std::string_view> args, LockError::Kind transport_kind) {
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

    RedisEndpoint endpoint_;
    ContextPtr context_;
};

// 128 random bits as 32 hex digits: tokens of different acquisitions never collide, so a
// stale holder's release or renewal can never match a newer holder's token.
inline std::string random_token() {
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

// Everything a DistributedLock owns, on the heap so that moving the lock moves a pointer
// and the renewal thread's view of it stays put.
struct LockState {
    LockState(RedisEndpoint endpoint, std::string name, std::chrono::milliseconds lock_ttl)
        : connection(std::move(endpoint)),
          key(std::string(kKeyPrefix) + name),
          fence_key(key + std::string(kFenceSuffix)),
          ttl(lock_ttl),
          ttl_text(std::to_string(lock_ttl.count())),
          jitter(std::random_device{}()) {}

    // Owner thread only.
    RedisConnection connection;
    const std::string key;
    const std::string fence_key;
    const std::chrono::milliseconds ttl;
    const std::string ttl_text;
    std::string token;  // this acquisition's; the renewal thread has its own copy
    std::uint64_t fence = 0;
    bool held = false;
    std::minstd_rand jitter;

    // Shared with the renewal thread.
    std::atomic<bool> lost{false};
    std::atomic<LossReason> loss_reason{LossReason::none};
    std::thread renewer;
    std::mutex mutex;
    std::condition_variable wake;
    bool stop = false;  // guarded by mutex

    void declare_lost(LossReason reason) noexcept {
        loss_reason.store(reason, std::memory_order_relaxed);
        lost.store(true, std::memory_order_release);
    }
};

}  // namespace detail

// A lock named `name`, shared through Redis by every process that uses the same name and
// Redis database. RAII: the destructor stops renewal and releases the lock if held.
// Movable (a moved-from lock may only be destroyed or assigned to), not copyable.
// Not reentrant: acquiring a lock this object holds is a logic_error.
class DistributedLock {
  public:
    static constexpr std::chrono::milliseconds kDefaultTtl{30000};
    // acquire()'s first retry waits up to this long, doubling up to max_backoff.
    static constexpr std::chrono::milliseconds kFirstBackoff{2};
    static constexpr std::chrono::milliseconds kDefaultMaxBackoff{100};

    // Does not connect (the first call does), so it throws no LockError.
    // Throws std::invalid_argument if name is empty or ttl is below 1 ms.
    DistributedLock(RedisEndpoint endpoint, std::string name,
                    std::chrono::milliseconds ttl = kDefaultTtl);
    ~DistributedLock();
    DistributedLock(DistributedLock&& other) noexcept = default;
    // Releases what this lock held (errors ignored, as in the destructor), then takes over.
    DistributedLock& operator=(DistributedLock&& other) noexcept;
    DistributedLock(const DistributedLock&) = delete;
    DistributedLock& operator=(const DistributedLock&) = delete;

    // One attempt: true if the lock is now ours, with a new token and fencing token;
    // false if someone holds it. If a renewal found this lock lost, it is first released
    // locally (nothing is sent) so that it can be acquired again.
    // Throws LockError (any kind); std::logic_error if already held and not lost.
    [[nodiscard]] bool try_acquire();

    // try_acquire() until it succeeds or `timeout` has passed (one attempt at least, a
    // last one at the deadline), sleeping a jittered backoff between attempts: the k-th
    // wait is uniform in [b/2, b] with b = min(kFirstBackoff * 2^k, max_backoff). Returns
    // within timeout plus one attempt (at most connect_timeout + command_timeout).
    // For long waits by many clients (a relay lease) pass a larger max_backoff, or call
    // try_acquire() on a timer, to spare Redis.
    // Throws as try_acquire() on the first error (no retry); std::invalid_argument if
    // max_backoff is not positive.
    [[nodiscard]] bool acquire(std::chrono::milliseconds timeout,
                               std::chrono::milliseconds max_backoff = kDefaultMaxBackoff);

    // Stops renewal, then deletes the key if it still holds our token. Returns true if
    // we still held the lock (and it is now free), false if we did not: not acquired,
    // expired, or taken by someone else — whose lock is left alone. Afterwards the lock is
    // not held, except when it throws LockError (any kind): then it is still held locally
    // and release() may be called again; in Redis it frees after its TTL in any case.
    bool release();

    // Extends the TTL to `ttl` from now if the key still holds our token. True if so;
    // false if not held, or if it was lost: then lost() is true. renew() itself calls no
    // on_lost (a running renewal thread will, at its next renewal).
    // Throws LockError (any kind).
    [[nodiscard]] bool renew();

    // Starts a thread that renews every `every` (default ttl/3) on a connection of its
    // own. If Redis says the lock is gone or taken, or cannot be reached until the TTL
    // since the last confirmed renewal has run out, the thread sets lost(), calls
    // on_lost(reason) if given, and stops. Transient errors are retried with backoff up
    // to that point. Stopped by release(), the destructor and move-assignment.
    // It renews once before it returns, on the new connection: if that finds the lock
    // lost, it sets lost(), calls on_lost on the calling thread and starts no thread.
    // Throws std::logic_error if not held or already renewing; std::invalid_argument if
    // `every` is not below the TTL; LockError (any kind) from that first renewal.
    void start_renewal(std::chrono::milliseconds every = std::chrono::milliseconds::zero(),
                       std::function<void(LossReason)> on_lost = {});
    void start_renewal(std::function<void(LossReason)> on_lost) {
        start_renewal(std::chrono::milliseconds::zero(), std::move(on_lost));
    }
    // Stops the renewal thread (waits for a renewal in flight). The lock stays held.
    void stop_renewal() noexcept;

    // Held by this object, as far as it knows: acquired, not released, not found lost.
    bool held() const noexcept { return state_ != nullptr && state_->held && !lost(); }
    // The lock was found lost while held (by the renewal thread or renew()). Any thread.
    bool lost() const noexcept {
        return state_ != nullptr && state_->lost.load(std::memory_order_acquire);
    }
    LossReason loss_reason() const noexcept {
        return lost() ? state_->loss_reason.load(std::memory_order_relaxed) : LossReason::none;
    }
    // The fencing token of the last successful acquisition (0 if none): strictly
    // increasing across all acquisitions of this name (see the header's overview).
    std::uint64_t fencing_token() const noexcept { return state_ ? state_->fence : 0; }
    // "yuxi:lock:<name>".
    const std::string& key() const;
    std::chrono::milliseconds ttl() const;

  private:
    detail::LockState& state() const;
    void reset_if_lost();
    static void renewal_loop(detail::LockState* state, detail::RedisConnection connection,
                             std::string token, std::chrono::milliseconds every,
                             std::function<void(LossReason)> on_lost,
                             std::chrono::steady_clock::time_point valid_until);

    std::unique_ptr<detail::LockState> state_;
};

// --- Implementation ---------------------------------------------------------------------

inline RedisEndpoint RedisEndpoint::from_env() {
    RedisEndpoint endpoint;
    auto text = [](const char* name) -> std::string_view {
        const char* value = std::getenv(name);
        return value != nullptr ? std::string_view(value) : std::string_view();
    };
    auto number = [](const char* name, std::string_view value, long long low, long long high) {
        long long parsed = 0;
        const auto [end, error] =
            std::from_chars(value.data(), value.data() + value.size(), parsed);
        if (error != std::errc() || end != value.data() + value.size() || parsed < low ||
            parsed > high) {
            throw std::invalid_argument(std::string(name) + "='" + std::string(value) +
                                        "': expected an integer in " + std::to_string(low) + "-" +
                                        std::to_string(high));
        }
        return parsed;
    };
    if (const auto host = text("REDIS_HOST"); !host.empty()) {
        endpoint.host = host;
    }
    if (const auto port = text("REDIS_PORT"); !port.empty()) {
        endpoint.port = static_cast<std::uint16_t>(number("REDIS_PORT", port, 1, 65535));
    }
    endpoint.password = text("REDIS_PASSWORD");
    if (const auto db = text("REDIS_DB"); !db.empty()) {
        endpoint.db = static_cast<int>(number("REDIS_DB", db, 0, 1 << 30));
    }
    return endpoint;
}

inline DistributedLock::DistributedLock(RedisEndpoint endpoint, std::string name,
                                        std::chrono::milliseconds ttl) {
    if (name.empty()) {
        throw std::invalid_argument("DistributedLock: empty name");
    }
    if (ttl < std::chrono::milliseconds(1)) {
        throw std::invalid_argument("DistributedLock: ttl below 1 ms");
    }
    state_ = std::make_unique<detail::LockState>(std::move(endpoint), std::move(name), ttl);
}

inline DistributedLock::~DistributedLock() {
    if (state_ == nullptr) {
        return;
    }
    stop_renewal();
    if (state_->held) {
        try {
            (void)release();
        } catch (...) {
            // Nothing more to do here: the key expires after its TTL.
        }
    }
}

inline DistributedLock& DistributedLock::operator=(DistributedLock&& other) noexcept {
    if (this != &other) {
        DistributedLock old(std::move(*this));
        state_ = std::move(other.state_);
    }
    return *this;
}

inline detail::LockState& DistributedLock::state() const {
    if (state_ == nullptr) {
        throw std::logic_error("DistributedLock: use of a moved-from lock");
    }
    return *state_;
}

inline const std::string& DistributedLock::key() const {
    return state().key;
}
inline std::chrono::milliseconds DistributedLock::ttl() const {
    return state().ttl;
}

inline void DistributedLock::reset_if_lost() {
    detail::LockState& s = state();
    if (s.held && s.lost.load(std::memory_order_acquire)) {
        stop_renewal();
        s.held = false;
    }
}

inline bool DistributedLock::try_acquire() {
    detail::LockState& s = state();
    reset_if_lost();
    if (s.held) {
        throw std::logic_error("DistributedLock: " + s.key + " is already held by this object");
    }
    stop_renewal();  // a thread that found the lock lost has ended; collect it
    std::string token = detail::random_token();
    const long long fence = s.connection.command_integer(
        {"EVAL", detail::kAcquireScript, "2", s.key, s.fence_key, token, s.ttl_text});
    if (fence == 0) {
        return false;
    }
    if (fence < 0) {
        throw LockError(LockError::Kind::protocol,
                        "redis: the acquire script returned " + std::to_string(fence));
    }
    s.token = std::move(token);
    s.fence = static_cast<std::uint64_t>(fence);
    s.held = true;
    s.loss_reason.store(LossReason::none, std::memory_order_relaxed);
    s.lost.store(false, std::memory_order_release);
    return true;
}

inline bool DistributedLock::acquire(std::chrono::milliseconds timeout,
                                     std::chrono::milliseconds max_backoff) {
    if (max_backoff <= std::chrono::milliseconds::zero()) {
        throw std::invalid_argument("DistributedLock::acquire: max_backoff must be positive");
    }
    detail::LockState& s = state();
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + timeout;
    auto backoff =
        std::chrono::duration_cast<std::chrono::microseconds>(std::min(kFirstBackoff, max_backoff));
    // Bounded: every pass but the last sleeps at least min(kFirstBackoff, max_backoff) / 2
    // or up to the deadline, after which the next pass returns.
    for (;;) {
        if (try_acquire()) {
            return true;
        }
        const auto now = Clock::now();
        if (now >= deadline) {
            return false;
        }
        std::uniform_int_distribution<long long> pick(backoff.count() / 2, backoff.count());
        const auto pause =
            std::min<Clock::duration>(std::chrono::microseconds(pick(s.jitter)), deadline - now);
        std::this_thread::sleep_for(pause);
        backoff = std::min<std::chrono::microseconds>(backoff * 2, max_backoff);
    }
}

inline bool DistributedLock::release() {
    detail::LockState& s = state();
    stop_renewal();
    if (!s.held) {
        return false;
    }
    const long long result =
        s.connection.command_integer({"EVAL", detail::kReleaseScript, "1", s.key, s.token});
    s.held = false;
    return result == 1;
}

inline bool DistributedLock::renew() {
    detail::LockState& s = state();
    if (!s.held || s.lost.load(std::memory_order_acquire)) {
        return false;
    }
    const long long result = s.connection.command_integer(
        {"EVAL", detail::kRenewScript, "1", s.key, s.token, s.ttl_text});
    if (result == 1) {
        return true;
    }
    s.declare_lost(result == 0 ? LossReason::gone : LossReason::taken);
    return false;
}

inline void DistributedLock::start_renewal(std::chrono::milliseconds every,
                                           std::function<void(LossReason)> on_lost) {
    detail::LockState& s = state();
    if (every <= std::chrono::milliseconds::zero()) {
        every = std::max(s.ttl / 3, std::chrono::milliseconds(1));
    }
    if (every >= s.ttl) {
        throw std::invalid_argument("DistributedLock::start_renewal: every must be below the ttl");
    }
    if (!s.held || s.lost.load(std::memory_order_acquire)) {
        throw std::logic_error("DistributedLock::start_renewal: " + s.key + " is not held");
    }
    if (s.renewer.joinable()) {
        throw std::logic_error("DistributedLock::start_renewal: already renewing " + s.key);
    }
    // Renew once on the new connection: it proves the connection, and gives the thread a
    // confirmed expiry to count from without trusting when the acquisition happened.
    detail::RedisConnection connection(s.connection.endpoint());
    const auto sent = std::chrono::steady_clock::now();
    const long long result =
        connection.command_integer({"EVAL", detail::kRenewScript, "1", s.key, s.token, s.ttl_text});
    if (result != 1) {
        s.declare_lost(result == 0 ? LossReason::gone : LossReason::taken);
        if (on_lost) {
            on_lost(s.loss_reason.load(std::memory_order_relaxed));
        }
        return;
    }
    {
        const std::lock_guard lock(s.mutex);
        s.stop = false;
    }
    s.renewer = std::thread(renewal_loop, state_.get(), std::move(connection), s.token, every,
                            std::move(on_lost), sent + s.ttl);
}

inline void DistributedLock::stop_renewal() noexcept {
    if (state_ == nullptr || !state_->renewer.joinable()) {
        return;
    }
    {
        const std::lock_guard lock(state_->mutex);
        state_->stop = true;
    }
    state_->wake.notify_all();
    state_->renewer.join();
}

// `valid_until` is when the lock expires at the earliest: the send time of the last
// confirmed renewal plus the TTL, since Redis starts the TTL after it receives the command.
// Until then the lock is ours even if Redis cannot be reached; after it, we cannot know.
inline void DistributedLock::renewal_loop(detail::LockState* state,
                                          detail::RedisConnection connection, std::string token,
                                          std::chrono::milliseconds every,
                                          std::function<void(LossReason)> on_lost,
                                          std::chrono::steady_clock::time_point valid_until) {
    using Clock = std::chrono::steady_clock;
    constexpr std::chrono::milliseconds kFirstRetry{20};
    auto wait = Clock::duration(every);
    auto retry = Clock::duration(std::min(kFirstRetry, every));
    auto lose = [&](LossReason reason) {
        state->declare_lost(reason);
        const std::lock_guard lock(state->mutex);
        // An owner that is stopping us is about to release: it needs no callback, and a
        // callback that waited for the owner would deadlock with its join().
        return !state->stop;
    };
    // Bounded: each pass waits `wait` (> 0 until valid_until has passed, and the pass
    // after that ends the thread) or ends the thread.
    for (;;) {
        {
            std::unique_lock lock(state->mutex);
            if (state->wake.wait_for(lock, wait, [state] { return state->stop; })) {
                return;
            }
        }
        const auto sent = Clock::now();
        LossReason reason = LossReason::none;
        if (sent >= valid_until) {
            reason = LossReason::unreachable;
        } else {
            try {
                const long long result = connection.command_integer(
                    {"EVAL", detail::kRenewScript, "1", state->key, token, state->ttl_text});
                if (result == 1) {
                    valid_until = sent + state->ttl;
                    wait = every;
                    retry = std::min<Clock::duration>(kFirstRetry, every);
                    continue;
                }
                reason = result == 0 ? LossReason::gone : LossReason::taken;
            } catch (const LockError&) {
                // Redis restarting, a failover, a network blip: retry (reconnecting) with
                // backoff, never past the moment the lock may have expired.
                connection.close();
                wait = std::min<Clock::duration>(retry, valid_until - Clock::now());
                wait = std::max<Clock::duration>(wait, Clock::duration::zero());
                retry = std::min<Clock::duration>(retry * 2, every);
                continue;
            }
        }
        if (lose(reason) && on_lost) {
            on_lost(reason);
        }
        return;
    }
}

}  // namespace yuxi::config
