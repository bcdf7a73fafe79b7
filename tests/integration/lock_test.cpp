// DistributedLock against real redis-server processes that each test starts on a free
// 127.0.0.1 port, without persistence, in a temporary directory, and kills by PID: mutual
// exclusion across 8 processes, a SIGKILLed holder, renewal, a non-owner's release, loss
// detection, Redis restarts with and without persistence, and every error kind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lock/lock_scripts.hpp"
#include "lock/redis_connection.hpp"
#include "redis_test_support.hpp"
#include "support/process.hpp"
#include "yuxi/config/lock.hpp"

namespace yuxi::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using test::PrivateRedis;

// Starts `args` with exactly `env`, or throws.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const test::FileActions& actions = {}) {
    const pid_t pid = test::spawn_process(args, env, actions);
    if (pid < 0) {
        throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(errno));
    }
    return pid;
}

// The environment without REDIS_*, plus `extra`.
std::vector<std::string> child_env(const std::vector<std::string>& extra) {
    return test::child_environment({"REDIS_"}, extra);
}

// Polls `done` every 5 ms until it holds or `timeout` passes; returns its last value.
template <typename F>
bool eventually(F done, Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
        if (Clock::now() >= deadline) {
            return done();
        }
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

std::string test_name() {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

// The server as the locks see it: timeouts short enough that the tests of a stopped or
// killed server finish within a lock's TTL of a second or two.
RedisEndpoint endpoint_of(const PrivateRedis& server) {
    RedisEndpoint e = server.endpoint(server.password());
    e.connect_timeout = 1s;
    e.command_timeout = 1s;
    return e;
}

class LockTest : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(server_.start()) << "redis-server did not start"; }

    DistributedLock make_lock(std::chrono::milliseconds ttl) {
        return DistributedLock(endpoint_of(server_), test_name(), ttl);
    }
    detail::RedisConnection raw() { return detail::RedisConnection(endpoint_of(server_)); }
    std::string key() const { return "yuxi:lock:" + test_name(); }

    PrivateRedis server_;
};

// Counts on_lost calls and remembers the reason.
struct LossProbe {
    std::atomic<int> calls{0};
    std::atomic<LossReason> reason{LossReason::none};
    std::atomic<bool> saw_lost{false};
    DistributedLock* lock = nullptr;

    std::function<void(LossReason)> callback() {
        return [this](LossReason r) {
            reason.store(r);
            saw_lost.store(lock != nullptr && lock->lost());
            calls.fetch_add(1);
        };
    }
};

TEST_F(LockTest, AcquireReleaseFencingAndRaii) {
    auto a = make_lock(5s);
    auto b = make_lock(5s);
    ASSERT_TRUE(a.try_acquire());
    EXPECT_TRUE(a.held());
    const std::uint64_t first = a.fencing_token();
    EXPECT_GT(first, 0U);
    EXPECT_THROW((void)a.try_acquire(), std::logic_error);  // not reentrant
    EXPECT_FALSE(b.try_acquire());
    EXPECT_EQ(b.fencing_token(), 0U);  // a failed attempt consumes no token

    // acquire() gives up after its timeout, not long after.
    const auto t0 = Clock::now();
    EXPECT_FALSE(b.acquire(200ms));
    const auto waited = Clock::now() - t0;
    EXPECT_GE(waited, 200ms);
    EXPECT_LT(waited, 700ms);

    EXPECT_TRUE(a.release());
    EXPECT_FALSE(a.held());
    EXPECT_FALSE(a.release());  // nothing held any more
    ASSERT_TRUE(b.try_acquire());
    EXPECT_GT(b.fencing_token(), first);
    EXPECT_TRUE(b.renew());

    // The destructor releases; a moved lock keeps its hold and its token.
    {
        DistributedLock moved(std::move(b));
        EXPECT_TRUE(moved.held());
        EXPECT_FALSE(b.held());  // NOLINT(bugprone-use-after-move): moved-from is defined
        EXPECT_THROW((void)b.try_acquire(), std::logic_error);
        EXPECT_FALSE(a.try_acquire());
    }
    ASSERT_TRUE(a.try_acquire());
    // Move-assignment releases what the target held.
    auto c = make_lock(5s);
    c = std::move(a);
    EXPECT_TRUE(c.held());
    DistributedLock d = make_lock(5s);
    d = std::move(c);
    EXPECT_TRUE(d.held());
    d = make_lock(5s);
    EXPECT_FALSE(d.held());
    EXPECT_TRUE(d.try_acquire());

    EXPECT_THROW(DistributedLock(endpoint_of(server_), "", 1s), std::invalid_argument);
    EXPECT_THROW(DistributedLock(endpoint_of(server_), "x", 0ms), std::invalid_argument);
}

// (1) 8 processes x 200 acquisitions: the critical sections never overlap in the shared
// file, and the fencing tokens strictly increase in file order.
TEST_F(LockTest, MutualExclusionAcrossProcesses) {
    constexpr int kProcesses = 8;
    constexpr int kIterations = 200;
    const fs::path log = server_.dir() / "sections.log";  // removed with the server
    const auto env =
        child_env({"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(server_.port())});
    std::vector<pid_t> pids;
    for (int i = 0; i < kProcesses; ++i) {
        pids.push_back(spawn({YUXI_LOCK_HOLDER_BIN, "loop", test_name(), "2000",
                              std::to_string(kIterations), log.string(), "10"},
                             env));
    }
    const auto deadline = Clock::now() + 45s;
    for (const pid_t pid : pids) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::max<Clock::duration>(deadline - Clock::now(), 0s));
        const test::Exit status = test::wait_exit(pid, left);
        if (!status.exited) {
            for (const pid_t p : pids) {
                ::kill(p, SIGKILL);
                (void)test::wait_exit(p, 5s);
            }
            FAIL() << "lock_holder " << pid << " did not finish in time";
        }
        EXPECT_EQ(status.code, 0) << "lock_holder " << pid;
    }

    std::ifstream in(log);
    std::string line;
    std::map<std::string, int> per_process;
    std::uint64_t last_fence = 0;
    std::string open_pid;
    std::string open_fence;
    int sections = 0;
    int line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        std::istringstream fields(line);
        std::string what, pid, fence;
        fields >> what >> pid >> fence;
        if (what == "start") {
            ASSERT_TRUE(open_pid.empty()) << "line " << line_no << ": " << line
                                          << " starts inside the section of " << open_pid;
            const std::uint64_t value = std::stoull(fence);
            ASSERT_GT(value, last_fence) << "line " << line_no << ": fence did not increase";
            last_fence = value;
            open_pid = pid;
            open_fence = fence;
        } else {
            ASSERT_EQ(what, "end") << "line " << line_no;
            ASSERT_EQ(pid, open_pid) << "line " << line_no << ": end of a section not open";
            ASSERT_EQ(fence, open_fence) << "line " << line_no;
            open_pid.clear();
            ++per_process[pid];
            ++sections;
        }
    }
    EXPECT_TRUE(open_pid.empty());
    EXPECT_EQ(sections, kProcesses * kIterations);
    EXPECT_EQ(per_process.size(), static_cast<std::size_t>(kProcesses));
    for (const auto& [pid, count] : per_process) {
        EXPECT_EQ(count, kIterations) << pid;
    }
}

// (2) A holder killed with SIGKILL blocks others until its TTL runs out, not longer.
TEST_F(LockTest, KilledHolderFreesAfterTtl) {
    constexpr auto kTtl = 1500ms;
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    test::FileActions actions;
    actions.dup(out[1], 1);
    const auto env =
        child_env({"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(server_.port())});
    const auto spawned = Clock::now();
    const pid_t holder = spawn(
        {YUXI_LOCK_HOLDER_BIN, "hold", test_name(), std::to_string(kTtl.count())}, env, actions);
    ::close(out[1]);

    pollfd pfd{out[0], POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "the holder did not report";
    char buf[64] = {};
    ASSERT_GT(::read(out[0], buf, sizeof buf - 1), 0);
    const auto reported = Clock::now();
    ::close(out[0]);
    const std::string text(buf);
    ASSERT_EQ(text.rfind("acquired ", 0), 0U) << text;
    const std::uint64_t holder_fence = std::stoull(text.substr(9));

    ::kill(holder, SIGKILL);
    ASSERT_TRUE(test::wait_exit(holder, 5s).exited);

    auto lock = make_lock(5s);
    EXPECT_FALSE(lock.try_acquire());
    // Poll until it frees: the key expires kTtl after the holder's acquisition, which
    // happened between `spawned` and `reported`.
    std::optional<Clock::time_point> freed;
    const auto deadline = reported + kTtl + 3s;
    while (Clock::now() < deadline) {
        if (lock.try_acquire()) {
            freed = Clock::now();
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(freed) << "the lock did not free after the holder died";
    EXPECT_GE(*freed - spawned, kTtl - 5ms) << "freed before the TTL";
    EXPECT_LE(*freed - reported, kTtl + 500ms) << "freed long after the TTL";
    EXPECT_GT(lock.fencing_token(), holder_fence);
}

// (3) Renewal keeps a long job's lock for several TTLs; meanwhile nobody else gets it.
TEST_F(LockTest, RenewalKeepsLockBeyondTtl) {
    constexpr auto kTtl = 500ms;
    auto holder = make_lock(kTtl);
    auto other = make_lock(kTtl);
    ASSERT_TRUE(holder.try_acquire());
    LossProbe probe;
    holder.start_renewal(probe.callback());  // every ttl/3
    const auto until = Clock::now() + 5 * kTtl;
    int attempts = 0;
    while (Clock::now() < until) {
        ASSERT_FALSE(other.try_acquire()) << "taken while renewed, after " << attempts;
        ++attempts;
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_GE(attempts, 40);
    EXPECT_FALSE(holder.lost());
    EXPECT_EQ(probe.calls.load(), 0);
    EXPECT_TRUE(holder.release());
    EXPECT_TRUE(other.try_acquire());
    EXPECT_EQ(probe.calls.load(), 0);  // stopping renewal is no loss
}

// (4) Release with a token that is not the holder's deletes nothing.
TEST_F(LockTest, ReleaseByNonOwnerIsRefused) {
    auto owner = make_lock(5s);
    ASSERT_TRUE(owner.try_acquire());
    auto conn = raw();
    EXPECT_EQ(conn.command_integer({"EVAL", detail::kReleaseScript, "1", key(), "not-the-token"}),
              -1);
    EXPECT_EQ(conn.command_integer({"EXISTS", key()}), 1);
    EXPECT_TRUE(owner.renew());

    // The classic bug: a holder whose lock expired releases the next holder's lock.
    auto slow = make_lock(200ms);
    auto next = make_lock(5s);
    ASSERT_TRUE(owner.release());
    ASSERT_TRUE(slow.try_acquire());
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(next.try_acquire());
    EXPECT_FALSE(slow.release());  // refused: it is `next`'s lock now
    EXPECT_EQ(conn.command_integer({"EXISTS", key()}), 1);
    EXPECT_TRUE(next.renew());
    EXPECT_FALSE(slow.renew());
    EXPECT_TRUE(next.release());
}

// (5) Renewal notices when the key is deleted, flushed or taken over behind its back.
TEST_F(LockTest, RenewalDetectsLoss) {
    auto conn = raw();
    struct Case {
        const char* name;
        std::function<void()> act;
        LossReason expected;
    };
    const std::vector<Case> cases = {
        {"DEL",
         [&] {
             conn.command({"DEL", key()});
         },
         LossReason::gone},
        {"FLUSHALL", [&] { conn.command({"FLUSHALL"}); }, LossReason::gone},
        {"SET",
         [&] {
             conn.command({"SET", key(), "someone-else", "PX", "5000"});
         },
         LossReason::taken},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        conn.command({"DEL", key()});
        auto lock = make_lock(3s);
        LossProbe probe;
        probe.lock = &lock;
        ASSERT_TRUE(lock.try_acquire());
        lock.start_renewal(50ms, probe.callback());
        std::this_thread::sleep_for(120ms);
        EXPECT_FALSE(lock.lost());
        c.act();
        ASSERT_TRUE(eventually([&] { return probe.calls.load() > 0; }, 2s));
        EXPECT_TRUE(lock.lost());
        EXPECT_FALSE(lock.held());
        EXPECT_TRUE(probe.saw_lost.load());
        EXPECT_EQ(probe.reason.load(), c.expected);
        EXPECT_EQ(lock.loss_reason(), c.expected);
        std::this_thread::sleep_for(150ms);
        EXPECT_EQ(probe.calls.load(), 1);  // once: the renewal thread stopped
        EXPECT_FALSE(lock.release());
        if (c.expected == LossReason::taken) {
            EXPECT_EQ(conn.command_integer({"EXISTS", key()}), 1);  // not deleted
        }
    }
    // renew() reports a loss too, without a callback.
    conn.command({"DEL", key()});
    auto lock = make_lock(3s);
    ASSERT_TRUE(lock.try_acquire());
    conn.command({"DEL", key()});
    EXPECT_FALSE(lock.renew());
    EXPECT_EQ(lock.loss_reason(), LossReason::gone);
    EXPECT_TRUE(lock.try_acquire());  // a lost lock may be acquired again
    EXPECT_FALSE(lock.lost());
}

// (6a) Redis restarts without persistence: the lock is gone, renewal reports it, someone
// else can acquire, and the new fencing token is still higher than the old one although
// the counter was lost with the rest.
TEST_F(LockTest, RestartWithoutPersistenceLosesLockButNotFenceOrder) {
    auto holder = make_lock(3s);
    ASSERT_TRUE(holder.try_acquire());
    const std::uint64_t before = holder.fencing_token();
    LossProbe probe;
    holder.start_renewal(100ms, probe.callback());

    ASSERT_TRUE(server_.restart());
    ASSERT_TRUE(eventually([&] { return probe.calls.load() > 0; }, 3s));
    EXPECT_EQ(probe.reason.load(), LossReason::gone);

    auto conn = raw();
    EXPECT_EQ(conn.command_integer({"EXISTS", "yuxi:lock:" + test_name() + ":fence"}), 0);
    auto other = make_lock(3s);
    ASSERT_TRUE(other.try_acquire());
    EXPECT_GT(other.fencing_token(), before);
    EXPECT_FALSE(holder.release());  // and it leaves the new holder alone
    EXPECT_TRUE(other.renew());
}

// (6b) Redis down for longer than the TTL: renewal cannot confirm the lock, and reports
// it lost once the TTL since its last confirmed renewal has run out — not before.
TEST_F(LockTest, RedisDownPastTtlReportsUnreachable) {
    constexpr auto kTtl = 800ms;
    constexpr auto kEvery = 100ms;
    auto holder = make_lock(kTtl);
    ASSERT_TRUE(holder.try_acquire());
    LossProbe probe;
    holder.start_renewal(kEvery, probe.callback());
    std::this_thread::sleep_for(250ms);
    const auto killed = Clock::now();
    server_.kill();
    ASSERT_TRUE(eventually([&] { return probe.calls.load() > 0; }, kTtl + 2s));
    const auto noticed = Clock::now() - killed;
    EXPECT_EQ(probe.reason.load(), LossReason::unreachable);
    EXPECT_GE(noticed, kTtl - kEvery - 20ms);
    EXPECT_LE(noticed, kTtl + 300ms);
    EXPECT_THROW((void)holder.release(), LockError);
}

// (6c) With persistence (AOF, fsync always), a held lock survives a Redis crash and
// restart, its renewal continues, and the fencing counter keeps counting.
TEST_F(LockTest, RestartWithAofKeepsLock) {
    PrivateRedis durable;
    ASSERT_TRUE(durable.start(0, {"--appendonly", "yes", "--appendfsync", "always"}));
    DistributedLock holder(endpoint_of(durable), test_name(), 2s);
    DistributedLock other(endpoint_of(durable), test_name(), 2s);
    ASSERT_TRUE(holder.try_acquire());
    LossProbe probe;
    holder.start_renewal(200ms, probe.callback());

    ASSERT_TRUE(durable.restart());
    std::this_thread::sleep_for(2500ms);  // longer than the TTL: only renewal keeps it
    EXPECT_FALSE(holder.lost());
    EXPECT_EQ(probe.calls.load(), 0);
    EXPECT_FALSE(other.try_acquire());
    detail::RedisConnection conn(endpoint_of(durable));
    EXPECT_GT(conn.command_integer({"PTTL", key()}), 1000);
    EXPECT_TRUE(holder.release());
    ASSERT_TRUE(other.try_acquire());
    EXPECT_GT(other.fencing_token(), holder.fencing_token());
}

// An idle lock's connection that Redis closed (here by a restart) is reopened before the
// next command, which therefore succeeds instead of failing with io.
TEST_F(LockTest, IdleConnectionSurvivesRestart) {
    auto lock = make_lock(5s);
    ASSERT_TRUE(lock.try_acquire());
    ASSERT_TRUE(lock.release());
    ASSERT_TRUE(server_.restart());
    EXPECT_TRUE(lock.try_acquire());
    EXPECT_TRUE(lock.release());
}

// (7) A wrong password is LockError auth, and no message carries a password.
TEST_F(LockTest, WrongPasswordIsAuthErrorWithoutPassword) {
    const std::string secret = "s3cret-Pa55-right";
    PrivateRedis guarded;
    ASSERT_TRUE(guarded.start(0, {"--requirepass", secret}));

    RedisEndpoint wrong = endpoint_of(guarded);
    wrong.password = "Wr0ng-Pa55-given";
    DistributedLock lock(wrong, test_name(), 1s);
    try {
        (void)lock.try_acquire();
        ADD_FAILURE() << "no error with a wrong password";
    } catch (const LockError& e) {
        EXPECT_EQ(e.kind(), LockError::Kind::auth) << e.what();
        EXPECT_EQ(std::string(e.what()).find(wrong.password), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
    }

    RedisEndpoint none = endpoint_of(guarded);
    none.password.clear();
    DistributedLock anonymous(none, test_name(), 1s);
    try {
        (void)anonymous.try_acquire();
        ADD_FAILURE() << "no error without a password";
    } catch (const LockError& e) {
        EXPECT_EQ(e.kind(), LockError::Kind::auth) << e.what();
    }

    // A password sent to a server that has none is refused too.
    RedisEndpoint needless = endpoint_of(server_);
    needless.password = "Needless-Pa55";
    try {
        (void)DistributedLock(needless, test_name(), 1s).try_acquire();
        ADD_FAILURE() << "no error for AUTH to a server without a password";
    } catch (const LockError& e) {
        EXPECT_EQ(e.kind(), LockError::Kind::auth) << e.what();
        EXPECT_EQ(std::string(e.what()).find(needless.password), std::string::npos) << e.what();
    }

    DistributedLock right(endpoint_of(guarded), test_name(), 1s);
    EXPECT_TRUE(right.try_acquire());
    EXPECT_TRUE(right.release());
}

// (8) Nothing listening: LockError connect, from every call that talks to Redis.
TEST_F(LockTest, ConnectionRefusedIsConnectError) {
    RedisEndpoint nowhere;
    nowhere.port = test::free_port();
    DistributedLock lock(nowhere, test_name(), 1s);
    for (int i = 0; i < 2; ++i) {
        try {
            (void)(i == 0 ? lock.try_acquire() : lock.acquire(100ms));
            ADD_FAILURE() << "no error without a server";
        } catch (const LockError& e) {
            EXPECT_EQ(e.kind(), LockError::Kind::connect) << e.what();
            EXPECT_NE(std::string(e.what()).find(std::to_string(nowhere.port)), std::string::npos);
        }
    }
}

// A server that stops answering: LockError io after command_timeout. The command may
// still run when the server wakes up (here it does, under a token nobody knows), so the
// lock may stay taken until its TTL — the documented cost of an io error.
TEST_F(LockTest, StalledServerIsIoError) {
    RedisEndpoint impatient = endpoint_of(server_);
    impatient.command_timeout = 300ms;
    DistributedLock lock(impatient, test_name(), 1s);
    ASSERT_TRUE(lock.try_acquire());
    ASSERT_TRUE(lock.release());
    server_.signal(SIGSTOP);
    const auto t0 = Clock::now();
    try {
        (void)lock.try_acquire();
        ADD_FAILURE() << "no error from a stopped server";
    } catch (const LockError& e) {
        EXPECT_EQ(e.kind(), LockError::Kind::io) << e.what();
    }
    EXPECT_LT(Clock::now() - t0, 2s);
    server_.signal(SIGCONT);
    EXPECT_TRUE(lock.acquire(3s));  // reconnects; at worst after the phantom's TTL
}

// SELECT: locks live in the configured database; one out of range is LockError protocol.
TEST_F(LockTest, DatabaseSelection) {
    RedisEndpoint db3 = endpoint_of(server_);
    db3.db = 3;
    DistributedLock lock(db3, test_name(), 5s);
    ASSERT_TRUE(lock.try_acquire());
    detail::RedisConnection in_db3(db3);
    EXPECT_EQ(in_db3.command_integer({"EXISTS", key()}), 1);
    EXPECT_EQ(raw().command_integer({"EXISTS", key()}), 0);

    RedisEndpoint bad = endpoint_of(server_);
    bad.db = 100000;
    try {
        (void)DistributedLock(bad, test_name(), 1s).try_acquire();
        ADD_FAILURE() << "no error for database 100000";
    } catch (const LockError& e) {
        EXPECT_EQ(e.kind(), LockError::Kind::protocol) << e.what();
    }
}

TEST(RedisEndpointTest, FromEnv) {
    ::setenv("REDIS_HOST", "redis.example", 1);
    ::setenv("REDIS_PORT", "6380", 1);
    ::setenv("REDIS_PASSWORD", "pw", 1);
    ::setenv("REDIS_DB", "2", 1);
    auto e = RedisEndpoint::from_env();
    EXPECT_EQ(e.host, "redis.example");
    EXPECT_EQ(e.port, 6380);
    EXPECT_EQ(e.password, "pw");
    EXPECT_EQ(e.db, 2);
    for (const char* bad : {"0", "65536", "63x", "-1"}) {
        ::setenv("REDIS_PORT", bad, 1);
        EXPECT_THROW(RedisEndpoint::from_env(), std::invalid_argument) << bad;
    }
    for (const char* name : {"REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB"}) {
        ::unsetenv(name);
    }
    e = RedisEndpoint::from_env();
    EXPECT_EQ(e.host, "127.0.0.1");
    EXPECT_EQ(e.port, 6379);
    EXPECT_TRUE(e.password.empty());
    EXPECT_EQ(e.db, 0);
}

}  // namespace
}  // namespace yuxi::config
