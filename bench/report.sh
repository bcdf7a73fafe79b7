#!/usr/bin/env bash
# Runs the read and writer benchmarks and writes their report.
#
#   bench/report.sh BUILD_DIR OUT_DIR [REPETITIONS]
#
# BUILD_DIR holds bin/read_bench_O2, bin/read_bench_O3 and bin/writer_bench (the release
# preset: cmake --preset release && cmake --build build/release --target read_bench_O2
# read_bench_O3 writer_bench). The client is a header compiled with the application's
# flags, so the read benchmark is built and reported at -O2 and at -O3.
# OUT_DIR receives read_bench_O2.json, read_bench_O3.json, writer_bench.json (Google
# Benchmark JSON, aggregates of REPETITIONS repetitions, default 7, randomly interleaved),
# results.md (the tables, the ratios against std::unordered_map and the targets, one column
# per -O level) and read_latency.png (gnuplot).
#
# Environment: BENCH_MIN_TIME (seconds per repetition, default 0.2), BENCH_FILTER (a
# --benchmark_filter for read_bench), and read_bench's own YUXI_BENCH_NO_PIN and
# YUXI_BENCH_WRITE_RATE.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 BUILD_DIR OUT_DIR [REPETITIONS]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
reps=${3:-7}
min_time=${BENCH_MIN_TIME:-0.2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
[[ -x $python ]] || python=python3

for exe in read_bench_O2 read_bench_O3 writer_bench; do
    if [[ ! -x $build/bin/$exe ]]; then
        echo "$0: $build/bin/$exe not found; build the '$exe' target first" >&2
        exit 1
    fi
done

common=(--benchmark_format=json --benchmark_repetitions="$reps"
        --benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true)

# Other work on the machine is the main source of noise: record how busy it was.
busy() {
    local psi=""
    [[ -r /proc/pressure/cpu ]] && psi=$(awk '/^some/ {print $2}' /proc/pressure/cpu)
    echo "$(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)${psi:+, CPU pressure $psi}"
}
before=$(busy)
# Sample the CPU pressure (share of time some task waited for a CPU) during the run.
samples=$out/cpu_pressure.txt
: >"$samples"
if [[ -r /proc/pressure/cpu ]]; then
    ( while sleep 5; do awk -F'[= ]' '/^some/ {print $3}' /proc/pressure/cpu; done ) >>"$samples" &
    sampler=$!
    trap 'kill "$sampler" 2>/dev/null || true' EXIT
fi

for level in O2 O3; do
    echo "read_bench_$level: $reps repetitions of ${min_time}s each, interleaved ..." >&2
    "$build/bin/read_bench_$level" "${common[@]}" --benchmark_min_time="$min_time" \
        ${BENCH_FILTER:+--benchmark_filter="$BENCH_FILTER"} >"$out/read_bench_$level.json"
done

echo "writer_bench: $reps repetitions ..." >&2
"$build/bin/writer_bench" "${common[@]}" >"$out/writer_bench.json"

after=$(busy)
[[ -n ${sampler:-} ]] && kill "$sampler" 2>/dev/null || true
during=$(awk '{s += $1; if ($1 > m) m = $1; n++} END {if (n) printf "CPU pressure during the run: mean %.0f%%, max %.0f%% (%d samples)", s / n, m, n}' "$samples")

"$python" "$here/report.py" "$out/read_bench_O2.json" "$out/read_bench_O3.json" \
    "$out/writer_bench.json" \
    --markdown "$out/results.md" --plot-data "$out/read_latency.dat" \
    --note "Machine activity: at start $before; at end $after. ${during:-}"

gnuplot -e "datafile='$out/read_latency.dat'; outfile='$out/read_latency.png'" \
    "$here/read_latency.gp"

echo "wrote $out/results.md and $out/read_latency.png" >&2
