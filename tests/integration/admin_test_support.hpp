// What the admin tests (yuxi-configctl's database and Redis commands) share: running the
// real yuxi-configctl in a child process with a clean environment, and a fixture with a
// fresh database of its own. Builds on database_test_support.hpp.
//
// Needs YUXI_CONFIGCTL, YUXI_AGENT_BIN, YUXI_SQL_DIR, YUXI_SAMPLES_DIR and
// YUXI_ADMIN_FIXTURES_DIR (compile definitions).
#pragma once

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "database_test_support.hpp"

namespace yuxi::config::test {

struct CtlResult {
    int status = -1;  // the exit status, or 128 + signal
    std::string out;
    std::string err;
    std::chrono::milliseconds took{0};
};

// yuxi-configctl in a child process. The environment is ours less everything that would
// point it somewhere (DATABASE_URL*, REDIS_*, YUXI_CONFIG_SEGMENT), plus `env`.
class Ctl {
  public:
    explicit Ctl(const std::vector<std::string>& args, const std::vector<std::string>& env = {})
        : started_(std::chrono::steady_clock::now()) {
        int out[2];
        int err[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe failed");
        }
        std::vector<std::string> argv = {YUXI_CONFIGCTL};
        argv.insert(argv.end(), args.begin(), args.end());
        FileActions actions;
        actions.dup(out[1], 1).dup(err[1], 2);
        pid_ = spawn_process(
            argv, child_environment({"DATABASE_URL", "REDIS_", "YUXI_CONFIG_", "YUXI_LOCK_"}, env),
            actions);
        const int spawn_error = errno;
        ::close(out[1]);
        ::close(err[1]);
        fds_[0] = out[0];
        fds_[1] = err[0];
        if (pid_ < 0) {
            throw std::runtime_error("cannot start yuxi-configctl: " +
                                     std::string(std::strerror(spawn_error)));
        }
    }
    ~Ctl() {
        if (pid_ > 0) {
            kill_and_reap(pid_);
        }
        for (int fd : fds_) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
    Ctl(const Ctl&) = delete;
    Ctl& operator=(const Ctl&) = delete;

    pid_t pid() const noexcept { return pid_; }

    // Reads both pipes to their end and reaps the child.
    CtlResult finish() {
        while (pump(-1)) {
        }
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        run_.status = exit_code(status);
        run_.took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started_);
        return run_;
    }

  private:
    bool pump(int timeout_ms) {
        if (fds_[0] < 0 && fds_[1] < 0) {
            return false;
        }
        pollfd p[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};
        if (::poll(p, 2, timeout_ms) < 0) {
            return errno == EINTR;
        }
        std::string* sinks[2] = {&run_.out, &run_.err};
        for (int i = 0; i < 2; ++i) {
            if (p[i].fd < 0 || p[i].revents == 0) {
                continue;
            }
            char buf[4096];
            const ssize_t n = ::read(p[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else {
                ::close(fds_[i]);
                fds_[i] = -1;
            }
        }
        return true;
    }

    pid_t pid_ = -1;
    int fds_[2] = {-1, -1};
    CtlResult run_;
    std::chrono::steady_clock::time_point started_;
};

inline CtlResult ctl(const std::vector<std::string>& args,
                     const std::vector<std::string>& env = {}) {
    return Ctl(args, env).finish();
}

inline std::string describe(const CtlResult& r) {
    return "exit " + std::to_string(r.status) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

inline fs::path samples() {
    return fs::path(YUXI_SAMPLES_DIR) / "saves";
}

inline fs::path admin_fixtures() {
    return YUXI_ADMIN_FIXTURES_DIR;
}

// The fixtures' files as migrate and file mode take them.
inline std::vector<std::string> fixture_args() {
    const fs::path kb = samples() / "knowledge_base_data";
    return {"--config-file",
            (samples() / "config/base.toml").string(),
            "--config-file",
            (samples() / "config/custom_providers.toml").string(),
            "--metadata",
            "global_metadata=" + (kb / "global_metadata.json").string(),
            "--metadata",
            "metadata_milvus=" + (kb / "milvus_data/metadata_milvus.json").string(),
            "--metadata",
            "metadata_lightrag=" + (kb / "lightrag_data/metadata_lightrag.json").string()};
}

// `head`, the fixtures' files, then `tail`: yuxi-configctl migrate's arguments.
inline std::vector<std::string> fixture_args_with(std::vector<std::string> head,
                                                  const std::vector<std::string>& tail = {}) {
    const auto files = fixture_args();
    head.insert(head.end(), files.begin(), files.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
}

// A fresh database per test on YUXI_TEST_DATABASE_URL's server; skips without it.
class AdminTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto server = env_var("YUXI_TEST_DATABASE_URL");
        if (!server) {
            GTEST_SKIP() << "YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)";
        }
        db_.emplace(*server, with_schema());
        pg_.emplace(db_->url());
    }

    virtual bool with_schema() const { return true; }

    // yuxi-configctl with DATABASE_URL set to this test's database.
    CtlResult db_ctl(std::vector<std::string> args, std::vector<std::string> env = {}) {
        env.push_back("DATABASE_URL=" + db_->url());
        return ctl(args, env);
    }

    std::optional<std::string> value_of(const std::string& key) {
        const auto rows = pg_->exec("SELECT value::text FROM system_configs WHERE key = $1", {key});
        return rows.empty() ? std::nullopt : std::optional(rows[0][0]);
    }

    std::uint64_t revision() { return db_revision(*pg_); }

    std::optional<TestDatabase> db_;
    std::optional<Pg> pg_;
};

}  // namespace yuxi::config::test
