// yuxi::config::DistributedLock — a lock shared by processes on many machines, kept in
// Redis: the seed's DistributedLock, for the API (e.g. `index_file_{db_id}_{file_id}`) and
// for the agent's relay lease (docs/design.md, "Redis"). Link yuxi::config_lock (a compiled
// library over hiredis); this header includes nothing of Redis.
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

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "yuxi/config/errors.hpp"

namespace yuxi::config {

// Where Redis is and how long to wait for it. A timeout of zero means "wait forever"
// (hiredis's default); keep command_timeout well below a lock's TTL, since a renewal that
// waits longer than the TTL has already lost the lock.
struct RedisEndpoint {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string username;  // Redis 6 ACL user; empty: AUTH with the password alone
    std::string password;  // empty: no AUTH
    int db = 0;            // SELECTed after connecting when not 0
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds command_timeout{2000};

    // Redis Sentinel. When `sentinels` is not empty, host and port are not used: the
    // address of `sentinel_master`'s primary is asked from these Sentinels ("host:port",
    // port 26379 by default; an item may list several, comma-separated) on every connect,
    // and the server is used only if ROLE says it is the primary. A READONLY answer or a
    // lost connection leads back to the Sentinels. Credentials for the Sentinels
    // themselves are separate from `password`, which is the data nodes'.
    std::vector<std::string> sentinels;
    std::string sentinel_master = "mymaster";
    std::string sentinel_username;  // empty: AUTH with the password only
    std::string sentinel_password;  // empty: no AUTH to the Sentinels
    // Replicas that must acknowledge an acquisition (Redis WAIT, up to replica_timeout)
    // before try_acquire() returns its fencing token: a token acknowledged only by a
    // primary that then dies could be issued again by the promoted replica. -1: 1 when
    // Sentinel is configured, else 0 (a single Redis has no replica to wait for).
    int min_replicas = -1;
    std::chrono::milliseconds replica_timeout{1000};

    bool uses_sentinel() const noexcept { return !sentinels.empty(); }
    int required_replicas() const noexcept {
        return min_replicas >= 0 ? min_replicas : (uses_sentinel() ? 1 : 0);
    }

    // REDIS_HOST (default 127.0.0.1), REDIS_PORT (default 6379), REDIS_USERNAME and
    // REDIS_PASSWORD (default none), REDIS_DB (default 0); an unset or empty variable takes the
    // default. Throws std::invalid_argument naming the variable if REDIS_PORT is not 1-65535 or
    // REDIS_DB is not a non-negative integer.
    // Also REDIS_SENTINELS (comma-separated host:port), REDIS_SENTINEL_MASTER (default
    // mymaster), REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD and REDIS_MIN_REPLICAS
    // (default -1, as above); a malformed REDIS_SENTINELS or REDIS_MIN_REPLICAS throws
    // std::invalid_argument naming it.
    static RedisEndpoint from_env();
};

// A lock named `name`, shared through Redis by every process that uses the same name and
// Redis database. RAII: the destructor stops renewal and releases the lock if held.
// Movable (a moved-from lock may only be destroyed or assigned to), not copyable.
// Not reentrant: acquiring a lock this object holds is a logic_error.
class DistributedLock {
  public:
    struct State;  // lock/distributed_lock.cpp

    static constexpr std::chrono::milliseconds kDefaultTtl{30000};
    // acquire()'s first retry waits up to this long, doubling up to max_backoff.
    static constexpr std::chrono::milliseconds kFirstBackoff{2};
    static constexpr std::chrono::milliseconds kDefaultMaxBackoff{100};

    // Does not connect (the first call does), so it throws no LockError.
    // Throws std::invalid_argument if name is empty or ttl is below 1 ms.
    DistributedLock(RedisEndpoint endpoint, std::string name,
                    std::chrono::milliseconds ttl = kDefaultTtl);
    ~DistributedLock();
    DistributedLock(DistributedLock&& other) noexcept;
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
    bool held() const noexcept;
    // The lock was found lost while held (by the renewal thread or renew()). Any thread.
    bool lost() const noexcept;
    LossReason loss_reason() const noexcept;
    // The fencing token of the last successful acquisition (0 if none): strictly
    // increasing across all acquisitions of this name (see the header's overview).
    std::uint64_t fencing_token() const noexcept;
    // "yuxi:lock:<name>".
    const std::string& key() const;
    std::chrono::milliseconds ttl() const;

  private:
    State& state() const;
    void reset_if_lost();

    std::unique_ptr<State> state_;
};

}  // namespace yuxi::config
