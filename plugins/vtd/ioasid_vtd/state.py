"""The VT-d plugin's state: which guest units have which registers, and scalable mode per guest.

An ``IommuUnit`` carries capabilities, not a way to reach the unit's registers, so the platform
(a VMM model, a test) attaches each virtual unit's register interface first, with
:func:`attach_guest_unit`, then probes the unit it returns. The hooks in ``plugin`` only ask
this registry.

Scalable mode: the kernel gave up scalable mode altogether when the VCMD allocator could not
be registered (the default allocator already held IDs, §3.1). Here that is per guest space:
the refusal is recorded in :attr:`GuestVtd.scalable_off`, and later units probed into that
space offer nothing.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

import attrs

from ioasid_core.plugin import (
    AllocatorBusyError,
    AllocatorOps,
    AlreadyRegisteredError,
    IoasidError,
    IoasidSpace,
    IommuUnit,
    NotFoundError,
)
from ioasid_vtd.registers import LAYOUT_3_3, VENDOR, VcmdLayout, vtd_caps
from ioasid_vtd.vcmd import (
    DEFAULT_MAX_POLLS,
    RegisterInterface,
    VcmdGuestUnit,
    read_unit,
    vcmd_alloc,
    vcmd_free,
)

__all__ = ["REGISTRY", "GuestRegistry", "GuestVtd", "ScalableModeOff", "attach_guest_unit"]

log = logging.getLogger(__name__)


@attrs.frozen
class ScalableModeOff:
    """Why a guest runs without scalable mode: the unit whose allocator was refused, and why."""

    unit: str
    error: IoasidError


@attrs.define(eq=False)
class GuestVtd:
    """The VT-d driver state of one guest (one space)."""

    space: IoasidSpace
    units: dict[str, VcmdGuestUnit] = attrs.field(factory=dict)
    scalable_off: ScalableModeOff | None = None

    @property
    def scalable_mode(self) -> bool:
        return self.scalable_off is None


class GuestRegistry:
    """Guest units by (space, unit name), and each guest's scalable-mode state."""

    def __init__(self) -> None:
        self._guests: dict[int, GuestVtd] = {}  # id(space); the entry holds the space alive
        self._lock = threading.Lock()

    def attach(
        self,
        name: str,
        space: IoasidSpace,
        regs: RegisterInterface,
        *,
        layout: VcmdLayout = LAYOUT_3_3,
        max_polls: int = DEFAULT_MAX_POLLS,
    ) -> IommuUnit:
        """Read unit ``name``'s capabilities from ``regs`` and remember its registers."""
        unit = read_unit(name, regs, layout)
        guest_unit = VcmdGuestUnit(unit, regs, layout, space, max_polls)
        with self._lock:
            guest = self._guests.setdefault(id(space), GuestVtd(space))
            if name in guest.units:
                raise AlreadyRegisteredError(
                    f"VT-d unit {name!r} is attached to this guest already"
                )
            guest.units[name] = guest_unit
        return unit

    def guest(self, space: IoasidSpace) -> GuestVtd | None:
        """The VT-d state of the guest owning ``space``, if any unit was ever attached."""
        return self._guests.get(id(space))

    def unit(self, space: IoasidSpace, name: str) -> VcmdGuestUnit | None:
        guest = self._guests.get(id(space))
        return None if guest is None else guest.units.get(name)

    def scalable_mode(self, space: IoasidSpace) -> bool:
        """False once a VCMD allocator of this guest was refused."""
        guest = self._guests.get(id(space))
        return guest is None or guest.scalable_mode

    def allocators_for(self, unit: IommuUnit, space: IoasidSpace) -> list[AllocatorOps[Any]]:
        """The VCMD allocator of a caching-mode unit with VCS, PASID and PAS; else nothing."""
        if unit.vendor != VENDOR:
            return []
        caps = vtd_caps(unit, missing_as_zero=True)
        if not caps.caching_mode:
            return []  # bare metal: PASIDs come from the default allocator
        if not (caps.vcs and caps.pas):
            log.debug("VT-d unit %r: no virtual PASID allocation (VCS/PAS clear)", unit.name)
            return []
        if not caps.pasid:
            log.warning("VT-d unit %r: VCMD allocation without PASID support", unit.name)
            return []
        guest = self._guests.get(id(space))
        guest_unit = None if guest is None else guest.units.get(unit.name)
        if guest is None or guest_unit is None:
            raise NotFoundError(
                f"VT-d unit {unit.name!r} offers virtual PASID allocation but no register "
                "interface is attached for it in this space (call attach_guest_unit first)"
            )
        if guest.scalable_off is not None:
            log.info("VT-d unit %r: scalable mode is off in this guest", unit.name)
            return []
        return [AllocatorOps(vcmd_alloc, vcmd_free, guest_unit)]

    def refused(
        self, unit: IommuUnit, space: IoasidSpace, ops: AllocatorOps[Any], error: IoasidError
    ) -> None:
        """Our allocator was refused: ``AllocatorBusyError`` turns scalable mode off."""
        if ops.alloc is not vcmd_alloc:
            return
        guest = self._guests.get(id(space))
        if isinstance(error, AllocatorBusyError) and guest is not None:
            guest.scalable_off = ScalableModeOff(unit=unit.name, error=error)
            log.warning(
                "VT-d unit %r: cannot register the virtual command PASID allocator (%s); "
                "scalable mode disabled for this guest",
                unit.name,
                error,
            )
        else:
            log.error("VT-d unit %r: VCMD allocator refused: %s", unit.name, error)

    def forget(self, unit: IommuUnit, space: IoasidSpace) -> None:
        """The unit is gone; a guest with no units left and scalable mode on is forgotten."""
        with self._lock:
            guest = self._guests.get(id(space))
            if guest is None:
                return
            guest.units.pop(unit.name, None)
            if not guest.units and guest.scalable_mode:
                del self._guests[id(space)]

    def drop(self, space: IoasidSpace) -> None:
        """Forget the guest owning ``space`` whole (its run is over), scalable mode too."""
        with self._lock:
            self._guests.pop(id(space), None)

    def clear(self) -> None:
        """Forget every guest (tests)."""
        with self._lock:
            self._guests.clear()


REGISTRY: Final = GuestRegistry()
"""The registry the plugin's hooks use."""


def attach_guest_unit(
    name: str,
    space: IoasidSpace,
    regs: RegisterInterface,
    *,
    layout: VcmdLayout = LAYOUT_3_3,
    max_polls: int = DEFAULT_MAX_POLLS,
    registry: GuestRegistry = REGISTRY,
) -> IommuUnit:
    """Wire virtual unit ``name`` of the guest owning ``space`` to ``regs``; probe the result.

    ``regs`` is typically a host's :class:`~ioasid_vtd.vcmd.VcmdEmulator`; ``layout`` is the
    guest driver's idea of the register layout (v5.8-v5.14: 3.1, v5.15+: 3.3).
    """
    return registry.attach(name, space, regs, layout=layout, max_polls=max_polls)
