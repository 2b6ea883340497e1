"""Custom allocators: groups sharing an ID space, activation, unregistering, backend failures."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from ioasid_core import (
    INVALID_IOASID,
    AllocatorBusyError,
    AllocatorError,
    AllocatorOps,
    AlreadyRegisteredError,
    BusyError,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidSpace,
    IoasidState,
    NotFoundError,
    QuotaExceededError,
    ReentrancyError,
)

Unchanged = Callable[..., AbstractContextManager[None]]
AllocFn = Callable[[int, int, object], int]
FreeFn = Callable[[int, object], None]


class Host:
    """The backend's ID pool (the host behind every vIOMMU). Hands out the HIGHEST free ID, so
    a test can tell its numbers from the default allocator's."""

    def __init__(self) -> None:
        self.used: set[int] = set()
        self.calls: list[tuple[object, ...]] = []
        self.alloc_log: list[str] = []  # the unit (pdata) of each alloc call
        self.free_log: list[tuple[int, str]] = []  # (ID, unit) of each free call
        self.fail_free: set[int] = set()


class Unit:
    """One IOMMU unit: the ``pdata`` of its ops."""

    def __init__(self, host: Host, name: str) -> None:
        self.host = host
        self.name = name


def vcmd_alloc(lo: int, hi: int, pdata: object) -> int:
    assert isinstance(pdata, Unit)
    host = pdata.host
    host.calls.append(("alloc", lo, hi, pdata.name))
    host.alloc_log.append(pdata.name)
    for n in range(hi, lo - 1, -1):
        if n not in host.used:
            host.used.add(n)
            return n
    return INVALID_IOASID


def vcmd_free(ioasid: int, pdata: object) -> None:
    assert isinstance(pdata, Unit)
    host = pdata.host
    host.calls.append(("free", ioasid, pdata.name))
    host.free_log.append((ioasid, pdata.name))
    if ioasid in host.fail_free:
        raise OSError(f"backend refused to free {ioasid:#x}")
    host.used.discard(ioasid)


def new_kind() -> tuple[AllocFn, FreeFn]:
    """A new pair of functions: ops built from it form a group of their own."""

    def alloc(lo: int, hi: int, pdata: object) -> int:
        return vcmd_alloc(lo, hi, pdata)

    def free(ioasid: int, pdata: object) -> None:
        vcmd_free(ioasid, pdata)

    return alloc, free


def vcmd_ops(host: Host, name: str) -> AllocatorOps[object]:
    """An ops of the shared VT-d kind: same functions for every unit, its own pdata."""
    return AllocatorOps(vcmd_alloc, vcmd_free, pdata=Unit(host, name))


def kind_ops(kind: tuple[AllocFn, FreeFn], host: Host, name: str) -> AllocatorOps[object]:
    return AllocatorOps(kind[0], kind[1], pdata=Unit(host, name))


def allocs_by(host: Host) -> list[str]:
    return host.alloc_log


def frees_by(host: Host) -> list[tuple[int, str]]:
    return host.free_log


# --- AllocatorOps and activation -------------------------------------------------------------


def test_allocator_ops_keeps_its_functions_and_pdata() -> None:
    unit = Unit(Host(), "u")
    ops = AllocatorOps(vcmd_alloc, vcmd_free, pdata=unit)
    assert ops.alloc is vcmd_alloc
    assert ops.free is vcmd_free
    assert ops.pdata is unit
    assert AllocatorOps(vcmd_alloc, vcmd_free).pdata is None


def test_default_allocator_is_active_at_first(space: IoasidSpace) -> None:
    assert space.active_allocator is None


def test_first_custom_allocator_becomes_active_when_default_holds_no_ids(
    space: IoasidSpace,
) -> None:
    s = space.create_set()
    host = Host()
    ops = vcmd_ops(host, "u1")
    space.register_allocator(ops)
    assert space.active_allocator is ops
    i = space.alloc(s, 3, 20, private="p")
    assert i == 20  # the backend's choice, not the default's lowest
    assert host.calls == [("alloc", 3, 20, "u1")]
    assert space.find(s, i) == "p"
    assert space.find_set(i) is s
    space.free(s, i)
    assert host.calls[-1] == ("free", 20, "u1")


def test_default_ids_freed_before_registering_do_not_block_it(space: IoasidSpace) -> None:
    s = space.create_set()
    space.free(s, space.alloc(s, 0, 63))
    ops = vcmd_ops(Host(), "u1")
    space.register_allocator(ops)
    assert space.active_allocator is ops


@pytest.mark.parametrize("pending", [False, True], ids=["idle-id", "free-pending-id"])
def test_registering_while_the_default_holds_ids_is_busy_and_registers_nothing(
    space: IoasidSpace, unchanged: Unchanged, pending: bool
) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63)
    if pending:
        space.get(s, i)
        space.free(s, i)
    ops = vcmd_ops(Host(), "u1")
    with unchanged(space, s), pytest.raises(AllocatorBusyError):
        space.register_allocator(ops)
    assert space.active_allocator is None
    with pytest.raises(NotFoundError):
        space.unregister_allocator(ops)
    # Once the default allocator is empty the same ops registers fine.
    space.put(None, i) if pending else space.free(s, i)
    space.register_allocator(ops)
    assert space.active_allocator is ops


# --- groups ----------------------------------------------------------------------------------


def test_ops_with_equal_callables_share_one_id_space(space: IoasidSpace) -> None:
    s = space.create_set()
    host = Host()
    u1, u2 = vcmd_ops(host, "u1"), vcmd_ops(host, "u2")
    space.register_allocator(u1)
    i = space.alloc(s, 0, 63)
    space.register_allocator(u2)  # joins u1's group: the IDs stay, u1 stays in charge
    assert space.active_allocator is u1
    j = space.alloc(s, 0, 63)
    assert (i, j) == (63, 62)
    assert allocs_by(host) == ["u1", "u1"]
    assert space.state(i) is IoasidState.IDLE


def test_a_group_with_other_functions_waits_inactive(space: IoasidSpace) -> None:
    s = space.create_set()
    host = Host()
    first = vcmd_ops(host, "first")
    other = kind_ops(new_kind(), host, "other")
    space.register_allocator(first)
    space.register_allocator(other)
    assert space.active_allocator is first
    space.alloc(s, 0, 63)
    assert allocs_by(host) == ["first"]


def test_a_new_group_may_register_while_a_custom_one_holds_ids(space: IoasidSpace) -> None:
    s = space.create_set()
    host = Host()
    space.register_allocator(vcmd_ops(host, "first"))
    space.alloc(s, 0, 63)
    space.register_allocator(kind_ops(new_kind(), host, "second"))


@pytest.mark.parametrize(
    "which", ["active-head", "active-member", "inactive-head", "inactive-member"]
)
def test_registering_any_member_twice_is_already_registered(
    space: IoasidSpace, unchanged: Unchanged, which: str
) -> None:
    """**fix**: the kernel only caught the group head."""
    s = space.create_set()
    host = Host()
    kind = new_kind()
    members = {
        "active-head": vcmd_ops(host, "a1"),
        "active-member": vcmd_ops(host, "a2"),
        "inactive-head": kind_ops(kind, host, "b1"),
        "inactive-member": kind_ops(kind, host, "b2"),
    }
    for ops in members.values():
        space.register_allocator(ops)
    space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(AlreadyRegisteredError):
        space.register_allocator(members[which])
    # It is registered once: one unregister removes it, a second one does not find it.
    space.unregister_allocator(members[which], force=True)
    with pytest.raises(NotFoundError):
        space.unregister_allocator(members[which])


def test_unregistering_a_member_of_a_shared_group_keeps_its_ids(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    host = Host()
    u1, u2 = vcmd_ops(host, "u1"), vcmd_ops(host, "u2")
    space.register_allocator(u1)
    space.register_allocator(u2)
    i = space.alloc(s, 0, 63, private="kept")
    space.get(s, i)
    events.clear()
    space.unregister_allocator(u1)  # the head: no BusyError, the group lives on
    assert events == []
    assert space.find(s, i) == "kept"
    assert space.state(i) is IoasidState.ACTIVE
    assert s.ioasids() == [i]
    assert frees_by(host) == []


def test_group_uses_the_pdata_of_its_first_still_registered_member(space: IoasidSpace) -> None:
    """**fix**: the kernel kept using the first member's pdata after it was unregistered."""
    s = space.create_set()
    host = Host()
    u1, u2, u3 = vcmd_ops(host, "u1"), vcmd_ops(host, "u2"), vcmd_ops(host, "u3")
    for ops in (u1, u2, u3):
        space.register_allocator(ops)
    i = space.alloc(s, 0, 63)
    space.unregister_allocator(u2)
    assert space.active_allocator is u1
    space.unregister_allocator(u1)
    assert space.active_allocator is u3
    j = space.alloc(s, 0, 63)
    space.free(s, i)
    assert allocs_by(host) == ["u1", "u3"]
    assert frees_by(host) == [(i, "u3")]
    space.register_allocator(u1)  # back at the end of the group
    assert space.active_allocator is u3
    space.free(s, j)
    assert frees_by(host)[-1] == (j, "u3")


def test_removing_the_last_member_switches_to_the_next_group_in_order(
    space: IoasidSpace,
) -> None:
    s = space.create_set()
    host = Host()
    a, b, c = (kind_ops(new_kind(), host, n) for n in "abc")
    for ops in (a, b, c):
        space.register_allocator(ops)
    assert space.active_allocator is a
    space.unregister_allocator(a)
    assert space.active_allocator is b
    space.alloc(s, 0, 63)
    assert allocs_by(host) == ["b"]
    space.free_all(s)
    space.unregister_allocator(b)
    assert space.active_allocator is c
    space.unregister_allocator(c)
    assert space.active_allocator is None
    # Back on the default allocator: the lowest free ID again.
    assert space.alloc(s, 5, 63) == 5


def test_removing_an_inactive_group_leaves_the_active_one(space: IoasidSpace) -> None:
    s = space.create_set()
    host = Host()
    a, b, c = (kind_ops(new_kind(), host, n) for n in "abc")
    for ops in (a, b, c):
        space.register_allocator(ops)
    space.alloc(s, 0, 63)
    space.unregister_allocator(b)
    assert space.active_allocator is a
    space.free_all(s)
    space.unregister_allocator(a)
    assert space.active_allocator is c


def test_registration_rule_applies_again_once_back_on_the_default(space: IoasidSpace) -> None:
    s = space.create_set()
    ops = vcmd_ops(Host(), "u")
    space.register_allocator(ops)
    space.unregister_allocator(ops)
    space.alloc(s, 0, 63)
    with pytest.raises(AllocatorBusyError):
        space.register_allocator(ops)


@pytest.mark.parametrize("case", ["never-registered", "same-functions-not-registered"])
def test_unregistering_an_unknown_allocator_is_not_found(
    space: IoasidSpace, unchanged: Unchanged, case: str
) -> None:
    s = space.create_set()
    host = Host()
    member = vcmd_ops(host, "member")
    space.register_allocator(member)
    space.alloc(s, 0, 63)
    stranger = (
        vcmd_ops(host, "stranger")
        if case == "same-functions-not-registered"
        else kind_ops(new_kind(), host, "x")
    )
    with unchanged(space, s), pytest.raises(NotFoundError):
        space.unregister_allocator(stranger)
    assert space.active_allocator is member


def test_removing_a_group_that_holds_ids_is_busy_and_changes_nothing(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    """**fix**: the kernel silently orphaned the IDs."""
    s = space.create_set()
    host = Host()
    ops = vcmd_ops(host, "u")
    nxt = kind_ops(new_kind(), host, "next")
    space.register_allocator(ops)
    space.register_allocator(nxt)
    i = space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(BusyError):
        space.unregister_allocator(ops)
    assert space.active_allocator is ops
    assert frees_by(host) == []
    space.free(s, i)
    space.unregister_allocator(ops)
    assert space.active_allocator is nxt


def test_forced_unregister_reclaims_every_id_with_free_events_for_unfreed_ones(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set(quota=10)
    doomed = space.create_set(quota=5)
    host = Host()
    ops = vcmd_ops(host, "u")
    space.register_allocator(ops)
    idle = space.alloc(s, 0, 63)
    active = space.alloc(s, 0, 63)
    space.get(s, active)
    pending = space.alloc(s, 0, 63)
    space.get(s, pending)
    space.free(s, pending)
    bound = space.alloc(s, 0, 63)
    space.attach_spid(bound, 9)
    orphan = space.alloc(doomed, 0, 63)
    assert space.free_set(doomed) is False
    events.clear()

    space.unregister_allocator(ops, force=True)

    assert space.active_allocator is None
    freed = [e.ioasid for e in events if e.kind is EventKind.FREE]
    assert sorted(freed) == sorted([idle, active, bound, orphan])  # not `pending` again
    assert [e.set for e in events if e.kind is EventKind.SET_FREE] == [doomed]
    assert sorted(i for i, _ in frees_by(host)) == sorted([idle, active, pending, bound, orphan])
    for i in (idle, active, pending, bound, orphan):
        with pytest.raises(NotFoundError):
            space.state(i)
    with pytest.raises(NotFoundError):
        space.find_by_spid(s, 9)
    assert s.count == 0
    assert s.ioasids() == []
    assert space.available == 54  # the destroyed set's quota came back
    assert space.alloc(s, 0, 63) == 0  # the default allocator again


def test_forced_unregister_of_an_empty_group_is_a_plain_unregister(
    space: IoasidSpace, events: list[Event]
) -> None:
    ops = vcmd_ops(Host(), "u")
    space.register_allocator(ops)
    events.clear()
    space.unregister_allocator(ops, force=True)
    assert events == []
    assert space.active_allocator is None


def test_forced_unregister_raises_backend_free_errors_after_the_switch(
    space: IoasidSpace,
) -> None:
    s = space.create_set()
    host = Host()
    ops = vcmd_ops(host, "u")
    space.register_allocator(ops)
    ids = [space.alloc(s, 0, 63) for _ in range(3)]
    host.fail_free = {ids[0], ids[2]}
    with pytest.raises(ExceptionGroup) as info:
        space.unregister_allocator(ops, force=True)
    assert len(_leaves(info.value)) == 2
    assert space.active_allocator is None  # the switch itself is done
    with pytest.raises(NotFoundError):
        space.unregister_allocator(ops)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out


# --- a failing backend -----------------------------------------------------------------------


class Scripted:
    """A backend whose ``alloc`` answers are given in advance (an int, or an exception)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.alloc_calls: list[tuple[int, int]] = []
        self.freed: list[int] = []


def scripted_alloc(lo: int, hi: int, pdata: object) -> int:
    assert isinstance(pdata, Scripted)
    pdata.alloc_calls.append((lo, hi))
    answer = pdata.answers.pop(0)
    if isinstance(answer, Exception):
        raise answer
    return answer


def scripted_free(ioasid: int, pdata: object) -> None:
    assert isinstance(pdata, Scripted)
    pdata.freed.append(ioasid)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(INVALID_IOASID, id="INVALID_IOASID"),
        pytest.param(RuntimeError("vcmd timed out"), id="raises"),
        pytest.param(9, id="below-min"),
        pytest.param(21, id="above-max"),
        pytest.param(64, id="beyond-capacity"),
        pytest.param(-1, id="negative"),
        pytest.param(12, id="duplicate"),
    ],
)
def test_bad_custom_alloc_is_allocator_error_and_nothing_is_freed_at_the_backend(
    space: IoasidSpace, unchanged: Unchanged, answer: int | Exception
) -> None:
    """**fix**: the kernel called ``ops.free`` on a duplicate, freeing someone else's ID."""
    s = space.create_set(quota=5)
    backend = Scripted(12, answer)
    space.register_allocator(AllocatorOps(scripted_alloc, scripted_free, pdata=backend))
    assert space.alloc(s, 10, 20, private="first") == 12
    with unchanged(space, s, ids=[9, 21]), pytest.raises(AllocatorError):
        space.alloc(s, 10, 20)
    assert backend.alloc_calls == [(10, 20), (10, 20)]
    assert backend.freed == []
    assert space.find(s, 12) == "first"


def test_custom_alloc_exception_is_chained_to_the_allocator_error(space: IoasidSpace) -> None:
    s = space.create_set()
    boom = RuntimeError("vcmd timed out")
    space.register_allocator(AllocatorOps(scripted_alloc, scripted_free, pdata=Scripted(boom)))
    with pytest.raises(AllocatorError) as info:
        space.alloc(s, 0, 63)
    assert info.value.__cause__ is boom or info.value.__context__ is boom


@pytest.mark.parametrize("failure", ["range", "destroyed-set", "pending-set", "quota"])
def test_custom_alloc_is_not_called_when_an_earlier_check_fails(
    space: IoasidSpace, failure: str
) -> None:
    s = space.create_set(quota=1)
    backend = Scripted(5, 6)
    space.register_allocator(AllocatorOps(scripted_alloc, scripted_free, pdata=backend))
    if failure == "quota":
        space.alloc(s, 0, 63)
        backend.alloc_calls.clear()
        with pytest.raises(QuotaExceededError):
            space.alloc(s, 0, 63)
    elif failure == "range":
        with pytest.raises(InvalidArgumentError):
            space.alloc(s, 0, 64)
    else:
        if failure == "pending-set":
            space.alloc(s, 0, 63)
            backend.alloc_calls.clear()
        space.free_set(s)
        with pytest.raises(InvalidArgumentError):
            space.alloc(s, 0, 63)
    assert backend.alloc_calls == []


def test_backend_free_failure_is_allocator_error_and_the_id_stays(
    space: IoasidSpace, unchanged: Unchanged, events: list[Event]
) -> None:
    s = space.create_set(quota=3)
    host = Host()
    space.register_allocator(vcmd_ops(host, "u"))
    i = space.alloc(s, 0, 63, private="p")
    host.fail_free = {i}
    events.clear()
    with unchanged(space, s), pytest.raises(AllocatorError):
        space.free(s, i)
    assert space.state(i) is IoasidState.IDLE
    host.fail_free = set()
    space.free(s, i)
    assert [e.kind for e in events] == [EventKind.FREE]  # once, on the call that worked


def test_backend_free_failure_on_the_last_put_is_allocator_error_and_the_id_stays(
    space: IoasidSpace, unchanged: Unchanged, events: list[Event]
) -> None:
    s = space.create_set()
    host = Host()
    space.register_allocator(vcmd_ops(host, "u"))
    i = space.alloc(s, 0, 63)
    space.get(s, i)
    space.free(s, i)
    host.fail_free = {i}
    events.clear()
    with unchanged(space, s), pytest.raises(AllocatorError):
        space.put(s, i)
    assert space.state(i) is IoasidState.FREE_PENDING
    host.fail_free = set()
    assert space.put(s, i) is True
    assert events == []  # FREE went out when the owner freed it


def test_backend_free_failure_in_free_all_is_allocator_error(space: IoasidSpace) -> None:
    s = space.create_set()
    host = Host()
    space.register_allocator(vcmd_ops(host, "u"))
    i = space.alloc(s, 0, 63)
    host.fail_free = {i}
    with pytest.raises(AllocatorError):
        space.free_all(s)
    assert space.state(i) is IoasidState.IDLE


# --- callbacks from the allocator ------------------------------------------------------------


def test_custom_alloc_calling_its_own_space_is_reentrancy_error_unwrapped(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    s = space.create_set()

    def alloc(lo: int, hi: int, pdata: object) -> int:
        space.find_set(0)
        return lo

    space.register_allocator(AllocatorOps(alloc, scripted_free))
    with unchanged(space, s), pytest.raises(ReentrancyError) as info:
        space.alloc(s, 0, 63)
    assert not isinstance(info.value, AllocatorError)


def test_custom_free_calling_its_own_space_is_reentrancy_error(space: IoasidSpace) -> None:
    s = space.create_set()
    seen: list[BaseException] = []

    def free(ioasid: int, pdata: object) -> None:
        try:
            space.state(ioasid)
        except ReentrancyError as exc:
            seen.append(exc)

    space.register_allocator(AllocatorOps(vcmd_alloc, free, pdata=Unit(Host(), "u")))
    i = space.alloc(s, 0, 63)
    space.free(s, i)
    assert len(seen) == 1
    with pytest.raises(NotFoundError):
        space.state(i)


def test_guest_allocator_may_call_the_host_space() -> None:
    """A guest's vcmd allocator asks the host's space: another space is not re-entry."""
    host_space = IoasidSpace(capacity=1024)
    vm = host_space.create_set(quota=8)
    guest = IoasidSpace(capacity=1024)

    def alloc(lo: int, hi: int, pdata: object) -> int:
        return host_space.alloc(vm, lo, hi)

    def free(ioasid: int, pdata: object) -> None:
        host_space.free(vm, ioasid)

    guest.register_allocator(AllocatorOps(alloc, free))
    host_space.alloc(vm, 1, 1023)
    gs = guest.create_set()
    assert guest.alloc(gs, 1, 1023) == 2
    assert vm.ioasids() == [1, 2]
    guest.free(gs, 2)
    assert vm.ioasids() == [1]


def test_defer_from_a_custom_allocator_runs_before_alloc_returns(space: IoasidSpace) -> None:
    s = space.create_set()
    ran: list[object] = []

    def alloc(lo: int, hi: int, pdata: object) -> int:
        space.defer(lambda: ran.append(space.find(s, lo)))
        return lo

    space.register_allocator(AllocatorOps(alloc, scripted_free))
    space.alloc(s, 4, 63, private="data")
    assert ran == ["data"]
