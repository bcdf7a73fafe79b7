// The segment writer: the only code that writes a segment (layout.hpp has the protocol).
// It writes layout 2; with WriterOptions::layout = 1 it hands everything to the previous
// release's writer (segment_writer_v1.hpp), for clients built against the older header.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/segment/segment_types.hpp"
#include "agent/segment/writable_segment.hpp"
#include "yuxi/config/detail/segment_view.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent {

class Compactor;
namespace files {
struct OldSegment;
}
namespace v1 {
class LegacyWriter;
}

class SegmentWriter {
  public:
    // Takes the writer lock of `options.name` (a second writer gets WriterError naming
    // the holder), publishes `initial` at `revision` in a fresh segment, renames it over
    // the name and retires any segment that was there, so its readers remap. Changes the
    // limits refuse are left out and listed in `rejected`.
    [[nodiscard]] static SegmentWriter create(const WriterOptions& options,
                                              std::span<const Change> initial,
                                              std::uint64_t revision,
                                              std::vector<Rejected>* rejected = nullptr);

    // The revision of the valid segment (either layout) currently under `name`, or 0.
    static std::uint64_t existing_revision(const std::string& name) noexcept;

    SegmentWriter(SegmentWriter&& other) noexcept;
    SegmentWriter& operator=(SegmentWriter&& other) noexcept;
    SegmentWriter(const SegmentWriter&) = delete;
    SegmentWriter& operator=(const SegmentWriter&) = delete;
    ~SegmentWriter();

    // Publishes `batch` as `revision` (greater than the current one). Later changes of
    // a key in the batch win. Costs what changed. When the arena or the index fills up,
    // a compacted segment is built in the background and taken over by a later apply; only
    // a batch that does not fit at all waits for a compaction (see layout.hpp). Wakes no
    // one: call notify() once the batch is out, so that waiting readers see it.
    ApplyResult apply(std::span<const Change> batch, std::uint64_t revision,
                      std::uint64_t commit_ns = 0);

    // Wakes readers sleeping in wait_for_change: a futex wake, only if a reader announced
    // that it sleeps (the waiters page); with nobody waiting, no system call.
    void notify() noexcept;

    void heartbeat() noexcept;
    void set_source_state(SourceState state) noexcept;

    // On a clean stop: the state `stopped`, a last heartbeat, and a wake-up, so that
    // waiting readers see at once that no more changes come.
    void mark_stopped() noexcept;

    std::uint64_t revision() const noexcept;
    std::uint64_t live_entries() const noexcept;
    std::uint64_t segment_bytes() const noexcept;
    std::uint64_t arena_used() const noexcept;
    std::uint64_t arena_size() const noexcept;
    std::uint64_t compactions() const noexcept;
    std::uint32_t layout() const noexcept;
    const std::string& name() const noexcept { return options_.name; }
    // System calls notify() made to wake sleepers (none while nobody sleeps).
    std::uint64_t wakes() const noexcept { return wakes_; }

    // A compaction is being built in the background.
    bool compacting() const noexcept { return compactor_ != nullptr; }
    // Waits for the compaction being built, if any, and takes it over now.
    void finish_compaction();

    // The current value of a key (a view into the segment, valid until the next apply).
    std::optional<std::string_view> get(Namespace ns, std::string_view key) const noexcept;

    // Calls fn(e) for every live entry e (a detail::EntryRef, or a detail::v1::EntryRef
    // when writing layout 1: use `const auto&`), with e.ns(), e.key, e.value, e.category.
    template <class Fn>
    void for_each(Fn&& fn) const {
        if (legacy_ != nullptr) {
            for_each_legacy(fn);
            return;
        }
        const detail::SegmentView& v = seg_.view;
        for (std::uint64_t i = 0, n = v.slot_count(); i < n; ++i) {
            const auto r = v.slot_entry(i);
            if (r.status == detail::SegmentView::Status::found && !r.entry.tombstone()) {
                fn(r.entry);
            }
        }
    }

  private:
    SegmentWriter();

    struct Pending {
        std::uint64_t hash;
        std::uint64_t offset;  // of the new entry
        std::uint64_t pos;     // its slot position, or ~0 for a key new to the index
        Namespace ns;
        std::string_view key;
    };
    struct Planned {
        const Change* change;
        std::uint64_t hash;
        std::uint64_t pos;     // slot position in copy 0 (where it is, or would go)
        std::uint64_t offset;  // of the key's newest entry, 0 if absent
        std::size_t scalar;    // index into scratch_scalars_
    };

    template <class Fn>
    void for_each_legacy(Fn& fn) const;

    void plan(std::span<const Change* const> changes, std::uint64_t& bytes,
              std::uint64_t& new_keys);
    void publish(std::span<const Pending> pending, std::uint64_t revision, std::uint64_t commit_ns);
    void compact_now(std::span<const Change* const> batch, std::uint64_t revision,
                     std::uint64_t commit_ns);
    void maybe_start_compaction();
    bool take_over_compaction();
    void abandon_compaction() noexcept;
    void adopt(WritableSegment fresh, std::uint64_t revision, files::OldSegment* outside = nullptr);
    void start_prefaulter() noexcept;
    std::string temporary_path();
    void release() noexcept;

    WriterOptions options_;
    int lock_fd_ = -1;
    WritableSegment seg_;
    std::uint64_t revision_ = 0;
    std::uint64_t compactions_ = 0;
    std::uint64_t attempts_ = 0;  // new segments made: names their temporary files
    std::uint64_t writer_start_ns_ = 0;
    std::uint64_t commit_ns_ = 0;  // of the last batch
    std::uint64_t wakes_ = 0;
    SourceState source_state_ = SourceState::starting;
    layout::WaitersPage* waiters_ = nullptr;
    std::unique_ptr<Compactor> compactor_;
    std::unique_ptr<Prefaulter> prefaulter_;  // of seg_
    std::thread reaper_;                      // unmaps a replaced segment off the apply path
    std::unique_ptr<v1::LegacyWriter> legacy_;
    // Reused by apply() so that a small batch does not allocate.
    std::vector<const Change*> scratch_changes_;
    std::vector<Planned> scratch_plan_;
    std::vector<Pending> scratch_pending_;
    std::vector<std::uint64_t> scratch_positions_;
    std::vector<std::uint64_t> scratch_hashes_;
    std::vector<Scalar> scratch_scalars_;
    std::vector<std::string> scratch_unescaped_;
};

}  // namespace yuxi::config::agent

#include "agent/segment/segment_writer_v1.hpp"

template <class Fn>
void yuxi::config::agent::SegmentWriter::for_each_legacy(Fn& fn) const {
    legacy_->for_each(fn);
}
