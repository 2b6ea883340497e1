"""The platform: IOMMU units, the devices behind them, address spaces, domains, bindings.

Page-request lookup policies need to know who is asking (a device, by the source ID its
vendor uses), who it belongs to (its owner and its domain), and what each (device, PASID) was
bound to. Probing and removing a unit goes through the plugin hooks, so a vendor plugin can
register or withdraw custom allocators at run time.
"""

from __future__ import annotations

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
        self.owner = self.name


@attrs.define(eq=False)
class Domain:
    """A translation domain (DMA, SVA, auxiliary, a guest's nested domain) and the sets it owns."""

    name: str
    owner: str
    sets: list[IoasidSet] = attrs.field(factory=list)


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
        self._by_source: dict[tuple[str, int], Device] = {}
        self._bindings: dict[tuple[str, int], object] = {}  # (device name, pasid) -> target
        self._bound: dict[str, dict[int, object]] = {}  # device name -> pasid -> target
        self._bound_ids: dict[str, dict[int, int]] = {}  # device name -> id(target) -> count

    # ------------------------------------------------------------------ units

    def probe_unit(self, unit: IommuUnit) -> ProbeReport | None:
        """Add a unit; plugins may offer custom allocators for it (through the hooks)."""
        if unit.name in self.units:
            raise AlreadyRegisteredError(f"unit {unit.name!r} is already probed")
        report = self.hooks.probe_unit(unit, self.space) if self.hooks is not None else None
        self.units[unit.name] = unit
        return report

    def remove_unit(self, name: str, *, force: bool = False) -> list[Device]:
        """Hot-unplug a unit: its allocators are withdrawn and its devices go with it.

        Returns the devices that were behind it, so a caller can answer their pending page
        requests (see ``IopfQueue.remove_device``).
        """
        unit = self._unit(name)
        if self.hooks is not None:
            self.hooks.remove_unit(unit, self.space, force=force)
        gone = [d for d in self.devices.values() if d.unit == name]
        for device in gone:
            self._drop_device(device)
        del self.units[name]
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
        domain = Domain(name, owner, list(sets))
        self.domains[name] = domain
        return domain

    def add_device(
        self,
        name: str,
        *,
        unit: str,
        source_id: int,
        owner: str,
        domain: str | None = None,
        pasid_bits: int | None = None,
    ) -> Device:
        """A device behind ``unit``; its PASID width is at most the unit's."""
        iommu = self._unit(unit)
        if name in self.devices:
            raise AlreadyRegisteredError(f"device {name!r} already exists")
        if (unit, source_id) in self._by_source:
            other = self._by_source[(unit, source_id)]
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
        device = Device(name, unit, source_id, owner, dom, bits)
        self.devices[name] = device
        self._by_source[(unit, source_id)] = device
        self._bound[name] = {}
        self._bound_ids[name] = {}
        return device

    def remove_device(self, name: str) -> Device:
        device = self.device(name)
        self._drop_device(device)
        return device

    def _drop_device(self, device: Device) -> None:
        for pasid in list(self._bound.pop(device.name, {})):
            del self._bindings[(device.name, pasid)]
        del self._bound_ids[device.name]
        del self._by_source[(device.unit, device.source_id)]
        del self.devices[device.name]

    def device(self, name: str) -> Device:
        found = self.devices.get(name)
        if found is None:
            raise NotFoundError(f"no device named {name!r}")
        return found

    def device_by_source(self, unit: str, source_id: int) -> Device | None:
        """The device a page request came from, or None for an unknown source."""
        return self._by_source.get((unit, source_id))

    # ------------------------------------------------------------------ bindings

    def bind(self, device: str, pasid: int, target: object) -> None:
        """Attach (device, PASID) to what it translates to (an address space, a domain)."""
        dev = self.device(device)
        if not 0 <= pasid < 1 << dev.pasid_bits:
            raise InvalidArgumentError(
                f"PASID {pasid:#x} is beyond device {device!r}'s {dev.pasid_bits}-bit width"
            )
        key = (device, pasid)
        if key in self._bindings:
            raise AlreadyRegisteredError(f"device {device!r} already has PASID {pasid:#x} bound")
        self._bindings[key] = target
        self._bound[device][pasid] = target
        ids = self._bound_ids[device]
        ids[id(target)] = ids.get(id(target), 0) + 1

    def unbind(self, device: str, pasid: int) -> object:
        target = self._bindings.pop((device, pasid), None)
        if target is None:
            raise NotFoundError(f"device {device!r} has no PASID {pasid:#x} bound")
        del self._bound[device][pasid]
        ids = self._bound_ids[device]
        left = ids[id(target)] - 1
        if left:
            ids[id(target)] = left
        else:
            del ids[id(target)]
        return target

    def binding(self, device: str, pasid: int) -> object | None:
        """What (device, PASID) is bound to, or None."""
        return self._bindings.get((device, pasid))

    def bound(self, device: str) -> dict[int, object]:
        """Every PASID bound on a device (a copy)."""
        return dict(self._bound.get(device, {}))

    def serves(self, device: Device, data: object) -> bool:
        """True when ``data`` is the device's owner's, or bound on the device."""
        if getattr(data, "owner", None) == device.owner:
            return True
        # The targets are held by the bindings, so their ids cannot be reused meanwhile.
        return id(data) in self._bound_ids.get(device.name, ())
