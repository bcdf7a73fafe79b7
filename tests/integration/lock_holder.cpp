// A child process for lock_test: takes a DistributedLock from another process, so that
// mutual exclusion and a holder's death are tested across real processes. The endpoint
// comes from REDIS_HOST, REDIS_PORT and REDIS_PASSWORD (RedisEndpoint::from_env).
//
//   lock_holder loop <name> <ttl_ms> <iterations> <file> <max_backoff_ms>
//       acquires <iterations> times; each time, inside the lock, appends
//       "start <pid> <fence>" then "end <pid> <fence>" to <file>, opened with O_APPEND
//       each time, then releases.
//   lock_holder hold <name> <ttl_ms>
//       acquires, prints "acquired <fence>" and sleeps until killed (60 s at most).
//   lock_holder storm <name> <ttl_ms> <seconds> <file>
//       as loop, for <seconds>, riding out Redis failures (a failover): a LockError
//       drops the lock object (its key expires) and the next round tries again; prints
//       "errors <n>" at the end.
//
// Exit status: 0 done; 2 an acquisition timed out; 3 release() found the lock not ours
// (it expired inside the critical section); 4 LockError; 5 a write failed; 64 usage.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "yuxi/config/lock.hpp"

namespace {

using namespace std::chrono_literals;
using yuxi::config::DistributedLock;
using yuxi::config::RedisEndpoint;

constexpr auto kAcquireTimeout = 30s;

bool append_line(const char* path, const std::string& line) {
    const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return false;
    }
    // One write per line: O_APPEND makes each write land whole at the end.
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    return ::close(fd) == 0 && ok;
}

int loop(const std::string& name, std::chrono::milliseconds ttl, long iterations, const char* path,
         std::chrono::milliseconds max_backoff) {
    DistributedLock lock(RedisEndpoint::from_env(), name, ttl);
    const std::string pid = std::to_string(::getpid());
    for (long i = 0; i < iterations; ++i) {
        if (!lock.acquire(kAcquireTimeout, max_backoff)) {
            return 2;
        }
        const std::string fence = std::to_string(lock.fencing_token());
        if (!append_line(path, "start " + pid + " " + fence + "\n")) {
            return 5;
        }
        // Stay inside a little, so that a second holder would interleave its lines.
        std::this_thread::sleep_for(100us);
        if (!append_line(path, "end " + pid + " " + fence + "\n")) {
            return 5;
        }
        if (!lock.release()) {
            return 3;
        }
    }
    return 0;
}

int storm(const std::string& name, std::chrono::milliseconds ttl, long seconds, const char* path) {
    const std::string pid = std::to_string(::getpid());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    long errors = 0;
    while (std::chrono::steady_clock::now() < until) {
        try {
            DistributedLock lock(RedisEndpoint::from_env(), name, ttl);
            while (std::chrono::steady_clock::now() < until) {
                if (!lock.acquire(1s, 20ms)) {
                    continue;
                }
                const std::string fence = std::to_string(lock.fencing_token());
                if (!append_line(path, "start " + pid + " " + fence + "\n")) {
                    return 5;
                }
                std::this_thread::sleep_for(100us);
                if (!append_line(path, "end " + pid + " " + fence + "\n")) {
                    return 5;
                }
                (void)lock.release();
            }
        } catch (const yuxi::config::LockError&) {
            ++errors;
            std::this_thread::sleep_for(50ms);
        }
    }
    std::printf("errors %ld\n", errors);
    return 0;
}

int hold(const std::string& name, std::chrono::milliseconds ttl) {
    DistributedLock lock(RedisEndpoint::from_env(), name, ttl);
    if (!lock.acquire(kAcquireTimeout)) {
        return 2;
    }
    std::printf("acquired %llu\n", static_cast<unsigned long long>(lock.fencing_token()));
    std::fflush(stdout);
    std::this_thread::sleep_for(60s);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "loop" && argc == 7) {
            return loop(argv[2], std::chrono::milliseconds(std::atol(argv[3])), std::atol(argv[4]),
                        argv[5], std::chrono::milliseconds(std::atol(argv[6])));
        }
        if (mode == "storm" && argc == 6) {
            return storm(argv[2], std::chrono::milliseconds(std::atol(argv[3])), std::atol(argv[4]),
                         argv[5]);
        }
        if (mode == "hold" && argc == 4) {
            return hold(argv[2], std::chrono::milliseconds(std::atol(argv[3])));
        }
        std::fprintf(stderr,
                     "usage: lock_holder loop NAME TTL_MS ITERATIONS FILE MAX_BACKOFF_MS\n"
                     "       lock_holder hold NAME TTL_MS\n"
                     "       lock_holder storm NAME TTL_MS SECONDS FILE\n");
        return 64;
    } catch (const yuxi::config::LockError& e) {
        std::fprintf(stderr, "lock_holder: %s\n", e.what());
        return 4;
    }
}
