// A std::chrono duration as the timeval that libevent and hiredis take.
#pragma once

#include <sys/time.h>

#include <chrono>

namespace yuxi::config {

// `d` as a timeval; negative durations are zero.
// `d` as a timeval; negative durations are zero.
template <class Rep, class Period>
timeval to_timeval(std::chrono::duration<Rep, Period> d) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    if (us <= 0) {
        return timeval{0, 0};
    }
    return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

}  // namespace yuxi::config
