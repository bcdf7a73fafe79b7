// Child processes for tests and benches: the agent, yuxi-configctl, redis-server and
// lock_holder, each started with posix_spawn in an environment of our choosing, with its
// output in a log file or a pipe.
//
//   child_environment(drop, add)   this process's environment, less and plus some
//   FileActions                    what the child does with its descriptors before exec
//   spawn_process(argv, env, ...)  starts it; -1 and errno when it cannot
//   wait_exit(pid, timeout)        its exit status, if it exits in time
//   kill_and_reap(pid)             SIGKILL, and no zombie left
//
// The child gets exactly the environment it is given: one that inherited DATABASE_URL,
// REDIS_* or YUXI_CONFIG_* from the shell would talk to servers the test does not own.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace yuxi::config::test {

// This process's environment without the variables that start with one of `drop`, then
// `add` ("NAME=value").
inline std::vector<std::string> child_environment(std::initializer_list<std::string_view> drop,
                                                  const std::vector<std::string>& add = {}) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view v(*e);
        bool dropped = false;
        for (const std::string_view prefix : drop) {
            dropped = dropped || v.starts_with(prefix);
        }
        if (!dropped) {
            env.emplace_back(v);
        }
    }
    env.insert(env.end(), add.begin(), add.end());
    return env;
}

// How a log file is opened: appended to when one file collects several runs.
enum class LogMode { truncate, append };

// posix_spawn_file_actions_t, destroyed with its owner.
class FileActions {
  public:
    FileActions() { posix_spawn_file_actions_init(&actions_); }
    ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;

    // `fd` opened on `path` for writing (created 0644).
    FileActions& write_to(int fd, const std::filesystem::path& path, LogMode mode) {
        const int how = mode == LogMode::append ? O_APPEND : O_TRUNC;
        posix_spawn_file_actions_addopen(&actions_, fd, path.c_str(), O_WRONLY | O_CREAT | how,
                                         0644);
        return *this;
    }
    // stdout and stderr both to `path`, in the order written.
    FileActions& log_to(const std::filesystem::path& path, LogMode mode) {
        write_to(1, path, mode);
        return dup(1, 2);
    }
    FileActions& dup(int from, int to) {
        posix_spawn_file_actions_adddup2(&actions_, from, to);
        return *this;
    }

    const posix_spawn_file_actions_t* get() const noexcept { return &actions_; }

  private:
    posix_spawn_file_actions_t actions_;
};

// Starts argv[0] (a path, or a name looked up in PATH) with exactly `env`. Returns its
// pid, or -1 with errno set to posix_spawn's error.
[[nodiscard]] inline pid_t spawn_process(const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env,
                                         const FileActions& actions) {
    // posix_spawn takes char* const[] but does not write through them.
    std::vector<char*> args;
    for (const std::string& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (const std::string& e : env) {
        envp.push_back(const_cast<char*>(e.c_str()));
    }
    envp.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, args[0], actions.get(), nullptr, args.data(), envp.data());
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

// The same with stdout and stderr in `log`.
[[nodiscard]] inline pid_t spawn_process(const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env,
                                         const std::filesystem::path& log,
                                         LogMode mode = LogMode::truncate) {
    FileActions actions;
    actions.log_to(log, mode);
    return spawn_process(argv, env, actions);
}

struct Exit {
    bool exited = false;
    int code = -1;  // the exit status, or 128 + the signal, as a shell reports it
};

inline int exit_code(int wait_status) {
    return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

// Reaps `pid` if it exits within `timeout`; `exited` says whether it did.
inline Exit wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return {true, exit_code(status)};
        }
        if (r < 0 || std::chrono::steady_clock::now() >= deadline) {
            return {};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

inline void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

}  // namespace yuxi::config::test
