// A private redis-server per test (free loopback port, no persistence), and a blocking
// client for the tests' own commands (lock.hpp's connection). Needs redis-server on PATH
// or YUXI_TEST_REDIS_SERVER.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "database_test_support.hpp"
#include "yuxi/config/lock.hpp"

namespace yuxi::config::test {

inline std::string redis_server_bin() {
    if (auto v = env_var("YUXI_TEST_REDIS_SERVER")) {
        return *v;
    }
    for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
        if (fs::exists(p)) {
            return p;
        }
    }
    return {};
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

    // Starts on `port` (0: a free one) with `extra` arguments; waits until it answers.
    bool start(std::uint16_t port = 0, const std::vector<std::string>& extra = {}) {
        port_ = port != 0 ? port : free_port();
        extra_ = extra;
        for (std::size_t i = 0; i + 1 < extra.size(); ++i) {
            if (extra[i] == "--requirepass") {
                password_ = extra[i + 1];
            }
        }
        if (dir_.empty()) {
            dir_ = temp_dir("redis");
        }
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
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (std::string& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        const int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) {
            pid_ = -1;
            return false;
        }
        return eventually([&] { return ping(); }, 5s);
    }

    // The same port and arguments again (after kill()).
    bool restart() { return start(port_, extra_); }

    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    std::uint16_t port() const noexcept { return port_; }

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
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::vector<std::string> extra_;
    std::string password_;
    fs::path dir_;
};

}  // namespace yuxi::config::test
