"""The default allocator: the lowest free ID at or above a minimum, as ``xa_alloc`` gives.

One byte per ID says whether it is used, and one byte per block of 256 IDs says the block is
known to be full. Searches run in C (``bytearray.find``): the block of the minimum, then the
first block not known to be full. A full flag is set only after a scan of the whole block
found nothing free, and cleared whenever one of its IDs is freed, so a set flag is always
true and a clear one costs at most one extra 256-byte scan before it is set.

A hint, ``_lowest``, is a lower bound of the free IDs: every ID below it is used. A request
whose minimum is at or below the hint is answered by the hint itself when it is free, which is
the common case (filling a space, or freeing and reallocating the same ID) and costs a few
byte operations; the hint only moves forward lazily. So the cost does not grow with the number
of live IDs, and memory is about one byte per ID of capacity.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BLOCK_SHIFT", "MAX_CAPACITY", "IdAllocator"]

BLOCK_SHIFT: Final = 8
_BLOCK: Final = 1 << BLOCK_SHIFT

MAX_CAPACITY: Final = 1 << 26
"""The largest space modelled (64 MiB of map). PCIe PASIDs have 20 bits."""


class IdAllocator:
    """Hands out the lowest free integer in ``[lo, hi]`` from ``[0, capacity)``."""

    __slots__ = ("_capacity", "full", "hint", "map")

    def __init__(self, capacity: int) -> None:
        if not 0 < capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity must be in 1..{MAX_CAPACITY:#x}, not {capacity:#x}")
        self._capacity = capacity
        # Public so that the space's hot paths can inline the common case (see fastpath.py):
        # ``map[n]`` is 1 when n is used, ``full[b]`` when block b is known full, ``hint[0]``
        # is the lower bound of the free IDs.
        self.map = bytearray(capacity)
        self.full = bytearray((capacity + _BLOCK - 1) >> BLOCK_SHIFT)
        self.hint = [0]

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def used(self) -> int:
        """How many IDs are handed out (counted: for tests and reports, not hot paths)."""
        return self.map.count(1)

    def __contains__(self, n: int) -> bool:
        return 0 <= n < self._capacity and bool(self.map[n])

    def alloc(self, lo: int, hi: int) -> int:
        """Take the lowest free ID in ``[lo, hi]``; return -1 when there is none.

        The caller has checked ``0 <= lo <= hi < capacity``.
        """
        n = self.hint[0]
        if lo <= n <= hi and not self.map[n]:
            # Everything below the hint is used: the hint is the answer.
            self.map[n] = 1
            self.hint[0] = n + 1
            return n
        if lo <= n:
            n = self._find(n)
            if n >= 0:
                self.hint[0] = n  # nothing free below it
        else:
            n = self._find(lo)
        if n < 0 or n > hi:
            return -1
        self.map[n] = 1
        if n == self.hint[0]:
            self.hint[0] = n + 1
        return n

    def free(self, n: int) -> None:
        """Give one ID back; it must be in use."""
        if not self.map[n]:
            raise ValueError(f"ID {n:#x} is not in use")
        self.map[n] = 0
        self.full[n >> BLOCK_SHIFT] = 0
        if n < self.hint[0]:
            self.hint[0] = n

    def _find(self, n: int) -> int:
        """The lowest free ID at or above ``n``, or -1."""
        if n >= self._capacity:
            return -1
        used = self.map
        full = self.full
        block = n >> BLOCK_SHIFT
        found = used.find(0, n, (block + 1) << BLOCK_SHIFT)
        if found >= 0:
            return found
        if not n & (_BLOCK - 1):
            full[block] = 1  # the whole block was scanned
        while True:
            block = full.find(0, block + 1)
            if block < 0:
                return -1
            start = block << BLOCK_SHIFT
            found = used.find(0, start, start + _BLOCK)
            if found >= 0:
                return found
            full[block] = 1
