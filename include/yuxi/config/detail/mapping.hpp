// Read-only mappings of a segment, the futex readers sleep on, and the writer-lock probe.
#pragma once

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "yuxi/config/detail/segment_view.hpp"
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

inline std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
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
        if (!m->view_.attach(m->region_.get_address(), m->region_.get_size(), error)) {
            const bool version = error.find("layout") != std::string::npos;
            throw SegmentError(
                version ? SegmentError::Kind::incompatible : SegmentError::Kind::corrupt,
                "segment '" + name + "': " + error);
        }
        return m;
    }

    const SegmentView& view() const noexcept { return view_; }
    const std::string& name() const noexcept { return name_; }

  private:
    Mapping() = default;

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
    SegmentView view_;
};

// Sleeps while the 32-bit word at `addr` equals `expected`, up to `timeout`. The segment
// is a shared file mapping, so this is a shared (not private) futex; FUTEX_WAIT only reads
// the word, which works on a read-only mapping.
inline void futex_wait(const std::uint32_t* addr, std::uint32_t expected,
                       std::chrono::nanoseconds timeout) noexcept {
    if (timeout.count() <= 0) {
        return;
    }
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
    syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, nullptr, 0);
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
