"""The default allocator: the lowest free ID at or above a minimum, as ``xa_alloc`` gives.

A hierarchy of 64-bit bitmaps: at level 0 a set bit is a used ID; at level ``k + 1`` a set bit
says that word ``i`` of level ``k`` is full. Finding the lowest free ID at or above ``n`` looks
at one word per level, so the cost does not grow with the number of live IDs, and the whole
structure costs about one bit per ID (a 2^20 space needs ~130 KiB).

A hint, ``_lowest``, is the lowest free ID of the whole space: below it every ID is used, so
any request whose minimum is at or below it is answered at once. Filling a space, or freeing
and reallocating the same ID, then touches a single word.
"""

from __future__ import annotations

__all__ = ["IdAllocator"]

_BITS = 64
_SHIFT = 6
_LOW = _BITS - 1
_FULL = (1 << _BITS) - 1


class IdAllocator:
    """Hands out the lowest free integer in ``[lo, hi]`` from ``[0, capacity)``."""

    __slots__ = ("_capacity", "_levels", "_lowest", "_used")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, not {capacity}")
        self._capacity = capacity
        self._used = 0
        levels: list[list[int]] = []
        count = capacity
        while True:
            nwords = (count + _LOW) >> _SHIFT
            words = [0] * nwords
            tail = count & _LOW
            if tail:
                # Bits beyond the end are marked used, so a partial word can become full.
                words[-1] = _FULL & ~((1 << tail) - 1)
            levels.append(words)
            if nwords == 1:
                break
            count = nwords
        # A partial last word that is already full (impossible: tail > 0 leaves free bits).
        self._levels = levels
        self._lowest = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def used(self) -> int:
        """How many IDs are handed out."""
        return self._used

    def __contains__(self, n: int) -> bool:
        if not 0 <= n < self._capacity:
            return False
        return bool(self._levels[0][n >> _SHIFT] >> (n & _LOW) & 1)

    def alloc(self, lo: int, hi: int) -> int:
        """Take the lowest free ID in ``[lo, hi]``; return -1 when there is none.

        The caller has checked ``0 <= lo <= hi < capacity``.
        """
        n = self._lowest if lo <= self._lowest else self._find(lo)
        if n < 0 or n > hi:
            return -1
        self._mark(n)
        if n == self._lowest:
            self._lowest = self._find(n + 1) if n + 1 < self._capacity else -1
            if self._lowest < 0:
                self._lowest = self._capacity  # full: no request's minimum reaches it
        return n

    def take(self, n: int) -> bool:
        """Mark one given ID used; False if it already was."""
        if n in self:
            return False
        self._mark(n)
        if n == self._lowest:
            nxt = self._find(n + 1) if n + 1 < self._capacity else -1
            self._lowest = self._capacity if nxt < 0 else nxt
        return True

    def free(self, n: int) -> None:
        """Give one ID back; it must be in use."""
        levels = self._levels
        words = levels[0]
        w = n >> _SHIFT
        bit = 1 << (n & _LOW)
        old = words[w]
        if not old & bit:
            raise ValueError(f"ID {n:#x} is not in use")
        words[w] = old ^ bit
        self._used -= 1
        if n < self._lowest:
            self._lowest = n
        # Only a word that was full can clear the bit above it.
        depth = 1
        while old == _FULL and depth < len(levels):
            n = w
            words = levels[depth]
            w = n >> _SHIFT
            old = words[w]
            words[w] = old & ~(1 << (n & _LOW))
            depth += 1

    def _mark(self, n: int) -> None:
        levels = self._levels
        words = levels[0]
        w = n >> _SHIFT
        new = words[w] | (1 << (n & _LOW))
        words[w] = new
        self._used += 1
        depth = 1
        while new == _FULL and depth < len(levels):
            n = w
            words = levels[depth]
            w = n >> _SHIFT
            new = words[w] | (1 << (n & _LOW))
            words[w] = new
            depth += 1

    def _find(self, n: int) -> int:
        """The lowest free ID at or above ``n``, or -1."""
        levels = self._levels
        top = len(levels) - 1
        depth = 0
        # Climb until a word has a free bit at or after the position.
        while True:
            words = levels[depth]
            w = n >> _SHIFT
            if w >= len(words):
                return -1
            free = ~words[w] & _FULL & (_FULL << (n & _LOW))
            if free:
                break
            if depth == top:
                return -1
            n = w + 1
            depth += 1
        pos = (w << _SHIFT) | ((free & -free).bit_length() - 1)
        # Descend: the first word below with a free bit is the one this bit names.
        while depth:
            depth -= 1
            free = ~levels[depth][pos] & _FULL
            pos = (pos << _SHIFT) | ((free & -free).bit_length() - 1)
        return pos
