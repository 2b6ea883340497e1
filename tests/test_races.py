"""Races and re-entry on the hot paths, forced deterministically (issue 19).

Each interleaving is made to happen, not hoped for: another thread holds the space's lock
while the call under test arrives, and a patched ``TokenMutex.wait`` (the only place a thread
waits for the lock) lets that thread finish its own call (``register_allocator``,
``subscribe``) before the waiter gets the lock. Every call runs under a watchdog, so a
deadlock fails the test instead of hanging the suite.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import SupportsIndex, TypeVar

import pytest

from ioasid_core import (
    AllocatorOps,
    Event,
    EventKind,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    ReentrancyError,
)
from ioasid_core.mutex import TokenMutex

T = TypeVar("T")
WATCHDOG_S = 10.0


def within_watchdog(fn: Callable[[], T], seconds: float = WATCHDOG_S) -> T:
    """Run ``fn`` on a daemon thread; fail (instead of hanging) when it does not return."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{fn!r} hung for {seconds}s (a deadlock)"
    if failure:
        raise failure[0]
    return result[0]


@contextmanager
def other_thread_finishes_first(
    space: IoasidSpace, monkeypatch: pytest.MonkeyPatch, their_call: Callable[[], object]
) -> Iterator[None]:
    """Another thread holds the lock; the first thread that then waits for it lets that
    thread release it and complete ``their_call`` before the waiter takes the lock.

    This is the window between a hot path's entry and its lock: whatever the hot path read
    before the lock is stale by the time it gets it.
    """
    held = threading.Event()
    go = threading.Event()
    done = threading.Event()
    failures: list[BaseException] = []

    def holder() -> None:
        try:
            space._lock.acquire()
            held.set()
            go.wait(WATCHDOG_S)
            space._lock.release()
            their_call()
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    real_wait = TokenMutex.wait
    fired: list[bool] = []

    def wait(mutex: TokenMutex) -> None:
        if not fired:
            fired.append(True)
            go.set()
            assert done.wait(WATCHDOG_S), "the other thread never finished its call"
        real_wait(mutex)

    monkeypatch.setattr(TokenMutex, "wait", wait)
    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert held.wait(WATCHDOG_S)
    yield
    thread.join(WATCHDOG_S)
    assert fired, "the call under test never waited for the lock: no interleaving forced"
    if failures:
        raise failures[0]


class Backend:
    """A custom allocator's backend that keeps its own books."""

    def __init__(self, first: int = 100) -> None:
        self.held: set[int] = set()
        self.first = first  # its numbers start here: not the default allocator's first ones

    def alloc(self, lo: int, hi: int, pdata: object) -> int:
        n = max(self.first, lo)
        while n in self.held:
            n += 1
        self.held.add(n)
        return n

    def free(self, n: int, pdata: object) -> None:
        self.held.remove(n)


def test_alloc_sees_an_allocator_registered_while_it_waited_for_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space = IoasidSpace(1024)
    owner = space.create_set()
    backend = Backend()
    ops = AllocatorOps(backend.alloc, backend.free)
    with other_thread_finishes_first(space, monkeypatch, lambda: space.register_allocator(ops)):
        ioasid = within_watchdog(lambda: space.alloc(owner, 0, 1023))
    assert space.active_allocator is ops
    assert ioasid in backend.held, "the ID came from the default allocator's map"
    assert space._ids.used == 0, "the default allocator's map keeps a number it never lent"
    space.free(owner, ioasid)
    assert backend.held == set()


def test_free_sees_a_subscriber_that_subscribed_while_it_waited_for_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space = IoasidSpace(1024)
    owner = space.create_set()
    ioasid = space.alloc(owner, 0, 1023)
    seen: list[Event] = []
    with other_thread_finishes_first(space, monkeypatch, lambda: space.subscribe(seen.append)):
        within_watchdog(lambda: space.free(owner, ioasid))
    assert [(e.kind, e.ioasid) for e in seen] == [(EventKind.FREE, ioasid)]


@contextmanager
def other_thread_finishes_before_the_lock_is_taken(
    monkeypatch: pytest.MonkeyPatch, their_call: Callable[[IoasidSpace], object]
) -> Iterator[list[IoasidSpace]]:
    """The uncontended window: the call under test is inside the space, the lock is free,
    and another thread runs ``their_call`` to completion before the first ``take`` of the
    lock (the hot paths' only way in) succeeds. A value read before ``take`` is stale then.

    ``take`` is bound into the hot paths when a space is made, so it is wrapped at
    construction; the caller arms it by appending the space to the yielded list.
    """
    armed: list[IoasidSpace] = []
    failures: list[BaseException] = []
    real_init = TokenMutex.__init__

    def init(mutex: TokenMutex) -> None:
        real_init(mutex)
        pop = mutex.take

        def take(index: SupportsIndex = -1) -> bool:
            if armed and threading.current_thread() is threading.main_thread():
                space = armed.pop()

                def run() -> None:
                    try:
                        their_call(space)
                    except BaseException as exc:
                        failures.append(exc)

                other = threading.Thread(target=run, daemon=True)
                other.start()
                other.join(WATCHDOG_S)
                assert not other.is_alive(), "the other thread hung"
            return pop(index)

        mutex.take = take

    monkeypatch.setattr(TokenMutex, "__init__", init)
    yield armed
    assert not armed, "the call under test never took the lock: no interleaving forced"
    if failures:
        raise failures[0]


def test_alloc_reads_the_allocator_state_only_once_it_holds_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = Backend()
    ops = AllocatorOps(backend.alloc, backend.free)
    with other_thread_finishes_before_the_lock_is_taken(
        monkeypatch, lambda space: space.register_allocator(ops)
    ) as armed:
        space = IoasidSpace(1024)
        owner = space.create_set()
        armed.append(space)
        ioasid = space.alloc(owner, 0, 1023)
    assert space.active_allocator is ops
    assert ioasid in backend.held, "the ID came from the default allocator's map"
    assert space._ids.used == 0


def test_free_reads_the_subscriber_state_only_once_it_holds_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Event] = []
    with other_thread_finishes_before_the_lock_is_taken(
        monkeypatch, lambda space: space.subscribe(seen.append)
    ) as armed:
        space = IoasidSpace(1024)
        owner = space.create_set()
        ioasid = space.alloc(owner, 0, 1023)
        armed.append(space)
        space.free(owner, ioasid)
    assert [(e.kind, e.ioasid) for e in seen] == [(EventKind.FREE, ioasid)]


def test_a_set_free_subscriber_calling_back_is_refused_not_deadlocked() -> None:
    space = IoasidSpace(1024)
    doomed = space.create_set()
    other = space.create_set()
    refused: list[BaseException] = []

    def on_event(event: Event) -> None:
        if event.kind is EventKind.SET_FREE:
            for call in (lambda: space.alloc(other, 0, 10), lambda: space.free(other, 0)):
                try:
                    call()
                except ReentrancyError as exc:
                    refused.append(exc)

    space.subscribe(on_event, set=doomed)
    assert within_watchdog(lambda: space.free_set(doomed)) is True
    assert len(refused) == 2
    assert len(space) == 0  # the refused alloc took nothing


def test_a_subscriber_of_a_set_destroyed_by_its_last_free_is_refused_not_deadlocked() -> None:
    space = IoasidSpace(1024)
    doomed = space.create_set()
    other = space.create_set()
    mine = space.alloc(doomed, 0, 10)
    theirs = space.alloc(other, 0, 10)
    seen: list[EventKind] = []
    refused: list[BaseException] = []

    def on_event(event: Event) -> None:
        seen.append(event.kind)
        if event.kind is EventKind.SET_FREE:
            try:
                space.free(other, theirs)
            except ReentrancyError as exc:
                refused.append(exc)

    assert space.free_set(doomed) is False  # free-pending: it still holds an ID
    space.subscribe(on_event, set=doomed)
    within_watchdog(lambda: space.free(doomed, mine))
    assert seen == [EventKind.FREE, EventKind.SET_FREE]
    assert len(refused) == 1
    assert theirs in space and doomed.destroyed


def test_a_getter_calling_alloc_is_refused_not_deadlocked() -> None:
    space = IoasidSpace(1024)
    owner = space.create_set()
    ioasid = space.alloc(owner, 0, 10)
    refused: list[BaseException] = []

    def getter(data: object) -> bool:
        try:
            space.alloc(owner, 0, 10)
        except ReentrancyError as exc:
            refused.append(exc)
        return True

    within_watchdog(lambda: space.find(owner, ioasid, getter))
    assert len(refused) == 1 and len(space) == 1


def test_hot_paths_and_allocator_swaps_hammered_from_threads_lose_nothing() -> None:
    """Four threads allocate and free on the hot paths while a fifth keeps swapping a
    custom allocator in and out and subscribing: every ID goes back where it came from.
    Not a proof of the interleavings (the tests above force those), a net for others; the
    joins are the watchdog."""
    space = IoasidSpace(4096)
    sets = [space.create_set() for _ in range(4)]
    backend = Backend(first=0)
    books = threading.Lock()  # the backend's own

    def alloc(lo: int, hi: int, pdata: object) -> int:
        with books:
            return backend.alloc(lo, hi, pdata)

    def free(n: int, pdata: object) -> None:
        with books:
            backend.free(n, pdata)

    ops = AllocatorOps(alloc, free)
    stop = threading.Event()
    failures: list[BaseException] = []

    def worker(owner: IoasidSet) -> None:
        try:
            for _ in range(20_000):
                held = [space.alloc(owner, 0, 4095) for _ in range(3)]
                for ioasid in held:
                    space.free(owner, ioasid)
        except BaseException as exc:
            failures.append(exc)

    def swapper() -> None:
        seen: list[Event] = []
        try:
            while not stop.is_set():
                with suppress(IoasidError):  # the default allocator holds IDs right now
                    space.register_allocator(ops)
                space.unsubscribe(space.subscribe(seen.append))
                with suppress(IoasidError):  # not registered, or its IDs are in use
                    space.unregister_allocator(ops)
        except BaseException as exc:
            failures.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in sets]
        swap = threading.Thread(target=swapper, daemon=True)
        for t in [*threads, swap]:
            t.start()
        for t in threads:
            t.join(WATCHDOG_S * 6)
        stop.set()
        swap.join(WATCHDOG_S)
    finally:
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in [*threads, swap]), "a thread hung (a deadlock)"
    if failures:
        raise failures[0]
    assert len(space) == 0
    assert space._ids.used == 0, "the default map keeps numbers nobody holds"
    assert backend.held == set(), "the backend keeps numbers nobody holds"
