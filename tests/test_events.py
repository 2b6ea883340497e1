"""Events: kinds and payloads, who receives them, priority order, errors, re-entry, ``defer``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import attrs
import pytest

from ioasid_core import (
    INVALID_IOASID,
    AllocatorOps,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidSet,
    IoasidSpace,
    IoasidState,
    NotFoundError,
    Priority,
    ReentrancyError,
    SetType,
    Subscription,
)
from ioasid_core.mutex import TokenMutex


def _fields(e: Event) -> tuple[object, ...]:
    return (e.kind, e.ioasid, e.spid, e.set, e.private)


def _in_thread(fn: Callable[[], object], timeout: float = 5.0) -> None:
    """Run ``fn`` in a daemon thread, failing (instead of hanging) if it deadlocks."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "deadlock: the call did not return"
    if errors:
        raise errors[0]


# --- kinds and payloads ----------------------------------------------------------------------


def test_event_is_a_frozen_attrs_class() -> None:
    e = Event(kind=EventKind.ALLOC, ioasid=1, spid=INVALID_IOASID, set=None, private=None)
    assert attrs.has(Event)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        e.ioasid = 2  # type: ignore[misc]


def test_subscribe_returns_a_subscription(space: IoasidSpace) -> None:
    assert isinstance(space.subscribe(lambda e: None), Subscription)


def test_set_alloc_reaches_global_subscribers(space: IoasidSpace, events: list[Event]) -> None:
    s = space.create_set(quota=3)
    assert len(events) == 1
    e = events[0]
    assert (e.kind, e.ioasid, e.spid, e.set) == (
        EventKind.SET_ALLOC,
        INVALID_IOASID,
        INVALID_IOASID,
        s,
    )


def test_set_free_reaches_the_sets_own_and_the_global_subscribers(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    own: list[Event] = []
    space.subscribe(own.append, set=s)
    events.clear()
    space.free_set(s)
    for seen in (own, events):
        assert [(e.kind, e.ioasid, e.spid, e.set) for e in seen] == [
            (EventKind.SET_FREE, INVALID_IOASID, INVALID_IOASID, s)
        ]


def test_a_bind_cycle_emits_each_kind_once_with_its_payload(
    space: IoasidSpace, events: list[Event]
) -> None:
    tok = object()
    s = space.create_set(tok, quota=4, type=SetType.MM)
    data = object()
    i = space.alloc(s, 0, 63, private=data)
    space.attach_spid(i, 101)
    space.detach_spid(i)
    space.free(s, i)
    space.free_set(s)
    assert [(e.kind, e.ioasid, e.spid, e.set) for e in events] == [
        (EventKind.SET_ALLOC, INVALID_IOASID, INVALID_IOASID, s),
        (EventKind.ALLOC, i, INVALID_IOASID, s),
        (EventKind.BIND, i, 101, s),
        (EventKind.UNBIND, i, 101, s),
        (EventKind.FREE, i, INVALID_IOASID, s),
        (EventKind.SET_FREE, INVALID_IOASID, INVALID_IOASID, s),
    ]
    assert [e.private for e in events[1:5]] == [data] * 4


def test_free_event_carries_the_attached_spid_and_data(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="d")
    space.attach_spid(i, 55)
    space.get(s, i)
    events.clear()
    space.free(s, i)
    assert [_fields(e) for e in events] == [(EventKind.FREE, i, 55, s, "d")]


def test_free_is_emitted_once_when_a_pending_id_is_reclaimed_later(
    space: IoasidSpace, events: list[Event]
) -> None:
    """**fix**: the kernel sent nothing on an immediate reclaim; here FREE goes out once."""
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    j = space.alloc(s, 0, 63)
    space.get(s, i)
    events.clear()
    space.free(s, i)  # goes pending
    space.free(s, j)  # reclaimed at once
    space.free(s, i)  # no-op
    space.put(s, i)  # reclaims
    assert [(e.kind, e.ioasid) for e in events] == [(EventKind.FREE, i), (EventKind.FREE, j)]


# --- who receives what -----------------------------------------------------------------------


def test_set_subscribers_see_only_their_sets_events(space: IoasidSpace) -> None:
    a, b = space.create_set(), space.create_set()
    mine: list[Event] = []
    space.subscribe(mine.append, set=a)
    i = space.alloc(a, 0, 63)
    j = space.alloc(b, 0, 63)
    space.attach_spid(j, 1)
    space.attach_spid(i, 1)
    space.detach_spid(j)
    space.detach_spid(i)
    space.free(b, j)
    space.free(a, i)
    space.create_set()
    space.free_set(b)
    space.free_set(a)
    assert [(e.kind, e.ioasid) for e in mine] == [
        (EventKind.ALLOC, i),
        (EventKind.BIND, i),
        (EventKind.UNBIND, i),
        (EventKind.FREE, i),
        (EventKind.SET_FREE, INVALID_IOASID),
    ]
    assert all(e.set is a for e in mine)


def test_global_subscribers_see_every_sets_events(space: IoasidSpace, events: list[Event]) -> None:
    """**fix**: the kernel sent ALLOC/BIND/UNBIND on the set chain only."""
    a, b = space.create_set(), space.create_set()
    i = space.alloc(a, 0, 63)
    j = space.alloc(b, 0, 63)
    space.attach_spid(j, 4)
    space.detach_spid(j)
    space.free(a, i)
    assert [(e.kind, e.set) for e in events] == [
        (EventKind.SET_ALLOC, a),
        (EventKind.SET_ALLOC, b),
        (EventKind.ALLOC, a),
        (EventKind.ALLOC, b),
        (EventKind.BIND, b),
        (EventKind.UNBIND, b),
        (EventKind.FREE, a),
    ]


def test_subscribing_to_a_free_pending_set_works(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.free_set(s)
    mine: list[Event] = []
    space.subscribe(mine.append, set=s)
    space.free(s, i)
    assert [e.kind for e in mine] == [EventKind.FREE, EventKind.SET_FREE]


def test_subscribing_to_a_destroyed_set_is_invalid(space: IoasidSpace) -> None:
    s = space.create_set()
    space.free_set(s)
    with pytest.raises(InvalidArgumentError):
        space.subscribe(lambda e: None, set=s)
    # Nothing was registered: the next events reach only the subscribers that exist.
    seen: list[Event] = []
    space.subscribe(seen.append)
    space.create_set()
    assert [e.kind for e in seen] == [EventKind.SET_ALLOC]


def test_unsubscribe_stops_delivery(space: IoasidSpace) -> None:
    s = space.create_set()
    seen: list[Event] = []
    g = space.subscribe(seen.append)
    o = space.subscribe(seen.append, set=s)
    space.alloc(s, 0, 63)
    assert len(seen) == 2
    space.unsubscribe(g)
    space.unsubscribe(o)
    space.alloc(s, 0, 63)
    space.create_set()
    assert len(seen) == 2


def test_unsubscribe_of_an_unknown_subscription_is_not_found(space: IoasidSpace) -> None:
    sub = space.subscribe(lambda e: None)
    space.unsubscribe(sub)
    with pytest.raises(NotFoundError):
        space.unsubscribe(sub)
    elsewhere = IoasidSpace(capacity=8).subscribe(lambda e: None)
    with pytest.raises(NotFoundError):
        space.unsubscribe(elsewhere)


def test_unsubscribe_of_another_spaces_set_subscription_is_not_found(space: IoasidSpace) -> None:
    other = IoasidSpace(capacity=8)
    theirs = other.create_set()
    seen: list[Event] = []
    sub = other.subscribe(seen.append, set=theirs)
    with pytest.raises(NotFoundError):
        space.unsubscribe(sub)
    # Still subscribed in its own space, and this space's bookkeeping is untouched.
    other.alloc(theirs, 0, 7)
    assert [e.kind for e in seen] == [EventKind.ALLOC]
    mine: list[Event] = []
    space.subscribe(mine.append)
    space.create_set()
    assert [e.kind for e in mine] == [EventKind.SET_ALLOC]


# --- order -----------------------------------------------------------------------------------


def test_subscribers_run_cpu_then_iommu_then_device_then_last(space: IoasidSpace) -> None:
    s = space.create_set()
    order: list[str] = []

    def recorder(name: str) -> Callable[[Event], None]:
        return lambda e: order.append(name)

    for prio in (Priority.DEVICE, Priority.LAST, Priority.CPU, Priority.IOMMU):
        space.subscribe(recorder(prio.name), priority=prio)
    space.alloc(s, 0, 63)
    assert order == ["CPU", "IOMMU", "DEVICE", "LAST"]


def test_priority_order_spans_global_and_set_subscribers(space: IoasidSpace) -> None:
    s = space.create_set()
    order: list[str] = []
    space.subscribe(lambda e: order.append("global-last"), priority=Priority.LAST)
    space.subscribe(lambda e: order.append("set-device"), set=s, priority=Priority.DEVICE)
    space.subscribe(lambda e: order.append("global-cpu"), priority=Priority.CPU)
    space.subscribe(lambda e: order.append("set-iommu"), set=s, priority=Priority.IOMMU)
    space.alloc(s, 0, 63)
    assert order == ["global-cpu", "set-iommu", "set-device", "global-last"]


def test_equal_priorities_run_in_subscription_order_across_set_and_global(
    space: IoasidSpace,
) -> None:
    s = space.create_set()
    order: list[int] = []
    space.subscribe(lambda e: order.append(1), set=s, priority=Priority.IOMMU)
    space.subscribe(lambda e: order.append(2), priority=Priority.IOMMU)
    space.subscribe(lambda e: order.append(3), set=s, priority=Priority.IOMMU)
    space.subscribe(lambda e: order.append(4), priority=Priority.IOMMU)
    space.alloc(s, 0, 63)
    assert order == [1, 2, 3, 4]


def test_default_priority_is_device(space: IoasidSpace) -> None:
    s = space.create_set()
    order: list[str] = []
    space.subscribe(lambda e: order.append("last"), priority=Priority.LAST)
    space.subscribe(lambda e: order.append("explicit-device"), priority=Priority.DEVICE)
    space.subscribe(lambda e: order.append("default"))
    space.subscribe(lambda e: order.append("iommu"), priority=Priority.IOMMU)
    space.alloc(s, 0, 63)
    assert order == ["iommu", "explicit-device", "default", "last"]


# --- subscriber errors -----------------------------------------------------------------------


def test_subscriber_error_is_raised_as_a_group_after_all_subscribers_ran(
    space: IoasidSpace, caplog: pytest.LogCaptureFixture
) -> None:
    s = space.create_set()
    order: list[str] = []
    boom = ValueError("subscriber failed")

    def bad(e: Event) -> None:
        order.append("bad")
        raise boom

    space.subscribe(bad, priority=Priority.CPU)
    space.subscribe(lambda e: order.append("after"), priority=Priority.LAST)
    with caplog.at_level(logging.DEBUG), pytest.raises(ExceptionGroup) as info:
        space.alloc(s, 0, 63)
    assert order == ["bad", "after"]
    assert list(info.value.exceptions) == [boom]
    assert "alloc" in info.value.message.lower()  # the message names the event
    assert any(r.levelno >= logging.WARNING for r in caplog.records)  # and it was logged
    # The operation is not undone.
    assert s.ioasids() == [0]
    assert space.state(0) is IoasidState.IDLE


def test_every_subscriber_error_is_in_the_group(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    first, second = RuntimeError("one"), KeyError("two")

    def raise_first(e: Event) -> None:
        raise first

    def raise_second(e: Event) -> None:
        raise second

    space.subscribe(raise_first, priority=Priority.CPU)
    space.subscribe(raise_second)
    with pytest.raises(ExceptionGroup) as info:
        space.free(s, i)
    assert list(info.value.exceptions) == [first, second]
    with pytest.raises(NotFoundError):
        space.state(i)  # the free went through


def test_deferred_work_errors_join_the_group_after_all_deferred_work_ran(
    space: IoasidSpace,
) -> None:
    s = space.create_set()
    ran: list[str] = []
    sub_err, work_err = RuntimeError("subscriber"), RuntimeError("work")

    def failing_work() -> None:
        ran.append("failing")
        raise work_err

    def sub(e: Event) -> None:
        space.defer(failing_work)
        space.defer(lambda: ran.append("next"))
        raise sub_err

    space.subscribe(sub)
    with pytest.raises(ExceptionGroup) as info:
        space.alloc(s, 0, 63)
    assert ran == ["failing", "next"]
    assert set(map(id, info.value.exceptions)) == {id(sub_err), id(work_err)}
    assert s.count == 1


# --- re-entry --------------------------------------------------------------------------------

_CALLS: dict[str, Callable[[IoasidSpace, IoasidSet, int], object]] = {
    "alloc": lambda sp, s, i: sp.alloc(s, 0, 63),
    "free": lambda sp, s, i: sp.free(s, i),
    "get": lambda sp, s, i: sp.get(s, i),
    "put": lambda sp, s, i: sp.put(s, i),
    "find": lambda sp, s, i: sp.find(s, i),
    "find-null-set": lambda sp, s, i: sp.find(None, i),
    "find_set": lambda sp, s, i: sp.find_set(i),
    "find_mm_set": lambda sp, s, i: sp.find_mm_set(object()),
    "state": lambda sp, s, i: sp.state(i),
    "set_data": lambda sp, s, i: sp.set_data(i, "x"),
    "attach_data": lambda sp, s, i: sp.attach_data(i, "x"),
    "detach_data": lambda sp, s, i: sp.detach_data(i),
    "attach_spid": lambda sp, s, i: sp.attach_spid(i, 77),
    "detach_spid": lambda sp, s, i: sp.detach_spid(i),
    "find_by_spid": lambda sp, s, i: sp.find_by_spid(s, 77),
    "create_set": lambda sp, s, i: sp.create_set(),
    "free_set": lambda sp, s, i: sp.free_set(s),
    "free_all": lambda sp, s, i: sp.free_all(s),
    "subscribe": lambda sp, s, i: sp.subscribe(lambda e: None),
    "unsubscribe": lambda sp, s, i: sp.unsubscribe(sp.subscribe(lambda e: None)),
    "register_allocator": lambda sp, s, i: sp.register_allocator(
        AllocatorOps(lambda lo, hi, p: lo, lambda n, p: None)
    ),
    "unregister_allocator": lambda sp, s, i: sp.unregister_allocator(
        AllocatorOps(lambda lo, hi, p: lo, lambda n, p: None)
    ),
}


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_subscriber_calling_its_own_space_is_reentrancy_error(call: str) -> None:
    sp = IoasidSpace(capacity=64)
    s = sp.create_set()
    i = sp.alloc(s, 0, 63)
    outcome: list[BaseException | None] = []

    def sub(e: Event) -> None:
        if e.kind is EventKind.ALLOC:
            try:
                _CALLS[call](sp, s, i)
            except ReentrancyError as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

    sp.subscribe(sub)
    _in_thread(lambda: sp.alloc(s, 0, 63))
    assert len(outcome) == 1
    assert isinstance(outcome[0], ReentrancyError)
    assert isinstance(outcome[0], RuntimeError)
    # Nothing the refused call would have done happened.
    assert s.ioasids() == [0, 1]
    assert sp.state(i) is IoasidState.IDLE
    assert sp.find(s, i) is None


def test_uncaught_reentrancy_error_is_in_the_group_and_the_operation_stands(
    space: IoasidSpace,
) -> None:
    s = space.create_set()

    def sub(e: Event) -> None:
        space.find_set(e.ioasid)

    space.subscribe(sub)
    with pytest.raises(ExceptionGroup) as info:
        _in_thread(lambda: space.alloc(s, 0, 63))
    assert info.group_contains(ReentrancyError)
    assert s.ioasids() == [0]


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_getter_calling_its_own_space_is_reentrancy_error(call: str) -> None:
    sp = IoasidSpace(capacity=64)  # quiet: nothing subscribes, the hot paths are open
    s = sp.create_set()
    i = sp.alloc(s, 0, 63, private="d")
    outcome: list[BaseException | None] = []

    def getter(d: object) -> bool:
        try:
            _CALLS[call](sp, s, i)
        except ReentrancyError as exc:
            outcome.append(exc)
        else:
            outcome.append(None)
        return True

    found: list[object] = []
    _in_thread(lambda: found.append(sp.find(s, i, getter)))
    assert found == ["d"]
    assert len(outcome) == 1
    assert isinstance(outcome[0], ReentrancyError)
    assert s.ioasids() == [i]
    assert sp.state(i) is IoasidState.IDLE
    assert sp.find(s, i) == "d"


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_custom_allocator_calling_its_own_space_is_reentrancy_error(call: str) -> None:
    sp = IoasidSpace(capacity=64)
    s = sp.create_set()
    outcome: list[BaseException | None] = []
    calling = [False]

    def alloc(lo: int, hi: int, pdata: object) -> int:
        if calling[0]:
            try:
                _CALLS[call](sp, s, 0)
            except ReentrancyError as exc:
                outcome.append(exc)
            else:
                outcome.append(None)
        return len(s.ioasids())

    sp.register_allocator(AllocatorOps(alloc, lambda n, p: None))
    assert sp.alloc(s, 0, 63) == 0
    calling[0] = True
    _in_thread(lambda: sp.alloc(s, 0, 63))
    assert len(outcome) == 1
    assert isinstance(outcome[0], ReentrancyError)
    assert s.ioasids() == [0, 1]
    assert sp.state(0) is IoasidState.IDLE


def test_subscriber_may_call_another_space(space: IoasidSpace) -> None:
    host = IoasidSpace(capacity=64)
    hs = host.create_set()
    s = space.create_set()
    mirrored: list[int] = []
    space.subscribe(lambda e: mirrored.append(host.alloc(hs, e.ioasid, e.ioasid)))
    space.alloc(s, 5, 63)
    assert mirrored == [5]
    assert hs.ioasids() == [5]


def test_getter_may_call_another_space(space: IoasidSpace) -> None:
    host = IoasidSpace(capacity=64)
    hs = host.create_set()
    host.alloc(hs, 0, 63, private="host-data")
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="d")
    assert space.find(s, i, lambda d: host.find(hs, 0) == "host-data") == "d"


def test_another_thread_waits_instead_of_failing_with_reentrancy(
    space: IoasidSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = space.create_set()
    inside, release, waiting = threading.Event(), threading.Event(), threading.Event()
    wait = TokenMutex.wait

    def waits(mutex: TokenMutex) -> None:
        waiting.set()  # the second thread found the lock held, and waits for it
        wait(mutex)

    monkeypatch.setattr(TokenMutex, "wait", waits)

    def slow(e: Event) -> None:
        if e.ioasid == 0:
            inside.set()
            release.wait(120)

    space.subscribe(slow)
    first = threading.Thread(target=lambda: space.alloc(s, 0, 0))
    first.start()
    assert inside.wait(60)
    results: list[object] = []

    def second() -> None:
        try:
            results.append(space.alloc(s, 1, 63))
        except BaseException as exc:
            results.append(exc)

    other = threading.Thread(target=second)
    other.start()
    try:
        # Released only once the second call waits for the lock (not after a guessed
        # sleep, which a loaded machine outlasts: the call then met no contention at all).
        assert waiting.wait(60)
    finally:
        release.set()
        first.join(60)
        other.join(60)
    assert results == [1]


# --- defer -----------------------------------------------------------------------------------


def test_deferred_work_runs_fifo_after_all_subscribers_and_before_the_method_returns(
    space: IoasidSpace,
) -> None:
    s = space.create_set()
    order: list[object] = []

    def first(e: Event) -> None:
        order.append("cpu")
        space.defer(lambda: order.append("work-1"))
        # Deferred work runs with the lock released: it may call the space.
        space.defer(lambda: order.append(("work-2", space.state(e.ioasid))))

    def second(e: Event) -> None:
        order.append("last")
        space.defer(lambda: order.append("work-3"))

    space.subscribe(first, priority=Priority.CPU)
    space.subscribe(second, priority=Priority.LAST)
    _in_thread(lambda: space.alloc(s, 0, 63))
    assert order == ["cpu", "last", "work-1", ("work-2", IoasidState.IDLE), "work-3"]


def test_free_subscriber_may_end_free_pending_through_defer(space: IoasidSpace) -> None:
    """The kernel's pattern: the FREE handler drops its reference from the work queue."""
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.get(s, i)  # the subscriber's reference
    put_result: list[bool] = []

    def on_free(e: Event) -> None:
        if e.kind is EventKind.FREE:
            space.defer(lambda: put_result.append(space.put(None, e.ioasid)))

    space.subscribe(on_free, priority=Priority.CPU)
    _in_thread(lambda: space.free(s, i))
    assert put_result == [True]
    with pytest.raises(NotFoundError):
        space.state(i)


def test_deferred_work_may_start_operations_that_defer_again(space: IoasidSpace) -> None:
    s = space.create_set()
    order: list[object] = []

    def sub(e: Event) -> None:
        if e.kind is EventKind.ALLOC and e.ioasid == 0:
            space.defer(lambda: order.append(("second", space.alloc(s, 0, 63))))
        elif e.kind is EventKind.ALLOC:
            space.defer(lambda: order.append(("nested", e.ioasid)))

    space.subscribe(sub)
    _in_thread(lambda: order.append(("first", space.alloc(s, 0, 63))))
    assert order == [("nested", 1), ("second", 1), ("first", 0)]


def test_defer_outside_an_operation_runs_at_once(space: IoasidSpace) -> None:
    ran: list[str] = []
    space.defer(lambda: ran.append("now"))
    assert ran == ["now"]


def test_defer_from_a_getter_runs_before_find_returns(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="d")
    ran: list[object] = []

    def getter(d: object) -> bool:
        space.defer(lambda: ran.append(space.state(i)))
        return True

    assert space.find(s, i, getter) == "d"
    assert ran == [IoasidState.IDLE]
