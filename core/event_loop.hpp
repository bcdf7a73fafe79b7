// Small pieces for code on a libevent loop: owning pointers for events and loops (and,
// from timeval.hpp, durations as the timevals libevent takes).
#pragma once

#include <event2/event.h>

#include <memory>

#include "core/timeval.hpp"

namespace yuxi::config {

struct EventFree {
    void operator()(event* e) const noexcept { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;

struct EventBaseFree {
    void operator()(event_base* b) const noexcept { event_base_free(b); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseFree>;

}  // namespace yuxi::config
