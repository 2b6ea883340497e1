"""Failed calls change nothing and lose nothing they must report (issue 19).

ID arguments are validated before any state changes; ``free_all`` and a forced
``unregister_allocator`` report a backend's failures together with the subscribers'; the
capacity is bounded so that ``INVALID_IOASID`` can never be an ID.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pytest

from ioasid_core import (
    INVALID_IOASID,
    AccessDeniedError,
    AllocatorError,
    AllocatorOps,
    BusyError,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidError,
    IoasidSpace,
    NotFoundError,
    ReentrancyError,
)

Unchanged = Callable[..., AbstractContextManager[None]]
NOT_IDS: list[object] = [1.0, True, "1", None, 1 + 0j]


@pytest.mark.parametrize("bad", NOT_IDS, ids=repr)
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda sp, s, i: sp.free(s, i), id="free"),
        pytest.param(lambda sp, s, i: sp.free(None, i), id="free-none"),
        pytest.param(lambda sp, s, i: sp.get(s, i), id="get"),
        pytest.param(lambda sp, s, i: sp.put(s, i), id="put"),
        pytest.param(lambda sp, s, i: sp.set_data(i, "x"), id="set_data"),
        pytest.param(lambda sp, s, i: sp.attach_data(i, "x"), id="attach_data"),
        pytest.param(lambda sp, s, i: sp.detach_data(i), id="detach_data"),
        pytest.param(lambda sp, s, i: sp.set_data_in(s, i, "x"), id="set_data_in"),
        pytest.param(lambda sp, s, i: sp.attach_spid(i, 7), id="attach_spid"),
        pytest.param(lambda sp, s, i: sp.attach_spid_in(s, i, 7), id="attach_spid_in"),
        pytest.param(lambda sp, s, i: sp.detach_spid(i), id="detach_spid"),
        pytest.param(lambda sp, s, i: sp.state(i), id="state"),
        pytest.param(lambda sp, s, i: sp.refs(i), id="refs"),
        pytest.param(lambda sp, s, i: sp.find_set(i), id="find_set"),
        pytest.param(lambda sp, s, i: sp.find_by_spid(s, i), id="find_by_spid"),
    ],
)
def test_an_id_that_is_not_an_int_is_refused_before_anything_changes(
    space: IoasidSpace,
    unchanged: Unchanged,
    call: Callable[[IoasidSpace, Any, object], object],
    bad: object,
) -> None:
    owner = space.create_set()
    space.alloc(owner, 0, 10)
    space.alloc(owner, 0, 10)  # ID 1, which 1.0 and True equal
    with unchanged(space, owner), pytest.raises(InvalidArgumentError, match="not an integer"):
        call(space, owner, bad)


def test_free_of_a_float_id_on_the_hot_path_leaks_nothing(space: IoasidSpace) -> None:
    owner = space.create_set()
    space.alloc(owner, 0, 10)
    space.alloc(owner, 0, 10)
    with pytest.raises(InvalidArgumentError):
        space.free(owner, 1.0)  # type: ignore[arg-type]
    space.free(owner, 1)  # still allocated, found and freed as usual
    assert space.alloc(owner, 0, 10) == 1
    space.free_all(owner)
    assert space.free_set(owner) is True  # nothing left counted: the set goes now


def test_a_numpy_id_is_taken_as_its_int_and_never_handed_back(space: IoasidSpace) -> None:
    owner = space.create_set()
    ids = [space.alloc(owner, 0, 10) for _ in range(3)]
    space.free(owner, np.int64(1))  # type: ignore[arg-type]
    space.get(owner, np.int32(2))  # type: ignore[arg-type]
    assert space.put(owner, np.uint8(2)) is False  # type: ignore[arg-type]
    again = space.alloc(owner, 0, 10)
    assert again == 1 and type(again) is int
    assert all(type(i) is int for i in owner.ioasids()) and owner.ioasids() == ids
    assert np.int64(0) in space and 1.0 not in space


def test_a_numpy_spid_is_taken_as_its_int_as_find_by_spid_takes_it(space: IoasidSpace) -> None:
    owner = space.create_set()
    ioasid = space.alloc(owner, 0, 10)
    space.attach_spid(ioasid, np.int64(7))  # type: ignore[arg-type]
    assert space.find_by_spid(owner, 7) == ioasid
    assert [type(spid) for spid in owner._spids] == [int]
    other = space.alloc(owner, 0, 10)
    with pytest.raises(InvalidArgumentError, match="SPID True is not an integer"):
        space.attach_spid_in(owner, other, True)
    space.attach_spid_in(owner, other, np.uint16(8))  # type: ignore[arg-type]
    assert space.find_by_spid(owner, np.int32(8)) == other  # type: ignore[arg-type]


@pytest.mark.parametrize("capacity", [INVALID_IOASID, INVALID_IOASID + 1, 1 << 27, (1 << 26) + 1])
def test_a_capacity_beyond_the_modelled_range_is_an_ioasid_error(capacity: int) -> None:
    with pytest.raises(InvalidArgumentError, match=r"outside 1\.\.0x4000000"):
        IoasidSpace(capacity)


def test_the_largest_capacity_is_accepted_and_its_top_id_is_below_invalid() -> None:
    space = IoasidSpace(1 << 26)
    owner = space.create_set()
    top = space.alloc(owner, (1 << 26) - 1, (1 << 26) - 1)
    assert top < INVALID_IOASID


class FailingBackend:
    """A backend that fails to free the IDs in ``bad`` (by raising, or by calling back)."""

    def __init__(self, space: IoasidSpace, bad: set[int], *, reenter: bool = False) -> None:
        self.space = space
        self.bad = bad
        self.reenter = reenter
        self.held: set[int] = set()
        self.next = 0

    def alloc(self, lo: int, hi: int, pdata: object) -> int:
        n = max(self.next, lo)
        self.next = n + 1
        self.held.add(n)
        return n

    def free(self, n: int, pdata: object) -> None:
        if n in self.bad:
            if self.reenter:
                self.space.state(n)  # raises ReentrancyError
            raise OSError(f"backend cannot free {n}")
        self.held.remove(n)


def test_free_all_whose_backend_calls_back_frees_the_rest_and_reports_everything() -> None:
    space = IoasidSpace(64)
    backend = FailingBackend(space, {1}, reenter=True)
    space.register_allocator(AllocatorOps(backend.alloc, backend.free))
    owner = space.create_set()
    ids = [space.alloc(owner, 0, 63) for _ in range(3)]
    seen: list[Event] = []
    space.subscribe(seen.append)
    with pytest.raises(AllocatorError, match=r"1 ID\(s\) could not be freed.*2 freed") as info:
        space.free_all(owner)
    assert isinstance(info.value.__cause__, ReentrancyError)
    assert [(e.kind, e.ioasid) for e in seen] == [(EventKind.FREE, 0), (EventKind.FREE, 2)]
    assert owner.ioasids() == [1] and backend.held == {1}  # it stayed, at both ends
    assert ids == [0, 1, 2]


def test_free_all_raises_the_backend_failure_and_the_subscriber_errors_together() -> None:
    space = IoasidSpace(64)
    backend = FailingBackend(space, {1})
    space.register_allocator(AllocatorOps(backend.alloc, backend.free))
    owner = space.create_set()
    for _ in range(3):
        space.alloc(owner, 0, 63)

    def broken(event: Event) -> None:
        raise KeyError("subscriber")

    space.subscribe(broken)
    with pytest.raises(ExceptionGroup) as info:
        space.free_all(owner)
    kinds = [type(e) for e in info.value.exceptions]
    assert kinds == [AllocatorError, KeyError, KeyError]  # the backend's first, then 2 FREEs
    assert "stay allocated" in str(info.value.exceptions[0])
    assert owner.ioasids() == [1]


def test_a_forced_unregister_raises_the_backend_failure_and_the_subscriber_errors_together() -> (
    None
):
    space = IoasidSpace(64)
    backend = FailingBackend(space, {0})
    ops = AllocatorOps(backend.alloc, backend.free)
    space.register_allocator(ops)
    owner = space.create_set()
    space.alloc(owner, 0, 63)
    space.alloc(owner, 0, 63)

    def broken(event: Event) -> None:
        raise KeyError("subscriber")

    space.subscribe(broken)
    with pytest.raises(ExceptionGroup) as info:
        space.unregister_allocator(ops, force=True)
    first, *rest = info.value.exceptions
    assert isinstance(first, ExceptionGroup) and "failed to free 1 IOASID" in str(first)
    assert isinstance(first.exceptions[0], OSError)
    assert any("0x0" in note for note in first.exceptions[0].__notes__)
    assert [type(e) for e in rest] == [KeyError, KeyError]
    assert len(space) == 0 and space.active_allocator is None


def test_a_forced_unregister_without_subscriber_errors_raises_the_backend_failure_alone() -> None:
    space = IoasidSpace(64)
    backend = FailingBackend(space, {0})
    ops = AllocatorOps(backend.alloc, backend.free)
    space.register_allocator(ops)
    owner = space.create_set()
    space.alloc(owner, 0, 63)
    with pytest.raises(ExceptionGroup, match="failed to free 1 IOASID") as info:
        space.unregister_allocator(ops, force=True)
    assert [type(e) for e in info.value.exceptions] == [OSError]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda sp, s, i: sp.set_data_in(s, i, "mine"), id="set_data_in"),
        pytest.param(lambda sp, s, i: sp.attach_data_in(s, i, "mine"), id="attach_data_in"),
        pytest.param(lambda sp, s, i: sp.detach_data_in(s, i), id="detach_data_in"),
        pytest.param(lambda sp, s, i: sp.attach_spid_in(s, i, 9), id="attach_spid_in"),
        pytest.param(lambda sp, s, i: sp.detach_spid_in(s, i), id="detach_spid_in"),
    ],
)
def test_owner_checked_calls_refuse_another_sets_id(
    space: IoasidSpace, unchanged: Unchanged, call: Callable[[IoasidSpace, Any, int], object]
) -> None:
    owner = space.create_set()
    intruder = space.create_set()
    theirs = space.alloc(owner, 0, 10)
    space.attach_spid(theirs, 5)
    with unchanged(space, owner, intruder, spids=[(owner, 5), (owner, 9)]):
        with pytest.raises(AccessDeniedError, match="belongs to set 0"):
            call(space, intruder, theirs)
        with pytest.raises(InvalidArgumentError, match="not an IoasidSet"):
            call(space, None, theirs)
        with pytest.raises(NotFoundError):
            call(space, owner, 33)


def test_owner_checked_calls_work_for_the_owner(space: IoasidSpace) -> None:
    owner = space.create_set()
    mine = space.alloc(owner, 0, 10)
    space.attach_data_in(owner, mine, "a")
    with pytest.raises(BusyError):
        space.attach_data_in(owner, mine, "b")
    space.set_data_in(owner, mine, "c")
    assert space.find(owner, mine) == "c"
    space.detach_data_in(owner, mine)
    assert space.find(owner, mine) is None
    space.attach_spid_in(owner, mine, 9)
    assert space.find_by_spid(owner, 9) == mine
    space.detach_spid_in(owner, mine)
    with pytest.raises(NotFoundError):
        space.find_by_spid(owner, 9)


def test_owner_checked_calls_refuse_a_set_of_another_space() -> None:
    space, elsewhere = IoasidSpace(64), IoasidSpace(64)
    owner = space.create_set()
    mine = space.alloc(owner, 0, 10)
    with pytest.raises(InvalidArgumentError, match="another space"):
        space.set_data_in(elsewhere.create_set(), mine, "x")


def test_every_failure_of_the_space_is_an_ioasid_error() -> None:
    space = IoasidSpace(64)
    owner = space.create_set()
    for call in (
        lambda: IoasidSpace(1 << 27),
        lambda: space.free(owner, 2.5),  # type: ignore[arg-type]
        lambda: space.find(owner, "x"),  # type: ignore[arg-type]
        lambda: space.find(owner, [1]),  # type: ignore[arg-type]  # unhashable: no TypeError
        lambda: space.find(owner, 3),
    ):
        with pytest.raises(IoasidError):
            call()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("example", ["allocator-swap.toml", "guest-vcmd.toml"])
def test_the_replay_uses_only_the_owner_checked_data_and_spid_calls(
    monkeypatch: pytest.MonkeyPatch, example: str
) -> None:
    from pathlib import Path

    from ioasid_core.compare import available_vendors
    from ioasid_core.plugins import new_plugin_manager
    from ioasid_core.replay import replay
    from ioasid_core.scenario import load_scenario

    def unchecked(*args: object) -> None:
        raise AssertionError("a kernel-shaped call without an owner check")

    for name in ("set_data", "attach_data", "detach_data", "attach_spid", "detach_spid"):
        monkeypatch.setattr(IoasidSpace, name, unchecked)
    scenario = load_scenario(str(Path(__file__).parent.parent / "examples" / example))
    for vendor in available_vendors(new_plugin_manager().hooks).values():
        metrics = replay(scenario, vendor).metrics
        assert not [e for e in metrics.step_errors if "owner check" in e]


def test_alloc_takes_a_numpy_range_and_refuses_other_non_ints(space: IoasidSpace) -> None:
    owner = space.create_set()
    got = space.alloc(owner, np.int64(3), np.uint16(9))  # type: ignore[arg-type]
    assert got == 3 and type(got) is int
    for lo, hi in ((0.0, 5), (0, True), ("0", 5)):
        with pytest.raises(InvalidArgumentError, match="not an integer"):
            space.alloc(owner, lo, hi)  # type: ignore[arg-type]


def test_unsubscribe_and_defer_refuse_what_they_cannot_take(space: IoasidSpace) -> None:
    with pytest.raises(InvalidArgumentError, match="not a Subscription"):
        space.unsubscribe("sub")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="not callable"):
        space.defer(42)  # type: ignore[arg-type]
