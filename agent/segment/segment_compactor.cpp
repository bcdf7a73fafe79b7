// The background compaction of a layout-2 segment (see segment_compactor.hpp).
#include "agent/segment/segment_compactor.hpp"

#include <unistd.h>

#include <exception>
#include <utility>

#include "yuxi/config/detail/atomic.hpp"

namespace yuxi::config::agent {
namespace {

// Replay rounds stop once a round had this little to do: the writer takes the rest.
constexpr std::uint64_t kCaughtUpBytes = 64 << 10;
constexpr int kMaxRounds = 64;

}  // namespace

Compactor::Compactor(const detail::SegmentView& live, std::string path, Geometry g,
                     std::uint64_t scan_from, std::uint64_t writer_start_ns)
    : live_(live),
      path_(std::move(path)),
      geometry_(g),
      writer_start_ns_(writer_start_ns),
      replayed_to_(scan_from) {
    thread_ = std::thread([this] { run(); });
}

Compactor::~Compactor() {
    if (thread_.joinable()) {
        thread_.join();
    }
    if (!taken_ && out_.mapped()) {
        out_.unmap();
        ::unlink(path_.c_str());
    }
}

void Compactor::run() noexcept {
    try {
        build();
    } catch (const std::exception& e) {
        error_ = e.what();
    } catch (...) {
        error_ = "unknown error";
    }
    if (!error_.empty() && out_.mapped()) {
        out_.unmap();
        ::unlink(path_.c_str());
    }
    done_.store(true, std::memory_order_release);
}

void Compactor::build() {
    out_ = WritableSegment::create(path_, geometry_, writer_start_ns_, SourceState::starting);
    // The newest entry of every key, as the slots show it now: slot_entry needs no latch.
    const std::uint64_t n = live_.slot_count();
    for (std::uint64_t i = 0; i < n; ++i) {
        if (i + 16 < n) {
            __builtin_prefetch(&live_.slots(0)[i + 16]);
        }
        const auto r = live_.slot_entry(i);
        if (r.status != detail::SegmentView::Status::found || r.entry.tombstone()) {
            continue;
        }
        const layout::EntryHeader& h = *r.entry.header;
        const std::uint64_t bytes =
            layout::entry_size(h.key_len, h.category_len, h.value_len, h.extra_len);
        if (!out_.fits(bytes, 1)) {
            throw WriterError("the compacted segment is too small");
        }
        const std::uint64_t hash = r.entry.hash();
        const std::uint64_t at = out_.copy(r.entry, 0);
        out_.set_slot(out_.claim_slot(hash), hash, at);
    }
    // What the writer appended meanwhile, in rounds, until a round finds little to do.
    const std::uint64_t arena_offset = live_.header().arena_offset;
    for (int round = 0; round < kMaxRounds; ++round) {
        const std::uint64_t to = arena_offset + detail::load_acquire(live_.header().arena_used);
        const std::uint64_t from = replayed_to_;
        if (!replay(out_, live_, from, to)) {
            throw WriterError("the compacted segment is too small");
        }
        replayed_to_ = to;
        if (to - from < kCaughtUpBytes) {
            break;
        }
    }
}

bool Compactor::finish(WritableSegment& out, std::uint64_t& replayed_to) {
    if (thread_.joinable()) {
        thread_.join();
    }
    if (!error_.empty() || !out_.mapped()) {
        return false;
    }
    out = out_;
    replayed_to = replayed_to_;
    taken_ = true;
    return true;
}

}  // namespace yuxi::config::agent
