"""The default allocator against a brute-force model: lowest free ID in [lo, hi].

The map covers only the IDs up to the highest one taken (it grows by chunks), so the model
runs with small chunks too, and requests aim at the chunk edges, the end of the mapped part and
beyond it: the answers must not depend on how much of the space is mapped.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.idalloc import (
    _PARK_MAX,
    BLOCK_SHIFT,
    GROW_CHUNK,
    MAX_CAPACITY,
    SPILL,
    IdAllocator,
)

_BLOCK = 1 << BLOCK_SHIFT
_capacities = st.sampled_from([1, 2, 255, 256, 257, 511, 512, 513, 1000, 1 << 12, 1300])
_chunks = st.sampled_from([256, 512, GROW_CHUNK])


def _lowest_free(used: set[int], lo: int, hi: int) -> int:
    n = lo
    while n in used:
        n += 1
    return n if n <= hi else -1


def _check_invariants(ids: IdAllocator, used: set[int]) -> None:
    """What the fast paths and the searches rely on, read from the raw structures."""
    mapped = ids.mapped
    assert len(ids.map) == mapped + 1 and ids.map[mapped] == 1, "the sentinel ends the map"
    assert mapped <= ids.capacity
    assert all(n < mapped for n in used), "every used ID is mapped"
    assert ids.map.count(1) - 1 == len(used)
    assert len(ids.full) == -(-mapped // _BLOCK)
    holes = ids.holes
    listed = set(holes)
    floor = ids.floor[0]
    assert 0 <= floor <= ids.hint[0] <= mapped, "the floor, the hint, the mapped end"
    assert floor <= _PARK_MAX, "a search from below the floor reads at most _PARK_MAX bytes"
    for block in range(len(ids.full)):
        if ids.full[block]:  # a set flag hides no free ID but a hole or a parked one
            start = block * _BLOCK
            hidden = [n for n in range(start, min(start + _BLOCK, mapped)) if not ids.map[n]]
            assert all(n in listed or n < floor for n in hidden), (block, hidden)
    assert all(holes[(k - 1) // 2] <= holes[k] for k in range(1, len(holes))), "a min-heap"
    assert all(n < ids.hint[0] for n in listed if not ids.map[n]), "a hole lies below the hint"
    below = range(floor, min(ids.hint[0], ids.capacity))
    assert all(n in used or n in listed for n in below), (
        "from the floor to the hint, a free ID is a hole"
    )


@settings(max_examples=300, deadline=None)
@given(_capacities, _chunks, st.data())
def test_alloc_returns_the_lowest_free_id_in_range(
    capacity: int, chunk: int, data: st.DataObject
) -> None:
    ids = IdAllocator(capacity, grow_chunk=chunk)
    used: set[int] = set()

    def point() -> int:
        """An ID anywhere, or near a chunk edge, the mapped end, or the top (edges win)."""
        edges = [ids.mapped, chunk, 2 * chunk, capacity - 1]
        near = data.draw(st.sampled_from(edges)) + data.draw(st.integers(-2, 2))
        anywhere = data.draw(st.integers(0, capacity - 1))
        pick = data.draw(st.sampled_from([near, near, anywhere]))
        return min(max(pick, 0), capacity - 1)

    for _ in range(data.draw(st.integers(1, 60))):
        action = data.draw(st.sampled_from(["alloc", "alloc", "free", "fill"]))
        if action == "free" and used:
            n = data.draw(st.sampled_from(sorted(used)))
            ids.free(n)
            used.discard(n)
        elif action == "fill":  # many lowest-first requests: crosses chunk edges in order
            lo = data.draw(st.sampled_from([0, point()]))
            for _ in range(data.draw(st.integers(1, 300))):
                expected = _lowest_free(used, lo, capacity - 1)
                assert ids.alloc(lo, capacity - 1) == expected
                if expected < 0:
                    break
                used.add(expected)
        else:
            lo, hi = sorted((point(), point()))
            expected = _lowest_free(used, lo, hi)
            assert ids.alloc(lo, hi) == expected
            if expected >= 0:
                used.add(expected)
        assert ids.used == len(used)
        assert all(n in ids for n in used)
        _check_invariants(ids, used)
    assert all((n in ids) == (n in used) for n in range(capacity))


@pytest.mark.parametrize("capacity", [1, 255, 256, 257, 4096, 4097, 3 * GROW_CHUNK + 5])
def test_fill_hands_out_every_id_once_in_order(capacity: int) -> None:
    ids = IdAllocator(capacity)
    assert [ids.alloc(0, capacity - 1) for _ in range(capacity)] == list(range(capacity))
    assert ids.alloc(0, capacity - 1) == -1
    assert ids.mapped == capacity  # grown to the top, not beyond


def test_full_block_flags_are_cleared_by_a_free_inside_the_block() -> None:
    capacity = 4 << BLOCK_SHIFT
    ids = IdAllocator(capacity)
    for _ in range(capacity):
        ids.alloc(0, capacity - 1)
    assert ids.alloc(0, capacity - 1) == -1  # every block now flagged full
    inside = (2 << BLOCK_SHIFT) + 7
    ids.free(inside)
    assert ids.alloc(1 << BLOCK_SHIFT, capacity - 1) == inside


def test_a_search_from_the_hint_flags_the_rest_of_its_block_full() -> None:
    """IDs above the hint taken by requests from further up, the next free one far away:
    the blocks a search from the hint passes are flagged once searched, so the next search
    does not scan them again."""
    capacity = 8 * _BLOCK
    ids = IdAllocator(capacity)
    far = _BLOCK + 44  # further above the hint 0 than the floor jumps: a search of the map
    for _ in range(4 * _BLOCK + 9 - far):
        ids.alloc(far, capacity - 1)  # far .. 4B+8; the hint stays at 0
    assert ids.hint[0] == 0 and ids.floor[0] == 0
    for n in range(far):
        assert ids.alloc(0, capacity - 1) == n  # the hint itself, up to far
    assert ids.alloc(0, capacity - 1) == 4 * _BLOCK + 9  # found past the hint's block
    assert ids.full[1:4] == bytearray([1, 1, 1])  # each searched through: full
    _check_invariants(ids, set(range(4 * _BLOCK + 10)))


def _flagged_full(capacity: int) -> IdAllocator:
    """A full allocator whose hint reached the top by searching: every block but the first
    and the last is flagged full (a fill at the hint never searches, so it flags nothing)."""
    ids = IdAllocator(capacity)
    far = _BLOCK + 44  # further above the hint 0 than the floor jumps
    for _ in range(capacity - 1 - far):
        ids.alloc(far, capacity - 1)  # far .. capacity-2, searched from far
    for n in range(far):
        assert ids.alloc(0, capacity - 1) == n  # the hint
    assert ids.alloc(0, capacity - 1) == capacity - 1  # searched from the hint past them all
    assert ids.hint[0] == capacity
    return ids


def test_an_id_freed_below_the_hint_is_a_hole_and_leaves_its_blocks_flag() -> None:
    """The hint never moves back: the freed ID goes to the heap (the hot path's one store
    saved is the flag's), and the next allocation takes it from there."""
    capacity = 4 * _BLOCK
    ids = _flagged_full(capacity)
    assert ids.full == bytearray([0, 1, 1, 0])
    ids.free(_BLOCK + 3)
    assert ids.hint[0] == capacity and ids.holes == [_BLOCK + 3]
    assert ids.full[1] == 1  # hides the hole, and only the hole
    _check_invariants(ids, set(range(capacity)) - {_BLOCK + 3})
    assert ids.alloc(0, capacity - 1) == _BLOCK + 3


def test_a_search_from_above_the_lowest_hole_finds_a_hole_its_flag_hides() -> None:
    """A request whose minimum lies above the lowest hole searches the map, and the flags
    lead past a block whose only free ID is a hole: the hole is the answer, not an ID
    further up (a search trusting the flags alone returns the wrong one)."""
    capacity = 8 * _BLOCK
    ids = _flagged_full(capacity)
    assert ids.full == bytearray([0] + [1] * 6 + [0])
    hidden = 4 * _BLOCK + 77
    ids.free(7)  # the lowest hole
    ids.free(hidden)  # a hole in a flagged block, above the minimum below
    assert ids.full[4] == 1
    assert ids.alloc(2 * _BLOCK + 1, capacity - 1) == hidden
    assert ids.alloc(2 * _BLOCK + 1, capacity - 1) == -1  # no more: hidden not handed twice
    assert ids.alloc(0, capacity - 1) == 7
    _check_invariants(ids, set(range(capacity)))


def test_many_holes_are_spilled_into_the_map_and_answers_stay_the_lowest() -> None:
    """Past SPILL holes, the slow free gives them back to the map's search: the heap is
    emptied, the hint lowered to the lowest hole, the flags of their blocks cleared."""
    capacity = SPILL + 4 * _BLOCK
    ids = IdAllocator(capacity)
    for _ in range(capacity):
        ids.alloc(0, capacity - 1)
    freed = list(range(capacity - 3, -1, -1))[: SPILL + 1]  # from the top down
    for n in freed:
        ids.free(n)
    assert ids.holes == []  # spilled on the last free
    assert ids.hint[0] == min(freed)
    used = set(range(capacity)) - set(freed)
    _check_invariants(ids, used)
    got = [ids.alloc(0, capacity - 1) for _ in range(3)]
    assert got == sorted(freed)[:3]


def test_a_search_above_many_holes_spills_them_first() -> None:
    """More than a few holes below a request's minimum: the search spills them rather than
    reading every one, and still answers the lowest free ID at or above the minimum."""
    capacity = 16 * _BLOCK
    ids = IdAllocator(capacity)
    for _ in range(capacity):
        ids.alloc(0, capacity - 1)
    holes = list(range(0, 2 * 100, 2))  # 100 holes low down
    for n in holes:
        ids.free(n)
    ids.free(9 * _BLOCK + 1)
    assert len(ids.holes) == 101
    assert ids.alloc(5 * _BLOCK, capacity - 1) == 9 * _BLOCK + 1
    assert ids.holes == [] and ids.hint[0] == 0
    _check_invariants(ids, set(range(capacity)) - set(holes))
    assert [ids.alloc(0, capacity - 1) for _ in range(3)] == holes[:3]


def test_a_hole_taken_by_a_higher_minimum_is_not_handed_out_twice() -> None:
    """A request from above the lowest hole takes a hole by searching the map; its heap
    entry is stale and must be skipped, not handed out again."""
    ids = IdAllocator(1 << 12)
    for _ in range(100):
        ids.alloc(0, 4095)
    ids.free(10)
    ids.free(50)
    assert ids.alloc(20, 4095) == 50  # a search: 50 stays in the heap, stale
    assert ids.alloc(0, 4095) == 10
    assert ids.alloc(0, 4095) == 100  # not 50 again
    _check_invariants(ids, set(range(101)))


def test_stale_holes_do_not_pile_up_in_the_heap() -> None:
    """A hole freed and taken back by a request from above a hole that stays free, over and
    over: every round leaves a stale entry; the heap is compacted, so it stays small."""
    ids = IdAllocator(1 << 12)
    for _ in range(200):
        ids.alloc(0, 4095)
    ids.free(5)  # stays free: every request below is from a higher minimum
    for _ in range(10_000):
        ids.free(100)
        assert ids.alloc(100, 100) == 100
        assert len(ids.holes) <= 70
    assert ids.alloc(0, 4095) == 5
    assert ids.alloc(0, 4095) == 200  # the stale entries of 100 are skipped
    _check_invariants(ids, set(range(201)))


@pytest.mark.parametrize("capacity", [1, 255, GROW_CHUNK, GROW_CHUNK + 1, 1 << 20, MAX_CAPACITY])
def test_a_new_allocator_maps_one_chunk_whatever_its_capacity(capacity: int) -> None:
    ids = IdAllocator(capacity)
    assert ids.mapped == min(capacity, GROW_CHUNK)
    assert len(ids.map) == ids.mapped + 1  # and the sentinel
    assert len(ids.full) == -(-ids.mapped // _BLOCK)


def test_memory_follows_the_highest_id_in_use() -> None:
    ids = IdAllocator(1 << 20)
    for _ in range(1000):
        ids.alloc(0, (1 << 20) - 1)
    assert ids.mapped == GROW_CHUNK  # 1,000 IDs: one chunk, not a MiB
    for _ in range(GROW_CHUNK - 1000):
        ids.alloc(0, (1 << 20) - 1)
    assert ids.mapped == GROW_CHUNK  # full to the last mapped ID, still not grown
    assert ids.alloc(0, (1 << 20) - 1) == GROW_CHUNK
    assert ids.mapped == 2 * GROW_CHUNK
    while ids.alloc(0, (1 << 20) - 1) < (1 << 16) - 1:
        pass
    assert ids.mapped == 1 << 16  # 65,536 IDs: doubled up to them, no further


def test_the_map_grows_in_place() -> None:
    """The space's fast paths hold ``map``, ``full`` and ``hint`` themselves."""
    ids = IdAllocator(1 << 20)
    held = (ids.map, ids.full, ids.hint)
    assert ids.alloc(0x9_0001, 0x9_0001) == 0x9_0001
    assert ids.mapped > 0x9_0001
    assert (ids.map, ids.full, ids.hint) == held
    assert all(a is b for a, b in zip((ids.map, ids.full, ids.hint), held, strict=True))


def test_a_minimum_beyond_the_mapped_part_is_answered_and_mapped() -> None:
    capacity = 1 << 20
    ids = IdAllocator(capacity)
    lo = 0x8_0001
    assert ids.alloc(lo, capacity - 1) == lo
    assert ids.mapped == lo // GROW_CHUNK * GROW_CHUNK + GROW_CHUNK
    assert ids.alloc(lo, capacity - 1) == lo + 1
    assert ids.alloc(lo - 1, lo - 1) == lo - 1
    assert ids.alloc(0, capacity - 1) == 0  # nothing below was taken meanwhile
    assert ids.alloc(0, capacity - 1) == 1
    assert 2 not in ids and lo - 2 not in ids
    assert ids.alloc(lo - 1, capacity - 1) == lo + 2
    _check_invariants(ids, {0, 1, lo - 1, lo, lo + 1, lo + 2})


def test_a_maximum_below_the_mapped_end_fails_without_growing() -> None:
    capacity = 1 << 20
    ids = IdAllocator(capacity)
    for _ in range(GROW_CHUNK):
        ids.alloc(0, capacity - 1)
    assert ids.alloc(0, GROW_CHUNK - 1) == -1
    assert ids.alloc(GROW_CHUNK - 1, GROW_CHUNK - 1) == -1
    assert ids.mapped == GROW_CHUNK
    assert ids.alloc(0, GROW_CHUNK) == GROW_CHUNK  # the first unmapped ID, mapped now
    assert ids.mapped == 2 * GROW_CHUNK


def test_a_capacity_not_a_multiple_of_the_chunk_maps_to_its_last_id_only() -> None:
    capacity = 2 * GROW_CHUNK + 7
    ids = IdAllocator(capacity)
    assert ids.alloc(capacity - 1, capacity - 1) == capacity - 1
    assert ids.mapped == capacity
    assert ids.alloc(capacity - 1, capacity - 1) == -1
    assert ids.alloc(capacity - 8, capacity - 1) == capacity - 8
    ids.free(capacity - 1)
    assert ids.alloc(capacity - 2, capacity - 1) == capacity - 2
    _check_invariants(ids, {capacity - 8, capacity - 2})


def test_the_largest_space_maps_its_top_id_on_demand() -> None:
    top = MAX_CAPACITY - 1
    ids = IdAllocator(MAX_CAPACITY)
    assert ids.alloc(top, top) == top
    assert ids.mapped == MAX_CAPACITY
    assert ids.alloc(top, top) == -1
    assert ids.alloc(0, top) == 0
    ids.free(top)
    assert ids.alloc(top - 1, top) == top - 1
    assert ids.used == 2 and top not in ids and MAX_CAPACITY not in ids


@pytest.mark.parametrize("n", [-1, 3, GROW_CHUNK - 1, GROW_CHUNK, 5 * GROW_CHUNK])
def test_free_of_an_unused_or_unmapped_id_is_refused_and_changes_nothing(n: int) -> None:
    ids = IdAllocator(1 << 20)
    ids.alloc(0, 1)
    with pytest.raises(ValueError, match=f"{n:#x} is not in use"):
        ids.free(n)
    assert ids.used == 1 and ids.mapped == GROW_CHUNK and ids.map[GROW_CHUNK] == 1
    assert ids.alloc(0, (1 << 20) - 1) == 1


@pytest.mark.parametrize("capacity", [0, -1, MAX_CAPACITY + 1])
def test_capacity_out_of_range_is_refused(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        IdAllocator(capacity)


@pytest.mark.parametrize("chunk", [0, -256, 100, 257])
def test_a_chunk_not_a_positive_multiple_of_the_block_is_refused(chunk: int) -> None:
    with pytest.raises(ValueError, match="grow_chunk"):
        IdAllocator(1 << 12, grow_chunk=chunk)


def test_requests_from_one_jump_the_floor_once_and_then_take_the_hint() -> None:
    """Every real caller asks from 1 (PASID 0 is RID2PASID): the floor jumps over the free
    0, so the hint and the heap answer, not a search from the minimum on every call."""
    ids = IdAllocator(1 << 20)
    top = (1 << 20) - 1
    assert ids.alloc(1, top) == 1
    assert ids.floor[0] == 1 and ids.hint[0] == 2
    assert [ids.alloc(1, top) for _ in range(3)] == [2, 3, 4]
    ids.free(3)
    assert ids.holes == [3]
    assert ids.alloc(1, top) == 3  # from the heap
    _check_invariants(ids, {1, 2, 3, 4})


def test_a_parked_id_is_found_by_a_request_from_below_the_floor() -> None:
    """The IDs the floor jumped over stay free: a request from below the floor takes the
    lowest of them (a jump to the mapped end maps the floor first)."""
    ids = IdAllocator(4096, grow_chunk=256)
    for _ in range(200):
        ids.alloc(0, 4095)  # 0 .. 199
    assert ids.hint[0] == 200 and ids.mapped == 256
    assert ids.alloc(256, 4095) == 256  # a jump of 56 to the mapped end
    assert ids.floor[0] == 256 and ids.mapped > 256
    assert ids.alloc(0, 4095) == 200  # parked
    assert ids.alloc(201, 202) == 201
    assert ids.alloc(250, 255) == 250
    assert ids.alloc(0, 4095) == 202
    _check_invariants(ids, set(range(203)) | {250, 256})


def test_the_floor_never_passes_park_max_however_close_the_minimum_lies_to_the_hint() -> None:
    """A request from below the floor searches all of [its minimum, the floor): one request
    from just above a high hint must not lift the floor over the live IDs (every later
    request from 1 would read the map up to it), nor may small steps lift it past
    _PARK_MAX."""
    ids = IdAllocator(1 << 16)
    top = (1 << 16) - 1
    live: set[int] = set()
    while (lo := ids.hint[0] + 1) <= _PARK_MAX:  # just above the hint, no hole left
        assert ids.alloc(lo, top) == lo
        assert ids.floor[0] == lo  # jumped there: the even IDs below are parked
        live.add(lo)
    assert ids.alloc(lo, top) == lo  # just above the hint too, past _PARK_MAX: searched
    live.add(lo)
    assert ids.floor[0] == _PARK_MAX - 1
    for _ in range(5000):
        live.add(ids.alloc(1, top))  # the parked ones first (even IDs), then the hint
    assert min(live) == 1 and ids.floor[0] == _PARK_MAX - 1
    hint = ids.hint[0]
    assert not ids.holes and ids.alloc(hint + 1, top) == hint + 1
    assert ids.floor[0] == _PARK_MAX - 1 and ids.hint[0] == hint  # searched, no jump
    assert ids.alloc(1, top) == hint
    _check_invariants(ids, live | {hint, hint + 1})


def test_a_hole_below_the_floor_is_dropped_and_stays_reachable_from_below() -> None:
    """An ID freed below the floor is parked, not a hole: requests from the floor up take
    the hint (the heap does not keep sending them to a search), one from below takes it."""
    ids = IdAllocator(1 << 12)
    assert ids.alloc(0, 0) == 0
    assert ids.alloc(1, 4095) == 1  # the hint itself: no jump
    assert ids.alloc(5, 4095) == 5  # jumps: 2-4 parked
    assert ids.floor[0] == 5
    ids.free(1)  # below the hint: pushed, but below the floor
    assert ids.alloc(5, 4095) == 6
    assert ids.holes == []  # dropped on the way, not left to divert every request
    assert ids.alloc(0, 4095) == 1
    assert ids.alloc(0, 4095) == 2
    _check_invariants(ids, {0, 1, 2, 5, 6})


@pytest.mark.parametrize("lo", [5, 100, 4095, 4096, 4100, 4096 + 255])
def test_a_minimum_above_the_maximum_finds_nothing_and_moves_neither_hint_nor_floor(
    lo: int,
) -> None:
    """The space's fast path hands the allocator ``min > max`` (even a minimum past the
    capacity) and lets it answer -1: the floor must not jump there."""
    ids = IdAllocator(4096)
    for _ in range(4000):
        ids.alloc(0, 4095)
    before = (ids.hint[0], ids.floor[0], ids.mapped, list(ids.holes))
    assert ids.alloc(lo, 3) == -1
    assert (ids.hint[0], ids.floor[0], ids.mapped, list(ids.holes)) == before
    _check_invariants(ids, set(range(4000)))
