"""Property: under any sequence of guest allocations, frees and unit (un)plugs, two VMs'
guest PASIDs and the host PASIDs held for them stay in step, within each VM's quota."""

from __future__ import annotations

from typing import Literal

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.plugin import (
    AddressSpace,
    BusyError,
    GuestIommu,
    GuestVm,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    NoSpaceError,
    SetType,
)
from ioasid_vtd.guest import VcmdGuestPasids

UNITS = ("v0", "v1")
QUOTAS = (3, 5)

Op = tuple[Literal["alloc", "free", "plug", "unplug"], int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "alloc", "free", "plug", "unplug"]),
        st.integers(0, 1),  # which VM
        st.integers(0, 7),  # which unit / which live PASID
    ),
    max_size=60,
)


@attrs.define(eq=False)
class Vm:
    host_set: IoasidSet
    space: IoasidSpace
    guest_set: IoasidSet
    iommu: GuestIommu
    plugged: set[str]
    live: list[int] = attrs.field(factory=list)
    through_host: set[int] = attrs.field(factory=set)
    """Guest PASIDs that the host handed out (allocated while the VCMD allocator was active)."""


def start(host: IoasidSpace, index: int) -> Vm:
    host_set = host.create_set(
        AddressSpace(f"vm{index}", "vm"), quota=QUOTAS[index], type=SetType.MM
    )
    space = IoasidSpace(64)
    iommu = VcmdGuestPasids().attach(
        GuestVm(name=f"vm{index}", host=host, host_set=host_set, space=space)
    )
    for unit in UNITS:
        iommu.plug(unit)
    return Vm(host_set, space, space.create_set(), iommu, set(UNITS))


def apply(vm: Vm, op: str, arg: int) -> None:
    if op == "alloc":
        through_host = vm.space.active_allocator is not None
        try:
            pasid = vm.space.alloc(vm.guest_set, 1, 63)
        except NoSpaceError:
            assert through_host and vm.host_set.count == vm.host_set.quota
            return
        vm.live.append(pasid)
        if through_host:
            vm.through_host.add(pasid)
    elif op == "free" and vm.live:
        pasid = vm.live.pop(arg % len(vm.live))
        vm.space.free(vm.guest_set, pasid)
        vm.through_host.discard(pasid)
    elif op == "plug":
        unit = UNITS[arg % 2]
        try:
            vm.iommu.plug(unit)
        except IoasidError:
            assert unit in vm.plugged
            return
        vm.plugged.add(unit)
    elif op == "unplug":
        unit = UNITS[arg % 2]
        try:
            vm.iommu.unplug(unit)
        except BusyError:
            # The last unit of a group whose IDs are still in use stays.
            assert vm.plugged == {unit} and vm.through_host
            return
        except IoasidError:
            assert unit not in vm.plugged
            return
        vm.plugged.discard(unit)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_guest_and_host_pasids_stay_in_step(script: list[Op]) -> None:
    host = IoasidSpace(64)
    vms = [start(host, 0), start(host, 1)]
    for op, which, arg in script:
        apply(vms[which], op, arg)
        for vm in vms:
            held = set(vm.host_set.ioasids())
            assert held == vm.through_host  # every host PASID is a live guest PASID, and back
            assert len(held) <= (vm.host_set.quota or 0)
            assert sorted(vm.live) == vm.guest_set.ioasids()
        assert not set(vms[0].host_set.ioasids()) & set(vms[1].host_set.ioasids())
