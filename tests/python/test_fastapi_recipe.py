"""The FastAPI settings recipe (python/examples/fastapi/settings_app.py) served by a real
uvicorn, driven by a real HTTP client (urllib), against a real agent and PostgreSQL."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, free_port
from test_drop_in import SAMPLES, migrate
from yuxi_config import Admin, Client
from yuxi_know_model import Config as YuxiKnowConfig

APP_DIR = REPO / "python/examples/fastapi"


def call(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def server(tmp_path, database, agents):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    saves = tmp_path / "saves"
    shutil.copytree(SAMPLES, saves)
    migrate(database, saves)
    (agent,) = agents()
    port = free_port()
    env = dict(os.environ, CONFIG_MODE="database", DATABASE_URL=database.url,
               YUXI_CONFIG_SEGMENT=agent.segment, YUXI_EXAMPLE_MODEL="yuxi_know_model:Config",
               PYTHONPATH=os.pathsep.join([os.environ.get("PYTHONPATH", ""),
                                           str(Path(__file__).parent)]))
    log = open(tmp_path / "uvicorn.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "settings_app:app", "--app-dir",
                             str(APP_DIR), "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=1)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "uvicorn.log").read_text()
            time.sleep(0.05)
    yield port, agent, database
    proc.terminate()
    proc.wait(timeout=10)


def test_the_settings_routes_read_and_write_through_the_drop_in(server):
    port, agent, database = server
    status, body = call(port, "GET", "/api/config")
    assert status == 200
    assert body["embed_model"] == "siliconflow/BAAI/bge-m3"
    assert body["_config_items"]["embed_model"]["des"] == "Embedding model"
    assert "siliconflow" in body["model_names"]

    status, body = call(port, "POST", "/api/config", {"embed_model": "bge-large",
                                                      "enable_content_guard": True})
    assert status == 200, body
    assert body["config"]["embed_model"] == "bge-large"
    assert Client(agent.segment).get("embed_model") == "bge-large"  # what every pod sees
    assert call(port, "GET", "/api/config")[1]["enable_content_guard"] is True

    Admin(database.url).import_model(YuxiKnowConfig, force=True)
    status, body = call(port, "POST", "/api/config", {"enable_reranker": "maybe"})
    assert status == 422
    assert body["detail"]["key"] == "enable_reranker" and body["detail"]["path"] == ""
    assert Client(agent.segment).get("enable_reranker") is True  # nothing written

    provider = {"name": "vLLM", "base_url": "http://vllm:8000/v1", "env": "NO_API_KEY",
                "models": ["Qwen/Qwen2.5-7B-Instruct"]}
    status, body = call(port, "POST", "/api/config/providers",
                        {"provider_id": "vllm", "provider_data": provider})
    assert status == 200, body
    assert "vllm" in body["providers"]
    assert Client(agent.segment).get("model_names")["vllm"]["custom"] is True
    assert call(port, "POST", "/api/config/providers",
                {"provider_id": "vllm", "provider_data": provider})[0] == 400
    assert call(port, "POST", "/api/config/providers",
                {"provider_id": "bad", "provider_data": {"name": "x"}})[0] == 400
