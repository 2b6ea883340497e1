"""Guest PASIDs: where a VM's PASIDs come from is a vendor's choice, offered as a capability.

A VM has its own PASID space. Whether the host takes part depends on the vendor:

- VT-d (kernel-facts §3.1): the PASID namespace is system-wide, so the guest's virtual IOMMU
  units register a custom allocator that asks the host through virtual command registers;
  every guest PASID is a host PASID held in the VM's MM set (its quota bounds the VM).
- virtio-iommu (§5) and SMMUv3 nested: the guest attaches its own PASID table; it owns its
  PASID space and the host consumes nothing. This is the default, :data:`GUEST_OWNED`.

A vendor offers its path as a ``guest_pasids`` attribute of the :class:`VendorPrq` it hands
over through ``ioasid_prq_vendors`` (:func:`guest_path` reads it): a replay is given exactly
that object, so the capability travels with it (also into a process pool) and needs no
extra hook call per run. The allocations themselves go through the guest's space and its
allocator rules (``IoasidSpace.alloc``), whichever path is in place.

A VM's virtual units are probed through the run's plugin manager (``GuestVm.hooks``), as
the host's are: every plugin may offer allocators for them, sees them removed, and hears
the guest space's set and event hooks (the replay attaches that space: nothing is paid per
allocation when nobody listens). At the end of the run (done or failed) the replay calls
each VM's ``GuestIommu.close``: what the path set up outside itself is let go, so a long
comparison's manager and a plugin's registry keep nothing of the runs that are over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import attrs

from ioasid_core.errors import AlreadyRegisteredError, NotFoundError
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.units import MAX_PASID_BITS, IommuUnit

if TYPE_CHECKING:
    from ioasid_core.plugins import Hooks

__all__ = [
    "GUEST_OWNED",
    "GuestIommu",
    "GuestOwnedPasids",
    "GuestPasidPath",
    "GuestVm",
    "OptionProblem",
    "attach_checked",
    "guest_path",
]

OptionProblem = tuple[str, str]
"""A bad vendor option: ``(key, what was expected)``."""


@attrs.frozen(kw_only=True)
class GuestVm:
    """One VM of a run, as a vendor's guest path sees it."""

    name: str
    host: IoasidSpace
    """The host's space: where a host-backed path takes PASIDs from."""
    host_set: IoasidSet
    """The VM's MM set in ``host`` (token = the VM); its quota is what the VM may hold."""
    space: IoasidSpace
    """The guest's own space: where the guest allocates and where allocators register."""
    options: Mapping[str, object] = attrs.field(factory=dict)
    """The scenario's ``[vendor.<name>]`` section for this run's vendor (checked already)."""
    hooks: Hooks | None = None
    """The run's plugin manager: probe and remove the VM's virtual units through it, as the
    host's are (``Hooks.probe_unit``/``remove_unit``); None: a run without plugins."""
    vendor: str = ""
    """The run's vendor: the kind of the virtual units (``IommuUnit.vendor``)."""


_IOMMU_MEMBERS: Final = ("scalable_mode", "commands", "exits", "plug", "unplug", "close")


def attach_checked(path: GuestPasidPath, vm: GuestVm) -> GuestIommu:
    """``path.attach(vm)``, and ``TypeError`` naming the path and each member the object it
    returned lacks (a plugin's mistake, found before the run uses it)."""
    iommu = path.attach(vm)
    missing = [m for m in _IOMMU_MEMBERS if not hasattr(iommu, m)]
    if missing:
        raise TypeError(
            f"guest path {path.name!r}: attach returned {type(iommu).__name__}, which lacks "
            f"{', '.join(missing)} (a GuestIommu)"
        )
    return iommu


class GuestIommu(Protocol):
    """A VM's virtual IOMMU units under one vendor, for one run."""

    @property
    def scalable_mode(self) -> bool:
        """False once the guest driver gave up PASIDs (VT-d: its allocator was refused)."""

    @property
    def commands(self) -> int:
        """Commands the guest sent to the host for PASIDs (VT-d: VCMD writes)."""

    @property
    def exits(self) -> int:
        """Register accesses that trapped to the host (VM exits) for those commands."""

    def plug(self, unit: str) -> None:
        """Virtual unit ``unit`` comes (at start, or hot-plugged); it may register an allocator
        in the guest's space. ``AlreadyRegisteredError`` if it is plugged already."""

    def unplug(self, unit: str) -> None:
        """Virtual unit ``unit`` goes; its allocators are withdrawn by the core's rules.

        ``NotFoundError`` if it is not plugged; ``BusyError`` (nothing changed) if it is the
        last unit of an allocator group that still holds IDs.
        """

    def close(self) -> None:
        """The run is over (it ended or failed; called once): let go of what ``plug`` set up
        outside this object (the units the run's manager remembers, a plugin's registry
        entries). Nothing is withdrawn and no hook is called: the guest space goes whole."""


@runtime_checkable
class GuestPasidPath(Protocol):
    """A vendor's way of giving guests PASIDs (the ``guest_pasids`` of its VendorPrq)."""

    name: str
    option_keys: frozenset[str]
    """The keys of the vendor's scenario section this path reads."""

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        """What is wrong with the values of this path's keys (empty: nothing); unknown keys
        are found by :func:`ioasid_core.vendor_options.option_problems`."""

    def attach(self, vm: GuestVm) -> GuestIommu:
        """Start modelling ``vm``'s virtual IOMMU for one run (no units plugged yet).

        Keep every piece of state in the returned object: runs are many and independent.
        """


@attrs.define(eq=False)
class _GuestOwnedIommu:
    """Units whose own allocator is none: the guest's default allocator hands out its
    PASIDs, unless a plugin of the run offers one for a unit (probed through the run's
    manager, as the host's units are)."""

    vm: GuestVm
    units: dict[str, IommuUnit] = attrs.field(factory=dict)
    scalable_mode: bool = True
    commands: int = 0
    exits: int = 0

    def plug(self, unit: str) -> None:
        if unit in self.units:
            raise AlreadyRegisteredError(f"virtual unit {unit!r} is plugged already")
        vm = self.vm
        bits = min((vm.space.capacity - 1).bit_length(), MAX_PASID_BITS)
        probed = IommuUnit(name=unit, vendor=vm.vendor or "guest", pasid_bits=bits)
        if vm.hooks is not None:
            vm.hooks.probe_unit(probed, vm.space)
        self.units[unit] = probed

    def unplug(self, unit: str) -> None:
        probed = self.units.get(unit)
        if probed is None:
            raise NotFoundError(f"virtual unit {unit!r} is not plugged")
        if self.vm.hooks is not None:
            try:
                self.vm.hooks.remove_unit(probed, self.vm.space)
            except ExceptionGroup:  # removed all the same: callbacks failed afterwards
                del self.units[unit]
                raise
        del self.units[unit]

    def close(self) -> None:
        if self.vm.hooks is not None:
            self.vm.hooks.forget(self.vm.space)


class GuestOwnedPasids:
    """The default path: the guest owns its PASID space (virtio-iommu PASID table attach)."""

    name = "guest-owned"
    option_keys: frozenset[str] = frozenset()

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return []

    def attach(self, vm: GuestVm) -> GuestIommu:
        return _GuestOwnedIommu(vm)


GUEST_OWNED: Final = GuestOwnedPasids()


def guest_path(vendor: object) -> GuestPasidPath:
    """``vendor.guest_pasids`` if it offers one, else :data:`GUEST_OWNED`.

    ``TypeError`` naming what is missing if the vendor offers something that is not a
    :class:`GuestPasidPath` (a plugin's mistake must not fall back in silence).
    """
    from ioasid_core.profile import profile_of  # (it imports this module)

    return profile_of(vendor).guest_path
