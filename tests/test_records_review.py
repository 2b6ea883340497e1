"""Review of the two-list records (tuple and data): interleavings the lock-free readers can
meet, played step by step, and the data a freed ID must not keep alive.

Each step runs, in this thread, what another thread may run at a switch point of the
reader: a scan's copies are Python calls (``snapshot``), and so is a comparison of an
``int`` subclass with a Python ``__ge__``.
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable

import pytest

import ioasid_core.space as space_module
from ioasid_core import AllocatorOps, IoasidSet, IoasidSpace, NotFoundError


class Tagged:
    """Private data that says which set it was given with."""

    def __init__(self, owner: IoasidSet, name: str) -> None:
        self.owner = owner
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} of set {self.owner.id}>"


def _space(observed: bool) -> tuple[IoasidSpace, IoasidSet, IoasidSet, int, Tagged]:
    space = IoasidSpace(1 << 12)
    if observed:  # the full methods, not the fast paths
        space.subscribe(lambda event: None)
    a, b = space.create_set(), space.create_set()
    first = Tagged(a, "first")
    ioasid = space.alloc(a, 5, 5, first)
    space.alloc(a, 6, 6, Tagged(a, "other"))
    return space, a, b, ioasid, first


def _stepping(monkeypatch: pytest.MonkeyPatch, steps: dict[int, Callable[[], object]]) -> list[int]:
    """Replace the scan's copies: after the n-th copy (1: tuples, 2: data, 3: tuples, ...)
    run ``steps[n]``, as another thread switched in there would."""
    copies: list[int] = []

    def stepping_snapshot(items: list[object]) -> list[object]:
        copied = items.copy()
        copies.append(len(copies) + 1)
        step = steps.get(len(copies))
        if step is not None:
            step()
        return copied

    monkeypatch.setattr(space_module, "snapshot", stepping_snapshot)
    return copies


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
def test_a_scan_never_pairs_an_id_with_another_sets_data_copied_between(
    observed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    space, a, b, ioasid, _ = _space(observed)

    def to_b() -> None:  # after the first copy of the tuples: a frees, b allocates
        space.free(a, ioasid)
        space.alloc(b, ioasid, ioasid, Tagged(b, "b's"))

    def back_to_a() -> None:  # after the copy of the data: b frees, a allocates again
        space.free(b, ioasid)
        space.alloc(a, ioasid, ioasid, Tagged(a, "a's again"))

    _stepping(monkeypatch, {1: to_b, 2: back_to_a})
    for key, rec in space.records_view().items():
        assert rec is not None
        assert isinstance(rec[1], Tagged) and rec[1].owner is rec[0], (key, rec)


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
def test_a_scan_returns_only_records_that_held(
    observed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    space, a, _, ioasid, first = _space(observed)
    held: list[tuple[object, ...]] = [(a, first, 1, False)]
    middle, last = Tagged(a, "middle"), Tagged(a, "last")

    def take_and_set() -> None:  # after the first copy of the tuples
        space.get(a, ioasid)
        space.set_data(ioasid, middle)
        held.extend([(a, first, 2, False), (a, middle, 2, False)])

    def set_and_put() -> None:  # after the copy of the data
        space.set_data(ioasid, last)
        space.put(a, ioasid)
        held.extend([(a, last, 2, False), (a, last, 1, False)])

    _stepping(monkeypatch, {1: take_and_set, 2: set_and_put})
    rec = dict(space.records_view().items())[ioasid]
    assert rec in held


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
def test_find_reads_the_data_beside_the_tuple_before_it_compares_the_id(
    observed: bool,
) -> None:
    """``find`` of an ``int`` subclass whose ``>=`` is Python code: a thread switch there
    (played here: set b takes the ID) must not hand set a the data of b's allocation."""
    space, a, b, ioasid, first = _space(observed)

    class Switching(int):
        armed = True

        def __ge__(self, other: object) -> bool:
            if Switching.armed:
                Switching.armed = False
                space.free(a, ioasid)
                space.alloc(b, ioasid, ioasid, Tagged(b, "b's"))
            return int(self) >= other  # type: ignore[operator]

    try:
        found = space.find(a, Switching(ioasid))
    except Exception as exc:  # read after b took it: a refusal is right too
        found = exc
    assert found is first or isinstance(found, Exception), found
    assert not Switching.armed  # the switch did happen inside the read


def test_the_full_find_converts_an_index_object_once_before_it_reads() -> None:
    """Both lists are indexed with the ID: an ``__index__`` in Python run between the two
    reads is a switch point (played here: set b takes the ID). The full ``find`` (here with
    a getter) converts the ID once, before either read. The fast one does not: a type test
    would cost every find a tenth of its time, for ID types of one's own (documented)."""
    space, a, b, ioasid, first = _space(False)

    class Index:
        """An ID as a user type: ``__index__`` and comparisons in Python."""

        calls = 0

        def __index__(self) -> int:
            Index.calls += 1
            if Index.calls == 2:  # between the reads of the tuple and the data
                space.free(a, ioasid)
                space.alloc(b, ioasid, ioasid, Tagged(b, "b's"))
            return ioasid

        def __ge__(self, other: int) -> bool:
            return ioasid >= other

        def __lt__(self, other: int) -> bool:
            return ioasid < other

    try:
        found: object = space.find(a, Index(), lambda data: True)  # type: ignore[arg-type]
    except Exception as exc:
        found = exc
    assert found is first or isinstance(found, Exception), found
    assert Index.calls == 1  # converted once


# -- a freed ID's data is not kept alive, whichever path freed it


class Payload:
    pass


def _custom(space: IoasidSpace) -> AllocatorOps[None]:
    taken: set[int] = set()

    def alloc(lo: int, hi: int, pdata: None) -> int:
        n = next(i for i in range(hi, lo - 1, -1) if i not in taken)  # from the top: beyond
        taken.add(n)  # the mapped IDs, so the slots are covered for it
        return n

    def free(n: int, pdata: None) -> None:
        taken.discard(n)

    ops = AllocatorOps(alloc, free)
    space.register_allocator(ops)
    return ops


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
@pytest.mark.parametrize(
    "how", ["free", "put", "free_all", "force_unregister", "set_data", "free_set"]
)
def test_a_freed_ids_data_is_not_kept_alive(observed: bool, how: str) -> None:
    space = IoasidSpace(1 << 14)
    ops = _custom(space) if how == "force_unregister" else None
    if observed:
        space.subscribe(lambda event: None)
    owner = space.create_set()
    data = Payload()
    watch = weakref.ref(data)
    ioasid = space.alloc(owner, 0, (1 << 14) - 1, data)
    if ops is not None:
        assert ioasid == (1 << 14) - 1 and len(space._data) == len(space._records) == 1 << 14
    del data
    if how == "free":
        space.free(owner, ioasid)
    elif how == "put":
        space.get(owner, ioasid)
        space.free(owner, ioasid)
        space.put(owner, ioasid)
    elif how == "free_all":
        space.free_all(owner)
    elif how == "force_unregister":
        assert ops is not None
        space.unregister_allocator(ops, force=True)
    elif how == "set_data":
        space.set_data(ioasid, None)
    else:
        space.free_set(owner)  # pending, destroyed by the free
        space.free(owner, ioasid)
    gc.collect()
    assert watch() is None, how
    if how != "set_data":
        with pytest.raises(NotFoundError):
            space.find(None, ioasid)


# -- the hot free's test by identity, and the scans it must leave to the full free


@pytest.mark.parametrize("observed", [False, True], ids=["fast", "full"])
def test_every_record_with_one_reference_and_no_free_pending_is_its_sets_shared_tuple(
    observed: bool,
) -> None:
    """Else the hot free (``rec is owner._fresh``) leaves the ID to the full one: no wrong
    answer, only a slower one, so the identity itself is what is checked."""
    space = IoasidSpace(1 << 12)
    if observed:
        space.subscribe(lambda event: None)
    owner = space.create_set()
    ids = [space.alloc(owner, 1, 100, Tagged(owner, str(n))) for n in range(6)]
    space.attach_spid(ids[0], 7)
    assert space.find_by_spid(owner, 7, get=True) == ids[0]  # 2 references
    space.put(owner, ids[0])  # 1 again
    space.get(owner, ids[1])
    space.get(owner, ids[1])
    space.put(owner, ids[1])
    space.put(owner, ids[1])
    space.set_data(ids[2], "replaced")
    space.detach_data(ids[3])
    space.attach_data(ids[3], "attached")
    space.get(owner, ids[4])
    space.free(owner, ids[4])  # free pending, one reference
    space.get(owner, ids[5])
    for ioasid in ids:
        rec = space.records_view()[ioasid]
        assert rec is not None
        _, _, refs, pending = rec
        shared = space._records[ioasid] is owner._fresh
        assert shared == (refs == 1 and not pending), (ioasid, refs, pending)
    space.put(owner, ids[5])
    assert space._records[ids[5]] is owner._fresh


def test_a_scan_leaves_the_hot_free_to_the_free_once_done_even_when_it_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space, *_ = _space(False)
    assert len(list(space.records_view().items())) == 2
    assert space._scans == []

    def failing(items: list[object]) -> list[object]:
        raise MemoryError

    monkeypatch.setattr(space_module, "snapshot", failing)
    with pytest.raises(MemoryError):
        list(space.records_view().values())
    assert space._scans == []  # else every later free would take the full path


def test_a_scan_from_a_custom_allocator_or_a_getter_does_not_wait_for_the_lock() -> None:
    """A custom allocator runs under the space's lock; a getter without it. A scan from
    either finishes (in a thread: a wait for the lock its own thread holds would hang)."""
    space = IoasidSpace(1 << 12)
    seen: list[int] = []
    taken: set[int] = set()

    def alloc(lo: int, hi: int, pdata: None) -> int:
        seen.append(len(list(space.records_view().items())))
        n = min(set(range(lo, hi + 1)) - taken)
        taken.add(n)
        return n

    def free(n: int, pdata: None) -> None:
        seen.append(len(list(space.records_view().values())))
        taken.discard(n)

    def getter(data: object) -> bool:
        seen.append(len(list(space.records_view().items())))
        return True

    def work() -> None:
        space.register_allocator(AllocatorOps(alloc, free))
        owner = space.create_set()
        first = space.alloc(owner, 1, 10, "one")
        space.alloc(owner, 1, 10, "two")
        assert space.find(owner, first, getter) == "one"
        space.free(owner, first)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "a scan waited for the lock its own thread holds"
    assert seen == [0, 1, 2, 2]
