"""``RecordsView``: the read-only mapping ``IoasidSpace.records_view()`` hands to plugins.

The space keeps its records in a list indexed by ID (None where no ID is allocated), which is
what its own hot paths read: a list index is cheaper than a dict lookup and costs no int
object, hash slot or entry per ID. A list answers ``lst[-1]`` from its end and ``lst[True]``
as ``lst[1]``, so readers outside the core get this mapping instead, which has the meaning
the dict had: allocated IDs only, keyed by ``int``.
"""

from __future__ import annotations

import operator
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import TYPE_CHECKING, SupportsIndex, TypeVar, overload

if TYPE_CHECKING:
    from ioasid_core.space import Record

__all__ = ["RecordsView", "allocated_ids", "snapshot"]

_T = TypeVar("_T")


def snapshot(records: list[Record | None]) -> list[Record | None]:
    """The records at one instant, for a reader that walks them without the space's lock.

    ``list.copy`` copies the items in C with no allocation or Python code between them (a
    garbage collection its new list may start runs before), so no other thread's alloc or
    free lands inside the copy; a scan of the live list would list an ID freed behind it and
    one allocated ahead of it, a set over its quota.
    """
    return records.copy()


def allocated_ids(records: list[Record | None]) -> list[int]:
    """Every allocated ID, in order, at one instant (``snapshot``)."""
    return [i for i, rec in enumerate(snapshot(records)) if rec is not None]


class RecordsView(Mapping[int, "Record | None"]):
    """Each allocated ID to its record ``(set, private, refs, free_pending)``, read live.

    A freed or never-allocated ID is not a key (``get`` gives None, ``[]`` raises
    ``KeyError``); neither is a negative number, a ``bool`` or a float. A numpy integer is
    its ``int``. Iterating goes up the IDs. ``len`` and iteration cost O(mapped IDs): for
    reports and tests, not per request (``get`` is O(1)).
    """

    __slots__ = ("_records",)

    def __init__(self, records: list[Record | None]) -> None:
        self._records = records

    @overload
    def get(self, key: object, /) -> Record | None: ...

    @overload
    def get(self, key: object, /, default: Record | _T) -> Record | _T: ...

    def get(self, key: object, /, default: object = None) -> object:
        if key.__class__ is not int:
            if isinstance(key, bool) or not isinstance(key, SupportsIndex):
                return default
            key = operator.index(key)  # a numpy integer
        records = self._records
        if 0 <= key < len(records):
            rec = records[key]
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
        """Every (ID, record), each slot read once (no record freed between key and value)."""
        return [(i, rec) for i, rec in enumerate(snapshot(self._records)) if rec is not None]

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
        return iter([rec for rec in snapshot(self._view._records) if rec is not None])

    def __contains__(self, value: object) -> bool:
        # Over the records read once: ``ValuesView``'s own looks each key up again, which
        # raises ``KeyError`` for an ID freed meanwhile (by another thread, or by ``==``).
        return any(rec is value or rec == value for rec in self)
