"""The bounded ring shared by the devices behind a unit: one slot stays empty, writes to a full
ring are dropped and set the sticky overflow flag, indices wrap around."""

from __future__ import annotations

import pytest

from ioasid_core.errors import InvalidArgumentError
from ioasid_core.prq.ring import Ring

SIZE = 4


def entry(n: int) -> bytes:
    return bytes([n]) * SIZE


def state(ring: Ring) -> tuple[int, int, bool, int, int]:
    return (ring.head, ring.tail, ring.overflow, ring.dropped, len(ring))


def test_a_new_ring_is_empty() -> None:
    ring = Ring(8, SIZE)
    assert state(ring) == (0, 0, False, 0, 0)
    assert ring.free_slots == 7
    assert ring.drain() == b""


@pytest.mark.parametrize("entries", [-1, 0, 1])
def test_a_ring_needs_at_least_two_entries(entries: int) -> None:
    with pytest.raises(InvalidArgumentError, match="2 entries"):
        Ring(entries, SIZE)


@pytest.mark.parametrize("size", [-4, 0])
def test_a_ring_needs_a_positive_entry_size(size: int) -> None:
    with pytest.raises(InvalidArgumentError, match="positive"):
        Ring(4, size)


def test_the_ring_is_full_with_one_slot_left_empty() -> None:
    ring = Ring(4, SIZE)
    for n in range(3):
        assert ring.push(entry(n))
    assert len(ring) == 3
    assert ring.free_slots == 0
    assert not ring.overflow
    assert ring.tail == 3


def test_a_write_to_a_full_ring_is_dropped_and_sets_overflow() -> None:
    ring = Ring(4, SIZE)
    for n in range(3):
        ring.push(entry(n))
    before = (ring.head, ring.tail, len(ring))
    assert not ring.push(entry(9))
    assert ring.overflow
    assert ring.dropped == 1
    assert (ring.head, ring.tail, len(ring)) == before
    assert not ring.push(entry(10))
    assert ring.dropped == 2
    assert ring.drain() == entry(0) + entry(1) + entry(2)  # the dropped ones are not there


def test_overflow_stays_set_after_draining_until_cleared() -> None:
    ring = Ring(2, SIZE)
    ring.push(entry(1))
    assert not ring.push(entry(2))
    ring.drain()
    assert ring.overflow
    assert ring.push(entry(3))  # room again, the flag is still up
    assert ring.overflow
    ring.clear_overflow()
    assert not ring.overflow
    assert ring.dropped == 1


def test_drain_returns_the_entries_in_order_and_empties_the_ring() -> None:
    ring = Ring(8, SIZE)
    for n in range(5):
        ring.push(entry(n))
    assert ring.drain() == b"".join(entry(n) for n in range(5))
    assert len(ring) == 0
    assert ring.head == ring.tail == 5
    assert ring.drain() == b""


def test_drain_limit_reads_at_most_that_many_entries() -> None:
    ring = Ring(8, SIZE)
    for n in range(5):
        ring.push(entry(n))
    assert ring.drain(2) == entry(0) + entry(1)
    assert ring.head == 2
    assert len(ring) == 3
    assert ring.drain(0) == b""
    assert ring.head == 2
    assert ring.drain(10) == entry(2) + entry(3) + entry(4)
    assert len(ring) == 0


def test_drain_with_a_negative_limit_reads_nothing_and_moves_nothing() -> None:
    ring = Ring(8, SIZE)
    ring.push(entry(1))
    before = state(ring)
    try:
        out = ring.drain(-1)
    except ValueError:  # refusing it is fine too (InvalidArgumentError is a ValueError)
        pass
    else:
        assert out == b""
    assert state(ring) == before


def test_indices_wrap_around_and_entries_keep_their_order() -> None:
    ring = Ring(4, SIZE)
    for n in range(3):
        ring.push(entry(n))
    assert ring.drain(2) == entry(0) + entry(1)
    assert ring.push(entry(3))
    assert ring.tail == 0  # wrapped
    assert ring.push(entry(4))
    assert ring.tail == 1
    assert len(ring) == 3
    assert not ring.push(entry(5))  # full again across the wrap
    assert ring.drain() == entry(2) + entry(3) + entry(4)
    assert ring.head == ring.tail == 1


def test_a_limited_drain_across_the_wrap_reads_both_parts() -> None:
    ring = Ring(4, SIZE)
    for n in range(3):
        ring.push(entry(n))
    ring.drain(3)  # head = tail = 3
    for n in (7, 8, 9):
        ring.push(entry(n))
    assert ring.drain(2) == entry(7) + entry(8)
    assert ring.drain(5) == entry(9)


def test_many_laps_keep_fifo_order() -> None:
    ring = Ring(5, SIZE)
    expected: list[bytes] = []
    got = b""
    for n in range(60):
        ring.push(entry(n))
        expected.append(entry(n))
        if n % 3 == 2:  # 3 entries a lap on a 5-slot ring: every wrap offset is visited
            got += ring.drain(2)
            got += ring.drain(1)
    got += ring.drain()
    assert got == b"".join(expected)
    assert not ring.overflow


@pytest.mark.parametrize("bad", [b"", b"\x00" * (SIZE - 1), b"\x00" * (SIZE + 1)])
def test_an_entry_of_the_wrong_size_is_refused_and_changes_nothing(bad: bytes) -> None:
    ring = Ring(4, SIZE)
    ring.push(entry(1))
    before = state(ring)
    with pytest.raises(InvalidArgumentError, match=f"{SIZE} bytes"):
        ring.push(bad)
    assert state(ring) == before
    assert ring.drain() == entry(1)


def test_push_accepts_any_buffer() -> None:
    ring = Ring(4, SIZE)
    assert ring.push(bytearray(entry(1)))
    assert ring.push(memoryview(entry(2)))
    assert ring.drain() == entry(1) + entry(2)
