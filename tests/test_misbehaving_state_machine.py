"""A state machine that drives a space through misbehaving callbacks (issue 19).

A custom allocator that raises, calls back into the space, returns an ID already in use, one
outside the range, ``INVALID_IOASID`` or a float; a backend free that raises or calls back;
subscribers and ``find`` getters that raise or call back. After every step: nothing leaked
(the default allocator's map, or the backend's books, hold exactly the live IDs, plus what a
forced unregister reported it could not free), no ID is held twice, counts and quotas add
up, every ID had one ALLOC and at most one FREE; and every call that failed with an
``IoasidError`` left the observable state exactly as it was.

It runs twice: observed (a global subscriber records every event, so the full methods run)
and quiet (only per-set subscribers, so the hot paths run until one is added, and a set's
destruction can make the space quiet while its SET_FREE is being delivered). Each run is
under a watchdog: a deadlock fails the test instead of hanging the suite.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ioasid_core import (
    INVALID_IOASID,
    AllocatorError,
    AllocatorOps,
    Event,
    EventKind,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    NotFoundError,
    ReentrancyError,
)

CAPACITY = 24
ALLOC_MODES = ("ok", "raise", "reenter", "duplicate", "out_of_range", "invalid", "float")
FREE_MODES = ("ok", "raise", "reenter")
CALLBACK_MODES = ("ok", "raise", "reenter")


class Backend:
    """A custom allocator's backend whose behaviour the machine switches. It keeps honest
    books of what it handed out: a misbehaving answer hands out nothing."""

    def __init__(self, space: IoasidSpace) -> None:
        self.space = space
        self.held: set[int] = set()
        self.alloc_mode = "ok"
        self.free_mode = "ok"

    def alloc(self, lo: int, hi: int, pdata: object) -> Any:
        mode = self.alloc_mode
        if mode == "raise":
            raise OSError("backend alloc failed")
        if mode == "reenter":
            return self.space.alloc(self.space.sets()[0], lo, hi)  # ReentrancyError
        if mode == "duplicate" and self.held:
            return min(self.held)
        if mode == "out_of_range":
            return hi + 1
        if mode == "invalid":
            return INVALID_IOASID
        free = next((n for n in range(lo, hi + 1) if n not in self.held), None)
        if free is None:
            return INVALID_IOASID
        if mode == "float":
            return float(free)
        self.held.add(free)
        return free

    def free(self, ioasid: int, pdata: object) -> None:
        if self.free_mode == "raise":
            raise OSError(f"backend free of {ioasid} failed")
        if self.free_mode == "reenter":
            self.space.state(ioasid)  # ReentrancyError
        self.held.remove(ioasid)


def snapshot(space: IoasidSpace, backend: Backend) -> dict[str, object]:
    """Everything observable, through the public API (and the backend's books)."""
    snap: dict[str, object] = {
        "available": space.available,
        "active": space.active_allocator,
        "live": len(space),
        "backend": sorted(backend.held),
        "default map": space._ids.used,
    }
    for s in space.sets():
        snap[f"set {s.id}"] = (s.count, s.ioasids(), s.free_pending, s.destroyed)
        for i in s.ioasids():
            snap[f"id {i}"] = (space.state(i), space.refs(i), space.find(None, i), s.id)
    return snap


class MisbehavingCallbacks(RuleBasedStateMachine):
    OBSERVE = True

    def __init__(self) -> None:
        super().__init__()
        self.space = IoasidSpace(CAPACITY)
        self.backend = Backend(self.space)
        self.ops = AllocatorOps(self.backend.alloc, self.backend.free)
        self.sub_mode = "ok"
        self.events: list[Event] = []
        self.leaked: set[int] = set()  # reported by a forced unregister: gone, not freed
        if self.OBSERVE:
            self.space.subscribe(self.subscriber)
        self.sets: list[IoasidSet] = [self.space.create_set(quota=None)]

    # -- the misbehaving callbacks

    def subscriber(self, event: Event) -> None:
        self.events.append(event)
        if self.sub_mode == "raise":
            raise KeyError(f"subscriber refuses {event.kind.name}")
        if self.sub_mode == "reenter":
            self.space.alloc(self.sets[0], 0, CAPACITY - 1)  # ReentrancyError

    def set_subscriber(self, event: Event) -> None:
        if self.sub_mode == "raise":
            raise KeyError(f"set subscriber refuses {event.kind.name}")
        if self.sub_mode == "reenter":
            self.space.alloc(self.sets[0], 0, CAPACITY - 1)  # ReentrancyError, never a hang

    def getter(self, mode: str) -> Any:
        def get(data: object) -> bool:
            if mode == "raise":
                raise KeyError("getter refuses")
            if mode == "reenter":
                self.space.free(None, 0)  # ReentrancyError
            return True

        return get

    # -- calling the space

    def call(self, fn: Any, *args: Any, partial_ok: bool = False) -> object:
        """Call ``fn``; an ``IoasidError`` must leave everything as it was (unless the call
        documents a partial result: ``free_all``'s ``AllocatorError``); an ``ExceptionGroup``
        means the operation is done and callbacks failed; anything else fails the test."""
        before = snapshot(self.space, self.backend)
        events_before = len(self.events)
        try:
            return fn(*args)
        except ExceptionGroup as group:
            for exc in group.exceptions:
                self.note_failures(exc)
            return None
        except IoasidError as exc:
            if partial_ok and isinstance(exc, AllocatorError):
                return None
            assert snapshot(self.space, self.backend) == before, f"{fn.__name__} failed: {exc}"
            assert len(self.events) == events_before, "a failed call emitted events"
            return None
        except (KeyError, OSError):  # a getter's own error: find passes it on
            assert snapshot(self.space, self.backend) == before
            return None

    def note_failures(self, exc: BaseException) -> None:
        """A forced unregister's backend failures: those IDs stay held at the backend."""
        if isinstance(exc, ExceptionGroup):
            for inner in exc.exceptions:
                self.note_failures(inner)
            return
        if not isinstance(exc, OSError | ReentrancyError | KeyError | AllocatorError):
            raise exc
        for note in getattr(exc, "__notes__", ()):
            if note.startswith("raised by the backend's free of IOASID "):
                self.leaked.add(int(note.split("IOASID ")[1].split()[0], 16))

    def live_ids(self) -> list[int]:
        return sorted(i for s in self.space.sets() for i in s.ioasids())

    # -- rules

    @rule(
        alloc_mode=st.sampled_from(ALLOC_MODES),
        free_mode=st.sampled_from(FREE_MODES),
        sub_mode=st.sampled_from(CALLBACK_MODES),
    )
    def misbehave(self, alloc_mode: str, free_mode: str, sub_mode: str) -> None:
        self.backend.alloc_mode = alloc_mode
        self.backend.free_mode = free_mode
        self.sub_mode = sub_mode

    @rule(quota=st.none() | st.integers(0, 6))
    def create_set(self, quota: int | None) -> None:
        made = self.call(lambda: self.space.create_set(quota=quota))
        if isinstance(made, IoasidSet):
            self.sets.append(made)

    @rule(pick=st.integers(0, 10), lo=st.integers(0, CAPACITY), span=st.integers(0, 8))
    def alloc(self, pick: int, lo: int, span: int) -> None:
        owner = self.sets[pick % len(self.sets)]
        got = self.call(self.space.alloc, owner, lo, min(lo + span, CAPACITY))
        assert got is None or type(got) is int

    @rule(pick=st.integers(0, 30), by_owner=st.booleans())
    def free(self, pick: int, by_owner: bool) -> None:
        ids = self.live_ids()
        if ids:
            i = ids[pick % len(ids)]
            owner = self.space.find_set(i) if by_owner else None
            self.call(self.space.free, owner, i)

    @rule(pick=st.integers(0, 30))
    def get_then_maybe_put(self, pick: int) -> None:
        ids = self.live_ids()
        if ids:
            i = ids[pick % len(ids)]
            self.call(self.space.get, None, i)
            self.call(self.space.put, None, i)

    @rule(pick=st.integers(0, 30))
    def put(self, pick: int) -> None:
        ids = self.live_ids()
        if ids:
            self.call(self.space.put, None, ids[pick % len(ids)])

    @rule(pick=st.integers(0, 30), mode=st.sampled_from(CALLBACK_MODES))
    def find_with_getter(self, pick: int, mode: str) -> None:
        ids = self.live_ids()
        if ids:
            self.call(self.space.find, None, ids[pick % len(ids)], self.getter(mode))

    @rule(pick=st.integers(0, 10))
    def subscribe_to_a_set(self, pick: int) -> None:
        s = self.sets[pick % len(self.sets)]
        self.call(lambda: self.space.subscribe(self.set_subscriber, set=s))

    @rule(quota=st.none() | st.integers(0, 2))
    def a_watched_set_comes_and_goes(self, quota: int | None) -> None:
        """A set with its own subscriber, destroyed at once: its subscriptions end with it,
        which may make the space quiet while SET_FREE is still being delivered."""
        made = self.call(lambda: self.space.create_set(quota=quota))
        if isinstance(made, IoasidSet):
            self.call(lambda: self.space.subscribe(self.set_subscriber, set=made))
            self.call(self.space.free_set, made)

    @rule(pick=st.integers(0, 10))
    def free_all(self, pick: int) -> None:
        s = self.sets[pick % len(self.sets)]
        self.call(self.space.free_all, s, partial_ok=True)

    @rule(pick=st.integers(0, 10))
    def free_set(self, pick: int) -> None:
        s = self.sets[pick % len(self.sets)]
        if s is not self.sets[0]:
            self.call(self.space.free_set, s)

    @rule(pick=st.integers(0, 30), spid=st.integers(0, 5))
    def attach_then_detach_spid(self, pick: int, spid: int) -> None:
        ids = self.live_ids()
        if ids:
            i = ids[pick % len(ids)]
            self.call(self.space.attach_spid_in, self.space.find_set(i), i, spid)
            self.call(self.space.detach_spid_in, self.space.find_set(i), i)

    @precondition(lambda self: self.space.active_allocator is None)
    @rule()
    def register(self) -> None:
        self.call(self.space.register_allocator, self.ops)

    @precondition(lambda self: self.space.active_allocator is not None)
    @rule(force=st.booleans())
    def unregister(self, force: bool) -> None:
        self.call(lambda: self.space.unregister_allocator(self.ops, force=force))

    # -- invariants

    @invariant()
    def nothing_leaked_and_nothing_held_twice(self) -> None:
        live = self.live_ids()
        assert len(live) == len(set(live)) == len(self.space)
        if self.space.active_allocator is None:
            assert self.space._ids.used == len(live)
            assert all(i in self.space._ids for i in live)
        else:
            assert self.backend.held == set(live) | self.leaked
            assert self.space._ids.used == 0
        assert all(type(i) is int for i in live)

    @invariant()
    def counts_and_quotas_add_up(self) -> None:
        sets = self.space.sets()
        reserved = sum(s.quota or 0 for s in sets)
        assert self.space.available == CAPACITY - reserved
        for s in sets:
            assert s.count == len(s.ioasids())
            assert s.quota is None or s.count <= s.quota
        for s in self.sets:
            if s.destroyed:
                assert s.count == 0

    @invariant()
    def alloc_once_free_at_most_once(self) -> None:
        if not self.OBSERVE:
            return
        allocs = Counter(e.ioasid for e in self.events if e.kind is EventKind.ALLOC)
        frees = Counter(e.ioasid for e in self.events if e.kind is EventKind.FREE)
        live = set(self.live_ids())
        for i in set(allocs) | set(frees):
            pending = i in live and self.state_is_pending(i)
            # Each life of an ID: one ALLOC, then one FREE (when freed, reclaimed or pending).
            expected_frees = allocs[i] - (1 if i in live and not pending else 0)
            assert frees[i] == expected_frees, (i, allocs[i], frees[i], i in live)

    def state_is_pending(self, ioasid: int) -> bool:
        try:
            return self.space.state(ioasid).name == "FREE_PENDING"
        except NotFoundError:
            return False


class QuietMisbehavingCallbacks(MisbehavingCallbacks):
    OBSERVE = False


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
WATCHDOG_S = 600.0


def _run_with_watchdog(machine: type[RuleBasedStateMachine]) -> None:
    failure: list[BaseException] = []

    def run() -> None:
        try:
            run_state_machine_as_test(machine, settings=SETTINGS)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(WATCHDOG_S)
    assert not worker.is_alive(), f"{machine.__name__} hung for {WATCHDOG_S}s (a deadlock)"
    if failure:
        raise failure[0]


def test_misbehaving_callbacks_observed() -> None:
    _run_with_watchdog(MisbehavingCallbacks)


def test_misbehaving_callbacks_quiet() -> None:
    _run_with_watchdog(QuietMisbehavingCallbacks)
