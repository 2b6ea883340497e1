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
        # bytes (what encoders return) are sliced as they are: a view costs more than a burst.
        data = entries if type(entries) is bytes else memoryview(entries).cast("B")
        size = self.entry_size
        length = len(data)
        count = length // size
        if count * size != length:
            raise InvalidArgumentError(
                f"ring entries are {size} bytes each; {length} bytes is not a whole number"
            )
        slots, head, tail = self.entries, self.head, self.tail
        free = slots - 1 - (tail - head) % slots
        taken = count
        if count > free:
            taken = free
            self.overflow = True
            self.dropped += count - free
        buf = self._buf
        start = tail * size
        if tail + taken <= slots:  # no wrap: one copy
            buf[start : start + taken * size] = data if taken == count else data[: taken * size]
        else:
            first = (slots - tail) * size
            buf[start:] = data[:first]
            buf[: taken * size - first] = data[first : taken * size]
        self.tail = (tail + taken) % slots
        return taken

    def drain(self, limit: int | None = None) -> bytes:
        """Software reads the waiting entries (at most ``limit``) and moves the head past them."""
        slots, start = self.entries, self.head
        count = (self.tail - start) % slots
        if limit is not None:
            if limit < 0:
                raise InvalidArgumentError(f"drain limit must not be negative, not {limit}")
            count = min(count, limit)
        size = self.entry_size
        if start + count <= slots:  # no wrap: one slice
            out = bytes(self._buf[start * size : (start + count) * size])
        else:
            out = bytes(self._buf[start * size :]) + self._buf[: (start + count - slots) * size]
        self.head = (start + count) % slots
        return out

    def clear_overflow(self) -> None:
        self.overflow = False
