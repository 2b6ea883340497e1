"""Lock-free readers of the records see pairs that held: never another allocation's data.

The space keeps each ID's ``(set, refs, free_pending)`` and its data in two lists
(records_view.py). Writers store the data before the tuple and clear the tuple before the
data; one-ID readers read the tuple, then the data, with no call between; scans copy both
and check that nothing changed between. Each data object here knows its set and its ID, and
its finalizer yields the GIL: a free that drops it lets another thread run in the middle of
the free, which is where a wrong order of the writes would show.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest

from ioasid_core import AccessDeniedError, Event, IoasidSet, IoasidSpace, NotFoundError
from ioasid_core.space import Record

ROUNDS = 3000


class Tagged:
    """Private data that says whose it is, and yields the GIL when it dies."""

    def __init__(self, owner: IoasidSet, ioasid: int) -> None:
        self.owner = owner
        self.ioasid = ioasid

    def __del__(self) -> None:
        time.sleep(0)  # let another thread run inside the free that drops this


def _pairs(
    items: Iterable[tuple[int, Record | None]],
) -> list[tuple[int, tuple[IoasidSet, Tagged, int, bool]]]:
    """The view's (ID, record) pairs, each checked to be a record with ``Tagged`` data."""
    checked = []
    for ioasid, rec in items:
        assert rec is not None and isinstance(rec[1], Tagged), (ioasid, rec)
        checked.append((ioasid, (rec[0], rec[1], rec[2], rec[3])))
    return checked


@contextmanager
def _fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _churn(
    space: IoasidSpace,
    sets: list[IoasidSet],
    ids: list[int],
    done: threading.Event,
    wrong: list[str],
) -> None:
    """Free and allocate again, round robin over the sets, each ID with fresh data."""
    try:
        for n in range(ROUNDS):
            owner = sets[n % len(sets)]
            for ioasid in ids:
                space.free(None, ioasid)
                space.alloc(owner, ioasid, ioasid, Tagged(owner, ioasid))
                time.sleep(0)  # and yield with it allocated (as inside its free, freed)
    except Exception as exc:  # reported: a churn that stopped proves nothing
        wrong.append(f"churn raised {exc!r}")
    finally:
        done.set()


def _space(observed: bool, sets: int, ids: int) -> tuple[IoasidSpace, list[IoasidSet], list[int]]:
    space = IoasidSpace(1 << 12)
    if observed:  # the full methods, not the fast paths
        space.subscribe(lambda event: None)
    owners = [space.create_set() for _ in range(sets)]
    taken = []
    for ioasid in range(1, ids + 1):
        taken.append(space.alloc(owners[0], ioasid, ioasid, Tagged(owners[0], ioasid)))
    return space, owners, taken


def _run(space: IoasidSpace, sets: list[IoasidSet], ids: list[int], read: object) -> list[str]:
    """Churn in one thread while ``read()`` runs in a loop in another; what it found wrong."""
    assert callable(read)
    done = threading.Event()
    wrong: list[str] = []

    def reader() -> None:
        while not done.is_set() and len(wrong) < 5:
            try:
                wrong.extend(read())
            except Exception as exc:  # reported, not lost with this thread
                wrong.append(f"raised {exc!r}")

    with _fast_switching():
        threads = [
            threading.Thread(target=_churn, args=(space, sets, ids, done, wrong)),
            threading.Thread(target=reader),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    return wrong


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
def test_one_id_read_without_the_lock_is_never_another_allocations_or_a_freed_ones(
    observed: bool,
) -> None:
    space, sets, ids = _space(observed, sets=2, ids=1)
    (ioasid,) = ids
    view = space.records_view()
    hits = {"view": 0, "find": 0}  # reads that found the ID: the checks below did run

    def read() -> list[str]:
        found: list[str] = []
        rec = view.get(ioasid)
        if rec is not None:
            hits["view"] += 1
            data = rec[1]
            if not isinstance(data, Tagged) or data.owner is not rec[0]:
                found.append(f"view: {rec!r}")
        for owner in (None, *sets):
            try:
                data = space.find(owner, ioasid)
            except (NotFoundError, AccessDeniedError):  # not allocated now, or not owner's
                continue
            hits["find"] += 1
            if not isinstance(data, Tagged) or (owner is not None and data.owner is not owner):
                found.append(f"find({owner}): {data!r}")
        return found

    assert _run(space, sets, ids, read) == []
    assert hits["view"] and hits["find"], hits


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
@pytest.mark.parametrize("count", [1, 4])
def test_a_scan_of_the_records_pairs_each_id_with_its_own_data(observed: bool, count: int) -> None:
    """With one ID, a scan's copies can meet it allocated, freed, then allocated again by
    the same set: equal tuples, and the free's None in the data between."""
    space, sets, taken = _space(observed, sets=1, ids=count)
    view = space.records_view()

    def read() -> list[str]:
        found: list[str] = []
        pairs = list(view.items())  # checked here: an assertion would only end this thread
        for ioasid, rec in pairs:
            owner, data = (rec[0], rec[1]) if rec is not None else (None, None)
            if not isinstance(data, Tagged) or data.ioasid != ioasid or data.owner is not owner:
                found.append(f"{ioasid:#x}: {rec!r}")
        if not count - 1 <= len(pairs) <= count:  # one ID is freed at a time
            found.append(f"{len(pairs)} records")
        values = list(view.values())
        if any(rec is None or not isinstance(rec[1], Tagged) for rec in values):
            found.append(f"values: {values!r}")
        return found

    assert _run(space, sets, taken, read) == []


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
def test_a_scan_whose_copies_meet_an_id_freed_and_allocated_again_copies_again(
    observed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving the threads above meet by chance, step by step: between the scan's
    first copy of the tuples and its copy of the data the ID is freed; before its second
    copy of the tuples the same set allocates it again (the same shared tuple)."""
    import ioasid_core.space as space_module

    space, sets, (ioasid, other) = _space(observed, sets=1, ids=2)
    copies: list[str] = []

    def stepping_snapshot(items: list[object]) -> list[object]:
        which = "tuples" if items is space._records else "data"
        copies.append(which)
        if copies == ["tuples", "data", "tuples"]:  # before the second copy of the tuples
            space.alloc(sets[0], ioasid, ioasid, Tagged(sets[0], ioasid))
        copied = items.copy()
        if copies == ["tuples"]:
            space.free(sets[0], ioasid)
        return copied

    monkeypatch.setattr(space_module, "snapshot", stepping_snapshot)
    pairs = dict(_pairs(space.records_view().items()))
    # Tried again: the free began between the first try's copies. The full alloc counts
    # itself as a write too (another try); the fast one need not (it fills a freed ID).
    assert copies[:3] == ["tuples", "data", "tuples"]
    assert copies == ["tuples", "data"] * (3 if observed else 2)
    assert sorted(pairs) == [ioasid, other]
    for key, (owner, data, refs, pending) in pairs.items():
        assert isinstance(data, Tagged) and data.ioasid == key and owner is sets[0]
        assert (refs, pending) == (1, False)


def test_a_scan_taken_for_the_lock_holds_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """After its tries without the lock (none here), a scan copies the records under it."""
    import ioasid_core.space as space_module

    space, _, ids = _space(False, sets=1, ids=3)
    lockfree = dict(space.records_view().items())
    monkeypatch.setattr(space_module, "_COPY_TRIES", 0)
    assert dict(space.records_view().items()) == lockfree
    assert [data.ioasid for _, (_, data, _, _) in _pairs(lockfree.items())] == ids
    assert not space._lock.locked  # given back


def test_a_scan_from_a_callout_under_the_lock_does_not_wait_for_it() -> None:
    """A subscriber runs under the space's lock, and so does the finalizer of data a free
    drops: a scan there must not wait for the lock its own thread holds."""
    space, sets, ids = _space(False, sets=1, ids=2)
    seen: list[int] = []

    def subscriber(event: Event) -> None:
        seen.append(len(list(space.records_view().items())))

    class ScansWhenDropped:
        def __del__(self) -> None:
            seen.append(len(list(space.records_view().values())))

    def work() -> None:
        space.subscribe(subscriber)
        space.alloc(sets[0], 1, 100)  # ALLOC: three records
        space.set_data(ids[0], ScansWhenDropped())  # replaced under the lock: dropped there
        space.set_data(ids[0], None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the scan waited for the lock its own thread holds"
    assert seen == [3, 3]


def test_a_free_leaves_no_data_behind_for_a_reader() -> None:
    space, sets, ids = _space(False, sets=1, ids=2)
    space.free(sets[0], ids[0])
    assert space._records[ids[0]] is None and space._data[ids[0]] is None  # not the data
    assert ids[0] not in space.records_view() and space.records_view().get(ids[0]) is None
    assert [i for i, _ in space.records_view().items()] == [ids[1]]
