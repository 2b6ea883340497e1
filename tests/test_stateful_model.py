"""Random operation sequences checked against a small, obviously correct reference model.

The model below keeps plain dicts and sets and recomputes everything by linear scans: it is
meant to be read next to SPEC.md and docs/design-decisions.md, not to be fast. Every rule asks
the model for its prediction first (a result, or the error class(es) the call must raise), then
makes the real call, compares, and only then applies the change to the model. After every step
the invariant compares everything observable: capacity accounting, every set, the state, data,
owner and SPID of every ID, the active allocator, the fake backends' own books, and the exact
sequence of events a global subscriber received.

Where the contract leaves an order or an outcome open the model accepts each reading, and says
so next to the prediction (see "ambiguous").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ioasid_core import (
    INVALID_IOASID,
    AccessDeniedError,
    AllocatorBusyError,
    AllocatorError,
    AllocatorOps,
    AlreadyRegisteredError,
    BusyError,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    IoasidState,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
    SetType,
    Subscription,
    UnknownIoasidError,
)

CAPACITY = 32
SPIDS = (100, 101, 102)
NTOKENS = 3

# ---------------------------------------------------------------------------------------------
# Fake custom-allocator backends
# ---------------------------------------------------------------------------------------------

AllocFn = Callable[[int, int, object], int]
FreeFn = Callable[[int, object], None]


class BackendFault(RuntimeError):
    """What a faulty backend raises."""


class Backend:
    """One kind of backend: its own book of used IDs, shared by every ops of the kind.

    ``alloc_fn``/``free_fn`` are created once, so every ``AllocatorOps`` built from them has
    equal callables and joins one sharing group. ``alloc_fault`` and ``free_fault`` make the
    backend misbehave (only the faulty kind is ever switched).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.used: set[int] = set()
        self.alloc_fault: str | None = None  # None, "invalid", "dup", "range", "raise"
        self.free_fault = False
        self.calls: list[tuple[str, int, object]] = []
        self.violations: list[str] = []
        self.alloc_fn: AllocFn = self._make_alloc()
        self.free_fn: FreeFn = self._make_free()

    def _make_alloc(self) -> AllocFn:
        backend = self

        def alloc(lo: int, hi: int, pdata: object) -> int:
            backend.calls.append(("alloc", lo, pdata))
            if not 0 <= lo <= hi < CAPACITY:
                backend.violations.append(f"alloc called with range [{lo}, {hi}]")
            picked = backend_pick(backend.used, backend.alloc_fault, lo, hi)
            if picked is None:
                raise BackendFault(f"{backend.name}: injected alloc failure")
            if backend.alloc_fault is None and picked != INVALID_IOASID:
                backend.used.add(picked)
            return picked

        return alloc

    def _make_free(self) -> FreeFn:
        backend = self

        def free(ioasid: int, pdata: object) -> None:
            backend.calls.append(("free", ioasid, pdata))
            if backend.free_fault:
                raise BackendFault(f"{backend.name}: injected free failure of {ioasid}")
            if ioasid not in backend.used:
                backend.violations.append(f"free of {ioasid}, which the backend never handed out")
            backend.used.discard(ioasid)

        return free


def backend_pick(used: set[int], fault: str | None, lo: int, hi: int) -> int | None:
    """What a backend's alloc returns (None: it raises). Used by the backend and the model."""
    if fault == "raise":
        return None
    if fault == "invalid":
        return INVALID_IOASID
    if fault == "dup":
        return min(used) if used else INVALID_IOASID
    if fault == "range":
        return hi + 1
    for n in range(lo, hi + 1):
        if n not in used:
            return n
    return INVALID_IOASID


class Token:
    """An MM token: compared by identity only."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Token({self.name})"


# ---------------------------------------------------------------------------------------------
# The reference model
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class MSet:
    key: int  # also the set id the space must give it
    token: object | None
    type: SetType
    quota: int | None
    ids: set[int] = field(default_factory=set)
    spids: dict[int, int] = field(default_factory=dict)
    pending: bool = False
    destroyed: bool = False

    @property
    def live(self) -> bool:
        return not self.pending and not self.destroyed


@dataclass(eq=False)
class MRec:
    owner: MSet
    data: object
    refs: int = 1
    freed: bool = False
    spid: int = INVALID_IOASID


@dataclass(eq=False)
class MGroup:
    backend: Backend
    members: list[AllocatorOps[object]]


@dataclass(frozen=True)
class Ok:
    """The call must succeed (returning ``value`` when ``check``); then ``commit`` runs."""

    value: object
    commit: Callable[[], None]
    check: bool = True
    tolerate: tuple[type[IoasidError], ...] = ()  # ambiguous: these errors are also fine


@dataclass(frozen=True)
class Fail:
    """The call must raise exactly one of these classes and change nothing."""

    classes: tuple[type[IoasidError], ...]


Outcome = Ok | Fail
EvKey = tuple[EventKind, int, int, int]


def fail(*classes: type[IoasidError]) -> Fail:
    return Fail(classes)


def _noop() -> None:
    return None


def _names(classes: tuple[type[BaseException], ...]) -> str:
    return "/".join(c.__name__ for c in classes)


def _sort_key(ev: EvKey) -> tuple[bool, int, str, int, int]:
    return (ev[0] is EventKind.SET_FREE, ev[1], ev[0].value, ev[2], ev[3])


class IoasidModelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.space = IoasidSpace(capacity=CAPACITY)
        self.seen: list[Event] = []
        # Without subscribers the space takes its fast paths: a rule switches this one off/on.
        self.sub: Subscription | None = self.space.subscribe(self.seen.append)
        self.other_space = IoasidSpace(capacity=8)
        self.foreign = self.other_space.create_set()
        self.tokens = [Token(f"mm{i}") for i in range(NTOKENS)]
        self.backends = [Backend("A"), Backend("B"), Backend("F")]
        self.faulty = self.backends[2]
        self.ops: list[AllocatorOps[object]] = []
        self.ops_backend: list[Backend] = []
        for backend, n in zip(self.backends, (3, 2, 2), strict=True):
            for j in range(n):
                self.ops.append(
                    AllocatorOps(backend.alloc_fn, backend.free_fn, f"{backend.name}{j}")
                )
                self.ops_backend.append(backend)
        # model state
        self.msets: list[MSet] = []
        self.real_sets: list[IoasidSet] = []
        self.key_by_obj: dict[int, int] = {}
        self.recs: dict[int, MRec] = {}
        self.groups: list[MGroup] = []
        self.mused: dict[str, set[int]] = {b.name: set() for b in self.backends}
        self.expected: list[EvKey] = []
        self.ndata = 0

    # ---- model helpers ------------------------------------------------------------------

    def _available(self) -> int:
        return CAPACITY - sum(
            m.quota for m in self.msets if not m.destroyed and m.quota is not None
        )

    def _quotaless_held(self) -> int:
        return sum(len(m.ids) for m in self.msets if not m.destroyed and m.quota is None)

    def _active(self) -> MGroup | None:
        return self.groups[0] if self.groups else None

    def _free_fails(self) -> bool:
        group = self._active()
        return group is not None and group.backend.free_fault

    def _emit(self, kind: EventKind, ioasid: int, spid: int, mset: MSet) -> None:
        if self.sub is not None:
            self.expected.append((kind, ioasid, spid, mset.key))

    def _reclaim(self, ioasid: int) -> None:
        rec = self.recs.pop(ioasid)
        owner = rec.owner
        owner.ids.discard(ioasid)
        if rec.spid != INVALID_IOASID:
            del owner.spids[rec.spid]
        group = self._active()
        if group is not None and not group.backend.free_fault:
            self.mused[group.backend.name].discard(ioasid)
        if owner.pending and not owner.ids:
            owner.pending = False
            owner.destroyed = True
            self._emit(EventKind.SET_FREE, INVALID_IOASID, INVALID_IOASID, owner)

    def _free_one(self, ioasid: int) -> None:
        """The owner's free of a not yet freed ID (commit side)."""
        rec = self.recs[ioasid]
        rec.freed = True
        self._emit(EventKind.FREE, ioasid, rec.spid, rec.owner)
        rec.refs -= 1
        if rec.refs == 0:
            self._reclaim(ioasid)

    def _expected_state(self, rec: MRec) -> IoasidState:
        if rec.freed:
            return IoasidState.FREE_PENDING
        if rec.spid != INVALID_IOASID or rec.refs > 1:
            return IoasidState.ACTIVE
        return IoasidState.IDLE

    # ---- argument pickers ---------------------------------------------------------------

    def _pick_id(self, k: int) -> int:
        """Most draws name a live ID (when there is one), the rest any ID."""
        live = sorted(self.recs)
        if k < 2 * CAPACITY and live:
            return live[k % len(live)]
        return k % CAPACITY

    def _pick_any_set(self, k: int) -> tuple[IoasidSet, MSet | None]:
        """Mostly a live set; else any set ever created (destroyed ones too) or another
        space's set (model: None)."""
        live = [m for m in self.msets if m.live]
        if k < 24 and live:
            m = live[k % len(live)]
            return self.real_sets[m.key], m
        n = len(self.msets)
        j = k % (n + 1)
        if j == n:
            return self.foreign, None
        return self.real_sets[j], self.msets[j]

    def _existing(self) -> list[MSet]:
        return [m for m in self.msets if not m.destroyed]

    def _pick_set_for(self, ioasid: int, mode: str, k: int) -> tuple[IoasidSet | None, MSet | None]:
        """The set argument for an ID: its owner, another existing set, None, or a stale set
        (destroyed, or another space's: model None)."""
        existing = self._existing()
        rec = self.recs.get(ioasid)
        if mode == "stale":
            stale = [m for m in self.msets if m.destroyed]
            if k < len(stale):
                return self.real_sets[stale[k].key], stale[k]
            return self.foreign, None
        if mode == "none" or not existing:
            return None, None
        if mode == "own" and rec is not None:
            chosen = rec.owner
        else:
            others = [m for m in existing if rec is None or m is not rec.owner]
            if not others:
                return None, None
            chosen = others[k % len(others)]
        return self.real_sets[chosen.key], chosen

    def _ownership(self, rec: MRec | None, real: IoasidSet | None, m: MSet | None) -> Fail | None:
        """The error of an ID lookup with a set argument, if any (ownership before state)."""
        stale = real is not None and (m is None or m.destroyed)
        if rec is None:
            # ambiguous: an unknown ID with a destroyed or foreign set
            return fail(NotFoundError, InvalidArgumentError) if stale else fail(NotFoundError)
        if stale:
            # ambiguous: SPEC's InvalidArgumentError for a destroyed/unknown set, or simply
            # not the owner (AccessDeniedError)
            return fail(AccessDeniedError, InvalidArgumentError)
        if real is not None and rec.owner is not m:
            return fail(AccessDeniedError)
        return None

    # ---- running one call -----------------------------------------------------------------

    def _head_pdata(self) -> tuple[Backend | None, object]:
        group = self._active()
        if group is None:
            return None, None
        return group.backend, group.members[0].pdata

    def _check_backend_calls(self, what: str, backend: Backend | None, pdata: object) -> None:
        for b in self.backends:
            for op, ioasid, got in b.calls:
                assert b is backend, (
                    f"{what}: backend {b.name} called ({op} {ioasid}) while inactive"
                )
                assert got == pdata, (
                    f"{what}: backend {op}({ioasid}) got pdata {got!r}, not {pdata!r}"
                )
            b.calls.clear()

    def _do(self, what: str, outcome: Outcome, call: Callable[[], object]) -> None:
        backend, pdata = self._head_pdata()
        for b in self.backends:
            b.calls.clear()
        try:
            got = call()
        except IoasidError as exc:
            self._check_backend_calls(what, backend, pdata)
            if isinstance(outcome, Ok):
                if type(exc) in outcome.tolerate:
                    return
                raise AssertionError(
                    f"{what}: model expects success ({outcome.value!r}), got {exc!r}"
                ) from exc
            assert type(exc) in outcome.classes, (
                f"{what}: model expects {_names(outcome.classes)}, got {exc!r}"
            )
            return
        self._check_backend_calls(what, backend, pdata)
        if isinstance(outcome, Fail):
            raise AssertionError(f"{what}: model expects {_names(outcome.classes)}, got {got!r}")
        if outcome.check:
            assert got == outcome.value, f"{what}: expected {outcome.value!r}, got {got!r}"
        outcome.commit()

    # ---- sets -----------------------------------------------------------------------------

    def _create(self, token_i: int | None, type_: SetType, quota: int | None) -> None:
        token = None if token_i is None else self.tokens[token_i]
        errors: list[type[IoasidError]] = []
        if (type_ is SetType.NULL) != (token is None):
            errors.append(InvalidArgumentError)
        if quota is not None and quota < 0:
            errors.append(InvalidArgumentError)
        # ambiguous: the contract gives no order among these checks; any applicable one is fine
        if type_ is SetType.MM and any(m.token is token for m in self._existing()):
            errors.append(AlreadyRegisteredError)
        if quota is not None and quota >= 0 and quota > self._available() - self._quotaless_held():
            errors.append(NoSpaceError)
        what = f"create_set({token!r}, quota={quota}, type={type_.name})"
        if errors:
            self._do(
                what,
                Fail(tuple(errors)),
                lambda: self.space.create_set(token, quota=quota, type=type_),
            )
            return
        created = self.space.create_set(token, quota=quota, type=type_)
        key = len(self.msets)
        assert created.id == key, f"{what}: set id {created.id}, expected {key}"
        assert created.token is token and created.type is type_ and created.quota == quota
        mset = MSet(key, token, type_, quota)
        self.msets.append(mset)
        self.real_sets.append(created)
        self.key_by_obj[id(created)] = key
        self._emit(EventKind.SET_ALLOC, INVALID_IOASID, INVALID_IOASID, mset)

    @initialize(
        quota=st.sampled_from([None, 2, 4, 8]),
        second=st.sampled_from([None, 0, 1, 3]),
        first=st.sampled_from([None, None, 0, 3, 5, 5]),
        more=st.lists(st.integers(0, 6), max_size=2),
        listen=st.booleans(),
    )
    def setup(
        self,
        quota: int | None,
        second: int | None,
        first: int | None,
        more: list[int],
        listen: bool,
    ) -> None:
        """Three sets, often a custom allocator (A, B or the faulty F) from the start, and
        a global subscriber half of the time."""
        self._create(None, SetType.NULL, None)
        self._create(0, SetType.MM, quota)
        self._create(None, SetType.NULL, second)
        if first is not None:
            self.register(first)
            for i in more:
                self.register(i)
        if not listen:
            self.toggle_subscriber()

    @rule(
        token_i=st.sampled_from([None, 0, 1, 2]),
        type_=st.sampled_from([SetType.NULL, SetType.MM]),
        quota=st.sampled_from([None, None, 0, 1, 2, 3, 5, 40, -1]),
    )
    def create_set(self, token_i: int | None, type_: SetType, quota: int | None) -> None:
        self._create(token_i, type_, quota)

    @rule(k=st.integers(0, 30), free_all=st.booleans())
    def release_set(self, k: int, free_all: bool) -> None:
        if free_all:
            self._free_all(k)
        else:
            self._free_set(k)

    def _free_set(self, k: int) -> None:
        real, m = self._pick_any_set(k)
        outcome: Outcome
        if m is None or not m.live:
            outcome = fail(InvalidArgumentError)
        elif not m.ids:
            mset = m

            def destroy() -> None:
                mset.destroyed = True
                self._emit(EventKind.SET_FREE, INVALID_IOASID, INVALID_IOASID, mset)

            outcome = Ok(True, destroy)
        else:
            mset = m

            def mark() -> None:
                mset.pending = True

            outcome = Ok(False, mark)
        self._do(f"free_set({real.id})", outcome, lambda: self.space.free_set(real))

    def _free_all(self, k: int) -> None:
        real, m = self._pick_any_set(k)
        outcome: Outcome
        if m is None or m.destroyed:
            outcome = fail(InvalidArgumentError)
        else:
            mset = m
            todo = sorted(i for i in mset.ids if not self.recs[i].freed)
            if self._free_fails() and any(self.recs[i].refs == 1 for i in todo):
                return  # ambiguous: a backend free failing half-way through free_all

            def free_them() -> None:
                for i in todo:
                    self._free_one(i)

            outcome = Ok(len(todo), free_them)
        start = len(self.expected)
        seen_start = len(self.seen)
        self._do(f"free_all({real.id})", outcome, lambda: self.space.free_all(real))
        self._unorder_tail(start, seen_start)

    def _unorder_tail(self, start: int, seen_start: int) -> None:
        """The contract fixes no order among the events of one multi-ID call: compare them as
        a multiset (with SET_FREE last), then keep the model's order for both lists."""
        got = sorted((self._convert(e) for e in self.seen[seen_start:]), key=_sort_key)
        want = sorted(self.expected[start:], key=_sort_key)
        assert got == want, f"events of one call differ:\n got  {got}\n want {want}"
        real_tail = self.seen[seen_start:]
        real_tail.sort(key=lambda e: _sort_key(self._convert(e)))
        self.seen[seen_start:] = real_tail
        self.expected[start:] = want

    # ---- allocation -----------------------------------------------------------------------

    def _alloc(self, k: int, lo: int, hi: int) -> None:
        real, m = self._pick_any_set(k)
        self.ndata += 1
        data = f"d{self.ndata}"
        outcome: Outcome
        if not 0 <= lo <= hi < CAPACITY or m is None or not m.live:
            outcome = fail(InvalidArgumentError)  # range first, then the set
        elif m.quota is not None and len(m.ids) >= m.quota:
            outcome = fail(QuotaExceededError)
        elif m.quota is None and self._quotaless_held() >= self._available():
            # The core's own capacity check, before any allocator is asked: with no quota
            # anywhere, this is simply "every ID of the space is held" (see test_full_space_*)
            outcome = fail(NoSpaceError)
        else:
            free_here = [n for n in range(lo, hi + 1) if n not in self.recs]
            group = self._active()
            new: int | None = None
            if group is None:
                outcome = fail(NoSpaceError) if not free_here else Ok(None, _noop)
                new = free_here[0] if free_here else None
            else:
                # A full range in a space that is not full is the backend's to report: a
                # correct backend answers INVALID_IOASID, which is an AllocatorError.
                b = group.backend
                v = backend_pick(self.mused[b.name], b.alloc_fault, lo, hi)
                if v is None or v == INVALID_IOASID or not lo <= v <= hi or v in self.recs:
                    outcome = fail(AllocatorError)
                else:
                    new = v
                    outcome = Ok(None, _noop)
            if new is not None:
                mset, n = m, new

                def commit() -> None:
                    self.recs[n] = MRec(mset, data)
                    mset.ids.add(n)
                    if group is not None:
                        self.mused[group.backend.name].add(n)
                    self._emit(EventKind.ALLOC, n, INVALID_IOASID, mset)

                outcome = Ok(n, commit)
        self._do(
            f"alloc({real.id}, {lo}, {hi})",
            outcome,
            lambda: self.space.alloc(real, lo, hi, private=data),
        )

    @rule(k=st.integers(0, 30))
    def alloc_anywhere(self, k: int) -> None:
        self._alloc(k, 0, CAPACITY - 1)

    @rule(
        k=st.integers(0, 30),
        lo=st.integers(-1, CAPACITY) | st.integers(0, 8),
        hi=st.integers(-1, CAPACITY) | st.integers(CAPACITY - 8, CAPACITY - 1),
    )
    def alloc_range(self, k: int, lo: int, hi: int) -> None:
        self._alloc(k, lo, hi)

    # ---- IDs ------------------------------------------------------------------------------

    MODES = st.sampled_from(["own", "own", "other", "none", "stale"])

    @rule(k=st.integers(0, 3 * CAPACITY - 1), mode=MODES, j=st.integers(0, 10))
    def free(self, k: int, mode: str, j: int) -> None:
        i = self._pick_id(k)
        real, m = self._pick_set_for(i, mode, j)
        rec = self.recs.get(i)
        outcome: Outcome
        checked = self._ownership(rec, real, m)
        if checked is not None or rec is None:
            outcome = checked or fail(NotFoundError)
        elif rec.freed:
            outcome = Ok(None, _noop, check=False)  # a second free is a no-op
        elif rec.refs == 1 and self._free_fails():
            outcome = fail(AllocatorError)
        else:
            outcome = Ok(None, lambda: self._free_one(i), check=False)
        self._do(f"free({_sid(real)}, {i})", outcome, lambda: self.space.free(real, i))

    @rule(k=st.integers(0, 3 * CAPACITY - 1), mode=MODES, j=st.integers(0, 10))
    def get_then_free(self, k: int, mode: str, j: int) -> None:
        """A user pins an ID, then its owner frees it: the way to FREE_PENDING."""
        self.get(k, mode, j)
        self.free(k, "own", j)

    @rule(k=st.integers(0, 3 * CAPACITY - 1), mode=MODES, j=st.integers(0, 10))
    def get(self, k: int, mode: str, j: int) -> None:
        i = self._pick_id(k)
        real, m = self._pick_set_for(i, mode, j)
        rec = self.recs.get(i)
        outcome: Outcome
        checked = self._ownership(rec, real, m)
        if rec is None:
            outcome = fail(UnknownIoasidError)  # the kernel's -EINVAL, before any set check
        elif checked is not None:
            outcome = checked
        elif rec.freed:
            outcome = fail(BusyError)
        else:
            r = rec

            def take() -> None:
                r.refs += 1

            outcome = Ok(None, take, check=False)
        self._do(f"get({_sid(real)}, {i})", outcome, lambda: self.space.get(real, i))

    @rule(k=st.integers(0, 3 * CAPACITY - 1), mode=MODES, j=st.integers(0, 10))
    def put(self, k: int, mode: str, j: int) -> None:
        i = self._pick_id(k)
        real, m = self._pick_set_for(i, mode, j)
        rec = self.recs.get(i)
        outcome: Outcome
        checked = self._ownership(rec, real, m)
        if checked is not None or rec is None:
            outcome = checked or fail(NotFoundError)
        elif rec.refs == 1 and self._free_fails():
            outcome = fail(AllocatorError)
        else:
            r = rec

            def drop() -> None:
                r.refs -= 1
                if r.refs == 0:
                    if not r.freed:  # put of the last reference of a never-freed ID
                        self._emit(EventKind.FREE, i, r.spid, r.owner)
                    self._reclaim(i)

            outcome = Ok(rec.refs == 1, drop)
        self._do(f"put({_sid(real)}, {i})", outcome, lambda: self.space.put(real, i))

    @rule(
        k=st.integers(0, 3 * CAPACITY - 1),
        mode=MODES,
        j=st.integers(0, 10),
        getter=st.sampled_from([None, True, False]),
    )
    def find(self, k: int, mode: str, j: int, getter: bool | None) -> None:
        i = self._pick_id(k)
        real, m = self._pick_set_for(i, mode, j)
        rec = self.recs.get(i)
        calls: list[object] = []

        def get_it(data: object) -> bool:
            calls.append(data)
            return bool(getter)

        outcome: Outcome
        checked = self._ownership(rec, real, m)
        if checked is not None or rec is None:
            outcome = checked or fail(NotFoundError)
        else:
            outcome = Ok(rec.data if getter in (None, True) else None, _noop)
        if getter is None:
            self._do(f"find({_sid(real)}, {i})", outcome, lambda: self.space.find(real, i))
        else:
            self._do(
                f"find({_sid(real)}, {i}, getter->{getter})",
                outcome,
                lambda: self.space.find(real, i, get_it),
            )
            if isinstance(outcome, Ok) and rec is not None:
                assert calls == [rec.data], f"getter called with {calls}, not [{rec.data!r}]"

    @rule(k=st.integers(0, 3 * CAPACITY - 1), which=st.sampled_from(["set", "attach", "detach"]))
    def data(self, k: int, which: str) -> None:
        i = self._pick_id(k)
        rec = self.recs.get(i)
        self.ndata += 1
        new: object = None if which == "detach" or self.ndata % 5 == 0 else f"x{self.ndata}"
        outcome: Outcome
        if rec is None:
            outcome = fail(NotFoundError)
        elif which == "attach" and rec.data is not None:
            outcome = fail(BusyError)
        else:
            r = rec

            def store() -> None:
                r.data = new

            outcome = Ok(None, store, check=False)
        if which == "set":
            self._do(f"set_data({i}, {new!r})", outcome, lambda: self.space.set_data(i, new))
        elif which == "attach":
            self._do(f"attach_data({i}, {new!r})", outcome, lambda: self.space.attach_data(i, new))
        else:
            self._do(f"detach_data({i})", outcome, lambda: self.space.detach_data(i))

    # ---- SPIDs ----------------------------------------------------------------------------

    @rule(k=st.integers(0, 3 * CAPACITY - 1), spid=st.sampled_from([*SPIDS, INVALID_IOASID]))
    def attach_spid(self, k: int, spid: int) -> None:
        i = self._pick_id(k)
        rec = self.recs.get(i)
        outcome: Outcome
        if spid == INVALID_IOASID:
            # ambiguous: with an unknown ID as well, either check may come first
            outcome = (
                fail(InvalidArgumentError) if rec else fail(InvalidArgumentError, NotFoundError)
            )
        elif rec is None:
            outcome = fail(NotFoundError)
        elif rec.spid != INVALID_IOASID or spid in rec.owner.spids:
            outcome = fail(InvalidArgumentError)
        else:
            r = rec

            def bind() -> None:
                r.spid = spid
                r.owner.spids[spid] = i
                self._emit(EventKind.BIND, i, spid, r.owner)

            # ambiguous: the contract does not say whether a free-pending ID takes an SPID
            tolerate = (BusyError, InvalidArgumentError) if rec.freed else ()
            outcome = Ok(None, bind, check=False, tolerate=tolerate)
        self._do(f"attach_spid({i}, {spid})", outcome, lambda: self.space.attach_spid(i, spid))

    @rule(k=st.integers(0, 3 * CAPACITY - 1))
    def detach_spid(self, k: int) -> None:
        i = self._pick_id(k)
        rec = self.recs.get(i)
        outcome: Outcome
        if rec is None or rec.spid == INVALID_IOASID:
            outcome = fail(NotFoundError)
        else:
            r = rec

            def unbind() -> None:
                self._emit(EventKind.UNBIND, i, r.spid, r.owner)
                del r.owner.spids[r.spid]
                r.spid = INVALID_IOASID

            outcome = Ok(None, unbind, check=False)
        self._do(f"detach_spid({i})", outcome, lambda: self.space.detach_spid(i))

    @rule(
        j=st.integers(0, 12),
        spid=st.sampled_from([*SPIDS, INVALID_IOASID]),
        get=st.booleans(),
    )
    def find_by_spid(self, j: int, spid: int, get: bool) -> None:
        existing = self._existing()
        destroyed = [m for m in self.msets if m.destroyed]
        outcome: Outcome
        if j == 12 or (j == 11 and destroyed):
            # ambiguous: a destroyed or another space's set has no SPIDs (NotFoundError), or
            # is refused as a set (InvalidArgumentError)
            stale = self.foreign if j == 12 else self.real_sets[destroyed[0].key]
            self._do(
                f"find_by_spid(stale set {stale.id}, {spid}, get={get})",
                fail(NotFoundError, InvalidArgumentError),
                lambda: self.space.find_by_spid(stale, spid, get=get),
            )
            return
        if not existing:
            return
        pairs = [(m, sp) for m in existing for sp in sorted(m.spids)]
        if j < 6 and pairs:  # mostly an SPID that is mapped in that set
            m, spid = pairs[j % len(pairs)]
        else:
            m = existing[j % len(existing)]
        real = self.real_sets[m.key]
        if spid == INVALID_IOASID:
            outcome = fail(NotFoundError, InvalidArgumentError)  # ambiguous
        elif spid not in m.spids:
            outcome = fail(NotFoundError)
        else:
            i = m.spids[spid]
            rec = self.recs[i]
            if get and rec.freed:
                outcome = fail(BusyError)
            else:

                def take() -> None:
                    if get:
                        rec.refs += 1

                outcome = Ok(i, take)
        self._do(
            f"find_by_spid({real.id}, {spid}, get={get})",
            outcome,
            lambda: self.space.find_by_spid(real, spid, get=get),
        )

    # ---- custom allocators ----------------------------------------------------------------

    def _group_of(self, ops: AllocatorOps[object]) -> MGroup | None:
        for g in self.groups:
            if any(member is ops for member in g.members):
                return g
        return None

    @rule(i=st.integers(0, 6))
    def register(self, i: int) -> None:
        ops = self.ops[i]
        backend = self.ops_backend[i]
        outcome: Outcome
        if self._group_of(ops) is not None:
            outcome = fail(AlreadyRegisteredError)
        elif not self.groups and self.recs:
            outcome = fail(AllocatorBusyError)
        else:

            def join() -> None:
                for g in self.groups:
                    if g.backend is backend:
                        g.members.append(ops)
                        return
                self.groups.append(MGroup(backend, [ops]))

            outcome = Ok(None, join, check=False)
        self._do(
            f"register_allocator({ops.pdata})", outcome, lambda: self.space.register_allocator(ops)
        )

    @rule(i=st.integers(0, 13), force=st.booleans())
    def unregister(self, i: int, force: bool) -> None:
        registered = [ops for g in self.groups for ops in g.members]
        ops = registered[i % len(registered)] if i < 7 and registered else self.ops[i % 7]
        group = self._group_of(ops)
        what = f"unregister_allocator({ops.pdata}, force={force})"

        def call() -> None:
            self.space.unregister_allocator(ops, force=force)

        if group is None:
            self._do(what, fail(NotFoundError), call)
            return
        g = group
        if len(g.members) > 1 or g is not self.groups[0] or not self.recs:

            def leave() -> None:
                g.members.remove(ops)
                if not g.members:
                    self.groups.remove(g)

            self._do(what, Ok(None, leave, check=False), call)
            return
        if not force:
            self._do(what, fail(BusyError), call)
            return
        # forced removal of the active group while it holds IDs: every ID is reclaimed
        expect_group = g.backend.free_fault
        start, seen_start = len(self.expected), len(self.seen)
        backend, pdata = self._head_pdata()
        for b in self.backends:
            b.calls.clear()
        raised: BaseException | None = None
        try:
            call()
        except Exception as exc:
            raised = exc
        self._check_backend_calls(what, backend, pdata)
        if expect_group:
            assert isinstance(raised, ExceptionGroup), (
                f"{what}: backend free fails, expected an ExceptionGroup, got {raised!r}"
            )
        elif raised is not None:
            raise AssertionError(f"{what}: expected success, got {raised!r}") from raised
        for n in sorted(self.recs):
            rec = self.recs[n]
            if not rec.freed:
                self._emit(EventKind.FREE, n, rec.spid, rec.owner)
            self._reclaim(n)
        g.members.remove(ops)
        self.groups.remove(g)
        self._unorder_tail(start, seen_start)

    @rule()
    def toggle_subscriber(self) -> None:
        """Unsubscribe (events go unrecorded, the space may take its fast paths) or subscribe."""
        if self.sub is None:
            self.sub = self.space.subscribe(self.seen.append)
        else:
            self.space.unsubscribe(self.sub)
            self.sub = None

    @rule(
        mode=st.sampled_from([None, None, "invalid", "dup", "range", "raise"]),
        free_fails=st.booleans(),
    )
    def faults(self, mode: str | None, free_fails: bool) -> None:
        """Switch the faulty backend's behaviour (the others are always correct)."""
        self.faulty.alloc_fault = mode
        self.faulty.free_fault = free_fails

    # ---- the comparison -------------------------------------------------------------------

    def _convert(self, ev: Event) -> EvKey:
        key = -1 if ev.set is None else self.key_by_obj.get(id(ev.set), -2)
        return (ev.kind, ev.ioasid, ev.spid, key)

    @invariant()
    def agrees(self) -> None:
        space = self.space
        assert space.capacity == CAPACITY
        assert space.available == self._available(), (
            f"available {space.available}, model {self._available()}"
        )
        for m in self.msets:
            real = self.real_sets[m.key]
            assert real.id == m.key
            if m.destroyed:
                continue
            assert real.count == len(m.ids), f"set {m.key}: count {real.count}, model {len(m.ids)}"
            assert list(real.ioasids()) == sorted(m.ids), (
                f"set {m.key}: ioasids {list(real.ioasids())}, model {sorted(m.ids)}"
            )
            assert real.quota == m.quota
            for spid in SPIDS:
                want = m.spids.get(spid)
                got = _attempt(partial(space.find_by_spid, real, spid))
                assert got == (want if want is not None else NotFoundError), (
                    f"find_by_spid(set {m.key}, {spid}) = {got!r}, model {want}"
                )
        for t in self.tokens:
            owners = [m for m in self._existing() if m.token is t]
            found = space.find_mm_set(t)
            if owners:
                assert found is self.real_sets[owners[0].key], f"find_mm_set({t}) = {found!r}"
            else:
                assert found is None, f"find_mm_set({t}) = {found!r}, model: none"
        assert list(space.records_view()) == sorted(
            i for i in range(CAPACITY) if self.recs.get(i) is not None
        )
        assert len(space._records) == space._ids.mapped  # the records grow with the map
        for i in range(CAPACITY):
            rec = self.recs.get(i)
            if rec is None:
                assert _attempt(partial(space.state, i)) is NotFoundError, f"state({i})"
                assert _attempt(partial(space.find, None, i)) is NotFoundError, f"find(None, {i})"
                assert _attempt(partial(space.find_set, i)) is NotFoundError, f"find_set({i})"
                continue
            state = self._expected_state(rec)
            assert space.state(i) is state, f"state({i}) = {space.state(i)}, model {state}"
            assert space.find(None, i) == rec.data, f"find(None, {i}), model {rec.data!r}"
            owner = space.find_set(i)
            assert owner is self.real_sets[rec.owner.key], (
                f"find_set({i}) = set {owner.id}, model {rec.owner.key}"
            )
        group = self._active()
        want_ops = None if group is None else group.members[0]
        assert space.active_allocator is want_ops, (
            f"active_allocator {space.active_allocator!r}, model {want_ops!r}"
        )
        for b in self.backends:
            assert not b.violations, f"backend {b.name}: {b.violations}"
            assert b.used == self.mused[b.name], (
                f"backend {b.name} holds {sorted(b.used)}, model {sorted(self.mused[b.name])}"
            )
        got = [self._convert(e) for e in self.seen]
        if got != self.expected:
            n = next(
                (k for k, (a, b) in enumerate(zip(got, self.expected, strict=False)) if a != b),
                min(len(got), len(self.expected)),
            )
            raise AssertionError(
                f"events differ from #{n}:\n got  {got[n:]}\n want {self.expected[n:]}"
            )


def _sid(real: IoasidSet | None) -> str:
    return "None" if real is None else f"set{real.id}"


def _attempt(call: Callable[[], object]) -> object:
    """The call's result, or the class of the IoasidError it raised."""
    try:
        return call()
    except IoasidError as exc:
        return type(exc)


IoasidModelMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIoasidModel = IoasidModelMachine.TestCase


# Sequences hypothesis found once, replayed on every run (a stateful machine takes no
# ``@example``: these drive it step by step, as hypothesis prints a failing case).


@pytest.mark.parametrize("fault", [None, "invalid", "dup", "range", "raise"])
@pytest.mark.parametrize(("second", "listen"), [(None, True), (0, False)])
def test_full_space_with_a_custom_allocator_is_no_space(
    fault: str | None, second: int | None, listen: bool
) -> None:
    """A custom allocator fills the whole 32-ID space of quota-less sets (``second=0``: a
    quota-0 set exists, which reserves nothing). The next alloc is the core's own
    ``NoSpaceError``, decided before the backend is asked, whatever the backend would have
    answered. Found by hypothesis: the core used to ask the backend and raise its
    ``AllocatorError`` whenever no set had a quota."""
    state = IoasidModelMachine()
    first = 0 if fault is None else 5  # A0, or F0 (the faulty backend)
    state.setup(quota=None, second=second, first=first, more=[], listen=listen)
    for _ in range(CAPACITY):
        state.alloc_anywhere(k=0)
        state.agrees()
    assert len(state.space) == CAPACITY
    state.faults(mode=fault, free_fails=False)
    backend = state.backends[0 if fault is None else 2]
    backend.calls.clear()
    with pytest.raises(NoSpaceError) as info:
        state.space.alloc(state.real_sets[0], 0, CAPACITY - 1)
    assert type(info.value) is NoSpaceError
    assert backend.calls == []  # the backend was not asked
    state.alloc_anywhere(k=1)  # the model agrees
    state.agrees()
    state.teardown()


def test_full_range_in_a_space_with_room_is_the_backends_allocator_error() -> None:
    """The other half of the contract: a full range while the space has room is the backend's
    to report; its INVALID_IOASID is an ``AllocatorError`` (EIO), not a ``NoSpaceError``."""
    state = IoasidModelMachine()
    state.setup(quota=None, second=None, first=0, more=[], listen=True)
    for _ in range(4):
        state.alloc_range(k=0, lo=0, hi=3)
    with pytest.raises(AllocatorError) as info:
        state.space.alloc(state.real_sets[0], 0, 3)
    assert not isinstance(info.value, NoSpaceError)
    state.alloc_range(k=0, lo=0, hi=3)  # the model agrees
    state.agrees()
    state.teardown()


# ---------------------------------------------------------------------------------------------
# The default allocator across block boundaries
# ---------------------------------------------------------------------------------------------

BIG = 700  # several of the default allocator's blocks, the last one partial
EDGES = (0, 1, 63, 64, 127, 255, 256, 257, 511, 512, 513, 640, BIG - 2, BIG - 1)


class BigSpaceMachine(RuleBasedStateMachine):
    """Only the default allocator, in a space big enough to span several blocks of its map:
    every ``alloc`` must return the lowest free ID at or above ``min`` (a linear scan of a
    plain set), with and without a subscriber (the space's fast paths run only without)."""

    def __init__(self) -> None:
        super().__init__()
        self.space = IoasidSpace(capacity=BIG)
        self.set = self.space.create_set()
        self.used: set[int] = set()
        self.seen: list[Event] = []
        self.sub: Subscription | None = None
        self.allocs = 0

    def _lowest(self, lo: int, hi: int) -> int | None:
        return next((n for n in range(lo, hi + 1) if n not in self.used), None)

    def _alloc(self, lo: int, hi: int) -> bool:
        want = self._lowest(lo, hi)
        if want is None:
            try:
                got = self.space.alloc(self.set, lo, hi)
            except NoSpaceError:
                return False
            raise AssertionError(f"alloc({lo}, {hi}) = {got}: every ID in range is used")
        got = self.space.alloc(self.set, lo, hi)
        assert got == want, f"alloc({lo}, {hi}) = {got}, lowest free is {want}"
        self.used.add(got)
        self.allocs += 1
        return True

    @rule(lo=st.sampled_from(EDGES) | st.integers(0, BIG - 1), width=st.integers(0, BIG))
    def alloc(self, lo: int, width: int) -> None:
        self._alloc(lo, min(lo + width, BIG - 1))

    @rule(lo=st.sampled_from(EDGES), n=st.integers(1, 300))
    def fill(self, lo: int, n: int) -> None:
        """Many allocations from one minimum: runs through whole blocks."""
        for _ in range(n):
            if not self._alloc(lo, BIG - 1):
                break

    @rule(k=st.integers(0, 1000), n=st.integers(1, 40), stride=st.sampled_from([1, 1, 3, 64]))
    def free_some(self, k: int, n: int, stride: int) -> None:
        """Free a run of live IDs (consecutive in the sorted order, or spread out)."""
        live = sorted(self.used)
        if not live:
            return
        start = k % len(live)
        for i in live[start : start + n * stride : stride]:
            self.space.free(self.set, i)
            self.used.discard(i)

    @rule(lo=st.sampled_from(EDGES), hi=st.sampled_from(EDGES))
    def free_range(self, lo: int, hi: int) -> None:
        for i in sorted(n for n in self.used if lo <= n <= hi):
            self.space.free(self.set, i)
            self.used.discard(i)

    @rule()
    def toggle_subscriber(self) -> None:
        if self.sub is None:
            self.sub = self.space.subscribe(self.seen.append)
        else:
            self.space.unsubscribe(self.sub)
            self.sub = None

    @invariant()
    def agrees(self) -> None:
        assert self.set.count == len(self.used)
        assert self.space.available == BIG
        assert len(self.space._records) == self.space._ids.mapped

    def teardown(self) -> None:
        assert self.set.ioasids() == sorted(self.used)
        for i in range(BIG):
            got = _attempt(partial(self.space.state, i))
            assert (got is not NotFoundError) == (i in self.used), f"ID {i}: {got}"


BigSpaceMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBigSpace = BigSpaceMachine.TestCase
