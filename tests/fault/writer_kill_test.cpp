// A writer killed with SIGKILL at a random moment (while creating its segment, inside a
// batch, inside a compaction) leaves a segment that readers keep reading whole, and the
// kernel releases its lock: a new writer takes over and every reader moves to the new
// writer's segment, whichever old mapping it was on.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "support/sanitized.hpp"
#include "yuxi/config/client.hpp"
#include "yuxi/config/detail/hash.hpp"

namespace yuxi::config {
namespace {

using test::kSanitized;

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;

constexpr int kKeys = 10;

std::string key_name(int k) {
    return "k" + std::to_string(k);
}

std::uint64_t payload_sum(std::string_view prefix) {
    return detail::hash_bytes(prefix.data(), prefix.size(), 0x7e57);
}

// {"rev":R,"key":"kN","pad":"...","sum":S}: S checks everything before it; the pad's
// length and letters change with R.
std::string make_value(std::uint64_t rev, int key) {
    std::string v =
        "{\"rev\":" + std::to_string(rev) + ",\"key\":\"" + key_name(key) + "\",\"pad\":\"";
    const std::size_t pad = (rev * 131 + static_cast<std::uint64_t>(key) * 17) % 500;
    for (std::size_t i = 0; i < pad; ++i) {
        v.push_back(static_cast<char>('a' + (rev + i) % 26));
    }
    v += "\",\"sum\":";
    v += std::to_string(payload_sum(v));
    v += '}';
    return v;
}

// The revision of a whole value of key `key`, or nothing.
std::optional<std::uint64_t> value_revision(std::string_view v, int key) {
    constexpr std::string_view kSum = "\",\"sum\":";
    const std::size_t sum_at = v.rfind(kSum);
    if (!v.starts_with("{\"rev\":") || sum_at == std::string_view::npos || !v.ends_with('}')) {
        return std::nullopt;
    }
    const std::size_t digits_at = sum_at + kSum.size();
    const char* end = v.data() + v.size() - 1;
    std::uint64_t sum = 0;
    std::uint64_t rev = 0;
    if (std::from_chars(v.data() + digits_at, end, sum).ptr != end ||
        payload_sum(v.substr(0, digits_at)) != sum ||
        std::from_chars(v.data() + 7, end, rev).ec != std::errc() ||
        v.find(",\"key\":\"" + key_name(key) + "\"") == std::string_view::npos) {
        return std::nullopt;
    }
    return rev;
}

std::vector<Change> batch_at(std::uint64_t rev) {
    std::vector<Change> batch;
    for (int k = 0; k < kKeys; ++k) {
        batch.push_back({Namespace::config, key_name(k), make_value(rev, k), ""});
    }
    return batch;
}

// The child: takes over the segment, then publishes batches as fast as it can until it is
// killed. With a ready pipe it instead reports readiness and only beats.
[[noreturn]] void writer_child(const WriterOptions& options, int ready_fd) {
    try {
        std::uint64_t rev = SegmentWriter::existing_revision(options.name) + 1;
        auto w = SegmentWriter::create(options, batch_at(rev), rev);
        w.set_source_state(SourceState::ok);
        w.heartbeat();
        w.notify();
        if (ready_fd >= 0) {
            const char byte = 1;
            if (::write(ready_fd, &byte, 1) != 1) {
                ::_exit(4);
            }
            for (;;) {
                w.heartbeat();
                ::usleep(1000);
            }
        }
        for (;;) {
            ++rev;
            (void)w.apply(batch_at(rev), rev);
            w.heartbeat();
            w.notify();
        }
    } catch (...) {
        ::_exit(3);
    }
}

// Every key has the snapshot's revision and a whole value; returns the revision.
std::uint64_t expect_whole(const Client& c, const char* who) {
    const Snapshot s = c.snapshot();
    for (int k = 0; k < kKeys; ++k) {
        const auto v = s.get(key_name(k));
        if (!v) {
            ADD_FAILURE() << who << ": " << key_name(k) << " is missing at " << s.revision();
            continue;
        }
        EXPECT_EQ(value_revision(*v, k), s.revision()) << who << ": " << *v;
    }
    int listed = 0;
    EXPECT_TRUE(s.for_each(Namespace::config, "", [&](const EntryInfo& e) {
        ++listed;
        EXPECT_EQ(e.revision, s.revision()) << who << ": " << e.key;
    })) << who;
    EXPECT_EQ(listed, kKeys) << who;
    return s.revision();
}

template <class Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

class WriterKillTest : public ::testing::Test {
  protected:
    void SetUp() override {
        options_.name = "yuxi-h1-kill-" + std::to_string(::getpid()) + "-" +
                        ::testing::UnitTest::GetInstance()->current_test_info()->name();
        options_.min_slots = 64;
        options_.max_value_bytes = 4096;
    }
    void TearDown() override {
        ::unlink(detail::segment_path(options_.name).c_str());
        ::unlink(detail::lock_path(options_.name).c_str());
        ::unlink(detail::waiters_path(options_.name).c_str());
        ::unlink((detail::segment_path(options_.name) + ".tmp.retiring").c_str());
    }

    // Kills a writer child after a random delay, `iterations` times, checking after each
    // kill what a reader that followed the writer and a reader that comes after it see.
    void kill_loop(std::uint64_t min_arena_bytes) {
        int iterations = kSanitized ? 25 : 80;
        if (const char* env = std::getenv("YUXI_KILL_ITERATIONS")) {
            iterations = std::atoi(env);
        }
        options_.min_arena_bytes = min_arena_bytes;
        {
            // The first segment to replace; its writer lets go of the lock at once.
            auto w = SegmentWriter::create(options_, batch_at(1), 1);
        }
        const auto c = Client::open(options_.name);
        std::uint64_t last = c.revision();
        const char* seed_env = std::getenv("YUXI_KILL_SEED");  // to replay a failure
        const auto seed = seed_env != nullptr ? std::strtoull(seed_env, nullptr, 10)
                                              : static_cast<std::uint64_t>(::getpid());
        std::mt19937_64 rng(seed);
        // A quarter of the kills within 2 ms of the fork, while the child creates its
        // segment; the rest log-uniform from 1 to 30 ms, inside its batches and compactions.
        std::uniform_real_distribution<double> early(1e3, 2e6);
        std::uniform_real_distribution<double> exponent(6.0, std::log10(3e7));
        int early_kills = 0;  // before the child published anything
        for (int it = 0; it < iterations && !HasFailure(); ++it) {
            SCOPED_TRACE("iteration " + std::to_string(it) + ", seed " + std::to_string(seed));
            const auto delay_ns = static_cast<std::uint64_t>(
                it % 4 == 0 ? early(rng) : std::pow(10.0, exponent(rng)));
            const std::uint64_t start = last;
            const pid_t pid = ::fork();
            ASSERT_GE(pid, 0);
            if (pid == 0) {
                writer_child(options_, -1);
            }
            // Follows the writer meanwhile, through its compactions.
            const std::uint64_t until = detail::monotonic_ns() + delay_ns;
            std::uint64_t polls = 0;
            do {
                const std::uint64_t r = c.revision();
                ASSERT_GE(r, last) << "the reader went back in time";
                last = r;
                const int k = static_cast<int>(polls++ % kKeys);
                const auto v = c.get(key_name(k));
                ASSERT_TRUE(v.has_value());
                const auto rev = value_revision(*v, k);
                ASSERT_TRUE(rev.has_value()) << *v;
                ASSERT_GE(*rev, last);
            } while (detail::monotonic_ns() < until);
            ASSERT_EQ(::kill(pid, SIGKILL), 0);
            int status = 0;
            ASSERT_EQ(::waitpid(pid, &status, 0), pid);
            ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
                << "the writer ended by itself, status " << status;

            const auto after = Client::open(options_.name);
            const std::uint64_t left = expect_whole(after, "a reader opened after the kill");
            early_kills += left == start ? 1 : 0;
            EXPECT_FALSE(after.health().writer_alive);
            EXPECT_GE(expect_whole(c, "the reader that followed the writer"), last);

            const std::uint64_t next = SegmentWriter::existing_revision(options_.name) + 1;
            EXPECT_EQ(next, left + 1);
            // Throws WriterError if the dead writer's lock were still held.
            auto w = SegmentWriter::create(options_, batch_at(next), next);
            EXPECT_TRUE(eventually([&] { return c.revision() == next; }, std::chrono::seconds(3)))
                << "a reader stayed on an old segment at revision " << c.revision()
                << "; the new writer published " << next;
            EXPECT_TRUE(
                eventually([&] { return after.revision() == next; }, std::chrono::seconds(3)))
                << "a reader stayed on the dead writer's segment at " << after.revision();
            EXPECT_TRUE(c.health().writer_alive);
            expect_whole(c, "the reader after the takeover");
            last = c.revision();
        }
        std::printf("%d kills, %d of them before the writer published\n", iterations, early_kills);
    }

    WriterOptions options_;
};

// ~15 batches per arena: most kills land inside a batch.
TEST_F(WriterKillTest, KilledWhilePublishing) {
    kill_loop(64 << 10);
}

// The arena holds two batches: most kills land inside a compaction or a rename.
TEST_F(WriterKillTest, KilledWhileCompacting) {
    kill_loop(4 << 10);
}

// The narrowest window of the loops above, made deterministic: a writer renamed its new
// segment over the name and died before setting `retired` in the one it replaced. The
// replaced segment's readers look only at that flag; the next writer must set it, finding
// the segment through the name the writer gives it before the rename.
TEST_F(WriterKillTest, NextWriterRetiresWhatADeadWriterReplaced) {
    options_.min_arena_bytes = 64 << 10;
    const std::string live = detail::segment_path(options_.name);
    WriterOptions other = options_;
    other.name = options_.name + "-next";
    std::optional<Client> c;
    {
        auto w = SegmentWriter::create(options_, batch_at(1), 1);
        c.emplace(Client::open(options_.name));
        auto next = SegmentWriter::create(other, batch_at(2), 2);
        // What the dying writer did: the second name, then the rename, then nothing more.
        ASSERT_EQ(::link(live.c_str(), (live + ".tmp.retiring").c_str()), 0);
        ASSERT_EQ(::rename(detail::segment_path(other.name).c_str(), live.c_str()), 0);
    }
    ::unlink(detail::lock_path(other.name).c_str());
    ::unlink(detail::waiters_path(other.name).c_str());
    ASSERT_EQ(c->revision(), 1u) << "the replaced segment was retired after all";

    auto taker = SegmentWriter::create(options_, batch_at(3), 3);
    EXPECT_TRUE(eventually([&] { return c->revision() == 3; }, std::chrono::seconds(3)))
        << "the reader stayed on the replaced segment at " << c->revision();
    expect_whole(*c, "after the takeover");
    EXPECT_NE(::access((live + ".tmp.retiring").c_str(), F_OK), 0);
}

TEST_F(WriterKillTest, HealthSeesTheWriterDie) {
    options_.min_arena_bytes = 64 << 10;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(fds[0]);
        writer_child(options_, fds[1]);
    }
    ::close(fds[1]);
    pollfd p{fds[0], POLLIN, 0};
    char byte = 0;
    ASSERT_EQ(::poll(&p, 1, 30000), 1) << "the writer did not start";
    ASSERT_EQ(::read(fds[0], &byte, 1), 1);
    ::close(fds[0]);

    const auto c = Client::open(options_.name);
    Health h = c.health();
    EXPECT_TRUE(h.writer_alive);
    EXPECT_EQ(h.writer_pid, static_cast<std::uint64_t>(pid));
    EXPECT_TRUE(h.fresh(std::chrono::seconds(2)));
    EXPECT_EQ(h.source_state, SourceState::ok);
    const std::uint64_t rev = expect_whole(c, "before the kill");

    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    h = c.health();
    EXPECT_FALSE(h.writer_alive);
    EXPECT_FALSE(h.fresh());
    EXPECT_FALSE(h.retired);
    EXPECT_EQ(h.revision, rev);
    EXPECT_EQ(h.writer_pid, static_cast<std::uint64_t>(pid));

    // Nothing beats any more: the heartbeat ages, and the last state stays readable.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_GE(c.health().heartbeat_age, std::chrono::milliseconds(50));
    EXPECT_EQ(expect_whole(c, "after the kill"), rev);
}

}  // namespace
}  // namespace yuxi::config
