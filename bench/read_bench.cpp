// Read-path benchmarks, all in one run so that ratios are taken within a run (over 600
// lines for that reason: the peers must share one process and one machine state):
//
//   Client::get (hit, miss), Client::read into a caller buffer, Client::view (zero copy,
//   owning), Pin::view (zero copy, borrowed), typed Client::get<std::int64_t> and
//   Pin::get<std::int64_t>, snapshot() + 10 gets, 1 and 2 reader threads, and reads while a
//   writer process publishes 10,000 changes a second; against an in-process
//   std::unordered_map (the floor: lookup plus copy-out into a new std::string; for typed
//   reads, a map of pre-parsed int64_t) and LMDB (mdb_get plus copy-out).
//
// Built twice, as read_bench_O2 and read_bench_O3: the client is a header compiled with the
// application's flags, and bench/report.sh shows both.
//
// Data: 10,000 entries, 20-byte keys, 100-byte values (JSON strings); for the typed reads a
// second segment of 10,000 entries under the same keys holding integers. Every benchmark walks
// the same shuffled permutation of the keys (each thread from a different starting point),
// so no key stays hot in a register or a single cache line; the argument is the number of
// keys walked (10000, or a hot set of 64 that stays in cache). Keys are read from one
// contiguous block and the map is looked up by std::string_view (transparent hash), so
// fetching the key costs every reader the same.
//
// Processes: before Google Benchmark starts, the process forks a writer child that creates
// the segments (SegmentWriter) and writes the same entries to an LMDB environment, then
// sleeps on a futex. Reads of both are therefore cross-process. On request (a shared
// control block in a MAP_SHARED anonymous mapping, futex-woken) the child publishes one
// change at a time at a paced rate (default 10,000/s: one 1-entry apply() + notify() per
// 100 us, on absolute deadlines, catching up if it falls behind), rewriting random keys.
//
// Retries: Client does not expose its latch loop, so *_Latch_* benchmarks run an
// instrumented copy of Client::latched_find over detail::SegmentView (same loads, same
// order) that counts how often the sequence moved between the first and the last load;
// `retries_per_read` is that count over the reads.
//
// Statistics: besides Google Benchmark's mean/median/stddev/cv, every benchmark reports
// "min" and "max" over the repetitions; bench/report.py uses the best repetition, since
// on a shared machine noise only adds time.
//
// Environment: YUXI_BENCH_NO_PIN=1 disables CPU pinning (by default reader thread i runs
// on CPU i and the writer child on the last CPU); YUXI_BENCH_WRITE_RATE overrides the
// writer's rate (changes per second).
#include <benchmark/benchmark.h>
#include <linux/futex.h>
#include <lmdb.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/client.hpp"

namespace {

using yuxi::config::Client;
using yuxi::config::Namespace;
using yuxi::config::ReadResult;
namespace detail = yuxi::config::detail;
namespace agent = yuxi::config::agent;

constexpr std::size_t kEntries = 10000;
constexpr std::size_t kValueBytes = 100;
constexpr std::size_t kSnapshotKeys = 10;

// ---------------------------------------------------------------------------------------
// The data set, identical in the parent and the writer child (built before fork).

std::string make_key(const char* prefix, std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%08zu", prefix, i);
    return buf;  // 12 + 8 = 20 bytes
}

// A JSON string of exactly kValueBytes bytes whose content depends on (i, version).
std::string make_value(std::size_t i, std::uint64_t version) {
    std::string v = "\"";
    std::mt19937_64 rng(i * 1000003ULL + version);
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    while (v.size() < kValueBytes - 1) {
        v.push_back(kAlphabet[rng() % (sizeof kAlphabet - 1)]);
    }
    v.push_back('"');
    return v;
}

// Keys live in one contiguous block (20 bytes each, 200 KB), so that fetching the key
// to look up costs both sides the same and little; values are std::strings.
struct DataSet {
    std::string key_blob;   // kEntries present keys
    std::string miss_blob;  // kEntries absent keys of the same length
    std::size_t key_len = 0;
    std::vector<std::string> values;
    std::vector<std::int64_t> ints;    // the integer segment's values
    std::vector<std::uint32_t> order;  // a shuffled permutation of [0, kEntries)

    std::string_view key(std::size_t i) const noexcept {
        return {key_blob.data() + i * key_len, key_len};
    }
    std::string_view miss(std::size_t i) const noexcept {
        return {miss_blob.data() + i * key_len, key_len};
    }
};

DataSet& data() {
    static DataSet d;
    return d;
}

void build_data() {
    DataSet& d = data();
    d.key_len = make_key("svc.cfg.key.", 0).size();
    for (std::size_t i = 0; i < kEntries; ++i) {
        d.key_blob += make_key("svc.cfg.key.", i);
        d.miss_blob += make_key("svc.cfg.mis.", i);
    }
    for (std::size_t i = 0; i < kEntries; ++i) {
        d.values.push_back(make_value(i, 0));
        d.ints.push_back(static_cast<std::int64_t>(i * 7919 % 1000003));
    }
    d.order.resize(kEntries);
    for (std::size_t i = 0; i < kEntries; ++i) {
        d.order[i] = static_cast<std::uint32_t>(i);
    }
    std::mt19937_64 rng(42);
    std::shuffle(d.order.begin(), d.order.end(), rng);
}

// Walks the first `set` keys of the shuffled order (the whole set, or a small hot set
// that stays in cache); each thread starts at its own offset.
class Cursor {
  public:
    explicit Cursor(const benchmark::State& state)
        : order_(data().order.data()),
          set_(state.range(0) > 0 ? static_cast<std::size_t>(state.range(0)) : kEntries),
          pos_(static_cast<std::size_t>(state.thread_index()) * set_ /
               static_cast<std::size_t>(state.threads())) {}
    std::size_t next() noexcept {
        const std::size_t i = order_[pos_];
        pos_ = pos_ + 1 == set_ ? 0 : pos_ + 1;
        return i;
    }

  private:
    const std::uint32_t* order_;
    std::size_t set_;
    std::size_t pos_;
};

// ---------------------------------------------------------------------------------------
// CPU pinning.

bool pinning() {
    static const bool on = std::getenv("YUXI_BENCH_NO_PIN") == nullptr;
    return on;
}

unsigned cpu_count() {
    static const unsigned n = std::max(1U, std::thread::hardware_concurrency());
    return n;
}

void pin_to(unsigned cpu) {
    if (!pinning()) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % cpu_count(), &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

void pin_reader(const benchmark::State& state) {
    pin_to(static_cast<unsigned>(state.thread_index()));
}

// ---------------------------------------------------------------------------------------
// The writer child and its control block.

std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

enum Command : std::uint32_t { kIdle = 0, kPace = 1, kExit = 2 };

struct Control {
    std::atomic<std::uint32_t> command{kIdle};  // futex word: parent -> child
    std::atomic<std::uint32_t> state{kIdle};    // child's acknowledgement
    std::atomic<std::uint32_t> ready{0};        // 1: data written, 2: failed
    std::atomic<std::uint64_t> rate{10000};     // changes per second when pacing
    std::atomic<std::uint64_t> applied{0};      // changes published while pacing
    std::atomic<std::uint64_t> compactions{0};
    std::atomic<std::uint64_t> late{0};  // applies made more than 1 period late
    char error[512] = {};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

Control* g_control = nullptr;
pid_t g_child = -1;
std::string g_segment;
std::string g_int_segment;
std::string g_lmdb_dir;

void futex_wait_shared(std::atomic<std::uint32_t>& word, std::uint32_t expected) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, nullptr,
            nullptr, 0);
}

void futex_wake_shared(std::atomic<std::uint32_t>& word) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT32_MAX, nullptr,
            nullptr, 0);
}

void sleep_until_ns(std::uint64_t t) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(t / 1000000000ULL);
    ts.tv_nsec = static_cast<long>(t % 1000000000ULL);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

void check_mdb(int rc, const char* what) {
    if (rc != MDB_SUCCESS) {
        std::fprintf(stderr, "read_bench: %s: %s\n", what, mdb_strerror(rc));
        std::exit(1);
    }
}

void write_lmdb(const DataSet& d) {
    MDB_env* env = nullptr;
    check_mdb(mdb_env_create(&env), "mdb_env_create");
    check_mdb(mdb_env_set_mapsize(env, 64ULL << 20), "mdb_env_set_mapsize");
    check_mdb(mdb_env_open(env, g_lmdb_dir.c_str(), 0, 0644), "mdb_env_open (writer)");
    MDB_txn* txn = nullptr;
    check_mdb(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin");
    MDB_dbi dbi = 0;
    check_mdb(mdb_dbi_open(txn, nullptr, 0, &dbi), "mdb_dbi_open");
    for (std::size_t i = 0; i < kEntries; ++i) {
        const std::string_view key = d.key(i);
        MDB_val k{key.size(), const_cast<char*>(key.data())};
        MDB_val v{d.values[i].size(), const_cast<char*>(d.values[i].data())};
        check_mdb(mdb_put(txn, dbi, &k, &v, 0), "mdb_put");
    }
    check_mdb(mdb_txn_commit(txn), "mdb_txn_commit");
    mdb_env_close(env);
}

[[noreturn]] void child_main() {
    Control& c = *g_control;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_TIMERSLACK, 1UL);
    pin_to(cpu_count() - 1);
    const DataSet& d = data();
    try {
        agent::WriterOptions options;
        options.name = g_segment;
        options.min_arena_bytes = 512ULL << 20;  // sparse: no compaction while benchmarking
        options.max_value_bytes = 1 << 20;
        std::vector<agent::Change> initial;
        for (std::size_t i = 0; i < kEntries; ++i) {
            initial.push_back({Namespace::config, std::string(d.key(i)), d.values[i], ""});
        }
        auto w = agent::SegmentWriter::create(options, initial, 1);
        agent::WriterOptions int_options = options;
        int_options.name = g_int_segment;
        std::vector<agent::Change> ints;
        for (std::size_t i = 0; i < kEntries; ++i) {
            ints.push_back(
                {Namespace::config, std::string(d.key(i)), std::to_string(d.ints[i]), ""});
        }
        auto wi = agent::SegmentWriter::create(int_options, ints, 1);
        write_lmdb(d);

        // Pre-built changes: random keys, values of the same size, new contents.
        std::vector<agent::Change> changes;
        std::mt19937_64 rng(7);
        for (std::size_t i = 0; i < 4096; ++i) {
            const std::size_t k = rng() % kEntries;
            changes.push_back({Namespace::config, std::string(d.key(k)), make_value(k, i + 1), ""});
        }
        std::size_t next_change = 0;
        c.ready.store(1);
        futex_wake_shared(c.ready);

        for (;;) {
            const std::uint32_t cmd = c.command.load();
            if (cmd == kExit) {
                break;
            }
            c.state.store(cmd);
            futex_wake_shared(c.state);
            if (cmd == kIdle) {
                futex_wait_shared(c.command, kIdle);
                continue;
            }
            const std::uint64_t period = 1000000000ULL / std::max<std::uint64_t>(1, c.rate.load());
            std::uint64_t deadline = now_ns();
            while (c.command.load(std::memory_order_relaxed) == kPace) {
                deadline += period;
                const std::uint64_t now = now_ns();
                if (now < deadline) {
                    sleep_until_ns(deadline);
                } else if (now - deadline > period) {
                    c.late.fetch_add(1, std::memory_order_relaxed);
                    if (now - deadline > 10'000'000ULL) {
                        deadline = now;  // descheduled for 10 ms: do not burst to catch up
                    }
                }
                const agent::Change& ch = changes[next_change];
                next_change = (next_change + 1) % changes.size();
                const auto r = w.apply(std::span<const agent::Change>(&ch, 1), w.revision() + 1);
                w.notify();
                if (r.compacted) {
                    c.compactions.fetch_add(1, std::memory_order_relaxed);
                }
                c.applied.fetch_add(1, std::memory_order_relaxed);
            }
        }
    } catch (const std::exception& e) {
        std::snprintf(c.error, sizeof c.error, "%s", e.what());
        c.ready.store(2);
        futex_wake_shared(c.ready);
        std::_Exit(1);
    }
    std::_Exit(0);
}

void wait_for_state(std::uint32_t want) {
    while (g_control->state.load() != want) {
        futex_wait_shared(g_control->state, g_control->state.load());
    }
}

void command_writer(Command cmd) {
    g_control->command.store(cmd);
    futex_wake_shared(g_control->command);
    if (cmd != kExit) {
        wait_for_state(cmd);
    }
}

// Starts the paced writer for the lifetime of the object (thread 0 only) and reports the
// achieved write rate.
class PacedWriter {
  public:
    explicit PacedWriter(benchmark::State& state) : state_(state) {
        if (state_.thread_index() != 0) {
            return;
        }
        command_writer(kPace);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // reach the steady rate
        applied0_ = g_control->applied.load();
        compactions0_ = g_control->compactions.load();
        t0_ = now_ns();
    }
    ~PacedWriter() {
        if (state_.thread_index() != 0) {
            return;
        }
        const std::uint64_t t1 = now_ns();
        const std::uint64_t applied = g_control->applied.load() - applied0_;
        command_writer(kIdle);
        state_.counters["writes_per_s"] =
            static_cast<double>(applied) * 1e9 / static_cast<double>(t1 - t0_);
        state_.counters["compactions"] =
            static_cast<double>(g_control->compactions.load() - compactions0_);
    }
    PacedWriter(const PacedWriter&) = delete;
    PacedWriter& operator=(const PacedWriter&) = delete;

  private:
    benchmark::State& state_;
    std::uint64_t applied0_ = 0;
    std::uint64_t compactions0_ = 0;
    std::uint64_t t0_ = 0;
};

// ---------------------------------------------------------------------------------------
// The readers under test.

// std::unordered_map<std::string, std::string> with heterogeneous lookup, so that it is
// looked up by the same std::string_view as the client (std::hash<std::string_view> is
// std::hash<std::string>: the same function over the same bytes).
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
using Map = std::unordered_map<std::string, std::string, StringHash, std::equal_to<>>;
using IntMap = std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>>;

std::optional<Client> g_client;
std::optional<Client> g_int_client;
Map g_map;
IntMap g_int_map;
std::shared_ptr<const detail::Mapping> g_mapping;  // for the instrumented latch
MDB_env* g_env = nullptr;
MDB_dbi g_dbi = 0;

void open_readers() {
    const DataSet& d = data();
    g_client.emplace(Client::open(g_segment));
    g_int_client.emplace(Client::open(g_int_segment));
    g_mapping = detail::Mapping::open(g_segment);
    for (std::size_t i = 0; i < kEntries; ++i) {
        g_map.emplace(std::string(d.key(i)), d.values[i]);
        g_int_map.emplace(std::string(d.key(i)), d.ints[i]);
    }
    check_mdb(mdb_env_create(&g_env), "mdb_env_create");
    check_mdb(mdb_env_set_mapsize(g_env, 64ULL << 20), "mdb_env_set_mapsize");
    check_mdb(mdb_env_open(g_env, g_lmdb_dir.c_str(), MDB_RDONLY, 0644), "mdb_env_open");
    MDB_txn* txn = nullptr;
    check_mdb(mdb_txn_begin(g_env, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    check_mdb(mdb_dbi_open(txn, nullptr, 0, &g_dbi), "mdb_dbi_open");

    // The readers agree on the data before anything is timed.
    for (std::size_t i = 0; i < kEntries; ++i) {
        const auto a = g_client->get(d.key(i));
        const auto b = g_map.find(d.key(i));
        char buf[256];
        const ReadResult r = g_client->read(d.key(i), buf);
        const auto v = g_client->view(d.key(i));
        MDB_val key{d.key_len, const_cast<char*>(d.key(i).data())};
        MDB_val val{};
        const bool lmdb_ok =
            mdb_get(txn, g_dbi, &key, &val) == MDB_SUCCESS &&
            std::string_view(static_cast<const char*>(val.mv_data), val.mv_size) == d.values[i];
        const auto pinned = g_client->pin().view(d.key(i));
        const auto typed = g_int_client->get<std::int64_t>(d.key(i));
        const auto int_it = g_int_map.find(d.key(i));
        if (!a || *a != d.values[i] || b == g_map.end() || b->second != d.values[i] || !r ||
            std::string_view(buf, r.size) != d.values[i] || !v || v->data() != d.values[i] ||
            pinned != d.values[i] || typed != d.ints[i] || int_it == g_int_map.end() ||
            int_it->second != d.ints[i] || !lmdb_ok || g_client->get(d.miss(i)) ||
            g_map.contains(d.miss(i))) {
            std::fprintf(stderr, "read_bench: readers disagree at key %zu\n", i);
            std::exit(1);
        }
    }
    mdb_txn_abort(txn);
}

// The floor: what a process-local map costs, copy-out included.
inline std::optional<std::string> map_get(std::string_view key) {
    const auto it = g_map.find(key);
    if (it == g_map.end()) {
        return std::nullopt;
    }
    return it->second;
}

// detail::latched_find, instrumented to count retries.
inline std::optional<std::string> latch_get(const detail::SegmentView& v, std::string_view key,
                                            std::uint64_t& retries) {
    const std::uint64_t h = detail::key_hash(Namespace::config, key);
    detail::SegmentView::Hit r;
    for (int attempt = 0; attempt < 1024; ++attempt) {
        const std::uint64_t s = v.seq_acquire();
        r = v.find_hit(static_cast<unsigned>(s & 1), Namespace::config, key, h);
        if (v.seq_relaxed() == s) {
            break;
        }
        ++retries;
    }
    if (!r.live()) {
        return std::nullopt;
    }
    return std::string(detail::value_of(r.entry));
}

std::optional<std::string> lmdb_get(MDB_txn* txn, std::string_view k) {
    MDB_val key{k.size(), const_cast<char*>(k.data())};
    MDB_val val{};
    if (mdb_get(txn, g_dbi, &key, &val) != MDB_SUCCESS) {
        return std::nullopt;
    }
    return std::string(static_cast<const char*>(val.mv_data), val.mv_size);
}

// ---------------------------------------------------------------------------------------
// Benchmarks. Each reports items_per_second; one item is one key read. The argument is
// the number of distinct keys walked: 10000 (all, the headline) or 64 (a hot set that
// stays in L1/L2, which shows the instruction cost without the cache misses).

template <class Read>
void run_reads(benchmark::State& state, bool misses, Read&& read) {
    pin_reader(state);
    const DataSet& d = data();
    Cursor cur(state);
    for (auto _ : state) {
        const std::size_t i = cur.next();
        read(misses ? d.miss(i) : d.key(i));
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_Map_Get(benchmark::State& state) {
    run_reads(state, false, [](std::string_view k) {
        auto v = map_get(k);
        benchmark::DoNotOptimize(v);
    });
}

void BM_Map_Miss(benchmark::State& state) {
    run_reads(state, true, [](std::string_view k) {
        auto v = map_get(k);
        benchmark::DoNotOptimize(v);
    });
}

void BM_Client_Get(benchmark::State& state) {
    const Client& c = *g_client;
    run_reads(state, false, [&c](std::string_view k) {
        auto v = c.get(k);
        benchmark::DoNotOptimize(v);
    });
}

void BM_Client_Miss(benchmark::State& state) {
    const Client& c = *g_client;
    run_reads(state, true, [&c](std::string_view k) {
        auto v = c.get(k);
        benchmark::DoNotOptimize(v);
    });
}

void BM_Client_Read(benchmark::State& state) {
    const Client& c = *g_client;
    char buf[256];
    run_reads(state, false, [&c, &buf](std::string_view k) {
        const ReadResult r = c.read(k, buf);
        benchmark::DoNotOptimize(r);
        benchmark::DoNotOptimize(buf);
    });
}

void BM_Client_View(benchmark::State& state) {
    const Client& c = *g_client;
    run_reads(state, false, [&c](std::string_view k) {
        auto v = c.view(k);
        benchmark::DoNotOptimize(v);
    });
}

// Borrowed views: one Pin per benchmark run (per request, in an application), a
// std::string_view per read.
void BM_Client_PinView(benchmark::State& state) {
    const yuxi::config::Pin pin = g_client->pin();
    run_reads(state, false, [&pin](std::string_view k) {
        auto v = pin.view(k);
        benchmark::DoNotOptimize(v);
    });
}

// The floor for typed reads: a map of integers parsed beforehand.
void BM_Map_GetInt(benchmark::State& state) {
    run_reads(state, false, [](std::string_view k) {
        const auto it = g_int_map.find(k);
        auto v = it == g_int_map.end() ? std::nullopt : std::optional<std::int64_t>(it->second);
        benchmark::DoNotOptimize(v);
    });
}

void BM_Client_GetInt(benchmark::State& state) {
    const Client& c = *g_int_client;
    run_reads(state, false, [&c](std::string_view k) {
        auto v = c.get<std::int64_t>(k);
        benchmark::DoNotOptimize(v);
    });
}

void BM_Client_PinGetInt(benchmark::State& state) {
    const yuxi::config::Pin pin = g_int_client->pin();
    run_reads(state, false, [&pin](std::string_view k) {
        auto v = pin.get<std::int64_t>(k);
        benchmark::DoNotOptimize(v);
    });
}

// snapshot() + get of 10 keys; one item is one key, so the per-item time includes a
// tenth of taking the snapshot.
void BM_Client_Snapshot10(benchmark::State& state) {
    pin_reader(state);
    const DataSet& d = data();
    const Client& c = *g_client;
    Cursor cur(state);
    for (auto _ : state) {
        const auto snap = c.snapshot();
        for (std::size_t i = 0; i < kSnapshotKeys; ++i) {
            auto v = snap.get(d.key(cur.next()));
            benchmark::DoNotOptimize(v);
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kSnapshotKeys));
}

// LMDB as its readers use it for fresh data: one read-only txn per thread, renewed for
// each read (mdb_txn_renew / mdb_txn_reset), mdb_get, copy-out.
void BM_LMDB_Get_Renew(benchmark::State& state) {
    MDB_txn* txn = nullptr;
    check_mdb(mdb_txn_begin(g_env, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    mdb_txn_reset(txn);
    run_reads(state, false, [txn](std::string_view k) {
        (void)mdb_txn_renew(txn);
        auto v = lmdb_get(txn, k);
        mdb_txn_reset(txn);
        benchmark::DoNotOptimize(v);
    });
    mdb_txn_abort(txn);
}

// LMDB with one long-lived read txn (it sees a frozen snapshot): mdb_get, copy-out.
void BM_LMDB_Get_LongTxn(benchmark::State& state) {
    MDB_txn* txn = nullptr;
    check_mdb(mdb_txn_begin(g_env, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    run_reads(state, false, [txn](std::string_view k) {
        auto v = lmdb_get(txn, k);
        benchmark::DoNotOptimize(v);
    });
    mdb_txn_abort(txn);
}

void BM_Latch_Get(benchmark::State& state) {
    const detail::SegmentView& v = g_mapping->view();
    std::uint64_t retries = 0;
    run_reads(state, false, [&v, &retries](std::string_view k) {
        auto r = latch_get(v, k, retries);
        benchmark::DoNotOptimize(r);
    });
    state.counters["retries"] = static_cast<double>(retries);
    state.counters["retries_per_read"] =
        static_cast<double>(retries) /
        static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
}

void BM_Client_Get_UnderWriter(benchmark::State& state) {
    PacedWriter writer(state);
    BM_Client_Get(state);
}

void BM_Client_Read_UnderWriter(benchmark::State& state) {
    PacedWriter writer(state);
    BM_Client_Read(state);
}

void BM_Latch_Get_UnderWriter(benchmark::State& state) {
    PacedWriter writer(state);
    BM_Latch_Get(state);
}

constexpr std::int64_t kAll = static_cast<std::int64_t>(kEntries);
constexpr std::int64_t kHot = 64;

// On a shared machine noise only ever adds time: besides mean/median/stddev/cv, report
// the best repetition ("min" of times, "max" of rates; both statistics are computed for
// every value, report.py picks the meaningful one).
void with_stats(benchmark::internal::Benchmark* b) {
    b->ComputeStatistics(
        "min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
    b->ComputeStatistics(
        "max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); });
}

// Single thread, CPU time.
BENCHMARK(BM_Map_Get)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Map_Miss)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_Get)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_Miss)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_Read)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_View)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_PinView)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Map_GetInt)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_GetInt)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_PinGetInt)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_Client_Snapshot10)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_LMDB_Get_Renew)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
BENCHMARK(BM_LMDB_Get_LongTxn)->Arg(kAll)->Arg(kHot)->Apply(with_stats);
// Idle vs a writer process publishing 10,000 changes a second.
BENCHMARK(BM_Latch_Get)->Arg(kAll)->Apply(with_stats);
BENCHMARK(BM_Latch_Get_UnderWriter)->Arg(kAll)->Apply(with_stats);
BENCHMARK(BM_Client_Get_UnderWriter)->Arg(kAll)->Apply(with_stats);
BENCHMARK(BM_Client_Read_UnderWriter)->Arg(kAll)->Apply(with_stats);
// Thread scaling: wall-clock time, so that items_per_second is the aggregate throughput.
BENCHMARK(BM_Map_Get)->Arg(kAll)->Threads(1)->Threads(2)->UseRealTime()->Apply(with_stats);
BENCHMARK(BM_Client_Get)->Arg(kAll)->Threads(1)->Threads(2)->UseRealTime()->Apply(with_stats);
BENCHMARK(BM_Client_Read)->Arg(kAll)->Threads(1)->Threads(2)->UseRealTime()->Apply(with_stats);
BENCHMARK(BM_Client_View)->Arg(kAll)->Threads(1)->Threads(2)->UseRealTime()->Apply(with_stats);
BENCHMARK(BM_Client_PinView)->Arg(kAll)->Threads(1)->Threads(2)->UseRealTime()->Apply(with_stats);

void cleanup() {
    if (g_child > 0) {
        command_writer(kExit);
        int status = 0;
        (void)waitpid(g_child, &status, 0);
        g_child = -1;
    }
    for (const std::string& name : {g_segment, g_int_segment}) {
        ::unlink(detail::segment_path(name).c_str());
        ::unlink(detail::lock_path(name).c_str());
        ::unlink(detail::waiters_path(name).c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(g_lmdb_dir, ec);
}

}  // namespace

int main(int argc, char** argv) {
    build_data();
    g_segment = "yuxi-bench-read-" + std::to_string(::getpid());
    g_int_segment = g_segment + "-int";
    char dir[] = "/tmp/yuxi-bench-lmdb-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    g_lmdb_dir = dir;
    void* shm =
        ::mmap(nullptr, sizeof(Control), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        std::perror("mmap");
        return 1;
    }
    g_control = new (shm) Control();
    if (const char* r = std::getenv("YUXI_BENCH_WRITE_RATE")) {
        g_control->rate.store(std::strtoull(r, nullptr, 10));
    }
    g_child = ::fork();
    if (g_child < 0) {
        std::perror("fork");
        return 1;
    }
    if (g_child == 0) {
        child_main();
    }
    while (g_control->ready.load() == 0) {
        futex_wait_shared(g_control->ready, 0);
    }
    if (g_control->ready.load() != 1) {
        std::fprintf(stderr, "read_bench: writer failed: %s\n", g_control->error);
        cleanup();
        return 1;
    }
    open_readers();

    benchmark::AddCustomContext("entries", std::to_string(kEntries));
    benchmark::AddCustomContext("key_bytes", std::to_string(data().key_len));
    benchmark::AddCustomContext("value_bytes", std::to_string(kValueBytes));
    benchmark::AddCustomContext("writer_rate_per_s", std::to_string(g_control->rate.load()));
    benchmark::AddCustomContext("pinned", pinning() ? "yes" : "no");
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        cleanup();
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g_client.reset();
    g_int_client.reset();
    g_mapping.reset();
    mdb_env_close(g_env);
    cleanup();
    return 0;
}
