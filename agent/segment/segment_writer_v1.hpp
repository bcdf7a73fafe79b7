// The segment writer of layout 1, kept for one release (segment_writer_v1.cpp). The agent
// reaches it through SegmentWriter with WriterOptions::layout = 1.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/segment/segment_types.hpp"
#include "yuxi/config/detail/segment_view_v1.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent::v1 {

class LegacyWriter {
  public:
    // Takes the writer lock of `options.name` (a second writer gets WriterError naming
    // the holder), publishes `initial` at `revision` in a fresh segment, renames it over
    // the name and retires any segment that was there, so its readers remap. Changes the
    // limits refuse are left out and listed in `rejected`.
    [[nodiscard]] static LegacyWriter create(const WriterOptions& options,
                                             std::span<const Change> initial,
                                             std::uint64_t revision,
                                             std::vector<Rejected>* rejected = nullptr);

    LegacyWriter(LegacyWriter&& other) noexcept;
    LegacyWriter& operator=(LegacyWriter&& other) noexcept;
    LegacyWriter(const LegacyWriter&) = delete;
    LegacyWriter& operator=(const LegacyWriter&) = delete;
    ~LegacyWriter();

    // Publishes `batch` as `revision` (greater than the current one). Later changes of
    // a key in the batch win. Costs what changed, unless the arena or the index is full:
    // then the segment is compacted into a new one (see layout.hpp). Wakes no one: call
    // notify() once the batch is out, so that waiting readers see it.
    ApplyResult apply(std::span<const Change> batch, std::uint64_t revision,
                      std::uint64_t commit_ns = 0);

    // Wakes readers sleeping in wait_for_change (a futex wake: one system call).
    void notify() noexcept;

    void heartbeat() noexcept;
    void set_source_state(SourceState state) noexcept;

    // On a clean stop: the state `stopped`, a last heartbeat, and a wake-up, so that
    // waiting readers see at once that no more changes come.
    void mark_stopped() noexcept;

    std::uint64_t revision() const noexcept { return revision_; }
    std::uint64_t live_entries() const noexcept { return live_entries_; }
    std::uint64_t segment_bytes() const noexcept { return size_; }
    std::uint64_t arena_used() const noexcept;
    std::uint64_t arena_size() const noexcept;
    std::uint64_t compactions() const noexcept { return compactions_; }
    const std::string& name() const noexcept { return options_.name; }

    // The current value of a key (a view into the segment, valid until the next apply).
    std::optional<std::string_view> get(Namespace ns, std::string_view key) const noexcept;

    // Calls fn(const detail::v1::EntryRef&) for every live entry.
    template <class Fn>
    void for_each(Fn&& fn) const {
        for (std::uint64_t i = 0, n = view_.slot_count(); i < n; ++i) {
            const auto r = view_.slot_entry(i);
            if (r.status == detail::v1::SegmentView::Status::found && !r.entry.tombstone()) {
                fn(r.entry);
            }
        }
    }

  private:
    LegacyWriter() = default;

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
    };
    // What compaction restores if it fails before the rename.
    struct Saved {
        unsigned char* base;
        std::uint64_t size;
        detail::v1::SegmentView view;
        std::uint64_t revision, live_entries, live_bytes, used_slots, prefaulted;
    };

    std::string map_new(std::uint64_t keys, std::uint64_t bytes);
    void release() noexcept;
    bool is_live(std::uint64_t offset) const noexcept;
    std::uint64_t append(std::uint64_t hash, Namespace ns, std::string_view key,
                         std::string_view category, std::optional<std::string_view> value,
                         std::uint64_t revision, std::uint64_t prev);
    void publish(std::span<const Pending> pending, std::uint64_t revision, std::uint64_t commit_ns);
    void build_index(std::span<const Pending> pending, std::uint64_t revision,
                     std::uint64_t commit_ns);
    void compact(std::span<const Change* const> batch, std::uint64_t revision,
                 std::uint64_t commit_ns);
    void prefault(std::uint64_t end) noexcept;
    Saved save() const noexcept;
    void restore(const Saved& s) noexcept;

    WriterOptions options_;
    int lock_fd_ = -1;
    unsigned char* base_ = nullptr;
    std::uint64_t size_ = 0;
    detail::v1::SegmentView view_;
    std::uint64_t revision_ = 0;
    std::uint64_t live_entries_ = 0;
    std::uint64_t live_bytes_ = 0;  // arena bytes of the newest live entries
    std::uint64_t used_slots_ = 0;
    std::uint64_t prefaulted_ = 0;  // arena offset up to which pages are populated
    std::uint64_t compactions_ = 0;
    std::uint64_t writer_start_ns_ = 0;
    SourceState source_state_ = SourceState::starting;
    // Reused by apply() so that a small batch does not allocate.
    std::vector<const Change*> scratch_changes_;
    std::vector<Planned> scratch_plan_;
    std::vector<Pending> scratch_pending_;
    std::vector<std::uint64_t> scratch_positions_;
};

}  // namespace yuxi::config::agent::v1
