// DistributedLock: acquisition, release, renewal and its thread (include/yuxi/config/lock.hpp).
#include "yuxi/config/lock.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include "lock/lock_scripts.hpp"
#include "lock/redis_connection.hpp"
#include "lock/sentinel.hpp"

namespace yuxi::config {

using detail::kAcquireScript;
using detail::kFenceSuffix;
using detail::kKeyPrefix;
using detail::kReleaseScript;
using detail::kRenewScript;
using detail::random_token;
using detail::RedisConnection;

// Everything a DistributedLock owns, on the heap so that moving the lock moves a pointer
// and the renewal thread's view of it stays put.
struct DistributedLock::State {
    State(RedisEndpoint endpoint, std::string name, std::chrono::milliseconds lock_ttl)
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

namespace {

void renewal_loop(DistributedLock::State* state, RedisConnection connection, std::string token,
                  std::chrono::milliseconds every, std::function<void(LossReason)> on_lost,
                  std::chrono::steady_clock::time_point valid_until);

// Returns once `min_replicas` replicas have the acquisition; otherwise releases it and
// throws LockError replication. A token only the primary saw would be lost with it, and
// the promoted replica would hand out the same token again.
void wait_for_replicas(RedisConnection& connection, const std::string& key,
                       const std::string& token) {
    const RedisEndpoint& e = connection.endpoint();
    const int wanted = e.required_replicas();
    if (wanted <= 0) {
        return;
    }
    const long long acked = connection.command_integer(
        {"WAIT", std::to_string(wanted), std::to_string(e.replica_timeout.count())});
    if (acked >= wanted) {
        return;
    }
    try {
        (void)connection.command_integer({"EVAL", kReleaseScript, "1", key, token});
    } catch (const LockError&) {
        // It frees after its TTL.
    }
    throw LockError(LockError::Kind::replication,
                    "redis: " + std::to_string(acked) + " of " + std::to_string(wanted) +
                        " replica(s) acknowledged " + key + " within " +
                        std::to_string(e.replica_timeout.count()) +
                        " ms (min_replicas); the lock was released");
}

}  // namespace

RedisEndpoint RedisEndpoint::from_env() {
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
    endpoint.username = text("REDIS_USERNAME");
    endpoint.password = text("REDIS_PASSWORD");
    if (const auto db = text("REDIS_DB"); !db.empty()) {
        endpoint.db = static_cast<int>(number("REDIS_DB", db, 0, 1 << 30));
    }
    if (const auto sentinels = text("REDIS_SENTINELS"); !sentinels.empty()) {
        try {
            (void)detail::parse_sentinel_list(sentinels);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string("REDIS_SENTINELS: ") + e.what());
        }
        endpoint.sentinels = {std::string(sentinels)};
    }
    if (const auto master = text("REDIS_SENTINEL_MASTER"); !master.empty()) {
        endpoint.sentinel_master = master;
    }
    endpoint.sentinel_username = text("REDIS_SENTINEL_USERNAME");
    endpoint.sentinel_password = text("REDIS_SENTINEL_PASSWORD");
    if (const auto n = text("REDIS_MIN_REPLICAS"); !n.empty()) {
        endpoint.min_replicas = static_cast<int>(number("REDIS_MIN_REPLICAS", n, -1, 1000));
    }
    return endpoint;
}

DistributedLock::DistributedLock(RedisEndpoint endpoint, std::string name,
                                 std::chrono::milliseconds ttl) {
    if (name.empty()) {
        throw std::invalid_argument("DistributedLock: empty name");
    }
    if (ttl < std::chrono::milliseconds(1)) {
        throw std::invalid_argument("DistributedLock: ttl below 1 ms");
    }
    state_ = std::make_unique<State>(std::move(endpoint), std::move(name), ttl);
}

DistributedLock::~DistributedLock() {
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

DistributedLock& DistributedLock::operator=(DistributedLock&& other) noexcept {
    if (this != &other) {
        DistributedLock old(std::move(*this));
        state_ = std::move(other.state_);
    }
    return *this;
}

DistributedLock::State& DistributedLock::state() const {
    if (state_ == nullptr) {
        throw std::logic_error("DistributedLock: use of a moved-from lock");
    }
    return *state_;
}

const std::string& DistributedLock::key() const {
    return state().key;
}
std::chrono::milliseconds DistributedLock::ttl() const {
    return state().ttl;
}

void DistributedLock::reset_if_lost() {
    DistributedLock::State& s = state();
    if (s.held && s.lost.load(std::memory_order_acquire)) {
        stop_renewal();
        s.held = false;
    }
}

bool DistributedLock::try_acquire() {
    DistributedLock::State& s = state();
    reset_if_lost();
    if (s.held) {
        throw std::logic_error("DistributedLock: " + s.key + " is already held by this object");
    }
    stop_renewal();  // a thread that found the lock lost has ended; collect it
    std::string token = random_token();
    const long long fence = s.connection.command_integer(
        {"EVAL", kAcquireScript, "2", s.key, s.fence_key, token, s.ttl_text});
    if (fence == 0) {
        return false;
    }
    if (fence < 0) {
        throw LockError(LockError::Kind::protocol,
                        "redis: the acquire script returned " + std::to_string(fence));
    }
    wait_for_replicas(s.connection, s.key, token);
    s.token = std::move(token);
    s.fence = static_cast<std::uint64_t>(fence);
    s.held = true;
    s.loss_reason.store(LossReason::none, std::memory_order_relaxed);
    s.lost.store(false, std::memory_order_release);
    return true;
}

bool DistributedLock::acquire(std::chrono::milliseconds timeout,
                              std::chrono::milliseconds max_backoff) {
    if (max_backoff <= std::chrono::milliseconds::zero()) {
        throw std::invalid_argument("DistributedLock::acquire: max_backoff must be positive");
    }
    DistributedLock::State& s = state();
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

bool DistributedLock::release() {
    DistributedLock::State& s = state();
    stop_renewal();
    if (!s.held) {
        return false;
    }
    const long long result =
        s.connection.command_integer({"EVAL", kReleaseScript, "1", s.key, s.token});
    s.held = false;
    return result == 1;
}

bool DistributedLock::renew() {
    DistributedLock::State& s = state();
    if (!s.held || s.lost.load(std::memory_order_acquire)) {
        return false;
    }
    const long long result =
        s.connection.command_integer({"EVAL", kRenewScript, "1", s.key, s.token, s.ttl_text});
    if (result == 1) {
        return true;
    }
    s.declare_lost(result == 0 ? LossReason::gone : LossReason::taken);
    return false;
}

void DistributedLock::start_renewal(std::chrono::milliseconds every,
                                    std::function<void(LossReason)> on_lost) {
    DistributedLock::State& s = state();
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
    RedisConnection connection(s.connection.endpoint());
    const auto sent = std::chrono::steady_clock::now();
    const long long result =
        connection.command_integer({"EVAL", kRenewScript, "1", s.key, s.token, s.ttl_text});
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

void DistributedLock::stop_renewal() noexcept {
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
namespace {

void renewal_loop(DistributedLock::State* state, RedisConnection connection, std::string token,
                  std::chrono::milliseconds every, std::function<void(LossReason)> on_lost,
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
                    {"EVAL", kRenewScript, "1", state->key, token, state->ttl_text});
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

}  // namespace

DistributedLock::DistributedLock(DistributedLock&& other) noexcept = default;

bool DistributedLock::held() const noexcept {
    return state_ != nullptr && state_->held && !lost();
}

bool DistributedLock::lost() const noexcept {
    return state_ != nullptr && state_->lost.load(std::memory_order_acquire);
}

LossReason DistributedLock::loss_reason() const noexcept {
    return lost() ? state_->loss_reason.load(std::memory_order_relaxed) : LossReason::none;
}

std::uint64_t DistributedLock::fencing_token() const noexcept {
    return state_ ? state_->fence : 0;
}

}  // namespace yuxi::config
