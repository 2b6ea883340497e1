"""The default allocator: the lowest free ID at or above a minimum, as ``xa_alloc`` gives.

One byte per ID says whether it is used, and one byte per block of 256 IDs says the block is
known to be full. Searches run in C (``bytearray.find``): the block of the minimum, then the
first block not known to be full. A full flag is set only after a scan found nothing free in
the whole block, and cleared whenever one of its IDs is freed, so a set flag is always true
and a clear one costs at most one extra 256-byte scan before it is set.

The map covers only the IDs up to the highest one handed out so far (rounded up, at least
doubling, to a multiple of ``GROW_CHUNK``), not the whole capacity: every ID above it has
never been used, so it is free. It grows in place (the same ``bytearray``, which the space's
inlined fast paths hold) and ends in a sentinel byte that reads as used, so a search or the
fast path's hint test that reaches the end stops there and the slow path grows the map. So
memory follows the highest ID handed out so far (the map never shrinks): a space of 2^20 IDs
holding its 1,000 lowest costs 4 KiB of map, not 1 MiB; one ID near the top maps it all.
A list of ``slots`` (the space's records, one per ID) is kept exactly as long as the map and
grown with it, in place: whoever indexes it by a mapped ID never meets its end.

A hint, ``hint[0]``, is a lower bound of the free IDs: every ID below it is used. A request
whose minimum is at or below the hint is answered by the hint itself when it is free, which is
the common case (filling a space, or freeing and reallocating the same ID) and costs a few
byte operations; the hint only moves forward lazily. A search from the hint flags the hint's
block full when the rest of it is used (all of it below the hint is), so a hole far from the
previous one costs three C searches (the rest of the hint's block, the flags, the block
found), whatever the number of live IDs, instead of one more per block left unflagged.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Final

__all__ = ["BLOCK_SHIFT", "GROW_CHUNK", "MAX_CAPACITY", "IdAllocator"]

BLOCK_SHIFT: Final = 8
_BLOCK: Final = 1 << BLOCK_SHIFT
_IN_BLOCK: Final = _BLOCK - 1

GROW_CHUNK: Final = 1 << 12
"""The map's first size and the step it grows by (a multiple of the block; an allocator may
be given another, as tests do to cross many steps in few IDs)."""

MAX_CAPACITY: Final = 1 << 26
"""The largest space modelled (64 MiB of map when every ID is used, and 512 MiB of slots
for a space that keeps its records in them). PCIe PASIDs have 20 bits."""


class IdAllocator:
    """Hands out the lowest free integer in ``[lo, hi]`` from ``[0, capacity)``."""

    __slots__ = ("_capacity", "_chunk", "_mapped", "_slots", "full", "hint", "map")

    def __init__(
        self, capacity: int, grow_chunk: int = GROW_CHUNK, slots: list[Any] | None = None
    ) -> None:
        if not 0 < capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity must be in 1..{MAX_CAPACITY:#x}, not {capacity:#x}")
        if grow_chunk <= 0 or grow_chunk & _IN_BLOCK:
            raise ValueError(f"grow_chunk must be a positive multiple of {_BLOCK}: {grow_chunk}")
        self._capacity = capacity
        self._chunk = grow_chunk
        # Public so that the space's hot paths can inline the common case (see fastpath.py):
        # ``map[n]`` is 1 when n is used (n below ``mapped``; ``map[mapped]`` is the sentinel,
        # 1), ``full[b]`` when block b is known full, ``hint[0]`` is the lower bound of the
        # free IDs. All three are only ever changed in place, never rebound.
        size = min(capacity, grow_chunk)
        self._mapped = size  # len(map) - 1, kept: the searches need it without arithmetic
        self.map = bytearray(size + 1)
        self.map[size] = 1
        self.full = bytearray((size + _IN_BLOCK) >> BLOCK_SHIFT)
        self.hint = [0]
        # One entry per mapped ID, None when the map grows over it (the space's records).
        if slots is not None:
            if slots:
                raise ValueError("the slots list must start empty")
            slots.extend(repeat(None, size))
        self._slots = slots

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def mapped(self) -> int:
        """How many IDs the map covers now (the rest have never been used)."""
        return self._mapped

    @property
    def used(self) -> int:
        """How many IDs are handed out (counted: for tests and reports, not hot paths)."""
        return self.map.count(1) - 1  # not the sentinel

    def __contains__(self, n: int) -> bool:
        return 0 <= n < self._mapped and bool(self.map[n])

    def cover(self, n: int) -> None:
        """Map every ID up to ``n`` (below the capacity): for an ID handed out by someone
        else (a custom allocator), so that the slots reach it. It stays free in the map."""
        if not 0 <= n < self._capacity:
            raise ValueError(f"ID {n:#x} is outside [0, {self._capacity:#x})")
        if n >= self._mapped:
            self._grow(n)

    def alloc(self, lo: int, hi: int) -> int:
        """Take the lowest free ID in ``[lo, hi]``; return -1 when there is none.

        The caller has checked ``0 <= lo <= hi < capacity``.
        """
        used = self.map
        hint = self.hint
        n = hint[0]
        if lo <= n:
            # Everything below the hint is used: the answer is the hint or above.
            if n > hi:
                return -1
            if not used[n]:
                used[n] = 1
                hint[0] = n + 1
                return n
            n = self._find(n, True)
            if n < 0:
                return -1
            if n > hi:
                hint[0] = n  # nothing free below it
                return -1
            if n >= self._mapped:
                self._grow(n)
            used[n] = 1
            hint[0] = n + 1
            return n
        n = self._find(lo, False)  # above the hint: the hint stays
        if n < 0 or n > hi:
            return -1
        if n >= self._mapped:
            self._grow(n)
        used[n] = 1
        return n

    def free(self, n: int) -> None:
        """Give one ID back; it must be in use."""
        if not (0 <= n < self._mapped and self.map[n]):
            raise ValueError(f"ID {n:#x} is not in use")
        self.map[n] = 0
        self.full[n >> BLOCK_SHIFT] = 0
        if n < self.hint[0]:
            self.hint[0] = n

    def _find(self, n: int, below_used: bool) -> int:
        """The lowest free ID at or above ``n``, or -1. ``below_used``: every ID below ``n``
        is known to be used (``n`` is the hint), so a block found full from ``n`` is full."""
        size = self._mapped
        if n < size:
            used = self.map
            full = self.full
            block = n >> BLOCK_SHIFT
            found = used.find(0, n, (block + 1) << BLOCK_SHIFT)
            if found >= 0:
                return found
            if below_used or not n & _IN_BLOCK:
                full[block] = 1  # the whole block is used
            while True:
                block = full.find(0, block + 1)
                if block < 0:
                    break
                start = block << BLOCK_SHIFT
                found = used.find(0, start, start + _BLOCK)
                if found >= 0:
                    return found
                full[block] = 1
            n = size  # every mapped ID from n up is used; the unmapped ones are free
        return n if n < self._capacity else -1

    def _grow(self, n: int) -> None:
        """Map every ID up to ``n`` (in place: the fast paths hold these very objects)."""
        used = self.map
        size = self._mapped
        chunk = self._chunk
        end = min(self._capacity, max(2 * size, n // chunk * chunk + chunk))
        if self._slots is not None:  # first: a slot exists before its ID is mapped
            self._slots.extend(repeat(None, end - size))
        used[size] = 0  # the old sentinel is an ID now
        used.extend(bytes(end - size))
        used[end] = 1
        self.full.extend(bytes(((end + _IN_BLOCK) >> BLOCK_SHIFT) - len(self.full)))
        self._mapped = end
