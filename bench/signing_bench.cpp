// The cost of signed Redis documents (core/signing.hpp): sign + verify of a 1 KiB batch,
// and the verification of a 100,000-entry L2 snapshot, beside what the agent does with
// the same documents anyway (encode, decode) so that the ratio shows in one run.
//
//   signing_bench [--benchmark_repetitions=5 --benchmark_report_aggregates_only=true]
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/change_message.hpp"
#include "core/signing.hpp"

namespace {

using namespace yuxi::config;

const KeyRing& ring() {
    static const KeyRing r(
        *SigningKey::from_base64("eXV4aS1jb25maWctYmVuY2gtc2lnbmluZy1rZXktMDAwMDE=", "bench"));
    return r;
}

// A batch whose document is about 1 KiB: a few config values of Yuxi-Know's shape.
std::string batch_1k() {
    Batch b;
    b.revision = 1000;
    b.prev = 999;
    b.fence = 1700000000000000;
    while (encode_batch(b).size() < 1024) {
        b.entries.push_back(
            {Namespace::config, "model_names.provider" + std::to_string(b.entries.size()),
             std::string(
                 R"({"name":"OpenAI","base_url":"https://api.openai.com/v1","models":["gpt-4o","gpt-4o-mini"]})"),
             "models"});
    }
    return encode_batch(b);
}

std::string snapshot_100k() {
    L2Snapshot s;
    s.revision = 100000;
    s.created_ms = 1700000000000;
    for (int i = 0; i < 100000; ++i) {
        s.entries.push_back({Namespace::config, "key." + std::to_string(i),
                             "\"value number " + std::to_string(i) + "\"", "basic"});
    }
    return encode_snapshot(s);
}

void BM_SignAndVerify1KiB(benchmark::State& state) {
    const std::string doc = batch_1k();
    for (auto _ : state) {
        const std::string sealed = ring().sign(doc);
        auto opened = ring().verify(sealed);
        benchmark::DoNotOptimize(opened);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}
BENCHMARK(BM_SignAndVerify1KiB);

// The peer: what a follower does with the same batch without signatures.
void BM_Decode1KiB(benchmark::State& state) {
    const std::string doc = batch_1k();
    for (auto _ : state) {
        auto b = decode_batch(doc, kMaxMessageBytes);
        benchmark::DoNotOptimize(b);
    }
}
BENCHMARK(BM_Decode1KiB);

void BM_Verify100kSnapshot(benchmark::State& state) {
    const std::string sealed = ring().sign(snapshot_100k());
    for (auto _ : state) {
        auto opened = ring().verify(sealed);
        benchmark::DoNotOptimize(opened);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * sealed.size()));
    state.counters["MiB"] = static_cast<double>(sealed.size()) / (1 << 20);
}
BENCHMARK(BM_Verify100kSnapshot)->Unit(benchmark::kMillisecond);

void BM_Decode100kSnapshot(benchmark::State& state) {
    const std::string doc = snapshot_100k();
    for (auto _ : state) {
        auto s = decode_snapshot(doc);
        benchmark::DoNotOptimize(s);
    }
}
BENCHMARK(BM_Decode100kSnapshot)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
