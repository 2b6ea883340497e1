"""The space's records lists, and ``RecordsView``, the read-only mapping plugins get of them.

The space keeps its records in two lists indexed by ID, which is what its own hot paths
read: a list index is cheaper than a dict lookup and costs no int object, hash slot or entry
per ID. ``records[id]`` holds ``(set, refs, free_pending)``, None when the ID is not
allocated, and ``data[id]`` its private data. The tuple is immutable, replaced whole, and
for an ID with one reference and no free pending it is its set's shared ``_fresh`` tuple:
no tuple is built or destroyed per ID (a tuple per ID, with the data in it, was a cold
cache line per lookup among a million live IDs, and its GC unlink two more).

Lock-free readers of one ID see one consistent record because of the order of the writes
and the reads. Writers (under the space's lock) store the data before the tuple, and clear
the tuple before the data. A reader reads the tuple, then the data, in straight-line code
with no call between the two reads: CPython switches threads only at calls and backward
jumps, so no other thread's alloc or free lands between them. A scan of the tuples reads a
copy (``snapshot``); a scan of tuples and data copies both and checks that no write but an
allocation began between (``IoasidSpace._copy_records``: comparing the copies cannot tell,
as a set's shared tuple is the same object before and after another set's allocation).

A list answers ``lst[-1]`` from its end and ``lst[True]`` as ``lst[1]``, so readers outside
the core get ``RecordsView`` instead, which has the meaning the dict had: allocated IDs
only, keyed by ``int``, each to ``(set, private, refs, free_pending)``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import TYPE_CHECKING, Any, SupportsIndex, TypeVar, overload

if TYPE_CHECKING:
    from ioasid_core.space import Record

__all__ = ["RecordsView", "allocated_ids", "record_at", "snapshot"]

_T = TypeVar("_T")


def snapshot(records: list[Any]) -> list[Any]:
    """The records at one instant, for a reader that walks them without the space's lock.

    ``list.copy`` copies the items in C with no allocation or Python code between them (a
    garbage collection its new list may start runs before), so no other thread's alloc or
    free lands inside the copy; a scan of the live list would list an ID freed behind it and
    one allocated ahead of it, a set over its quota.
    """
    return records.copy()


def allocated_ids(records: list[Any]) -> list[int]:
    """Every allocated ID, in order, at one instant (``snapshot``)."""
    return [i for i, rec in enumerate(snapshot(records)) if rec is not None]


def record_at(records: list[Any], data: list[Any], ioasid: int) -> Record | None:
    """The record ``(set, private, refs, free_pending)`` of ``ioasid`` (an ``int``, not
    negative), or None when it is not allocated: read as the module says."""
    if ioasid < len(records):
        rec = records[ioasid]
        if rec is not None:  # the data next, with no call between: the same instant
            return (rec[0], data[ioasid], rec[1], rec[2])
    return None


class RecordsView(Mapping[int, "Record | None"]):
    """Each allocated ID to its record ``(set, private, refs, free_pending)``, read live.

    A freed or never-allocated ID is not a key (``get`` gives None, ``[]`` raises
    ``KeyError``); neither is a negative number, a ``bool`` or a float. A numpy integer is
    its ``int``. Iterating goes up the IDs. ``len`` and iteration cost O(mapped IDs): for
    reports and tests, not per request (``get`` is O(1)).
    """

    __slots__ = ("_copy", "_data", "_records")

    def __init__(
        self,
        records: list[Any],
        data: list[Any],
        copy: Callable[[], tuple[list[Any], list[Any]]],
    ) -> None:
        self._records = records
        self._data = data
        self._copy = copy  # both lists, every pair one that held (the space's)

    @overload
    def get(self, key: object, /) -> Record | None: ...

    @overload
    def get(self, key: object, /, default: Record | _T) -> Record | _T: ...

    def get(self, key: object, /, default: object = None) -> object:
        if key.__class__ is not int:
            if isinstance(key, bool) or not isinstance(key, SupportsIndex):
                return default
            key = operator.index(key)  # a numpy integer
        if key >= 0:
            rec = record_at(self._records, self._data, key)
            if rec is not None:
                return rec
        return default

    def __getitem__(self, key: object) -> Record:
        rec = self.get(key)
        if rec is None:
            raise KeyError(key)
        return rec

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(allocated_ids(self._records))

    def __len__(self) -> int:
        records = snapshot(self._records)
        return len(records) - records.count(None)

    def keys(self) -> KeysView[int]:
        return KeysView(self)

    def items(self) -> ItemsView[int, Record | None]:
        return _Items(self)

    def values(self) -> ValuesView[Record | None]:
        return _Values(self)

    def _pairs(self) -> list[tuple[int, Record]]:
        """Every (ID, record) at one instant (no record freed between key and value, no
        data of another allocation of the ID)."""
        records, data = self._copy()
        return [
            (i, (rec[0], data[i], rec[1], rec[2]))
            for i, rec in enumerate(records)
            if rec is not None
        ]

    def __repr__(self) -> str:
        return f"<RecordsView of {len(self)} allocated ID(s)>"


class _Items(ItemsView[int, "Record | None"]):
    """Iterates each slot once: a record freed meanwhile cannot make a key without a value."""

    __slots__ = ("_view",)

    def __init__(self, view: RecordsView) -> None:
        super().__init__(view)
        self._view = view

    def __iter__(self) -> Iterator[tuple[int, Record | None]]:
        return iter(self._view._pairs())


class _Values(ValuesView["Record | None"]):
    __slots__ = ("_view",)

    def __init__(self, view: RecordsView) -> None:
        super().__init__(view)
        self._view = view

    def __iter__(self) -> Iterator[Record | None]:
        return iter([rec for _, rec in self._view._pairs()])

    def __contains__(self, value: object) -> bool:
        # Over the records read once: ``ValuesView``'s own looks each key up again, which
        # raises ``KeyError`` for an ID freed meanwhile (by another thread, or by ``==``).
        return any(rec is value or rec == value for rec in self)
