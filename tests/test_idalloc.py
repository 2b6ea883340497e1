"""The default allocator against a brute-force model: lowest free ID in [lo, hi]."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.idalloc import BLOCK_SHIFT, MAX_CAPACITY, IdAllocator

_capacities = st.sampled_from([1, 2, 255, 256, 257, 511, 1000, 1 << 12])


@settings(max_examples=200, deadline=None)
@given(_capacities, st.data())
def test_alloc_returns_the_lowest_free_id_in_range(capacity: int, data: st.DataObject) -> None:
    ids = IdAllocator(capacity)
    used: set[int] = set()
    for _ in range(data.draw(st.integers(1, 80))):
        action = data.draw(st.sampled_from(["alloc", "alloc", "free"]))
        if action == "free" and used:
            n = data.draw(st.sampled_from(sorted(used)))
            ids.free(n)
            used.discard(n)
        else:
            lo = data.draw(st.integers(0, capacity - 1))
            hi = data.draw(st.integers(lo, capacity - 1))
            expected = next((i for i in range(lo, hi + 1) if i not in used), -1)
            assert ids.alloc(lo, hi) == expected
            if expected >= 0:
                used.add(expected)
        assert ids.used == len(used)
        assert all((n in ids) == (n in used) for n in range(capacity))


@pytest.mark.parametrize("capacity", [1, 255, 256, 257, 4096, 4097])
def test_fill_hands_out_every_id_once_in_order(capacity: int) -> None:
    ids = IdAllocator(capacity)
    assert [ids.alloc(0, capacity - 1) for _ in range(capacity)] == list(range(capacity))
    assert ids.alloc(0, capacity - 1) == -1


def test_full_block_flags_are_cleared_by_a_free_inside_the_block() -> None:
    capacity = 4 << BLOCK_SHIFT
    ids = IdAllocator(capacity)
    for _ in range(capacity):
        ids.alloc(0, capacity - 1)
    assert ids.alloc(0, capacity - 1) == -1  # every block now flagged full
    inside = (2 << BLOCK_SHIFT) + 7
    ids.free(inside)
    assert ids.alloc(1 << BLOCK_SHIFT, capacity - 1) == inside


def test_free_of_an_unused_id_is_refused() -> None:
    ids = IdAllocator(16)
    with pytest.raises(ValueError, match="0x3 is not in use"):
        ids.free(3)


@pytest.mark.parametrize("capacity", [0, -1, MAX_CAPACITY + 1])
def test_capacity_out_of_range_is_refused(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity"):
        IdAllocator(capacity)
