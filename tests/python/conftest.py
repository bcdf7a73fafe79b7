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
        for suffix in ("", ".lock"):
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
