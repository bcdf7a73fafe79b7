#!/usr/bin/env python3
"""End-to-end: the example FastAPI app (python/examples/fastapi) under wrk, reading its
configuration and metadata per request from the segment, from Redis, and from
PostgreSQL, in one run. Prints a markdown table.

    eval "$(scripts/test-servers env)"   # after scripts/test-servers start
    /usr/bin/python3 bench/fastapi_bench.py BUILD_DIR [--seconds 10] [--connections 32]

Needs wrk, uvicorn, python3-httptools, python3-uvloop, python3-redis, python3-asyncpg
(all Debian packages) and YUXI_TEST_DATABASE_URL / YUXI_TEST_REDIS_PORT.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_agent import file_mode_agent

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "python/examples/fastapi"
ENDPOINTS = ["/api/system/config", "/api/knowledge/databases"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def load_stores(segment, build):
    """Copies what the segment holds into Redis and PostgreSQL, so every source serves
    the same data."""
    dump = json.loads(subprocess.check_output(
        [str(build / "bin/yuxi-configctl"), "--segment", segment, "dump", "--json"]))
    import redis
    r = redis.Redis(host=os.environ.get("YUXI_TEST_REDIS_HOST", "127.0.0.1"),
                    port=int(os.environ["YUXI_TEST_REDIS_PORT"]))
    for k, v in dump["config"].items():
        r.set(f"yuxi:example:config:{k}", json.dumps(v))
    for k, v in dump["metadata"].items():
        r.set(f"yuxi:example:metadata:{k}", json.dumps(v))
    url = os.environ["YUXI_TEST_DATABASE_URL"]
    # The numbered migrations only: roles.sql takes the roles' passwords as variables.
    for f in sorted((REPO / "deploy/sql").glob("[0-9][0-9][0-9]_*.sql")):
        subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(f)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sql = ["TRUNCATE system_configs, global_metadata;"]
    for k, v in dump["config"].items():
        sql.append("INSERT INTO system_configs (key, value) VALUES (%s, %s);"
                   % (pg_literal(k), pg_literal(json.dumps(v))))
    for k, v in dump["metadata"].items():
        sql.append("INSERT INTO global_metadata (key, content) VALUES (%s, %s);"
                   % (pg_literal(k), pg_literal(json.dumps(v))))
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1"], input="\n".join(sql),
                   text=True, check=True, stdout=subprocess.DEVNULL)


def pg_literal(s):
    return "'" + s.replace("'", "''") + "'"


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(m.group(1)) * scale, int(errors.group(1)) if errors else 0


def run_source(source, env, args):
    port = free_port()
    e = dict(env, YUXI_EXAMPLE_SOURCE=source)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--workers", str(args.workers),
         "--http", "httptools", "--loop", "uvloop", "--port", str(port), "--host", "127.0.0.1",
         "--log-level", "warning", "--no-access-log"],
        cwd=APP_DIR, env=e, start_new_session=True)
    try:
        wait_http(port, proc)
        results = {}
        for ep in ENDPOINTS:
            url = f"http://127.0.0.1:{port}{ep}"
            subprocess.run(["wrk", "-t1", "-c8", "-d1s", url], check=True,
                           stdout=subprocess.DEVNULL)  # warm-up
            out = subprocess.check_output(
                ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", url],
                text=True)
            results[ep] = parse_wrk(out)
        return results
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", type=Path)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    build = args.build.resolve()
    for tool in ("wrk", "psql"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    segment = f"yuxi-config-bench-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="yuxi-fastapi-bench-"))
    shutil.copytree(REPO / "samples/saves", work / "saves")
    try:
        with file_mode_agent(build, segment, ["--log-level", "warn"], cwd=work):
            load_stores(segment, build)
            env = dict(os.environ, YUXI_CONFIG_SEGMENT=segment,
                       PYTHONPATH=str(build / "python"),
                       REDIS_HOST=os.environ.get("YUXI_TEST_REDIS_HOST", "127.0.0.1"),
                       REDIS_PORT=os.environ["YUXI_TEST_REDIS_PORT"],
                       DATABASE_URL=os.environ["YUXI_TEST_DATABASE_URL"])
            table = {s: run_source(s, env, args) for s in ("segment", "redis", "postgres")}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, uvicorn --workers {args.workers} "
          "--http httptools --loop uvloop\n")
    print("| endpoint | source | requests/s | p99 (ms) | vs segment (req/s) | non-2xx |")
    print("|---|---|---:|---:|---:|---:|")
    for ep in ENDPOINTS:
        base = table["segment"][ep][0]
        for s in ("segment", "redis", "postgres"):
            rps, p99, errs = table[s][ep]
            print(f"| `{ep}` | {s} | {rps:,.0f} | {p99:.2f} | {rps / base:.2f}x | {errs} |")


if __name__ == "__main__":
    main()
