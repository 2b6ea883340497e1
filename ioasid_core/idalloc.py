"""The default allocator: the lowest free ID at or above a minimum, as ``xa_alloc`` gives.

One byte per ID says whether it is used (the map: the truth), and one byte per block of 256
IDs says the block is known to be full. Searches run in C (``bytearray.find``): the block of
the minimum, then the first block not known to be full. A full flag is set only after a scan
found nothing free in the whole block.

The map covers only the IDs up to the highest one handed out so far (rounded up, at least
doubling, to a multiple of ``GROW_CHUNK``), not the whole capacity: every ID above it has
never been used, so it is free. It grows in place (the same ``bytearray``, which the space's
inlined fast paths hold) and ends in a sentinel byte that reads as used, so a search or the
fast path's hint test that reaches the end stops there and the slow path grows the map. So
memory follows the highest ID handed out so far (the map never shrinks): a space of 2^20 IDs
holding its 1,000 lowest costs 4 KiB of map, not 1 MiB; one ID near the top maps it all.
Lists of ``slots`` (the space's records and data: records_view.py) are kept exactly as long
as the map and grown with it, in place: whoever indexes one by a mapped ID never meets its
end.

The hint and the holes. ``hint[0]`` only grows (until a spill, below): every ID below it is
used, except the *holes*, the IDs freed below it, which ``holes`` lists as a min-heap. So the
lowest free ID is the lowest hole, else the hint or above. A request whose minimum is at or
below the lowest hole takes it (one ``heappop``, whatever the number of live IDs or where the
hole lies); with no hole, it takes the hint when that is free (filling a space), else
searches up from the hint. A workload that frees IDs scattered over a million live ones and
allocates again pays what it pays among a thousand: no block scan between the holes, no
cold map lines. Freeing a hole leaves its block's full flag alone (a store the hot path
saves), so a flag may hide holes, and only holes: an ID freed at or above the hint clears
its flag. A search from the hint runs when no hole is left, so its flags are exact. A
search from a higher minimum than the lowest hole (the one case left) takes the lower of
what the flags lead to and the lowest hole at or above the minimum.

The heap may hold stale entries: a hole such a search took (a heap cannot drop it cheaply)
is popped when it reaches the top, and the heap is compacted when such entries could be
half of it. It holds one entry per ID freed below the hint, and a few repeats (a hole such
a search took, then freed again, until the compaction); past ``SPILL`` entries, a free
(the space's inlined one too) *spills* them: it clears the holes' flags, lowers the hint to
the lowest hole and empties the heap, which is the search-from-the-hint design again,
correct at any size (the heap costs up to 40 bytes per freed ID; the map a byte).

The floor. A request whose minimum lies just above the hint when no hole is left (every real
caller asks from 1: PASID 0 is the devices' own, RID2PASID) would find the hint below its
minimum on every call and search. So the floor, ``floor[0]``, jumps there with the hint,
never past ``_PARK_MAX``: the free IDs below the floor are *parked*, in no heap and under no
trusted flag, and a request from below the floor finds them by a search of the map itself
between its minimum and the floor (in C, stopping at the first free byte: at most
``_PARK_MAX`` bytes, however many IDs are live). The heap and the hint describe the IDs from
the floor up; a hole freed below it is dropped from the heap when it reaches the top. The
fast paths take only requests from the floor up.

A search from the hint flags the hint's block full when the rest of it is used (all of it
below the hint is, as no hole is left), so a free ID far above costs three C searches (the
rest of the hint's block, the flags, the block found), whatever the number of live IDs,
instead of one more per block left unflagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush
from itertools import repeat
from typing import Any, Final

__all__ = ["BLOCK_SHIFT", "GROW_CHUNK", "MAX_CAPACITY", "SPILL", "IdAllocator"]

BLOCK_SHIFT: Final = 8
_BLOCK: Final = 1 << BLOCK_SHIFT
_IN_BLOCK: Final = _BLOCK - 1

GROW_CHUNK: Final = 1 << 12
"""The map's first size and the step it grows by (a multiple of the block; an allocator may
be given another, as tests do to cross many steps in few IDs)."""

MAX_CAPACITY: Final = 1 << 26
"""The largest space modelled (64 MiB of map when every ID is used, and 512 MiB per list of
slots a space keeps its records in). PCIe PASIDs have 20 bits."""


_PARK_MAX: Final = 1 << BLOCK_SHIFT
"""The highest the floor goes (so the widest gap it jumps, parking the IDs in it): a request
from further up searches the map from its minimum instead, and a request from below the
floor reads at most this many bytes of the map."""

SPILL: Final = 1 << 16
"""The heap entries a free lets the heap hold before it spills them back into the map
(about 2.5 MiB of heap and ints; a million-ID space keeps 1 MiB of map). Read when called;
the space's fast paths read it when they are installed."""

_SCAN_MAX: Final = 64
"""The holes a search from above the lowest one reads one by one; with more, it spills them."""

_STALE_FLOOR: Final = 32
"""Stale heap entries tolerated before a compaction is considered (see ``_search``)."""


class IdAllocator:
    """Hands out the lowest free integer in ``[lo, hi]`` from ``[0, capacity)``."""

    __slots__ = (
        "_capacity",
        "_chunk",
        "_mapped",
        "_slots",
        "_stale",
        "floor",
        "full",
        "hint",
        "holes",
        "map",
    )

    def __init__(
        self, capacity: int, grow_chunk: int = GROW_CHUNK, slots: Sequence[list[Any]] = ()
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
        # free IDs outside ``holes`` (the heap of IDs freed below the hint) from ``floor[0]``
        # up. All five are only ever changed in place, never rebound.
        size = min(capacity, grow_chunk)
        self._mapped = size  # len(map) - 1, kept: the searches need it without arithmetic
        self.map = bytearray(size + 1)
        self.map[size] = 1
        self.full = bytearray((size + _IN_BLOCK) >> BLOCK_SHIFT)
        self.hint = [0]
        self.floor = [0]
        self.holes: list[int] = []
        self._stale = 0  # holes a search has taken since the last compaction (at most)
        # One entry per mapped ID in each, None when the map grows over it (the space's
        # records and data).
        if any(slots):
            raise ValueError("the slots lists must start empty")
        self._slots = tuple(slots)
        for each in self._slots:
            each.extend(repeat(None, size))

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

        The caller has checked ``0 <= lo`` and ``hi < capacity``; ``lo > hi`` finds none.
        """
        used = self.map
        hint = self.hint
        holes = self.holes
        floor = self.floor[0]
        if lo < floor:
            # Parked IDs: no structure lists them; the map between lo and the floor does.
            n = used.find(0, lo, min(floor, hi + 1))
            if n >= 0:
                used[n] = 1
                return n
            lo = floor  # every ID in [lo, floor) is used
            if lo > hi:
                return -1
        while holes:  # at most SPILL entries: every free past them spills
            n = holes[0]
            if used[n] or n < floor:  # taken by a ranged search, or parked: drop it
                heappop(holes)
                continue
            if lo > n:  # other holes may lie at or above lo
                return self._search(lo, hi)
            # The lowest hole is the lowest free ID at or above lo (every free ID below the
            # hint is a hole, and the hint lies above them).
            if n > hi:
                return -1
            heappop(holes)
            used[n] = 1
            return n
        n = hint[0]
        if n < lo <= hi and lo <= _PARK_MAX:  # (lo <= hi: below the capacity)
            # No hole is left, so every ID in [floor, hint) is used: the floor and the hint
            # jump to lo, parking the IDs between (mapped first, so that the map shows them).
            # Never past _PARK_MAX: a request from below the floor searches all of [lo, floor)
            # (a floor lifted over live IDs by one request from just above a high hint would
            # send every later request from 1 there, off the fast paths, for good).
            if lo >= self._mapped:
                self._grow(lo)
            self.floor[0] = hint[0] = n = lo
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
        return self._search(lo, hi)  # above the hint: no hole lies there

    def _search(self, lo: int, hi: int) -> int:
        """The lowest free ID in ``[lo, hi]`` from the map, taken; the hint stays.

        Below the hint a full flag may hide a hole (``free`` leaves it), never another free
        ID: the answer is the lower of what the flags lead to and the lowest hole at or
        above ``lo``. A hole taken here stays in the heap, stale, until it reaches the top.
        """
        used = self.map
        hint = self.hint[0]
        if lo < hint and len(self.holes) > _SCAN_MAX:
            self._spill()  # then every flag is exact: the map's search alone answers
            hint = self.hint[0]
        n = self._find(lo, False)
        if lo < hint and self.holes:
            below = n if 0 <= n < hint else hint
            for h in self.holes:  # at most _SCAN_MAX entries
                if lo <= h < below and not used[h]:
                    below = h
            if below < hint:
                n = below
        if n < 0 or n > hi:
            return -1
        if n >= self._mapped:
            self._grow(n)
        used[n] = 1
        if n < hint:  # a hole: its heap entry is stale now
            self._stale += 1
            if self._stale > _STALE_FLOOR and 2 * self._stale > len(self.holes):
                self._compact()
        return n

    def _compact(self) -> None:
        """Drop the heap's stale and repeated entries (in place: the fast paths hold it)."""
        used = self.map
        holes = self.holes
        holes[:] = sorted({n for n in holes if not used[n]})  # a sorted list is a heap
        self._stale = 0

    def _spill(self) -> None:
        """Give the holes back to the map's search: clear their blocks' flags, lower the
        hint to the lowest of them, empty the heap (in place). Every flag is exact after."""
        used = self.map
        full = self.full
        lowest = self.hint[0]
        floor = self.floor[0]
        for n in self.holes:
            if not used[n]:
                full[n >> BLOCK_SHIFT] = 0
                if floor <= n < lowest:  # a parked one stays parked
                    lowest = n
        self.holes.clear()
        self.hint[0] = lowest
        self._stale = 0

    def free(self, n: int) -> None:
        """Give one ID back; it must be in use."""
        if not (0 <= n < self._mapped and self.map[n]):
            raise ValueError(f"ID {n:#x} is not in use")
        self.map[n] = 0
        if n < self.hint[0]:
            heappush(self.holes, n)  # its block's flag may stay set: see the module's notes
            if len(self.holes) > SPILL:
                self._spill()
        else:
            self.full[n >> BLOCK_SHIFT] = 0

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
        for each in self._slots:  # first: a slot exists before its ID is mapped
            each.extend(repeat(None, end - size))
        used[size] = 0  # the old sentinel is an ID now
        used.extend(bytes(end - size))
        used[end] = 1
        self.full.extend(bytes(((end + _IN_BLOCK) >> BLOCK_SHIFT) - len(self.full)))
        self._mapped = end
