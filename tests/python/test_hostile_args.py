"""A Python caller's arguments are outside input too: every wrong one is a Python
exception with a message, never a crash, a hang or a wrong value."""

import math

import pytest

import yuxi_config
from yuxi_config import Client, SegmentError


def test_segment_names_that_cannot_be_are_refused():
    for name in ("../etc/passwd", "a/b", "x" * 10000, "nul\0byte", "."):
        with pytest.raises((SegmentError, ValueError)):
            Client(name)
    with pytest.raises(TypeError):
        Client(42)  # type: ignore[arg-type]


def test_keys_of_any_shape_are_absent_not_errors(agent):
    c = Client(agent.segment)
    for key in ("", "k\0ey", "x" * 100000, "模型" * 1000, "\x1b[2J"):
        assert c.get(key) is None
        assert c.get_raw(key) is None
        assert c.metadata(key) is None
    for key in (None, 42, 4.2, ["embed_model"], {"k": 1}):
        with pytest.raises(TypeError):
            c.get_raw(key)  # type: ignore[arg-type]
    with pytest.raises((TypeError, UnicodeEncodeError)):
        c.get_raw("\ud800")


def test_timeouts_are_checked_and_bounded(agent):
    c = Client(agent.segment)
    rev = c.revision
    with pytest.raises(ValueError):
        c.wait_for_change(rev, math.nan)
    with pytest.raises(ValueError):
        c.wait_for_revision(rev, math.nan)
    # A revision already reached returns at once, whatever the timeout.
    assert c.wait_for_revision(rev, math.inf)
    assert c.wait_for_revision(rev, 1e300)
    assert c.wait_for_change(rev - 1, math.inf)
    # Negative means "do not wait".
    assert not c.wait_for_change(rev, -5)
    for bad in (-1, 2**64, 2**70):
        with pytest.raises(TypeError):
            c.wait_for_change(bad, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.wait_for_change(rev, "1")  # type: ignore[arg-type]


def test_snapshot_lookups_take_any_string(agent):
    snap = Client(agent.segment).snapshot()
    with pytest.raises(KeyError):
        snap["x" * 100000]
    assert snap.get("\0") is None
    assert "\x00" not in snap
    assert snap.keys_with_prefix("\xff" * 10) == []


@pytest.mark.skipif(not hasattr(yuxi_config, "DistributedLock"), reason="built without hiredis")
def test_lock_arguments_are_checked():
    from yuxi_config import DistributedLock

    with pytest.raises(ValueError):
        DistributedLock("x", timeout=math.nan, host="127.0.0.1", port=1)
    with pytest.raises(ValueError):
        DistributedLock("x", host="127.0.0.1", port=99999)
    with pytest.raises(TypeError):
        DistributedLock(None)  # type: ignore[arg-type]
