"""The Python client against a real agent in file mode."""

import json
import multiprocessing as mp
import os
import time
import tomllib

import pytest

import yuxi_config
from yuxi_config import Client, Config, SegmentError, load_global_metadata

from conftest import REPO


def test_reads_values_the_agent_published(agent):
    c = Client(agent.segment)
    with open(agent.config_file, "rb") as f:
        toml = tomllib.load(f)
    assert c.get("embed_model") == toml["embed_model"]
    assert c.get("model_names") == toml["model_names"]
    assert json.loads(c.get_raw("enable_reranker")) is toml["enable_reranker"]
    with open(agent.metadata_file, encoding="utf-8") as f:
        assert c.metadata("global_metadata") == json.load(f)
    assert c.revision >= 1
    assert set(c.keys()) == set(toml)


def test_missing_keys_are_none_or_key_errors(agent):
    c = Client(agent.segment)
    assert c.get("no_such_key") is None
    assert c.get("no_such_key", 42) == 42
    assert c.metadata("no_such_doc") is None
    snap = c.snapshot()
    with pytest.raises(KeyError):
        snap["no_such_key"]
    cfg = Config(c)
    with pytest.raises(AttributeError):
        cfg.no_such_key
    with pytest.raises(KeyError):
        cfg["no_such_key"]
    with pytest.raises(TypeError):
        c.get(3)


def test_config_attribute_access_stages_writes(agent):
    cfg = Config(Client(agent.segment))
    assert cfg.embed_model == "siliconflow/BAAI/bge-m3"
    assert "siliconflow" in cfg.model_names
    assert cfg.get("absent", "x") == "x"
    cfg.embed_model = "other"  # staged: this object sees it, the segment does not yet
    assert cfg.embed_model == "other"
    assert cfg.staged == {"embed_model": "other"}
    assert Client(agent.segment).get("embed_model") == "siliconflow/BAAI/bge-m3"
    assert cfg.dump()["default_agent_id"] == "ChatbotAgent"


def test_wait_for_change_sees_an_edit(agent):
    c = Client(agent.segment)
    rev = c.revision
    text = agent.config_file.read_text(encoding="utf-8")
    agent.write_config(text.replace('embed_model = "siliconflow/BAAI/bge-m3"',
                                    'embed_model = "zhipu/embedding-3"'))
    assert c.wait_for_change(rev, 5.0)
    assert c.revision == rev + 1
    assert c.get("embed_model") == "zhipu/embedding-3"
    assert not c.wait_for_change(c.revision, 0.05)


def test_cached_value_follows_changes(agent):
    c = Client(agent.segment)
    first = c.get("model_names")
    assert c.get("model_names") is first  # decoded once per change
    rev = c.revision
    agent.write_config('extra_key = 1\n' + agent.config_file.read_text(encoding="utf-8"))
    assert c.wait_for_change(rev, 5.0)
    assert c.get("model_names") is first  # the entry did not change
    assert c.get("extra_key") == 1


def test_health_reports_the_agent(agent):
    h = Client(agent.segment).health()
    assert h.writer_alive and h.source_state == "ok" and h.fresh()
    assert h.entries > 10 and h.segment_bytes > 0


def test_segment_errors_name_the_problem():
    with pytest.raises(SegmentError) as e:
        Client("yuxi-pytest-no-such-segment")
    assert e.value.kind == "absent"
    assert "yuxi-config-agent" in str(e.value)
    with pytest.raises(SegmentError) as e:
        Client("bad/name")
    assert e.value.kind == "invalid_name"


def test_wrong_layout_version_is_an_exception_not_a_crash(tmp_path):
    name = f"yuxi-pytest-bad-{os.getpid()}"
    path = f"/dev/shm/{name}"
    header = bytearray(8192)
    header[0:8] = (0x3147464349585559).to_bytes(8, "little")
    header[8:12] = (99).to_bytes(4, "little")
    with open(path, "wb") as f:
        f.write(header)
    try:
        with pytest.raises(SegmentError) as e:
            Client(name)
        assert e.value.kind == "incompatible"
        assert "upgrade the client" in str(e.value)
    finally:
        os.unlink(path)


def test_load_global_metadata_from_the_segment(agent, monkeypatch):
    monkeypatch.setenv("CONFIG_MODE", "database")
    with open(agent.metadata_file, encoding="utf-8") as f:
        expected = json.load(f)
    got = load_global_metadata("/nonexistent", "global_metadata", segment=agent.segment)
    assert got == expected
    got["databases"].clear()  # a fresh copy: the next caller is unaffected
    assert load_global_metadata("/x", "global_metadata", segment=agent.segment) == expected
    assert load_global_metadata("/x", "absent_doc", segment=agent.segment) == {}


def test_load_global_metadata_from_files_without_an_agent(monkeypatch):
    monkeypatch.setenv("CONFIG_MODE", "file")
    work_dir = REPO / "samples/saves/knowledge_base_data"
    seg = "yuxi-pytest-none"
    got = load_global_metadata(str(work_dir), "global_metadata", segment=seg)
    with open(work_dir / "global_metadata.json", encoding="utf-8") as f:
        assert got == json.load(f)
    assert load_global_metadata(str(work_dir), "absent", segment=seg) == {}
    monkeypatch.setenv("CONFIG_MODE", "database")
    with pytest.raises(SegmentError):
        load_global_metadata(str(work_dir), "global_metadata", segment=seg)


def _reader(segment, seconds, out):
    """Reads continuously; every value must be whole and every snapshot one revision."""
    c = Client(segment)
    reads = errors = 0
    last_rev = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            a = c.get("a")
            if a is not None:
                reads += 1
                if a["pad"] != "x" * a["n"]:
                    errors += 1
            snap = c.snapshot()
            sa, sb = snap.get("a"), snap.get("b")
            if sa is not None and sb is not None:
                reads += 2
                if sa["n"] != sb["n"]:
                    errors += 1
            if c.revision < last_rev:
                errors += 1
            last_rev = c.revision
    except Exception as e:  # any exception is a failure
        out.put(("exception", repr(e)))
        return
    out.put((reads, errors))


def test_many_processes_read_while_the_agent_updates(agent):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(agent.segment, 3.0, out)) for _ in range(3)]
    for p in readers:
        p.start()
    c = Client(agent.segment)
    base = agent.config_file.read_text(encoding="utf-8")
    deadline = time.monotonic() + 3.0
    n = 0
    while time.monotonic() < deadline and n < 300:
        n += 1
        rev = c.revision
        agent.write_config(
            f'a = {{ n = {n}, pad = "{"x" * n}" }}\nb = {{ n = {n} }}\n' + base)
        c.wait_for_change(rev, 2.0)
    results = [out.get(timeout=30) for _ in readers]
    for p in readers:
        p.join(timeout=30)
    for r in results:
        assert r[0] != "exception", r
        reads, errors = r
        assert errors == 0
        assert reads > 1000
    assert n > 20
    assert c.get("a")["n"] == n
