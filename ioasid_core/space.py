"""``IoasidSpace``: one system-wide IOASID namespace, split into sets.

One lock serialises every change; ``find`` reads without it (a record's tuple is immutable,
replaced whole, and tuple and data are written and read in an order that makes one read
one consistent snapshot, as RCU readers get in the kernel: records_view.py).
Callbacks (subscribers, getters, custom allocators) run with the calling thread marked busy, so
a call back into the same space is refused with ``ReentrancyError`` instead of deadlocking.
"""

from __future__ import annotations

import logging
import operator
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from ioasid_core.allocators import AllocatorGroup, AllocatorOps
from ioasid_core.errors import (
    AccessDeniedError,
    AllocatorBusyError,
    AllocatorError,
    AllocatorNoSpaceError,
    AlreadyRegisteredError,
    BusyError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
    ReentrancyError,
    UnknownIoasidError,
)
from ioasid_core.events import Event, Subscription, insert_sorted, merge_subscribers
from ioasid_core.fastpath import install_fast_paths
from ioasid_core.idalloc import MAX_CAPACITY, IdAllocator
from ioasid_core.mutex import TokenMutex
from ioasid_core.records_view import RecordsView, allocated_ids, record_at, snapshot
from ioasid_core.sets import IoasidSet, describe_token
from ioasid_core.types import (
    DEFAULT_CAPACITY,
    INVALID_IOASID,
    EventKind,
    IoasidState,
    Priority,
    SetType,
)

__all__ = ["IoasidSpace"]

log = logging.getLogger(__name__)

# A record, as the slow paths and ``records_view()`` see it: (set, private, refs,
# free_pending). Two lists store it, the tuple (set, refs, free_pending) and the data
# (records_view.py).
_SET: Final = 0
_PRIV: Final = 1
_REFS: Final = 2
_PEND: Final = 3

_COPY_TRIES: Final = 8
"""Scans of tuples and data (``_copy_records``) tried without the lock before taking it."""

_get_ident = threading.get_ident
_count_of = operator.attrgetter("_count")
_ALLOC = EventKind.ALLOC
_FREE = EventKind.FREE
_SET_ALLOC = EventKind.SET_ALLOC

Record = tuple[IoasidSet, object, int, bool]


def _hex(ioasid: int) -> str:
    return f"IOASID {ioasid:#x}"


def as_id(value: object, what: str = "IOASID") -> int:
    """An ID argument as an exact ``int``, checked before anything changes.

    ``1.0 == 1`` finds ID 1's record in a dict and a numpy integer would be stored where an
    ``int`` belongs (and handed back by later calls), so only an ``int`` or an object with
    ``__index__`` (a numpy integer: converted) is an ID; ``bool`` is not.
    """
    if value.__class__ is int:
        return value
    if not isinstance(value, bool) and hasattr(type(value), "__index__"):
        return int(operator.index(value))  # type: ignore[arg-type]
    raise InvalidArgumentError(f"{what} {value!r} is not an integer")


class HotState:
    """The scalars the hot paths read and write on every call, in slots.

    The space's own ``__dict__`` also holds the fast-path closures, which makes attribute
    access on the space the generic, slower kind; slots stay fast.
    """

    __slots__ = ("quiet", "reserved")

    def __init__(self, capacity: int) -> None:
        self.reserved = 0
        """The sum of the quotas of existing sets. While it is 0, a quota-less set is bounded
        by the ID space alone and nothing needs counting; otherwise the full methods check
        the unreserved capacity."""
        self.quiet = True
        """No subscriber, the default allocator, and no ``find`` getter running: nothing on
        this space can call back, so the hot paths need no re-entry check. Written only
        under the space's lock."""


class IoasidSpace:
    """A system-wide IOASID namespace (a host, or one guest). Thread-safe."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool):
            raise InvalidArgumentError(f"capacity must be an int, not {capacity!r}")
        if not 0 < capacity <= MAX_CAPACITY:
            raise InvalidArgumentError(
                f"capacity {capacity:#x} is outside 1..{MAX_CAPACITY:#x} (the largest space "
                "modelled: up to 9 bytes per ID, a byte of map and a slot of the records, "
                "as far as the highest ID handed out; PCIe PASIDs have 20 bits)"
            )
        self._capacity = capacity
        self._lock = TokenMutex()
        # The records, indexed by ID (records_view.py): ``(set, refs, free_pending)``, None
        # for an ID not allocated now (never, or freed), and the private data. As long as
        # the allocator's map, grown with it in place (the hot paths and the resolvers hold
        # these very lists): never rebound. Read through ``_rec``, written through
        # ``_store`` and ``_clear`` (the order lock-free readers rely on).
        self._records: list[tuple[IoasidSet, int, bool] | None] = []
        self._data: list[object] = []
        # Scans copying the records without the lock (one entry each), and the writes begun
        # while one runs (``_copy_records``): the hot free leaves an ID to the full one then.
        self._scans: list[None] = []
        self._writes = [0]
        self._ids = IdAllocator(capacity, slots=(self._data, self._records))
        self._view = RecordsView(self._records, self._data, self._copy_records)
        self._sets: dict[int, IoasidSet] = {}
        self._mm_sets: dict[int, IoasidSet] = {}  # id(token) -> set; the set keeps the token
        self._next_set_id = 0
        self._reserved = 0  # sum of the quotas of existing sets
        self._hot = HotState(capacity)
        self._groups: list[AllocatorGroup] = []  # registration order; [0] is active
        self._active: AllocatorGroup | None = None
        self._global_subs: list[Subscription] = []
        self._nsubs = 0
        self._getters = 0  # find getters running now (they may call back)
        self._next_seq = 0
        self._busy: dict[int, int] = {}  # thread -> depth of callbacks running for this space
        self._work: dict[int, list[Callable[[], object]]] = {}  # thread -> deferred work
        install_fast_paths(self)

    # ------------------------------------------------------------------ properties

    @property
    def capacity(self) -> int:
        """How many IDs the space has: ``[0, capacity)``."""
        return self._capacity

    @property
    def available(self) -> int:
        """Capacity not reserved by set quotas."""
        return self._capacity - self._reserved

    @property
    def active_allocator(self) -> AllocatorOps[Any] | None:
        """The ops whose ``pdata`` allocations use now; None for the default allocator."""
        group = self._active
        return None if group is None else group.head

    @property
    def _unreserved_live(self) -> int:
        """IDs held by quota-less sets (derived when needed: O(sets), never on a hot path)."""
        return sum(s._count for s in list(self._sets.values()) if s.quota is None)

    @property
    def _room(self) -> int:
        """Capacity neither reserved by quotas nor held by quota-less sets."""
        return self._capacity - self._reserved - self._unreserved_live

    def __repr__(self) -> str:
        return (
            f"<IoasidSpace capacity={self._capacity:#x} live={len(self)} "
            f"sets={len(self._sets)} available={self.available}>"
        )

    # ------------------------------------------------------------------ sets

    def create_set(
        self, token: object = None, *, quota: int | None = None, type: SetType = SetType.NULL
    ) -> IoasidSet:
        """A new set; ``quota`` IDs are reserved from ``available`` (None: no reservation)."""
        if self._busy:
            self._refuse_reentry("create_set")
        with self._lock:
            new = self._create_set_locked(token, quota, type)
            errors = self._emit(Event(EventKind.SET_ALLOC, set=new)) if self._nsubs else None
        if errors or self._work:
            self._finish(errors, f"creating {new}")
        return new

    def _create_set_locked(self, token: object, quota: int | None, type: object) -> IoasidSet:
        if not isinstance(type, SetType):
            raise InvalidArgumentError(f"set type must be a SetType, not {type!r}")
        if type is SetType.NULL and token is not None:
            raise InvalidArgumentError(
                f"a NULL-type set takes no token, got {describe_token(token)!r}"
            )
        if type is SetType.MM:
            if token is None:
                raise InvalidArgumentError("an MM-type set needs a token (its address space)")
            old = self._mm_sets.get(id(token))
            if old is not None:
                raise AlreadyRegisteredError(
                    f"token {describe_token(token)!r} already has an MM set: {old}"
                    + (" (free-pending)" if old._pending else "")
                )
        if quota is not None:
            if not isinstance(quota, int) or isinstance(quota, bool):
                raise InvalidArgumentError(f"quota must be an int or None, not {quota!r}")
            if quota < 0:
                raise InvalidArgumentError(f"quota {quota} is negative")
            room = self._room
            if quota > room:
                raise NoSpaceError(
                    f"quota {quota} is larger than the capacity left ({room} of "
                    f"{self._capacity}: {self._reserved} reserved by quotas, "
                    f"{self._unreserved_live} held by sets without a quota)"
                )
        new = IoasidSet(self, self._next_set_id, token, type, quota)
        self._next_set_id += 1
        self._sets[new.id] = new
        if type is SetType.MM:
            self._mm_sets[id(token)] = new
        if quota is not None:
            self._reserved += quota
            self._hot.reserved = self._reserved
        return new

    def free_set(self, set: IoasidSet) -> bool:
        """Destroy an empty set now (True); mark a non-empty one free-pending (False)."""
        if self._busy:
            self._refuse_reentry("free_set")
        with self._lock:
            self._check_set(set, "free_set", allow_pending=False)
            if set._count:
                set._pending = True
                set._plain = False
                set._open_in = None
                return False
            events: list[Event] = []
            self._destroy_set(set, events)
            errors = self._emit_all(events) if events else None
        if errors or self._work:
            self._finish(errors, f"freeing {set}")
        return True

    def free_all(self, set: IoasidSet) -> int:
        """``free`` every ID of the set; return how many were not already free-pending.

        Each ID is freed on its own, as ``free`` would: when the custom allocator fails on
        one (raises, or calls back into the space), that ID stays allocated, the others are
        still freed and their owners told, and the call then raises ``AllocatorError`` naming
        what stayed and how many went (together with any subscriber's error, in one
        ``ExceptionGroup``: neither hides the other).
        """
        if self._busy:
            self._refuse_reentry("free_all")
        with self._lock:
            self._check_set(set, "free_all", allow_pending=True)
            events: list[Event] | None = [] if self._nsubs else None
            freed = 0
            failures: list[Exception] = []
            for ioasid in set.ioasids():
                rec = self._rec(ioasid)
                assert rec is not None
                if rec[_PEND]:
                    continue
                try:
                    self._free_locked(ioasid, rec, events)
                except Exception as exc:  # AllocatorError, or the backend's ReentrancyError
                    failures.append(exc)
                    continue
                freed += 1
            errors = self._emit_all(events) if events else None
        failure = None
        if failures:
            failure = AllocatorError(
                f"free_all of {set}: {len(failures)} ID(s) could not be freed by the custom "
                f"allocator and stay allocated; {freed} freed: "
                + "; ".join(f"{type(f).__name__}: {f}" for f in failures)
            )
            failure.__cause__ = failures[0]
        if errors or self._work:
            self._finish(errors, f"free_all of {set}", failure)
        if failure is not None:
            raise failure
        return freed

    def find_set(self, ioasid: int) -> IoasidSet:
        """The set that owns an ID."""
        if self._busy:
            self._refuse_reentry("find_set")
        ioasid = as_id(ioasid)
        rec = self._lookup(ioasid)
        return rec[_SET]

    def find_mm_set(self, token: object) -> IoasidSet | None:
        """The MM set of an address space (matched by identity), if it has one."""
        if self._busy:
            self._refuse_reentry("find_mm_set")
        found = self._mm_sets.get(id(token))
        return found if found is not None and found.token is token else None

    def sets(self) -> list[IoasidSet]:
        """Every set that still exists (live or free-pending), in creation order."""
        return [s for _, s in sorted(self._sets.copy().items())]

    # ------------------------------------------------------------------ allocation

    def alloc(self, set: IoasidSet, min: int, max: int, private: object = None) -> int:
        """Allocate an ID in ``[min, max]`` (inclusive) for ``set``; the lowest free one."""
        if self._busy:
            self._refuse_reentry("alloc")
        if min.__class__ is not int or max.__class__ is not int:  # a numpy int is converted
            min, max = as_id(min, "min"), as_id(max, "max")
        try:
            with self._lock:
                if (
                    min.__class__ is not int
                    or max.__class__ is not int
                    or not 0 <= min <= max < self._capacity
                ):
                    self._bad_range(min, max)
                if getattr(set, "_open_in", None) is not self:
                    self._check_set(set, "alloc", allow_pending=False)
                quota = set.quota
                if quota is None:
                    # The capacity is the core's to check, whichever allocator is active.
                    # ``_room`` is O(sets): asked only when it can be exhausted (a quota
                    # exists, or the records reach the top of the space: they cover every
                    # ID up to the highest one handed out, so a full space has them all).
                    if (self._reserved or self._ids.mapped >= self._capacity) and self._room <= 0:
                        raise NoSpaceError(
                            f"no unreserved capacity left for {set}: sets without a quota "
                            f"hold {self._unreserved_live} of the {self.available} IDs "
                            "not reserved by quotas"
                        )
                elif set._count >= quota:
                    raise QuotaExceededError(f"{set} holds {quota} IDs, its whole quota")
                if self._active is None:
                    ioasid = self._ids.alloc(min, max)
                    if ioasid < 0:
                        raise NoSpaceError(f"no free IOASID in [{min:#x}, {max:#x}] for {set}")
                else:
                    ioasid = self._custom_alloc(self._active, set, min, max)
                    if ioasid >= self._ids.mapped:
                        self._ids.cover(ioasid)  # the records reach it (it stays free there)
                self._store(ioasid, set, private, 1, False)
                set._count += 1
                errors = (
                    self._emit(Event(_ALLOC, ioasid, INVALID_IOASID, set, private))
                    if self._nsubs
                    else None
                )
        except BaseException as exc:
            if self._work:
                self._finish_after_failure(exc, "a failed alloc")
            raise
        if errors or self._work:
            self._finish(errors, f"allocating {_hex(ioasid)}")
        return ioasid

    def _bad_range(self, min: object, max: object) -> None:
        for name, value in (("min", min), ("max", max)):
            if value.__class__ is not int:
                raise InvalidArgumentError(f"{name} must be an int, not {value!r}")
        assert isinstance(min, int) and isinstance(max, int)
        if min > max:
            raise InvalidArgumentError(f"range [{min:#x}, {max:#x}] is empty: min > max")
        raise InvalidArgumentError(
            f"range [{min:#x}, {max:#x}] is outside the space [0, {self._capacity - 1:#x}]"
        )

    def _custom_alloc(self, group: AllocatorGroup, set: IoasidSet, lo: int, hi: int) -> int:
        ops = group.head
        try:
            ioasid = self._callout(ops.alloc, lo, hi, ops.pdata)
        except ReentrancyError:
            raise
        except NoSpaceError as exc:
            raise AllocatorNoSpaceError(
                f"custom allocator {ops!r} has no free IOASID in [{lo:#x}, {hi:#x}] for {set}: "
                f"{exc}"
            ) from exc
        except Exception as exc:
            raise AllocatorError(
                f"custom allocator {ops!r} raised while allocating in [{lo:#x}, {hi:#x}] "
                f"for {set}: {type(exc).__name__}: {exc}"
            ) from exc
        if ioasid.__class__ is not int:
            raise AllocatorError(f"custom allocator {ops!r} returned {ioasid!r}, not an int")
        if ioasid == INVALID_IOASID:
            raise AllocatorError(
                f"custom allocator {ops!r} found no IOASID in [{lo:#x}, {hi:#x}] for {set}"
            )
        if not lo <= ioasid <= hi:
            raise AllocatorError(
                f"custom allocator {ops!r} returned {_hex(ioasid)}, outside [{lo:#x}, {hi:#x}]"
            )
        if self._rec(ioasid) is not None:
            raise AllocatorError(
                f"custom allocator {ops!r} returned {_hex(ioasid)}, which is already "
                f"allocated to {self.find_set(ioasid)} (not freed at the backend)"
            )
        return ioasid

    # ------------------------------------------------------------------ lookup

    def find(
        self,
        set: IoasidSet | None,
        ioasid: int,
        getter: Callable[[Any], object] | None = None,
    ) -> object | None:
        """The private data of an ID. ``set=None`` searches every set (no ownership check).

        With ``getter``, it is called on the data (even None) and a false answer makes
        ``find`` return None: the object was found but is dying.
        """
        if self._busy and _get_ident() in self._busy:
            self._refuse_reentry("find")
        # Read-only, so not validated on a hit: an exact int, a bool or a numpy integer
        # finds its ID, converted once (``operator.index``) so that no Python code of its
        # type runs between the reads of the tuple and the data; ``1.0`` or ``"1"`` is a
        # TypeError, and a miss says why. A negative ID must not index from the end of the
        # list. A try costs nothing until it raises (CPython 3.11).
        try:
            rec = self._rec(ioasid if ioasid.__class__ is int else operator.index(ioasid))
        except TypeError:  # not an index at all
            rec = None
        if rec is None:  # raised here, not in the handler: no KeyError as its context
            raise NotFoundError(self._unknown(as_id(ioasid)))
        if set is not None and rec[0] is not set:
            raise AccessDeniedError(self._not_owner(ioasid, rec[0], set))
        if getter is None:
            return rec[1]
        return self._call_getter(getter, rec[1])

    def _compute_quiet(self) -> bool:
        return not self._nsubs and self._active is None and not self._getters

    def _call_getter(self, getter: Callable[[Any], object], data: object) -> object | None:
        # While a getter runs, the hot paths must see it (it may call back): not quiet.
        with self._lock:
            self._getters += 1
            self._hot.quiet = False
        try:
            alive = self._callout(getter, data)
        except BaseException as exc:
            self._end_getter()
            if self._work:
                self._finish_after_failure(exc, "a failed find getter")
            raise
        self._end_getter()
        if self._work:
            self._finish(None, "a find getter")
        return data if alive else None

    def _end_getter(self) -> None:
        with self._lock:
            self._getters -= 1
            self._hot.quiet = self._compute_quiet()

    def set_data(self, ioasid: int, data: object) -> None:
        """Replace the private data of an ID (the kernel's shape: no owner check; see
        ``set_data_in``)."""
        self._replace_data(None, ioasid, data, "set_data", overwrite=True)

    def attach_data(self, ioasid: int, data: object) -> None:
        """Attach private data to an ID that has none (``BusyError`` otherwise); no owner
        check (see ``attach_data_in``)."""
        self._replace_data(None, ioasid, data, "attach_data", overwrite=False)

    def detach_data(self, ioasid: int) -> None:
        """Clear the private data of an ID; no owner check (see ``detach_data_in``)."""
        self._replace_data(None, ioasid, None, "detach_data", overwrite=True)

    def set_data_in(self, set: IoasidSet, ioasid: int, data: object) -> None:
        """``set_data`` for the ID's owner only (``AccessDeniedError`` for another set's ID)."""
        self._replace_data(self._owner_arg(set, "set_data_in"), ioasid, data, "set_data_in")

    def attach_data_in(self, set: IoasidSet, ioasid: int, data: object) -> None:
        """``attach_data`` for the ID's owner only."""
        owner = self._owner_arg(set, "attach_data_in")
        self._replace_data(owner, ioasid, data, "attach_data_in", overwrite=False)

    def detach_data_in(self, set: IoasidSet, ioasid: int) -> None:
        """``detach_data`` for the ID's owner only."""
        self._replace_data(self._owner_arg(set, "detach_data_in"), ioasid, None, "detach_data_in")

    def _owner_arg(self, set: object, what: str) -> IoasidSet:
        """The set of an owner-checked call: an ``IoasidSet`` of this space, never None."""
        if self._busy:
            self._refuse_reentry(what)
        if not isinstance(set, IoasidSet):
            raise InvalidArgumentError(
                f"{what}: {set!r} is not an IoasidSet (the owner-checked call needs the "
                "owner's set)"
            )
        if set._space is not self:
            raise InvalidArgumentError(f"{what}: {set} belongs to another space")
        return set

    def _replace_data(
        self,
        owner: IoasidSet | None,
        ioasid: int,
        data: object,
        what: str,
        *,
        overwrite: bool = True,
    ) -> None:
        if self._busy:
            self._refuse_reentry(what)
        ioasid = as_id(ioasid)
        with self._lock:
            rec = self._owned(owner, ioasid)
            if not overwrite and rec[_PRIV] is not None:
                raise BusyError(
                    f"{_hex(ioasid)} of {rec[_SET]} already has private data {rec[_PRIV]!r}"
                )
            self._store(ioasid, rec[_SET], data, rec[_REFS], rec[_PEND])

    def state(self, ioasid: int) -> IoasidState:
        """IDLE, ACTIVE (an SPID or an extra reference) or FREE_PENDING."""
        if self._busy:
            self._refuse_reentry("state")
        ioasid = as_id(ioasid)
        rec = self._lookup(ioasid)
        if rec[_PEND]:
            return IoasidState.FREE_PENDING
        if rec[_REFS] > 1 or ioasid in rec[_SET]._spid_of:
            return IoasidState.ACTIVE
        return IoasidState.IDLE

    def refs(self, ioasid: int) -> int:
        """How many references an ID has (the owner's included until it frees)."""
        ioasid = as_id(ioasid)
        rec = self._lookup(ioasid)
        return rec[_REFS]

    def records_view(self) -> Mapping[int, Record | None]:
        """The live records, for lock-free readers (the kernel's RCU readers).

        A read-only mapping of each allocated ID to ``(set, private, refs, free_pending)``.
        A freed or never-allocated ID is not in it: ``get`` gives None for it (as a freed
        ID's None tombstone did when the records were a dict). One read is one consistent
        snapshot (records_view.py). Compare records by value, not identity: each read
        builds its tuple.
        Public methods (``find``) are the way for everything else.
        """
        return self._view

    def _rec(self, ioasid: int) -> Record | None:
        """The record of an ID checked to be an ``int`` (``as_id``), None if not allocated:
        the list must not be read from its end for a negative ID, nor past it."""
        return record_at(self._records, self._data, ioasid) if ioasid >= 0 else None

    def _store(
        self, ioasid: int, set: IoasidSet, private: object, refs: int, pending: bool
    ) -> None:
        """Write a mapped ID's record (lock held): the data, then the tuple, which is the
        set's shared one for one reference and no free pending (what the hot free tests)."""
        if self._scans:  # with no call before the data is written (``_copy_records``)
            self._writes[0] += 1
        self._data[ioasid] = private
        self._records[ioasid] = set._fresh if refs == 1 and not pending else (set, refs, pending)

    def _clear(self, ioasid: int) -> None:
        """Forget a mapped ID's record (lock held): the tuple, then the data."""
        if self._scans:  # as in ``_store``
            self._writes[0] += 1
        self._records[ioasid] = None
        self._data[ioasid] = None

    def _copy_records(self) -> tuple[list[Any], list[Any]]:
        """Both lists, every pair one that held, for a scan of tuples and data
        (``RecordsView``).

        Without the lock when it can (a callout under it, or a finalizer a free runs, may
        scan): the tuples, then the data, with no write but allocations begun between. While
        a scan is listed in ``_scans``, the hot free leaves its ID to the full one, and every
        write but an allocation counts itself in ``_writes`` before it writes (a write that
        began before the scan was listed wrote the data before its check, and the tuple
        with no call between, or with an equal value). An allocation only fills an ID that
        is not allocated, so its tuple and data were both written before the tuple is
        copied or both after the data is. Comparing copies cannot tell this: both copies of
        the tuples may hold a set's shared tuple with another set's allocation, or other
        references, between them. Other threads writing on every try make the last one wait
        for the lock (this thread does not hold it: then nobody else could have written).
        """
        records, data, writes, scans = self._records, self._data, self._writes, self._scans
        scans.append(None)
        try:
            for _ in range(_COPY_TRIES):
                seen = writes[0]
                tuples = snapshot(records)
                values = snapshot(data)
                if writes[0] == seen:
                    return tuples, values
        finally:
            scans.pop()
        with self._lock:
            return records.copy(), data.copy()

    def __contains__(self, ioasid: object) -> bool:
        try:
            return self._rec(as_id(ioasid)) is not None
        except InvalidArgumentError:
            return False

    def __len__(self) -> int:
        """How many IDs are allocated: the sum of the sets' counts, in C (no generator
        frame). No space-wide counter: keeping one would cost every hot alloc and free."""
        return sum(map(_count_of, list(self._sets.values())))

    def _live_ids(self) -> list[int]:
        """Every allocated ID, sorted."""
        return allocated_ids(self._records)

    # ------------------------------------------------------------------ lifetime

    def get(self, set: IoasidSet | None, ioasid: int) -> None:
        """Take one more reference (refused while the ID's free is pending)."""
        if self._busy:
            self._refuse_reentry("get")
        ioasid = as_id(ioasid)
        with self._lock:
            if self._rec(ioasid) is None:
                raise UnknownIoasidError(self._unknown(ioasid))  # EINVAL, as ioasid_get
            rec = self._owned(set, ioasid)
            if rec[_PEND]:
                raise BusyError(f"{_hex(ioasid)} of {rec[_SET]} is being freed: no new references")
            self._store(ioasid, rec[_SET], rec[_PRIV], rec[_REFS] + 1, False)

    def put(self, set: IoasidSet | None, ioasid: int) -> bool:
        """Drop one reference; at zero the ID is reclaimed and True is returned."""
        if self._busy:
            self._refuse_reentry("put")
        ioasid = as_id(ioasid)
        try:
            with self._lock:
                rec = self._owned(set, ioasid)
                refs = rec[_REFS] - 1
                if refs:
                    self._store(ioasid, rec[_SET], rec[_PRIV], refs, rec[_PEND])
                    return False
                events: list[Event] | None = [] if self._nsubs else None
                self._reclaim(ioasid, rec, events, emit_free=not rec[_PEND])
                errors = self._emit_all(events) if events else None
        except BaseException as exc:
            if self._work:
                self._finish_after_failure(exc, "a failed put")
            raise
        if errors or self._work:
            self._finish(errors, f"the last put of {_hex(ioasid)}")
        return True

    def free(self, set: IoasidSet | None, ioasid: int) -> None:
        """The owner's release: FREE_PENDING now, reclaimed when the last reference goes."""
        if self._busy:
            self._refuse_reentry("free")
        ioasid = as_id(ioasid)
        errors: list[Exception] | None = None
        try:
            with self._lock:
                rec = self._owned(set, ioasid)
                if not rec[_PEND]:  # a second free of a pending ID is a no-op
                    events: list[Event] | None = [] if self._nsubs else None
                    self._free_locked(ioasid, rec, events)
                    if events:
                        errors = self._emit_all(events)
        except BaseException as exc:
            if self._work:
                self._finish_after_failure(exc, "a failed free")
            raise
        if errors or self._work:
            self._finish(errors, f"freeing {_hex(ioasid)}")

    def _free_locked(self, ioasid: int, rec: Record, events: list[Event] | None) -> None:
        refs = rec[_REFS] - 1
        if refs:
            self._store(ioasid, rec[_SET], rec[_PRIV], refs, True)
            if events is not None:
                events.append(self._event(_FREE, ioasid, rec))
        else:
            self._reclaim(ioasid, rec, events, emit_free=True)

    def _reclaim(
        self, ioasid: int, rec: Record, events: list[Event] | None, *, emit_free: bool
    ) -> None:
        """Give an ID back to its allocator and forget it. Raises before changing anything."""
        group = self._active
        if group is not None:
            ops = group.head
            try:
                self._callout(ops.free, ioasid, ops.pdata)
            except ReentrancyError:
                raise
            except Exception as exc:
                raise AllocatorError(
                    f"custom allocator {ops!r} failed to free {_hex(ioasid)} of {rec[_SET]}: "
                    f"{type(exc).__name__}: {exc}; the ID stays allocated"
                ) from exc
        else:
            self._ids.free(ioasid)
        if emit_free and events is not None:
            events.append(self._event(_FREE, ioasid, rec))
        self._drop(ioasid, rec, events)

    def _drop(self, ioasid: int, rec: Record, events: list[Event] | None) -> None:
        """Remove a record whose number the backend has already taken back."""
        self._clear(ioasid)
        owner = rec[_SET]
        owner._count -= 1
        self._forget(ioasid, owner, events)

    def _forget(self, ioasid: int, owner: IoasidSet, events: list[Event] | None) -> None:
        spid = owner._spid_of.pop(ioasid, None)
        if spid is not None:
            del owner._spids[spid]
            owner._plain = not owner._spid_of and not owner._pending
        if owner._pending and not owner._count:
            self._destroy_set(owner, events)

    def _destroy_set(self, set: IoasidSet, events: list[Event] | None) -> None:
        set._live = False
        set._pending = False
        set._open_in = None
        del self._sets[set.id]
        if set.type is SetType.MM:
            del self._mm_sets[id(set.token)]
        if set.quota is not None:
            self._reserved -= set.quota
            self._hot.reserved = self._reserved
        if events is not None and (self._global_subs or set._subs):
            events.append(Event(EventKind.SET_FREE, set=set))
        if set._subs:
            # Delivered SET_FREE after this; the subscriptions end with the set.
            for sub in set._subs:
                sub.active = False
            self._nsubs -= len(set._subs)
            self._hot.quiet = self._compute_quiet()

    # ------------------------------------------------------------------ SPIDs

    def attach_spid(self, ioasid: int, spid: int) -> None:
        """Map a set-private ID (a guest PASID) to this ID; unique within the set. No owner
        check (the kernel's shape; see ``attach_spid_in``)."""
        self._attach_spid(None, ioasid, spid, "attach_spid")

    def attach_spid_in(self, set: IoasidSet, ioasid: int, spid: int) -> None:
        """``attach_spid`` for the ID's owner only (``AccessDeniedError`` otherwise)."""
        self._attach_spid(self._owner_arg(set, "attach_spid_in"), ioasid, spid, "attach_spid_in")

    def _attach_spid(self, given: IoasidSet | None, ioasid: int, spid: int, what: str) -> None:
        if self._busy:
            self._refuse_reentry(what)
        ioasid = as_id(ioasid)
        spid = as_id(spid, "SPID")  # as find_by_spid takes it: a numpy integer is its int
        with self._lock:
            if not 0 <= spid < INVALID_IOASID:
                raise InvalidArgumentError(
                    f"SPID {spid!r} is not a valid ID (INVALID_IOASID and values outside "
                    "32 bits cannot be attached)"
                )
            rec = self._owned(given, ioasid)
            owner = rec[_SET]
            old = owner._spid_of.get(ioasid)
            if old is not None:
                raise InvalidArgumentError(f"{_hex(ioasid)} of {owner} already has SPID {old:#x}")
            other = owner._spids.get(spid)
            if other is not None:
                raise InvalidArgumentError(
                    f"SPID {spid:#x} is already used in {owner} by {_hex(other)}"
                )
            owner._spids[spid] = ioasid
            owner._spid_of[ioasid] = spid
            owner._plain = False
            errors = (
                self._emit(Event(EventKind.BIND, ioasid, spid, owner, rec[_PRIV]))
                if self._nsubs
                else None
            )
        if errors or self._work:
            self._finish(errors, f"binding SPID {spid:#x} to {_hex(ioasid)}")

    def detach_spid(self, ioasid: int) -> None:
        """Remove the SPID of an ID. No owner check (see ``detach_spid_in``)."""
        self._detach_spid(None, ioasid, "detach_spid")

    def detach_spid_in(self, set: IoasidSet, ioasid: int) -> None:
        """``detach_spid`` for the ID's owner only (``AccessDeniedError`` otherwise)."""
        self._detach_spid(self._owner_arg(set, "detach_spid_in"), ioasid, "detach_spid_in")

    def _detach_spid(self, given: IoasidSet | None, ioasid: int, what: str) -> None:
        if self._busy:
            self._refuse_reentry(what)
        ioasid = as_id(ioasid)
        with self._lock:
            rec = self._owned(given, ioasid)
            owner = rec[_SET]
            spid = owner._spid_of.pop(ioasid, None)
            if spid is None:
                raise NotFoundError(f"{_hex(ioasid)} of {owner} has no SPID attached")
            del owner._spids[spid]
            owner._plain = not owner._spid_of and not owner._pending
            errors = (
                self._emit(Event(EventKind.UNBIND, ioasid, spid, owner, rec[_PRIV]))
                if self._nsubs
                else None
            )
        if errors or self._work:
            self._finish(errors, f"unbinding SPID {spid:#x} from {_hex(ioasid)}")

    def find_by_spid(self, set: IoasidSet, spid: int, get: bool = False) -> int:
        """The ID that ``spid`` maps to in ``set``; with ``get=True`` take a reference."""
        if self._busy:
            self._refuse_reentry("find_by_spid")
        with self._lock:
            self._check_set(set, "find_by_spid", allow_pending=True)
            ioasid = set._spids.get(as_id(spid, "SPID"))
            if ioasid is None:
                raise NotFoundError(f"SPID {spid!r} is not attached in {set}")
            if get:
                rec = self._rec(ioasid)
                assert rec is not None  # an SPID is dropped when its ID is reclaimed
                if rec[_PEND]:
                    raise BusyError(
                        f"{_hex(ioasid)} (SPID {spid:#x} of {set}) is being freed: "
                        "no new references"
                    )
                self._store(ioasid, rec[_SET], rec[_PRIV], rec[_REFS] + 1, False)
            return ioasid

    # ------------------------------------------------------------------ custom allocators

    def register_allocator(self, ops: AllocatorOps[Any]) -> None:
        """Add a custom allocator; the first group takes over if the default one is empty."""
        if self._busy:
            self._refuse_reentry("register_allocator")
        with self._lock:
            if not isinstance(ops, AllocatorOps):
                raise InvalidArgumentError(f"{ops!r} is not an AllocatorOps")
            for group in self._groups:
                if group.holds(ops):
                    raise AlreadyRegisteredError(f"allocator {ops!r} is already registered")
            for group in self._groups:
                if group.accepts(ops):
                    group.members.append(ops)
                    return
            live = self._live_ids() if not self._groups else []
            if live:
                raise AllocatorBusyError(
                    f"the default allocator holds {len(live)} IOASID(s) "
                    f"(first {_hex(live[0])}): a custom allocator cannot take over"
                )
            self._groups.append(AllocatorGroup(ops))
            if self._active is None:
                self._active = self._groups[0]
                self._hot.quiet = self._compute_quiet()

    def unregister_allocator(self, ops: AllocatorOps[Any], *, force: bool = False) -> None:
        """Remove a custom allocator; removing a group's last member needs it to hold no IDs.

        With ``force=True`` the IDs it still holds are reclaimed (``FREE`` to their owners).
        """
        if self._busy:
            self._refuse_reentry("unregister_allocator")
        failures: list[Exception] = []
        with self._lock:
            group = next((g for g in self._groups if g.holds(ops)), None)
            if group is None:
                raise NotFoundError(f"allocator {ops!r} is not registered")
            if len(group.members) > 1:
                group.members = [m for m in group.members if m is not ops]
                return
            events: list[Event] | None = [] if self._nsubs else None
            if group is self._active and len(self):
                if not force:
                    ids = self._live_ids()
                    shown = ", ".join(f"{i:#x}" for i in ids[:8])
                    raise BusyError(
                        f"allocator {ops!r} still holds {len(ids)} IOASID(s) ({shown}"
                        f"{', ...' if len(ids) > 8 else ''}); free them or pass force=True"
                    )
                failures = self._reclaim_all(ops, events)
            self._groups.remove(group)
            if group is self._active:
                self._active = self._groups[0] if self._groups else None
                self._hot.quiet = self._compute_quiet()
            errors = self._emit_all(events) if events else None
        failure = None
        if failures:
            failure = ExceptionGroup(
                f"the backend of {ops!r} failed to free {len(failures)} IOASID(s) while "
                "they were reclaimed by force (they are gone from this space)",
                failures,
            )
        if errors or self._work:
            self._finish(errors, f"unregistering allocator {ops!r}", failure)
        if failure is not None:
            raise failure

    def _reclaim_all(self, ops: AllocatorOps[Any], events: list[Event] | None) -> list[Exception]:
        failures: list[Exception] = []
        for ioasid in self._live_ids():
            rec = self._rec(ioasid)
            assert rec is not None
            try:
                self._callout(ops.free, ioasid, ops.pdata)
            except Exception as exc:
                exc.add_note(f"raised by the backend's free of {_hex(ioasid)} of {rec[_SET]}")
                failures.append(exc)
            if events is not None and not rec[_PEND]:
                events.append(self._event(_FREE, ioasid, rec))
            self._drop(ioasid, rec, events)
        return failures

    # ------------------------------------------------------------------ events

    def subscribe(
        self,
        callback: Callable[[Event], object],
        *,
        set: IoasidSet | None = None,
        priority: Priority = Priority.DEVICE,
    ) -> Subscription:
        """Call ``callback(event)`` for the events of ``set``, or of every set if None."""
        if self._busy:
            self._refuse_reentry("subscribe")
        if not callable(callback):
            raise InvalidArgumentError(f"callback {callback!r} is not callable")
        if not isinstance(priority, Priority):
            raise InvalidArgumentError(f"priority must be a Priority, not {priority!r}")
        with self._lock:
            if set is not None:
                self._check_set(set, "subscribe", allow_pending=True)
            sub = Subscription(callback, set, priority, self._next_seq)
            self._next_seq += 1
            insert_sorted(self._global_subs if set is None else set._subs, sub)
            self._nsubs += 1
            self._hot.quiet = self._compute_quiet()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription."""
        if self._busy:
            self._refuse_reentry("unsubscribe")
        if not isinstance(sub, Subscription):
            raise InvalidArgumentError(f"{sub!r} is not a Subscription")
        with self._lock:
            subs = self._global_subs if sub.set is None else sub.set._subs
            mine = sub.set is None or sub.set._space is self
            if not mine or not sub.active or not any(s is sub for s in subs):
                dead = sub.set is not None and not sub.set._live
                why = " (its set was destroyed)" if dead else ""
                raise NotFoundError(f"subscription {sub.callback!r} is not registered{why}")
            subs.remove(sub)
            sub.active = False
            self._nsubs -= 1
            self._hot.quiet = self._compute_quiet()

    def defer(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` after the current operation releases the lock (at once if none runs)."""
        if not callable(fn):
            raise InvalidArgumentError(f"deferred work {fn!r} is not callable")
        tid = _get_ident()
        if tid in self._busy:
            self._work.setdefault(tid, []).append(fn)
        else:
            fn()

    def _event(self, kind: EventKind, ioasid: int, rec: Record) -> Event:
        owner = rec[_SET]
        return Event(kind, ioasid, owner._spid_of.get(ioasid, INVALID_IOASID), owner, rec[_PRIV])

    def _emit(self, event: Event) -> list[Exception]:
        return self._emit_all((event,))

    def _emit_all(self, events: Iterable[Event]) -> list[Exception]:
        """Deliver events to their subscribers (lock held); return what they raised."""
        errors: list[Exception] = []
        tid = _get_ident()
        busy = self._busy
        busy[tid] = busy.get(tid, 0) + 1
        try:
            for event in events:
                owner = event.set
                own = owner._subs if owner is not None and event.kind is not _SET_ALLOC else []
                subs = merge_subscribers(self._global_subs, own)
                for sub in list(subs):
                    try:
                        sub.callback(event)
                    except Exception as exc:
                        log.exception("subscriber %r failed on %s", sub.callback, event.kind)
                        exc.add_note(
                            f"raised by subscriber {sub.callback!r} on {event.kind.name} "
                            f"of {_hex(event.ioasid)} ({owner})"
                        )
                        errors.append(exc)
        finally:
            depth = busy[tid] - 1
            if depth:
                busy[tid] = depth
            else:
                del busy[tid]
        return errors

    def _callout(self, fn: Callable[..., Any], *args: object) -> Any:
        """Call a user callback with this thread marked busy for this space."""
        tid = _get_ident()
        busy = self._busy
        busy[tid] = busy.get(tid, 0) + 1
        try:
            return fn(*args)
        finally:
            depth = busy[tid] - 1
            if depth:
                busy[tid] = depth
            else:
                del busy[tid]

    def _finish_after_failure(self, failure: BaseException, what: str) -> None:
        """Run the deferred work of a call that is failing; its errors join the failure as a
        note, so the caller still sees the original error."""
        try:
            self._finish(None, what)
        except ExceptionGroup as group:
            failure.add_note(f"deferred work also failed after {what}: {group.exceptions!r}")

    def _finish(
        self, errors: list[Exception] | None, what: str, failure: Exception | None = None
    ) -> None:
        """After the lock is released: run this thread's deferred work, then report errors.

        ``failure``, the operation's own failure (a backend that could not free), leads the
        group when callbacks failed too; alone it is left for the caller to raise.
        """
        collected: list[Exception] = list(errors or ())
        tid = _get_ident()
        while True:
            work = self._work.pop(tid, None)
            if not work:
                break
            for fn in work:
                try:
                    fn()
                except Exception as exc:
                    log.exception("deferred work %r failed", fn)
                    exc.add_note(f"raised by deferred work {fn!r} after {what}")
                    collected.append(exc)
        if collected and failure is not None:
            raise ExceptionGroup(
                f"{what} failed, and {len(collected)} callback(s) failed too",
                [failure, *collected],
            )
        if collected:
            raise ExceptionGroup(
                f"{len(collected)} callback(s) failed after {what} (the operation itself is done)",
                collected,
            )

    def _refuse_reentry(self, what: str) -> None:
        if _get_ident() in self._busy:
            raise ReentrancyError(
                f"{what}() called from a subscriber, getter or custom allocator while an "
                "operation of this space is in progress on this thread; use space.defer(fn)"
            )

    # ------------------------------------------------------------------ checks

    def _check_set(self, set: object, what: str, *, allow_pending: bool) -> None:
        if not isinstance(set, IoasidSet):
            raise InvalidArgumentError(f"{what}: {set!r} is not an IoasidSet")
        if set._space is not self:
            raise InvalidArgumentError(f"{what}: {set} belongs to another space")
        if not set._live:
            raise InvalidArgumentError(f"{what}: {set} was destroyed")
        if set._pending and not allow_pending:
            raise InvalidArgumentError(f"{what}: {set} is free-pending")

    def _lookup(self, ioasid: int) -> Record:
        """The record of an allocated ID (an ``int``, ``as_id``), else ``NotFoundError``."""
        rec = self._rec(ioasid)
        if rec is None:
            raise NotFoundError(self._unknown(ioasid))
        return rec

    def _owned(self, set: IoasidSet | None, ioasid: int) -> Record:
        rec = self._lookup(ioasid)
        if set is not None and rec[_SET] is not set:
            raise AccessDeniedError(self._not_owner(ioasid, rec[_SET], set))
        return rec

    def _unknown(self, ioasid: object) -> str:
        if isinstance(ioasid, int) and not isinstance(ioasid, bool):
            return f"{_hex(ioasid)} is not allocated in this space"
        return f"{ioasid!r} is not an IOASID (an int)"

    def _not_owner(self, ioasid: int, owner: IoasidSet, given: IoasidSet) -> str:
        foreign = " of another space" if getattr(given, "_space", self) is not self else ""
        return f"{_hex(ioasid)} belongs to {owner}, not {given}{foreign}"
