"""Guest/host PASID mapping: ``attach_spid``, ``detach_spid``, ``find_by_spid``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from ioasid_core import (
    INVALID_IOASID,
    BusyError,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidSpace,
    IoasidState,
    NotFoundError,
)

Unchanged = Callable[..., AbstractContextManager[None]]


def test_attach_spid_maps_the_spid_to_the_id_and_emits_bind(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="vm")
    events.clear()
    space.attach_spid(i, 101)
    assert space.find_by_spid(s, 101) == i
    assert [(e.kind, e.ioasid, e.spid, e.set, e.private) for e in events] == [
        (EventKind.BIND, i, 101, s, "vm")
    ]


def test_detach_spid_removes_the_mapping_and_emits_unbind(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="vm")
    space.attach_spid(i, 101)
    events.clear()
    space.detach_spid(i)
    assert [(e.kind, e.ioasid, e.spid, e.set, e.private) for e in events] == [
        (EventKind.UNBIND, i, 101, s, "vm")
    ]
    with pytest.raises(NotFoundError):
        space.find_by_spid(s, 101)
    # The SPID and the ID are both free to map again.
    space.attach_spid(i, 102)
    j = space.alloc(s, 0, 63)
    space.attach_spid(j, 101)
    assert (space.find_by_spid(s, 101), space.find_by_spid(s, 102)) == (j, i)


def test_same_spid_in_two_sets_maps_to_different_ids() -> None:
    """Two VMs both use guest PASID 101, mapped to host IDs 201 and 202."""
    sp = IoasidSpace(capacity=1024)
    vm1, vm2 = sp.create_set(quota=4), sp.create_set(quota=4)
    h1 = sp.alloc(vm1, 201, 201)
    h2 = sp.alloc(vm2, 202, 202)
    sp.attach_spid(h1, 101)
    sp.attach_spid(h2, 101)
    assert sp.find_by_spid(vm1, 101) == 201
    assert sp.find_by_spid(vm2, 101) == 202


@pytest.mark.parametrize("get", [False, True])
def test_find_by_spid_of_an_unknown_spid_is_not_found(
    space: IoasidSpace, unchanged: Unchanged, get: bool
) -> None:
    a, b = space.create_set(), space.create_set()
    i = space.alloc(a, 0, 63)
    space.attach_spid(i, 5)
    probe = [(a, 5), (a, 6), (b, 5)]
    with unchanged(space, a, b, spids=probe), pytest.raises(NotFoundError):
        space.find_by_spid(a, 6, get=get)
    with unchanged(space, a, b, spids=probe), pytest.raises(NotFoundError):
        space.find_by_spid(b, 5, get=get)  # another set's SPID


def test_find_by_spid_without_get_takes_no_reference(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 5)
    space.detach_spid(i)
    space.attach_spid(i, 5)
    assert space.find_by_spid(s, 5) == i
    assert space.find_by_spid(s, 5, get=False) == i
    space.detach_spid(i)
    assert space.state(i) is IoasidState.IDLE
    assert space.put(s, i) is True


def test_find_by_spid_with_get_takes_a_reference(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 5)
    assert space.find_by_spid(s, 5, get=True) == i
    space.detach_spid(i)
    assert space.state(i) is IoasidState.ACTIVE
    space.free(s, i)
    assert space.state(i) is IoasidState.FREE_PENDING
    assert space.put(s, i) is True


def test_find_by_spid_with_get_on_a_free_pending_id_is_busy(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 5)
    space.get(s, i)
    space.free(s, i)
    with unchanged(space, s, spids=[(s, 5)]), pytest.raises(BusyError):
        space.find_by_spid(s, 5, get=True)
    # Without get it is still found; and no reference was taken by the failed call.
    assert space.find_by_spid(s, 5) == i
    assert space.put(s, i) is True


def test_invalid_ioasid_is_not_an_spid(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.attach_spid(i, INVALID_IOASID)


def test_spid_already_used_in_the_set_is_invalid(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    i, j = space.alloc(s, 0, 63), space.alloc(s, 0, 63)
    space.attach_spid(i, 7)
    with unchanged(space, s, spids=[(s, 7)]), pytest.raises(InvalidArgumentError):
        space.attach_spid(j, 7)


@pytest.mark.parametrize("second", [7, 8], ids=["same-spid", "other-spid"])
def test_id_that_already_has_an_spid_is_invalid(
    space: IoasidSpace, unchanged: Unchanged, second: int
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 7)
    with unchanged(space, s, spids=[(s, 7), (s, 8)]), pytest.raises(InvalidArgumentError):
        space.attach_spid(i, second)


def test_attach_spid_to_an_unknown_id_is_not_found(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set()
    space.alloc(s, 0, 63)
    with unchanged(space, s, ids=[9]), pytest.raises(NotFoundError):
        space.attach_spid(9, 7)


def test_detach_spid_of_an_id_without_spid_is_not_found(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0x1F, 0x1F)
    with unchanged(space, s), pytest.raises(NotFoundError) as info:
        space.detach_spid(i)
    assert "0x1f" in str(info.value).lower()


def test_detach_spid_of_an_unknown_id_is_not_found(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set()
    with unchanged(space, s, ids=[9]), pytest.raises(NotFoundError):
        space.detach_spid(9)


def test_reclaim_drops_the_spid_mapping(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.attach_spid(i, 7)
    space.get(s, i)
    space.free(s, i)
    assert space.find_by_spid(s, 7) == i  # still there while pending
    space.put(s, i)
    with pytest.raises(NotFoundError):
        space.find_by_spid(s, 7)
    j = space.alloc(s, 0, 63)
    space.attach_spid(j, 7)
    assert space.find_by_spid(s, 7) == j


def test_spid_calls_work_on_a_free_pending_set(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    space.free_set(s)
    space.attach_spid(i, 3)
    assert space.find_by_spid(s, 3, get=True) == i
    assert space.put(s, i) is False
    space.detach_spid(i)
