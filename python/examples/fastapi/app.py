"""A Yuxi-Know-style FastAPI app whose handlers read configuration and knowledge-base
metadata per request, the way Yuxi-Know's routers do (``config.embed_model``, the
``databases`` map of ``global_metadata``).

YUXI_EXAMPLE_SOURCE picks where the handlers read from, so the same handlers can be
measured against the seed's cache levels:

- ``segment`` (default): yuxi_config, the shared-memory segment kept by the agent (L1);
- ``redis``: a Redis GET per read, JSON decoded (the seed's L2), keys
  ``yuxi:example:config:<key>`` and ``yuxi:example:metadata:<name>``;
- ``postgres``: a SELECT per read from ``system_configs`` / ``global_metadata`` (L3).

Run (several workers share one segment):

    uvicorn app:app --workers 2 --http httptools --loop uvloop --port 8000
"""

import json
import os

from fastapi import FastAPI, HTTPException

SOURCE = os.environ.get("YUXI_EXAMPLE_SOURCE", "segment")
app = FastAPI(title="yuxi-config example")

if SOURCE == "segment":
    from yuxi_config import Client, Config

    client = Client()
    config = Config(client)

    async def read_config(key):
        return client.get(key)

    async def read_metadata(name):
        return client.metadata(name)

elif SOURCE == "redis":
    import redis.asyncio as aioredis

    redis_client = aioredis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"),
                                  port=int(os.environ.get("REDIS_PORT", "6379")))

    async def read_config(key):
        raw = await redis_client.get(f"yuxi:example:config:{key}")
        return json.loads(raw) if raw is not None else None

    async def read_metadata(name):
        raw = await redis_client.get(f"yuxi:example:metadata:{name}")
        return json.loads(raw) if raw is not None else None

elif SOURCE == "postgres":
    import asyncpg

    pool = None

    @app.on_event("startup")
    async def connect():
        global pool
        pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=8)

    async def read_config(key):
        raw = await pool.fetchval("SELECT value::text FROM system_configs WHERE key = $1", key)
        return json.loads(raw) if raw is not None else None

    async def read_metadata(name):
        raw = await pool.fetchval("SELECT content::text FROM global_metadata WHERE key = $1",
                                  name)
        return json.loads(raw) if raw is not None else None

else:
    raise RuntimeError(f"YUXI_EXAMPLE_SOURCE={SOURCE!r}: use segment, redis or postgres")


@app.get("/api/system/config")
async def system_config():
    """The models the chat page needs, like Yuxi-Know's /api/system/config."""
    return {
        "default_model": await read_config("default_model"),
        "embed_model": await read_config("embed_model"),
        "reranker": await read_config("reranker"),
        "enable_reranker": await read_config("enable_reranker"),
    }


@app.get("/api/knowledge/databases")
async def list_databases():
    """The knowledge bases, from global_metadata's `databases` map."""
    meta = await read_metadata("global_metadata") or {}
    return {
        "databases": [
            {"db_id": db_id, "name": db.get("name"), "kb_type": db.get("kb_type")}
            for db_id, db in (meta.get("databases") or {}).items()
        ]
    }


@app.get("/api/knowledge/databases/{db_id}")
async def get_database(db_id: str):
    meta = await read_metadata("global_metadata") or {}
    db = (meta.get("databases") or {}).get(db_id)
    if db is None:
        raise HTTPException(status_code=404, detail=f"no knowledge base {db_id}")
    return {"db_id": db_id, "name": db.get("name"), "kb_type": db.get("kb_type")}
