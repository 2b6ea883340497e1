"""The hot paths of a space: ``alloc``, ``free`` and ``find`` when nothing unusual happens.

Each is a closure bound onto the space instance, shadowing the method of the same name. It
holds the space's records (two lists indexed by ID, grown in place with the allocator's map,
so an ID the allocator hands out always has its slots: records_view.py), bound methods and
mutex in closure cells (cheaper to reach than attributes) and handles only the common,
successful case: no callback to run (no subscriber, the default allocator), a valid request,
a free number. Anything else, errors included, is handed to the full method on the class,
which re-checks everything under the lock, so the rules live in one place and the fast path
can only be a shortcut to the same result.

Two rules keep the shortcut honest under threads and callbacks. ``HotState.quiet`` is read
only while the lock is held, so a ``subscribe`` or ``register_allocator`` that completes
between the call and the lock cannot be missed (the full methods change it under the lock).
And the lock is only *tried*: when it is held, by another thread or by a callout of this
very thread (a subscriber that calls back while its event is delivered), the full method
takes over, which raises ``ReentrancyError`` for the second and waits for the first, never
blocking a thread on a lock it holds itself.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from ioasid_core import idalloc
from ioasid_core.idalloc import BLOCK_SHIFT

if TYPE_CHECKING:
    from collections.abc import Callable

    from ioasid_core.sets import IoasidSet
    from ioasid_core.space import IoasidSpace

__all__ = ["install_fast_paths"]


def install_fast_paths(space: IoasidSpace) -> None:
    """Shadow ``space.alloc``, ``space.free`` and ``space.find`` with their fast paths."""
    cls = type(space)
    slow_alloc: Callable[[IoasidSet, int, int, object], int] = cls.alloc.__get__(space)
    slow_free: Callable[[IoasidSet | None, int], None] = cls.free.__get__(space)
    slow_find: Callable[[IoasidSet | None, int, Callable[[Any], object] | None], object | None] = (
        cls.find.__get__(space)
    )
    records = space._records
    data = space._data
    scans = space._scans
    busy = space._busy
    lock = space._lock
    take = lock.take
    give = lock.give
    capacity = space.capacity
    hot = space._hot
    ids = space._ids
    id_alloc = ids.alloc
    id_map = ids.map
    id_full = ids.full
    hint = ids.hint
    holes = ids.holes
    floor = ids.floor
    pop_hole = heappop
    push_hole = heappush
    spill = idalloc.SPILL
    spill_holes = ids._spill
    block_shift = BLOCK_SHIFT

    def alloc(set: IoasidSet, min: int, max: int, private: object = None) -> int:
        try:
            take()
        except IndexError:  # contended, or held by this thread's own callout: the full
            return slow_alloc(set, min, max, private)  # method waits or refuses re-entry
        try:
            if (
                hot.quiet  # read under the lock: no callout can start before we give it back
                and min.__class__ is int
                and max.__class__ is int
                and min >= floor[0]  # not negative; below the floor: parked IDs (idalloc.py)
                and max < capacity  # and min <= max: implied once an ID in [min, max] is found
                and set._open_in is space
            ):
                quota = set.quota
                # A quota-less set needs no counting while nothing is reserved (else: slow path).
                if (not hot.reserved) if quota is None else (set._count < quota):
                    # The allocator's own fast paths, inlined (see IdAllocator.alloc): the
                    # lowest hole, else the hint. A hint at the mapped end reads the map's
                    # sentinel (used): id_alloc grows the map, in place, so these names
                    # stay bound to it. A stale hole, a range above the hole or the hint,
                    # or no free ID: id_alloc, and the full method when it finds none.
                    if holes:
                        ioasid = pop_hole(holes)
                        if min <= ioasid <= max and not id_map[ioasid]:
                            id_map[ioasid] = 1
                        else:
                            push_hole(holes, ioasid)
                            ioasid = id_alloc(min, max)
                            if ioasid < 0:
                                give(True)
                                return slow_alloc(set, min, max, private)
                    else:
                        ioasid = hint[0]
                        if min <= ioasid <= max and not id_map[ioasid]:
                            id_map[ioasid] = 1
                            hint[0] = ioasid + 1
                        else:
                            ioasid = id_alloc(min, max)
                            if ioasid < 0:
                                give(True)
                                return slow_alloc(set, min, max, private)
                    # The data, then the set's shared tuple (the order records_view.py gives).
                    data[ioasid] = private
                    records[ioasid] = set._fresh
                    set._count += 1
                    give(True)
                    return ioasid
        except AttributeError:
            pass  # not a set: the full method says so
        except BaseException:
            give(True)
            raise
        give(True)
        return slow_alloc(set, min, max, private)

    def free(set: IoasidSet | None, ioasid: int) -> None:
        try:
            take()
        except IndexError:  # see alloc
            return slow_free(set, ioasid)
        try:
            # An exact int only (a list takes True and a numpy int as 1, and 1.0 is not an
            # index), and not negative: a list would read that from its end.
            rec = records[ioasid] if hot.quiet and ioasid.__class__ is int and ioasid >= 0 else None
            # The set's shared tuple: one reference, no free pending (sets.py).
            if (
                rec is not None
                and ((owner := rec[0]) is set or set is None)
                and rec is owner._fresh
                and not scans  # else the full free, which counts its write for the scan
            ):
                records[ioasid] = None  # the tuple, then the data (records_view.py)
                data[ioasid] = None
                # The allocator's free, inlined (see IdAllocator.free).
                id_map[ioasid] = 0
                if ioasid < hint[0]:
                    push_hole(holes, ioasid)  # a hole: its block's flag may stay set
                    if len(holes) > spill:  # bounded as IdAllocator.free bounds it
                        spill_holes()
                else:
                    id_full[ioasid >> block_shift] = 0
                owner._count -= 1
                if not owner._plain:  # an SPID to drop, or a free-pending set to destroy
                    space._forget(ioasid, owner, None)
                give(True)
                return None
        except IndexError:
            pass  # beyond the mapped IDs, never allocated: the full method says so
        except BaseException:
            give(True)
            raise
        give(True)
        return slow_free(set, ioasid)

    def find(
        set: IoasidSet | None, ioasid: int, getter: Callable[[Any], object] | None = None
    ) -> object | None:
        if getter is None and not busy:
            try:  # a list index is a specialised bytecode; .get() would be a call
                # Not negative: a list reads that from its end. Checked before the tuple is
                # read: the data after it, with no call between (records_view.py), and
                # ``>=`` may be Python code (an int subclass's own). A type of one's own
                # whose ``__index__`` is Python code runs it at each read: not tested here,
                # at the cost of every find (docs/architecture.md).
                if ioasid >= 0:
                    rec = records[ioasid]
                    if rec is not None and (set is None or rec[0] is set):
                        return data[ioasid]
            except (IndexError, TypeError):  # beyond the mapped IDs, or not an index
                pass
        return slow_find(set, ioasid, getter)  # says what is wrong

    for fast, slow in ((alloc, slow_alloc), (free, slow_free), (find, slow_find)):
        fast.__doc__ = slow.__doc__
        fast.__qualname__ = slow.__qualname__
        vars(space)[fast.__name__] = fast
