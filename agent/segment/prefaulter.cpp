// The arena's pages, populated ahead of the writer (prefaulter.hpp).
#include "agent/segment/prefaulter.hpp"

#include <sys/mman.h>

#include <algorithm>

#include "agent/segment/segment_files.hpp"

namespace yuxi::config::agent {

Prefaulter::Prefaulter(unsigned char* base, std::uint64_t size, std::uint64_t from)
    : base_(base), size_(size), done_(files::round_up(from, files::kPage)) {
    thread_ = std::thread([this] { run(); });
}

Prefaulter::~Prefaulter() {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void Prefaulter::ahead(std::uint64_t end) noexcept {
    if (end + kWindow / 2 <= asked_) [[likely]] {
        return;
    }
    asked_ = std::min(end + kWindow, size_);
    {
        const std::lock_guard lock(mutex_);
        wanted_ = asked_;
    }
    wake_.notify_one();
}

void Prefaulter::run() noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock,
                   [this] { return stop_ || wanted_ > done_.load(std::memory_order_relaxed); });
        if (stop_) {
            return;
        }
        const std::uint64_t from = done_.load(std::memory_order_relaxed);
        // A step at a time, so that a stop request (the segment is about to be unmapped)
        // waits for one step at most.
        const std::uint64_t to = std::min(
            files::round_up(std::min(wanted_, from + files::kPrefaultStep), files::kPage), size_);
        if (to <= from) {
            return;  // the end of the segment
        }
        lock.unlock();
        bool ok = false;
#ifdef MADV_POPULATE_WRITE
        ok = ::madvise(base_ + from, to - from, MADV_POPULATE_WRITE) == 0;
#endif
        lock.lock();
        if (!ok) {
            return;  // unsupported or out of memory: the writer populates for itself
        }
        done_.store(to, std::memory_order_release);
    }
}

}  // namespace yuxi::config::agent
