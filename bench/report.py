#!/usr/bin/python3
"""Turns the Google Benchmark JSON of read_bench_O2, read_bench_O3 and writer_bench into the
markdown tables of docs/benchmarks.md (ratios against std::unordered_map of the same run and
build, targets met or not, at both -O levels) and the data file of the latency plot
(bench/read_latency.gp).

    report.py READ_O2_JSON READ_O3_JSON WRITER_JSON --markdown OUT.md --plot-data OUT.dat

Run the benchmarks with --benchmark_report_aggregates_only; the `cv` column is the
coefficient of variation across repetitions.
"""
import argparse
import json
import math
import sys

# Noise on a shared machine only adds time, so the ratios and targets use the best
# repetition: the minimum time (maximum rate for throughputs). Medians are shown too.
BEST = "min"
LEVELS = ("O2", "O3")


def load(path):
    with open(path) as f:
        doc = json.load(f)
    runs = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") != "aggregate":
            continue
        runs.setdefault(b["run_name"], {})[b["aggregate_name"]] = b
    return doc["context"], runs


class Runs:
    def __init__(self, runs):
        self.runs = runs

    def has(self, name):
        return name in self.runs and "median" in self.runs[name]

    def agg(self, name, which="median"):
        return self.runs[name][which]

    def time_ns(self, name, which="median"):
        b = self.agg(name, which)
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        # The reported time is real time for UseRealTime/UseManualTime runs, else CPU.
        key = "real_time" if ("real_time" in name or "manual_time" in name) else "cpu_time"
        return b[key] * scale

    def ns_per_item(self, name, which=BEST):
        """Time of one read in the best (or `which`) repetition; for thread runs, wall
        time per item of the aggregate throughput."""
        if "threads:" in name:
            return 1e9 / self.ips(name, "max" if which == BEST else which)
        return self.time_ns(name, which)

    def sd_per_item(self, name):
        if "threads:" in name:
            return float("nan")
        return self.time_ns(name, "stddev")

    def cv(self, name):
        b = self.runs[name].get("cv")
        if b is None:
            return float("nan")
        key = "real_time" if ("real_time" in name or "manual_time" in name) else "cpu_time"
        return b[key] * 100.0

    def counter(self, name, counter, which="median"):
        return self.agg(name, which).get(counter, float("nan"))

    def ips(self, name, which="max"):
        return self.agg(name, which)["items_per_second"]


def fmt(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


READ_ROWS = [
    # (label, benchmark base name, reference base name for the ratio)
    ("`std::unordered_map` find + copy-out (floor)", "BM_Map_Get", "BM_Map_Get"),
    ("`std::unordered_map` miss", "BM_Map_Miss", "BM_Map_Miss"),
    ("`std::unordered_map<…, int64_t>` find (typed floor)", "BM_Map_GetInt", "BM_Map_GetInt"),
    ("`Client::get` hit (new `std::string`)", "BM_Client_Get", "BM_Map_Get"),
    ("`Client::get` miss", "BM_Client_Miss", "BM_Map_Miss"),
    ("`Client::read` into a caller buffer", "BM_Client_Read", "BM_Map_Get"),
    ("`Client::view` (owning `Value`)", "BM_Client_View", "BM_Map_Get"),
    ("`Pin::view` (borrowed `string_view`)", "BM_Client_PinView", "BM_Map_Get"),
    ("`Client::get<int64_t>`", "BM_Client_GetInt", "BM_Map_GetInt"),
    ("`Pin::get<int64_t>`", "BM_Client_PinGetInt", "BM_Map_GetInt"),
    ("`snapshot()` + 10 `get`, per key", "BM_Client_Snapshot10", "BM_Map_Get"),
    ("LMDB `mdb_get` + copy, txn renew/reset per read", "BM_LMDB_Get_Renew", "BM_Map_Get"),
    ("LMDB `mdb_get` + copy, one long-lived txn", "BM_LMDB_Get_LongTxn", "BM_Map_Get"),
]

WRITER_ROWS = [
    ("latched lookup + copy (instrumented), idle", "BM_Latch_Get/10000", "BM_Latch_Get/10000"),
    ("latched lookup + copy (instrumented), writer 10k/s", "BM_Latch_Get_UnderWriter/10000",
     "BM_Latch_Get/10000"),
    ("`Client::get`, idle", "BM_Client_Get/10000", "BM_Client_Get/10000"),
    ("`Client::get`, writer 10k/s", "BM_Client_Get_UnderWriter/10000", "BM_Client_Get/10000"),
    ("`Client::read`, idle", "BM_Client_Read/10000", "BM_Client_Read/10000"),
    ("`Client::read`, writer 10k/s", "BM_Client_Read_UnderWriter/10000",
     "BM_Client_Read/10000"),
]

THREAD_ROWS = [
    ("`std::unordered_map` get", "BM_Map_Get/10000"),
    ("`Client::get`", "BM_Client_Get/10000"),
    ("`Client::read`", "BM_Client_Read/10000"),
    ("`Client::view`", "BM_Client_View/10000"),
    ("`Pin::view`", "BM_Client_PinView/10000"),
]


def verdict(oks):
    if any(ok is None for ok in oks):
        return "not measured"
    return "**met**" if all(oks) else "**not met**"


def ratio(R, a, b):
    if R.has(a) and R.has(b):
        return R.ns_per_item(a) / R.ns_per_item(b)
    return None


def reads_table(p, R, plot_rows):
    p("| Operation | -O2 all keys: best | median | cv | × floor | -O3 all keys: best | × floor "
      "| -O2 hot 64: × floor | -O3 hot 64: × floor |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, base, ref in READ_ROWS:
        cells = [label]
        plot = [base.replace("BM_", "")]
        for level in LEVELS:
            r = R[level]
            name, refname = f"{base}/10000", f"{ref}/10000"
            if not r.has(name):
                cells += ["–", "–", "–", "–"] if level == "O2" else ["–", "–"]
                plot += ["?", "?"]
                continue
            ns = r.ns_per_item(name)
            x = ratio(r, name, refname)
            if level == "O2":
                cells += [fmt(ns), fmt(r.ns_per_item(name, "median")), f"{r.cv(name):.1f}%",
                          f"{x:.2f}"]
            else:
                cells += [fmt(ns), f"{x:.2f}"]
            plot += [f"{ns:.2f}", f"{r.sd_per_item(name):.2f}"]
        for level in LEVELS:
            r = R[level]
            name, refname = f"{base}/64", f"{ref}/64"
            x = ratio(r, name, refname)
            cells.append("–" if x is None else f"{x:.2f}")
            plot += [f"{r.ns_per_item(name):.2f}", f"{r.sd_per_item(name):.2f}"] if r.has(
                name) else ["?", "?"]
        p("| " + " | ".join(cells) + " |")
        plot_rows.append(plot)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("read_o2_json")
    ap.add_argument("read_o3_json")
    ap.add_argument("writer_json")
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--plot-data", required=True)
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    rctx, r2 = load(args.read_o2_json)
    _, r3 = load(args.read_o3_json)
    _, wruns = load(args.writer_json)
    R = {"O2": Runs(r2), "O3": Runs(r3)}
    W = Runs(wruns)
    out = []
    p = out.append

    reps = next(iter(next(iter(r2.values())).values())).get("repetitions", "?")
    p(f"Run of {rctx.get('date', '?')} on {rctx.get('host_name', '?')}: "
      f"{rctx.get('num_cpus', '?')} CPUs at {rctx.get('mhz_per_cpu', '?')} MHz, "
      f"load average {', '.join(f'{x:.2f}' for x in rctx.get('load_avg', []))} at start; "
      f"{reps} repetitions per benchmark, randomly interleaved; "
      f"{rctx.get('entries', '?')} entries, {rctx.get('key_bytes', '?')}-byte keys, "
      f"{rctx.get('value_bytes', '?')}-byte values; pinned: {rctx.get('pinned', '?')}.")
    if args.note:
        p("")
        p(args.note)
    p("")

    p("### Reads, one thread (ns per read, CPU time)")
    p("")
    plot_rows = []
    reads_table(p, R, plot_rows)
    p("")
    p("`best` is the fastest repetition, `median` the median one, `cv` the coefficient of "
      "variation across repetitions (-O2). `× floor` is the best time divided by the best "
      "time of the floor of the same run, build and key set: the map's get for hits, its "
      "miss for misses, its map of integers for typed reads. The hot-set columns walk 64 "
      "keys that stay in L1/L2: they show the instruction cost without the cache misses.")
    p("")

    p("### Thread scaling (aggregate reads per second, wall clock, best repetition)")
    p("")
    p("| Operation | build | 1 thread | 2 threads | 2 / 1 | 2 / 1 (medians) | "
      "2 / 1 implied by CPU time |")
    p("|---|---|---:|---:|---:|---:|---:|")
    scaling = {}
    for level in LEVELS:
        r = R[level]
        for label, base in THREAD_ROWS:
            n1 = f"{base}/real_time/threads:1"
            n2 = f"{base}/real_time/threads:2"
            if not (r.has(n1) and r.has(n2)):
                continue
            a, b = r.ips(n1), r.ips(n2)
            med = r.ips(n2, "median") / r.ips(n1, "median")
            # CPU time per read of each thread: 2 threads on 2 free cores would do 2 × 1/t2.
            implied = 2.0 * r.agg(n1, BEST)["cpu_time"] / r.agg(n2, BEST)["cpu_time"]
            scaling[(level, base)] = (b / a, implied)
            p(f"| {label} | -{level} | {a / 1e6:.2f} M/s | {b / 1e6:.2f} M/s | {b / a:.2f}× | "
              f"{med:.2f}× | {implied:.2f}× |")
    p("")
    p("`2 / 1` is the ratio of aggregate wall-clock throughputs; it needs both cores free, "
      "which a shared machine rarely gives for long. `implied by CPU time` is 2 × (CPU time "
      "per read with 1 thread) / (CPU time per read of each thread with 2 threads): what 2 "
      "free cores would give, unaffected by time spent waiting for a core, and still "
      "sensitive to what the threads share (cache lines written by both).")
    p("")

    p("### Reads while a writer process publishes 10,000 changes a second")
    p("")
    p("| Operation | build | ns per read (best) | vs idle | median | vs idle | "
      "retries per read | writes/s achieved |")
    p("|---|---|---:|---:|---:|---:|---:|---:|")
    under = {}
    for level in LEVELS:
        r = R[level]
        for label, name, ref in WRITER_ROWS:
            if not r.has(name):
                continue
            ns = r.ns_per_item(name)
            rel = ns / r.ns_per_item(ref) - 1.0 if r.has(ref) else float("nan")
            med = r.ns_per_item(name, "median")
            rel_med = med / r.ns_per_item(ref, "median") - 1.0 if r.has(ref) else float("nan")
            retries = r.counter(name, "retries_per_read", "mean")
            wps = r.counter(name, "writes_per_s")
            under[(level, name)] = (ns, rel, retries, rel_med)
            rel_s = "–" if name == ref else f"{rel * 100:+.1f}%"
            relm_s = "–" if name == ref else f"{rel_med * 100:+.1f}%"
            ret_s = "–" if math.isnan(retries) else f"{retries:.1e}"
            wps_s = "–" if math.isnan(wps) else f"{wps:,.0f}"
            p(f"| {label} | -{level} | {fmt(ns)} | {rel_s} | {fmt(med)} | {relm_s} | {ret_s} | "
              f"{wps_s} |")
    p("")
    p("Retries are counted by an instrumented copy of the client's latch loop over "
      "`detail::SegmentView` (mean over repetitions of retries / reads).")
    p("")

    p("### Writer (one process; best repetition, median in parentheses)")
    p("")
    p("| Operation | 100 entries | 1,000,000 entries |")
    p("|---|---:|---:|")
    writer_ns = {}
    for label, base in [("`apply` of a 1-change batch", "BM_Apply"),
                        ("`apply` + `notify` (nobody waiting)", "BM_ApplyNotify")]:
        cells = [label]
        for arg in ("100", "1000000"):
            name = f"{base}/{arg}/iterations:200000"
            if W.has(name):
                writer_ns[(base, arg)] = W.time_ns(name, BEST)
                comp = W.counter(name, "compactions", "max")
                cells.append(f"{W.time_ns(name, BEST):.0f} ns ({W.time_ns(name):.0f})" +
                             (" (compacted!)" if comp > 0 else ""))
            else:
                cells.append("–")
        p("| " + " | ".join(cells) + " |")
    batch = "BM_ApplyBatch16/{}/iterations:12500"
    if W.has(batch.format("1000000")):
        cells = ["`apply` + `notify` of a 16-change batch, per change"]
        for arg in ("100", "1000000"):
            name = batch.format(arg)
            if W.has(name):
                writer_ns[("BM_ApplyBatch16", arg)] = W.time_ns(name, BEST) / 16
                cells.append(f"{W.time_ns(name, BEST) / 16:.0f} ns ({W.time_ns(name) / 16:.0f})")
            else:
                cells.append("–")
        p("| " + " | ".join(cells) + " |")
    if W.has("BM_KeyRewrite/1000000"):
        p(f"| of which the harness's key rewrite | | "
          f"{W.time_ns('BM_KeyRewrite/1000000', BEST):.0f} ns |")
    if W.has("BM_Notify/100"):
        p(f"| `notify` alone, nobody waiting | {W.time_ns('BM_Notify/100', BEST):.0f} ns "
          f"({W.time_ns('BM_Notify/100'):.0f}) | (independent of size) |")
    p("")
    stall = {}
    p("| Compaction of 1,000,000 entries in the background | changes arriving | "
      "longest apply (worst repetition) | mean apply | build → take-over | applies meanwhile |")
    p("|---|---:|---:|---:|---:|---:|")
    for rate in ("100000", "0"):
        name = f"BM_CompactionStall/1000000/{rate}/iterations:1/repeats:3"
        if not W.has(name):
            continue
        worst = W.counter(name, "max_apply_us", "max")
        stall[rate] = worst
        arrive = f"{W.counter(name, 'rate_per_s'):,.0f}/s" + (" (back to back)" if rate == "0"
                                                                else "")
        p(f"| | {arrive} | {worst / 1000:.2f} ms | {W.counter(name, 'mean_apply_ns'):.0f} ns | "
          f"{W.counter(name, 'build_ms'):.0f} ms | {W.counter(name, 'applies'):,.0f} |")
    p("")

    rows = []

    def both(fn):
        vals = [fn(level) for level in LEVELS]
        return vals

    def target(label, vals, ok, fmt_one):
        measured = " / ".join("–" if v is None else fmt_one(v) for v in vals)
        rows.append((label, measured, [None if v is None else ok(v) for v in vals]))

    x = lambda a, b: (lambda level: ratio(R[level], a, b))
    target("`get` → new string ≤ 0.80× map", both(x("BM_Client_Get/10000", "BM_Map_Get/10000")),
           lambda v: v <= 0.8, lambda v: f"{v:.2f}×")
    target("`read` into caller buffer ≤ 0.50× map",
           both(x("BM_Client_Read/10000", "BM_Map_Get/10000")), lambda v: v <= 0.5,
           lambda v: f"{v:.2f}×")
    target("borrowed `view` in a pin ≤ 0.35× map",
           both(x("BM_Client_PinView/10000", "BM_Map_Get/10000")), lambda v: v <= 0.35,
           lambda v: f"{v:.2f}×")
    target("typed `get<int64_t>` ≤ 0.50× map of pre-parsed ints",
           both(x("BM_Client_GetInt/10000", "BM_Map_GetInt/10000")), lambda v: v <= 0.5,
           lambda v: f"{v:.2f}×")
    target("miss ≤ 0.50× map miss", both(x("BM_Client_Miss/10000", "BM_Map_Miss/10000")),
           lambda v: v <= 0.5, lambda v: f"{v:.2f}×")

    def lmdb(level):
        a = ratio(R[level], "BM_LMDB_Get_Renew/10000", "BM_Client_Get/10000")
        b = ratio(R[level], "BM_LMDB_Get_LongTxn/10000", "BM_Client_Get/10000")
        return None if a is None or b is None else (a, b)

    target("≥ 4× faster than LMDB (`get` vs renew per read; long txn)", both(lmdb),
           lambda v: min(v) >= 4, lambda v: f"{v[0]:.1f}×; {v[1]:.1f}×")
    for what, idx in (("wall clock", 0), ("implied by CPU time", 1)):
        target(f"2 threads ≥ 1.85× 1 thread (`get`), {what}",
               both(lambda level: scaling.get((level, "BM_Client_Get/10000"), (None, None))[idx]),
               lambda v: v >= 1.85, lambda v: f"{v:.2f}×")
    target("under a 10k/s writer: `get` within 5% of idle",
           both(lambda level: under.get((level, "BM_Client_Get_UnderWriter/10000"),
                                        (None, None))[1]),
           lambda v: v <= 0.05, lambda v: f"{v * 100:+.1f}%")
    target("under a 10k/s writer: ≤ 1e-3 retries per read",
           both(lambda level: under.get((level, "BM_Latch_Get_UnderWriter/10000"),
                                        (None, None, None))[2]),
           lambda v: v <= 1e-3, lambda v: f"{v:.1e}")
    rows.append(("writer: one change ≤ 300 ns at 1,000,000 entries",
                 fmt(writer_ns.get(("BM_Apply", "1000000"))) + " ns (one build)",
                 [None if ("BM_Apply", "1000000") not in writer_ns else
                  writer_ns[("BM_Apply", "1000000")] <= 300]))
    if ("BM_ApplyBatch16", "1000000") in writer_ns:
        per = writer_ns[("BM_ApplyBatch16", "1000000")]
        rows.append(("writer: ≤ 300 ns per change at 1,000,000 entries, 16-change batches",
                     fmt(per) + " ns (one build)", [per <= 300]))
    if "100000" in stall:
        rows.append(("writer: longest stall behind a compaction ≤ 10 ms (100k changes/s)",
                     f"{stall['100000'] / 1000:.2f} ms", [stall["100000"] <= 10000]))
    p("### Targets")
    p("")
    p("| Target | Measured (-O2 / -O3) | |")
    p("|---|---:|---|")
    for label, measured, oks in rows:
        p(f"| {label} | {measured} | {verdict(oks)} |")
    p("")

    with open(args.markdown, "w") as f:
        f.write("\n".join(out))
    with open(args.plot_data, "w") as f:
        f.write("# label, then ns per read (best repetition) and its std. dev. across "
                "repetitions for: all keys -O2, all keys -O3, hot set -O2, hot set -O3\n")
        for row in plot_rows:
            f.write(" ".join(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
