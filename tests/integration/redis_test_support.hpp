// A private redis-server per test (free loopback port, no persistence unless asked, a
// directory of its own kept across restarts), and a blocking client for the tests' own
// commands (lock.hpp's connection). Needs redis-server (YUXI_TEST_REDIS_SERVER, /usr/bin,
// /usr/local/bin or PATH). Depends on no agent or PostgreSQL code: the lock tests use it.
#pragma once

#include <signal.h>

#include <string>
#include <vector>

#include "lock/redis_connection.hpp"
#include "support/hermetic.hpp"
#include "support/process.hpp"
#include "yuxi/config/lock.hpp"

namespace yuxi::config::test {

// The fleet's signing key in the tests (base64 of "yuxi-config-test-signing-key-001"), and
// another one (…-002) that the fleet does not know.
inline constexpr const char* kTestSigningKey = "eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDE=";
inline constexpr const char* kOtherSigningKey = "eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDI=";

inline std::string redis_server_bin() {
    if (auto v = env_var("YUXI_TEST_REDIS_SERVER")) {
        return *v;
    }
    for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
        if (fs::exists(p)) {
            return p;
        }
    }
    return "redis-server";  // spawn_process looks it up in PATH
}

class PrivateRedis {
  public:
    PrivateRedis() = default;
    ~PrivateRedis() {
        kill();
        if (!dir_.empty()) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }
    PrivateRedis(const PrivateRedis&) = delete;
    PrivateRedis& operator=(const PrivateRedis&) = delete;

    // Starts on `port` (0: a free one, another if that was taken meanwhile) with `extra`
    // arguments, which override the defaults; waits until it answers.
    bool start(std::uint16_t port = 0, const std::vector<std::string>& extra = {}) {
        extra_ = extra;
        for (std::size_t i = 0; i + 1 < extra.size(); ++i) {
            if (extra[i] == "--requirepass") {
                password_ = extra[i + 1];
            }
        }
        if (dir_.empty()) {
            dir_ = temp_dir("redis");
        }
        for (int attempt = 0; attempt < (port != 0 ? 1 : 5); ++attempt) {
            port_ = port != 0 ? port : free_port();
            if (spawn_and_wait()) {
                return true;
            }
        }
        return false;
    }

    // The same port, arguments and directory again, as after a crash: what was persisted
    // (--appendonly yes) is loaded again.
    bool restart() {
        kill();
        return start(port_, extra_);
    }

    void kill() {
        if (pid_ > 0) {
            kill_and_reap(pid_);
            pid_ = -1;
        }
    }

    std::uint16_t port() const noexcept { return port_; }
    const std::string& password() const noexcept { return password_; }
    // Its working directory, removed with it: room for a test's own files too.
    const fs::path& dir() const noexcept { return dir_; }

    // SIGSTOP / SIGCONT: a server that accepts nothing and answers nothing.
    void signal(int sig) const {
        if (pid_ > 0) {
            ::kill(pid_, sig);
        }
    }

    RedisEndpoint endpoint(const std::string& password = {}) const {
        RedisEndpoint e;
        e.host = "127.0.0.1";
        e.port = port_;
        e.password = password;
        return e;
    }

    bool ping() const {
        try {
            detail::RedisConnection c(endpoint(password_));
            const auto r = c.command({"PING"});
            return r != nullptr;
        } catch (const std::exception&) {
            return false;
        }
    }

  private:
    bool spawn_and_wait() {
        // Its own directory: a replica writes the RDB it receives, and a server loads any
        // dump.rdb it finds where it starts.
        std::vector<std::string> args = {redis_server_bin(),
                                         "--dir",
                                         dir_.string(),
                                         "--port",
                                         std::to_string(port_),
                                         "--bind",
                                         "127.0.0.1",
                                         "--save",
                                         "",
                                         "--appendonly",
                                         "no",
                                         "--daemonize",
                                         "no",
                                         "--loglevel",
                                         "warning"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        pid_ = spawn_process(args, child_environment({}), dir_ / "redis.log", LogMode::append);
        if (pid_ < 0) {
            return false;
        }
        bool exited = false;  // and reaped: the port was taken, or bad arguments
        const bool up = eventually(
            [&] {
                exited = wait_exit(pid_, 0ms).exited;
                return exited || ping();
            },
            5s);
        if (up && !exited) {
            return true;
        }
        if (exited) {
            pid_ = -1;
        }
        kill();
        return false;
    }

    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::vector<std::string> extra_;
    std::string password_;
    fs::path dir_;
};

}  // namespace yuxi::config::test
