// Compaction off the apply path: a thread of its own builds the compacted segment (the
// newest live entry of every key, read from the live segment without the latch) while the
// writer keeps publishing into the live one, then replays what the writer appended
// meanwhile, reading the live arena up to its `arena_used`. The writer takes the result
// over at its next apply, replays the few entries appended since, and renames it over the
// live name: the only pause the writer sees is that hand-over.
//
// Memory ordering: the builder reads only published bytes of the live segment (slots
// with acquire loads, the arena below an acquire load of `arena_used`, which the writer
// stores with release after each entry), and writes only the new segment, which the
// writer touches only after joining the builder.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "agent/segment/writable_segment.hpp"
#include "yuxi/config/detail/segment_view.hpp"

namespace yuxi::config::agent {

class Compactor {
  public:
    // Starts building, at `path`, a compaction of the segment `live` (the writer's own
    // mapping, which must outlive this object) into a segment of geometry `g`. The entries
    // the writer appends from arena offset `scan_from` on are replayed.
    Compactor(const detail::SegmentView& live, std::string path, Geometry g,
              std::uint64_t scan_from, std::uint64_t writer_start_ns);
    ~Compactor();  // joins; removes the new segment unless taken
    Compactor(const Compactor&) = delete;
    Compactor& operator=(const Compactor&) = delete;

    // The builder is done (successfully or not): finish() will not wait.
    bool ready() const noexcept { return done_.load(std::memory_order_acquire); }

    // Waits for the builder. On success returns true and hands over the new segment and
    // the arena offset of the live segment up to which its entries are in it.
    bool finish(WritableSegment& out, std::uint64_t& replayed_to);

    // Why the build failed, after finish() returned false.
    const std::string& error() const noexcept { return error_; }

  private:
    void run() noexcept;
    void build();

    detail::SegmentView live_;
    std::string path_;
    Geometry geometry_;
    std::uint64_t writer_start_ns_;
    WritableSegment out_;
    std::uint64_t replayed_to_;
    std::string error_;
    bool taken_ = false;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

}  // namespace yuxi::config::agent
