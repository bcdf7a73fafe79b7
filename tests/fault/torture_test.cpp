// Readers in threads and in other processes read a segment while a writer publishes at
// full speed and compacts it every few dozen batches. No value read is torn, no snapshot
// mixes revisions, no reader goes back in time, and none is left behind on a replaced
// segment. A second test runs the latch on the writer's own mapping, where
// ThreadSanitizer can see both sides of every access.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "support/sanitized.hpp"
#include "yuxi/config/client.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/segment_view.hpp"

namespace yuxi::config {
namespace {

using test::kSanitized;

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;
using Status = detail::SegmentView::Status;

// Keys k0..k9 are set by every batch; k10 is set at even revisions and deleted at odd ones.
constexpr int kKeys = 10;
constexpr int kToggle = kKeys;
constexpr int kProcesses = 2;
constexpr int kThreads = 2;
constexpr std::uint64_t kRunNs = (kSanitized ? 2 : 3) * 1000000000ULL;

std::string key_name(int k) {
    return "k" + std::to_string(k);
}

const std::array<std::string, kKeys + 1>& keys() {
    static const auto names = [] {
        std::array<std::string, kKeys + 1> n;
        for (int k = 0; k <= kKeys; ++k) {
            n[static_cast<std::size_t>(k)] = key_name(k);
        }
        return n;
    }();
    return names;
}

std::uint64_t payload_sum(std::string_view prefix) {
    return detail::hash_bytes(prefix.data(), prefix.size(), 0x7e57);
}

// {"rev":R,"key":"kN","pad":"...","sum":S}: S checks everything before it, and the pad's
// length and letters change with R, so a value spliced from two writes does not check.
std::string make_value(std::uint64_t rev, int key, std::size_t max_pad) {
    std::string v =
        "{\"rev\":" + std::to_string(rev) + ",\"key\":\"" + key_name(key) + "\",\"pad\":\"";
    const std::size_t pad = (rev * 131 + static_cast<std::uint64_t>(key) * 17) % max_pad;
    for (std::size_t i = 0; i < pad; ++i) {
        v.push_back(static_cast<char>('a' + (rev + i) % 26));
    }
    v += "\",\"sum\":";
    v += std::to_string(payload_sum(v));
    v += '}';
    return v;
}

struct Payload {
    std::uint64_t rev = 0;
    int key = -1;
};

// The revision and key of a whole value, or nothing if it is not one make_value made.
std::optional<Payload> parse_value(std::string_view v) {
    constexpr std::string_view kRev = "{\"rev\":";
    constexpr std::string_view kKey = ",\"key\":\"k";
    constexpr std::string_view kSum = "\",\"sum\":";
    const std::size_t sum_at = v.rfind(kSum);
    if (!v.starts_with(kRev) || sum_at == std::string_view::npos || !v.ends_with('}')) {
        return std::nullopt;
    }
    const std::size_t digits_at = sum_at + kSum.size();
    std::uint64_t sum = 0;
    const char* end = v.data() + v.size() - 1;
    if (std::from_chars(v.data() + digits_at, end, sum).ptr != end ||
        payload_sum(v.substr(0, digits_at)) != sum) {
        return std::nullopt;
    }
    Payload p;
    const auto r = std::from_chars(v.data() + kRev.size(), end, p.rev);
    const std::string_view rest(r.ptr, static_cast<std::size_t>(end - r.ptr));
    if (!rest.starts_with(kKey) ||
        std::from_chars(rest.data() + kKey.size(), end, p.key).ec != std::errc()) {
        return std::nullopt;
    }
    return p;
}

std::vector<Change> batch_at(std::uint64_t rev, std::size_t max_pad) {
    std::vector<Change> batch;
    batch.reserve(kKeys + 1);
    for (int k = 0; k < kKeys; ++k) {
        batch.push_back({Namespace::config, key_name(k), make_value(rev, k, max_pad), ""});
    }
    if (rev % 2 == 0) {
        batch.push_back(
            {Namespace::config, key_name(kToggle), make_value(rev, kToggle, max_pad), ""});
    } else {
        batch.push_back({Namespace::config, key_name(kToggle), std::nullopt, ""});
    }
    return batch;
}

// What one reader did, written where the parent can see it even from another process.
struct Report {
    std::uint64_t reads = 0;
    std::uint64_t snapshots = 0;
    std::uint64_t first_rev = 0;
    std::uint64_t last_rev = 0;
    std::uint64_t moves = 0;  // times the revision it saw moved
    char error[512] = {};     // the first violation, empty if none
};

// Checks every read against the rules; stops at the first violation.
class Checker {
  public:
    explicit Checker(Report& report) : report_(report) {}

    bool failed() const { return report_.error[0] != '\0'; }

    void fail(const std::string& what) {
        if (!failed()) {
            std::snprintf(report_.error, sizeof report_.error, "%s", what.c_str());
        }
    }

    // Revisions seen by one reader never go back.
    void observe(std::uint64_t rev, const char* how) {
        if (rev < report_.last_rev) {
            fail(std::string(how) + " went back from revision " + std::to_string(report_.last_rev) +
                 " to " + std::to_string(rev));
        }
        if (report_.first_rev == 0) {
            report_.first_rev = rev;
        }
        report_.moves += rev != report_.last_rev ? 1 : 0;
        report_.last_rev = std::max(report_.last_rev, rev);
    }

    // The value is whole and belongs to `key`; returns its revision.
    std::uint64_t value(std::string_view v, int key, const char* how) {
        const auto p = parse_value(v);
        if (!p || p->key != key) {
            fail(std::string(how) + " of " + key_name(key) +
                 " returned a torn or foreign value: " + std::string(v.substr(0, 120)));
            return 0;
        }
        if (key == kToggle && p->rev % 2 != 0) {
            fail(std::string(how) + " found " + key_name(key) + " at odd revision " +
                 std::to_string(p->rev) + ", where it is deleted");
        }
        return p->rev;
    }

    // Every key of a snapshot has the snapshot's revision: they were written together.
    void snapshot(const Snapshot& s) {
        const std::uint64_t rev = s.revision();
        observe(rev, "snapshot()");
        for (int k = 0; k <= kKeys; ++k) {
            const auto v = s.get(keys()[static_cast<std::size_t>(k)]);
            if (k == kToggle && (rev % 2 == 0) != v.has_value()) {
                fail("snapshot at " + std::to_string(rev) + " has the toggled key wrong");
            } else if (k != kToggle && !v) {
                fail("snapshot at " + std::to_string(rev) + " lacks " + key_name(k));
            }
            if (v && value(*v, k, "Snapshot::get") != rev) {
                fail("snapshot at " + std::to_string(rev) + " returned " + key_name(k) + " = " +
                     v->substr(0, 40));
            }
        }
        int listed = 0;
        const bool ok = s.for_each(Namespace::config, "k", [&](const EntryInfo& e) {
            ++listed;
            const auto p = parse_value(e.value);
            if (e.revision != rev || !p || p->rev != rev) {
                fail("for_each at " + std::to_string(rev) + " listed " + std::string(e.key) +
                     " at " + std::to_string(e.revision));
            }
        });
        if (!ok || listed != kKeys + (rev % 2 == 0 ? 1 : 0)) {
            fail("for_each at " + std::to_string(rev) + " listed " + std::to_string(listed) +
                 " keys, ok=" + std::to_string(ok));
        }
        report_.reads += static_cast<std::uint64_t>(kKeys + 1 + listed);
        ++report_.snapshots;
    }

    void count() { ++report_.reads; }

  private:
    Report& report_;
};

// Reads through every client call until `deadline`, then checks that the reader catches
// up with what the writer published (it was not left on a replaced segment).
void read_until(const Client& c, std::uint64_t deadline,
                const std::atomic<std::uint64_t>& published, Report& report) {
    Checker check(report);
    std::array<char, 2048> buf{};
    for (std::uint64_t i = 0; !check.failed(); ++i) {
        if (i % 64 == 0 && detail::monotonic_ns() >= deadline) {
            break;
        }
        const int k = static_cast<int>(i % kKeys);
        const std::string& key = keys()[static_cast<std::size_t>(k)];
        switch (i % 4) {
            case 0:
                if (const auto v = c.get(key)) {
                    check.observe(check.value(*v, k, "get"), "get");
                } else {
                    check.fail("get lost " + key);
                }
                break;
            case 1: {
                const ReadResult r = c.read(key, buf);
                if (r) {
                    check.observe(check.value(std::string_view(buf.data(), r.size), k, "read"),
                                  "read");
                } else {
                    check.fail("read of " + key + " returned status " +
                               std::to_string(static_cast<int>(r.status)));
                }
                break;
            }
            case 2:
                if (const auto v = c.view(key)) {
                    const std::uint64_t rev = check.value(v->data(), k, "view");
                    if (v->revision() != rev || v->c_str()[v->size()] != '\0') {
                        check.fail("view of " + key + " has entry revision " +
                                   std::to_string(v->revision()) + " for a value of " +
                                   std::to_string(rev) + ", or no NUL");
                    }
                    check.observe(rev, "view");
                } else {
                    check.fail("view lost " + key);
                }
                break;
            case 3:
                check.observe(c.revision(), "revision()");
                if (const auto v = c.get(keys()[kToggle])) {
                    check.observe(check.value(*v, kToggle, "get"), "get");
                }
                check.count();
                break;
        }
        check.count();
        if (i % 128 == 0) {
            check.snapshot(c.snapshot());
        }
    }
    const std::uint64_t target = published.load(std::memory_order_acquire);
    const std::uint64_t give_up = detail::monotonic_ns() + 3000000000ULL;
    while (!check.failed() && c.revision() < target) {
        if (detail::monotonic_ns() > give_up) {
            check.fail("stuck at revision " + std::to_string(c.revision()) + " while " +
                       std::to_string(target) + " is published");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

// Shared with the reader processes: an anonymous shared mapping made before fork().
struct Shared {
    std::atomic<std::uint64_t> published{0};
    Report reports[kProcesses + kThreads];
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

class TortureTest : public ::testing::Test {
  protected:
    void SetUp() override {
        options_.name = "yuxi-h1-torture-" + std::to_string(::getpid()) + "-" +
                        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }
    void TearDown() override {
        ::unlink(detail::segment_path(options_.name).c_str());
        ::unlink(detail::lock_path(options_.name).c_str());
        ::unlink(detail::waiters_path(options_.name).c_str());
    }
    WriterOptions options_;
};

TEST_F(TortureTest, ReadersNeverSeeTornOrMixedState) {
    // An arena for ~50 batches (~12 under sanitizers, which slow the writer down most):
    // the segment is replaced many times a second.
    options_.min_arena_bytes = kSanitized ? 64 << 10 : 256 << 10;
    options_.min_slots = 64;
    options_.max_value_bytes = 4096;
    constexpr std::size_t kMaxPad = 700;
    auto w = SegmentWriter::create(options_, batch_at(1, kMaxPad), 1);

    void* mem =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    auto* shared = new (mem) Shared();
    shared->published.store(1);

    // Processes first: fork() before this process starts any thread.
    const std::uint64_t deadline = detail::monotonic_ns() + kRunNs;
    std::vector<pid_t> children;
    for (int p = 0; p < kProcesses; ++p) {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            Report& report = shared->reports[p];
            try {
                const auto c = Client::open(options_.name);
                read_until(c, deadline, shared->published, report);
            } catch (const std::exception& e) {
                std::snprintf(report.error, sizeof report.error, "%s", e.what());
            }
            ::_exit(report.error[0] == '\0' ? 0 : 1);
        }
        children.push_back(pid);
    }

    std::atomic<bool> stop{false};
    std::string writer_error;
    std::thread writer([&] {
        try {
            for (std::uint64_t rev = 2; !stop.load(std::memory_order_relaxed); ++rev) {
                const auto r = w.apply(batch_at(rev, kMaxPad), rev);
                if (!r.rejected.empty()) {
                    writer_error = "rejected " + r.rejected.front().reason;
                    break;
                }
                shared->published.store(rev, std::memory_order_release);
                if (rev % 16 == 0) {
                    w.heartbeat();
                    w.notify();
                }
            }
        } catch (const std::exception& e) {
            writer_error = e.what();
        }
    });

    const auto c = Client::open(options_.name);
    std::vector<std::thread> readers;
    for (int t = 0; t < kThreads; ++t) {
        readers.emplace_back([&, t] {
            read_until(c, deadline, shared->published, shared->reports[kProcesses + t]);
        });
    }
    for (auto& t : readers) {
        t.join();
    }
    for (const pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "reader process " << pid << " failed, status " << status;
    }
    stop = true;
    writer.join();

    EXPECT_EQ(writer_error, "");
    std::uint64_t reads = 0;
    for (int r = 0; r < kProcesses + kThreads; ++r) {
        const Report& report = shared->reports[r];
        const char* kind = r < kProcesses ? "process" : "thread";
        EXPECT_STREQ(report.error, "") << kind << " reader " << r;
        EXPECT_GT(report.snapshots, 0u) << kind << " reader " << r;
        // The writer ran during the reads, and the reader followed it.
        EXPECT_GT(report.moves, 10u) << kind << " reader " << r;
        reads += report.reads;
        std::printf("%s reader %d: %llu reads, %llu snapshots, revisions %llu..%llu (%llu moves)\n",
                    kind, r, static_cast<unsigned long long>(report.reads),
                    static_cast<unsigned long long>(report.snapshots),
                    static_cast<unsigned long long>(report.first_rev),
                    static_cast<unsigned long long>(report.last_rev),
                    static_cast<unsigned long long>(report.moves));
    }
    std::printf("total: %llu reads; writer: revision %llu, %llu compactions\n",
                static_cast<unsigned long long>(reads),
                static_cast<unsigned long long>(w.revision()),
                static_cast<unsigned long long>(w.compactions()));
    RecordProperty("reads", std::to_string(reads));
    RecordProperty("compactions", std::to_string(w.compactions()));
    EXPECT_GT(reads, kSanitized ? 10000u : 500000u);
    EXPECT_GT(w.compactions(), kSanitized ? 5u : 20u);
    shared->~Shared();
    ::munmap(mem, sizeof(Shared));
}

// The seqcount latch as the client runs it, but on the writer's own mapping: the client
// maps the segment at another address, where ThreadSanitizer cannot pair its reads with
// the writer's stores. Here it can, so a missing release or acquire is a reported race.
TEST_F(TortureTest, LatchOnTheWritersMappingIsRaceFree) {
    // No compaction may happen: it would unmap what the readers read.
    options_.min_arena_bytes = 256ULL << 20;
    options_.min_slots = 64;
    options_.max_value_bytes = 4096;
    constexpr std::size_t kMaxPad = 48;
    auto w = SegmentWriter::create(options_, batch_at(1, kMaxPad), 1);
    const unsigned char* base = nullptr;
    w.for_each(
        [&](const auto& e) { base = reinterpret_cast<const unsigned char*>(e.header) - e.offset; });
    ASSERT_NE(base, nullptr);
    detail::SegmentView view;
    std::string error;
    ASSERT_TRUE(view.attach(base, w.segment_bytes(), error)) << error;

    const std::uint64_t run_ns = (kSanitized ? 2 : 1) * 1000000000ULL;
    const std::uint64_t deadline = detail::monotonic_ns() + run_ns;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> published{1};
    std::thread writer([&] {
        std::uint64_t rev = 2;
        // Stops well before the arena fills: a full arena would compact.
        for (; detail::monotonic_ns() < deadline && w.arena_used() + (64 << 10) < w.arena_size();
             ++rev) {
            (void)w.apply(batch_at(rev, kMaxPad), rev);
            published.store(rev, std::memory_order_release);
        }
        stop = true;
    });

    std::array<Report, kThreads> reports{};
    std::vector<std::thread> readers;
    for (int t = 0; t < kThreads; ++t) {
        readers.emplace_back([&, t] {
            Checker check(reports[static_cast<std::size_t>(t)]);
            const auto latched = [&](int k) {
                const std::string& key = keys()[static_cast<std::size_t>(k)];
                const std::uint64_t h = detail::key_hash(Namespace::config, key);
                detail::SegmentView::Lookup r;
                for (int attempt = 0; attempt < 1000000; ++attempt) {
                    const std::uint64_t s = view.seq_acquire();
                    r = view.find(static_cast<unsigned>(s & 1), Namespace::config, key, h);
                    if (view.seq_relaxed() == s) {
                        return r;
                    }
                }
                check.fail("the latch never settled");
                return r;
            };
            for (std::uint64_t i = 0; !check.failed() && !stop.load(std::memory_order_relaxed);
                 ++i) {
                const int k = static_cast<int>(i % kKeys);
                const auto r = latched(k);
                if (r.status != Status::found || r.entry.tombstone()) {
                    check.fail("latched find lost " + key_name(k));
                    break;
                }
                const std::uint64_t rev = check.value(r.entry.value, k, "find");
                if (rev != r.entry.revision()) {
                    check.fail("entry revision differs from its value's");
                }
                check.observe(rev, "find");
                check.count();
                if (i % 32 != 0) {
                    continue;
                }
                // A snapshot: the latched revision, then every key walked back to it.
                std::uint64_t snap = 0;
                for (;;) {
                    const std::uint64_t s = view.seq_acquire();
                    snap = detail::load_acquire(
                        view.copy_header(static_cast<unsigned>(s & 1)).revision);
                    if (view.seq_relaxed() == s) {
                        break;
                    }
                }
                check.observe(snap, "latched revision");
                for (int j = 0; j <= kKeys; ++j) {
                    const std::string& key = keys()[static_cast<std::size_t>(j)];
                    const auto n = view.find_newest(Namespace::config, key,
                                                    detail::key_hash(Namespace::config, key));
                    const auto at = n.status == Status::found ? view.at_revision(n.entry, snap)
                                                              : detail::SegmentView::Lookup{};
                    const bool live = at.status == Status::found && !at.entry.tombstone();
                    if (j == kToggle ? live != (snap % 2 == 0) : !live) {
                        check.fail("snapshot at " + std::to_string(snap) + " has " + key +
                                   (live ? " present" : " absent"));
                    } else if (live && check.value(at.entry.value, j, "at_revision") != snap) {
                        check.fail("snapshot at " + std::to_string(snap) + " mixes revisions");
                    }
                    check.count();
                }
            }
        });
    }
    for (auto& t : readers) {
        t.join();
    }
    writer.join();
    EXPECT_EQ(w.compactions(), 0u);
    EXPECT_GT(published.load(), kSanitized ? 100u : 2000u);
    for (const Report& r : reports) {
        EXPECT_STREQ(r.error, "");
        EXPECT_GT(r.moves, 10u);
        std::printf("reader: %llu reads, revisions %llu..%llu\n",
                    static_cast<unsigned long long>(r.reads),
                    static_cast<unsigned long long>(r.first_rev),
                    static_cast<unsigned long long>(r.last_rev));
    }
}

}  // namespace
}  // namespace yuxi::config
