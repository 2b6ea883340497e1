"""The platform: IOMMU units, the devices behind them, address spaces, domains, bindings.

Page-request lookup policies need to know who is asking (a device, by the source ID its
vendor uses), who it belongs to (its owner and its domain), and what each (device, PASID) was
bound to. Probing and removing a unit goes through the plugin hooks, so a vendor plugin can
register or withdraw custom allocators at run time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from ioasid_core.errors import AlreadyRegisteredError, InvalidArgumentError, NotFoundError
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.units import IommuUnit

if TYPE_CHECKING:
    from ioasid_core.plugins import Hooks, ProbeReport

__all__ = ["AddressSpace", "Device", "Domain", "Platform", "owner_of"]


@attrs.define(eq=False)
class AddressSpace:
    """A process (an ``mm``) or a VM: what SVA binds a PASID to. Its own owner."""

    name: str
    kind: str = "process"
    dying: bool = False
    """Exiting: a getter that refuses dying address spaces (``mmget_not_zero``) says no."""
    owner: str = attrs.field(init=False)
    """Itself (a plain attribute, read on every page request)."""

    def __attrs_post_init__(self) -> None:
        # Interned: the page-request path compares owners per request, mostly equal ones.
        self.name = sys.intern(self.name)
        self.owner = self.name


def _set_tuple(sets: Iterable[IoasidSet]) -> tuple[IoasidSet, ...]:
    return tuple(sets)


@attrs.define(eq=False)
class Domain:
    """A translation domain (DMA, SVA, auxiliary, a guest's nested domain) and the sets it owns."""

    name: str
    owner: str
    sets: tuple[IoasidSet, ...] = attrs.field(default=(), converter=_set_tuple)
    """Change it through ``Platform.add_domain_set`` (the devices keep a copy)."""
    dying: bool = False
    """Being torn down: a handler must not service faults in it."""


@attrs.define(eq=False)
class Device:
    """An endpoint behind a unit, known to its vendor by ``source_id``.

    ``source_id`` is the requester ID (VT-d), stream ID (SMMUv3) or endpoint ID (virtio-iommu).
    """

    name: str
    unit: str
    source_id: int
    owner: str
    domain: Domain | None = None
    pasid_bits: int = 20
    prg_response_pasid_required: bool = False
    """The PCIe PRI capability bit "PRG Response PASID Required": the device expects the
    PASID in the responses to its PASID-carrying page requests (default clear, as in PCIe)."""
    pasid_limit: int = attrs.field(init=False)
    """``1 << pasid_bits``: the first PASID the device cannot carry."""
    bindings: dict[int, object] = attrs.field(init=False, factory=dict)
    """PASID -> what it is bound to on this device (kept by the Platform)."""
    domain_sets: tuple[IoasidSet, ...] = attrs.field(init=False, default=())
    """The sets its domain owns (a copy kept by the Platform: one load per page request)."""
    bound_ids: dict[int, int] = attrs.field(init=False, factory=dict)
    """``id(target)`` -> how many PASIDs of this device are bound to it (kept by the Platform;
    the targets are held by ``bindings``, so an id cannot be reused meanwhile)."""

    def __attrs_post_init__(self) -> None:
        self.pasid_limit = 1 << self.pasid_bits
        self.owner = sys.intern(self.owner)
        self.domain_sets = self.domain.sets if self.domain is not None else ()


def owner_of(data: object) -> str | None:
    """Who a piece of private data belongs to (its ``owner`` attribute), if it says."""
    owner = getattr(data, "owner", None)
    return owner if isinstance(owner, str) else None


class Platform:
    """The machine a scenario runs on: one space, its units, devices and bindings."""

    def __init__(self, space: IoasidSpace, hooks: Hooks | None = None) -> None:
        self.space = space
        self.hooks = hooks
        self.units: dict[str, IommuUnit] = {}
        self.devices: dict[str, Device] = {}
        self.domains: dict[str, Domain] = {}
        self._sources: dict[str, dict[int, Device]] = {}  # unit -> source ID -> device
        self._pasid_required: dict[str, set[int]] = {}  # unit -> source IDs (see below)

    # ------------------------------------------------------------------ units

    def probe_unit(self, unit: IommuUnit) -> ProbeReport | None:
        """Add a unit; plugins may offer custom allocators for it (through the hooks)."""
        if unit.name in self.units:
            raise AlreadyRegisteredError(f"unit {unit.name!r} is already probed")
        report = self.hooks.probe_unit(unit, self.space) if self.hooks is not None else None
        self.units[unit.name] = unit
        self._sources.setdefault(unit.name, {})
        self._pasid_required.setdefault(unit.name, set())
        return report

    def remove_unit(self, name: str, *, force: bool = False) -> list[Device]:
        """Hot-unplug a unit: its allocators are withdrawn and its devices go with it.

        Returns the devices that were behind it, so a caller can answer their pending page
        requests (see ``IopfQueue.remove_device``).
        """
        unit = self._unit(name)
        late: ExceptionGroup[Exception] | None = None
        if self.hooks is not None:
            try:
                self.hooks.remove_unit(unit, self.space, force=force)
            except ExceptionGroup as group:
                # Raised after the unit's allocators were withdrawn (a backend failed to free
                # during a forced reclaim): the unit is gone all the same.
                late = group
        gone = [d for d in self.devices.values() if d.unit == name]
        for device in gone:
            self._drop_device(device)
        del self.units[name]
        if late is not None:
            raise late
        return gone

    def _unit(self, name: str) -> IommuUnit:
        unit = self.units.get(name)
        if unit is None:
            raise NotFoundError(f"no IOMMU unit named {name!r}")
        return unit

    # ------------------------------------------------------------------ devices, domains

    def add_domain(self, name: str, owner: str, sets: Iterable[IoasidSet] = ()) -> Domain:
        if name in self.domains:
            raise AlreadyRegisteredError(f"domain {name!r} already exists")
        domain = Domain(name, owner, tuple(sets))
        self.domains[name] = domain
        return domain

    def add_domain_set(self, domain: str, set: IoasidSet) -> None:
        """Give a domain one more set (its devices see it at once)."""
        dom = self.domains.get(domain)
        if dom is None:
            raise NotFoundError(f"no domain named {domain!r}")
        if set in dom.sets:
            raise AlreadyRegisteredError(f"domain {domain!r} already owns {set}")
        dom.sets = (*dom.sets, set)
        for device in self.devices.values():
            if device.domain is dom:
                device.domain_sets = dom.sets

    def add_device(
        self,
        name: str,
        *,
        unit: str,
        source_id: int,
        owner: str,
        domain: str | None = None,
        pasid_bits: int | None = None,
        prg_response_pasid_required: bool = False,
    ) -> Device:
        """A device behind ``unit``; its PASID width is at most the unit's."""
        iommu = self._unit(unit)
        if name in self.devices:
            raise AlreadyRegisteredError(f"device {name!r} already exists")
        other = self._sources[unit].get(source_id)
        if other is not None:
            raise AlreadyRegisteredError(
                f"source ID {source_id:#x} behind unit {unit!r} is taken by {other.name!r}"
            )
        bits = iommu.pasid_bits if pasid_bits is None else min(pasid_bits, iommu.pasid_bits)
        if bits < 0:
            raise InvalidArgumentError(f"device {name!r}: PASID width {bits} is negative")
        dom = None
        if domain is not None:
            dom = self.domains.get(domain)
            if dom is None:
                raise NotFoundError(f"device {name!r}: no domain named {domain!r}")
        device = Device(name, unit, source_id, owner, dom, bits, prg_response_pasid_required)
        self.devices[name] = device
        self._sources[unit][source_id] = device
        if prg_response_pasid_required:
            self._pasid_required[unit].add(source_id)
        return device

    def remove_device(self, name: str) -> Device:
        device = self.device(name)
        self._drop_device(device)
        return device

    def _drop_device(self, device: Device) -> None:
        del self._sources[device.unit][device.source_id]
        self._pasid_required[device.unit].discard(device.source_id)
        del self.devices[device.name]

    def device(self, name: str) -> Device:
        found = self.devices.get(name)
        if found is None:
            raise NotFoundError(f"no device named {name!r}")
        return found

    def device_by_source(self, unit: str, source_id: int) -> Device | None:
        """The device a page request came from, or None for an unknown source."""
        return self._sources.get(unit, {}).get(source_id)

    def pasid_required(self, unit: str) -> set[int]:
        """The live set of source IDs behind ``unit`` whose devices require the PASID in
        page request responses (read it, never change it): a page-request path tests
        membership without a device lookup, and an empty set with one truth test."""
        self._unit(unit)
        return self._pasid_required[unit]

    def sources(self, unit: str) -> dict[int, Device]:
        """The live source-ID map of a unit (the same dict for the unit's whole life, so a
        page-request resolver can hold it)."""
        self._unit(unit)
        return self._sources[unit]

    # ------------------------------------------------------------------ bindings

    def bind(self, device: str, pasid: int, target: object) -> None:
        """Attach (device, PASID) to what it translates to (an address space, a domain)."""
        dev = self.device(device)
        if not 0 <= pasid < dev.pasid_limit:
            raise InvalidArgumentError(
                f"PASID {pasid:#x} is beyond device {device!r}'s {dev.pasid_bits}-bit width"
            )
        if pasid in dev.bindings:
            raise AlreadyRegisteredError(f"device {device!r} already has PASID {pasid:#x} bound")
        if target is None:
            raise InvalidArgumentError(f"device {device!r}: cannot bind PASID {pasid:#x} to None")
        dev.bindings[pasid] = target
        dev.bound_ids[id(target)] = dev.bound_ids.get(id(target), 0) + 1

    def unbind(self, device: str, pasid: int) -> object:
        dev = self.device(device)
        target = dev.bindings.pop(pasid, None)
        if target is None:
            raise NotFoundError(f"device {device!r} has no PASID {pasid:#x} bound")
        left = dev.bound_ids[id(target)] - 1
        if left:
            dev.bound_ids[id(target)] = left
        else:
            del dev.bound_ids[id(target)]
        return target

    def binding(self, device: str, pasid: int) -> object | None:
        """What (device, PASID) is bound to, or None."""
        return self.device(device).bindings.get(pasid)

    def bound(self, device: str) -> dict[int, object]:
        """Every PASID bound on a device (a copy)."""
        return dict(self.device(device).bindings)

    def serves(self, device: Device, data: object) -> bool:
        """True when ``data`` is the device's owner's, or bound on the device: the rule behind
        a ``cross_owner`` resolution (the page-request resolver inlines it, for speed)."""
        return owner_of(data) == device.owner or id(data) in device.bound_ids
