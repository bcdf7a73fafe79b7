"""Fixtures: a real yuxi-config-agent in file mode on a temporary copy of the samples."""

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AGENT_BIN = os.environ.get("YUXI_AGENT_BIN", str(REPO / "build/dev/bin/yuxi-config-agent"))


class Agent:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.segment = f"yuxi-pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.config_file = workdir / "saves/config/base.toml"
        self.metadata_file = workdir / "saves/knowledge_base_data/global_metadata.json"
        self.proc = None

    def start(self):
        self.log = open(self.workdir / "agent.log", "w")
        self.proc = subprocess.Popen(
            [AGENT_BIN, "--segment", self.segment, "--config-file", str(self.config_file),
             "--metadata", f"global_metadata={self.metadata_file}",
             "--http", "127.0.0.1:0"],  # no probes: tests run side by side
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + 10
        while not os.path.exists(f"/dev/shm/{self.segment}"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("agent did not start: " + (self.workdir / "agent.log").read_text())
            time.sleep(0.01)
        return self

    def write_config(self, text: str):
        """Writes the TOML file the way editors do: a temporary file renamed over it."""
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.config_file)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for suffix in ("", ".lock", ".waiters"):
            try:
                os.unlink(f"/dev/shm/{self.segment}{suffix}")
            except FileNotFoundError:
                pass


@pytest.fixture
def agent(tmp_path):
    shutil.copytree(REPO / "samples/saves", tmp_path / "saves")
    a = Agent(tmp_path).start()
    yield a
    a.stop()


# --- database mode: a fresh database per test, real agents, the test servers' Redis -------

# The fleet's signing key in the tests (as in tests/integration/redis_test_support.hpp):
# agents with Redis get it, and Admin's wait(fleet) in this process verifies their reports
# with it (YUXI_CONFIG_SIGNING_KEY, as the admin library reads it).
TEST_SIGNING_KEY = "eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDE="
os.environ["YUXI_CONFIG_SIGNING_KEY"] = TEST_SIGNING_KEY

CONFIGCTL_BIN = os.environ.get("YUXI_CONFIGCTL_BIN", str(REPO / "build/dev/bin/yuxi-configctl"))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """A database of its own on YUXI_TEST_DATABASE_URL's server, schema applied by
    yuxi-configctl schema apply."""

    def __init__(self, server_url: str):
        self.server_url = server_url
        self.name = f"yuxi_py_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        base, _, _ = server_url.rpartition("/")
        self.url = f"{base}/{self.name}"
        self.psql(f"CREATE DATABASE {self.name}", url=server_url)
        subprocess.run([CONFIGCTL_BIN, "schema", "apply", "--database-url", self.url],
                       check=True, capture_output=True)

    def psql(self, sql: str, url: str = None) -> str:
        r = subprocess.run(["psql", url or self.url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           check=True, capture_output=True, text=True)
        return r.stdout.strip()

    def drop(self):
        subprocess.run(["psql", self.server_url, "-qc",
                        f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"], capture_output=True)


class DbAgent:
    """yuxi-config-agent in database mode on `db`, with Redis if `redis` (host, port, db)."""

    def __init__(self, workdir: Path, db: Database, pod: str = "pod0", redis=None):
        self.segment = f"yuxi-pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.http = free_port()
        self.log_path = workdir / f"{self.segment}.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("YUXI_", "REDIS_", "DATABASE_URL", "CONFIG_MODE"))}
        env.update({"CONFIG_MODE": "database", "DATABASE_URL": db.url, "POD_NAME": pod,
                    "YUXI_CONFIG_SAFETY_POLL": "500ms"})
        if redis is not None:
            env.update({"REDIS_HOST": redis[0], "REDIS_PORT": str(redis[1]),
                        "REDIS_DB": str(redis[2]), "YUXI_CONFIG_RELAY_LEASE_TTL": "1s",
                        "YUXI_CONFIG_SIGNING_KEY": TEST_SIGNING_KEY})
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [AGENT_BIN, "--segment", self.segment, "--http", f"127.0.0.1:{self.http}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        deadline = time.monotonic() + 20
        while not os.path.exists(f"/dev/shm/{self.segment}"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("agent did not start: " + self.log_path.read_text())
            time.sleep(0.01)

    def get(self, path: str) -> str:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=5) as r:
            return r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for suffix in ("", ".lock", ".waiters"):
            try:
                os.unlink(f"/dev/shm/{self.segment}{suffix}")
            except FileNotFoundError:
                pass


@pytest.fixture
def database():
    url = os.environ.get("YUXI_TEST_DATABASE_URL")
    if not url:
        pytest.skip("YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)")
    db = Database(url)
    yield db
    db.drop()


@pytest.fixture
def agents(tmp_path, database):
    """agents(n, redis=None) starts n database-mode agents; all stopped at the end."""
    started = []

    def start(n=1, redis=None):
        out = [DbAgent(tmp_path, database, pod=f"pod{len(started) + i}", redis=redis)
               for i in range(n)]
        started.extend(out)
        return out

    yield start
    for a in started:
        a.stop()


@pytest.fixture
def redis_db():
    """(host, port, db) of the test servers' Redis, on a database emptied for this test."""
    host, port = os.environ.get("YUXI_TEST_REDIS_HOST"), os.environ.get("YUXI_TEST_REDIS_PORT")
    if not host or not port:
        pytest.skip("YUXI_TEST_REDIS_HOST/PORT are not set (scripts/test-servers)")
    import redis
    db = 14
    redis.Redis(host=host, port=int(port), db=db).flushdb()
    yield host, int(port), db
