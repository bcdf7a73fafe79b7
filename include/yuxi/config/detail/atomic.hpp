// Atomic access to fields of the shared segment, which are plain integers in memory
// that other processes map: every concurrent access goes through std::atomic_ref.
#pragma once

#include <atomic>
#include <cstdint>

namespace yuxi::config::detail {

// std::atomic_ref<T> needs a non-const T even for loads; a load never writes, so this is
// safe on a read-only mapping (8-byte loads are plain moves; no cmpxchg is ever emitted).
template <class T>
inline T load_acquire(const T& field) noexcept {
    return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_acquire);
}

template <class T>
inline T load_relaxed(const T& field) noexcept {
    return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

template <class T>
inline void store_release(T& field, T value) noexcept {
    std::atomic_ref<T>(field).store(value, std::memory_order_release);
}

template <class T>
inline void store_relaxed(T& field, T value) noexcept {
    std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}

template <class T>
inline T fetch_add_release(T& field, T value) noexcept {
    return std::atomic_ref<T>(field).fetch_add(value, std::memory_order_release);
}

}  // namespace yuxi::config::detail
