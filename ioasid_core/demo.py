"""A short tour of the core: the 2019 "NULL set" question in miniature.

Until the scenario runner lands, this is the README's main job. It builds one host space with
the owners the mailing-list argument was about (a native SVA process, a device driver's
private set, two VMs with guest PASIDs) and shows, step by step, what each lookup rule hands
back. Every line it prints is computed from the space, not written in.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ioasid_core.errors import IoasidError
from ioasid_core.events import Event
from ioasid_core.space import IoasidSpace
from ioasid_core.types import INVALID_IOASID, Priority, SetType

__all__ = ["Step", "run_demo"]


@attrs.frozen
class Step:
    """One line of the tour: what was done and what the space answered."""

    action: str
    outcome: str


@attrs.frozen
class AddressSpace:
    """A process or a VM (an MM-type set's token)."""

    name: str
    dying: bool = False


@attrs.frozen
class DriverContext:
    """A device driver's private object, stored as private data of its own PASID."""

    driver: str


def _try(fn: Callable[[], object]) -> str:
    try:
        value = fn()
    except IoasidError as exc:
        return f"{type(exc).__name__}: {exc}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:#x}"
    return repr(value)


def run_demo() -> list[Step]:
    """Run the tour on a fresh space and return its steps."""
    space = IoasidSpace()
    steps: list[Step] = []
    heard: list[str] = []

    def listener(name: str) -> Callable[[Event], None]:
        return lambda event: heard.append(f"{name}:{event.kind.name}")

    space.subscribe(listener("device"), priority=Priority.DEVICE)
    space.subscribe(listener("kvm"), priority=Priority.CPU)
    space.subscribe(listener("iommu"), priority=Priority.IOMMU)

    proc = AddressSpace("proc-42")
    sva = space.create_set(proc, type=SetType.MM, quota=8)
    sva_pasid = space.alloc(sva, 1, 0xFFFFF, proc)
    steps.append(Step(f"SVA bind of {proc.name}", f"PASID {sva_pasid:#x} in {sva}"))

    driver = space.create_set()
    ctx = DriverContext("idxd")
    aux_pasid = space.alloc(driver, 1, 0xFFFFF, ctx)
    steps.append(Step("driver idxd allocates a private PASID", f"{aux_pasid:#x} in {driver}"))

    steps.append(
        Step(
            f"PRQ handler, global search (NULL set) for {aux_pasid:#x}",
            _try(lambda: space.find(None, aux_pasid)) + "  <- another owner's object",
        )
    )
    steps.append(
        Step(
            f"PRQ handler, SVA-set search for {aux_pasid:#x}",
            _try(lambda: space.find(sva, aux_pasid)),
        )
    )

    def mm_alive(mm: object) -> bool:
        return isinstance(mm, AddressSpace) and not mm.dying

    steps.append(
        Step(
            f"SVA-set search for {sva_pasid:#x} with a getter",
            _try(lambda: space.find(sva, sva_pasid, mm_alive)),
        )
    )
    space.set_data_in(sva, sva_pasid, attrs.evolve(proc, dying=True))
    steps.append(
        Step(
            "the same after the process starts exiting",
            _try(lambda: space.find(sva, sva_pasid, mm_alive)) + "  (found, but dying)",
        )
    )

    vms = [AddressSpace("vm-1"), AddressSpace("vm-2")]
    for vm in vms:
        vm_set = space.create_set(vm, type=SetType.MM, quota=4)
        host = space.alloc(vm_set, 1, 0xFFFFF, vm)
        space.attach_spid_in(vm_set, host, 101)
        steps.append(Step(f"{vm.name} binds guest PASID 101", f"host PASID {host:#x} in {vm_set}"))
    vm1_set = space.find_mm_set(vms[0])
    assert vm1_set is not None
    steps.append(
        Step(
            f"{vms[0].name} looks up guest PASID 101",
            _try(lambda: space.find_by_spid(vm1_set, 101)),
        )
    )

    heard.clear()
    space.get(sva, sva_pasid)
    space.free(sva, sva_pasid)
    steps.append(
        Step(
            f"free {sva_pasid:#x} while the IOMMU driver holds a reference",
            f"state {space.state(sva_pasid).name}; notified in order: {', '.join(heard)}",
        )
    )
    steps.append(
        Step(
            "the driver drops its reference",
            f"reclaimed: {space.put(None, sva_pasid)}; allocated now: {len(space)}",
        )
    )
    steps.append(
        Step(
            "driver idxd tries to free vm-1's host PASID",
            _try(lambda: space.free(driver, space.find_by_spid(vm1_set, 101))),
        )
    )
    steps.append(
        Step(
            "INVALID_IOASID",
            f"{INVALID_IOASID:#x}; capacity {space.capacity:#x}, not reserved {space.available}",
        )
    )
    return steps
