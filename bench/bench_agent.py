"""A file-mode yuxi-config-agent for the Python benches: started, awaited, stopped."""
import contextlib
import os
import signal
import subprocess
import time


@contextlib.contextmanager
def file_mode_agent(build, segment, args, cwd=None, timeout=10):
    """Runs the agent of `build` on `segment` with extra `args` until the block ends, then
    stops it and removes its segment files. Raises RuntimeError if no segment appears."""
    agent = subprocess.Popen([str(build / "bin/yuxi-config-agent"), "--segment", segment, *args],
                             cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(f"/dev/shm/{segment}"):
            if time.monotonic() > deadline or agent.poll() is not None:
                raise RuntimeError("agent did not start")
            time.sleep(0.02)
        yield agent
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
        for suffix in ("", ".lock", ".waiters"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"/dev/shm/{segment}{suffix}")
