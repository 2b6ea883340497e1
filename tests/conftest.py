"""Shared fixtures of the core's test suite.

Test modules cannot import this file (pytest runs in importlib mode), so the helpers reach
them as fixtures:

- ``space``: a small space (capacity 64), so that filling it is cheap, once without and once
  with a subscriber (the hot paths and the full paths);
- ``events``: every event of ``space``, recorded by a global subscriber at ``Priority.LAST``;
- ``unchanged``: a context manager proving that a failed call changed nothing observable;
- ``install``: adds fake entry points (``tests/plugin_fakes.py``) to the installed ones.
"""

from __future__ import annotations

import importlib.metadata
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from ioasid_core import (
    Event,
    IoasidSet,
    IoasidSpace,
    NotFoundError,
    Priority,
    SetType,
)
from ioasid_core.markers import ENTRY_POINT_GROUP
from ioasid_core.plugins import BLOCK_ENV

SMALL_CAPACITY = 64

Unchanged = Callable[..., AbstractContextManager[None]]

# The event record of each watched space (see ``space`` and ``events``).
_WATCHED: weakref.WeakKeyDictionary[IoasidSpace, list[Event]] = weakref.WeakKeyDictionary()


def snapshot(
    space: IoasidSpace,
    sets: Iterable[IoasidSet],
    *,
    ids: Iterable[int] = (),
    spids: Iterable[tuple[IoasidSet, int]] = (),
) -> dict[str, object]:
    """Everything a caller can observe without changing it.

    The space's capacity, ``available`` and active allocator; each set's attributes, count and
    IDs (and, for an MM set, what ``find_mm_set`` answers for its token); each ID's state,
    private data and owner (for every ID of the sets and every ID in ``ids``, absent ones
    recorded as such); the answer of ``find_by_spid`` for each ``(set, spid)``.
    """
    snap: dict[str, object] = {
        "capacity": space.capacity,
        "available": space.available,
        "active_allocator": space.active_allocator,
    }
    probe = set(ids)
    for s in sets:
        probe.update(s.ioasids())
        snap[f"set {s.id}"] = (s.id, s.token, s.type, s.quota, s.count, s.ioasids())
        if s.type is SetType.MM:
            snap[f"mm set of set {s.id}"] = space.find_mm_set(s.token)
    for i in sorted(probe):
        try:
            snap[f"id {i:#x}"] = (space.state(i), space.find(None, i), space.find_set(i))
        except NotFoundError:
            snap[f"id {i:#x}"] = "absent"
    for s, spid in spids:
        try:
            snap[f"spid {spid:#x} in set {s.id}"] = space.find_by_spid(s, spid)
        except NotFoundError:
            snap[f"spid {spid:#x} in set {s.id}"] = "absent"
    return snap


@contextmanager
def _unchanged(
    space: IoasidSpace,
    *sets: IoasidSet,
    ids: Iterable[int] = (),
    spids: Iterable[tuple[IoasidSet, int]] = (),
) -> Iterator[None]:
    """Assert that the body changes nothing observable in ``space`` and emits no event.

    Use it around ``pytest.raises``: ``with unchanged(space, s), pytest.raises(E): ...``.
    Events are checked when the space is watched (the ``observed`` space, or ``events``); the
    helper subscribes nothing itself, so that a quiet space keeps its hot paths in the body.
    """
    ids = list(ids)
    spids = list(spids)
    before = snapshot(space, sets, ids=ids, spids=spids)
    watched = _WATCHED.get(space)
    already = len(watched) if watched is not None else 0
    yield
    after = snapshot(space, sets, ids=ids, spids=spids)
    assert after == before
    if watched is not None:
        assert watched[already:] == []


@pytest.fixture(params=["quiet", "observed"])
def space(request: pytest.FixtureRequest) -> IoasidSpace:
    """A small space: 64 IDs; every test using it runs twice.

    ``quiet``: nothing subscribes, so the space may take its hot paths. ``observed``: a global
    subscriber records every event (for ``unchanged``), so every call takes the full path.
    The rules are the same.
    """
    sp = IoasidSpace(capacity=SMALL_CAPACITY)
    if request.param == "observed":
        seen: list[Event] = []
        sp.subscribe(seen.append, priority=Priority.LAST)
        _WATCHED[sp] = seen
    return sp


@pytest.fixture
def events(space: IoasidSpace) -> list[Event]:
    """Every event ``space`` emits from now on (a global subscriber, lowest priority)."""
    seen: list[Event] = []
    space.subscribe(seen.append, priority=Priority.LAST)
    _WATCHED.setdefault(space, seen)
    return seen


@pytest.fixture
def unchanged() -> Unchanged:
    """The ``unchanged(space, *sets, ids=..., spids=...)`` context manager."""
    return _unchanged


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``install(*entry_points)``: fake plugins added to the real ones, for this test (a
    forked pool worker inherits them)."""
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    real = importlib.metadata.entry_points

    def install(*fakes: object) -> None:
        def entry_points(*, group: str) -> list[object]:
            found: list[object] = list(real(group=group))
            return [*found, *fakes] if group == ENTRY_POINT_GROUP else found

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    return install
