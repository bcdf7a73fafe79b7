// Exponential backoff with full jitter.
#include "core/backoff.hpp"

#include <algorithm>

namespace yuxi::config {
namespace {

Backoff::Duration clamp_base(Backoff::Duration base) {
    return std::max(base, Backoff::Duration(1));
}

std::uint64_t random_seed() {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Backoff::Backoff(Duration base, Duration cap) : Backoff(base, cap, random_seed()) {}

Backoff::Backoff(Duration base, Duration cap, std::uint64_t seed)
    : base_(clamp_base(base)), cap_(std::max(cap, base_)), rng_(seed) {}

Backoff::Duration Backoff::ceiling() const noexcept {
    // Doubling stops at the cap, so no shift can overflow however many failures there are.
    Duration window = base_;
    for (std::uint32_t i = 0; i < failures_ && window < cap_; ++i) {
        window = window > cap_ / 2 ? cap_ : window * 2;
    }
    return std::min(window, cap_);
}

Backoff::Duration Backoff::next() {
    const Duration window = ceiling();
    if (failures_ < UINT32_MAX) {
        ++failures_;
    }
    std::uniform_int_distribution<Duration::rep> pick(0, window.count());
    return Duration(pick(rng_));
}

}  // namespace yuxi::config
