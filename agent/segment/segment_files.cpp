// The files around a segment: lock, temporaries, second names, waiters page.
#include "agent/segment/segment_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/detail/atomic.hpp"
#include "yuxi/config/detail/layout_v1.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config::agent::files {
namespace {

std::string shm_path(const std::string& name) {
    return detail::segment_path(name);
}

}  // namespace

std::uint64_t realtime_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

// Never ahead of CLOCK_MONOTONIC, and a few nanoseconds to read.
std::uint64_t coarse_monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string errno_text() {
    return std::strerror(errno);
}

std::string retiring_path(const std::string& name) {
    return shm_path(name + ".tmp.retiring");
}

OldSegment OldSegment::open(const std::string& name) {
    OldSegment old;
    const int fd = ::open(shm_path(name).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return old;
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size >= static_cast<off_t>(layout::kHeaderSize)) {
        void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE,
                         MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            old.base = static_cast<unsigned char*>(p);
            old.size = static_cast<std::size_t>(st.st_size);
            // Only the header is written, whose fields sit where they are in both layouts.
            const auto* h = static_cast<const layout::SegmentHeader*>(p);
            if (h->magic != layout::kMagic ||
                (h->version != layout::kVersion && h->version != layout::v1::kVersion)) {
                old.unmap();  // an unknown layout: its readers must be restarted
            }
        }
    }
    ::close(fd);
    return old;
}

void OldSegment::retire() noexcept {
    if (base == nullptr) {
        return;
    }
    auto* h = reinterpret_cast<layout::SegmentHeader*>(base);
    detail::store_release(h->retired, 1U);
    detail::fetch_add_release(h->notify, 1U);
    detail::futex_wake_all(&h->notify);
    unmap();
}

void OldSegment::unmap() noexcept {
    if (base != nullptr) {
        ::munmap(base, size);
        base = nullptr;
    }
}

void remove_stale_temporaries(const std::string& name) {
    DIR* dir = ::opendir(std::string(detail::kShmDir).c_str());
    if (dir == nullptr) {
        return;
    }
    struct stat live {};
    const bool have_live = ::stat(shm_path(name).c_str(), &live) == 0;
    const std::string prefix = name + ".tmp.";
    while (const dirent* d = ::readdir(dir)) {
        if (std::string_view(d->d_name).starts_with(prefix)) {
            // A replaced segment left behind by a dead writer (see retiring_path); the
            // segment still live under the name is retired later, once replaced.
            struct stat st {};
            if (::stat(shm_path(d->d_name).c_str(), &st) == 0 &&
                !(have_live && st.st_dev == live.st_dev && st.st_ino == live.st_ino)) {
                OldSegment::open(d->d_name).retire();
            }
            ::unlink(shm_path(d->d_name).c_str());
        }
    }
    ::closedir(dir);
}

int take_writer_lock(const std::string& name) {
    const std::string path = detail::lock_path(name);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        throw WriterError("cannot open writer lock " + path + ": " + errno_text());
    }
    ::fchmod(fd, 0640);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        const int err = errno;
        ::close(fd);
        if (err == EAGAIN || err == EACCES) {
            std::string holder;
            try {
                auto m = detail::Mapping::open(name);
                holder = " (pid " + std::to_string(m->header().writer_pid) + ")";
            } catch (...) {
            }
            throw WriterError("another yuxi-config-agent" + holder +
                              " is already writing segment '" + name + "' (lock " + path +
                              "); stop it or choose another --segment");
        }
        throw WriterError("cannot lock " + path + ": " + std::strerror(err));
    }
    return fd;
}

std::uint64_t prefault_arena(unsigned char* base, std::uint64_t size, std::uint64_t prefaulted,
                             std::uint64_t end) noexcept {
    if (end <= prefaulted) {
        return prefaulted;
    }
    const std::uint64_t from = prefaulted / kPage * kPage;
    const std::uint64_t to = std::min<std::uint64_t>(round_up(end + kPrefaultStep, kPage), size);
    if (to > from) {
#ifdef MADV_POPULATE_WRITE
        if (::madvise(base + from, to - from, MADV_POPULATE_WRITE) != 0)
#endif
        {
            // Older kernels: touching a byte per page faults it in. Nothing reachable by
            // readers lies past arena_used, so these writes race with no one.
            for (std::uint64_t p = std::max(from, prefaulted); p < to; p += kPage) {
                base[p] = 0;
            }
        }
    }
    return to;
}

NewFile create_segment_file(const std::string& path, std::uint64_t total, std::uint64_t populate) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        throw WriterError("cannot create " + path + ": " + errno_text());
    }
    ::fchmod(fd, 0640);  // whatever the umask
    void* p = MAP_FAILED;
    if (::ftruncate(fd, static_cast<off_t>(total)) == 0) {
        p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    const std::string why = errno_text();
    ::close(fd);
    if (p == MAP_FAILED) {
        ::unlink(path.c_str());
        throw WriterError("cannot create a " + std::to_string(total) + "-byte segment " + path +
                          ": " + why + " (is /dev/shm large enough?)");
    }
#ifdef MADV_POPULATE_WRITE
    ::madvise(p, std::min(populate, total), MADV_POPULATE_WRITE);
#else
    (void)populate;
#endif
    return {path, static_cast<unsigned char*>(p), total};
}

void rename_over(const std::string& temporary, const std::string& name) {
    ::unlink(retiring_path(name).c_str());
    (void)::link(shm_path(name).c_str(), retiring_path(name).c_str());
    if (::rename(temporary.c_str(), shm_path(name).c_str()) != 0) {
        throw WriterError("cannot rename " + temporary + " over the live segment: " + errno_text());
    }
}

layout::WaitersPage* map_waiters_page(const std::string& name) noexcept {
    const std::string path = detail::waiters_path(name);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
    if (fd < 0) {
        return nullptr;
    }
    struct stat st {};
    void* p = MAP_FAILED;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (st.st_uid == ::geteuid()) {
            ::fchmod(fd, 0660);  // readers in the group announce themselves here
        }
        if (st.st_size >= static_cast<off_t>(layout::kWaitersSize) ||
            ::ftruncate(fd, static_cast<off_t>(layout::kWaitersSize)) == 0) {
            p = ::mmap(nullptr, layout::kWaitersSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        }
    }
    ::close(fd);
    if (p == MAP_FAILED) {
        return nullptr;
    }
    auto* page = static_cast<layout::WaitersPage*>(p);
    if (detail::load_acquire(page->magic) != layout::kWaitersMagic ||
        detail::load_relaxed(page->version) != layout::kWaitersVersion) {
        // New (or garbage): nobody has announced a sleep yet.
        detail::store_relaxed(page->version, layout::kWaitersVersion);
        std::atomic_ref<std::uint64_t>(page->sleep_until_ns).store(0, std::memory_order_seq_cst);
        detail::store_release(page->magic, layout::kWaitersMagic);
    }
    return page;
}

void unmap_waiters_page(layout::WaitersPage* page) noexcept {
    if (page != nullptr) {
        ::munmap(page, layout::kWaitersSize);
    }
}

}  // namespace yuxi::config::agent::files
