// Writer benchmarks: the cost of publishing ONE change (SegmentWriter::apply of a 1-entry
// batch that rewrites an existing key) with 100 and with 1,000,000 entries loaded,
// notify() with nobody waiting, and the longest an apply waits while a compaction of
// 1,000,000 entries is built in the background and taken over.
//
// Targets: <= 300 ns per change at 1,000,000 entries, no work proportional to the set; no
// apply waits more than 10 ms behind a compaction. The arena of the apply benchmarks is
// made large (sparse on tmpfs) so that no compaction starts in the timed loop; the
// `compactions` counter proves it. The 1 MiB pre-faulting madvise that apply() issues every
// ~5,000 changes is part of the timed cost (amortized).
//
// Data: 20-byte keys, 100-byte values. Each change rewrites an existing key drawn uniformly
// at random from all the loaded keys (so at 1M entries its slots and its previous entry are
// cold, as they would be), while the Change object itself is hot, as a change just parsed
// from the source would be: a ring of 16 Change objects whose key digits are rewritten in
// place before each apply. BM_KeyRewrite times that rewrite alone (it is included in the
// apply times; subtract it for the cost of apply itself).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/detail/hash.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace {

using yuxi::config::Namespace;
namespace agent = yuxi::config::agent;
namespace detail = yuxi::config::detail;
namespace layout = yuxi::config::layout;

constexpr std::size_t kValueBytes = 100;
constexpr std::int64_t kApplyIterations = 200000;  // per repetition; see arena sizing below

std::string make_key(std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "svc.cfg.key.%08zu", i);
    return buf;
}

std::string make_value(std::uint64_t seed) {
    std::string v(kValueBytes, 'x');
    v.front() = '"';
    v.back() = '"';
    std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (std::size_t i = 1; i + 1 < kValueBytes; ++i) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v[i] = static_cast<char>('a' + (x * 0x2545f4914f6cdd1dULL >> 59));
    }
    return v;
}

// Writes the 8 decimal digits of `i` at `out`.
void write_digits(char* out, std::uint64_t i) noexcept {
    static constexpr char kPairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    for (int p = 3; p >= 0; --p) {
        const std::uint64_t two = i % 100;
        i /= 100;
        out[2 * p] = kPairs[2 * two];
        out[2 * p + 1] = kPairs[2 * two + 1];
    }
}

struct Loaded {
    std::string name;
    std::optional<agent::SegmentWriter> writer;
    std::vector<agent::Change> ring;  // hot Change objects, keys rewritten in place
    std::size_t next = 0;
    std::size_t entries = 0;
    std::uint64_t rng = 0x9e3779b97f4a7c15ULL;

    ~Loaded() {
        writer.reset();
        ::unlink(detail::segment_path(name).c_str());
        ::unlink(detail::lock_path(name).c_str());
        ::unlink(detail::waiters_path(name).c_str());
    }

    // The next change: a hot Change object set to a uniformly random existing key.
    const agent::Change& next_change() noexcept {
        agent::Change& c = ring[next];
        next = (next + 1) % ring.size();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        const auto k = static_cast<std::uint64_t>((static_cast<detail::uint128>(rng) * entries) >>
                                                  64);  // uniform in [0, entries)
        write_digits(c.key.data() + 12, k);
        return c;
    }

    void apply_one() {
        const agent::Change& c = next_change();
        (void)writer->apply(std::span<const agent::Change>(&c, 1), writer->revision() + 1);
    }
};

// A writer holding `n` entries, built once per (n, arena) and kept for all repetitions.
Loaded& loaded(std::size_t n, std::uint64_t min_arena_bytes, const char* tag) {
    static std::map<std::string, std::unique_ptr<Loaded>> cache;
    const std::string id = std::string(tag) + "-" + std::to_string(n);
    auto& slot = cache[id];
    if (slot) {
        return *slot;
    }
    slot = std::make_unique<Loaded>();
    Loaded& l = *slot;
    l.name = "yuxi-bench-writer-" + id + "-" + std::to_string(::getpid());
    l.entries = n;
    agent::WriterOptions options;
    options.name = l.name;
    options.min_arena_bytes = min_arena_bytes;
    {
        std::vector<agent::Change> initial;
        initial.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            initial.push_back({Namespace::config, make_key(i), make_value(i), ""});
        }
        l.writer.emplace(agent::SegmentWriter::create(options, initial, 1));
    }
    for (std::size_t i = 0; i < 16; ++i) {
        l.ring.push_back({Namespace::config, make_key(0), make_value(n + i), ""});
    }
    return l;
}

// Sparse on tmpfs: only the pages written cost memory. A compaction starts in the
// background at 3/4 of the arena: 4 GiB leaves room for ~15 million 192-byte changes past
// the 1M entries (35 repetitions of both apply benchmarks) before that.
constexpr std::uint64_t kBigArena = 4096ULL << 20;

// Times batches of `size` changes (1, or the ring's 16), each rewriting a random existing
// key (`notify`: each followed by notify(), as the agent publishes); counts changes.
void run_applies(benchmark::State& state, std::size_t size, bool notify) {
    Loaded& l = loaded(static_cast<std::size_t>(state.range(0)), kBigArena, "apply");
    agent::SegmentWriter& w = *l.writer;
    const std::uint64_t compactions0 = w.compactions();
    for (auto _ : state) {
        for (std::size_t i = 0; i < size; ++i) {
            (void)l.next_change();  // rewrites the next Change of the ring
        }
        // The batch: the Change just rewritten, or the whole ring.
        const std::span<const agent::Change> batch =
            size == l.ring.size() ? std::span<const agent::Change>(l.ring)
                                  : std::span<const agent::Change>(
                                        &l.ring[(l.next + l.ring.size() - 1) % l.ring.size()], 1);
        auto r = w.apply(batch, w.revision() + 1);
        if (notify) {
            w.notify();
        }
        benchmark::DoNotOptimize(r);
    }
    const auto changes = state.iterations() * static_cast<std::int64_t>(size);
    state.SetItemsProcessed(changes);
    state.counters["ns_per_change"] = benchmark::Counter(
        static_cast<double>(changes), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["entries"] = static_cast<double>(w.live_entries());
    state.counters["compactions"] = static_cast<double>(w.compactions() - compactions0);
    state.counters["arena_used_MiB"] = static_cast<double>(w.arena_used()) / (1 << 20);
}

void BM_Apply(benchmark::State& state) {
    run_applies(state, 1, false);
}

// apply() + notify(), as the agent publishes a batch.
void BM_ApplyNotify(benchmark::State& state) {
    run_applies(state, 1, true);
}

// A batch of 16 changes (a transaction's worth of rows), each a random existing key; time
// per change. The misses of the 16 changes overlap (the writer starts them all first).
void BM_ApplyBatch16(benchmark::State& state) {
    run_applies(state, 16, true);
}

// The key rewrite of next_change() alone: the harness's share of BM_Apply.
void BM_KeyRewrite(benchmark::State& state) {
    Loaded& l = loaded(static_cast<std::size_t>(state.range(0)), kBigArena, "apply");
    for (auto _ : state) {
        const agent::Change& c = l.next_change();
        benchmark::DoNotOptimize(c.key.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}

// notify() with no reader waiting (the common case): no system call.
void BM_Notify(benchmark::State& state) {
    Loaded& l = loaded(static_cast<std::size_t>(state.range(0)), kBigArena, "apply");
    agent::SegmentWriter& w = *l.writer;
    for (auto _ : state) {
        w.notify();
    }
    state.SetItemsProcessed(state.iterations());
}

// The longest any apply waits while a compaction of the whole set is built in the
// background and taken over. Untimed applies fill the arena (default sizing: twice the
// live bytes plus max_value_bytes / 4) until the writer starts the builder; from then on,
// changes arrive at `rate` per second (argument 2; 0: back to back, as fast as apply
// goes) until the writer has taken the compacted segment over, and every apply is timed.
// Counters: max_apply_us (the longest stall), mean_apply_ns, build_ms (builder start to
// take-over), applies (during the build), rate_per_s (achieved).
void BM_CompactionStall(benchmark::State& state) {
    Loaded& l = loaded(static_cast<std::size_t>(state.range(0)), 0, "stall");
    const auto rate = static_cast<std::uint64_t>(state.range(1));
    agent::SegmentWriter& w = *l.writer;
    double worst_us = 0;
    double sum_ns = 0;
    std::uint64_t count = 0;
    double build_ms = 0;
    double rate_achieved = 0;
    for (auto _ : state) {
        state.PauseTiming();
        std::uint64_t fills = 0;
        while (!w.compacting()) {
            l.apply_one();
            if (++fills > 100000000ULL) {
                state.SkipWithError("no compaction started");
                return;
            }
        }
        const std::uint64_t before = w.compactions();
        const auto start = std::chrono::steady_clock::now();
        auto next = start;
        const auto period = std::chrono::nanoseconds(rate > 0 ? 1000000000ULL / rate : 0);
        std::uint64_t n = 0;
        while (w.compactions() == before) {
            if (rate > 0) {
                next += period;
                std::this_thread::sleep_until(next);
            }
            const auto t0 = std::chrono::steady_clock::now();
            l.apply_one();
            const auto t1 = std::chrono::steady_clock::now();
            const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
            worst_us = std::max(worst_us, ns / 1000);
            sum_ns += ns;
            ++n;
        }
        const auto end = std::chrono::steady_clock::now();
        build_ms = std::chrono::duration<double, std::milli>(end - start).count();
        rate_achieved = static_cast<double>(n) / (build_ms / 1000);
        count += n;
        state.ResumeTiming();
    }
    state.counters["max_apply_us"] = worst_us;
    state.counters["mean_apply_ns"] = count > 0 ? sum_ns / static_cast<double>(count) : 0;
    state.counters["build_ms"] = build_ms;
    state.counters["applies"] = static_cast<double>(count);
    state.counters["rate_per_s"] = rate_achieved;
}

// Noise only adds time: also report the best repetition (see read_bench.cpp).
void with_stats(benchmark::internal::Benchmark* b) {
    b->ComputeStatistics(
        "min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
    b->ComputeStatistics(
        "max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); });
}

BENCHMARK(BM_Apply)->Arg(100)->Arg(1000000)->Iterations(kApplyIterations)->Apply(with_stats);
BENCHMARK(BM_ApplyNotify)->Arg(100)->Arg(1000000)->Iterations(kApplyIterations)->Apply(with_stats);
BENCHMARK(BM_ApplyBatch16)
    ->Arg(100)
    ->Arg(1000000)
    ->Iterations(kApplyIterations / 16)
    ->Apply(with_stats);
BENCHMARK(BM_KeyRewrite)->Arg(1000000)->Apply(with_stats);
BENCHMARK(BM_Notify)->Arg(100)->Apply(with_stats);
// Slow (the arena is filled between compactions): fewer repetitions, whatever the flag.
// 100,000 changes a second (ten times the read benchmark's writer), and back to back.
BENCHMARK(BM_CompactionStall)
    ->Args({1000000, 100000})
    ->Args({1000000, 0})
    ->Iterations(1)
    ->Repetitions(3)
    ->Unit(benchmark::kMillisecond)
    ->Apply(with_stats);

}  // namespace

BENCHMARK_MAIN();
