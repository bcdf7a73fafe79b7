// guarded(): the exception boundary of every libevent callback. An exception that escapes
// a callback is a defect, never a reason to end the process: it is counted
// (yuxi_config_injector_exceptions_total), logged, and the loop goes on.
#pragma once

#include <spdlog/spdlog.h>

#include <exception>
#include <string_view>

#include "metrics.hpp"

namespace yuxi::config::injector {

// Runs `fn`; returns false if it threw.
template <class Fn>
bool guarded(Metrics& metrics, std::string_view where, Fn&& fn) noexcept {
    try {
        fn();
        return true;
    } catch (const std::exception& e) {
        metrics.count_exception();
        try {
            spdlog::error("{}: unexpected exception: {}", where, e.what());
        } catch (...) {  // logging itself failed (no memory): the count stays
        }
    } catch (...) {
        metrics.count_exception();
        try {
            spdlog::error("{}: unexpected exception", where);
        } catch (...) {
        }
    }
    return false;
}

}  // namespace yuxi::config::injector
