"""yuxi_config: configuration and knowledge-base metadata from yuxi-config's shared memory.

The sidecar ``yuxi-config-agent`` keeps a shared-memory segment up to date; this module
reads it in-process, with no lock, no system call and no network hop::

    from yuxi_config import Client, Config, Admin, load_global_metadata, DistributedLock

    cfg = Client()                      # $YUXI_CONFIG_SEGMENT or "yuxi-config"
    cfg.get("embed_model")              # decoded JSON, or None when absent
    cfg.get("top_k", 10)                # with a default
    cfg.metadata("global_metadata")     # a metadata document, decoded
    snap = cfg.snapshot()               # many keys, one revision
    cfg.wait_for_change(cfg.revision, timeout=5.0)

Writes: ``Admin`` (yuxi_config/admin.py) writes PostgreSQL through the C++ admin library,
and ``Config`` (yuxi_config/drop_in.py) is a drop-in for Yuxi-Know's ``Config``: typed reads
from the segment, ``config[key] = v`` then ``save()``, ``update({...})``, custom providers.

Values returned by ``get`` and ``metadata`` are decoded once per change and then shared
between callers: treat them as read-only (``copy.deepcopy`` one to modify it).
``load_global_metadata`` returns a fresh copy, since callers of the seed's helper modify
what it returns.

Missing keys give ``None`` (``get``, ``metadata``) or ``KeyError`` (``snapshot[key]``,
``Config[key]``) / ``AttributeError`` (``config.key``). Opening a segment that is absent,
unreadable or of another layout raises ``SegmentError``, whose ``kind`` says which.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

from . import _native
from ._native import Client as _NativeClient
from ._native import SegmentError

__all__ = [
    "Admin",
    "Client",
    "Config",
    "ConfigFileWriter",
    "Conflict",
    "Error",
    "Health",
    "InvalidArgument",
    "InvalidValue",
    "NotFound",
    "Rejected",
    "SegmentError",
    "Snapshot",
    "Unavailable",
    "WaitTimeout",
    "load_global_metadata",
    "DistributedLock",
    "LockError",
]

_MISSING = object()


@dataclass(frozen=True)
class Health:
    """What the segment says about its writer (see the C++ ``Health``)."""

    revision: int
    heartbeat_age: float  # seconds since the agent's last heartbeat
    writer_alive: bool  # a process holds the segment's writer lock
    source_state: str  # starting, ok, degraded, stale or stopped
    source_state_age: float
    entries: int
    segment_bytes: int
    writer_pid: int
    retired: bool

    def fresh(self, max_age: float = 5.0) -> bool:
        """The writer is alive and beat within ``max_age`` seconds."""
        return self.writer_alive and self.heartbeat_age <= max_age


class Snapshot(Mapping[str, Any]):
    """A consistent view of the segment at one revision: a read-only mapping of the
    ``config`` namespace, plus ``metadata(name)``."""

    __slots__ = ("_native",)

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def revision(self) -> int:
        return self._native.revision

    def __getitem__(self, key: str) -> Any:
        value = self._native.get(key)
        if value is None and self._native.get_raw(key) is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = self._native.get(key)
        return default if value is None else value

    def get_raw(self, key: str) -> Optional[str]:
        return self._native.get_raw(key)

    def metadata(self, name: str) -> Any:
        return self._native.get(name, metadata=True)

    def _keys(self) -> list:
        return self._native.keys()

    def keys_with_prefix(self, prefix: str, metadata: bool = False) -> list:
        return self._native.keys(prefix, metadata)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._native.get_raw(key) is not None


class Client:
    """Reads the segment ``segment`` (default: ``$YUXI_CONFIG_SEGMENT`` or
    ``"yuxi-config"``). Raises ``SegmentError`` if it cannot be opened."""

    __slots__ = ("_native", "get", "metadata")

    def __init__(self, segment: Optional[str] = None) -> None:
        self._native = _NativeClient(segment or "")
        #: get(key, default=None) -> the decoded value of a config key, or default.
        self.get = self._native.getter(False)
        #: metadata(name, default=None) -> the decoded metadata document, or default.
        self.metadata = self._native.getter(True)

    @property
    def segment(self) -> str:
        return self._native.segment

    def get_raw(self, key: str) -> Optional[str]:
        """The JSON text of ``key``, or None."""
        return self._native.get_raw(key)

    def metadata_raw(self, name: str) -> Optional[str]:
        return self._native.get_raw(name, True)

    @property
    def revision(self) -> int:
        """The revision of the newest change the segment reflects."""
        return self._native.revision

    def snapshot(self) -> Snapshot:
        return Snapshot(self._native.snapshot())

    def keys(self, prefix: str = "", metadata: bool = False) -> list:
        return self._native.snapshot().keys(prefix, metadata)

    def wait_for_change(self, revision: int, timeout: float) -> bool:
        """Sleeps (without the GIL) until the revision differs from ``revision`` or
        ``timeout`` seconds pass; returns whether it moved."""
        return self._native.wait_for_change(revision, timeout)

    def wait_for_revision(self, revision: int, timeout: float) -> bool:
        """Sleeps until the revision is at least ``revision`` (read-your-write)."""
        return self._native.wait_for_revision(revision, timeout)

    def health(self) -> Health:
        return Health(**self._native.health())


def _segment_exists(segment: Optional[str]) -> bool:
    name = segment or os.environ.get("YUXI_CONFIG_SEGMENT") or "yuxi-config"
    return os.path.exists(os.path.join("/dev/shm", name))


def load_global_metadata(work_dir: str, key: str = "global_metadata",
                         segment: Optional[str] = None) -> dict:
    """The seed's ``DistributedConfig.load_global_metadata``: the metadata document
    ``key`` as a fresh dict. From the segment when the agent runs (any mode); from
    ``work_dir/<key>.json`` when ``CONFIG_MODE`` is ``file`` and there is no segment.
    An absent document is ``{}``, as a missing file was. In database mode without a
    segment it raises ``SegmentError``: the agent must run beside the API."""
    mode = os.environ.get("CONFIG_MODE", "file").lower()
    if mode == "file" and not _segment_exists(segment):
        path = os.path.join(work_dir, f"{key}.json")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}
    raw = Client(segment).metadata_raw(key)
    return json.loads(raw) if raw is not None else {}


try:  # the lock needs hiredis; the module builds without it
    from ._native import DistributedLock, LockError  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    class LockError(RuntimeError):  # type: ignore[no-redef]
        """Raised by DistributedLock."""

    class DistributedLock:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise LockError("this build of yuxi_config has no Redis support")


from .admin import (Admin, Conflict, Error, InvalidArgument, InvalidValue,  # noqa: E402
                    NotFound, Rejected, Unavailable, WaitTimeout)
from .drop_in import Config  # noqa: E402

ConfigFileWriter = _native.ConfigFileWriter
