"""Writing configuration from Python: ``Admin``, over the C++ admin library (one
implementation of every write, shared with ``yuxi-configctl``).

    from yuxi_config import Admin, InvalidValue

    admin = Admin.from_env()                 # DATABASE_URL (REDIS_* for wait="fleet")
    rev = admin.set("embed_model", "bge-m3", wait="local")
    rev = admin.set_many({"top_k": 10, "enable_reranker": True})   # one transaction
    admin.delete("old_key")
    admin.history("embed_model")             # newest first
    admin.rollback(rev)                      # every key back to revision `rev`
    admin.wait(rev, "fleet", timeout=30)     # every live agent has it
    await admin.aset("embed_model", "bge-m3")    # async twins: aset, aset_many, ...

Values are Python objects (dict, list, str, numbers, bool, None, pydantic models). Blocking
calls release the GIL; an Admin holds one connection and runs one call at a time (its
async twins run in the default executor). Errors are ``yuxi_config.Error`` subclasses with
``kind``: ``Conflict`` (compare-and-set), ``InvalidValue`` (``.path``, ``.reason``: the value
breaks its key's JSON Schema; nothing was written), ``Unavailable``, ``WaitTimeout`` and
``Rejected`` (the write is committed; ``.pods``), ``NotFound``, ``InvalidArgument`` (also a
``ValueError``).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from . import _native
from ._values import json_schema, to_json

Error = _native.Error
InvalidArgument = _native.InvalidArgument
Conflict = _native.Conflict
InvalidValue = _native.InvalidValue
Unavailable = _native.Unavailable
WaitTimeout = _native.WaitTimeout
Rejected = _native.Rejected
NotFound = _native.NotFound

_SCOPES = ("local", "fleet")


def _check_wait(wait: Optional[str]) -> None:
    if wait is not None and wait not in _SCOPES:
        raise InvalidArgument(f'wait is "local", "fleet" or None, not {wait!r}')


def _async(method):
    """The coroutine twin of a blocking method: it runs in the default executor."""

    @functools.wraps(method)
    async def twin(self, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(method, self, *args, **kwargs))

    twin.__doc__ = f"The awaitable twin of ``{method.__name__}``."
    return twin


class Admin:
    """Writes PostgreSQL's configuration tables (database mode).

    ``dsn``: a libpq or SQLAlchemy URL (default: ``DATABASE_URL``, else
    ``DATABASE_URL_SYNC``). ``segment``: the local segment ``wait="local"`` watches (default
    ``YUXI_CONFIG_SEGMENT`` or ``yuxi-config``). ``redis``: ``{"host", "port", "password",
    "db"}`` for ``wait="fleet"`` (default: ``REDIS_*``). Connects at once: ``Unavailable`` if
    the database cannot be reached."""

    def __init__(self, dsn: Optional[str] = None, *, segment: Optional[str] = None,
                 redis: Optional[Mapping[str, Any]] = None, stale_after: float = 10.0,
                 wait_timeout: float = 10.0) -> None:
        r = dict(redis or {})
        unknown = set(r) - {"host", "port", "password", "db"}
        if unknown:
            raise InvalidArgument(f"unknown redis settings: {sorted(unknown)}")
        self._native = _native.Admin(dsn or "", segment or "", r.get("host"), r.get("port"),
                                     r.get("password"), r.get("db"), float(stale_after))
        self._wait_timeout = float(wait_timeout)

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Admin":
        return cls(None, **kwargs)

    @property
    def database(self) -> str:
        """The database, as messages show it (password replaced by ``***``)."""
        return self._native.database

    @property
    def revision(self) -> int:
        """The database's revision."""
        return self._native.revision()

    def _after(self, revision: int, changed: bool, wait: Optional[str],
               timeout: Optional[float]) -> int:
        if wait is not None:
            self._native.wait(revision, wait, self._timeout(wait, timeout))
        return revision

    def _timeout(self, scope: str, timeout: Optional[float]) -> float:
        if timeout is not None:
            return float(timeout)
        return self._wait_timeout if scope == "local" else max(self._wait_timeout, 30.0)

    # --- writes ---------------------------------------------------------------------------

    def set(self, key: str, value: Any, *, category: Optional[str] = None,
            if_revision: Optional[int] = None, wait: Optional[str] = None,
            timeout: Optional[float] = None, metadata: bool = False) -> int:
        """Writes ``value`` to ``key``; returns the revision (the key's last change if it
        already held that value). ``if_revision``: only if the key's last change is at most
        that (0: only if absent), else ``Conflict``. ``wait``: ``"local"`` or ``"fleet"``."""
        _check_wait(wait)
        revision, changed = self._native.set(key, to_json(value), metadata, category, if_revision)
        return self._after(revision, changed, wait, timeout)

    def set_many(self, values: Mapping[str, Any], *, wait: Optional[str] = None,
                 timeout: Optional[float] = None, metadata: bool = False,
                 if_revisions: Optional[Mapping[str, int]] = None) -> int:
        """Every key of ``values`` in one transaction: readers see them all at once, at the
        revision returned. A value of ``None`` is written as JSON null; delete with
        ``delete``."""
        _check_wait(wait)
        cas = dict(if_revisions or {})
        items = [(k, to_json(v), metadata, None, cas.get(k)) for k, v in values.items()]
        revision, changed = self._native.set_many(items)
        return self._after(revision, changed, wait, timeout)

    def write_many(self, writes: Iterable[Tuple[str, Any, bool]], *, wait: Optional[str] = None,
                   timeout: Optional[float] = None) -> Tuple[int, bool]:
        """Sets and deletes in one transaction: ``(key, value, delete)`` triples. Returns
        ``(revision, changed)``."""
        _check_wait(wait)
        items = [(k, None if delete else to_json(v), False, None, None)
                 for k, v, delete in writes]
        revision, changed = self._native.set_many(items)
        self._after(revision, changed, wait, timeout)
        return revision, changed

    def delete(self, key: str, *, if_revision: Optional[int] = None, wait: Optional[str] = None,
               timeout: Optional[float] = None, metadata: bool = False) -> int:
        """Deletes ``key``; returns the revision (an absent key: its last change)."""
        _check_wait(wait)
        revision, changed = self._native.remove(key, metadata, if_revision)
        return self._after(revision, changed, wait, timeout)

    def rollback(self, to_revision: int, *, key: Optional[str] = None, metadata: bool = False,
                 wait: Optional[str] = None, timeout: Optional[float] = None) -> int:
        """Every key changed after ``to_revision`` (or only ``key``) back to its value then,
        as one write; ``NotFound`` if the log was trimmed past it."""
        _check_wait(wait)
        revision, changed, _ = self._native.rollback(to_revision, key, metadata)
        return self._after(revision, changed, wait, timeout)

    # --- reads of the database --------------------------------------------------------------

    def get(self, key: str, *, metadata: bool = False) -> Optional[Tuple[Any, int]]:
        """``(value, revision)`` as the database holds the key now, or None: the revision to
        pass as ``if_revision`` for a read-modify-write."""
        held = self._native.get(key, metadata)
        if held is None:
            return None
        text, _category, revision = held
        return json.loads(text), revision

    def history(self, key: str, *, metadata: bool = False, limit: int = 20) -> List[Dict[str, Any]]:
        """The key's changes, newest first: revision, changed_at, changed_by, op (U or D),
        old_value, new_value (decoded), category. ``NotFound`` if none."""
        rows = self._native.history(key, metadata, limit)
        for r in rows:
            for f in ("old_value", "new_value"):
                r[f] = None if r[f] is None else json.loads(r[f])
        return rows

    def wait(self, revision: int, scope: str = "local", timeout: Optional[float] = None) -> None:
        """Until the local segment (``"local"``) or every live agent (``"fleet"``) shows
        ``revision``: ``WaitTimeout``, or ``Rejected`` naming the agents that refused a value
        up to it."""
        if scope not in _SCOPES:
            raise InvalidArgument(f'scope is "local" or "fleet", not {scope!r}')
        self._native.wait(revision, scope, self._timeout(scope, timeout))

    def check(self, key: str, value: Any, *, metadata: bool = False) -> None:
        """What ``set`` would refuse, without writing: ``InvalidValue`` or
        ``InvalidArgument``."""
        self._native.check_value(key, to_json(value), metadata)

    def agents(self) -> List[Dict[str, Any]]:
        """The fleet's reports (Redis): pod, role, state, revision, heartbeat_age, live,
        rejected."""
        return self._native.agents()

    # --- value schemas ----------------------------------------------------------------------

    def set_value_schema(self, pattern: str, schema: Any, *, metadata: bool = False,
                         force: bool = False) -> None:
        """The JSON Schema of the keys ``pattern`` names (a key, or with ``*``): a dict, or a
        pydantic model class. Refused if a current value breaks it, unless ``force``."""
        if isinstance(schema, type):
            schema = json_schema(schema)
        self._native.set_value_schema(pattern, to_json(schema), metadata, force)

    def value_schema(self, pattern: str, *, metadata: bool = False) -> Optional[Dict[str, Any]]:
        text = self._native.value_schema(pattern, metadata)
        return None if text is None else json.loads(text)

    def value_schemas(self) -> List[Dict[str, Any]]:
        rows = self._native.value_schemas()
        for r in rows:
            r["schema"] = json.loads(r["schema"])
        return rows

    def delete_value_schema(self, pattern: str, *, metadata: bool = False) -> bool:
        return self._native.remove_value_schema(pattern, metadata)

    def import_model(self, model: Any, *, force: bool = False) -> List[str]:
        """One schema per field of a pydantic model (a class, or its JSON Schema as a
        dict), ``$defs`` inlined; returns the patterns written."""
        schema = json_schema(model) if isinstance(model, type) else model
        return self._native.import_value_schemas(to_json(schema), force)

    # --- async twins ------------------------------------------------------------------------

    aset = _async(set)
    aset_many = _async(set_many)
    awrite_many = _async(write_many)
    adelete = _async(delete)
    arollback = _async(rollback)
    aget = _async(get)
    ahistory = _async(history)
    await_revision = _async(wait)
    acheck = _async(check)
