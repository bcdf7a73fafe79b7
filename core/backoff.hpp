// Reconnect delays: exponential backoff with full jitter.
//
// The n-th delay (n = 0, 1, ...) is drawn uniformly from [0, min(cap, base * 2^n)] ("full
// jitter", as in the AWS Architecture Blog's "Exponential Backoff and Jitter"): a fleet of
// sidecars that lost PostgreSQL at the same instant spreads its reconnects over the whole
// window instead of arriving in waves. reset() after a success starts again from `base`.
//
// Not thread-safe: one Backoff per connection, used on the event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace yuxi::config {

class Backoff {
  public:
    using Duration = std::chrono::microseconds;

    static constexpr Duration kDefaultBase = std::chrono::milliseconds(100);
    static constexpr Duration kDefaultCap = std::chrono::seconds(30);

    // `base` > 0 and `cap` >= `base`; anything else is clamped to that. `seed` makes the
    // sequence reproducible (tests); the default seeds from std::random_device.
    explicit Backoff(Duration base = kDefaultBase, Duration cap = kDefaultCap);
    Backoff(Duration base, Duration cap, std::uint64_t seed);

    // The next delay, and one more failure counted.
    [[nodiscard]] Duration next();

    // The window the next delay is drawn from: min(cap, base * 2^failures).
    [[nodiscard]] Duration ceiling() const noexcept;

    // After a success: the next delay is drawn from [0, base] again.
    void reset() noexcept { failures_ = 0; }

    // Failures since the last reset.
    [[nodiscard]] std::uint32_t failures() const noexcept { return failures_; }

    Duration base() const noexcept { return base_; }
    Duration cap() const noexcept { return cap_; }

  private:
    Duration base_;
    Duration cap_;
    std::uint32_t failures_ = 0;
    std::mt19937_64 rng_;
};

}  // namespace yuxi::config
