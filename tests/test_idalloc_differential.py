"""The default allocator, and a space through both of its paths, against brute force.

Seeded random runs of thousands of steps, with the heap's thresholds made small
(``SPILL``, ``_SCAN_MAX``, ``_STALE_FLOOR`` are read at call time) so that spills, scans of
the holes, stale entries and compactions happen every few steps, mixed with requests whose
minimum lies above the lowest hole, whose maximum lies below it, that are empty (min > max),
or that sit at block (255/256/257) and chunk (4096) edges. The model is a ``bytearray`` of
the used IDs: ``find(0, lo, hi + 1)`` is the lowest free ID in ``[lo, hi]``, by definition.

The space runs twice in lockstep on the same calls: one with no subscriber (the inlined fast
paths of fastpath.py answer) and one with a subscriber (every call takes the full methods).
Both must give the model's answer or error class, including sets with quotas, free-pending
IDs (get/put), set destruction, and a custom allocator registered and unregistered mid-run
(the default allocator must resume where it was).
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from ioasid_core import (
    AccessDeniedError,
    AllocatorBusyError,
    AllocatorNoSpaceError,
    AllocatorOps,
    BusyError,
    InvalidArgumentError,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
    UnknownIoasidError,
    idalloc,
)
from ioasid_core.idalloc import _PARK_MAX, BLOCK_SHIFT, GROW_CHUNK, IdAllocator

_BLOCK = 1 << BLOCK_SHIFT
CAPACITY = 2 * GROW_CHUNK + 3 * _BLOCK + 17  # crosses two chunk edges; the top is odd


@pytest.fixture(params=["small", "real"])
def thresholds(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Small thresholds reach every spill and compaction in a few steps; the real ones
    check that nothing depends on them being small."""
    if request.param == "small":
        monkeypatch.setattr(idalloc, "SPILL", 24)
        monkeypatch.setattr(idalloc, "_SCAN_MAX", 5)
        monkeypatch.setattr(idalloc, "_STALE_FLOOR", 2)
    return str(request.param)


def _lowest(used: bytearray, lo: int, hi: int) -> int:
    """The brute-force answer: the lowest 0 byte in ``[lo, hi]``, or -1."""
    if lo > hi:
        return -1
    return used.find(0, lo, hi + 1)


def _take(ids: IdAllocator, used: bytearray, live: list[int], lo: int, hi: int) -> int:
    """``ids.alloc(lo, hi)``, checked against the brute-force answer, and the ID taken
    marked in ``used`` and listed in ``live``."""
    want = _lowest(used, lo, hi)
    got = ids.alloc(lo, hi)
    assert got == want, f"alloc({lo}, {hi}) = {got}, lowest free is {want}"
    if got >= 0:
        used[got] = 1
        live.append(got)
    return got


def _points(rng: random.Random, used: bytearray, ids: IdAllocator, capacity: int) -> int:
    """An ID anywhere, or next to an edge the allocator treats specially."""
    lowest_free = used.find(0)
    edges = [
        0,
        _BLOCK - 1,
        _BLOCK,
        _BLOCK + 1,
        GROW_CHUNK - 1,
        GROW_CHUNK,
        GROW_CHUNK + 1,
        2 * GROW_CHUNK,
        capacity - 1,
        ids.hint[0],
        ids.mapped,
        lowest_free if lowest_free >= 0 else 0,
    ]
    if ids.holes:
        edges.append(min(ids.holes))
        edges.append(rng.choice(ids.holes))
    if rng.random() < 0.3:
        return rng.randrange(capacity)
    return min(max(rng.choice(edges) + rng.randint(-2, 2), 0), capacity - 1)


def _check_structure(ids: IdAllocator, used: bytearray) -> None:
    """The raw invariants the fast paths and searches rely on (O(capacity): not every step)."""
    mapped = ids.mapped
    assert ids.map[:mapped] == used[:mapped] and used.find(1, mapped) == -1
    assert ids.map[mapped] == 1, "the sentinel"
    hint = ids.hint[0]
    holes = ids.holes
    assert all(holes[(k - 1) // 2] <= holes[k] for k in range(1, len(holes))), "a min-heap"
    floor = ids.floor[0]
    assert 0 <= floor <= hint <= mapped, "the floor, the hint, the mapped end"
    assert floor <= _PARK_MAX, "a search from below the floor reads at most _PARK_MAX bytes"
    live_holes = {n for n in holes if not used[n] and n >= floor}  # below the floor: parked
    assert all(n < hint for n in live_holes), "a hole lies below the hint"
    free_below = {n for n in range(floor, min(hint, mapped)) if not used[n]}
    assert free_below == live_holes, "from the floor to the hint, every free ID is a hole"
    for block, flag in enumerate(ids.full):
        if flag:
            start = block * _BLOCK
            end = min(start + _BLOCK, mapped)
            hidden = {n for n in range(max(start, floor), end) if not used[n]}  # not parked
            assert hidden <= live_holes, f"block {block}'s flag hides {hidden - live_holes}"


# ---------------------------------------------------------------------------------------------
# The allocator alone
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_idalloc_matches_brute_force_through_spills(thresholds: str, seed: int) -> None:
    rng = random.Random(f"idalloc-{seed}-{thresholds}")
    capacity = CAPACITY
    ids = IdAllocator(capacity)
    used = bytearray(capacity)
    live: list[int] = []  # the used IDs, unordered (swap-remove)

    def take(lo: int, hi: int) -> int:
        return _take(ids, used, live, lo, hi)

    def give(k: int) -> None:
        n = live[k]
        live[k] = live[-1]
        live.pop()
        ids.free(n)
        used[n] = 0

    for step in range(4000):
        roll = rng.random()
        if roll < 0.30:
            a, b = _points(rng, used, ids, capacity), _points(rng, used, ids, capacity)
            if rng.random() < 0.8:
                a, b = sorted((a, b))
            take(a, b)  # min > max in one case in ten: none
        elif roll < 0.38 and ids.holes:
            lowest = min(ids.holes)  # a minimum above the lowest hole
            take(min(lowest + rng.randint(1, 600), capacity - 1), capacity - 1)
        elif roll < 0.42 and ids.holes:
            lowest = min(ids.holes)  # a maximum below the lowest hole
            take(rng.randint(0, lowest), max(lowest - rng.randint(0, 3), 0))
        elif roll < 0.50:
            lo = rng.choice([0, 0, _points(rng, used, ids, capacity)])
            for _ in range(rng.randint(1, 400)):  # a fill
                if take(lo, capacity - 1) < 0:
                    break
        elif roll < 0.72 and live:
            give(rng.randrange(len(live)))
        elif roll < 0.80 and live:
            # A long run of frees: across the spill threshold, in one order or another.
            order = rng.choice(["up", "down", "random"])
            count = rng.randint(1, min(len(live), 300))
            picks = sorted(rng.sample(range(len(live)), count), reverse=True)
            chosen = [live[k] for k in picks]
            for k in picks:
                live[k] = live[-1]
                live.pop()
            if order != "random":
                chosen.sort(reverse=order == "down")
            for n in chosen:
                ids.free(n)
                used[n] = 0
        elif roll < 0.86:
            # A free of an unused, unmapped or negative ID: refused, nothing changes.
            n = rng.choice([_points(rng, used, ids, capacity), -1, capacity, ids.mapped])
            if 0 <= n < capacity and used[n]:
                continue
            before = (bytes(ids.map), bytes(ids.full), ids.hint[0], list(ids.holes))
            with pytest.raises(ValueError, match="not in use"):
                ids.free(n)
            assert (bytes(ids.map), bytes(ids.full), ids.hint[0], list(ids.holes)) == before
        elif roll < 0.88:
            ids.cover(_points(rng, used, ids, capacity))  # maps more; frees nothing
        else:
            take(0, capacity - 1)
        assert ids.map[: ids.mapped] == used[: ids.mapped], f"step {step}"
        assert len(ids.holes) <= len(live) + capacity, "the heap is bounded"
        if step % 97 == 0:
            _check_structure(ids, used)
    _check_structure(ids, used)
    while take(0, capacity - 1) >= 0:  # drain: every free ID once, lowest first
        pass
    assert used.count(0) == 0 and ids.used == capacity


# ---------------------------------------------------------------------------------------------
# A space, through its fast paths and through its full methods, in lockstep
# ---------------------------------------------------------------------------------------------


@dataclass
class MRec:
    set: int
    refs: int = 1
    pending: bool = False


@dataclass
class MSet:
    quota: int | None
    count: int = 0
    live: bool = True
    pending: bool = False


class Backend:
    """A custom allocator that hands out the highest free ID: never the default's answer."""

    def __init__(self) -> None:
        self.used: set[int] = set()

    def alloc(self, lo: int, hi: int, pdata: object) -> int:
        for n in range(hi, lo - 1, -1):
            if n not in self.used:
                self.used.add(n)
                return n
        raise NoSpaceError(f"backend: none in [{lo}, {hi}]")

    def free(self, n: int, pdata: object) -> None:
        self.used.remove(n)


class Model:
    """What the contract says the spaces hold."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.recs: dict[int, MRec] = {}
        self.used = bytearray(capacity)  # the IDs with a record
        self.sets: list[MSet] = []
        self.reserved = 0
        self.custom = False

    def room(self) -> int:
        unreserved = sum(s.count for s in self.sets if s.quota is None)
        return self.capacity - self.reserved - unreserved

    def destroy(self, si: int) -> None:
        s = self.sets[si]
        s.live = False
        s.pending = False
        if s.quota is not None:
            self.reserved -= s.quota

    def drop(self, n: int) -> None:
        rec = self.recs.pop(n)
        self.used[n] = 0
        s = self.sets[rec.set]
        s.count -= 1
        if s.pending and not s.count:
            self.destroy(rec.set)

    def expect_alloc(self, si: int, lo: int, hi: int) -> int | type[IoasidError]:
        s = self.sets[si]
        if not 0 <= lo <= hi < self.capacity:
            return InvalidArgumentError
        if not s.live or s.pending:
            return InvalidArgumentError
        if s.quota is None:
            if self.room() <= 0:
                return NoSpaceError
        elif s.count >= s.quota:
            return QuotaExceededError
        if self.custom:
            n = self.used.rfind(0, lo, hi + 1)  # the backend's answer: the highest free
            return n if n >= 0 else AllocatorNoSpaceError
        n = _lowest(self.used, lo, hi)
        return n if n >= 0 else NoSpaceError

    def owned(self, si: int | None, n: int) -> MRec | type[IoasidError]:
        rec = self.recs.get(n)
        if rec is None:
            return NotFoundError
        if si is not None and rec.set != si:
            return AccessDeniedError
        return rec


def _outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except IoasidError as exc:
        return type(exc)


@dataclass(frozen=True)
class Pair:
    """One argument with a value for each space (its own set, its own allocator ops)."""

    fast: object
    slow: object

    def of(self, side: int) -> object:
        return self.slow if side else self.fast


class Lockstep:
    """The quiet space (fast paths) and the subscribed one (full methods), driven together."""

    def __init__(self, capacity: int) -> None:
        self.fast = IoasidSpace(capacity)
        self.slow = IoasidSpace(capacity)
        self.events = 0
        self.slow.subscribe(self._count)
        self.sets: list[tuple[IoasidSet, IoasidSet]] = []
        self.backends: tuple[Backend, Backend] | None = None
        self.ops: tuple[AllocatorOps[object], AllocatorOps[object]] | None = None

    def _count(self, event: object) -> None:
        self.events += 1

    def spaces(self) -> Iterator[tuple[int, IoasidSpace]]:
        yield 0, self.fast
        yield 1, self.slow

    def both(self, method: str, *args: object, **kwargs: object) -> object:
        """``space.method(*args)`` on both spaces; a ``Pair`` argument gives each its own."""

        def on(side: int, space: IoasidSpace) -> Callable[[], object]:
            mine = [a.of(side) if isinstance(a, Pair) else a for a in args]
            return lambda: getattr(space, method)(*mine, **kwargs)

        fast = _outcome(on(0, self.fast))
        slow = _outcome(on(1, self.slow))
        if isinstance(fast, IoasidSet) and isinstance(slow, IoasidSet):
            assert fast.id == slow.id
            return fast
        assert fast == slow, f"{method}: the fast path says {fast!r}, the full method {slow!r}"
        return fast

    def set(self, si: int | None) -> Pair | None:
        return None if si is None else Pair(*self.sets[si])


def _alloc_both(run: Lockstep, model: Model, si: int, lo: int, hi: int, *, private: object) -> bool:
    """``alloc`` on both spaces, checked against the model's answer; the model records an
    ID handed out. Whether one was."""
    want = model.expect_alloc(si, lo, hi)
    got = run.both("alloc", run.set(si), lo, hi, private)
    assert got == want, f"alloc(set {si}, {lo}, {hi}) = {got!r}, expected {want!r}"
    if isinstance(want, int):
        model.recs[want] = MRec(si)
        model.used[want] = 1
        model.sets[si].count += 1
        return True
    return False


def _check_spaces(run: Lockstep, model: Model) -> None:
    """Everything observable against the model (O(capacity): not every step)."""
    for _, space in run.spaces():
        view = space.records_view()
        got = {n: (rec[2], rec[3]) for n, rec in view.items() if rec is not None}
        assert got == {n: (r.refs, r.pending) for n, r in model.recs.items()}
        for si, s in enumerate(model.sets):
            mine = run.sets[si][0 if space is run.fast else 1]
            assert mine.count == s.count
            assert mine.ioasids() == sorted(n for n, r in model.recs.items() if r.set == si)
        assert space.available == model.capacity - model.reserved
        if not model.custom:
            _check_structure(space._ids, model.used)


def _check_maps(run: Lockstep, model: Model) -> None:
    """The default allocator's map holds exactly the live IDs (none while a custom one
    hands them out): cheap, every step."""
    for _, space in run.spaces():
        ids = space._ids
        mapped = ids.mapped
        assert len(space._records) == mapped
        if model.custom:
            assert ids.map.count(1) == 1, "the default map lends nothing under a custom one"
        else:
            assert ids.map[:mapped] == model.used[:mapped] and model.used.find(1, mapped) == -1


@pytest.mark.parametrize("seed", range(4))
def test_space_fast_and_full_paths_match_brute_force(thresholds: str, seed: int) -> None:
    rng = random.Random(f"space-{seed}-{thresholds}")
    capacity = CAPACITY
    run = Lockstep(capacity)
    model = Model(capacity)

    # Quotas: a quota-less set takes the fast path only while no quota is reserved.
    quotas = seed % 2 == 1

    def new_set() -> None:
        quota = rng.choice([None, None, rng.randint(0, 40), rng.randint(100, 900)])
        if not quotas:
            quota = None
        want = NoSpaceError if quota is not None and quota > model.room() else None
        got = run.both("create_set", quota=quota)
        if want is None:
            assert isinstance(got, IoasidSet)
            run.sets.append(
                (run.fast.sets()[-1], run.slow.sets()[-1])  # creation order: the newest
            )
            model.sets.append(MSet(quota))
            if quota is not None:
                model.reserved += quota
        else:
            assert got is want

    def point() -> int:
        return _points(rng, model.used, run.fast._ids, capacity)

    def alloc(si: int, lo: int, hi: int) -> bool:
        return _alloc_both(run, model, si, lo, hi, private=rng.choice([None, None, object()]))

    def free(si: int | None, n: int) -> None:
        rec = model.owned(si, n)
        got = run.both("free", run.set(si), n)
        if not isinstance(rec, MRec):
            assert got is rec
            return
        assert got is None
        if rec.pending:
            return
        rec.refs -= 1
        if rec.refs:
            rec.pending = True
        else:
            model.drop(n)

    def clear() -> None:
        """Every ID freed, its references put, through whichever path takes each."""
        for n in sorted(model.recs, reverse=rng.random() < 0.5):
            while n in model.recs:
                rec = model.recs[n]
                if rec.pending:
                    assert run.both("put", None, n) is (rec.refs == 1)
                    rec.refs -= 1
                    if not rec.refs:
                        model.drop(n)
                else:
                    free(rec.set, n)

    def live_ids() -> list[int]:
        return list(model.recs)

    for _ in range(3):
        new_set()

    for step in range(3000):
        roll = rng.random()
        live = live_ids()
        si = rng.randrange(len(model.sets))
        if roll < 0.28:
            a, b = point(), point()
            if rng.random() < 0.85:
                a, b = sorted((a, b))
            alloc(si, a, b)
        elif roll < 0.34:
            holes = run.fast._ids.holes
            if holes and not model.custom:
                lowest = min(holes)
                if rng.random() < 0.5:  # a minimum above the lowest hole
                    alloc(si, min(lowest + rng.randint(1, 300), capacity - 1), capacity - 1)
                else:  # a maximum below it
                    alloc(si, rng.randint(0, lowest), max(lowest - rng.randint(0, 2), 0))
            else:
                alloc(si, 0, capacity - 1)
        elif roll < 0.40:
            lo = rng.choice([0, point()])
            for _ in range(rng.randint(1, 250)):  # a fill
                if not alloc(si, lo, capacity - 1):
                    break
        elif roll < 0.60 and live:
            n = rng.choice(live)
            owner = model.recs[n].set
            free(rng.choice([owner, owner, None]), n)
        elif roll < 0.66 and live:
            # A long run of frees through whichever path takes them.
            chosen = rng.sample(live, rng.randint(1, min(len(live), 200)))
            if rng.random() < 0.5:
                chosen.sort(reverse=rng.random() < 0.5)
            for n in chosen:
                if n in model.recs:
                    free(model.recs[n].set, n)
        elif roll < 0.70:
            # Frees that must fail: unknown IDs, another set's ID.
            n = rng.choice([point(), capacity, capacity + 5, *live[:1]])
            other = rng.randrange(len(model.sets))
            free(other, n)
        elif roll < 0.76 and live:
            n = rng.choice(live)
            rec = model.owned(None, n)
            assert isinstance(rec, MRec)
            if rng.random() < 0.5:
                want: object = BusyError if rec.pending else None
                got = run.both("get", None, n)
                assert got is want
                if want is None:
                    rec.refs += 1
            else:
                got = run.both("put", None, n)
                rec.refs -= 1
                assert got is (rec.refs == 0)
                if not rec.refs:
                    model.drop(n)
        elif roll < 0.78:
            n = rng.choice([point(), capacity + 1])
            if n not in model.recs:
                assert run.both("get", None, n) is UnknownIoasidError
        elif roll < 0.82:
            s = model.sets[si]
            got = run.both("free_set", run.set(si))
            if not s.live or s.pending:
                assert got is InvalidArgumentError
            elif s.count:
                assert got is False
                s.pending = True
            else:
                assert got is True
                model.destroy(si)
        elif roll < 0.85:
            s = model.sets[si]
            got = run.both("free_all", run.set(si))
            if not s.live:
                assert got is InvalidArgumentError
            else:
                mine = sorted(n for n, r in model.recs.items() if r.set == si)
                freed = 0
                for n in mine:
                    rec = model.recs[n]
                    if rec.pending:
                        continue
                    freed += 1
                    rec.refs -= 1
                    if rec.refs:
                        rec.pending = True
                    else:
                        model.drop(n)
                assert got == freed
        elif roll < 0.88:
            new_set()
        elif roll < 0.90:
            if not model.custom:
                if rng.random() < 0.7:
                    clear()  # the default allocator must hold nothing for a custom one
                backends = (Backend(), Backend())
                ops = (
                    AllocatorOps(backends[0].alloc, backends[0].free),
                    AllocatorOps(backends[1].alloc, backends[1].free),
                )
                got = run.both("register_allocator", Pair(*ops))
                if model.recs:
                    assert got is AllocatorBusyError
                else:
                    assert got is None
                    model.custom = True
                    run.backends, run.ops = backends, ops
            else:
                assert run.ops is not None and run.backends is not None
                ops_now = run.ops
                force = rng.random() < 0.5
                got = run.both("unregister_allocator", Pair(*ops_now), force=force)
                if model.recs and not force:
                    assert got is BusyError
                else:
                    assert got is None
                    for n in sorted(model.recs):
                        model.drop(n)
                    assert not run.backends[0].used and not run.backends[1].used
                    model.custom = False
                    run.ops = run.backends = None
        else:
            alloc(si, 0, capacity - 1)
        _check_maps(run, model)
        if step % 101 == 0:
            _check_spaces(run, model)
    _check_spaces(run, model)
    assert run.events > 0, "the subscribed space took the full methods"


def test_a_loop_of_fast_frees_spills_the_heap_as_the_slow_free_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every free below the hint pushes a hole; the full method spills past SPILL, and the
    inlined one must too, or a quiet space that frees N IDs keeps N heap entries (40 bytes
    each with their ints) until it allocates them again, whatever SPILL says."""
    monkeypatch.setattr(idalloc, "SPILL", 100)
    slow_frees: list[int] = []
    full_free = IoasidSpace.free

    def counted(self: IoasidSpace, set: IoasidSet | None, ioasid: int) -> None:
        slow_frees.append(ioasid)
        full_free(self, set, ioasid)

    monkeypatch.setattr(IoasidSpace, "free", counted)
    space = IoasidSpace(1 << 12)
    owner = space.create_set()
    taken = [space.alloc(owner, 0, 4095) for _ in range(1000)]
    for n in reversed(taken):  # each below the hint: a hole
        space.free(owner, n)
        assert len(space._ids.holes) <= 100
    assert not slow_frees, "the fast path freed them"
    assert [space.alloc(owner, 0, 4095) for _ in range(1001)] == list(range(1001))


def test_threads_on_the_fast_paths_never_share_an_id_through_spills(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three threads allocate (from 0, 1, just above the hint where the floor jumps, and
    from above other threads' holes) and free their own IDs on one quiet space, with spills
    every few frees: no ID is ever handed to two holders, and at the end the map holds
    exactly the IDs still held."""
    monkeypatch.setattr(idalloc, "SPILL", 16)
    monkeypatch.setattr(idalloc, "_SCAN_MAX", 3)
    monkeypatch.setattr(idalloc, "_STALE_FLOOR", 1)
    capacity = GROW_CHUNK + _BLOCK
    space = IoasidSpace(capacity)
    holder: dict[int, int] = {}  # ID -> the thread holding it (dict ops are atomic)
    failures: list[BaseException] = []
    held: list[list[int]] = [[], [], []]

    def worker(me: int) -> None:
        rng = random.Random(me)
        owner = space.create_set()
        mine = held[me]
        try:
            for _ in range(6000):
                if mine and rng.random() < 0.48:
                    n = mine.pop(rng.randrange(len(mine)))
                    del holder[n]  # before the free: nobody may get it back until then
                    space.free(owner, n)
                    continue
                # From 0 and 1, anywhere, just above the hint (where the floor jumps): the
                # hint is read without the lock, only to pick a number.
                lo = rng.choice(
                    [0, 0, 1, 1, rng.randrange(capacity), space._ids.hint[0] + rng.randint(1, 300)]
                )
                lo = min(lo, capacity - 1)
                try:
                    n = space.alloc(owner, lo, capacity - 1)
                except NoSpaceError:
                    continue
                other = holder.setdefault(n, me)
                assert other == me and n not in mine, f"{n:#x} handed to {me} and {other}"
                mine.append(n)
        except BaseException as exc:
            failures.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if failures:
        raise failures[0]
    used = bytearray(capacity)
    for n in holder:
        used[n] = 1
    assert sorted(holder) == sorted(n for mine in held for n in mine)
    _check_structure(space._ids, used)
    owner = space.create_set()
    while (want := _lowest(used, 0, capacity - 1)) >= 0:  # lowest first, to the last one
        assert space.alloc(owner, 0, capacity - 1) == want
        used[want] = 1


# ---------------------------------------------------------------------------------------------
# The floor: requests from every side of it
# ---------------------------------------------------------------------------------------------


def _floor_minimum(rng: random.Random, ids: IdAllocator, capacity: int) -> int:
    """A minimum where the floor matters: 0 and 1 (every real caller), just above the hint
    (across the widest jump), far above it, around the floor and the mapped end, and past
    the capacity (the fast path hands those on with any maximum below the capacity)."""
    hint, floor = ids.hint[0], ids.floor[0]
    return rng.choice(
        [
            0,
            1,
            hint + rng.randint(1, 300),
            hint + rng.randint(_BLOCK - 1, _BLOCK + 1),
            hint + rng.randint(2 * _BLOCK, 8 * _BLOCK),
            max(floor - rng.randint(1, 5), 0),
            floor,
            floor + 1,
            ids.mapped,
            ids.mapped + 1,
            rng.randrange(capacity),
            capacity - 1,
            capacity,
            capacity + 3,
        ]
    )


def _floor_maximum(rng: random.Random, ids: IdAllocator, lo: int, capacity: int) -> int:
    """The top, a range ending below (or at) the floor, a short one, or one below ``lo``."""
    floor = ids.floor[0]
    roll = rng.random()
    if roll < 0.55:
        return capacity - 1
    if roll < 0.75:
        hi = rng.choice([floor - 1, floor, floor - rng.randint(2, 6), lo + rng.randint(0, 12)])
    else:
        hi = lo - rng.randint(1, 5)  # min > max
    return min(max(hi, 0), capacity - 1)


@pytest.mark.parametrize("seed", range(3))
def test_idalloc_with_the_floor_in_play_matches_brute_force(thresholds: str, seed: int) -> None:
    """Requests from 0, 1, just above the hint and far above it, from below the floor and
    ending below it, empty ones and ones past the capacity; frees of parked IDs and of IDs
    at the floor; a small map chunk, so that a jump of the floor passes the mapped end."""
    rng = random.Random(f"floor-{seed}-{thresholds}")
    capacity = 9 * _BLOCK + 37
    ids = IdAllocator(capacity, grow_chunk=_BLOCK)
    used = bytearray(capacity)
    live: list[int] = []

    def take(lo: int, hi: int) -> int:
        return _take(ids, used, live, lo, hi)

    def give(n: int) -> None:
        live.remove(n)
        ids.free(n)
        used[n] = 0

    for step in range(2500):
        roll = rng.random()
        if roll < 0.45:
            lo = _floor_minimum(rng, ids, capacity)
            hi = _floor_maximum(rng, ids, lo, capacity)
            for _ in range(rng.choice([1, 1, 1, 6, 60])):
                if take(lo, hi) < 0:
                    break
        elif roll < 0.55 and live:
            floor = ids.floor[0]
            near = [n for n in live if n <= floor + 1]  # parked, or right at the floor
            give(rng.choice(near) if near else rng.choice(live))
        elif roll < 0.80 and live:
            for n in rng.sample(live, min(len(live), rng.choice([1, 1, 2, 40]))):
                give(n)
        elif roll < 0.84:
            ids.cover(rng.randrange(capacity))
        else:
            take(rng.choice([0, 1, 1]), capacity - 1)
        assert ids.map[: ids.mapped] == used[: ids.mapped], f"step {step}"
        if step % 37 == 0:
            _check_structure(ids, used)
    _check_structure(ids, used)
    while take(0, capacity - 1) >= 0:  # drain: every free ID once, lowest first
        pass
    assert used.count(0) == 0


@pytest.mark.parametrize("seed", range(2))
def test_a_space_with_the_floor_in_play_matches_brute_force(thresholds: str, seed: int) -> None:
    """The same requests through a space's fast paths and full methods in lockstep, with
    sets destroyed and a custom allocator registered and unregistered mid-run."""
    rng = random.Random(f"space-floor-{seed}-{thresholds}")
    capacity = CAPACITY
    run = Lockstep(capacity)
    model = Model(capacity)

    def new_set() -> None:
        got = run.both("create_set")
        assert isinstance(got, IoasidSet)
        run.sets.append((run.fast.sets()[-1], run.slow.sets()[-1]))
        model.sets.append(MSet(None))

    def alloc(si: int, lo: int, hi: int) -> bool:
        return _alloc_both(run, model, si, lo, hi, private=rng.choice([None, object()]))

    def free(n: int) -> None:
        assert run.both("free", run.set(model.recs[n].set), n) is None
        model.drop(n)

    def live_sets() -> list[int]:
        return [k for k, s in enumerate(model.sets) if s.live and not s.pending]

    for _ in range(3):
        new_set()
    for step in range(1500):
        roll = rng.random()
        ids = run.fast._ids
        si = rng.choice(live_sets())
        if roll < 0.45:
            lo = _floor_minimum(rng, ids, capacity)
            hi = _floor_maximum(rng, ids, lo, capacity)
            if rng.random() < 0.05:
                hi = capacity + rng.randint(0, 3)  # refused by both paths
            for _ in range(rng.choice([1, 1, 1, 6, 60])):
                if not alloc(si, lo, hi):
                    break
        elif roll < 0.75 and model.recs:
            floor = ids.floor[0]
            near = [n for n in model.recs if n <= floor + 1]
            if near and rng.random() < 0.3:
                free(rng.choice(near))
            else:
                for n in rng.sample(list(model.recs), min(len(model.recs), rng.choice([1, 30]))):
                    free(n)
        elif roll < 0.78 and len(live_sets()) > 1:
            # A set destroyed: its IDs go back (free_set of a set holding none, or free_all
            # then free_set), scattered below and above the floor.
            for n in sorted(n for n, r in model.recs.items() if r.set == si):
                free(n)
            assert run.both("free_set", run.set(si)) is True
            model.destroy(si)
            new_set()
        elif roll < 0.80:
            if not model.custom:
                for n in list(model.recs):
                    free(n)
                backends = (Backend(), Backend())
                ops = (
                    AllocatorOps(backends[0].alloc, backends[0].free),
                    AllocatorOps(backends[1].alloc, backends[1].free),
                )
                assert run.both("register_allocator", Pair(*ops)) is None
                model.custom = True
                run.backends, run.ops = backends, ops
            else:
                assert run.ops is not None
                assert run.both("unregister_allocator", Pair(*run.ops), force=True) is None
                for n in sorted(model.recs):
                    model.drop(n)
                model.custom = False
                run.ops = run.backends = None
        else:
            alloc(si, rng.choice([0, 1, 1]), capacity - 1)
        _check_maps(run, model)
        if step % 53 == 0:
            _check_spaces(run, model)
    _check_spaces(run, model)
