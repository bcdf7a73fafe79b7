"""Yuxi-Know's settings routes over yuxi_config's drop-in ``Config``: the settings page
reads the configuration (``GET /api/config``), saves changes (``POST /api/config``) and adds
a custom model provider (``POST /api/config/providers``), as Yuxi-Know's system router does
with its own ``Config``. Reads come from the shared-memory segment (no I/O); writes go to
PostgreSQL (``CONFIG_MODE=database``) or to ``SAVE_DIR/config/base.toml`` (``file``), are
checked against the keys' JSON Schemas first, and reach every pod through its agent.

``YUXI_EXAMPLE_MODEL=module:Class`` names the pydantic model that types the keys (Yuxi-Know's
``Config`` class); without it every key of the segment is served untyped. Run:

    CONFIG_MODE=database DATABASE_URL=... YUXI_EXAMPLE_MODEL=myapp.config:Config \\
      uvicorn settings_app:app --port 8000
"""

import importlib
import os

from fastapi import Body, FastAPI, HTTPException

from yuxi_config import Config, Error, InvalidValue


def _model():
    spec = os.environ.get("YUXI_EXAMPLE_MODEL")
    if not spec:
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


config = Config(model=_model())
app = FastAPI(title="yuxi-config settings")


@app.get("/api/config")
async def get_config():
    """The settings page's data: every field and ``_config_items`` (as upstream)."""
    return config.dump_config()


@app.post("/api/config")
async def update_config(items: dict = Body(...)):
    """Saves ``items`` as one revision; 422 naming the key, JSON pointer and rule if a value
    breaks its schema (nothing is written then)."""
    try:
        revision = await config.aupdate(items)
    except InvalidValue as e:
        config.discard()
        raise HTTPException(status_code=422,
                            detail={"key": e.key, "path": e.path, "reason": e.reason})
    except Error as e:
        config.discard()
        raise HTTPException(status_code=503, detail=str(e))
    return {"revision": revision, "config": config.dump_config()}


@app.post("/api/config/providers")
async def add_provider(body: dict = Body(...)):
    """Adds a custom provider: ``{"provider_id": ..., "provider_data": {...}}``."""
    provider_id = body.get("provider_id")
    data = body.get("provider_data")
    if not isinstance(provider_id, str) or not isinstance(data, dict):
        raise HTTPException(status_code=400, detail="provider_id and provider_data are required")
    import asyncio
    ok = await asyncio.get_running_loop().run_in_executor(
        None, config.add_custom_provider, provider_id, data)
    if not ok:
        raise HTTPException(status_code=400, detail=f"cannot add provider {provider_id!r}")
    return {"providers": sorted(config.get_custom_providers())}
