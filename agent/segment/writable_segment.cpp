// Writing entries and index slots of a layout-2 segment.
#include "agent/segment/writable_segment.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "agent/segment/segment_files.hpp"
#include "yuxi/config/detail/atomic.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/json_text.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config::agent {
namespace {

using detail::load_relaxed;
using detail::store_relaxed;
using detail::store_release;

using files::kPage;
using files::round_up;

std::uint64_t extra_len(const Scalar& s) {
    return s.escaped ? s.text.size() + 1 : 0;
}

std::uint64_t mirror_bytes(std::uint64_t slots) {
    return round_up(slots * sizeof(std::uint64_t), kPage);
}

// Zeroed, populated, on huge pages where the kernel has them (THP in `madvise` mode).
std::uint64_t* map_mirror(std::uint64_t slots) {
    const std::uint64_t bytes = mirror_bytes(slots);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return nullptr;
    }
#ifdef MADV_HUGEPAGE
    (void)::madvise(p, bytes, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
    (void)::madvise(p, bytes, MADV_POPULATE_WRITE);
#endif
    return static_cast<std::uint64_t*>(p);
}

}  // namespace

Scalar classify(std::string_view json, std::string& scratch) {
    Scalar s;
    const std::string_view t = detail::trim_json(json);
    if (t.empty()) {
        return s;
    }
    if (t.front() == '"') {
        if (t.size() < 2 || t.back() != '"') {
            return s;
        }
        const std::string_view inner = t.substr(1, t.size() - 2);
        if (inner.find('\\') == std::string_view::npos) {
            s.type = layout::ScalarType::string;
            s.text = inner;
            return s;
        }
        auto unquoted = detail::json_unquote(t);
        if (!unquoted) {
            return s;
        }
        scratch = std::move(*unquoted);
        s.type = layout::ScalarType::string;
        s.text = scratch;
        s.escaped = true;
        return s;
    }
    if (const auto b = detail::json_as<bool>(t)) {
        s.type = layout::ScalarType::boolean;
        s.bits = *b ? 1 : 0;
    } else if (const auto i = detail::json_as<std::int64_t>(t)) {
        s.type = layout::ScalarType::integer;
        s.bits = std::bit_cast<std::uint64_t>(*i);
    } else if (const auto d = detail::json_as<double>(t)) {
        s.type = layout::ScalarType::real;
        s.bits = std::bit_cast<std::uint64_t>(*d);
    }
    return s;
}

std::uint64_t entry_bytes(const Change& c, const Scalar& s) {
    return layout::entry_size(c.key.size(), c.category.size(), c.value ? c.value->size() : 0,
                              extra_len(s));
}

Geometry geometry_for(const WriterOptions& options, std::uint64_t keys, std::uint64_t bytes) {
    Geometry g;
    // A load factor of at most 1/3 after a compaction: the next one starts in the
    // background at 3/8, the hard limit is 1/2.
    g.slots = std::max<std::uint64_t>(std::bit_ceil(std::max<std::uint64_t>(options.min_slots, 2)),
                                      std::bit_ceil(3 * keys + 64));
    g.arena = round_up(
        std::max<std::uint64_t>(options.min_arena_bytes, 2 * bytes + options.max_value_bytes / 4),
        kPage);
    return g;
}

WritableSegment WritableSegment::create(const std::string& path, const Geometry& g,
                                        std::uint64_t writer_start_ns, SourceState state) {
    const std::uint64_t copy = layout::copy_bytes_for(g.slots);
    const std::uint64_t arena_offset = round_up(layout::kHeaderSize + 2 * copy, kPage);
    const std::uint64_t total = arena_offset + g.arena;
    if (total > layout::kMaxSegmentBytes) {
        throw WriterError("a segment of " + std::to_string(total) + " bytes is larger than " +
                          "the layout allows (" + std::to_string(layout::kMaxSegmentBytes) + ")");
    }
    files::NewFile f = files::create_segment_file(path, total, arena_offset);
    WritableSegment s;
    s.path = f.path;
    s.base = f.base;
    s.size = f.size;
    auto& h = s.header();
    h.magic = layout::kMagic;
    h.version = layout::kVersion;
    h.fingerprint = layout::kFingerprint;
    h.total_size = total;
    h.index_offset = layout::kHeaderSize;
    h.copy_bytes = copy;
    h.slot_count = g.slots;
    h.arena_offset = arena_offset;
    h.arena_size = g.arena;
    h.writer_pid = static_cast<std::uint64_t>(::getpid());
    h.writer_start_ns = writer_start_ns;
    h.created_ns = files::realtime_ns();
    h.heartbeat_ns = detail::monotonic_ns();
    h.source_changed_ns = h.heartbeat_ns;
    h.source_state = static_cast<std::uint32_t>(state);
    std::string error;
    if (!s.view.attach(s.base, s.size, error)) {
        s.unmap();
        ::unlink(path.c_str());
        throw WriterError("internal error: new segment rejected: " + error);
    }
    s.prefaulted = arena_offset;
    s.mirror = map_mirror(g.slots);
    if (s.mirror == nullptr) {
        s.unmap();
        ::unlink(path.c_str());
        throw WriterError("cannot allocate the writer's index of " + std::to_string(g.slots) +
                          " slots: " + files::errno_text());
    }
    return s;
}

void WritableSegment::unmap() noexcept {
    if (mirror != nullptr) {
        ::munmap(mirror, mirror_bytes(view.slot_count()));
        mirror = nullptr;
    }
    if (base != nullptr) {
        ::munmap(base, size);
        base = nullptr;
    }
}

std::uint64_t WritableSegment::arena_used() const noexcept {
    return load_relaxed(header().arena_used);
}

bool WritableSegment::fits(std::uint64_t bytes, std::uint64_t new_keys) const noexcept {
    return arena_used() + bytes <= arena_size() && 2 * (used_slots + new_keys) <= view.slot_count();
}

void WritableSegment::prefetch_slots(std::uint64_t hash) const noexcept {
    const std::uint64_t home = hash & (view.slot_count() - 1);
    __builtin_prefetch(&mirror[home], 0);
    __builtin_prefetch(&table(0)[home], 1);
    __builtin_prefetch(&table(1)[home], 1);
}

void WritableSegment::prefetch_entry(std::uint64_t hash) const noexcept {
    const std::uint64_t w = mirror[hash & (view.slot_count() - 1)];
    if (w != 0 && (w >> layout::kOffsetBits) == layout::slot_tag(hash)) {
        __builtin_prefetch(base + (w & layout::kOffsetMask), 0);
    }
}

Probe WritableSegment::probe(Namespace ns, std::string_view key,
                             std::uint64_t hash) const noexcept {
    const std::uint64_t mask = view.slot_count() - 1;
    const std::uint64_t tag = layout::slot_tag(hash);
    for (std::uint64_t i = hash & mask;; i = (i + 1) & mask) {
        const std::uint64_t w = mirror[i];
        if (w == 0) {
            return {i, 0};
        }
        if ((w >> layout::kOffsetBits) != tag) {
            continue;
        }
        const std::uint64_t off = w & layout::kOffsetMask;
        const auto* e = reinterpret_cast<const layout::EntryHeader*>(base + off);
        if (e->ns == static_cast<std::uint8_t>(ns) && e->key_len == key.size() &&
            std::memcmp(detail::payload(e), key.data(), key.size()) == 0) {
            return {i, off};
        }
    }
}

std::uint64_t WritableSegment::reserve(std::uint64_t bytes) {
    const std::uint64_t offset = header().arena_offset + arena_used();
    prefault(offset + bytes);
    return offset;
}

void WritableSegment::account(std::uint64_t prev, std::uint64_t bytes, bool live) noexcept {
    if (prev != 0) {
        const auto* old = reinterpret_cast<const layout::EntryHeader*>(base + prev);
        if (!detail::is_tombstone(old)) {
            live_entries -= 1;
            live_bytes -=
                layout::entry_size(old->key_len, old->category_len, old->value_len, old->extra_len);
        }
    }
    if (live) {
        live_entries += 1;
        live_bytes += bytes;
    }
}

std::uint64_t WritableSegment::append(const NewEntry& n) {
    // Not a null view for a tombstone: memcpy from a null pointer is undefined, even of 0 bytes.
    const std::string_view v = n.value.value_or(std::string_view(""));
    const Scalar none;
    const Scalar& s = n.value && n.scalar != nullptr ? *n.scalar : none;
    const std::uint64_t extra = extra_len(s);
    const std::uint64_t bytes =
        layout::entry_size(n.key.size(), n.category.size(), v.size(), extra);
    const std::uint64_t offset = reserve(bytes);
    auto* e = reinterpret_cast<layout::EntryHeader*>(base + offset);
    e->key_len = static_cast<std::uint32_t>(n.key.size());
    e->value_len = static_cast<std::uint32_t>(v.size());
    e->ns = static_cast<std::uint8_t>(n.ns);
    e->flags = n.value ? 0 : layout::kEntryTombstone;
    e->category_len = static_cast<std::uint8_t>(n.category.size());
    e->scalar_type = static_cast<std::uint8_t>(s.type);
    e->extra_len = static_cast<std::uint32_t>(extra);
    e->revision = n.revision;
    char* p = reinterpret_cast<char*>(e + 1);
    std::memcpy(p, n.key.data(), n.key.size());
    char* value_at = p + n.key.size() + n.category.size();
    std::memcpy(p + n.key.size(), n.category.data(), n.category.size());
    std::memcpy(value_at, v.data(), v.size());
    value_at[v.size()] = '\0';
    std::uint64_t at = 0;
    if (s.escaped) {
        at = static_cast<std::uint64_t>(value_at + v.size() + 1 - p);
        std::memcpy(p + at, s.text.data(), s.text.size());
        p[at + s.text.size()] = '\0';
    } else if (s.type == layout::ScalarType::string) {
        at = static_cast<std::uint64_t>(value_at - p) +
             static_cast<std::uint64_t>(s.text.data() - v.data());
    }
    e->scalar = s.type == layout::ScalarType::string ? (at << 32) | s.text.size() : s.bits;
    auto* t = reinterpret_cast<layout::EntryTrailer*>(
        reinterpret_cast<char*>(e) +
        layout::trailer_at(n.key.size(), n.category.size(), v.size(), extra));
    t->prev_offset = n.prev;
    t->hash = n.hash;
    t->checksum = detail::entry_checksum(n.key, n.category, v);
    // Release: the compactor, replaying the arena up to here, must see the whole entry.
    store_release(header().arena_used, arena_used() + bytes);
    account(n.prev, bytes, n.value.has_value());
    return offset;
}

std::uint64_t WritableSegment::copy(const detail::EntryRef& e, std::uint64_t prev) {
    const layout::EntryHeader& h = *e.header;
    const std::uint64_t bytes =
        layout::entry_size(h.key_len, h.category_len, h.value_len, h.extra_len);
    const std::uint64_t offset = reserve(bytes);
    // The scalar's text is addressed from the payload, so a byte copy stays valid.
    std::memcpy(base + offset, e.header, bytes);
    auto* t = reinterpret_cast<layout::EntryTrailer*>(
        base + offset + layout::trailer_at(h.key_len, h.category_len, h.value_len, h.extra_len));
    t->prev_offset = prev;
    store_release(header().arena_used, arena_used() + bytes);
    account(prev, bytes, !e.tombstone());
    return offset;
}

void WritableSegment::set_slot(std::uint64_t pos, std::uint64_t hash,
                               std::uint64_t offset) noexcept {
    const std::uint64_t w = layout::slot_word(layout::slot_tag(hash), offset);
    mirror[pos] = w;
    store_relaxed(table(0)[pos].word, w);
    store_relaxed(table(1)[pos].word, w);
}

std::uint64_t WritableSegment::claim_slot(std::uint64_t hash) noexcept {
    const std::uint64_t mask = view.slot_count() - 1;
    std::uint64_t i = hash & mask;
    while (mirror[i] != 0) {
        i = (i + 1) & mask;
    }
    ++used_slots;
    return i;
}

void WritableSegment::set_copy_headers(std::uint64_t revision, std::uint64_t commit_ns) noexcept {
    for (unsigned copy = 0; copy < 2; ++copy) {
        auto& ch = const_cast<layout::CopyHeader&>(view.copy_header(copy));
        store_relaxed(ch.live_entries, live_entries);
        store_relaxed(ch.used_slots, used_slots);
        store_relaxed(ch.commit_ns, commit_ns);
        store_relaxed(ch.revision, revision);
    }
}

void WritableSegment::prefault(std::uint64_t end) noexcept {
    if (ahead != nullptr) {
        ahead->ahead(end);
        prefaulted = std::max(prefaulted, ahead->done());
    }
    prefaulted = files::prefault_arena(base, size, prefaulted, end);
}

void WritableSegment::prefetch_next() const noexcept {
    const std::uint64_t next = header().arena_offset + arena_used();
    if (next + 2 * layout::kCacheLine <= size) {
        __builtin_prefetch(base + next, 1);
        __builtin_prefetch(base + next + layout::kCacheLine, 1);
        __builtin_prefetch(base + next + 2 * layout::kCacheLine, 1);
    }
}

bool replay(WritableSegment& dst, const detail::SegmentView& src, std::uint64_t from,
            std::uint64_t to) {
    for (std::uint64_t off = from; off < to;) {
        detail::EntryRef e;
        if (!src.decode(off, e)) {
            return false;  // our own arena: cannot happen unless memory is corrupted
        }
        const layout::EntryHeader& h = *e.header;
        const std::uint64_t bytes =
            layout::entry_size(h.key_len, h.category_len, h.value_len, h.extra_len);
        off += bytes;
        const std::uint64_t hash = e.hash();
        const Probe p = dst.probe(e.ns(), e.key, hash);
        if (p.offset == 0 && e.tombstone()) {
            continue;
        }
        if (!dst.fits(bytes, p.offset == 0 ? 1 : 0)) {
            return false;
        }
        const std::uint64_t at = dst.copy(e, p.offset);
        dst.set_slot(p.offset == 0 ? dst.claim_slot(hash) : p.pos, hash, at);
    }
    return true;
}

}  // namespace yuxi::config::agent
