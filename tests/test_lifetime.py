"""Lifetime: free, get, put, FREE_PENDING, deferred reclaim and ``state()``."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core import (
    AccessDeniedError,
    BusyError,
    Event,
    EventKind,
    IoasidSpace,
    IoasidState,
    NotFoundError,
)

Unchanged = Callable[..., AbstractContextManager[None]]


class Payload:
    """Private data that can be watched with a weak reference."""


def _frees(events: list[Event], ioasid: int) -> int:
    return sum(1 for e in events if e.kind is EventKind.FREE and e.ioasid == ioasid)


def test_free_of_an_unreferenced_id_reclaims_it_at_once(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.free(s, i)
    assert _frees(events, i) == 1
    assert s.count == 0
    assert s.ioasids() == []
    for call in (space.state, space.find_set):
        with pytest.raises(NotFoundError):
            call(i)
    with pytest.raises(NotFoundError):
        space.find(None, i)
    assert space.alloc(s, 0, 63) == i


def test_free_with_references_left_goes_free_pending(
    space: IoasidSpace, events: list[Event], unchanged: Unchanged
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="d")
    space.get(s, i)
    space.free(s, i)
    assert space.state(i) is IoasidState.FREE_PENDING
    assert _frees(events, i) == 1  # FREE is sent when the owner frees, not at reclaim
    assert s.count == 1
    assert space.find(s, i) == "d"
    with unchanged(space, s), pytest.raises(BusyError):
        space.get(s, i)
    with unchanged(space, s), pytest.raises(BusyError):
        space.get(None, i)
    assert space.put(s, i) is True
    assert _frees(events, i) == 1
    assert s.count == 0
    with pytest.raises(NotFoundError):
        space.state(i)


def test_put_returns_false_until_the_last_reference_goes(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.get(s, i)
    space.get(None, i)
    space.free(s, i)
    assert space.put(s, i) is False
    assert space.state(i) is IoasidState.FREE_PENDING
    assert space.put(None, i) is True
    with pytest.raises(NotFoundError):
        space.state(i)


def test_second_free_of_a_pending_id_is_a_no_op(space: IoasidSpace, events: list[Event]) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.get(s, i)
    space.get(s, i)
    space.free(s, i)
    events.clear()
    space.free(s, i)  # neither an event nor a dropped reference
    space.free(None, i)
    assert events == []
    assert space.put(s, i) is False
    assert space.state(i) is IoasidState.FREE_PENDING
    assert space.put(s, i) is True


def test_put_of_the_last_reference_without_free_reclaims_and_emits_free_once(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.get(s, i)
    assert space.put(s, i) is False
    assert space.state(i) is IoasidState.IDLE
    assert _frees(events, i) == 0
    assert space.put(s, i) is True
    assert _frees(events, i) == 1
    assert s.count == 0


def test_free_after_reclaim_is_not_found(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.free(s, i)
    with unchanged(space, s, ids=[i]), pytest.raises(NotFoundError):
        space.free(s, i)


@pytest.mark.parametrize("method", ["free", "get", "put"])
@pytest.mark.parametrize("use_set", [True, False], ids=["set", "no-set"])
def test_free_get_put_of_an_unknown_id_is_not_found(
    space: IoasidSpace, unchanged: Unchanged, method: str, use_set: bool
) -> None:
    s = space.create_set()
    space.alloc(s, 0, 63)
    call = getattr(space, method)
    with unchanged(space, s, ids=[5]), pytest.raises(NotFoundError):
        call(s if use_set else None, 5)


@pytest.mark.parametrize("method", ["free", "get", "put"])
def test_free_get_put_of_another_sets_id_is_access_denied(
    space: IoasidSpace, unchanged: Unchanged, method: str
) -> None:
    """**fix** for ``free``: the DCP tree only warned."""
    owner, other = space.create_set(), space.create_set()
    i = space.alloc(owner, 0, 63)
    space.get(owner, i)
    with unchanged(space, owner, other), pytest.raises(AccessDeniedError):
        getattr(space, method)(other, i)


def test_none_set_skips_the_ownership_check(space: IoasidSpace, events: list[Event]) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.get(None, i)
    assert space.state(i) is IoasidState.ACTIVE
    assert space.put(None, i) is False
    space.free(None, i)
    assert _frees(events, i) == 1
    with pytest.raises(NotFoundError):
        space.state(i)


def test_state_of_an_unknown_id_is_not_found(space: IoasidSpace) -> None:
    with pytest.raises(NotFoundError):
        space.state(3)


def test_state_is_active_while_an_extra_reference_is_held(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    assert space.state(i) is IoasidState.IDLE
    space.get(s, i)
    assert space.state(i) is IoasidState.ACTIVE
    space.put(s, i)
    assert space.state(i) is IoasidState.IDLE


def test_state_is_active_while_an_spid_is_attached(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 100)
    assert space.state(i) is IoasidState.ACTIVE
    space.detach_spid(i)
    assert space.state(i) is IoasidState.IDLE


def test_free_pending_wins_over_active(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 100)
    space.get(s, i)
    space.get(s, i)
    space.free(s, i)
    assert space.state(i) is IoasidState.FREE_PENDING


def test_an_spid_holds_no_reference(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 100)
    space.free(s, i)
    with pytest.raises(NotFoundError):
        space.state(i)
    with pytest.raises(NotFoundError):
        space.find_by_spid(s, 100)


def test_dropping_the_owners_reference_by_put_leaves_the_id_idle(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.get(s, i)
    space.put(s, i)
    space.get(s, i)
    assert space.put(s, i) is False
    assert space.state(i) is IoasidState.IDLE


@pytest.mark.parametrize("observed", [False, True], ids=["quiet", "observed"])
def test_reclaim_releases_the_private_data(observed: bool) -> None:
    space = IoasidSpace(capacity=64)
    if observed:
        space.subscribe(lambda e: None)  # sees the data, keeps nothing
    s = space.create_set()
    data = Payload()
    watch = weakref.ref(data)
    i = space.alloc(s, 0, 63, private=data)
    space.get(s, i)
    space.free(s, i)
    del data
    gc.collect()
    assert watch() is not None  # still pending: the data is kept
    space.put(s, i)
    gc.collect()
    assert watch() is None


# --- every sequence: ALLOC/FREE pairing and state() against a model ---------------------------

_steps = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "get", "put", "free", "spid", "unspid"]),
        st.integers(0, 7),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(steps=_steps, observed=st.booleans())
def test_lifetime_follows_the_reference_model(
    steps: list[tuple[str, int, bool]], observed: bool
) -> None:
    sp = IoasidSpace(capacity=8)
    s = sp.create_set()
    seen: list[Event] = []
    if observed:  # else nothing subscribes and the space may take its hot paths
        sp.subscribe(seen.append)
    refs: dict[int, int] = {}
    pending: set[int] = set()
    spid: dict[int, int] = {}
    allocated: list[int] = []

    def expected_state(i: int) -> IoasidState:
        if i in pending:
            return IoasidState.FREE_PENDING
        if i in spid or refs[i] > 1:
            return IoasidState.ACTIVE
        return IoasidState.IDLE

    def reclaim(i: int) -> None:
        del refs[i]
        pending.discard(i)
        spid.pop(i, None)

    for op, i, owner in steps:
        who = s if owner else None
        if op == "alloc":
            if len(refs) == 8:
                continue
            got = sp.alloc(s, 0, 7)
            assert got == min(set(range(8)) - set(refs))
            refs[got] = 1
            allocated.append(got)
        elif i not in refs:
            with pytest.raises(NotFoundError):
                if op == "spid":
                    sp.attach_spid(i, 100 + i)
                elif op == "unspid":
                    sp.detach_spid(i)
                else:
                    getattr(sp, op)(who, i)
            continue
        elif op == "get":
            if i in pending:
                with pytest.raises(BusyError):
                    sp.get(who, i)
            else:
                sp.get(who, i)
                refs[i] += 1
        elif op == "put":
            refs[i] -= 1
            last = refs[i] == 0
            assert sp.put(who, i) is last
            if last:
                reclaim(i)
        elif op == "free":
            if i not in pending:
                pending.add(i)
                refs[i] -= 1
            sp.free(who, i)
            if refs[i] == 0:
                reclaim(i)
        elif op == "spid":
            if i not in spid:
                sp.attach_spid(i, 100 + i)
                spid[i] = 100 + i
        elif i in spid:
            sp.detach_spid(i)
            del spid[i]
        for j in refs:
            assert sp.state(j) is expected_state(j)
        assert s.ioasids() == sorted(refs)

    if not observed:
        return
    allocs = [e.ioasid for e in seen if e.kind is EventKind.ALLOC]
    frees = [e.ioasid for e in seen if e.kind is EventKind.FREE]
    assert allocs == allocated
    # Every reclaimed or pending ID got exactly one FREE per allocation; live ones none yet.
    for j in set(allocated):
        expect = allocated.count(j) - (1 if j in refs and j not in pending else 0)
        assert frees.count(j) == expect
