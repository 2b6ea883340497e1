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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol, runtime_checkable

import attrs

from ioasid_core.errors import AlreadyRegisteredError, NotFoundError
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace

__all__ = [
    "GUEST_OWNED",
    "GuestIommu",
    "GuestOwnedPasids",
    "GuestPasidPath",
    "GuestVm",
    "OptionProblem",
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
    """Units that offer no allocator: the guest's default allocator hands out its PASIDs."""

    units: set[str] = attrs.field(factory=set)
    scalable_mode: bool = True
    commands: int = 0
    exits: int = 0

    def plug(self, unit: str) -> None:
        if unit in self.units:
            raise AlreadyRegisteredError(f"virtual unit {unit!r} is plugged already")
        self.units.add(unit)

    def unplug(self, unit: str) -> None:
        if unit not in self.units:
            raise NotFoundError(f"virtual unit {unit!r} is not plugged")
        self.units.remove(unit)


class GuestOwnedPasids:
    """The default path: the guest owns its PASID space (virtio-iommu PASID table attach)."""

    name = "guest-owned"
    option_keys: frozenset[str] = frozenset()

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return []

    def attach(self, vm: GuestVm) -> GuestIommu:
        return _GuestOwnedIommu()


GUEST_OWNED: Final = GuestOwnedPasids()


def guest_path(vendor: object) -> GuestPasidPath:
    """``vendor.guest_pasids`` if it offers one, else :data:`GUEST_OWNED`.

    ``TypeError`` naming what is missing if the vendor offers something that is not a
    :class:`GuestPasidPath` (a plugin's mistake must not fall back in silence).
    """
    from ioasid_core.profile import profile_of  # (it imports this module)

    return profile_of(vendor).guest_path
