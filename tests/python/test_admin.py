"""yuxi_config.Admin against a real PostgreSQL and real agents: writes visible in another
process after wait, set_many as one transaction, compare-and-set, values refused with their
JSON pointer, async twins, and a raw-SQL value every agent refuses and reports."""

import asyncio
import json
import subprocess
import sys

import pytest

from yuxi_config import (Admin, Client, Conflict, Error, InvalidArgument, InvalidValue,
                         NotFound, Rejected, WaitTimeout)

from yuxi_know_model import ChatModelProvider

PROVIDERS = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["name", "base_url", "models"],
    "properties": {"name": {"type": "string"}, "base_url": {"type": "string"},
                   "models": {"type": "array", "items": {"type": "string"}, "minItems": 1}}}}


def admin_for(database, agent=None, **kwargs):
    return Admin(database.url, segment=agent.segment if agent else None, **kwargs)


def test_a_set_is_visible_in_another_process_after_wait(database, agents):
    (agent,) = agents()
    admin = admin_for(database, agent)
    rev = admin.set("embed_model", "bge-m3", wait="local")
    assert isinstance(rev, int) and rev > 0
    # Another process, reading through the segment.
    out = subprocess.run(
        [sys.executable, "-c",
         "import sys, yuxi_config; c = yuxi_config.Config(mode='database', segment=sys.argv[1]);"
         " print(c.embed_model, yuxi_config.Client(sys.argv[1]).revision)", agent.segment],
        capture_output=True, text=True, check=True).stdout.split()
    assert out == ["bge-m3", str(rev)]
    assert admin.set("embed_model", "bge-m3") == rev  # unchanged: the key's last change
    # Values are Python objects, pydantic models included.
    provider = ChatModelProvider(name="X", base_url="http://x", models=["m"])
    rev = admin.set("model_names", {"x": provider, "y": {"name": "Y", "base_url": "u",
                                                         "models": ["a"]}}, wait="local")
    assert Client(agent.segment).get("model_names")["x"]["models"] == ["m"]
    assert admin.get("model_names")[1] == rev
    assert admin.history("model_names")[0]["new_value"]["y"]["name"] == "Y"
    assert admin.delete("model_names", wait="local") > rev
    assert Client(agent.segment).get("model_names") is None
    with pytest.raises(NotFound):
        admin.history("never_written")
    with pytest.raises(WaitTimeout) as e:
        admin.wait(admin.revision + 100, "local", timeout=0.2)
    assert e.value.kind == "timeout"
    with pytest.raises(InvalidArgument):
        admin.set("x", float("nan"))


def test_set_many_is_one_revision(database, agents):
    (agent,) = agents()
    admin = admin_for(database, agent)
    before = admin.revision
    rev = admin.set_many({f"k{i}": i for i in range(20)}, wait="local")
    assert rev == before + 20
    snap = Client(agent.segment).snapshot()
    assert snap.revision == rev
    assert [snap[f"k{i}"] for i in range(20)] == list(range(20))
    # One transaction: one xmin in the log.
    assert database.psql(f"SELECT count(DISTINCT xmin::text) FROM yuxi_config_changes "
                         f"WHERE revision > {before}") == "1"


def test_compare_and_set(database):
    admin = admin_for(database)
    r1 = admin.set("top_k", 10)
    r2 = admin.set("top_k", 11, if_revision=r1)
    with pytest.raises(Conflict) as e:
        admin.set("top_k", 12, if_revision=r1)
    assert e.value.kind == "conflict" and e.value.revision == r2 and e.value.key == "top_k"
    assert isinstance(e.value, Error)
    with pytest.raises(Conflict):
        admin.set("top_k", 13, if_revision=0)
    assert admin.get("top_k") == (11, r2)


def test_invalid_values_are_refused_with_their_path(database):
    admin = admin_for(database)
    admin.set_value_schema("model_names", PROVIDERS)
    before = admin.revision
    with pytest.raises(InvalidValue) as e:
        admin.set("model_names", {"openai": {"name": "OpenAI", "base_url": "https://x"}})
    assert e.value.kind == "invalid_value"
    assert e.value.path == "/openai/models"
    assert e.value.reason.startswith("required")
    assert "/openai/models: required" in str(e.value)
    with pytest.raises(InvalidValue):
        admin.set_many({"a": 1, "model_names": {"p": {"name": "P", "base_url": "u",
                                                      "models": []}}})
    assert admin.revision == before
    with pytest.raises(InvalidValue):
        admin.check("model_names", {"p": {}})
    # A pydantic model's schema, one per field.
    from yuxi_know_model import Config
    patterns = admin.import_model(Config)
    assert "embed_model" in patterns and "model_names" in patterns
    with pytest.raises(InvalidValue) as e:
        admin.set("enable_reranker", "yes")
    assert e.value.path == ""


def test_async_twins_do_not_block_the_loop(database, agents):
    (agent,) = agents()
    admin = admin_for(database, agent)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        revs = [await admin.aset(f"a{i}", i, wait="local") for i in range(5)]
        rev = await admin.aset_many({"b": 1, "c": 2})
        await admin.await_revision(rev, "local", 5)
        history = await admin.ahistory("a0")
        t.cancel()
        return revs, history, ticks

    revs, history, ticks = asyncio.run(main())
    assert revs == sorted(revs)
    assert history[0]["new_value"] == 0
    assert ticks > 5  # the loop ran while the writes waited


def test_rollback_to_a_revision(database):
    admin = admin_for(database)
    admin.set("a", 1)
    mark = admin.set("b", 1)
    admin.set("a", 2)
    admin.set("c", 3)
    admin.rollback(mark)
    assert admin.get("a")[0] == 1 and admin.get("c") is None


def test_a_raw_sql_value_is_refused_by_every_agent_and_named_by_wait(database, agents, redis_db):
    host, port, db = redis_db
    redis = {"host": host, "port": port, "db": db}
    admin = Admin(database.url, redis=redis)
    admin.set_value_schema("embed_model", {"type": "string"})
    good = admin.set("embed_model", "bge-m3")
    fleet = agents(2, redis=redis_db)
    admin.wait(good, "fleet", timeout=20)

    database.psql("UPDATE system_configs SET value = '42' WHERE key = 'embed_model'")
    bad = admin.revision
    for a in fleet:
        c = Client(a.segment)
        assert c.wait_for_revision(bad, 20)
        assert c.get("embed_model") == "bge-m3"  # the last good value
    # An agent reports a revision together with what it refused up to it.
    with pytest.raises(Rejected) as e:
        admin.wait(bad, "fleet", timeout=10)
    assert e.value.kind == "rejected"
    assert sorted(p["pod"] for p in e.value.pods) == ["pod0", "pod1"]
    assert "pod0" in str(e.value) and "pod1" in str(e.value)
    rejected = e.value.pods[0]["rejected"][0]
    assert rejected["key"] == "embed_model" and rejected["revision"] == bad
    for a in fleet:
        assert 'yuxi_config_rejected_values_total{reason="schema"}' in a.get("/metrics")
        a.get("/readyz")  # 200: still ready (urllib raises on 503)
    # A valid write clears it.
    fixed = admin.set("embed_model", "bge-large", wait="fleet")
    assert all(not s["rejected"] for s in admin.agents())
    assert all(Client(a.segment).get("embed_model") == "bge-large" for a in fleet)
    assert fixed > bad
    assert json.loads(json.dumps(admin.value_schemas()))[0]["pattern"] == "embed_model"
