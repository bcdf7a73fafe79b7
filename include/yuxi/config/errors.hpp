// The errors of the public API: opening a segment (SegmentError, client.hpp) and talking
// to Redis for a DistributedLock (LockError, lock.hpp). Lookups never throw.
#pragma once

#include <stdexcept>
#include <string>

namespace yuxi::config {

// Why a segment could not be opened. Lookups never throw; opening does.
class SegmentError : public std::runtime_error {
  public:
    enum class Kind {
        absent,        // no segment of that name: is the agent running?
        permission,    // the segment exists but this user may not read it
        incompatible,  // another layout version or build
        corrupt,       // the bytes do not describe a valid segment
        invalid_name,  // the name cannot be a shared-memory name
        system,        // another operating-system error
    };

    SegmentError(Kind kind, const std::string& message)
        : std::runtime_error(message), kind_(kind) {}

    Kind kind() const noexcept { return kind_; }

  private:
    Kind kind_;
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
        // The lock was acquired, but fewer replicas than RedisEndpoint::min_replicas
        // acknowledged it within replica_timeout (Redis WAIT), so its fencing token might
        // not survive a failover. The lock was released again; safe to retry.
        replication,
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
        case LockError::Kind::replication:
            return "replication";
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

}  // namespace yuxi::config
