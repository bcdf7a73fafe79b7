"""``Config``: a drop-in for Yuxi-Know's ``Config`` (``src/config/app.py``) over yuxi-config.

    from yuxi_config import Config
    config = Config(model=TheirConfigModel)     # or Config(): every key, untyped
    config.embed_model                          # from the segment, typed and defaulted
    config["embed_model"] = "bge-m3"            # staged (attribute assignment too)
    config.save()                               # the staged changes, as one revision
    config.update({"top_k": 5})                 # staged and saved at once
    config.dump_config()                        # fields + _config_items, as the settings page wants
    config.add_custom_provider("ollama", {...}) # update_/delete_custom_provider, get_model_choices()

Reads come from the shared-memory segment at one revision (re-read when it moves), through
the model: defaults fill what the segment lacks, and a field whose default is a dict has the
segment's value merged over it (so a base.toml that names one provider keeps the others, as
upstream's loader does). Writes go, by ``CONFIG_MODE`` as upstream, to PostgreSQL through
``Admin`` (``database``) or to ``SAVE_DIR/config/base.toml`` through the file writer
(``file``: under an flock, atomic, only the keys written, a key written back to its default
removed from the file as upstream keeps only non-default fields); the agent publishes them.
Either way the value is checked against its key's JSON Schema first (``InvalidValue``), and
``save()`` waits, by default, until the local segment shows the change (read-your-write).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
import tomllib
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _native
from ._values import dump, fields, plain_value, to_json, validate

log = logging.getLogger("yuxi_config")

_MISSING = object()
_DELETE = object()


def _merge(base: Dict[str, Any], overlay: Dict[str, Any]) -> Dict[str, Any]:
    """``overlay`` deep-merged over a copy of ``base`` (tables merge, other values replace)."""
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _error(cls: type, kind: str, message: str) -> Exception:
    e = cls(message)
    e.kind = kind
    return e


class Config:
    """Yuxi-Know's ``Config``, distributed. ``model``: the pydantic class whose fields and
    defaults type the keys (``None``: every key of the segment, untyped). ``mode`` and
    ``save_dir`` default to ``CONFIG_MODE`` (``file``) and ``SAVE_DIR`` (else the model's
    ``save_dir`` default, else ``saves``), as upstream. ``value_schema``: file mode's schema
    file (default ``YUXI_CONFIG_VALUE_SCHEMA``, the agent's). ``wait``: what ``save()`` waits
    for by default (``"local"``, ``"fleet"`` or ``None``)."""

    def __init__(self, model: Any = None, *, client: Any = None, admin: Any = None,
                 mode: Optional[str] = None, save_dir: Optional[str] = None,
                 segment: Optional[str] = None, value_schema: Optional[str] = None,
                 wait: Optional[str] = "local", wait_timeout: float = 10.0) -> None:
        from . import Client  # the package's reader

        if model is not None and not isinstance(model, type):
            client, model = model, None  # Config(client), as before
        mode = (mode or os.environ.get("CONFIG_MODE") or "file").lower()
        if mode not in ("file", "database"):
            raise _error(_native.InvalidArgument, "usage",
                         f"CONFIG_MODE is file or database, not {mode!r}")
        info = {f.name: f for f in fields(model)} if model is not None else {}
        default_dir = info["save_dir"].default if "save_dir" in info else None
        s = object.__setattr__
        s(self, "_model", model)
        s(self, "_fields", info)
        s(self, "_mode", mode)
        s(self, "_save_dir", save_dir or os.environ.get("SAVE_DIR") or default_dir or "saves")
        s(self, "_segment", segment)
        s(self, "_client", client)
        s(self, "_client_cls", Client)
        s(self, "_admin", admin)
        s(self, "_value_schema", value_schema if value_schema is not None
          else os.environ.get("YUXI_CONFIG_VALUE_SCHEMA", ""))
        s(self, "_writers", {})
        s(self, "_wait", wait)
        s(self, "_wait_timeout", float(wait_timeout))
        s(self, "_staged", {})
        s(self, "_lock", threading.RLock())
        s(self, "_cache", (None, None, None))  # (revision, data, typed view)

    # --- where things are ---------------------------------------------------------------

    @property
    def config_file(self) -> str:
        return os.path.join(self._save_dir, "config", "base.toml")

    @property
    def custom_providers_file(self) -> str:
        return os.path.join(self._save_dir, "config", "custom_providers.toml")

    def _reader(self, required: bool = True) -> Any:
        """The segment's reader; None when there is no segment and either nothing requires
        one (a wait) or file mode can read the files themselves."""
        if self._client is None:
            name = self._segment or os.environ.get("YUXI_CONFIG_SEGMENT") or "yuxi-config"
            if not os.path.exists(os.path.join("/dev/shm", name)) and (
                    self._mode == "file" or not required):
                return None
            object.__setattr__(self, "_client", self._client_cls(self._segment))
        return self._client

    def _admin_(self) -> Any:
        if self._admin is None:
            from .admin import Admin
            object.__setattr__(self, "_admin", Admin.from_env(segment=self._segment))
        return self._admin

    def _writer(self, path: str) -> Any:
        w = self._writers.get(path)
        if w is None:
            w = _native.ConfigFileWriter(path, self._value_schema)
            self._writers[path] = w
        return w

    # --- reads ----------------------------------------------------------------------------

    def _read_files(self) -> Tuple[Any, Dict[str, Any]]:
        data: Dict[str, Any] = {}
        stamp = []
        for path in (self.config_file, self.custom_providers_file):
            try:
                with open(path, "rb") as f:
                    stamp.append(os.fstat(f.fileno()).st_mtime_ns)
                    data = _merge(data, tomllib.load(f))
            except FileNotFoundError:
                stamp.append(None)
        return ("files", tuple(stamp)), data

    def _data(self) -> Tuple[Any, Dict[str, Any]]:
        """Every config key at one revision, decoded."""
        reader = self._reader()
        if reader is None:
            return self._read_files()
        snap = reader.snapshot()
        if self._cache[0] == snap.revision:
            return snap.revision, self._cache[1]
        return snap.revision, {k: snap[k] for k in snap}

    def _view(self) -> Tuple[Dict[str, Any], Any]:
        """(data, typed instance or None), cached per revision."""
        with self._lock:
            revision, data = self._data()
            if self._cache[0] == revision and self._cache[2] is not None:
                return self._cache[1], self._cache[2]
            typed = self._typed(data) if self._model is not None else None
            object.__setattr__(self, "_cache", (revision, data, typed))
            return data, typed

    def _typed(self, data: Dict[str, Any]) -> Any:
        values = {}
        for name, f in self._fields.items():
            if name in data:
                v = data[name]
                if isinstance(f.default, dict) and isinstance(v, dict):
                    v = _merge(plain_value(f.default), v)
                values[name] = v
        for _ in range(len(values) + 1):
            try:
                return validate(self._model, values)
            except Exception as e:  # a value the model refuses: its default, and a warning
                bad = {loc[0] for loc, _ in _errors(e) if loc and loc[0] in values}
                if not bad:
                    raise
                for name in bad:
                    log.warning("config %r does not fit the model; using its default", name)
                    values.pop(name)
        return validate(self._model, {})

    def _value(self, name: str) -> Any:
        with self._lock:
            staged = self._staged.get(name, _MISSING)
        if staged is _DELETE:
            return self._fields[name].default if name in self._fields else _MISSING
        if staged is not _MISSING:
            return staged
        data, typed = self._view()
        if typed is not None and name in self._fields:
            return getattr(typed, name)
        return data.get(name, _MISSING)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = self._value(name)
        if value is _MISSING:
            raise AttributeError(f"no configuration key {name!r}")
        return value

    def __getitem__(self, key: str) -> Any:
        value = self._value(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._value(key)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._value(key) is not _MISSING

    def dump(self) -> Dict[str, Any]:
        """Every key, as plain data (staged changes included)."""
        data, typed = self._view()
        out = dict(data)
        if typed is not None:
            out.update(dump(typed))
        with self._lock:
            for k, v in self._staged.items():
                if v is _DELETE:
                    out.pop(k, None)
                else:
                    out[k] = plain_value(v)
        return out

    # --- writes ---------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        self[name] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if self._model is not None and key not in self._fields:
            log.warning("unknown config key %r: staged anyway", key)
        with self._lock:
            self._staged[key] = value

    def __delitem__(self, key: str) -> None:
        with self._lock:
            self._staged[key] = _DELETE

    def discard(self, key: Optional[str] = None) -> None:
        """Forgets the staged change of ``key`` (of every key if None)."""
        with self._lock:
            if key is None:
                self._staged.clear()
            else:
                self._staged.pop(key, None)

    @property
    def staged(self) -> Dict[str, Any]:
        with self._lock:
            return {k: (None if v is _DELETE else v) for k, v in self._staged.items()}

    def _is_default(self, key: str, value: Any) -> bool:
        f = self._fields.get(key)
        return f is not None and not f.required and plain_value(value) == plain_value(f.default)

    def save(self, *, wait: Any = _MISSING, timeout: Optional[float] = None) -> Optional[int]:
        """Writes the staged changes as one revision (database mode: one transaction; file
        mode: one rewrite of base.toml) and returns the revision (file mode: the segment's
        once it shows them, or None). A key set back to its model default is removed (from
        the file, or the database), as upstream keeps only fields that differ from it.
        ``InvalidValue`` (nothing written) if a value breaks its key's schema."""
        wait = self._wait if wait is _MISSING else wait
        with self._lock:
            staged = dict(self._staged)
        if not staged:
            return None
        writes = [(k, None if v is _DELETE else plain_value(v),
                   v is _DELETE or self._is_default(k, v)) for k, v in staged.items()]
        if self._mode == "database":
            admin = self._admin_()
            revision, _changed = admin.write_many(writes)
            if wait is not None and self._reader(required=False) is not None:
                admin.wait(revision, wait, timeout if timeout is not None else self._wait_timeout)
        else:
            self._writer(self.config_file).apply(
                [([k], None if delete else to_json(v)) for k, v, delete in writes])
            revision = self._await_files(writes, wait, timeout)
        with self._lock:
            for k, v in staged.items():
                if self._staged.get(k, _MISSING) is v:
                    del self._staged[k]
        return revision

    def update(self, other: Dict[str, Any], **kwargs: Any) -> Optional[int]:
        """Stages every key of ``other`` (a typed Config skips keys its model lacks, as
        upstream does) and saves them at once."""
        with self._lock:
            for k, v in other.items():
                if self._model is not None and k not in self._fields:
                    log.warning("unknown config key %r: skipped", k)
                    continue
                self._staged[k] = v
        return self.save(**kwargs)

    async def asave(self, **kwargs: Any) -> Optional[int]:
        """The awaitable twin of ``save`` (runs in the default executor)."""
        import asyncio
        import functools
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.save, **kwargs))

    async def aupdate(self, other: Dict[str, Any], **kwargs: Any) -> Optional[int]:
        """The awaitable twin of ``update``."""
        import asyncio
        import functools
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.update, other, **kwargs))

    def _await_files(self, writes: List[Tuple[str, Any, bool]], wait: Any,
                     timeout: Optional[float]) -> Optional[int]:
        """File mode's read-your-write: until the segment shows what was written."""
        reader = self._reader(required=False)
        if wait is None or reader is None:
            return None

        def shown() -> bool:
            snap = reader.snapshot()
            for k, v, delete in writes:
                now = snap[k] if k in snap else _MISSING
                if (now is not _MISSING) if delete else (now != v):
                    return False
            return True

        return self._await(shown, timeout)

    def _await(self, done: Callable[[], bool], timeout: Optional[float]) -> int:
        reader = self._reader(required=False)
        deadline = time.monotonic() + (timeout if timeout is not None else self._wait_timeout)
        while True:
            revision = reader.revision
            if done():
                return revision
            left = deadline - time.monotonic()
            if left <= 0:
                raise _error(_native.WaitTimeout, "timeout",
                             f"the write is done, but segment {reader.segment!r} does not show "
                             f"it yet (revision {revision}); is its agent running on "
                             f"{self.config_file}?")
            reader.wait_for_change(revision, min(left, 0.5))

    # --- the settings page ----------------------------------------------------------------

    def dump_config(self) -> Dict[str, Any]:
        """What upstream's settings API returns: every field's value (models as dicts) and
        ``_config_items``: for each persisted field its description (``des``), default,
        type name and ``exclude`` flag."""
        out = self.dump()
        items = {}
        for name, f in self._fields.items():
            if not f.exclude:
                items[name] = {"des": f.description, "default": plain_value(f.default),
                               "type": f.type_name, "exclude": f.exclude}
        out["_config_items"] = items
        return out

    def provider_status(self) -> Dict[str, bool]:
        """Which model providers are usable, as upstream decides it: a provider whose ``env``
        is ``NO_API_KEY``, or whose variable is set, or a custom one."""
        out = {}
        for provider, info in (self.get("model_names") or {}).items():
            info = plain_value(info)
            env = info.get("env") or ""
            out[provider] = env == "NO_API_KEY" or bool(os.environ.get(env)) or bool(info.get("custom"))
        return out

    def get_model_choices(self) -> List[str]:
        """``provider/model`` for every model of every usable provider."""
        status = self.provider_status()
        return [f"{p}/{m}" for p, info in (self.get("model_names") or {}).items()
                if status.get(p) for m in plain_value(info).get("models", [])]

    def get_custom_providers(self) -> Dict[str, Any]:
        return {p: info for p, info in (self.get("model_names") or {}).items()
                if plain_value(info).get("custom")}

    def add_custom_provider(self, provider_id: str, provider_data: Dict[str, Any]) -> bool:
        """A custom model provider (``custom`` set, ``${VAR}`` unwrapped); False if the id
        is taken or the write fails (logged), as upstream."""
        return self._provider(provider_id, provider_data, lambda cur: cur is None, "add")

    def update_custom_provider(self, provider_id: str, provider_data: Dict[str, Any]) -> bool:
        """False unless the provider exists and is custom."""
        return self._provider(provider_id, provider_data,
                              lambda cur: cur is not None and bool(cur.get("custom")), "update")

    def delete_custom_provider(self, provider_id: str) -> bool:
        return self._provider(provider_id, None,
                              lambda cur: cur is not None and bool(cur.get("custom")), "delete")

    def _provider(self, provider_id: str, data: Optional[Dict[str, Any]],
                  allowed: Callable[[Optional[Dict[str, Any]]], bool], what: str) -> bool:
        if data is not None:
            data = dict(plain_value(data))
            env = data.get("env")
            if isinstance(env, str) and env.startswith("${") and env.endswith("}"):
                data["env"] = env[2:-1]
            data["custom"] = True
        try:
            if self._mode == "database":
                return self._provider_in_database(provider_id, data, allowed, what)
            current = plain_value((self.get("model_names") or {}).get(provider_id))
            if not allowed(current):
                log.error("cannot %s custom provider %r", what, provider_id)
                return False
            self._writer(self.custom_providers_file).apply(
                [(["model_names", provider_id], None if data is None else to_json(data))])
            if self._wait is not None and self._reader(required=False) is not None:
                self._await(lambda: (provider_id in (self._data()[1].get("model_names") or {}))
                            == (data is not None), None)
            return True
        except _native.Error as e:
            log.error("cannot %s custom provider %r: %s", what, provider_id, e)
            return False

    def _provider_in_database(self, provider_id: str, data: Optional[Dict[str, Any]],
                              allowed: Callable[[Optional[Dict[str, Any]]], bool],
                              what: str) -> bool:
        admin = self._admin_()
        for _ in range(5):  # compare-and-set: another writer in between means read again
            held = admin.get("model_names")
            providers, revision = (held[0] or {}, held[1]) if held else ({}, 0)
            if not allowed(providers.get(provider_id)):
                log.error("cannot %s custom provider %r", what, provider_id)
                return False
            if data is None:
                providers.pop(provider_id, None)
            else:
                providers[provider_id] = data
            try:
                rev = admin.set("model_names", providers, if_revision=revision)
            except _native.Conflict:
                continue
            if self._wait is not None and self._reader(required=False) is not None:
                admin.wait(rev, self._wait, self._wait_timeout)
            return True
        log.error("cannot %s custom provider %r: model_names keeps changing", what, provider_id)
        return False


def _errors(e: Exception):
    from ._values import validation_errors
    return validation_errors(e)
