#!/usr/bin/env python3
"""Python-level read latency of one configuration value, in one run:

- yuxi_config Client.get (decoded, cached per entry), and get_raw (the JSON text);
- a dict lookup + json.loads of the same JSON text (what decoding per read costs);
- a plain dict lookup of the already-decoded value (the floor), and of an integer;
- redis-py GET of the same text over loopback (the seed's L2).

    /usr/bin/python3 bench/python_get_bench.py BUILD_DIR   # needs YUXI_TEST_REDIS_PORT

Prints a markdown table (ns per read, best of 7 repetitions) with the ratios the issue
sets as targets.
"""

import json
import os
import shutil
import sys
import tempfile
import timeit
from pathlib import Path

from bench_agent import file_mode_agent

REPO = Path(__file__).resolve().parents[1]


def best_ns(stmt, globals_, number):
    t = timeit.Timer(stmt, globals=globals_)
    return min(t.repeat(repeat=7, number=number)) / number * 1e9


def main():
    build = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(build / "python"))
    import redis

    import yuxi_config

    work = Path(tempfile.mkdtemp(prefix="yuxi-pybench-"))
    value = {"name": "bge-m3", "dim": 1024, "base_url": "https://api.siliconflow.cn/v1",
             "batch": 32}
    text = json.dumps(value, separators=(",", ":"))
    (work / "base.toml").write_text(
        'embed = { name = "bge-m3", dim = 1024, base_url = "https://api.siliconflow.cn/v1", '
        "batch = 32 }\ntop_k = 10\n")
    (work / "none.json").write_text("{}")
    segment = f"yuxi-pybench-{os.getpid()}"
    try:
        with file_mode_agent(build, segment,
                             ["--config-file", str(work / "base.toml"), "--metadata",
                              f"unused={work / 'none.json'}", "--log-level", "error"]):
            c = yuxi_config.Client(segment)
            assert c.get("embed") == value
            raw = c.get_raw("embed")
            r = redis.Redis(host=os.environ.get("YUXI_TEST_REDIS_HOST", "127.0.0.1"),
                            port=int(os.environ["YUXI_TEST_REDIS_PORT"]))
            r.set("yuxi:bench:embed", raw)
            assert c.get("top_k") == 10
            decoded = {"embed": value, "top_k": 10}
            texts = {"embed": raw}
            n = 200_000
            rows = [
                ("yuxi_config `Client.get` (decoded, cached)", best_ns("get('embed')", {"get": c.get}, n)),
                ("yuxi_config `Client.get_raw` (JSON text)", best_ns("c.get_raw('embed')", {"c": c}, n)),
                ("dict lookup + `json.loads`", best_ns("loads(d['embed'])",
                                                        {"d": texts, "loads": json.loads}, n)),
                ("dict lookup of the decoded value", best_ns("d['embed']", {"d": decoded}, n)),
                ("dict `.get` of the decoded value", best_ns("g('embed')", {"g": decoded.get}, n)),
                ("redis-py `GET` over loopback", best_ns("r.get('yuxi:bench:embed')", {"r": r}, 2000)),
                # An integer: built from the scalar the agent stored, no JSON parse.
                ("yuxi_config `Client.get` of an integer", best_ns("get('top_k')", {"get": c.get}, n)),
                ("dict lookup of an integer", best_ns("d['top_k']", {"d": decoded}, n)),
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    get_ns = rows[0][1]
    print(f"value: {len(raw)} bytes of JSON; best of 7 repetitions\n")
    print("| read | ns per read | Client.get is |")
    print("|---|---:|---:|")
    for i, (name, ns) in enumerate(rows):
        if i == 0:
            print(f"| {name} | {ns:,.0f} | (reference) |")
        elif ns >= get_ns:
            print(f"| {name} | {ns:,.0f} | {ns / get_ns:.2f}x faster |")
        else:
            print(f"| {name} | {ns:,.0f} | {get_ns / ns:.2f}x slower |")
    loads, plain, redis_ns = rows[2][1], rows[3][1], rows[5][1]
    int_get, int_plain = rows[6][1], rows[7][1]
    print()
    print(f"- no slower than dict + json.loads: {'met' if get_ns <= loads else 'MISSED'} "
          f"({loads / get_ns:.1f}x faster)")
    print(f"- within 3x of a plain dict lookup: {'met' if get_ns <= 3 * plain else 'MISSED'} "
          f"({get_ns / plain:.2f}x)")
    print(f"- at least 50x faster than redis-py GET: {'met' if redis_ns >= 50 * get_ns else 'MISSED'}"
          f" ({redis_ns / get_ns:.0f}x)")
    print(f"- an integer within 3x of a plain dict lookup: "
          f"{'met' if int_get <= 3 * int_plain else 'MISSED'} ({int_get / int_plain:.2f}x)")


if __name__ == "__main__":
    main()
