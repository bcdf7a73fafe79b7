// Read-only mappings of a segment (layout 2, or 1 for an older agent), the futex readers
// sleep on, the waiters page through which they ask to be woken, and the writer-lock probe.
#pragma once

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include "yuxi/config/detail/segment_view.hpp"
#include "yuxi/config/detail/segment_view_v1.hpp"
#include "yuxi/config/errors.hpp"

namespace yuxi::config {

namespace detail {

inline constexpr std::string_view kDefaultSegment = "yuxi-config";
inline constexpr std::string_view kShmDir = "/dev/shm/";

// The name given, else $YUXI_CONFIG_SEGMENT, else "yuxi-config".
inline std::string segment_name(std::string_view name) {
    if (!name.empty()) {
        return std::string(name);
    }
    const char* env = std::getenv("YUXI_CONFIG_SEGMENT");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(kDefaultSegment);
}

inline void check_name(const std::string& name) {
    if (name.empty() || name.size() > 200 || name.find('/') != std::string::npos || name == "." ||
        name == "..") {
        throw SegmentError(SegmentError::Kind::invalid_name,
                           "invalid segment name '" + name +
                               "': use 1-200 characters without '/' (it names a file in " +
                               std::string(kShmDir) + ")");
    }
}

inline std::string segment_path(const std::string& name) {
    return std::string(kShmDir) + name;
}

// The writer holds an OFD write lock on this file while it lives; the kernel drops it
// when the writer dies, so a reader can tell a live writer from a dead one.
inline std::string lock_path(const std::string& name) {
    return segment_path(name) + ".lock";
}

// The page through which readers ask to be woken (layout::WaitersPage).
inline std::string waiters_path(const std::string& name) {
    return segment_path(name) + ".waiters";
}

inline std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

// Why a segment of layout `version` cannot be read by this client, which reads 1 and 2.
inline std::string unknown_version(std::uint32_t version) {
    return "segment written by layout v" + std::to_string(version) + ", this client reads v" +
           std::to_string(layout::v1::kVersion) + " and v" + std::to_string(layout::kVersion) +
           ": upgrade the " + (version > layout::kVersion ? "client" : "agent");
}

// One read-only mapping of one segment file. Entries never change while the segment is
// live and a retired segment is never written again, so views into a mapping stay valid
// for as long as the Mapping lives.
class Mapping {
  public:
    static std::shared_ptr<const Mapping> open(const std::string& name) {
        namespace bip = boost::interprocess;
        check_name(name);
        auto m = std::shared_ptr<Mapping>(new Mapping());
        m->name_ = name;
        try {
            bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_only);
            bip::offset_t size = 0;
            if (!shm.get_size(size) || size <= 0) {
                throw SegmentError(SegmentError::Kind::corrupt,
                                   "segment '" + name +
                                       "' is empty: the agent did not finish "
                                       "creating it; restart the agent");
            }
            m->region_ = bip::mapped_region(shm, bip::read_only, 0, static_cast<std::size_t>(size));
        } catch (const bip::interprocess_exception& e) {
            throw translate(name, e);
        }
        std::string error;
        if (!m->attach(error)) {
            const bool version = error.find("layout") != std::string::npos;
            throw SegmentError(
                version ? SegmentError::Kind::incompatible : SegmentError::Kind::corrupt,
                "segment '" + name + "': " + error);
        }
        return m;
    }

    // The view of a layout-2 segment; unattached when legacy().
    const SegmentView& view() const noexcept { return view_; }
    // A segment of layout 1, written by an older agent (or --segment-layout 1).
    bool legacy() const noexcept { return legacy_; }
    const v1::SegmentView& legacy_view() const noexcept { return legacy_view_; }
    // The header's fields are where they are in both layouts.
    const layout::SegmentHeader& header() const noexcept { return *header_; }
    bool retired() const noexcept { return load_acquire(header_->retired) != 0; }
    std::size_t size() const noexcept { return region_.get_size(); }
    const std::string& name() const noexcept { return name_; }

  private:
    Mapping() = default;

    bool attach(std::string& error) {
        const void* base = region_.get_address();
        const std::size_t size = region_.get_size();
        if (size >= layout::kHeaderSize) {
            const auto* h = static_cast<const layout::SegmentHeader*>(base);
            if (h->magic == layout::kMagic && h->version == layout::v1::kVersion) {
                legacy_ = true;
                header_ = h;
                return legacy_view_.attach(base, size, error);
            }
            if (h->magic == layout::kMagic && h->version != layout::kVersion) {
                error = unknown_version(h->version);
                return false;
            }
        }
        header_ = static_cast<const layout::SegmentHeader*>(base);
        return view_.attach(base, size, error);
    }

    static SegmentError translate(const std::string& name,
                                  const boost::interprocess::interprocess_exception& e) {
        namespace bip = boost::interprocess;
        switch (e.get_error_code()) {
            case bip::not_found_error:
                return SegmentError(SegmentError::Kind::absent,
                                    "no segment '" + name + "' in " + std::string(kShmDir) +
                                        ": is yuxi-config-agent running with --segment " + name +
                                        "?");
            case bip::security_error:
                return SegmentError(SegmentError::Kind::permission,
                                    "permission denied reading segment '" + name +
                                        "': the reader must be in the agent's group (mode 0640)");
            default:
                return SegmentError(SegmentError::Kind::system,
                                    "cannot map segment '" + name + "': " + e.what());
        }
    }

    std::string name_;
    boost::interprocess::mapped_region region_;
    const layout::SegmentHeader* header_ = nullptr;
    SegmentView view_;
    bool legacy_ = false;
    v1::SegmentView legacy_view_;
};

// The waiters page (layout::WaitersPage), mapped read-write: the one piece of shared
// memory a reader writes, and only when it is about to sleep. Null if the agent made none
// or this user may not write it; such a reader then wakes every few milliseconds instead.
class WaitersMapping {
  public:
    static std::unique_ptr<WaitersMapping> open(const std::string& name) noexcept {
        const int fd = ::open(waiters_path(name).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            return nullptr;
        }
        struct stat st {};
        void* p = MAP_FAILED;
        if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size >= static_cast<off_t>(layout::kWaitersSize)) {
            p = ::mmap(nullptr, layout::kWaitersSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        }
        ::close(fd);
        if (p == MAP_FAILED) {
            return nullptr;
        }
        auto* page = static_cast<layout::WaitersPage*>(p);
        if (load_acquire(page->magic) != layout::kWaitersMagic ||
            load_relaxed(page->version) != layout::kWaitersVersion) {
            ::munmap(p, layout::kWaitersSize);
            return nullptr;
        }
        return std::unique_ptr<WaitersMapping>(new (std::nothrow) WaitersMapping(page));
    }

    ~WaitersMapping() { ::munmap(page_, layout::kWaitersSize); }
    WaitersMapping(const WaitersMapping&) = delete;
    WaitersMapping& operator=(const WaitersMapping&) = delete;

    // Raises the time until which some reader may sleep to at least `until_ns`. Always a
    // read-modify-write, sequentially consistent: with the writer's bump of `notify` and its
    // load of this word it forms the pair that guarantees either the writer sees this
    // sleeper or the sleeper's FUTEX_WAIT sees the bump (and does not sleep).
    void announce(std::uint64_t until_ns) noexcept {
        std::atomic_ref<std::uint64_t> word(page_->sleep_until_ns);
        std::uint64_t cur = word.load(std::memory_order_relaxed);
        while (!word.compare_exchange_weak(cur, cur > until_ns ? cur : until_ns,
                                           std::memory_order_seq_cst, std::memory_order_relaxed)) {
        }
    }

    // The latest time until which some reader announced it may sleep.
    std::uint64_t announced() const noexcept { return load_acquire(page_->sleep_until_ns); }

  private:
    explicit WaitersMapping(layout::WaitersPage* page) noexcept : page_(page) {}
    layout::WaitersPage* page_;
};

// Sleeps while the 32-bit word at `addr` equals `expected`, until CLOCK_MONOTONIC reaches
// `until_ns` at the latest (an absolute time, so the sleep never ends later than what the
// reader announced in the waiters page). The segment is a shared file mapping, so this is
// a shared futex; FUTEX_WAIT_BITSET only reads the word, which works on a read-only mapping.
inline void futex_wait_until(const std::uint32_t* addr, std::uint32_t expected,
                             std::uint64_t until_ns) noexcept {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(until_ns / 1000000000ULL);
    ts.tv_nsec = static_cast<long>(until_ns % 1000000000ULL);
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, &ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

inline void futex_wake_all(std::uint32_t* addr) noexcept {
    syscall(SYS_futex, addr, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

// True if some process holds the writer lock of segment `name`. Uses F_OFD_GETLK, which
// tests for a conflicting lock without taking one, so readers never disturb the writer.
inline bool writer_lock_held(const std::string& name) noexcept {
    const int fd = ::open(lock_path(name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    const bool held = ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    ::close(fd);
    return held;
}

}  // namespace detail
}  // namespace yuxi::config
