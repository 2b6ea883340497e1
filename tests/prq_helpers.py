"""Small hand-built platforms and fakes for the page-request tests.

Imported by the ``test_platform``, ``test_prq_policy``, ``test_iopf``, ``test_ring``,
``test_pipeline`` and ``test_prq_properties`` modules as ``tests.prq_helpers``.

The world (``build_world``): one space (256 IDs), one unit ``iommu0`` (8-bit PASIDs) and:

- the SVA library's set (``sva_set``, shared by every process) holding ``pasid_a`` (process
  ``proc-a``) and ``pasid_b`` (process ``proc-b``);
- a driver-private set holding ``pasid_drv``, whose private data is a ``DriverObject`` owned by
  ``driver`` (the VT-d ``intel_svm``-style object a NULL-set search can stumble on);
- two VMs with one MM set each, ``pasid_vm1`` and ``pasid_vm2``, whose data is the VM itself;
- the devices ``dev-a`` (owned by ``proc-a``, domain ``dom-a`` owning the SVA set, bound to
  ``pasid_a`` only), ``dev-vm1`` and ``dev-vm2`` (each in its VM's domain, bound to its VM's
  PASID) and ``dev-narrow`` (``proc-a``'s, a 2-bit PASID width, no binding).

Every PASID is allocated at 4 or above, so that ``dev-narrow`` can never reach one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ioasid_core.allocators import AllocatorOps
from ioasid_core.markers import hookimpl
from ioasid_core.platform import AddressSpace, Platform
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.types import INVALID_IOASID, SetType
from ioasid_core.units import IommuUnit

UNIT = "iommu0"
UNIT_BITS = 8
SRC_A = 0x10
SRC_VM1 = 0x20
SRC_VM2 = 0x30
SRC_NARROW = 0x40
SRC_UNKNOWN = 0x99


@attrs.define(eq=False)
class DriverObject:
    """A driver's own private data for a PASID (not an address space)."""

    owner: str = "driver"


@attrs.define(eq=False)
class World:
    space: IoasidSpace
    platform: Platform
    sva_set: IoasidSet
    driver_set: IoasidSet
    vm1_set: IoasidSet
    vm2_set: IoasidSet
    proc_a: AddressSpace
    proc_b: AddressSpace
    vm1: AddressSpace
    vm2: AddressSpace
    drv: DriverObject
    pasid_a: int
    pasid_b: int
    pasid_drv: int
    pasid_vm1: int
    pasid_vm2: int
    free_pasid: int
    """A PASID inside every width that nobody allocated."""


def build_world() -> World:
    space = IoasidSpace(capacity=1 << UNIT_BITS)
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name=UNIT, vendor="generic", pasid_bits=UNIT_BITS))
    top = (1 << UNIT_BITS) - 1

    sva_set = space.create_set()
    driver_set = space.create_set()
    proc_a = AddressSpace("proc-a")
    proc_b = AddressSpace("proc-b")
    vm1 = AddressSpace("vm1", kind="vm")
    vm2 = AddressSpace("vm2", kind="vm")
    vm1_set = space.create_set(vm1, type=SetType.MM)
    vm2_set = space.create_set(vm2, type=SetType.MM)
    drv = DriverObject()

    pasid_a = space.alloc(sva_set, 4, top, proc_a)
    pasid_b = space.alloc(sva_set, 4, top, proc_b)
    pasid_drv = space.alloc(driver_set, 4, top, drv)
    pasid_vm1 = space.alloc(vm1_set, 4, top, vm1)
    pasid_vm2 = space.alloc(vm2_set, 4, top, vm2)

    platform.add_domain("dom-a", "proc-a", [sva_set])
    platform.add_domain("dom-vm1", "vm1", [vm1_set])
    platform.add_domain("dom-vm2", "vm2", [vm2_set])
    platform.add_device("dev-a", unit=UNIT, source_id=SRC_A, owner="proc-a", domain="dom-a")
    platform.add_device("dev-vm1", unit=UNIT, source_id=SRC_VM1, owner="vm1", domain="dom-vm1")
    platform.add_device("dev-vm2", unit=UNIT, source_id=SRC_VM2, owner="vm2", domain="dom-vm2")
    platform.add_device(
        "dev-narrow", unit=UNIT, source_id=SRC_NARROW, owner="proc-a", domain="dom-a", pasid_bits=2
    )
    platform.bind("dev-a", pasid_a, proc_a)
    platform.bind("dev-vm1", pasid_vm1, vm1)
    platform.bind("dev-vm2", pasid_vm2, vm2)

    free_pasid = next(i for i in range(4, top) if i not in space)
    return World(
        space,
        platform,
        sva_set,
        driver_set,
        vm1_set,
        vm2_set,
        proc_a,
        proc_b,
        vm1,
        vm2,
        drv,
        pasid_a,
        pasid_b,
        pasid_drv,
        pasid_vm1,
        pasid_vm2,
        free_pasid,
    )


def req(
    source: int,
    pasid: int | None = None,
    *,
    grpid: int = 0,
    last: bool = True,
    perm: Perm = Perm.READ,
    addr: int = 0x1000,
    needs_pasid: bool = False,
) -> PageRequest:
    """A page request; ``pasid=None`` means no PASID (PASID_VALID clear)."""
    return PageRequest(
        device=source,
        pasid=INVALID_IOASID if pasid is None else pasid,
        pasid_valid=pasid is not None,
        grpid=grpid,
        last=last,
        perm=perm,
        addr=addr,
        needs_pasid=needs_pasid,
    )


def make_pipeline(
    world: World,
    policy: LookupPolicy,
    *,
    vendor: VendorPrq | None = None,
    ring_entries: int = 64,
) -> PrqPipeline:
    return PrqPipeline(
        world.platform,
        UNIT,
        vendor if vendor is not None else GenericPrq(),
        policy=policy,
        sva_set=world.sva_set,
        ring_entries=ring_entries,
    )


def run(pipeline: PrqPipeline, *requests: PageRequest) -> list[PageResponse]:
    """Submit every request (asserting the ring took it) and service the ring."""
    for request in requests:
        assert pipeline.submit(request)
    return pipeline.service()


def codes(responses: Sequence[PageResponse]) -> list[ResponseCode]:
    return [r.code for r in responses]


def platform_state(platform: Platform) -> dict[str, object]:
    """Everything observable about a platform, for "a failed call changed nothing"."""
    devices: dict[str, object] = {}
    for name, dev in platform.devices.items():
        devices[name] = (
            dev.unit,
            dev.source_id,
            dev.owner,
            None if dev.domain is None else dev.domain.name,
            dev.pasid_bits,
            platform.device_by_source(dev.unit, dev.source_id) is dev,
            {pasid: id(t) for pasid, t in platform.bound(name).items()},
        )
    return {
        "units": dict(platform.units),
        "devices": devices,
        "domains": {n: (d.owner, [s.id for s in d.sets]) for n, d in platform.domains.items()},
        "active_allocator": platform.space.active_allocator,
    }


# -- fake plugins


class Backend:
    """A custom allocator's backend; ``fail_free`` makes every free raise."""

    def __init__(self, *, fail_free: bool = False) -> None:
        self.used: set[int] = set()
        self.fail_free = fail_free

    def alloc(self, lo: int, hi: int, pdata: object) -> int:
        n = next(i for i in range(lo, hi + 1) if i not in self.used)
        self.used.add(n)
        return n

    def free(self, ioasid: int, pdata: object) -> None:
        if self.fail_free:
            raise OSError(f"backend lost {ioasid:#x}")
        self.used.discard(ioasid)


class AllocPlugin:
    """Offers one AllocatorOps for the unit named ``unit``; records removals."""

    def __init__(self, unit: str, *, fail_free: bool = False, junk: bool = False) -> None:
        self.unit = unit
        self.backend = Backend(fail_free=fail_free)
        self.ops: AllocatorOps[Any] = AllocatorOps(
            alloc=self.backend.alloc, free=self.backend.free, pdata=unit
        )
        self.junk = junk
        self.probed: list[str] = []
        self.removed: list[str] = []

    @hookimpl
    def ioasid_allocators_for_unit(self, unit: IommuUnit) -> Sequence[AllocatorOps[Any]] | None:
        self.probed.append(unit.name)
        if unit.name != self.unit:
            return None
        if self.junk:
            return ["not an allocator"]  # type: ignore[list-item]  # junk on purpose
        return [self.ops]

    @hookimpl
    def ioasid_unit_removed(self, unit: IommuUnit) -> None:
        self.removed.append(unit.name)


class VendorPlugin:
    """Hands over whatever ``ioasid_prq_vendors`` result it was given."""

    def __init__(self, result: object) -> None:
        self.result = result
        self.calls = 0

    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq] | None:
        self.calls += 1
        return self.result  # type: ignore[return-value]  # may be junk on purpose


def lookup(source: int, pasid: int | None = None) -> tuple[int, bool, int]:
    """What a resolver reads of ``req(source, pasid)``: ``resolve(*lookup(...))``."""
    return (source, pasid is not None, INVALID_IOASID if pasid is None else pasid)
