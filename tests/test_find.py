"""Lookup: ``find`` with a set, with the NULL set, with a getter; private data updates."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from ioasid_core import (
    AccessDeniedError,
    BusyError,
    Event,
    IoasidSpace,
    NotFoundError,
    Priority,
)

Unchanged = Callable[..., AbstractContextManager[None]]


def test_find_returns_the_private_data_to_the_owner(space: IoasidSpace) -> None:
    s = space.create_set()
    data = object()
    i = space.alloc(s, 0, 63, private=data)
    assert space.find(s, i) is data


def test_find_with_none_set_searches_every_set(space: IoasidSpace) -> None:
    a, b = space.create_set(), space.create_set()
    i = space.alloc(a, 0, 63, private="a")
    j = space.alloc(b, 0, 63, private="b")
    assert space.find(None, i) == "a"
    assert space.find(None, j) == "b"


def test_find_of_another_sets_id_is_access_denied(space: IoasidSpace, unchanged: Unchanged) -> None:
    a, b = space.create_set(), space.create_set()
    i = space.alloc(a, 0, 63, private="a")
    with unchanged(space, a, b), pytest.raises(AccessDeniedError):
        space.find(b, i)


@pytest.mark.parametrize("ioasid", [0, 1, 63, 64, 1 << 20, -1])
def test_find_of_an_unallocated_id_is_not_found(
    space: IoasidSpace, unchanged: Unchanged, ioasid: int
) -> None:
    s = space.create_set()
    space.alloc(s, 1, 1, private="one")
    space.free(s, 1)
    space.alloc(s, 2, 2, private="two")
    with unchanged(space, s), pytest.raises(NotFoundError):
        space.find(None, ioasid)
    with unchanged(space, s), pytest.raises(NotFoundError):
        space.find(s, ioasid)


def test_getter_is_called_with_the_private_data(space: IoasidSpace) -> None:
    s = space.create_set()
    data = object()
    i = space.alloc(s, 0, 63, private=data)
    seen: list[object] = []

    def getter(d: object) -> bool:
        seen.append(d)
        return True

    assert space.find(s, i, getter) is data
    assert space.find(None, i, getter=getter) is data
    assert seen == [data, data]


def test_getter_is_called_even_when_the_data_is_none(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    seen: list[object] = []

    def getter(d: object) -> bool:
        seen.append(d)
        return True

    assert space.find(s, i, getter) is None
    assert seen == [None]


@pytest.mark.parametrize("data", [None, "dying"])
def test_false_getter_makes_find_return_none(space: IoasidSpace, data: object) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private=data)
    calls: list[object] = []

    def getter(d: object) -> bool:
        calls.append(d)
        return False

    assert space.find(s, i, getter) is None
    assert calls == [data]
    # The ID itself is untouched.
    assert space.find(s, i) == data


def test_find_works_on_the_ids_of_a_free_pending_set(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="x")
    space.free_set(s)
    assert space.find(s, i) == "x"


def test_find_does_not_wait_for_the_lock() -> None:
    """``find`` takes no lock on its fast path: it answers while a subscriber holds the lock.

    The subscriber holds it until the test lets go, so a ``find`` that waited for the lock
    would not return before the finder's join gives up (60 s: bounds a failure only; a pass
    takes microseconds, whatever the machine's load)."""
    sp = IoasidSpace(capacity=64)
    s = sp.create_set()
    i = sp.alloc(s, 0, 63, private="mine")
    inside, release = threading.Event(), threading.Event()

    def slow(_e: Event) -> None:
        inside.set()
        release.wait(120)

    sp.subscribe(slow, priority=Priority.CPU)
    worker = threading.Thread(target=lambda: sp.alloc(s, 0, 63))
    worker.start()
    try:
        assert inside.wait(60)
        found: list[object] = []
        finder = threading.Thread(target=lambda: found.append((sp.find(s, i), sp._lock.locked)))
        finder.start()
        finder.join(60)
        assert found == [("mine", True)]  # answered while the lock was held
    finally:
        release.set()
        worker.join(60)


# --- private data ----------------------------------------------------------------------------


def test_set_data_replaces_the_private_data(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="old")
    space.set_data(i, "new")
    assert space.find(s, i) == "new"
    space.set_data(i, None)
    assert space.find(s, i) is None


def test_attach_data_sets_data_when_there_is_none(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_data(i, "mine")
    assert space.find(s, i) == "mine"


def test_attach_data_refuses_to_overwrite_existing_data(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="first")
    with unchanged(space, s), pytest.raises(BusyError):
        space.attach_data(i, "second")
    assert space.find(s, i) == "first"


def test_detach_data_clears_the_data_so_it_can_be_attached_again(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="first")
    space.detach_data(i)
    assert space.find(s, i) is None
    space.attach_data(i, "second")
    assert space.find(s, i) == "second"


@pytest.mark.parametrize("method", ["set_data", "attach_data", "detach_data"])
def test_data_calls_on_an_unknown_id_are_not_found(
    space: IoasidSpace, unchanged: Unchanged, method: str
) -> None:
    s = space.create_set()
    space.alloc(s, 0, 63, private="x")
    args: tuple[object, ...] = (9,) if method == "detach_data" else (9, "data")
    with unchanged(space, s, ids=[9]), pytest.raises(NotFoundError):
        getattr(space, method)(*args)


def test_data_calls_take_no_set_so_any_id_can_be_updated(space: IoasidSpace) -> None:
    a, b = space.create_set(), space.create_set()
    i = space.alloc(a, 0, 63)
    j = space.alloc(b, 0, 63)
    space.set_data(i, "i")
    space.attach_data(j, "j")
    assert (space.find(a, i), space.find(b, j)) == ("i", "j")
