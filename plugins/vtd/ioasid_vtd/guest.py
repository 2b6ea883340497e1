"""VT-d's guest PASID path: each VM's units allocate through the virtual command interface.

For a run, every virtual unit of a VM gets its own :class:`~ioasid_vtd.vcmd.VcmdEmulator`
over the host space and the VM's MM set (so the VM's quota bounds it), and is probed
through the run's plugin manager (``GuestVm.hooks``), as the host's units are: every
plugin sees the probe, may offer allocators, hears the guest's sets and events. VT-d's
own hooks (``ioasid_vtd.plugin``, over the plugin's :data:`~ioasid_vtd.state.REGISTRY`)
serve the unit there; a manager that lacks them has them joined for the run. So the
core's probe and unplug rules apply (one shared allocator group per guest, fallback to the
default allocator when the last unit goes, scalable mode off on ``AllocatorBusyError``).
When the run ends, :meth:`VcmdGuestIommu.close` drops the guest from the registry and the
manager: runs stay independent. A run without plugins (``hooks`` None) calls VT-d's hooks
through a private manager over a private :class:`GuestRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ioasid_core.plugin import (
    AllocatorOps,
    GuestIommu,
    GuestVm,
    Hooks,
    IoasidError,
    IoasidSpace,
    IommuUnit,
    NotFoundError,
    OptionProblem,
    hookimpl,
    new_plugin_manager,
)
from ioasid_vtd.registers import LAYOUT_3_3, VCMD_LAYOUTS, VcmdLayout
from ioasid_vtd.state import REGISTRY, GuestRegistry
from ioasid_vtd.vcmd import RegisterInterface, VcmdEmulator

__all__ = ["VcmdGuestIommu", "VcmdGuestPasids"]


class _RegistryHooks:
    """The VT-d allocator hooks over one registry (the plugin module's use ``REGISTRY``)."""

    def __init__(self, registry: GuestRegistry) -> None:
        self.registry = registry

    @hookimpl
    def ioasid_allocators_for_unit(
        self, unit: IommuUnit, space: IoasidSpace
    ) -> Sequence[AllocatorOps[Any]]:
        return self.registry.allocators_for(unit, space)

    @hookimpl
    def ioasid_allocator_refused(
        self, unit: IommuUnit, space: IoasidSpace, ops: AllocatorOps[Any], error: IoasidError
    ) -> None:
        self.registry.refused(unit, space, ops, error)

    @hookimpl
    def ioasid_unit_removed(self, unit: IommuUnit, space: IoasidSpace) -> None:
        self.registry.forget(unit, space)


@attrs.define(eq=False)
class _TrappedRegisters:
    """A unit's registers as the guest reaches them: every access is a VM exit."""

    emulator: VcmdEmulator
    counts: VcmdGuestIommu

    def read64(self, offset: int) -> int:
        self.counts.exits += 1
        return self.emulator.read64(offset)

    def write64(self, offset: int, value: int) -> None:
        self.counts.exits += 1
        if offset == self.emulator.layout.vcmd:
            self.counts.commands += 1
        self.emulator.write64(offset, value)


class VcmdGuestIommu:
    """One VM's virtual VT-d units for one run (a :class:`~ioasid_core.plugin.GuestIommu`)."""

    def __init__(self, vm: GuestVm, layout: VcmdLayout) -> None:
        self.vm = vm
        self.layout = layout
        self._leave: Callable[[], None] = _stay
        if vm.hooks is None:  # no plugins in the run: VT-d's hooks on a manager of its own
            self.registry = GuestRegistry()
            host = new_plugin_manager(load_entry_points=False)
            host.pm.register(_RegistryHooks(self.registry), name="vtd-guest")
            self._hooks: Hooks = host.hooks
        else:  # the run's: every plugin sees these units, and VT-d's own hooks serve them
            from ioasid_vtd import plugin  # (it imports the vendor, which imports this)

            self.registry = REGISTRY
            self._hooks = vm.hooks
            self._leave = vm.hooks.join(plugin, "ioasid-vtd-guest-path")
        self._units: dict[str, IommuUnit] = {}
        self.commands = 0
        self.exits = 0

    @property
    def scalable_mode(self) -> bool:
        return self.registry.scalable_mode(self.vm.space)

    def plug(self, unit: str) -> None:
        vm = self.vm
        emulator = VcmdEmulator(vm.host, vm.host_set, layout=self.layout)
        regs: RegisterInterface = _TrappedRegisters(emulator, self)
        probed = self.registry.attach(unit, vm.space, regs, layout=self.layout)
        try:
            self._hooks.probe_unit(probed, vm.space)
        except BaseException:
            self.registry.forget(probed, vm.space)
            raise
        self._units[unit] = probed

    def unplug(self, unit: str) -> None:
        probed = self._units.get(unit)
        if probed is None:
            raise NotFoundError(f"virtual VT-d unit {unit!r} is not plugged")
        try:
            self._hooks.remove_unit(probed, self.vm.space)
        except ExceptionGroup:  # removed all the same: callbacks failed afterwards
            del self._units[unit]
            raise
        del self._units[unit]

    def close(self) -> None:
        """The run is over: the manager and the registry forget this guest (its units stay
        as they were: the guest space goes whole); VT-d's hooks leave a manager they joined."""
        try:
            self._hooks.forget(self.vm.space)
            self.registry.drop(self.vm.space)
        finally:
            self._leave()


def _stay() -> None:
    """Nothing joined: nothing to leave."""


class VcmdGuestPasids:
    """VT-d's :class:`~ioasid_core.plugin.GuestPasidPath`: guests ask the host (kernel-facts
    §3.1). Option ``vcmd_layout``: ``"3.3"`` (v5.15+, the default) or ``"3.1"`` (v5.8-5.14)."""

    name = "vcmd"
    option_keys: frozenset[str] = frozenset({"vcmd_layout"})

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        problems: list[OptionProblem] = []
        layout = options.get("vcmd_layout", LAYOUT_3_3.name)
        if layout not in VCMD_LAYOUTS:
            problems.append(
                (
                    "vcmd_layout",
                    f"expected one of {', '.join(map(repr, VCMD_LAYOUTS))}, got {layout!r}",
                )
            )
        return problems

    def attach(self, vm: GuestVm) -> GuestIommu:
        name = vm.options.get("vcmd_layout", LAYOUT_3_3.name)
        assert isinstance(name, str)
        return VcmdGuestIommu(vm, VCMD_LAYOUTS[name])
