// The cost of a /metrics scrape on the agent's loop: rendering the exposition of a
// realistic registry (every family, both histograms filled, the relay's series, the
// error kinds of database mode), and of the whole answer's text with the status pulled.
// The loop does nothing else meanwhile, so this is the delay a scrape can add to an update.
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>

#include "agent/ops/metrics.hpp"

namespace {

using namespace yuxi::config::agent;
using yuxi::config::SourceState;

ModeStatus realistic_status() {
    ModeStatus s;
    s.ready = true;
    s.source = "postgres";
    s.source_up = true;
    s.published = true;
    s.revision = 1234567;
    s.entries = 25000;
    s.segment_bytes = 64ULL << 20;
    s.fill_ratio = 0.4375;
    s.state = SourceState::ok;
    s.reconnects = 12;
    s.resyncs = 1;
    s.errors = {{"connect", 10},        {"auth", 0},    {"schema", 0},  {"query", 1},
                {"connection_lost", 2}, {"timeout", 0}, {"publish", 0}, {"refused", 3}};
    return s;
}

Metrics realistic_metrics() {
    Metrics m("0.1.0");
    std::mt19937 rng(1);
    std::lognormal_distribution<double> apply(std::log(200e-6), 1.0);
    std::lognormal_distribution<double> propagation(std::log(2e-3), 1.0);
    for (int i = 0; i < 100000; ++i) {
        m.observe_apply(std::chrono::nanoseconds(static_cast<std::int64_t>(apply(rng) * 1e9)));
        m.observe_propagation(
            std::chrono::nanoseconds(static_cast<std::int64_t>(propagation(rng) * 1e9)));
    }
    m.count_updates_applied(250000);
    m.heartbeat();
    m.set_relay_leader(true);
    m.set_source_up("redis", true);
    m.count_reconnect("redis");
    m.count_error("redis");
    m.count_l2_snapshot_load();
    return m;
}

// Into a buffer kept across scrapes, as a server reusing its buffer would.
void BM_RenderReusedBuffer(benchmark::State& state) {
    const Metrics m = realistic_metrics();
    const ModeStatus s = realistic_status();
    std::string out;
    for (auto _ : state) {
        out.clear();
        m.render(s, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_RenderReusedBuffer);

// What the server does per scrape: build the status (with its error list) and a new string.
void BM_Scrape(benchmark::State& state) {
    const Metrics m = realistic_metrics();
    for (auto _ : state) {
        const ModeStatus s = realistic_status();
        std::string out = m.render(s);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_Scrape);

// The modes' share: one apply and one propagation observed per batch.
void BM_ObserveBatch(benchmark::State& state) {
    Metrics m("0.1.0");
    for (auto _ : state) {
        m.observe_apply(std::chrono::microseconds(180));
        m.observe_propagation(std::chrono::microseconds(2500));
        m.count_updates_applied(3);
    }
    benchmark::DoNotOptimize(m.updates_applied());
}
BENCHMARK(BM_ObserveBatch);

}  // namespace

BENCHMARK_MAIN();
