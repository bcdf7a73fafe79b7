#!/usr/bin/env python3
"""Python's Admin.set against a bare prepared UPDATE from Python, in one run:

- yuxi_config.Admin.set of one config key (the C++ admin library underneath: schema check,
  one transaction through yuxi_config_write, the GIL released);
- asyncpg's prepared `UPDATE system_configs SET value = $2 WHERE key = $1` on its own
  connection (what a Python app that writes the table itself pays).

Interleaved in rounds, so that both see the same machine. Needs YUXI_TEST_DATABASE_URL
(scripts/test-servers) and a dev build (the module and yuxi-configctl):

    /usr/bin/python3 bench/python_admin_bench.py BUILD_DIR [--sets N]

Creates and drops its own database. Prints a markdown table (µs per write) and the ratio
the issue sets as a target (Admin.set ≤ 1.2× the bare UPDATE).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]


def with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(build, url, sets):
    import asyncpg  # Debian's python3-asyncpg

    sys.path.insert(0, str(build / "python"))
    from yuxi_config import Admin

    name = f"yuxi_bench_py_{os.getpid()}"
    server = await asyncpg.connect(url)
    await server.execute(f"CREATE DATABASE {name}")
    db_url = with_database(url, name)
    try:
        subprocess.run([str(build / "bin" / "yuxi-configctl"), "schema", "apply",
                        "--database-url", db_url], check=True, capture_output=True)
        raw = await asyncpg.connect(db_url)
        await raw.execute("INSERT INTO system_configs (key, value, category) VALUES "
                          "('embed_model', '\"a\"', 'models'), ('fast_model', '\"a\"', 'models')")
        update = await raw.prepare("UPDATE system_configs SET value = $2::jsonb WHERE key = $1")
        admin = Admin(db_url)
        admin_us, bare_us = [], []
        for i in range(sets):
            t0 = time.perf_counter()
            admin.set("embed_model", f"model-{i}")
            admin_us.append((time.perf_counter() - t0) * 1e6)
            t0 = time.perf_counter()
            await update.fetch("fast_model", json.dumps(f"model-{i}"))
            bare_us.append((time.perf_counter() - t0) * 1e6)
        await raw.close()
    finally:
        await server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await server.close()
    return admin_us, bare_us


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("--sets", type=int, default=2000)
    args = ap.parse_args()
    url = os.environ.get("YUXI_TEST_DATABASE_URL")
    if not url:
        sys.exit("YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)")
    admin_us, bare_us = asyncio.run(run(args.build.resolve(), url, args.sets))
    print(f"| µs per write, {args.sets} each, interleaved | p50 | p99 |")
    print("|---|---:|---:|")
    print(f"| Python `Admin.set` | {percentile(admin_us, 0.5):.0f} | {percentile(admin_us, 0.99):.0f} |")
    print(f"| asyncpg prepared UPDATE | {percentile(bare_us, 0.5):.0f} | {percentile(bare_us, 0.99):.0f} |")
    print(f"| ratio | {percentile(admin_us, 0.5) / percentile(bare_us, 0.5):.2f}× | "
          f"{percentile(admin_us, 0.99) / percentile(bare_us, 0.99):.2f}× |")


if __name__ == "__main__":
    main()
