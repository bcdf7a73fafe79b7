// The files around a segment, shared by the writers of both layouts: the writer lock, the
// replaced segment's second name, stale temporaries, new segment files, the waiters page,
// and retiring a replaced segment of either layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent::files {

inline constexpr std::uint64_t kPage = 4096;
// How far ahead of the arena's end pages are faulted in, in one system call per step.
inline constexpr std::uint64_t kPrefaultStep = 1ULL << 20;

constexpr std::uint64_t round_up(std::uint64_t n, std::uint64_t to) noexcept {
    return (n + to - 1) / to * to;
}

std::uint64_t realtime_ns() noexcept;
std::uint64_t coarse_monotonic_ns() noexcept;
std::string errno_text();

// The segment being replaced also has this name from just before the rename until it is
// retired. Its readers look only at its `retired` flag, so if the writer dies in between,
// this name is how the next writer finds the segment to retire them from it.
std::string retiring_path(const std::string& name);

// Takes the OFD write lock of segment `name`; throws WriterError naming the holder.
int take_writer_lock(const std::string& name);

// Retires and unlinks what a dead writer left under `name.tmp.*`.
void remove_stale_temporaries(const std::string& name);

// A segment of either layout mapped read-write, to retire it once it is replaced.
struct OldSegment {
    unsigned char* base = nullptr;
    std::size_t size = 0;

    // The segment now under `name` if it is one (layout 1 or 2), else nothing.
    static OldSegment open(const std::string& name);

    // Sets `retired`, wakes its sleepers and unmaps it.
    void retire() noexcept;
    void unmap() noexcept;
};

// A new, empty segment file under a temporary name, mapped read-write.
struct NewFile {
    std::string path;
    unsigned char* base = nullptr;
    std::uint64_t size = 0;
};
// Creates `total` bytes at `path` (mode 0640, whatever the umask) and faults in the first
// `populate` bytes (the index, before any batch needs it); throws WriterError.
NewFile create_segment_file(const std::string& path, std::uint64_t total, std::uint64_t populate);

// Faults in the pages of [prefaulted, end + a step) of a mapping of `size` bytes ahead of
// the writes that will need them, so that an apply does not take its page faults one by
// one; returns the new prefaulted end.
std::uint64_t prefault_arena(unsigned char* base, std::uint64_t size, std::uint64_t prefaulted,
                             std::uint64_t end) noexcept;

// Renames the new segment at `temporary` over `name`, first giving the replaced one its
// second name (retiring_path); throws WriterError.
void rename_over(const std::string& temporary, const std::string& name);

// Maps (creating it if need be, mode 0660) the waiters page of `name`; null on failure,
// in which case the writer wakes sleepers after every publish, as without the page.
layout::WaitersPage* map_waiters_page(const std::string& name) noexcept;
void unmap_waiters_page(layout::WaitersPage* page) noexcept;

}  // namespace yuxi::config::agent::files
