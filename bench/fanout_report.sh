#!/usr/bin/env bash
# Runs the Redis fan-out benchmarks (bench/fanout_bench.cpp) and prints their
# tables, with how busy the machine was before, during and after.
#
#   bench/fanout_report.sh BUILD_DIR [OUT_FILE] [-- fanout_bench arguments...]
#
# BUILD_DIR holds bin/fanout_bench and bin/yuxi-config-agent (the release preset:
#   cmake --preset release -G Ninja && cmake --build build/release -j2 --target fanout_bench).
# Needs YUXI_TEST_DATABASE_URL (scripts/test-servers start; eval "$(scripts/test-servers env)")
# and redis-server. OUT_FILE (default /tmp/fanout-results.md) receives the Markdown tables;
# the agents' warnings and the progress go to stderr. Takes 3-6 minutes with the defaults
# (N = 1, 5, 20 with 300 updates per mode; 1,000 subscribers with 200 samples per path;
# bare PUBLISH to 1,000 and 5,000 subscribers).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BUILD_DIR [OUT_FILE] [-- fanout_bench arguments...]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
shift
out=/tmp/fanout-results.md
if [[ $# -gt 0 && $1 != -- ]]; then
    out=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
if [[ ! -x $build/bin/fanout_bench ]]; then
    echo "$0: $build/bin/fanout_bench not found; build the 'fanout_bench' target first" >&2
    exit 1
fi
if [[ -z ${YUXI_TEST_DATABASE_URL:-} ]]; then
    echo "$0: YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)" >&2
    exit 1
fi

# Other work on the machine is the main source of noise: sample the CPU pressure (share of
# time some task waited for a CPU) every 2 s while the benchmark runs.
samples=$(mktemp)
sampler=
if [[ -r /proc/pressure/cpu ]]; then
    ( while sleep 2; do awk -F'[= ]' '/^some/ {print $3}' /proc/pressure/cpu; done ) >>"$samples" &
    sampler=$!
fi
trap '[[ -n $sampler ]] && kill "$sampler" 2>/dev/null; rm -f "$samples"' EXIT

{
    echo "Run of $(date -u +%FT%TZ) on $(hostname): $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(uname -r)."
    echo "Command: $build/bin/fanout_bench $*"
    echo
    start=$(date +%s)
    "$build/bin/fanout_bench" "$@"
    end=$(date +%s)
    echo
    awk -v s="$((end - start))" '{t += $1; if ($1 > m) m = $1; n++}
        END {if (n) printf "Wall time %d s. CPU pressure during the run (%d samples, 2 s apart): mean %.0f%%, max %.0f%%.\n", s, n, t / n, m}' "$samples"
} | tee "$out"
echo "wrote $out" >&2
