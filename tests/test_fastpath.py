"""The hot-path closures give exactly the answers of the full methods.

A space with no subscriber and the default allocator runs ``alloc``/``free``/``find`` through
``fastpath``; a space with one (silent) subscriber always takes the full methods. The same
random operations on both must give the same results, the same errors and the same state.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core import IoasidError, IoasidSet, IoasidSpace, SetType
from ioasid_core.idalloc import GROW_CHUNK

CAPACITY = 48

_op = st.one_of(
    st.tuples(
        st.just("alloc"),
        st.integers(0, 3),
        st.integers(-2, CAPACITY + 1),
        st.integers(-2, CAPACITY + 1),
    ),
    st.tuples(st.just("alloc_bad"), st.integers(0, 3), st.sampled_from([0.5, "1", None, True])),
    st.tuples(st.just("free"), st.integers(-1, 3), st.integers(-1, CAPACITY)),
    st.tuples(st.just("find"), st.integers(-1, 3), st.integers(-1, CAPACITY)),
    st.tuples(st.just("get"), st.integers(-1, 3), st.integers(0, CAPACITY)),
    st.tuples(st.just("put"), st.integers(-1, 3), st.integers(0, CAPACITY)),
    st.tuples(st.just("spid"), st.integers(0, CAPACITY), st.integers(0, 4)),
    st.tuples(st.just("free_set"), st.integers(0, 3)),
)


def _build(listening: bool) -> tuple[IoasidSpace, list[IoasidSet]]:
    space = IoasidSpace(CAPACITY)
    if listening:
        space.subscribe(lambda event: None)
    tokens = ["vm-a", "vm-b"]
    sets = [
        space.create_set(quota=None),
        space.create_set(quota=5),
        space.create_set(tokens[0], type=SetType.MM, quota=0),
        space.create_set(tokens[1], type=SetType.MM),
    ]
    return space, sets


def _apply(space: IoasidSpace, sets: list[IoasidSet], op: tuple[Any, ...]) -> object:
    kind = op[0]

    def pick(i: int) -> IoasidSet | None:
        return None if i < 0 else sets[i]

    try:
        if kind == "alloc":
            return space.alloc(sets[op[1]], op[2], op[3], private=("data", op[2]))
        if kind == "alloc_bad":
            return space.alloc(sets[op[1]], op[2], CAPACITY - 1)
        if kind == "free":
            space.free(pick(op[1]), op[2])
        elif kind == "find":
            return space.find(pick(op[1]), op[2])
        elif kind == "get":
            space.get(pick(op[1]), op[2])
        elif kind == "put":
            return space.put(pick(op[1]), op[2])
        elif kind == "spid":
            space.attach_spid(op[1], op[2])
        else:
            return space.free_set(sets[op[1]])
    except IoasidError as exc:
        return (type(exc).__name__, str(exc))
    return None


def _snapshot(space: IoasidSpace, sets: list[IoasidSet]) -> object:
    return (
        space.available,
        len(space),
        [(s.count, s.ioasids(), s.free_pending, s.destroyed) for s in sets],
        [
            (i, space.state(i), space.refs(i), space.find(None, i))
            for s in sets
            for i in s.ioasids()
        ],
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=60))
def test_fast_paths_agree_with_the_full_methods(ops: list[tuple[Any, ...]]) -> None:
    fast, fast_sets = _build(listening=False)
    slow, slow_sets = _build(listening=True)
    assert "alloc" in vars(fast) and "free" in vars(fast) and "find" in vars(fast)
    for op in ops:
        got_fast = _apply(fast, fast_sets, op)
        got_slow = _apply(slow, slow_sets, op)
        assert got_fast == got_slow, op
        assert _snapshot(fast, fast_sets) == _snapshot(slow, slow_sets), op


def test_fast_alloc_fills_the_space_lowest_first_and_reuses_freed_ids() -> None:
    space = IoasidSpace(CAPACITY)
    owner = space.create_set()
    ids = [space.alloc(owner, 0, CAPACITY - 1) for _ in range(CAPACITY)]
    assert ids == list(range(CAPACITY))
    space.free(owner, 17)
    space.free(owner, 3)
    assert space.alloc(owner, 0, CAPACITY - 1) == 3
    assert space.alloc(owner, 10, CAPACITY - 1) == 17


def test_fast_paths_agree_with_the_full_methods_as_the_map_grows() -> None:
    """The fast paths read the allocator's map in place: across its growth (chunk edges, a
    minimum beyond the mapped part, a capacity not a multiple of the chunk, the top ID) they
    give the full methods' answers."""
    capacity = 3 * GROW_CHUNK + 5
    spaces = [IoasidSpace(capacity), IoasidSpace(capacity)]
    spaces[1].subscribe(lambda event: None)
    owners = [space.create_set() for space in spaces]
    top = capacity - 1
    requests = [(0, top)] * (GROW_CHUNK + 3) + [
        (2 * GROW_CHUNK - 1, top),
        (0, GROW_CHUNK),
        (capacity - 2, top),
        (top, top),
        (top, top),
        (0, top),
    ]
    for lo, hi in requests:
        got: list[int | str] = []
        for space, owner in zip(spaces, owners, strict=True):
            try:
                got.append(space.alloc(owner, lo, hi))
            except IoasidError as exc:
                got.append(type(exc).__name__)
        assert got[0] == got[1], (lo, hi)
    assert spaces[0].alloc(owners[0], 0, top) == GROW_CHUNK + 4
    spaces[1].alloc(owners[1], 0, top)
    for n in (GROW_CHUNK - 1, 5, GROW_CHUNK, top):
        for space, owner in zip(spaces, owners, strict=True):
            space.free(owner, n)
    for lo in (0, 0, GROW_CHUNK, 6, capacity - 3):
        assert spaces[0].alloc(owners[0], lo, top) == spaces[1].alloc(owners[1], lo, top), lo
    assert owners[0].ioasids() == owners[1].ioasids()
    assert spaces[0]._ids.mapped == capacity


def test_fast_paths_step_aside_while_a_custom_allocator_is_active() -> None:
    from ioasid_core import AllocatorOps

    backend: set[int] = set()

    def alloc(lo: int, hi: int, pdata: object) -> int:
        n = next(i for i in range(hi, lo - 1, -1) if i not in backend)  # highest first
        backend.add(n)
        return n

    def free(n: int, pdata: object) -> None:
        backend.remove(n)

    space, sets = _build(listening=False)
    space.register_allocator(AllocatorOps(alloc, free))
    assert space.alloc(sets[0], 0, 10) == 10  # the backend's choice, not the lowest
    space.free(sets[0], 10)
    assert backend == set()


def test_a_getter_turns_the_hot_paths_off_while_it_runs_and_back_on_after() -> None:
    from ioasid_core import ReentrancyError

    space = IoasidSpace(CAPACITY)
    owner = space.create_set()
    ioasid = space.alloc(owner, 0, CAPACITY - 1, "data")
    seen: list[bool] = []

    def getter(data: object) -> bool:
        seen.append(space._hot.quiet)
        space.alloc(owner, 0, CAPACITY - 1)  # re-entry: refused even on a quiet space
        return True

    with pytest.raises(ReentrancyError):
        space.find(owner, ioasid, getter)
    assert seen == [False]
    assert space._hot.quiet  # back on after the getter raised
    assert space.find(owner, ioasid, lambda data: True) == "data"
    assert space._hot.quiet  # and after one that returned
    assert len(space) == 1


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every call of the default allocator's own ``alloc`` (its ``lo``, ``hi``): what the
    space's inlined paths did not answer themselves."""
    from ioasid_core.idalloc import IdAllocator

    seen: list[tuple[int, int]] = []
    real = IdAllocator.alloc

    def counted(self: IdAllocator, lo: int, hi: int) -> int:
        seen.append((lo, hi))
        return real(self, lo, hi)

    monkeypatch.setattr(IdAllocator, "alloc", counted)
    return seen


def test_allocations_from_one_stay_on_the_fast_path(calls: list[tuple[int, int]]) -> None:
    """Every real caller (replay, the vendors, SVA binds) allocates from PASID 1: after the
    first such allocation the floor is 1 and the inlined paths answer every one, scattered
    frees included, without calling the allocator (which the range's minimum above the
    hint 0 used to send to a search of the map on every call)."""
    space = IoasidSpace(1 << 20)
    owner = space.create_set()
    top = (1 << 20) - 1
    live = [space.alloc(owner, 1, top, "mm") for _ in range(1000)]
    assert live == list(range(1, 1001))
    assert calls == [(1, top)]  # the first: the floor jumps over PASID 0
    for _ in range(50):
        space.free(owner, space.alloc(owner, 1, top, "mm"))
    for k in range(0, 1000, 97):  # scattered frees, then as many allocations
        space.free(owner, live[k])
    again = [space.alloc(owner, 1, top, "mm") for _ in range(0, 1000, 97)]
    assert again == sorted(live[k] for k in range(0, 1000, 97))
    assert calls == [(1, top)]
    assert space.alloc(owner, 0, top) == 0  # PASID 0 is still there for whoever asks from 0


def test_a_request_from_just_above_a_high_hint_leaves_the_callers_from_one_fast(
    calls: list[tuple[int, int]],
) -> None:
    """One request whose minimum lies just above the hint (a partition of the space, a
    user's own range) must not lift the floor over thousands of live IDs: the callers from
    1 would then leave the fast path for good and search the map from 1 to the floor on
    every call (13 us a pair at 900k live IDs against 0.5 us)."""
    space = IoasidSpace(1 << 20)
    owner = space.create_set()
    top = (1 << 20) - 1
    for _ in range(5000):
        space.alloc(owner, 1, top, "mm")
    hint = space._ids.hint[0]
    assert not space._ids.holes and hint == 5001
    assert space.alloc(owner, hint + 1, top, "mm") == hint + 1  # a range of its own
    calls.clear()
    assert space.alloc(owner, 1, top, "mm") == hint  # the one below it
    for _ in range(50):
        space.free(owner, space.alloc(owner, 1, top, "mm"))
    assert calls == [(1, top)]  # one search past hint + 1, then the hint and the heap
    assert space._ids.floor[0] == 1
