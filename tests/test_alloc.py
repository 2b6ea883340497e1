"""Allocation with the default allocator: lowest free ID, bounds, the order of the checks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core import (
    INVALID_IOASID,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidSpace,
    IoasidState,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
)

Unchanged = Callable[..., AbstractContextManager[None]]


def test_alloc_returns_the_lowest_free_id_at_or_above_min(space: IoasidSpace) -> None:
    s = space.create_set()
    assert [space.alloc(s, 0, 63) for _ in range(3)] == [0, 1, 2]
    assert space.alloc(s, 10, 63) == 10
    assert space.alloc(s, 10, 63) == 11
    assert space.alloc(s, 0, 63) == 3
    assert space.alloc(s, 2, 63) == 4


def test_id_zero_is_allocatable(space: IoasidSpace) -> None:
    s = space.create_set()
    assert space.alloc(s, 0, 0) == 0


def test_freed_ids_are_reused_at_once_lowest_first(space: IoasidSpace) -> None:
    s = space.create_set()
    for _ in range(6):
        space.alloc(s, 0, 63)
    space.free(s, 4)
    space.free(s, 2)
    assert space.alloc(s, 0, 63) == 2
    assert space.alloc(s, 0, 63) == 4
    assert space.alloc(s, 0, 63) == 6


def test_min_and_max_are_both_inclusive(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    assert space.alloc(s, 5, 5) == 5
    assert space.alloc(s, 63, 63) == 63
    assert space.alloc(s, 4, 6) == 4
    assert space.alloc(s, 4, 6) == 6
    with unchanged(space, s), pytest.raises(NoSpaceError):
        space.alloc(s, 4, 6)


def test_whole_space_can_be_allocated_and_then_there_is_no_space(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set()
    assert [space.alloc(s, 0, 63) for _ in range(64)] == list(range(64))
    with unchanged(space, s), pytest.raises(NoSpaceError) as info:
        space.alloc(s, 0, 63)
    assert not isinstance(info.value, QuotaExceededError)


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        pytest.param(10, 9, id="min>max"),
        pytest.param(-1, 5, id="negative-min"),
        pytest.param(0, 64, id="max=capacity"),
        pytest.param(64, 64, id="min=capacity"),
        pytest.param(3, INVALID_IOASID, id="max=INVALID"),
        pytest.param(-5, -1, id="all-negative"),
    ],
)
def test_bad_range_is_invalid_and_changes_nothing(
    space: IoasidSpace, unchanged: Unchanged, lo: int, hi: int
) -> None:
    s = space.create_set()
    space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.alloc(s, lo, hi)


def test_new_id_is_idle_with_one_reference_its_data_and_no_spid(space: IoasidSpace) -> None:
    s = space.create_set()
    data = object()
    i = space.alloc(s, 0, 63, private=data)
    assert space.state(i) is IoasidState.IDLE
    assert space.find(s, i) is data
    assert space.find_set(i) is s
    with pytest.raises(NotFoundError):
        space.detach_spid(i)
    # One reference: a single put reclaims it.
    assert space.put(s, i) is True
    with pytest.raises(NotFoundError):
        space.state(i)


def test_private_data_defaults_to_none(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    assert space.find(s, i) is None


def test_alloc_emits_one_alloc_event(space: IoasidSpace, events: list[Event]) -> None:
    s = space.create_set()
    events.clear()
    data = object()
    i = space.alloc(s, 7, 20, private=data)
    assert len(events) == 1
    e = events[0]
    assert (e.kind, e.ioasid, e.spid, e.set, e.private) == (
        EventKind.ALLOC,
        i,
        INVALID_IOASID,
        s,
        data,
    )


# --- the order of the checks: range, set live, quota, space ----------------------------------


def test_range_is_checked_before_the_set_is(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    space.free_set(s)
    with unchanged(space), pytest.raises(InvalidArgumentError) as info:
        space.alloc(s, 9, 8)
    # Both are EINVAL; the message tells which check failed: the range one names the range.
    assert "0x9" in str(info.value) or "9" in str(info.value)


def test_range_is_checked_before_the_quota(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set(quota=1)
    space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.alloc(s, 0, 64)


def test_range_is_checked_before_the_space(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    for _ in range(64):
        space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.alloc(s, 5, 4)


def test_set_liveness_is_checked_before_the_quota(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set(quota=1)
    space.alloc(s, 0, 63)
    assert space.free_set(s) is False  # free-pending and at its quota
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.alloc(s, 0, 63)


def test_set_liveness_is_checked_before_the_space(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    for _ in range(64):
        space.alloc(s, 0, 63)
    space.free_set(s)
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.alloc(s, 0, 63)


def test_destroyed_set_refuses_allocation(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    space.free_set(s)
    with unchanged(space), pytest.raises(InvalidArgumentError):
        space.alloc(s, 0, 63)


def test_quota_is_checked_before_the_space(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set(quota=2)
    space.alloc(s, 0, 0)
    space.alloc(s, 1, 1)
    with unchanged(space, s), pytest.raises(QuotaExceededError):
        space.alloc(s, 0, 1)  # the range is full too


def test_full_range_is_no_space_not_quota_exceeded(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set(quota=10)
    other = space.create_set()
    space.alloc(other, 3, 3)
    space.alloc(s, 2, 2)
    with unchanged(space, s, other), pytest.raises(NoSpaceError) as info:
        space.alloc(s, 2, 3)
    assert not isinstance(info.value, QuotaExceededError)


def test_quota_exceeded_is_a_no_space_error(space: IoasidSpace) -> None:
    s = space.create_set(quota=1)
    space.alloc(s, 0, 63)
    with pytest.raises(NoSpaceError) as info:
        space.alloc(s, 0, 63)
    assert isinstance(info.value, QuotaExceededError)


def test_free_pending_ids_still_count_against_the_quota(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set(quota=1)
    i = space.alloc(s, 0, 63)
    space.get(s, i)
    space.free(s, i)
    assert s.count == 1
    with unchanged(space, s), pytest.raises(QuotaExceededError):
        space.alloc(s, 0, 63)
    space.put(s, i)
    assert s.count == 0
    assert space.alloc(s, 0, 63) == i


def test_failed_alloc_wastes_no_id(space: IoasidSpace) -> None:
    s = space.create_set(quota=1)
    n = space.create_set()
    space.alloc(s, 0, 63)
    with pytest.raises(QuotaExceededError):
        space.alloc(s, 0, 63)
    with pytest.raises(InvalidArgumentError):
        space.alloc(n, 4, 3)
    assert space.alloc(n, 0, 63) == 1


@pytest.mark.parametrize("observed", [False, True], ids=["quiet", "observed"])
def test_an_id_freed_in_a_block_once_seen_full_is_found_again(observed: bool) -> None:
    sp = IoasidSpace(capacity=1024)
    if observed:
        sp.subscribe(lambda e: None)
    s = sp.create_set()
    for _ in range(600):
        sp.alloc(s, 0, 1023)
    sp.free(s, 5)
    assert sp.alloc(s, 256, 1023) == 600  # scans IDs 256..511 and finds them all used
    sp.free(s, 300)
    assert sp.alloc(s, 200, 1023) == 300
    assert sp.alloc(s, 0, 1023) == 5


# --- every input -----------------------------------------------------------------------------

# Capacities around word (64) and block (256) boundaries, full and partial.
_CAPACITIES = [1, 63, 64, 130, 256, 257, 600]

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.floats(0, 1), st.floats(0, 1)),
        st.tuples(st.just("alloc-low"), st.floats(0, 1), st.floats(0, 1)),
        st.tuples(st.just("free"), st.floats(0, 1), st.just(0.0)),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.sampled_from(_CAPACITIES),
    ops=_ops,
    prefill=st.floats(0, 1),
    observed=st.booleans(),
)
def test_alloc_always_gives_the_lowest_free_id_in_range(
    capacity: int, ops: list[tuple[str, float, float]], prefill: float, observed: bool
) -> None:
    sp = IoasidSpace(capacity=capacity)
    if observed:
        sp.subscribe(lambda e: None)  # no hot path
    s = sp.create_set()
    top = capacity - 1
    used: set[int] = set()
    for _ in range(round(prefill * capacity)):
        used.add(sp.alloc(s, 0, top))
    assert used == set(range(len(used)))
    for op, a, b in ops:
        if op == "free":
            if used:
                victim = sorted(used)[int(a * (len(used) - 1))]
                sp.free(s, victim)
                used.remove(victim)
            continue
        lo, hi = sorted((round(a * top), round(b * top)))
        if op == "alloc-low":
            lo = 0
        lowest = next((n for n in range(lo, hi + 1) if n not in used), None)
        if lowest is None:
            with pytest.raises(NoSpaceError):
                sp.alloc(s, lo, hi)
        else:
            assert sp.alloc(s, lo, hi) == lowest
            used.add(lowest)
    assert s.ioasids() == sorted(used)
    assert s.count == len(used)


@pytest.mark.parametrize("observed", [False, True], ids=["quiet", "observed"])
def test_concurrent_allocations_are_unique_and_all_accounted_for(observed: bool) -> None:
    sp = IoasidSpace(capacity=1024)
    seen: list[Event] = []
    if observed:
        sp.subscribe(seen.append)
    s = sp.create_set()
    results: list[list[int]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def worker(out: list[int]) -> None:
        barrier.wait()
        for k in range(100):
            i = sp.alloc(s, 0, 1023)
            out.append(i)
            if k % 3 == 0:
                sp.free(s, i)
                out.pop()

    threads = [threading.Thread(target=worker, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    held = [i for r in results for i in r]
    assert len(held) == len(set(held))
    assert s.ioasids() == sorted(held)
    if observed:
        kinds = [e.kind for e in seen]
        assert kinds.count(EventKind.ALLOC) == 800
        assert kinds.count(EventKind.FREE) == 800 - len(held)
