"""A bounded hardware queue of fixed-size raw entries, shared by every device behind a unit.

The hardware writes at the tail, software reads from the head. As on VT-d and SMMUv3 the ring
is full when advancing the tail would make it equal the head (one slot stays empty, so head ==
tail means empty). A write to a full ring is dropped and sets the overflow flag, which stays
set until software clears it.
"""

from __future__ import annotations

from ioasid_core.bits import Buffer
from ioasid_core.errors import InvalidArgumentError

__all__ = ["Ring"]


class Ring:
    """``entries`` slots of ``entry_size`` bytes; ``head``/``tail`` are slot indices."""

    def __init__(self, entries: int, entry_size: int) -> None:
        if entries < 2:
            raise InvalidArgumentError(f"a ring needs at least 2 entries, not {entries}")
        if entry_size <= 0:
            raise InvalidArgumentError(f"entry size must be positive, not {entry_size}")
        self.entries = entries
        self.entry_size = entry_size
        self.head = 0
        self.tail = 0
        self.overflow = False
        self.dropped = 0
        self._buf = bytearray(entries * entry_size)

    def __len__(self) -> int:
        """How many entries wait to be read."""
        return (self.tail - self.head) % self.entries

    @property
    def free_slots(self) -> int:
        return self.entries - 1 - len(self)

    def push(self, entry: Buffer) -> bool:
        """The hardware writes one entry; False (overflow set, entry dropped) when full."""
        if len(entry) != self.entry_size:
            raise InvalidArgumentError(
                f"ring entry must be {self.entry_size} bytes, got {len(entry)}"
            )
        nxt = (self.tail + 1) % self.entries
        if nxt == self.head:
            self.overflow = True
            self.dropped += 1
            return False
        start = self.tail * self.entry_size
        self._buf[start : start + self.entry_size] = entry
        self.tail = nxt
        return True

    def push_many(self, entries: Buffer) -> int:
        """The hardware writes whole entries back to back, in order, until the ring is full;
        returns how many it took (the rest are dropped, overflow set, as ``push`` would)."""
        data = memoryview(entries).cast("B")
        size = self.entry_size
        count, odd = divmod(len(data), size)
        if odd:
            raise InvalidArgumentError(
                f"ring entries are {size} bytes each; {len(data)} bytes is not a whole number"
            )
        taken = min(count, self.free_slots)
        if taken < count:
            self.overflow = True
            self.dropped += count - taken
        tail = self.tail
        first = min(taken, self.entries - tail)
        buf = self._buf
        buf[tail * size : (tail + first) * size] = data[: first * size]
        if taken > first:
            buf[: (taken - first) * size] = data[first * size : taken * size]
        self.tail = (tail + taken) % self.entries
        return taken

    def drain(self, limit: int | None = None) -> bytes:
        """Software reads the waiting entries (at most ``limit``) and moves the head past them."""
        count = len(self)
        if limit is not None:
            if limit < 0:
                raise InvalidArgumentError(f"drain limit must not be negative, not {limit}")
            count = min(count, limit)
        size = self.entry_size
        start = self.head
        first = min(count, self.entries - start)
        out = bytes(self._buf[start * size : (start + first) * size])
        if count > first:
            out += bytes(self._buf[: (count - first) * size])
        self.head = (start + count) % self.entries
        return out

    def clear_overflow(self) -> None:
        self.overflow = False
