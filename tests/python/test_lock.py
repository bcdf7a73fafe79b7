"""DistributedLock against a real redis-server started for these tests."""

import multiprocessing as mp
import os
import socket
import subprocess
import time

import pytest

from yuxi_config import DistributedLock, LockError


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    port = _free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(d)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def _worker(port, name, path, rounds):
    for _ in range(rounds):
        with DistributedLock(name, timeout=5, port=port) as lock:
            token = lock.fencing_token
            with open(path, "a") as f:
                f.write(f"start {os.getpid()} {token}\n")
            with open(path, "a") as f:
                f.write(f"end {os.getpid()} {token}\n")


def test_mutual_exclusion_and_fencing_across_processes(redis_port, tmp_path):
    path = tmp_path / "log"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(redis_port, "index_file_1_2", str(path), 50))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 50 * 2
    last = 0
    for start, end in zip(lines[::2], lines[1::2]):
        s_kind, s_pid, s_tok = start.split()
        e_kind, e_pid, e_tok = end.split()
        assert (s_kind, e_kind) == ("start", "end")
        assert s_pid == e_pid and s_tok == e_tok  # no overlap
        assert int(s_tok) > last  # fencing tokens strictly increase
        last = int(s_tok)


def test_busy_lock_times_out_with_a_lock_error(redis_port):
    with DistributedLock("busy", timeout=5, port=redis_port):
        other = DistributedLock("busy", timeout=5, wait=0.2, port=redis_port)
        t0 = time.monotonic()
        with pytest.raises(LockError) as e:
            with other:
                pass
        assert e.value.kind == "timeout"
        assert time.monotonic() - t0 < 2
        assert not other.try_acquire()
    assert DistributedLock("busy", port=redis_port).try_acquire()


def test_renewal_keeps_a_long_job_locked(redis_port):
    # A TTL long enough that a loaded CI machine still renews in time (every TTL/3).
    with DistributedLock("long", timeout=1.0, port=redis_port) as lock:
        time.sleep(3.0)  # three TTLs
        assert lock.held and not lock.lost, lock.loss_reason
        assert not DistributedLock("long", timeout=1.0, port=redis_port).try_acquire()


def test_unreachable_redis_is_a_connect_error():
    with pytest.raises(LockError) as e:
        DistributedLock("x", port=_free_port()).try_acquire()
    assert e.value.kind == "connect"


def _start_redis(args, tmp_dir):
    """A redis-server (or Sentinel, with a config file first) on a free port, up."""
    port = _free_port()
    proc = subprocess.Popen(["redis-server", *args(port)], cwd=str(tmp_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)


def _cli(port, *command):
    return subprocess.run(["redis-cli", "-p", str(port), *command], capture_output=True,
                          text=True, timeout=10).stdout.strip()


def test_sentinel_finds_the_primary_and_waits_for_a_replica(tmp_path, monkeypatch):
    """REDIS_SENTINELS alone: the lock asks the Sentinel for the primary, acquires there,
    and returns its fencing token once the replica has it (min_replicas 1 by default)."""
    base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    procs = []
    try:
        primary, pport = _start_redis(lambda p: ["--port", str(p), *base], tmp_path)
        procs.append(primary)
        (tmp_path / "replica").mkdir()
        replica, rport = _start_redis(
            lambda p: ["--port", str(p), *base, "--replicaof", "127.0.0.1", str(pport)],
            tmp_path / "replica")
        procs.append(replica)
        deadline = time.monotonic() + 10
        while "state=online" not in _cli(pport, "INFO", "replication"):
            assert time.monotonic() < deadline, "the replica never connected"
            time.sleep(0.05)
        conf = tmp_path / "sentinel.conf"

        def sentinel_args(p):
            conf.write_text(f"port {p}\nbind 127.0.0.1\ndir {tmp_path}\n"
                            f"sentinel monitor py 127.0.0.1 {pport} 1\n")
            return [str(conf), "--sentinel"]

        sentinel, sport = _start_redis(sentinel_args, tmp_path)
        procs.append(sentinel)
        monkeypatch.delenv("REDIS_HOST", raising=False)
        monkeypatch.delenv("REDIS_PORT", raising=False)
        monkeypatch.setenv("REDIS_SENTINELS", f"127.0.0.1:{sport}")
        monkeypatch.setenv("REDIS_SENTINEL_MASTER", "py")
        with DistributedLock("sentinel_py", timeout=5) as lock:
            assert lock.fencing_token > 0
            assert _cli(pport, "EXISTS", "yuxi:lock:sentinel_py") == "1"
            assert _cli(rport, "EXISTS", "yuxi:lock:sentinel_py") == "1"
        # A Sentinel that does not know the master is a connect error naming it.
        monkeypatch.setenv("REDIS_SENTINEL_MASTER", "unknown")
        with pytest.raises(LockError) as e:
            with DistributedLock("sentinel_py", timeout=1):
                pass
        assert e.value.kind == "connect"
        assert "unknown" in str(e.value)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
