// Populates the pages of a segment's arena ahead of the writer, on a thread of its own.
//
// Every new entry lands on pages no one has touched: the kernel must allocate and zero
// them. Done on the apply path (one MADV_POPULATE_WRITE per MiB), that was about a quarter
// of an apply's time. The writer tells the Prefaulter where its arena ends after each
// append; the thread keeps a window populated beyond it, so applies find their pages
// ready. Nothing depends on it for correctness: the writer populates for itself whatever
// the thread has not reached (a kernel without MADV_POPULATE_WRITE, a thread that could
// not start, a writer faster than the kernel).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace yuxi::config::agent {

class Prefaulter {
  public:
    // Populates pages of [base, base + size) on request, from offset `from` on. Throws
    // std::system_error when the thread cannot start.
    Prefaulter(unsigned char* base, std::uint64_t size, std::uint64_t from);
    ~Prefaulter();
    Prefaulter(const Prefaulter&) = delete;
    Prefaulter& operator=(const Prefaulter&) = delete;

    // The writer's arena now ends at `end`: keep the window beyond it populated. Costs a
    // comparison, and a wake-up of the thread once per half window.
    void ahead(std::uint64_t end) noexcept;
    // Every page below this offset is populated.
    std::uint64_t done() const noexcept { return done_.load(std::memory_order_acquire); }

    // Bytes populated beyond the writer's arena; requested again once half of it is used.
    static constexpr std::uint64_t kWindow = 8ULL << 20;

  private:
    void run() noexcept;

    unsigned char* const base_;
    const std::uint64_t size_;
    std::uint64_t asked_ = 0;  // the writer's last request (writer thread only)
    std::atomic<std::uint64_t> done_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::uint64_t wanted_ = 0;  // guarded by mutex_
    bool stop_ = false;         // guarded by mutex_
    std::thread thread_;
};

}  // namespace yuxi::config::agent
