"""yuxi_config.Config as a drop-in for Yuxi-Know's Config, against real agents: typed reads
from the segment, staged writes saved as one revision (database mode through Admin, file
mode through the file writer), custom providers, dump_config() in upstream's shape, and file
mode under concurrent saves from several processes."""

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import time
import tomllib
import uuid
from pathlib import Path

import pytest

from conftest import AGENT_BIN, CONFIGCTL_BIN, REPO, free_port
from yuxi_config import Admin, Client, Config, InvalidValue
from yuxi_know_model import Config as YuxiKnowConfig

SAMPLES = REPO / "samples/saves"
FIELDS = ["save_dir", "model_dir", "enable_reranker", "enable_content_guard",
          "enable_content_guard_llm", "enable_web_search", "default_model", "fast_model",
          "embed_model", "reranker", "content_guard_llm_model", "default_agent_id"]


def migrate(database, save_dir: Path):
    subprocess.run([CONFIGCTL_BIN, "migrate", "--database-url", database.url,
                    "--config-file", str(save_dir / "config/base.toml"),
                    "--config-file", str(save_dir / "config/custom_providers.toml")],
                   check=True, capture_output=True)


def upstream_dump_config(files_dir: Path) -> dict:
    """What upstream's Config.dump_config() returns for these files, from the facts of its
    loader (base.toml's keys over the defaults; a provider's `models` replaced, a new
    provider added; custom_providers.toml's providers added as custom) and of its dump
    (persisted fields, then the excluded tables, then _config_items)."""
    cfg = YuxiKnowConfig()
    data = tomllib.loads((files_dir / "config/base.toml").read_text())
    names = {k: v.dict() for k, v in cfg.model_names.items()}
    for provider, info in data.pop("model_names", {}).items():
        if provider in names:
            names[provider]["models"] = info["models"]
        else:
            names[provider] = info
    custom = tomllib.loads((files_dir / "config/custom_providers.toml").read_text())
    for provider, info in custom.get("model_names", {}).items():
        names[provider] = dict(info, custom=True)
    out = {k: data.get(k, getattr(cfg, k)) for k in FIELDS}
    out["model_names"] = names
    out["model_provider_status"] = {}
    out["_config_items"] = {
        name: {"des": f.field_info.description, "default": f.default,
               "type": f.outer_type_.__name__, "exclude": False}
        for name, f in YuxiKnowConfig.__fields__.items() if not f.field_info.exclude}
    return out


def shape(value):
    """The structure of a value: keys and types, not the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


# --- database mode ------------------------------------------------------------------------

@pytest.fixture
def db_config(tmp_path, database, agents):
    saves = tmp_path / "saves"
    shutil.copytree(SAMPLES, saves)
    migrate(database, saves)
    (agent,) = agents()
    admin = Admin(database.url, segment=agent.segment)
    config = Config(model=YuxiKnowConfig, mode="database", admin=admin, segment=agent.segment)
    return config, admin, agent, saves


def test_reads_are_typed_and_defaulted_by_the_model(db_config):
    config, admin, agent, _ = db_config
    assert config.enable_reranker is True and config["embed_model"] == "siliconflow/BAAI/bge-m3"
    providers = config.model_names
    assert providers["siliconflow"].models[0] == "deepseek-ai/DeepSeek-V3.2"
    assert providers["ollama-local"].custom is True  # from custom_providers.toml
    rev = admin.delete("fast_model", wait="local")
    assert Client(agent.segment).revision >= rev
    assert config.fast_model == YuxiKnowConfig().fast_model  # the model's default
    with pytest.raises(AttributeError):
        config.no_such_key
    assert config.get("no_such_key", 1) == 1


def test_save_writes_the_staged_changes_as_one_revision(db_config, database):
    config, admin, agent, _ = db_config
    before = admin.revision
    config["embed_model"] = "bge-large"
    config.enable_content_guard = True
    config.default_agent_id = ""  # the model's default: removed from the database
    assert Client(agent.segment).get("embed_model") == "siliconflow/BAAI/bge-m3"
    rev = config.save()
    assert rev == before + 3
    assert database.psql(f"SELECT count(DISTINCT xmin::text) FROM yuxi_config_changes "
                         f"WHERE revision > {before}") == "1"
    other = Config(model=YuxiKnowConfig, mode="database", segment=agent.segment)
    assert other.embed_model == "bge-large" and other.enable_content_guard is True
    assert Client(agent.segment).get("default_agent_id") is None
    assert other.default_agent_id == ""
    assert config.staged == {}
    # update() writes at once.
    config.update({"fast_model": "siliconflow/Qwen/Qwen3-8B", "not_a_field": 1})
    assert other.fast_model == "siliconflow/Qwen/Qwen3-8B"
    assert "not_a_field" not in Client(agent.segment).snapshot()


def test_every_writer_refuses_what_breaks_the_schema(db_config):
    config, admin, _, _ = db_config
    admin.import_model(YuxiKnowConfig, force=True)
    config.enable_reranker = "yes"
    with pytest.raises(InvalidValue) as e:
        config.save()
    assert e.value.key == "enable_reranker" and e.value.path == ""
    assert Client(config._segment).get("enable_reranker") is True  # nothing written
    config["enable_reranker"] = False
    config.save()
    assert config.enable_reranker is False
    # A provider without its models: refused by the schema pydantic gives, named by path.
    assert config.add_custom_provider("broken", {"name": "B", "base_url": "u"}) is False
    assert "broken" not in config.model_names


def test_custom_providers_and_model_choices(db_config, monkeypatch):
    config, _, _, _ = db_config
    data = {"name": "Local", "base_url": "http://127.0.0.1:9/v1", "env": "${LOCAL_KEY}",
            "models": ["m1", "m2"]}
    assert config.add_custom_provider("local", data) is True
    assert config.add_custom_provider("local", data) is False  # taken
    assert config.model_names["local"].env == "LOCAL_KEY"
    assert config.model_names["local"].custom is True
    assert "local/m1" in config.get_model_choices()  # custom: usable without its key
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert not any(c.startswith("openai/") for c in config.get_model_choices())
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert "openai/gpt-4o" in config.get_model_choices()
    assert config.update_custom_provider("local", dict(data, models=["m3"])) is True
    assert config.model_names["local"].models == ["m3"]
    assert config.update_custom_provider("openai", data) is False  # not custom
    assert config.delete_custom_provider("local") is True
    assert "local" not in config.model_names
    assert config.delete_custom_provider("local") is False


def test_dump_config_has_upstreams_shape(db_config):
    config, _, _, saves = db_config
    ours = config.dump_config()
    theirs = upstream_dump_config(saves)
    assert shape(ours) == shape(theirs)
    assert ours["_config_items"] == theirs["_config_items"]
    for key in FIELDS + ["model_names"]:
        assert ours[key] == theirs[key], key


# --- file mode ----------------------------------------------------------------------------

class FileAgent:
    def __init__(self, saves: Path, *args: str):
        self.segment = f"yuxi-pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.http = free_port()
        self.log = open(saves.parent / "file-agent.log", "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("YUXI_", "CONFIG_MODE"))}
        self.proc = subprocess.Popen(
            [AGENT_BIN, "--segment", self.segment, "--http", f"127.0.0.1:{self.http}",
             "--config-file", str(saves / "config/base.toml"),
             "--config-file", str(saves / "config/custom_providers.toml"),
             "--metadata", f"global_metadata={saves}/knowledge_base_data/global_metadata.json",
             *args], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 10
        while not os.path.exists(f"/dev/shm/{self.segment}"):
            assert self.proc.poll() is None and time.monotonic() < deadline, "no agent"
            time.sleep(0.01)

    def metric(self, name: str) -> float:
        import urllib.request
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics").read().decode()
        m = re.search("^" + re.escape(name) + r" (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        for suffix in ("", ".lock", ".waiters"):
            try:
                os.unlink(f"/dev/shm/{self.segment}{suffix}")
            except FileNotFoundError:
                pass


@pytest.fixture
def file_mode(tmp_path):
    saves = tmp_path / "saves"
    shutil.copytree(SAMPLES, saves)
    started = []

    def start(*args):
        a = FileAgent(saves, *args)
        started.append(a)
        return a

    yield saves, start
    for a in started:
        a.stop()


def test_file_mode_save_round_trip(file_mode):
    saves, start = file_mode
    agent = start()
    config = Config(model=YuxiKnowConfig, mode="file", save_dir=str(saves), segment=agent.segment)
    assert config.embed_model == "siliconflow/BAAI/bge-m3"
    config.embed_model = "bge-large"
    config.enable_content_guard = False  # the default: taken out of the file
    rev = config.save()
    assert rev is not None and Client(agent.segment).get("embed_model") == "bge-large"
    written = tomllib.loads((saves / "config/base.toml").read_text())
    assert written["embed_model"] == "bge-large"
    assert "enable_content_guard" not in written
    assert written["model_names"]["openai"]["models"]  # untouched keys stay
    assert config.add_custom_provider("lan", {"name": "LAN", "base_url": "http://lan/v1",
                                              "env": "NO_API_KEY", "models": ["q"]})
    assert "lan/q" in config.get_model_choices()
    custom = tomllib.loads((saves / "config/custom_providers.toml").read_text())
    assert custom["model_names"]["lan"]["custom"] is True
    assert config.delete_custom_provider("lan") and "lan" not in config.model_names


def _saver(args):
    save_dir, segment, proc, count = args
    config = Config(mode="file", save_dir=save_dir, segment=segment, wait=None)
    for i in range(count):
        config[f"proc{proc}_counter"] = i
        config[f"proc{proc}_label"] = f"p{proc}-{i}"
        config.save()
    return proc


def test_concurrent_saves_from_four_processes_lose_nothing(file_mode):
    saves, start = file_mode
    agent = start()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        done = pool.map(_saver, [(str(saves), agent.segment, p, 50) for p in range(4)])
    assert sorted(done) == [0, 1, 2, 3]  # 200 saves
    written = tomllib.loads((saves / "config/base.toml").read_text())
    c = Client(agent.segment)
    deadline = time.monotonic() + 10
    while any(c.get(f"proc{p}_counter") != 49 for p in range(4)):
        assert time.monotonic() < deadline, "the agent did not publish the last saves"
        c.wait_for_change(c.revision, 0.5)
    for p in range(4):
        assert written[f"proc{p}_counter"] == 49 and written[f"proc{p}_label"] == f"p{p}-49"
        assert c.get(f"proc{p}_label") == f"p{p}-49"
    # The agent never read a torn or partial file.
    assert agent.metric('yuxi_config_errors_total{kind="syntax"}') == 0
    assert c.health().source_state == "ok"


def test_file_mode_schemas_refused_by_the_writer_and_the_agent(file_mode, tmp_path):
    saves, start = file_mode
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(YuxiKnowConfig.schema()))
    agent = start("--value-schema", str(schema))
    config = Config(model=YuxiKnowConfig, mode="file", save_dir=str(saves),
                    segment=agent.segment, value_schema=str(schema))
    config.enable_reranker = "sometimes"
    with pytest.raises(InvalidValue) as e:
        config.save()
    assert e.value.key == "enable_reranker"
    config.discard("enable_reranker")
    # An edit past the writer: the agent keeps the last good value and counts it.
    base = saves / "config/base.toml"
    text = base.read_text().replace("enable_reranker = true", 'enable_reranker = "no"')
    tmp = base.with_suffix(".edit")
    tmp.write_text(text)
    os.replace(tmp, base)
    deadline = time.monotonic() + 10
    while agent.metric('yuxi_config_rejected_values_total{reason="schema"}') < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert Client(agent.segment).get("enable_reranker") is True
    assert agent.metric("yuxi_config_rejected_keys") == 1
