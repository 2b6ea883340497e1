"""A failing call whose callbacks also deferred failing work still raises its own error."""

from __future__ import annotations

import pytest

from ioasid_core import AllocatorError, AllocatorOps, IoasidSpace, NotFoundError


def _boom() -> None:
    raise RuntimeError("deferred boom")


def test_a_failing_custom_alloc_keeps_its_error_and_notes_the_deferred_failure() -> None:
    space = IoasidSpace(64)
    owner = space.create_set()

    def alloc(lo: int, hi: int, pdata: object) -> int:
        space.defer(_boom)
        return 0xFFFFFFFF  # INVALID_IOASID: the allocation fails

    space.register_allocator(AllocatorOps(alloc, lambda n, p: None))
    with pytest.raises(AllocatorError) as caught:
        space.alloc(owner, 0, 63)
    assert any("deferred boom" in note for note in caught.value.__notes__)
    assert len(space) == 0


def test_a_failing_getter_keeps_its_error_and_notes_the_deferred_failure() -> None:
    space = IoasidSpace(64)
    owner = space.create_set()
    ioasid = space.alloc(owner, 0, 63)

    def getter(data: object) -> bool:
        space.defer(_boom)
        raise NotFoundError("the getter's own error")

    with pytest.raises(NotFoundError, match="the getter's own error") as caught:
        space.find(owner, ioasid, getter)
    assert any("deferred boom" in note for note in caught.value.__notes__)


def test_deferred_work_of_a_successful_getter_runs_before_find_returns() -> None:
    space = IoasidSpace(64)
    owner = space.create_set()
    ioasid = space.alloc(owner, 0, 63, "data")
    ran: list[str] = []

    def getter(data: object) -> bool:
        space.defer(lambda: ran.append("deferred"))
        return True

    assert space.find(owner, ioasid, getter) == "data"
    assert ran == ["deferred"]


def test_a_custom_allocator_saying_no_space_is_both_allocator_and_no_space_error() -> None:
    from ioasid_core import AllocatorNoSpaceError, NoSpaceError

    space = IoasidSpace(64)
    owner = space.create_set()

    def alloc(lo: int, hi: int, pdata: object) -> int:
        raise NoSpaceError("backend: no PASID available")

    space.register_allocator(AllocatorOps(alloc, lambda n, p: None))
    with pytest.raises(AllocatorNoSpaceError, match="no PASID available") as caught:
        space.alloc(owner, 0, 63)
    assert isinstance(caught.value, NoSpaceError)
    assert isinstance(caught.value, AllocatorError)
    assert len(space) == 0
