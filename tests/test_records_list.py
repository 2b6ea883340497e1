"""The records are a list indexed by ID: what a list would get wrong never reaches a caller.

A list reads ``lst[-1]`` from its end, takes ``True`` as 1, and raises ``IndexError`` past
its end; the records grow with the allocator's map, one chunk at a time. Each case runs on a
quiet space (the hot paths) and an observed one (the full methods), and on the resolvers,
which read the list themselves. ``records_view()`` stays a mapping of the allocated IDs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ioasid_core import (
    AllocatorOps,
    InvalidArgumentError,
    IoasidSet,
    IoasidSpace,
    NoSpaceError,
    NotFoundError,
    UnknownIoasidError,
)
from ioasid_core.idalloc import GROW_CHUNK, IdAllocator
from ioasid_core.platform import AddressSpace, Platform
from ioasid_core.prq.policy import LookupPolicy, Outcome, make_resolver
from ioasid_core.units import IommuUnit

BIG = 1 << 20
LAST = GROW_CHUNK - 1  # the last ID of the first chunk: the list's last slot until it grows


def _space(observed: bool) -> tuple[IoasidSpace, IoasidSet]:
    """A 2^20 space (one chunk mapped) holding 0, 1 and the first chunk's last ID."""
    space = IoasidSpace(BIG)
    if observed:
        space.subscribe(lambda event: None)
    owner = space.create_set()
    assert space.alloc(owner, 0, BIG - 1, "zero") == 0
    assert space.alloc(owner, 0, BIG - 1, "one") == 1
    assert space.alloc(owner, LAST, LAST, "last") == LAST
    assert space._ids.mapped == GROW_CHUNK == len(space._records) == len(space._data)
    return space, owner


def _live(space: IoasidSpace) -> dict[int, object]:
    return {i: space.find(None, i) for i in space.records_view()}


observed = pytest.mark.parametrize("observed", [False, True], ids=["quiet", "observed"])
BEHIND = [-1, -2, -LAST, -GROW_CHUNK, -GROW_CHUNK - 1, -BIG]
"""Negative IDs: each would index a live slot from the end of the list, or run past it."""
BEYOND = [GROW_CHUNK, GROW_CHUNK + 1, 2 * GROW_CHUNK, BIG - 1, BIG, BIG + 1]
"""IDs past the mapped ones: never allocated, or outside the space."""


@observed
@pytest.mark.parametrize("ioasid", BEHIND + BEYOND + [2, LAST - 1])
def test_find_of_an_id_not_allocated_is_not_found_never_another_ids_data(
    observed: bool, ioasid: int
) -> None:
    space, owner = _space(observed)
    for set_ in (None, owner):
        with pytest.raises(NotFoundError, match=f"IOASID {ioasid:#x} is not allocated"):
            space.find(set_, ioasid)
    with pytest.raises(NotFoundError):
        space.find(None, ioasid, lambda data: True)


@observed
@pytest.mark.parametrize("ioasid", BEHIND + BEYOND)
def test_every_call_taking_an_id_refuses_a_negative_or_unmapped_one_and_changes_nothing(
    observed: bool, ioasid: int
) -> None:
    space, owner = _space(observed)
    before = _live(space)
    calls: list[Callable[[], object]] = [
        lambda: space.free(owner, ioasid),
        lambda: space.free(None, ioasid),
        lambda: space.put(owner, ioasid),
        lambda: space.state(ioasid),
        lambda: space.refs(ioasid),
        lambda: space.find_set(ioasid),
        lambda: space.set_data(ioasid, "x"),
        lambda: space.attach_spid(ioasid, 5),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match=f"IOASID {ioasid:#x} is not allocated"):
            call()
    with pytest.raises(UnknownIoasidError):
        space.get(owner, ioasid)
    assert ioasid not in space
    assert space.records_view().get(ioasid) is None
    assert _live(space) == before
    assert len(space) == 3


@observed
def test_a_bool_id_is_refused_where_ids_are_taken_and_found_as_its_int_by_find(
    observed: bool,
) -> None:
    """``free``, ``alloc`` and the other changing calls refuse a bool; ``find``, which is not
    validated on a hit, reads ``True`` as ID 1, as the dict of records did (a list takes it
    as 1 too), never as anything else."""
    space, owner = _space(observed)
    for call in (
        lambda: space.free(owner, True),
        lambda: space.alloc(owner, True, 5),
        lambda: space.alloc(owner, 0, True),
        lambda: space.state(False),
        lambda: space.put(owner, True),
    ):
        with pytest.raises(InvalidArgumentError, match="not an integer"):
            call()
    assert space.find(owner, True) == "one"
    assert space.find(None, False) == "zero"
    assert True not in space and space.records_view().get(True) is None
    assert owner.ioasids() == [0, 1, LAST]


@observed
@pytest.mark.parametrize("bad", [1.0, 0.0, "1", None, [1], (1,)])
def test_find_of_a_non_integer_is_an_error_naming_it(observed: bool, bad: object) -> None:
    """A float that a dict matched to an ID (``1.0 == 1``) is no list index: refused."""
    space, owner = _space(observed)
    with pytest.raises(InvalidArgumentError, match="is not an integer"):
        space.find(owner, bad)  # type: ignore[arg-type]


@observed
def test_a_numpy_id_finds_its_int(observed: bool) -> None:
    space, owner = _space(observed)
    assert space.find(owner, np.int64(LAST)) == "last"  # type: ignore[arg-type]
    assert space.find(None, np.uint16(1)) == "one"  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        space.find(None, np.int64(-1))  # type: ignore[arg-type]


@observed
def test_the_records_grow_with_the_map_at_the_chunk_boundary(observed: bool) -> None:
    space, owner = _space(observed)
    records = space._records
    for n in range(2, LAST):  # fill the first chunk
        assert space.alloc(owner, 0, BIG - 1, n) == n
    assert len(records) == GROW_CHUNK
    assert space.alloc(owner, 0, BIG - 1, "first of the second chunk") == GROW_CHUNK
    assert space._records is records  # grown in place: the fast paths hold this list
    assert len(records) == space._ids.mapped == 2 * GROW_CHUNK == len(space._data)
    assert space.find(owner, LAST) == "last"
    assert space.find(owner, GROW_CHUNK) == "first of the second chunk"
    with pytest.raises(NotFoundError):
        space.find(None, GROW_CHUNK + 1)
    space.free(owner, GROW_CHUNK)
    space.free(owner, LAST)
    for ioasid in (LAST, GROW_CHUNK):
        with pytest.raises(NotFoundError):
            space.find(None, ioasid)
        with pytest.raises(NotFoundError):
            space.free(owner, ioasid)
    assert space.alloc(owner, 0, BIG - 1) == LAST
    assert space.alloc(owner, 0, BIG - 1) == GROW_CHUNK


@observed
def test_an_allocation_far_beyond_the_mapped_ids_has_its_record(observed: bool) -> None:
    space, owner = _space(observed)
    assert space.alloc(owner, BIG - 1, BIG - 1, "top") == BIG - 1
    assert len(space._records) == space._ids.mapped == BIG
    assert space.find(owner, BIG - 1) == "top"
    assert space.find_set(BIG - 1) is owner
    assert owner.ioasids() == [0, 1, LAST, BIG - 1]
    space.free(owner, BIG - 1)
    assert BIG - 1 not in space


def test_an_id_a_custom_allocator_hands_out_beyond_the_mapped_ones_is_recorded() -> None:
    """A backend picks its own numbers: the records are made to reach the one it picks,
    which stays free for the default allocator."""
    space = IoasidSpace(BIG)
    owner = space.create_set()
    taken: set[int] = set()

    def alloc(lo: int, hi: int, pdata: object) -> int:
        n = next(i for i in range(hi, lo - 1, -1) if i not in taken)  # highest first
        taken.add(n)
        return n

    def free(n: int, pdata: object) -> None:
        taken.remove(n)

    ops = AllocatorOps(alloc, free)
    space.register_allocator(ops)
    assert space.alloc(owner, 0, BIG - 1, "top") == BIG - 1
    assert space.alloc(owner, 0, 3 * GROW_CHUNK, "mid") == 3 * GROW_CHUNK
    assert len(space._records) == space._ids.mapped
    assert space.find(owner, BIG - 1) == "top"
    assert space.find(None, 3 * GROW_CHUNK) == "mid"
    assert owner.ioasids() == [3 * GROW_CHUNK, BIG - 1]
    assert list(space.records_view()) == [3 * GROW_CHUNK, BIG - 1]
    space.free(owner, BIG - 1)
    space.free(owner, 3 * GROW_CHUNK)
    assert taken == set() and len(space) == 0
    space.unregister_allocator(ops)
    assert space.alloc(owner, 0, BIG - 1) == 0  # the default allocator's map: all free
    assert space.alloc(owner, BIG - 1, BIG - 1) == BIG - 1


# -- the resolvers read the list themselves


def _platform(observed: bool) -> tuple[Platform, IoasidSet, dict[str, int]]:
    """A 2^20 space; a device of 20-bit PASIDs bound to two of its owner's PASIDs, one at
    the first chunk's last ID."""
    space = IoasidSpace(BIG)
    if observed:
        space.subscribe(lambda event: None)
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u", vendor="generic", pasid_bits=20))
    sva = space.create_set()
    proc = AddressSpace("proc")
    platform.add_domain("dom", "proc", [sva])
    platform.add_device("dev", unit="u", source_id=0x10, owner="proc", domain="dom")
    pasids = {
        "one": space.alloc(sva, 1, BIG - 1, proc),
        "last": space.alloc(sva, LAST, LAST, proc),
    }
    for pasid in pasids.values():
        platform.bind("dev", pasid, proc)
    assert pasids == {"one": 1, "last": LAST} and len(space._records) == GROW_CHUNK
    return platform, sva, pasids


SEARCHING = [LookupPolicy.GLOBAL, LookupPolicy.SET, LookupPolicy.ENDPOINT]


@observed
@pytest.mark.parametrize("policy", list(LookupPolicy))
def test_a_resolver_reads_the_slots_at_the_ends_of_the_list(
    observed: bool, policy: LookupPolicy
) -> None:
    platform, sva, pasids = _platform(observed)
    resolve = make_resolver(platform, "u", policy, sva_set=sva)
    for pasid in pasids.values():
        assert resolve(0x10, True, pasid).ok
    unknown = Outcome.NOT_BOUND if policy is LookupPolicy.DEVICE else Outcome.UNKNOWN_PASID
    for pasid in (0, LAST - 1, GROW_CHUNK, GROW_CHUNK + 1, BIG - 1):
        assert resolve(0x10, True, pasid).outcome is unknown, pasid
    for pasid in BEHIND:  # never read from the end of the list
        assert resolve(0x10, True, pasid).outcome is Outcome.PASID_TOO_WIDE, pasid


@pytest.mark.parametrize("policy", SEARCHING)
def test_a_resolver_made_before_the_list_grows_sees_the_new_slots(policy: LookupPolicy) -> None:
    platform, sva, _ = _platform(False)
    resolve = make_resolver(platform, "u", policy, sva_set=sva)
    proc = platform.space.find(sva, 1)
    late = platform.space.alloc(sva, 5 * GROW_CHUNK, BIG - 1, proc)
    platform.bind("dev", late, proc)
    assert len(platform.space._records) > late
    assert resolve(0x10, True, late).ok
    platform.unbind("dev", late)
    platform.space.free(sva, late)
    assert resolve(0x10, True, late).outcome is Outcome.UNKNOWN_PASID


@pytest.mark.parametrize("policy", SEARCHING)
def test_a_resolver_given_a_float_pasid_finds_nothing(policy: LookupPolicy) -> None:
    """Requests carry ints; a float that a dict matched to an ID is no list index."""
    platform, sva, _ = _platform(False)
    resolve = make_resolver(platform, "u", policy, sva_set=sva)
    assert resolve(0x10, True, 1.0).outcome is Outcome.UNKNOWN_PASID  # type: ignore[arg-type]
    assert resolve(0x10, True, 1).ok


# -- records_view(): a read-only mapping of the allocated IDs


@observed
def test_records_view_maps_the_allocated_ids_only(observed: bool) -> None:
    space, owner = _space(observed)
    other = space.create_set()
    space.alloc(other, 5, 5, "five")
    space.free(owner, 1)
    view = space.records_view()
    assert list(view) == [0, 5, LAST]
    assert len(view) == 3 == len(space)
    assert list(view.keys()) == [0, 5, LAST]
    assert dict(view) == {0: view[0], 5: view[5], LAST: view[LAST]}
    assert [(i, rec[0], rec[1]) for i, rec in view.items() if rec is not None] == [
        (0, owner, "zero"),
        (5, other, "five"),
        (LAST, owner, "last"),
    ]
    assert [rec[1] for rec in view.values() if rec is not None] == ["zero", "five", "last"]
    assert view[5] == (other, "five", 1, False)
    assert (5, view[5]) in view.items()
    absents: list[Any] = [1, 2, GROW_CHUNK, BIG + 3, -1, -LAST, True, 5.0, "5", None]
    for absent in absents:
        assert absent not in view
        assert view.get(absent) is None
        assert view.get(absent, "dflt") == "dflt"
        with pytest.raises(KeyError):
            view[absent]
    numpy_ids: list[Any] = [np.int64(5), np.uint32(LAST)]
    assert view.get(numpy_ids[0]) == view[5] and numpy_ids[1] in view


def test_records_view_is_live_read_only_and_agrees_with_the_records() -> None:
    space, owner = _space(False)
    view = space.records_view()
    assert space.records_view() is view
    space.get(owner, 0)
    space.free(owner, 0)
    assert view[0] == (owner, "zero", 1, True)  # a reference left: free-pending
    space.alloc(owner, 3 * GROW_CHUNK, BIG - 1, "far")
    assert list(view) == [0, 1, LAST, 3 * GROW_CHUNK]
    assert not hasattr(view, "__setitem__") and not hasattr(view, "pop")
    records, data = space._records, space._data  # each ID's tuple, and its data
    assert {
        i: (rec[0], data[i], rec[1], rec[2]) for i, rec in enumerate(records) if rec is not None
    } == dict(view)
    assert "4 allocated" in repr(view)


def test_records_view_values_searched_while_an_id_is_freed_does_not_raise() -> None:
    # ``in view.values()`` compares each record with the value: here the comparison frees
    # the next ID (as another thread could), and the search reads on, never KeyError.
    space, owner = _space(False)
    view = space.records_view()

    class FreesOne:
        def __eq__(self, other: object) -> bool:
            if 1 in space:
                space.free(owner, 1)
            return False

        __hash__ = None  # type: ignore[assignment]

    assert FreesOne() not in view.values()
    assert 1 not in view and view[0] in view.values()


# -- the allocator keeps the slots as long as its map


def test_the_allocator_grows_its_slots_with_the_map_in_place() -> None:
    slots: list[object] = []
    other: list[object] = []
    ids = IdAllocator(BIG, slots=(slots, other))
    assert slots == [None] * GROW_CHUNK == other
    slots[LAST] = "kept"
    assert ids.alloc(2 * GROW_CHUNK + 1, BIG - 1) == 2 * GROW_CHUNK + 1
    assert len(slots) == ids.mapped == 3 * GROW_CHUNK
    assert slots[LAST] == "kept" and slots[LAST + 1 :] == [None] * (2 * GROW_CHUNK)
    ids.cover(BIG - 1)
    assert len(slots) == ids.mapped == BIG == len(other)
    assert BIG - 1 not in ids  # covered, not taken
    ids.cover(5)  # already mapped: nothing changes
    assert len(slots) == BIG == len(other)


def test_the_allocator_refuses_slots_that_are_not_empty_and_cover_outside_the_space() -> None:
    cases: list[tuple[list[object], list[object]]] = [([None], []), ([], [None])]
    for full in cases:
        with pytest.raises(ValueError, match="start empty"):
            IdAllocator(BIG, slots=full)
        assert full in (([None], []), ([], [None]))  # untouched
    ids = IdAllocator(BIG, slots=([],))
    for bad in (-1, BIG):
        with pytest.raises(ValueError, match="outside"):
            ids.cover(bad)
    assert ids.mapped == GROW_CHUNK


# -- the IDs of a set with one reference share their set's tuple, whatever their data


@observed
def test_ids_of_a_set_share_a_tuple_and_a_change_to_one_leaves_the_others(
    observed: bool,
) -> None:
    space = IoasidSpace(BIG)
    if observed:
        space.subscribe(lambda event: None)
    a, b = space.create_set(), space.create_set()
    ids = [space.alloc(a, 0, BIG - 1) for _ in range(3)]
    other = space.alloc(b, 0, BIG - 1)
    data = object()
    with_data = space.alloc(a, 0, BIG - 1, data)
    view = space.records_view()
    records = space._records  # each ID's (set, refs, free_pending); the data beside
    assert all(records[i] is a._fresh for i in [*ids, with_data])  # one tuple, not 4
    assert a._fresh == (a, 1, False) and records[other] is b._fresh
    assert space._data[with_data] is data
    assert view[ids[0]] == (a, None, 1, False) and view[other] == (b, None, 1, False)
    assert view[with_data] == (a, data, 1, False)
    space.get(a, ids[1])
    space.set_data(ids[2], "mine now")
    space.free(a, ids[1])  # a reference left: free-pending
    assert [view[i] for i in ids] == [
        (a, None, 1, False),
        (a, None, 1, True),
        (a, "mine now", 1, False),
    ]
    assert [space.state(i).name for i in ids] == ["IDLE", "FREE_PENDING", "IDLE"]
    space.free(a, ids[0])
    assert space.find(a, ids[2]) == "mine now" and space.refs(ids[1]) == 1
    assert space.find(b, other) is None
    assert records[ids[1]] == (a, 1, True) and records[ids[2]] is a._fresh
    space.put(a, ids[1])
    assert list(view) == [ids[2], other, with_data]
    assert records[ids[1]] is None


@observed
def test_records_reaching_the_top_do_not_make_a_space_full_and_a_full_one_says_so(
    observed: bool,
) -> None:
    """The capacity check asks for the room left once the records cover every ID; covering
    is not being full."""
    capacity = 3 * GROW_CHUNK
    space = IoasidSpace(capacity)
    if observed:
        space.subscribe(lambda event: None)
    owner = space.create_set()
    assert space.alloc(owner, capacity - 1, capacity - 1) == capacity - 1
    assert len(space._records) == capacity
    assert [space.alloc(owner, 0, capacity - 1) for _ in range(3)] == [0, 1, 2]
    while len(space) < capacity:
        space.alloc(owner, 0, capacity - 1)
    with pytest.raises(NoSpaceError, match="no unreserved capacity left"):
        space.alloc(owner, 0, capacity - 1)
    space.free(owner, 5)
    assert space.alloc(owner, 0, capacity - 1) == 5


def test_the_views_length_is_not_short_when_the_list_grows_while_it_counts() -> None:
    from ioasid_core.records_view import RecordsView

    class GrowsOnce(list[object]):
        """Grows by three empty slots once copied (the space, in another thread, mapping
        more IDs between the view's two reads)."""

        grown = False

        def copy(self) -> list[object]:
            copied = super().copy()
            if not self.grown:
                self.grown = True
                self.extend([None, None, None])
            return copied

    records = GrowsOnce([("set", 1, False), None, ("set", 1, False)])
    view = RecordsView(records, [], lambda: ([], []))
    assert len(view) == 2 and len(records) == 6  # counted in one copy, not the grown list
