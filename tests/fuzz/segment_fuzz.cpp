// libFuzzer target: arbitrary bytes as a segment, through every call of the bounds-checked
// parsers (detail/segment_view.hpp for layout 2, detail/segment_view_v1.hpp for layout 1)
// that the client makes, typed reads included. The input is copied to an exact-size heap
// buffer, so AddressSanitizer reports any byte read outside it; a decoded entry that
// reaches outside its arena, or a lookup that returns another key, traps.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>

#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/reads.hpp"
#include "yuxi/config/detail/segment_view.hpp"
#include "yuxi/config/detail/segment_view_v1.hpp"

namespace yuxi::config {
namespace {

using Status = detail::SegmentView::Status;

// Bounds the work per input; large inputs would otherwise make the fuzzer slow.
constexpr std::uint64_t kMaxSlots = 1 << 14;
constexpr std::uint64_t kMaxDecodes = 1 << 12;

volatile std::uint64_t sink;

void require(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

template <class SegmentView>
class Driver {
  public:
    using EntryRef = decltype(typename SegmentView::Lookup{}.entry);

    Driver(const SegmentView& v, const unsigned char* base, std::size_t size)
        : v_(v), base_(base), size_(size) {}

    // Every byte of the entry is read, and all of it lies inside the arena.
    void touch(const EntryRef& e) const {
        const auto& h = v_.header();
        const auto* begin = reinterpret_cast<const unsigned char*>(e.header);
        const auto* end = reinterpret_cast<const unsigned char*>(e.value.data()) + e.value.size();
        require(begin >= base_ + h.arena_offset && end < base_ + h.arena_offset + h.arena_size);
        require(end < base_ + size_);
        require(e.offset == static_cast<std::uint64_t>(begin - base_));
        sink = sink + detail::entry_checksum(e.key, e.category, e.value) +
               static_cast<unsigned char>(*end) + e.prev_offset() + e.hash();
        if constexpr (std::is_same_v<SegmentView, detail::SegmentView>) {
            // Typed reads: the stored string's range is checked against the entry.
            const auto s = detail::scalar_as<std::string_view>(e.header);
            if (s) {
                require(reinterpret_cast<const unsigned char*>(s->data()) >= begin &&
                        reinterpret_cast<const unsigned char*>(s->data()) + s->size() <=
                            base_ + h.arena_offset + h.arena_size);
                sink = sink + detail::entry_checksum(*s, {}, {});
            }
            sink = sink + detail::scalar_as<std::int64_t>(e.header).value_or(0) +
                   (detail::scalar_as<bool>(e.header).value_or(false) ? 1 : 0);
        }
    }

    void found(const typename SegmentView::Lookup& r, Namespace ns, std::string_view key) const {
        if (r.status == Status::found) {
            touch(r.entry);
            require(r.entry.key == key && r.entry.ns() == ns);
        }
    }

    void lookup(Namespace ns, std::string_view key) const {
        const std::uint64_t h = SegmentView::hash_of(ns, key);
        found(v_.find(0, ns, key, h), ns, key);
        found(v_.find(1, ns, key, h), ns, key);
        const auto n = v_.find_newest(ns, key, h);
        found(n, ns, key);
        if (n.status == Status::found) {
            walk(n.entry);
        }
    }

    // The version chain of an entry, back to several revisions, as snapshots walk it.
    void walk(const EntryRef& e) const {
        const std::uint64_t revs[] = {0,
                                      1,
                                      e.revision() / 2,
                                      e.revision() == 0 ? 0 : e.revision() - 1,
                                      v_.copy_header(0).revision,
                                      v_.copy_header(1).revision,
                                      ~0ULL};
        for (const std::uint64_t rev : revs) {
            const auto r = v_.at_revision(e, rev);
            if (r.status == Status::found) {
                touch(r.entry);
                require(r.entry.revision() <= rev && r.entry.key == e.key &&
                        r.entry.offset <= e.offset);
            }
        }
    }

    void run() const {
        sink = sink + v_.seq_acquire() + v_.seq_relaxed() + (v_.retired() ? 1 : 0) +
               v_.copy_header(0).live_entries + v_.copy_header(1).used_slots;
        const std::uint64_t n = v_.slot_count() < kMaxSlots ? v_.slot_count() : kMaxSlots;
        // Snapshot::for_each: every slot, newest entry, walked back.
        for (std::uint64_t i = 0; i < n; ++i) {
            const auto r = v_.slot_entry(i);
            if (r.status != Status::found) {
                continue;
            }
            touch(r.entry);
            walk(r.entry);
            if (i < 256) {
                lookup(r.entry.ns(), r.entry.key);
            }
        }
        for (const Namespace ns : {Namespace::config, Namespace::metadata}) {
            for (const std::string_view key : {"k0", "k1", "embed_model", "", "global_metadata"}) {
                lookup(ns, key);
            }
        }
        // decode at aligned offsets across the start of the arena and around its end.
        const auto& h = v_.header();
        for (std::uint64_t i = 0; i < kMaxDecodes; ++i) {
            const std::uint64_t off =
                i < kMaxDecodes / 2 ? h.arena_offset + i * 8
                                    : h.arena_offset + h.arena_size - (i - kMaxDecodes / 2) * 8;
            EntryRef e;
            if (v_.decode(off, e)) {
                touch(e);
            }
        }
    }

  private:
    const SegmentView& v_;
    const unsigned char* base_;
    std::size_t size_;
};

}  // namespace
}  // namespace yuxi::config

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace yuxi::config;
    // A mapping is page-aligned; so is the copy, and it ends exactly where the input does.
    constexpr std::align_val_t kPage{4096};
    auto* buf = static_cast<unsigned char*>(::operator new(size == 0 ? 1 : size, kPage));
    if (size != 0) {
        std::memcpy(buf, data, size);
    }
    detail::SegmentView v;
    detail::v1::SegmentView v1;
    std::string error;
    if (v.attach(buf, size, error)) {
        Driver<detail::SegmentView>(v, buf, size).run();
    } else if (v1.attach(buf, size, error)) {
        Driver<detail::v1::SegmentView>(v1, buf, size).run();
    } else {
        require(!error.empty() && !v.attached() && !v1.attached());
    }
    ::operator delete(buf, kPage);
    return 0;
}
