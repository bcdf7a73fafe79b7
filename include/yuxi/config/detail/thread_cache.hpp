// What a Client shares between its copies (the current mapping, replaced on remap) and
// what each thread keeps of it: a reference to the current mapping of the last few
// clients it used, so that the read path takes no lock and threads share no written line.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config::detail {

// Shared by a Client and its copies.
struct ClientState {
    std::string name;
    std::uint64_t id = 0;  // unique per state, never reused: keys the thread caches
    std::atomic<std::uint64_t> generation{0};
    std::mutex mu;
    std::shared_ptr<const Mapping> current;        // guarded by mu
    std::atomic<std::uint64_t> next_remap_ns{0};   // rate-limits failed remaps
    std::unique_ptr<WaitersMapping> waiters_page;  // guarded by mu; kept once mapped
    std::atomic<WaitersMapping*> waiters_ready{nullptr};
    std::uint64_t next_waiters_ns = 0;  // guarded by mu: rate-limits failed attempts

    // The waiters page of this segment name, mapped on first use; null if there is none
    // (an older agent, which wakes every sleeper) or this user may not write it.
    WaitersMapping* waiters() noexcept {
        if (WaitersMapping* w = waiters_ready.load(std::memory_order_acquire)) {
            return w;
        }
        std::lock_guard<std::mutex> lock(mu);
        if (waiters_page != nullptr) {
            return waiters_page.get();
        }
        const std::uint64_t now = monotonic_ns();
        if (now < next_waiters_ns) {
            return nullptr;
        }
        waiters_page = WaitersMapping::open(name);
        if (waiters_page == nullptr) {
            next_waiters_ns = now + 1000000000ULL;
            return nullptr;
        }
        waiters_ready.store(waiters_page.get(), std::memory_order_release);
        return waiters_page.get();
    }
};

inline std::uint64_t next_client_id() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// A thread's reference to one client's current mapping. `ref` owns `map` through a
// control block of this thread's own (the aliasing constructor over a per-thread holder),
// so that views and pins taken by different threads count on different cache lines.
struct ThreadSlot {
    std::uint64_t id = 0;
    std::uint64_t generation = 0;
    const Mapping* map = nullptr;
    std::shared_ptr<const Mapping> ref;
};

// A thread drops its reference to a retired mapping on its next read, so a replaced
// segment is unmapped once every thread has moved on.
struct ThreadCache {
    std::array<ThreadSlot, 4> slots;
};

// A plain pointer, trivially destructible and constant-initialized, so that the read path
// reaches the cache with one thread-local load: no initialization guard, no wrapper call.
inline thread_local ThreadCache* thread_cache = nullptr;
inline thread_local bool thread_cache_gone = false;

struct ThreadCacheOwner {
    ThreadCache cache;
    ~ThreadCacheOwner() {
        thread_cache = nullptr;
        thread_cache_gone = true;
    }
};

[[gnu::noinline]] inline ThreadCache& make_thread_cache() {
    if (thread_cache_gone) {
        // A read from another thread-local's destructor, after this thread's cache was
        // destroyed: a cache of its own, left to the end of the thread.
        thread_cache = new ThreadCache();
        return *thread_cache;
    }
    thread_local ThreadCacheOwner owner;
    thread_cache = &owner.cache;
    return owner.cache;
}

// A thread's holder of the current mapping, aligned so that its control block (the
// counts every owning view of this thread bumps) shares no cache line with another
// thread's: two threads' 32-byte blocks side by side made Client::view scale 1.2-1.7x.
struct alignas(64) MappingHolder {
    std::shared_ptr<const Mapping> mapping;
};

// Gives `slot` a reference of its own to the client's current mapping.
inline void refresh(ClientState& st, ThreadSlot& slot) noexcept {
    std::shared_ptr<const Mapping> current;
    {
        std::lock_guard<std::mutex> lock(st.mu);
        current = st.current;
        slot.generation = st.generation.load(std::memory_order_relaxed);
    }
    slot.map = current.get();
    try {
        auto holder = std::make_shared<MappingHolder>(MappingHolder{current});
        slot.ref = std::shared_ptr<const Mapping>(holder, current.get());
    } catch (...) {
        slot.ref = std::move(current);  // out of memory: share the mapping's count
    }
}

// Maps the segment now under the name. On failure keeps the retired mapping, which
// stays readable and whole, and tries again at most every 100 ms.
inline void remap(ClientState& st) noexcept {
    // Checked before the mutex: while the replacement cannot be mapped, readers keep
    // reading the retired mapping without contending on the lock.
    const std::uint64_t now = monotonic_ns();
    if (now < st.next_remap_ns.load(std::memory_order_relaxed)) {
        return;
    }
    std::lock_guard<std::mutex> lock(st.mu);
    if (!st.current->retired()) {
        return;  // another thread did it
    }
    try {
        auto fresh = Mapping::open(st.name);
        if (fresh->retired()) {
            throw SegmentError(SegmentError::Kind::system, "replacement not ready");
        }
        st.current = std::move(fresh);
        st.generation.fetch_add(1, std::memory_order_release);
    } catch (...) {
        st.next_remap_ns.store(now + 100000000ULL, std::memory_order_relaxed);
    }
}

// Moves the client's slot to the front, taking the least recently used one if this
// thread has none for it.
inline ThreadSlot& claim_thread_slot(ThreadCache& c, std::uint64_t id) noexcept {
    auto& slots = c.slots;
    std::size_t i = 0;
    while (i + 1 < slots.size() && slots[i].id != id) {
        ++i;
    }
    if (slots[i].id != id) {
        slots[i] = ThreadSlot{id, ~0ULL, nullptr, nullptr};  // forces a refresh
    }
    std::rotate(slots.begin(), slots.begin() + static_cast<std::ptrdiff_t>(i),
                slots.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    return slots[0];
}

// The slow path of Client::thread_slot: a first read on this thread, another client,
// a remap by another thread, or a retired mapping.
[[gnu::noinline, gnu::cold]] inline const ThreadSlot& thread_slot_slow(ClientState& st) noexcept {
    ThreadCache* c = thread_cache;
    if (c == nullptr) {
        try {
            c = &make_thread_cache();
        } catch (...) {
            std::terminate();  // a thread-local of a few pointers could not be made
        }
    }
    ThreadSlot& slot = claim_thread_slot(*c, st.id);
    if (slot.generation != st.generation.load(std::memory_order_acquire)) {
        refresh(st, slot);
    }
    if (slot.map->retired()) {
        remap(st);
        if (slot.generation != st.generation.load(std::memory_order_acquire)) {
            refresh(st, slot);
        }
    }
    return slot;
}

}  // namespace yuxi::config::detail
