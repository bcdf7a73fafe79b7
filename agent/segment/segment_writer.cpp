// The segment writer: appends entries, flips the latch, hands compaction to a background
// builder and takes its result over.
#include "agent/segment/segment_writer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>

#include "agent/segment/segment_batch.hpp"
#include "agent/segment/segment_compactor.hpp"
#include "agent/segment/segment_files.hpp"
#include "agent/segment/segment_writer_v1.hpp"
#include "yuxi/config/detail/atomic.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/mapping.hpp"
#include "yuxi/config/detail/reads.hpp"

namespace yuxi::config::agent {
namespace {

using detail::load_relaxed;
using detail::store_relaxed;
using detail::store_release;

constexpr std::uint64_t kNew = ~0ULL;

std::optional<std::string_view> value_of(const Change& c) {
    if (!c.value) {
        return std::nullopt;
    }
    return std::string_view(*c.value);
}

// A compaction starts in the background once the arena is this full (or the index this
// dense, at a load factor of 3/8 where the limit is 1/2), leaving a quarter of the arena
// for the changes that arrive while it is built.
bool wants_compaction(const WritableSegment& s) noexcept {
    return s.arena_used() > s.arena_size() / 4 * 3 || 8 * s.used_slots > 3 * s.view.slot_count();
}

void fetch_add_seq_cst(std::uint32_t& field, std::uint32_t v) noexcept {
    std::atomic_ref<std::uint32_t>(field).fetch_add(v, std::memory_order_seq_cst);
}

}  // namespace

SegmentWriter::SegmentWriter() = default;

SegmentWriter SegmentWriter::create(const WriterOptions& options, std::span<const Change> initial,
                                    std::uint64_t revision, std::vector<Rejected>* rejected) {
    try {
        detail::check_name(options.name);
    } catch (const SegmentError& e) {
        throw WriterError(e.what());
    }
    if (options.layout != layout::kVersion && options.layout != layout::v1::kVersion) {
        throw WriterError("segment layout " + std::to_string(options.layout) +
                          " is not one this agent writes (1 or " +
                          std::to_string(layout::kVersion) + ")");
    }
    SegmentWriter w;
    w.options_ = options;
    if (options.layout == layout::v1::kVersion) {
        w.legacy_ = std::make_unique<v1::LegacyWriter>(
            v1::LegacyWriter::create(options, initial, revision, rejected));
        return w;
    }
    w.source_state_ = options.initial_state;
    w.writer_start_ns_ = files::realtime_ns();
    w.lock_fd_ = files::take_writer_lock(options.name);
    files::remove_stale_temporaries(options.name);
    w.waiters_ = files::map_waiters_page(options.name);
    std::vector<Rejected> refused;
    std::vector<const Change*> changes;
    dedupe(initial, options, refused, changes);
    w.compact_now(changes, revision, 0);
    if (rejected != nullptr) {
        *rejected = std::move(refused);
    }
    return w;
}

std::uint64_t SegmentWriter::existing_revision(const std::string& name) noexcept {
    try {
        const auto m = detail::Mapping::open(name);
        return m->legacy() ? detail::latched_revision(m->legacy_view())
                           : detail::latched_revision(m->view());
    } catch (...) {
        return 0;
    }
}

SegmentWriter::SegmentWriter(SegmentWriter&& other) noexcept {
    *this = std::move(other);
}

SegmentWriter& SegmentWriter::operator=(SegmentWriter&& other) noexcept {
    if (this != &other) {
        release();
        options_ = std::move(other.options_);
        lock_fd_ = std::exchange(other.lock_fd_, -1);
        seg_ = std::exchange(other.seg_, {});
        revision_ = other.revision_;
        compactions_ = other.compactions_;
        attempts_ = other.attempts_;
        writer_start_ns_ = other.writer_start_ns_;
        commit_ns_ = other.commit_ns_;
        wakes_ = other.wakes_;
        source_state_ = other.source_state_;
        waiters_ = std::exchange(other.waiters_, nullptr);
        compactor_ = std::move(other.compactor_);
        prefaulter_ = std::move(other.prefaulter_);
        reaper_ = std::move(other.reaper_);
        legacy_ = std::move(other.legacy_);
    }
    return *this;
}

SegmentWriter::~SegmentWriter() {
    release();
}

void SegmentWriter::release() noexcept {
    compactor_.reset();   // joins the builder, which reads seg_
    prefaulter_.reset();  // joins the thread that populates seg_'s pages
    if (reaper_.joinable()) {
        reaper_.join();
    }
    seg_.unmap();
    files::unmap_waiters_page(waiters_);
    waiters_ = nullptr;
    if (lock_fd_ >= 0) {
        ::close(lock_fd_);
        lock_fd_ = -1;
    }
    legacy_.reset();
}

std::uint64_t SegmentWriter::revision() const noexcept {
    return legacy_ ? legacy_->revision() : revision_;
}
std::uint64_t SegmentWriter::live_entries() const noexcept {
    return legacy_ ? legacy_->live_entries() : seg_.live_entries;
}
std::uint64_t SegmentWriter::segment_bytes() const noexcept {
    return legacy_ ? legacy_->segment_bytes() : seg_.size;
}
std::uint64_t SegmentWriter::arena_used() const noexcept {
    return legacy_ ? legacy_->arena_used() : seg_.arena_used();
}
std::uint64_t SegmentWriter::arena_size() const noexcept {
    return legacy_ ? legacy_->arena_size() : seg_.arena_size();
}
std::uint64_t SegmentWriter::compactions() const noexcept {
    return legacy_ ? legacy_->compactions() : compactions_;
}
std::uint32_t SegmentWriter::layout() const noexcept {
    return legacy_ ? layout::v1::kVersion : layout::kVersion;
}

std::optional<std::string_view> SegmentWriter::get(Namespace ns,
                                                   std::string_view key) const noexcept {
    if (legacy_) {
        return legacy_->get(ns, key);
    }
    const auto r = seg_.view.find_hit(0, ns, key, detail::key_hash(ns, key));
    if (!r.live()) {
        return std::nullopt;
    }
    return detail::value_of(r.entry);
}

// Hashes, probes and classifies each change; drops deletions of absent keys.
void SegmentWriter::plan(std::span<const Change* const> changes, std::uint64_t& bytes,
                         std::uint64_t& new_keys) {
    std::vector<Planned>& out = scratch_plan_;
    out.clear();
    scratch_scalars_.resize(changes.size());
    if (scratch_unescaped_.size() < changes.size()) {
        scratch_unescaped_.resize(changes.size());  // never during the loop: views point in
    }
    bytes = 0;
    new_keys = 0;
    // At a million entries each change costs two dependent cache misses (the slot, then the
    // key's entry, read to compare the key). A batch starts them all before it waits for
    // any: every change's slot lines first, then every key's probable entry.
    std::vector<std::uint64_t>& hashes = scratch_hashes_;
    hashes.resize(changes.size());
    for (std::size_t i = 0; i < changes.size(); ++i) {
        hashes[i] = detail::key_hash(changes[i]->ns, changes[i]->key);
        seg_.prefetch_slots(hashes[i]);
    }
    if (changes.size() > 1) {
        for (const std::uint64_t h : hashes) {
            seg_.prefetch_entry(h);
        }
    }
    for (std::size_t i = 0; i < changes.size(); ++i) {
        const Change& c = *changes[i];
        const std::uint64_t h = hashes[i];
        const Probe p = seg_.probe(c.ns, c.key, h);
        if (!c.value && (p.offset == 0 ||
                         detail::is_tombstone(
                             reinterpret_cast<const layout::EntryHeader*>(seg_.base + p.offset)))) {
            continue;  // deleting what is not there
        }
        Scalar& s = scratch_scalars_[i];
        s = c.value ? classify(*c.value, scratch_unescaped_[i]) : Scalar{};
        bytes += entry_bytes(c, s);
        new_keys += p.offset == 0 ? 1 : 0;
        out.push_back({&c, h, p.pos, p.offset, i});
    }
}

ApplyResult SegmentWriter::apply(std::span<const Change> batch, std::uint64_t revision,
                                 std::uint64_t commit_ns) {
    if (legacy_) {
        return legacy_->apply(batch, revision, commit_ns);
    }
    ApplyResult result;
    if (compactor_ && compactor_->ready()) {
        result.compacted = take_over_compaction();
    }
    std::vector<const Change*>& changes = scratch_changes_;
    dedupe(batch, options_, result.rejected, changes);
    std::uint64_t bytes = 0;
    std::uint64_t new_keys = 0;
    plan(changes, bytes, new_keys);
    if (!seg_.fits(bytes, new_keys) && compactor_) {
        result.compacted = take_over_compaction() || result.compacted;  // waits for it
        plan(changes, bytes, new_keys);
    }
    if (!seg_.fits(bytes, new_keys)) {
        std::vector<const Change*> kept;
        kept.reserve(scratch_plan_.size());
        for (const Planned& pl : scratch_plan_) {
            kept.push_back(pl.change);
        }
        compact_now(kept, revision, commit_ns);
        result.applied = kept.size();
        result.compacted = true;
        return result;
    }
    std::vector<Pending>& pending = scratch_pending_;
    pending.clear();
    for (const Planned& pl : scratch_plan_) {
        const Change& c = *pl.change;
        NewEntry e;
        e.hash = pl.hash;
        e.ns = c.ns;
        e.key = c.key;
        e.category = c.category;
        e.value = value_of(c);
        e.revision = revision;
        e.prev = pl.offset;
        e.scalar = &scratch_scalars_[pl.scalar];
        const std::uint64_t off = seg_.append(e);
        pending.push_back({pl.hash, off, pl.offset != 0 ? pl.pos : kNew, c.ns, c.key});
    }
    publish(pending, revision, commit_ns);
    seg_.prefetch_next();
    result.applied = pending.size();
    maybe_start_compaction();
    return result;
}

void SegmentWriter::publish(std::span<const Pending> pending, std::uint64_t revision,
                            std::uint64_t commit_ns) {
    auto& header = seg_.header();
    std::vector<std::uint64_t>& positions = scratch_positions_;
    positions.resize(pending.size());
    for (unsigned copy = 0; copy < 2; ++copy) {
        // Odd: readers use copy 1 while copy 0 changes; even: the reverse. A plain store, as
        // there is one writer: what orders the bump before the slot words is their release
        // stores (layout.hpp), and a read-modify-write would make the CPU wait here for every
        // store before it (on x86 a locked instruction drains the store buffer).
        store_relaxed(header.seq, load_relaxed(header.seq) + 1);
        layout::Slot* table = seg_.table(copy);
        for (std::size_t i = 0; i < pending.size(); ++i) {
            const Pending& p = pending[i];
            if (copy == 0) {
                positions[i] = p.pos != kNew ? p.pos : seg_.probe(p.ns, p.key, p.hash).pos;
            }
            const std::uint64_t word = layout::slot_word(layout::slot_tag(p.hash), p.offset);
            store_release(table[positions[i]].word, word);
            if (copy == 0) {
                seg_.mirror[positions[i]] = word;  // before the next new key probes
            }
        }
        if (copy == 0) {
            for (const Pending& p : pending) {
                seg_.used_slots += p.pos == kNew ? 1 : 0;
            }
        }
        auto& ch = const_cast<layout::CopyHeader&>(seg_.view.copy_header(copy));
        store_release(ch.live_entries, seg_.live_entries);
        store_release(ch.used_slots, seg_.used_slots);
        store_release(ch.commit_ns, commit_ns);
        store_release(ch.revision, revision);
    }
    store_relaxed(header.updates_applied, header.updates_applied + pending.size());
    // A release store, for the same reason as `seq`; notify() orders it against the
    // readers' announcements.
    store_release(header.notify, load_relaxed(header.notify) + 1);
    revision_ = revision;
    commit_ns_ = commit_ns;
}

void SegmentWriter::notify() noexcept {
    if (legacy_) {
        ++wakes_;  // layout 1 has no waiters page: it always wakes
        legacy_->notify();
        return;
    }
    if (seg_.base == nullptr) {
        return;
    }
    // A reader announces (a seq_cst read-modify-write of sleep_until_ns) before FUTEX_WAIT
    // re-reads `notify`. apply() bumped `notify`; this seq_cst read-modify-write (of 0)
    // comes after that bump in `notify`'s order and before the load below. So either
    // this load sees the announcement, or the reader's FUTEX_WAIT sees the new value and
    // does not sleep. A sleeper announced a time after its own deadline is reached, and the
    // coarse clock is never ahead, so a sleeping reader is always woken. Here, once per
    // batch, is where the writer waits for its stores to drain, not in apply().
    fetch_add_seq_cst(seg_.header().notify, 0U);
    if (waiters_ != nullptr) {
        const std::uint64_t until = std::atomic_ref<std::uint64_t>(waiters_->sleep_until_ns)
                                        .load(std::memory_order_seq_cst);
        if (until <= files::coarse_monotonic_ns()) {
            return;
        }
    }
    ++wakes_;
    detail::futex_wake_all(&seg_.header().notify);
}

void SegmentWriter::heartbeat() noexcept {
    if (legacy_) {
        legacy_->heartbeat();
        return;
    }
    if (seg_.base != nullptr) {
        store_release(seg_.header().heartbeat_ns, detail::monotonic_ns());
    }
    if (compactor_ && compactor_->ready()) {
        try {
            (void)take_over_compaction();  // no batch is waiting for it: do it now
        } catch (...) {
            abandon_compaction();
        }
    }
}

void SegmentWriter::set_source_state(SourceState state) noexcept {
    if (legacy_) {
        legacy_->set_source_state(state);
        return;
    }
    source_state_ = state;
    if (seg_.base == nullptr) {
        return;
    }
    auto& h = seg_.header();
    if (load_relaxed(h.source_state) != static_cast<std::uint32_t>(state)) {
        store_relaxed(h.source_changed_ns, detail::monotonic_ns());
        store_release(h.source_state, static_cast<std::uint32_t>(state));
    }
}

void SegmentWriter::mark_stopped() noexcept {
    if (legacy_) {
        legacy_->mark_stopped();
        return;
    }
    set_source_state(SourceState::stopped);
    heartbeat();
    notify();
}

std::string SegmentWriter::temporary_path() {
    return detail::segment_path(options_.name + ".tmp." + std::to_string(::getpid()) + "." +
                                std::to_string(attempts_++));
}

void SegmentWriter::maybe_start_compaction() {
    if (compactor_ || !wants_compaction(seg_)) {
        return;
    }
    if (reaper_.joinable()) {
        reaper_.join();
    }
    const Geometry g = geometry_for(options_, seg_.live_entries, seg_.live_bytes);
    const std::uint64_t scan_from = seg_.header().arena_offset + seg_.arena_used();
    try {
        compactor_ = std::make_unique<Compactor>(seg_.view, temporary_path(), g, scan_from,
                                                 writer_start_ns_);
    } catch (...) {
        compactor_.reset();  // no thread: compact in the foreground when it is full
    }
}

void SegmentWriter::abandon_compaction() noexcept {
    compactor_.reset();
}

void SegmentWriter::finish_compaction() {
    if (legacy_ || !compactor_) {
        return;
    }
    if (!take_over_compaction()) {
        // The build failed: compact in the foreground, at the current revision.
        compact_now({}, revision_, commit_ns_);
    }
}

// Takes over the segment the background builder made: replays what was appended since it
// stopped, publishes it at the current revision, renames it over the name and retires
// the live one. Waits for the builder if it is still at work. False if the build failed.
bool SegmentWriter::take_over_compaction() {
    WritableSegment fresh;
    std::uint64_t replayed_to = 0;
    const bool ok = compactor_->finish(fresh, replayed_to);
    const std::string path = fresh.path;
    compactor_.reset();
    if (!ok) {
        return false;
    }
    const std::uint64_t end = seg_.header().arena_offset + seg_.arena_used();
    if (!replay(fresh, seg_.view, replayed_to, end)) {
        fresh.unmap();
        ::unlink(path.c_str());
        return false;
    }
    adopt(std::move(fresh), revision_);
    return true;
}

// Publishes `fresh` (a segment no reader sees yet) at `revision` under the name, retires
// the current segment (and `outside`, a segment another writer left under the name) and
// makes `fresh` the current one. Whatever it replaces is retired before the retiring link
// goes: a writer killed in between leaves the link, and the next one retires through it.
void SegmentWriter::adopt(WritableSegment fresh, std::uint64_t revision,
                          files::OldSegment* outside) {
    fresh.set_copy_headers(revision, commit_ns_);
    auto& h = fresh.header();
    h.updates_applied = fresh.live_entries;
    h.source_state = static_cast<std::uint32_t>(source_state_);
    if (seg_.base != nullptr) {
        h.source_changed_ns = seg_.header().source_changed_ns;
    }
    try {
        files::rename_over(fresh.path, options_.name);
    } catch (...) {
        fresh.unmap();
        ::unlink(fresh.path.c_str());
        ::unlink(files::retiring_path(options_.name).c_str());
        throw;
    }
    WritableSegment old = std::exchange(seg_, std::move(fresh));
    seg_.path.clear();
    revision_ = revision;
    if (old.base != nullptr) {
        // Readers must move at once; the unmapping (page tables of a large mapping take
        // milliseconds to tear down) happens off the apply path.
        auto* oh = &old.header();
        store_release(oh->retired, 1U);
        detail::fetch_add_release(oh->notify, 1U);
        detail::futex_wake_all(&oh->notify);
        prefaulter_.reset();  // its thread populates the old mapping: stopped before unmapping
        if (reaper_.joinable()) {
            reaper_.join();
        }
        try {
            reaper_ = std::thread([old]() mutable { old.unmap(); });
        } catch (...) {
            old.unmap();
        }
        ++compactions_;
    }
    if (outside != nullptr) {
        outside->retire();
    }
    ::unlink(files::retiring_path(options_.name).c_str());
    // Last: starting a thread is no reason to keep readers on the old segment longer.
    start_prefaulter();
}

void SegmentWriter::start_prefaulter() noexcept {
    seg_.ahead = nullptr;
    if (seg_.arena_size() <= 2 * Prefaulter::kWindow) {
        // A small arena is populated in a few steps as it fills: a thread to start and
        // join at every compaction would cost more than it saves.
        return;
    }
    try {
        prefaulter_ = std::make_unique<Prefaulter>(seg_.base, seg_.size, seg_.prefaulted);
        seg_.ahead = prefaulter_.get();
    } catch (...) {
        prefaulter_.reset();  // no thread: apply() populates pages itself, as before
    }
}

// Creates a new segment at the name holding the live entries of the current one (if
// any) with `batch` applied on top, all published at `revision`, and retires the old.
void SegmentWriter::compact_now(std::span<const Change* const> batch, std::uint64_t revision,
                                std::uint64_t commit_ns) {
    abandon_compaction();
    std::unordered_set<BatchKey, BatchKeyHash> replaced;
    std::uint64_t keys = 0;
    std::uint64_t bytes = 0;
    std::vector<Scalar> scalars(batch.size());
    std::vector<std::string> unescaped(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const Change* c = batch[i];
        replaced.insert({c->ns, c->key});
        if (c->value) {
            scalars[i] = classify(*c->value, unescaped[i]);
            keys += 1;
            bytes += entry_bytes(*c, scalars[i]);
        }
    }
    std::vector<detail::EntryRef> kept;
    if (seg_.base != nullptr) {
        kept.reserve(seg_.live_entries);
        for (std::uint64_t i = 0, n = seg_.view.slot_count(); i < n; ++i) {
            const auto r = seg_.view.slot_entry(i);
            const detail::EntryRef& e = r.entry;
            if (r.status == detail::SegmentView::Status::found && !e.tombstone() &&
                !replaced.contains({e.ns(), e.key})) {
                kept.push_back(e);
                bytes += layout::entry_size(e.header->key_len, e.header->category_len,
                                            e.header->value_len, e.header->extra_len);
            }
        }
        keys += kept.size();
    }
    files::OldSegment outside;
    if (seg_.base == nullptr) {
        outside = files::OldSegment::open(options_.name);
    }
    WritableSegment fresh = WritableSegment::create(
        temporary_path(), geometry_for(options_, keys, bytes), writer_start_ns_, source_state_);
    try {
        for (const detail::EntryRef& e : kept) {
            const std::uint64_t h = e.hash();
            fresh.set_slot(fresh.claim_slot(h), h, fresh.copy(e, 0));
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const Change* c = batch[i];
            if (!c->value) {
                continue;
            }
            NewEntry n;
            n.hash = detail::key_hash(c->ns, c->key);
            n.ns = c->ns;
            n.key = c->key;
            n.category = c->category;
            n.value = value_of(*c);
            n.revision = revision;
            n.scalar = &scalars[i];
            fresh.set_slot(fresh.claim_slot(n.hash), n.hash, fresh.append(n));
        }
    } catch (...) {
        fresh.unmap();
        ::unlink(fresh.path.c_str());
        throw;
    }
    commit_ns_ = commit_ns;
    adopt(std::move(fresh), revision, &outside);
}

}  // namespace yuxi::config::agent
