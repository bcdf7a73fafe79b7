// The segment writer of layout 1 (detail/layout_v1.hpp), the previous release's, kept for
// one release so that clients built against the older header can be served: it appends
// entries, flips the latch, and compacts in the foreground. Frozen apart from what it
// shares with the layout-2 writer (files, batches); new work goes into segment_writer.cpp.
#include "agent/segment/segment_writer_v1.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>

#include "agent/segment/segment_batch.hpp"
#include "agent/segment/segment_files.hpp"
#include "yuxi/config/detail/atomic.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config::agent::v1 {
namespace {

namespace lv1 = layout::v1;
using files::errno_text;
using files::OldSegment;
using files::realtime_ns;
using files::retiring_path;

using detail::load_relaxed;
using detail::store_relaxed;
using detail::store_release;

using files::create_segment_file;
using files::kPage;
using files::NewFile;
using files::prefault_arena;
using files::round_up;

std::optional<std::string_view> value_of(const Change& c) {
    if (!c.value) {
        return std::nullopt;
    }
    return std::string_view(*c.value);
}

std::uint64_t entry_bytes(const Change& c) {
    return lv1::entry_size(c.key.size(), c.category.size(), c.value ? c.value->size() : 0);
}

// The slot of (ns, key) in a copy: where it is, or the empty slot where it would go.
struct Probe {
    std::uint64_t pos = 0;
    std::uint64_t offset = 0;  // of the key's newest entry, 0 if absent
};

Probe probe(const detail::v1::SegmentView& v, const lv1::Slot* table, Namespace ns,
            std::string_view key, std::uint64_t hash) {
    const std::uint64_t mask = v.slot_count() - 1;
    for (std::uint64_t i = hash & mask;; i = (i + 1) & mask) {
        const std::uint64_t h = load_relaxed(table[i].hash);
        if (h == 0) {
            return {i, 0};
        }
        if (h != hash) {
            continue;
        }
        const std::uint64_t off = load_relaxed(table[i].offset);
        detail::v1::EntryRef e;
        if (v.decode(off, e) && e.header->ns == static_cast<std::uint8_t>(ns) && e.key == key) {
            return {i, off};
        }
    }
}

constexpr std::uint64_t kNew = ~0ULL;

}  // namespace

LegacyWriter LegacyWriter::create(const WriterOptions& options, std::span<const Change> initial,
                                  std::uint64_t revision, std::vector<Rejected>* rejected) {
    try {
        detail::check_name(options.name);
    } catch (const SegmentError& e) {
        throw WriterError(e.what());
    }
    LegacyWriter w;
    w.options_ = options;
    w.source_state_ = options.initial_state;
    w.writer_start_ns_ = realtime_ns();
    w.lock_fd_ = files::take_writer_lock(options.name);
    files::remove_stale_temporaries(options.name);
    std::vector<Rejected> refused;
    std::vector<const Change*> changes;
    dedupe(initial, options, refused, changes);
    w.compact(changes, revision, 0);
    if (rejected != nullptr) {
        *rejected = std::move(refused);
    }
    return w;
}

LegacyWriter::LegacyWriter(LegacyWriter&& other) noexcept {
    *this = std::move(other);
}

LegacyWriter& LegacyWriter::operator=(LegacyWriter&& other) noexcept {
    if (this != &other) {
        release();
        options_ = std::move(other.options_);
        lock_fd_ = std::exchange(other.lock_fd_, -1);
        base_ = std::exchange(other.base_, nullptr);
        size_ = std::exchange(other.size_, 0);
        view_ = std::exchange(other.view_, {});
        revision_ = other.revision_;
        live_entries_ = other.live_entries_;
        live_bytes_ = other.live_bytes_;
        used_slots_ = other.used_slots_;
        prefaulted_ = other.prefaulted_;
        compactions_ = other.compactions_;
        writer_start_ns_ = other.writer_start_ns_;
        source_state_ = other.source_state_;
    }
    return *this;
}

LegacyWriter::~LegacyWriter() {
    release();
}

void LegacyWriter::release() noexcept {
    if (base_ != nullptr) {
        ::munmap(base_, size_);
        base_ = nullptr;
    }
    if (lock_fd_ >= 0) {
        ::close(lock_fd_);
        lock_fd_ = -1;
    }
}

std::uint64_t LegacyWriter::arena_used() const noexcept {
    return load_relaxed(view_.header().arena_used);
}

std::uint64_t LegacyWriter::arena_size() const noexcept {
    return view_.header().arena_size;
}

std::optional<std::string_view> LegacyWriter::get(Namespace ns,
                                                  std::string_view key) const noexcept {
    const auto r = view_.find(0, ns, key, detail::v1::key_hash(ns, key));
    if (r.status != detail::v1::SegmentView::Status::found || r.entry.tombstone()) {
        return std::nullopt;
    }
    return r.entry.value;
}

ApplyResult LegacyWriter::apply(std::span<const Change> batch, std::uint64_t revision,
                                std::uint64_t commit_ns) {
    ApplyResult result;
    // The scratch vectors are members so that a small batch allocates nothing.
    std::vector<const Change*>& changes = scratch_changes_;
    dedupe(batch, options_, result.rejected, changes);
    std::vector<Planned>& plan = scratch_plan_;
    plan.clear();
    std::uint64_t bytes = 0;
    std::uint64_t new_keys = 0;
    for (const Change* c : changes) {
        const std::uint64_t h = detail::v1::key_hash(c->ns, c->key);
        const Probe p = probe(view_, view_.slots(0), c->ns, c->key, h);
        if (!c->value && !is_live(p.offset)) {
            continue;  // deleting what is not there
        }
        if (p.offset != 0) {
            // Copy 1 has the key at the same position: start that miss now, not at publish.
            __builtin_prefetch(&view_.slots(1)[p.pos], 1);
        }
        bytes += entry_bytes(*c);
        new_keys += p.offset == 0 ? 1 : 0;
        plan.push_back({c, h, p.pos, p.offset});
    }
    if (arena_used() + bytes > arena_size() || 2 * (used_slots_ + new_keys) > view_.slot_count()) {
        std::vector<const Change*> kept;
        kept.reserve(plan.size());
        for (const Planned& pl : plan) {
            kept.push_back(pl.change);
        }
        compact(kept, revision, commit_ns);
        result.applied = kept.size();
        result.compacted = true;
        return result;
    }
    std::vector<Pending>& pending = scratch_pending_;
    pending.clear();
    for (const Planned& pl : plan) {
        const Change& c = *pl.change;
        const std::uint64_t off =
            append(pl.hash, c.ns, c.key, c.category, value_of(c), revision, pl.offset);
        pending.push_back({pl.hash, off, pl.offset != 0 ? pl.pos : kNew, c.ns, c.key});
    }
    publish(pending, revision, commit_ns);
    result.applied = pending.size();
    return result;
}

bool LegacyWriter::is_live(std::uint64_t offset) const noexcept {
    detail::v1::EntryRef e;
    return offset != 0 && view_.decode(offset, e) && !e.tombstone();
}

std::uint64_t LegacyWriter::append(std::uint64_t hash, Namespace ns, std::string_view key,
                                   std::string_view category, std::optional<std::string_view> value,
                                   std::uint64_t revision, std::uint64_t prev) {
    auto& header = *reinterpret_cast<layout::SegmentHeader*>(base_);
    const std::uint64_t offset = header.arena_offset + load_relaxed(header.arena_used);
    // Not a null view for a tombstone: memcpy from a null pointer is undefined, even of 0 bytes.
    const std::string_view v = value.value_or(std::string_view(""));
    const std::uint64_t bytes = lv1::entry_size(key.size(), category.size(), v.size());
    prefault(offset + bytes);
    auto* e = reinterpret_cast<lv1::EntryHeader*>(base_ + offset);
    e->hash = hash;
    e->revision = revision;
    e->prev_offset = prev;
    e->value_len = v.size();
    e->checksum = detail::entry_checksum(key, category, v);
    e->key_len = static_cast<std::uint32_t>(key.size());
    e->ns = static_cast<std::uint8_t>(ns);
    e->flags = value ? 0 : layout::kEntryTombstone;
    e->category_len = static_cast<std::uint8_t>(category.size());
    e->reserved = 0;
    auto* p = reinterpret_cast<char*>(e + 1);
    std::memcpy(p, key.data(), key.size());
    std::memcpy(p + key.size(), category.data(), category.size());
    std::memcpy(p + key.size() + category.size(), v.data(), v.size());
    p[key.size() + category.size() + v.size()] = '\0';
    store_relaxed(header.arena_used, header.arena_used + bytes);

    // Live accounting for the sizing of the next compaction.
    detail::v1::EntryRef old;
    if (prev != 0 && view_.decode(prev, old) && !old.tombstone()) {
        live_entries_ -= 1;
        live_bytes_ -= lv1::entry_size(old.key.size(), old.category.size(), old.value.size());
    }
    if (value) {
        live_entries_ += 1;
        live_bytes_ += bytes;
    }
    return offset;
}

void LegacyWriter::publish(std::span<const Pending> pending, std::uint64_t revision,
                           std::uint64_t commit_ns) {
    auto& header = *reinterpret_cast<layout::SegmentHeader*>(base_);
    std::vector<std::uint64_t>& positions = scratch_positions_;
    positions.resize(pending.size());
    for (unsigned copy = 0; copy < 2; ++copy) {
        // Odd: readers use copy 1 while copy 0 changes; even: the reverse.
        detail::fetch_add_release(header.seq, std::uint64_t{1});
        auto* table = const_cast<lv1::Slot*>(view_.slots(copy));
        for (std::size_t i = 0; i < pending.size(); ++i) {
            const Pending& p = pending[i];
            if (copy == 0) {
                positions[i] = p.pos != kNew ? p.pos : probe(view_, table, p.ns, p.key, p.hash).pos;
            }
            lv1::Slot& slot = table[positions[i]];
            store_release(slot.offset, p.offset);
            if (p.pos == kNew) {
                store_release(slot.hash, p.hash);
            }
        }
        if (copy == 0) {
            for (const Pending& p : pending) {
                used_slots_ += p.pos == kNew ? 1 : 0;
            }
        }
        auto& ch = const_cast<layout::CopyHeader&>(view_.copy_header(copy));
        store_release(ch.live_entries, live_entries_);
        store_release(ch.used_slots, used_slots_);
        store_release(ch.commit_ns, commit_ns);
        store_release(ch.revision, revision);
    }
    store_relaxed(header.updates_applied, header.updates_applied + pending.size());
    detail::fetch_add_release(header.notify, 1U);
    revision_ = revision;
}

void LegacyWriter::notify() noexcept {
    if (base_ != nullptr) {
        detail::futex_wake_all(&reinterpret_cast<layout::SegmentHeader*>(base_)->notify);
    }
}

void LegacyWriter::heartbeat() noexcept {
    if (base_ != nullptr) {
        auto& h = *reinterpret_cast<layout::SegmentHeader*>(base_);
        store_release(h.heartbeat_ns, detail::monotonic_ns());
    }
}

void LegacyWriter::set_source_state(SourceState state) noexcept {
    source_state_ = state;
    if (base_ == nullptr) {
        return;
    }
    auto& h = *reinterpret_cast<layout::SegmentHeader*>(base_);
    if (load_relaxed(h.source_state) != static_cast<std::uint32_t>(state)) {
        store_relaxed(h.source_changed_ns, detail::monotonic_ns());
        store_release(h.source_state, static_cast<std::uint32_t>(state));
    }
}

void LegacyWriter::mark_stopped() noexcept {
    set_source_state(SourceState::stopped);
    heartbeat();
    notify();
}

void LegacyWriter::prefault(std::uint64_t end) noexcept {
    prefaulted_ = prefault_arena(base_, size_, prefaulted_, end);
}

// Creates a new segment at the name holding the live entries of the current one (if
// any) with `batch` applied on top, all published at `revision`, and retires the old.
void LegacyWriter::compact(std::span<const Change* const> batch, std::uint64_t revision,
                           std::uint64_t commit_ns) {
    std::unordered_set<BatchKey, BatchKeyHash> replaced;
    std::uint64_t keys = 0;
    std::uint64_t bytes = 0;
    for (const Change* c : batch) {
        replaced.insert({c->ns, c->key});
        keys += c->value ? 1 : 0;
        bytes += c->value ? entry_bytes(*c) : 0;
    }
    std::vector<detail::v1::EntryRef> kept;
    if (base_ != nullptr) {
        kept.reserve(live_entries_);
        for_each([&](const detail::v1::EntryRef& e) {
            if (!replaced.contains({e.ns(), e.key})) {
                kept.push_back(e);
                bytes += lv1::entry_size(e.key.size(), e.category.size(), e.value.size());
            }
        });
        keys += kept.size();
    }

    OldSegment old;
    if (base_ == nullptr) {
        old = OldSegment::open(options_.name);
    }
    const Saved saved = save();
    const std::string path = map_new(keys, bytes);
    try {
        std::vector<Pending> pending;
        pending.reserve(keys);
        for (const detail::v1::EntryRef& e : kept) {
            const std::uint64_t h = e.header->hash;
            const std::uint64_t off =
                append(h, e.ns(), e.key, e.category, e.value, e.revision(), 0);
            pending.push_back({h, off, kNew, e.ns(), e.key});
        }
        for (const Change* c : batch) {
            if (c->value) {
                const std::uint64_t h = detail::v1::key_hash(c->ns, c->key);
                const std::uint64_t off =
                    append(h, c->ns, c->key, c->category, value_of(*c), revision, 0);
                pending.push_back({h, off, kNew, c->ns, c->key});
            }
        }
        build_index(pending, revision, commit_ns);
        ::unlink(retiring_path(options_.name).c_str());
        (void)::link(detail::segment_path(options_.name).c_str(),
                     retiring_path(options_.name).c_str());
        if (::rename(path.c_str(), detail::segment_path(options_.name).c_str()) != 0) {
            throw WriterError("cannot rename " + path + " over the live segment: " + errno_text());
        }
    } catch (...) {
        ::munmap(base_, size_);
        ::unlink(path.c_str());
        ::unlink(retiring_path(options_.name).c_str());
        restore(saved);
        throw;
    }
    if (saved.base != nullptr) {
        OldSegment{saved.base, saved.size}.retire();
        ++compactions_;
    } else {
        old.retire();
    }
    ::unlink(retiring_path(options_.name).c_str());
}

// Creates and maps an empty segment, sized for `keys` entries of `bytes`, under a
// temporary name; returns its path. The current mapping is left to the caller.
std::string LegacyWriter::map_new(std::uint64_t keys, std::uint64_t bytes) {
    const std::uint64_t slots =
        std::max<std::uint64_t>(options_.min_slots, std::bit_ceil(2 * keys + 64));
    const std::uint64_t arena = round_up(
        std::max<std::uint64_t>(options_.min_arena_bytes, 2 * bytes + options_.max_value_bytes / 4),
        kPage);
    const std::string path = detail::segment_path(
        options_.name + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(compactions_));
    const std::uint64_t copy = lv1::copy_bytes_for(slots);
    const std::uint64_t arena_offset = round_up(layout::kHeaderSize + 2 * copy, kPage);
    const std::uint64_t total = arena_offset + arena;
    const NewFile file = create_segment_file(path, total, arena_offset);
    base_ = file.base;
    size_ = file.size;
    auto& h = *reinterpret_cast<layout::SegmentHeader*>(base_);
    h.magic = layout::kMagic;
    h.version = lv1::kVersion;
    h.fingerprint = lv1::kFingerprint;
    h.total_size = total;
    h.index_offset = layout::kHeaderSize;
    h.copy_bytes = copy;
    h.slot_count = slots;
    h.arena_offset = arena_offset;
    h.arena_size = arena;
    h.writer_pid = static_cast<std::uint64_t>(::getpid());
    h.writer_start_ns = writer_start_ns_;
    h.created_ns = realtime_ns();
    h.heartbeat_ns = detail::monotonic_ns();
    h.source_changed_ns = h.heartbeat_ns;
    h.source_state = static_cast<std::uint32_t>(source_state_);
    std::string error;
    if (!view_.attach(base_, size_, error)) {
        throw WriterError("internal error: new segment rejected: " + error);
    }
    prefaulted_ = arena_offset;
    live_entries_ = 0;
    live_bytes_ = 0;
    used_slots_ = 0;
    return path;
}

// Fills both index copies of a segment no reader can see yet; every key is new.
void LegacyWriter::build_index(std::span<const Pending> pending, std::uint64_t revision,
                               std::uint64_t commit_ns) {
    auto& h = *reinterpret_cast<layout::SegmentHeader*>(base_);
    const std::uint64_t mask = view_.slot_count() - 1;
    for (unsigned copy = 0; copy < 2; ++copy) {
        auto* table = const_cast<lv1::Slot*>(view_.slots(copy));
        for (const Pending& p : pending) {
            std::uint64_t i = p.hash & mask;
            while (table[i].hash != 0) {
                i = (i + 1) & mask;
            }
            table[i].offset = p.offset;
            table[i].hash = p.hash;
        }
        auto& ch = const_cast<layout::CopyHeader&>(view_.copy_header(copy));
        ch.revision = revision;
        ch.live_entries = live_entries_;
        ch.used_slots = pending.size();
        ch.commit_ns = commit_ns;
    }
    used_slots_ = pending.size();
    h.updates_applied = pending.size();
    revision_ = revision;
}

LegacyWriter::Saved LegacyWriter::save() const noexcept {
    return {base_, size_, view_, revision_, live_entries_, live_bytes_, used_slots_, prefaulted_};
}

void LegacyWriter::restore(const Saved& s) noexcept {
    base_ = s.base;
    size_ = s.size;
    view_ = s.view;
    revision_ = s.revision;
    live_entries_ = s.live_entries;
    live_bytes_ = s.live_bytes;
    used_slots_ = s.used_slots;
    prefaulted_ = s.prefaulted;
}

}  // namespace yuxi::config::agent::v1
