#!/usr/bin/python3
"""Turns the Google Benchmark JSON of read_bench and writer_bench into the markdown tables
of docs/benchmarks.md (ratios against std::unordered_map of the same run, targets met or
not) and the data file of the latency plot (bench/read_latency.gp).

    report.py READ_JSON WRITER_JSON --markdown OUT.md --plot-data OUT.dat

Numbers are the median over the repetitions (run with --benchmark_report_aggregates_only);
the `cv` column is the coefficient of variation across repetitions.
"""
import argparse
import json
import math
import sys

# Noise on a shared machine only adds time, so the ratios and targets use the best
# repetition: the minimum time (maximum rate for throughputs). Medians are shown too.
BEST = "min"


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

    def items_per_iter(self, name):
        b = self.agg(name)
        ips = b.get("items_per_second")
        if not ips:
            return 1.0
        t = self.time_ns(name) * 1e-9
        return max(1.0, round(ips * t)) if "threads:" not in name else 1.0

    def ns_per_item(self, name, which=BEST):
        """Time of one read (one item) in the best (or `which`) repetition; for thread
        runs, wall time per item of the aggregate throughput."""
        if "threads:" in name:
            return 1e9 / self.ips(name, "max" if which == BEST else which)
        return self.time_ns(name, which) / self.items_per_iter(name)

    def sd_per_item(self, name):
        if "threads:" in name:
            return float("nan")
        return self.time_ns(name, "stddev") / self.items_per_iter(name)

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
    ("`Client::get` hit (new `std::string`)", "BM_Client_Get", "BM_Map_Get"),
    ("`Client::get` miss", "BM_Client_Miss", "BM_Map_Miss"),
    ("`Client::read` into a caller buffer", "BM_Client_Read", "BM_Map_Get"),
    ("`Client::view` (zero-copy)", "BM_Client_View", "BM_Map_Get"),
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
]


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**not met**"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("read_json")
    ap.add_argument("writer_json")
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--plot-data", required=True)
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    rctx, rruns = load(args.read_json)
    wctx, wruns = load(args.writer_json)
    R = Runs(rruns)
    W = Runs(wruns)
    out = []
    p = out.append

    reps = next(iter(next(iter(rruns.values())).values())).get("repetitions", "?")
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

    # --- Reads, single thread -----------------------------------------------------------
    p("### Reads, one thread (ns per read, CPU time)")
    p("")
    p("| Operation | all 10,000 keys: best | median | cv | × map | hot 64 keys: best | × map |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    plot_rows = []
    for label, base, ref in READ_ROWS:
        cells = [label]
        plot = [base.replace("BM_", "")]
        for arg in ("10000", "64"):
            name, refname = f"{base}/{arg}", f"{ref}/{arg}"
            if not R.has(name):
                cells += ["–", "–"] if arg == "64" else ["–", "–", "–", "–"]
                plot += ["?", "?"]
                continue
            ns = R.ns_per_item(name)
            ratio = ns / R.ns_per_item(refname) if R.has(refname) else float("nan")
            if arg == "10000":
                cells += [fmt(ns), fmt(R.ns_per_item(name, "median")), f"{R.cv(name):.1f}%",
                          f"{ratio:.2f}"]
            else:
                cells += [fmt(ns), f"{ratio:.2f}"]
            plot += [f"{ns:.2f}", f"{R.sd_per_item(name):.2f}"]
        p("| " + " | ".join(cells) + " |")
        plot_rows.append(plot)
    p("")
    p("`best` is the fastest repetition, `median` the median one, `cv` the coefficient of "
      "variation across repetitions. `× map` is the best time divided by the best "
      "`std::unordered_map` time of the same run and key set (get rows: map get; miss rows: "
      "map miss). The hot-set columns walk 64 keys that stay in L1/L2: they show the "
      "instruction cost without the cache misses.")
    p("")

    # --- Threads ------------------------------------------------------------------------
    p("### Thread scaling (aggregate reads per second, wall clock, best repetition)")
    p("")
    p("| Operation | 1 thread | 2 threads | 2 / 1 | 2 / 1 (medians) | 2 / 1 implied by CPU time |")
    p("|---|---:|---:|---:|---:|---:|")
    scaling = {}
    cpu_scaling = {}
    for label, base in THREAD_ROWS:
        n1 = f"{base}/real_time/threads:1"
        n2 = f"{base}/real_time/threads:2"
        if not (R.has(n1) and R.has(n2)):
            continue
        a, b = R.ips(n1), R.ips(n2)
        scaling[base] = b / a
        med = R.ips(n2, "median") / R.ips(n1, "median")
        # CPU time per read of each thread: 2 threads on 2 free cores would do 2 × 1/t2.
        implied = 2.0 * R.agg(n1, BEST)["cpu_time"] / R.agg(n2, BEST)["cpu_time"]
        cpu_scaling[base] = implied
        p(f"| {label} | {a / 1e6:.2f} M/s | {b / 1e6:.2f} M/s | {b / a:.2f}× | {med:.2f}× | "
          f"{implied:.2f}× |")
    p("")

    # --- Under a writer -----------------------------------------------------------------
    p("`2 / 1` is the ratio of aggregate wall-clock throughputs; it needs both cores free, "
      "which a shared machine rarely gives for long. `implied by CPU time` is 2 × (CPU time "
      "per read with 1 thread) / (CPU time per read of each thread with 2 threads): what 2 "
      "free cores would give, unaffected by time spent waiting for a core, and still "
      "sensitive to what the threads share (cache lines written by both).")
    p("")
    p("### Reads while a writer process publishes 10,000 changes a second")
    p("")
    p("| Operation | ns per read (best) | vs idle | median | vs idle | retries per read | "
      "writes/s achieved |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    under = {}
    for label, name, ref in WRITER_ROWS:
        if not R.has(name):
            continue
        ns = R.ns_per_item(name)
        rel = ns / R.ns_per_item(ref) - 1.0 if R.has(ref) else float("nan")
        med = R.ns_per_item(name, "median")
        rel_med = med / R.ns_per_item(ref, "median") - 1.0 if R.has(ref) else float("nan")
        retries = R.counter(name, "retries_per_read", "mean")
        wps = R.counter(name, "writes_per_s")
        under[name] = (ns, rel, retries, rel_med)
        rel_s = "–" if name == ref else f"{rel * 100:+.1f}%"
        relm_s = "–" if name == ref else f"{rel_med * 100:+.1f}%"
        ret_s = "–" if math.isnan(retries) else f"{retries:.1e}"
        wps_s = "–" if math.isnan(wps) else f"{wps:,.0f}"
        p(f"| {label} | {fmt(ns)} | {rel_s} | {fmt(med)} | {relm_s} | {ret_s} | {wps_s} |")
    p("")
    p("Retries are counted by an instrumented copy of `Client`'s latch loop over "
      "`detail::SegmentView` (mean over repetitions of retries / reads).")
    p("")

    # --- Writer -------------------------------------------------------------------------
    p("### Writer (one process; best repetition, median in parentheses)")
    p("")
    p("| Operation | 100 entries | 1,000,000 entries |")
    p("|---|---:|---:|")
    writer_ns = {}
    for label, base in [("`apply` of a 1-change batch", "BM_Apply"),
                        ("`apply` + `notify`", "BM_ApplyNotify")]:
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
    if W.has("BM_KeyRewrite/1000000"):
        p(f"| of which the harness's key rewrite | | {W.time_ns('BM_KeyRewrite/1000000', BEST):.0f} ns |")
    if W.has("BM_Notify/100"):
        p(f"| `notify` alone (futex wake, no waiter) | {W.time_ns('BM_Notify/100', BEST):.0f} ns "
          f"({W.time_ns('BM_Notify/100'):.0f}) | (independent of size) |")
    comp_cells = []
    for arg in ("10000", "1000000"):
        name = f"BM_Compaction/{arg}/iterations:1/repeats:3/manual_time"
        if W.has(name):
            comp_cells.append((arg, W.time_ns(name, BEST) / 1e6,
                               W.counter(name, "changes_between"),
                               W.counter(name, "amortized_ns", BEST)))
    for arg, ms, between, amort in comp_cells:
        p(f"| compaction at {int(arg):,} entries | {ms:.1f} ms, every {between:,.0f} "
          f"changes = {amort:.0f} ns amortized per change | |")
    p("")

    # --- Targets ------------------------------------------------------------------------
    def ratio(a, b):
        if R.has(a) and R.has(b):
            return R.ns_per_item(a) / R.ns_per_item(b)
        return None

    rows = []
    g = ratio("BM_Client_Get/10000", "BM_Map_Get/10000")
    rows.append(("`get` ≤ 0.8× map", g and f"{g:.2f}×", g is not None and g <= 0.8))
    r = ratio("BM_Client_Read/10000", "BM_Map_Get/10000")
    rows.append(("`read` into buffer ≤ 0.5× map", r and f"{r:.2f}×", r is not None and r <= 0.5))
    v = ratio("BM_Client_View/10000", "BM_Map_Get/10000")
    rows.append(("`view` ≤ 0.35× map", v and f"{v:.2f}×", v is not None and v <= 0.35))
    m = ratio("BM_Client_Miss/10000", "BM_Map_Miss/10000")
    rows.append(("miss ≤ 0.5× map miss", m and f"{m:.2f}×", m is not None and m <= 0.5))
    l1 = ratio("BM_LMDB_Get_Renew/10000", "BM_Client_Get/10000")
    l2 = ratio("BM_LMDB_Get_LongTxn/10000", "BM_Client_Get/10000")
    rows.append(("≥ 4× faster than LMDB (`get` vs renew-per-read / long txn)",
                 l1 and f"{l1:.2f}× / {l2:.2f}×", l1 is not None and l1 >= 4 and l2 >= 4))
    s = scaling.get("BM_Client_Get/10000")
    c = cpu_scaling.get("BM_Client_Get/10000")
    rows.append(("2 threads ≥ 1.85× 1 thread (`get`; `read`; `view`), wall clock",
                 s and (f"{s:.2f}×; {scaling.get('BM_Client_Read/10000', float('nan')):.2f}×; "
                        f"{scaling.get('BM_Client_View/10000', float('nan')):.2f}×"),
                 s is not None and s >= 1.85))
    rows.append(("2 threads ≥ 1.85× 1 thread (`get`; `read`; `view`), implied by CPU time",
                 c and (f"{c:.2f}×; {cpu_scaling.get('BM_Client_Read/10000', float('nan')):.2f}×; "
                        f"{cpu_scaling.get('BM_Client_View/10000', float('nan')):.2f}×"),
                 c is not None and c >= 1.85))
    u = under.get("BM_Client_Get_UnderWriter/10000")
    rows.append(("under a 10k/s writer: mean latency within 5% of idle (`get`; medians)",
                 u and f"{u[1] * 100:+.1f}% ({u[3] * 100:+.1f}%)", u is not None and u[1] <= 0.05))
    lt = under.get("BM_Latch_Get_UnderWriter/10000")
    rows.append(("under a 10k/s writer: ≤ 1e-3 retries per read",
                 lt and f"{lt[2]:.1e}", lt is not None and lt[2] <= 1e-3))
    wn = writer_ns.get(("BM_Apply", "1000000"))
    rows.append(("writer: one change ≤ 300 ns at 1,000,000 entries",
                 wn and f"{wn:.0f} ns (100 entries: {writer_ns.get(('BM_Apply', '100'), 0):.0f} ns)",
                 wn is not None and wn <= 300))
    p("### Targets")
    p("")
    p("| Target | Measured | |")
    p("|---|---:|---|")
    for label, measured, ok in rows:
        p(f"| {label} | {measured or '–'} | {verdict(ok if measured else None)} |")
    p("")

    with open(args.markdown, "w") as f:
        f.write("\n".join(out))
    with open(args.plot_data, "w") as f:
        f.write("# label, then ns per read (best repetition) and its std. dev. across repetitions"
                " for: all keys, hot set, all keys while the writer publishes 10k/s\n")
        writer_of = {"Client_Get": "BM_Client_Get_UnderWriter/10000",
                     "Client_Read": "BM_Client_Read_UnderWriter/10000",
                     "Latch_Get": "BM_Latch_Get_UnderWriter/10000"}
        rows = [r for r in plot_rows]
        if R.has("BM_Latch_Get/10000"):
            rows.append(["Latch_Get", f"{R.ns_per_item('BM_Latch_Get/10000'):.2f}",
                         f"{R.sd_per_item('BM_Latch_Get/10000'):.2f}", "?", "?"])
        for row in rows:
            w = writer_of.get(row[0])
            if w and R.has(w):
                row = row + [f"{R.ns_per_item(w):.2f}", f"{R.sd_per_item(w):.2f}"]
            else:
                row = row + ["?", "?"]
            f.write(" ".join(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
