"""A VM's virtual units are probed through the run's plugin manager, as the host's are:
every plugin registered there sees guest probes, removals, sets and allocations, under
VT-d's virtual command path and under a guest that owns its space; VT-d's hooks still
serve its units when the manager lacks them; the run leaves nothing behind (in the
manager, in VT-d's registry), whether it ends or fails; nobody listening costs no pluggy
call per guest allocation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from ioasid_core.allocators import AllocatorOps
from ioasid_core.bits import Buffer
from ioasid_core.compare import VendorFailure, compare
from ioasid_core.events import Event
from ioasid_core.markers import hookimpl
from ioasid_core.plugins import Hooks, PluginHost, new_plugin_manager
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import RequestRow
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.replay import RunResult
from ioasid_core.scenario import Scenario, parse_scenario
from ioasid_core.scenario.bundled import load_named_scenario
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.types import EventKind
from ioasid_core.units import IommuUnit
from ioasid_vtd.prq import VtdPrq
from ioasid_vtd.state import REGISTRY

GUEST_VCMD = load_named_scenario("guest-vcmd")
GUEST_UNITS = [(vm.name, unit) for vm in GUEST_VCMD.platform.vms for unit in vm.units]


@attrs.define(eq=False)  # a plugin must hash: by identity
class Tracer:
    """Records every unit probed and removed, every set created, every allocation, by space."""

    probed: list[tuple[str, str, int]] = attrs.field(factory=list)
    removed: list[tuple[str, int]] = attrs.field(factory=list)
    sets: list[int] = attrs.field(factory=list)
    allocated: list[tuple[int, int]] = attrs.field(factory=list)
    """(id(space), PASID) of each allocation."""

    @hookimpl
    def ioasid_allocators_for_unit(
        self, unit: IommuUnit, space: IoasidSpace
    ) -> Sequence[AllocatorOps[Any]]:
        self.probed.append((unit.name, unit.vendor, id(space)))
        return []

    @hookimpl
    def ioasid_unit_removed(self, unit: IommuUnit, space: IoasidSpace) -> None:
        self.removed.append((unit.name, id(space)))

    @hookimpl
    def ioasid_set_created(self, space: IoasidSpace, set: IoasidSet) -> None:
        self.sets.append(id(space))

    @hookimpl
    def ioasid_event(self, space: IoasidSpace, event: Event) -> None:
        if event.kind is EventKind.ALLOC:
            self.allocated.append((id(space), event.ioasid))


def _manager(*plugins: object, installed: bool = False) -> PluginHost:
    host = new_plugin_manager(load_entry_points=installed)
    for n, plugin in enumerate(plugins):
        host.pm.register(plugin, name=f"p{n}")
    return host


def _guest_probes(tracer: Tracer, host_units: int = 0) -> list[tuple[str, str]]:
    """The probes after the host's units' (those come first)."""
    return [(name, vendor) for name, vendor, _ in tracer.probed[host_units:]]


def _in_guests(tracer: Tracer) -> list[int]:
    """The PASIDs allocated outside the host's space (its sets are created first)."""
    return [pasid for space, pasid in tracer.allocated if space != tracer.sets[0]]


def _run(vendor: VendorPrq, hooks: Hooks | None, scenario: Scenario = GUEST_VCMD) -> RunResult:
    (run,) = compare(scenario, [vendor], [LookupPolicy.DEVICE], hooks=hooks)
    return run


@pytest.mark.parametrize("installed", [False, True], ids=["bare-manager", "installed-plugins"])
def test_vtd_guest_units_are_probed_through_the_runs_manager(installed: bool) -> None:
    tracer = Tracer()
    host = _manager(tracer, installed=installed)
    run = _run(VtdPrq(), host.hooks)
    assert _guest_probes(tracer) == [(unit, "vtd") for _, unit in GUEST_UNITS]
    assert not GUEST_VCMD.platform.units  # every probe is a guest's
    # vm-a's two units go mid-run (the second one's removal falls back to the default)
    assert [name for name, _ in tracer.removed] == ["viommu0", "viommu1"]
    spaces = set(tracer.sets)
    assert len(spaces) == 1 + len(GUEST_VCMD.platform.vms)  # the host's and each guest's
    assert len(_in_guests(tracer)) == run.metrics.guest_allocations > 0
    # VT-d's own hooks served its units: the same run as without any plugin
    alone = _run(VtdPrq(), None)
    assert run.metrics.as_dict() == alone.metrics.as_dict()
    assert run.metrics.vcmd_commands > 0 and run.metrics.host_pasids_peak > 0
    # ... and the run left nothing: no guest in VT-d's registry, no unit in the manager,
    # VT-d's hooks joined for the run gone again from a manager that lacked them
    assert REGISTRY._guests == {}
    assert host.hooks._units == {}
    assert host.pm.get_plugin("ioasid-vtd-guest-path") is None
    assert host.pm.has_plugin("vtd") is installed


def test_a_guest_owning_its_space_has_its_units_probed_too() -> None:
    tracer = Tracer()
    host = _manager(tracer)
    run = _run(GenericPrq(), host.hooks)
    assert _guest_probes(tracer) == [(unit, "generic") for _, unit in GUEST_UNITS]
    assert [name for name, _ in tracer.removed] == ["viommu0", "viommu1"]
    assert len(_in_guests(tracer)) == run.metrics.guest_allocations > 0
    assert run.metrics.as_dict() == _run(GenericPrq(), None).metrics.as_dict()
    assert host.hooks._units == {}


class TopDown:
    """Offers a top-down allocator to every guest unit of a guest-owned path."""

    @hookimpl
    def ioasid_allocators_for_unit(
        self, unit: IommuUnit, space: IoasidSpace
    ) -> Sequence[AllocatorOps[Any]]:
        from ioasid_core.backends import IdBackend, backend_ops

        if unit.vendor != "generic" or not unit.name.startswith("viommu"):
            return []
        return [backend_ops(IdBackend("top_down", space.capacity))]


def test_a_plugin_may_offer_allocators_for_guest_units() -> None:
    tracer = Tracer()
    plain = _run(GenericPrq(), None)
    offered = _run(GenericPrq(), _manager(tracer, TopDown()).hooks)
    assert offered.metrics.guest_allocations == plain.metrics.guest_allocations
    top = [vm.capacity for vm in GUEST_VCMD.platform.vms]
    assert all(pasid > min(top) // 2 for pasid in _in_guests(tracer))  # from the top
    assert len(_in_guests(tracer)) == plain.metrics.guest_allocations


class ExplodingVtd(VtdPrq):
    """VT-d whose decoder raises: the run fails after the guests are up."""

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        raise RuntimeError("decoder exploded")


def test_a_failed_run_leaves_nothing_in_the_registry_or_the_manager() -> None:
    scenario = parse_scenario(
        {
            "name": "fails",
            "platform": {
                "units": [{"name": "u0"}],
                "address_spaces": [{"name": "p"}],
                "devices": [{"name": "d", "unit": "u0", "source_id": 0x10, "owner": "p"}],
                "vms": [{"name": "vm", "quota": 4, "units": ["v0", "v1"]}],
            },
            "steps": [
                {"op": "guest_alloc", "at": 0, "vm": "vm", "name": "g"},
                {"op": "page_requests", "at": 1, "device": "d", "pasid": 1, "groups": 1},
            ],
        },
        "t.toml",
    )
    tracer = Tracer()
    host = _manager(tracer)
    with pytest.raises(VendorFailure, match="decoder exploded"):
        _run(ExplodingVtd(), host.hooks, scenario)
    assert _guest_probes(tracer, 1) == [("v0", "vtd"), ("v1", "vtd")]
    assert REGISTRY._guests == {}
    assert host.hooks._units == {}
    assert host.pm.get_plugin("ioasid-vtd-guest-path") is None


def _guest_storm(count: int) -> Scenario:
    return parse_scenario(
        {
            "name": "storm",
            "platform": {"vms": [{"name": "vm", "quota": 1 << 16, "units": ["v0", "v1"]}]},
            "generators": [
                {"kind": "guest_allocations", "vm": "vm", "count": count, "interval": 1}
            ],
        },
        "t.toml",
    )


@pytest.mark.parametrize("vendor", [VtdPrq(), GenericPrq()], ids=["vcmd", "guest-owned"])
def test_nobody_listening_costs_no_hook_call_per_guest_allocation(
    monkeypatch: pytest.MonkeyPatch, vendor: VendorPrq
) -> None:
    calls: list[str] = []
    real = Hooks._call

    def counting(self: Hooks, name: str, **kwargs: Any) -> Any:
        calls.append(name)
        return real(self, name, **kwargs)

    monkeypatch.setattr(Hooks, "_call", counting)
    hooks = new_plugin_manager().hooks  # the bundled plugins: none listens to events
    counted = []
    for count in (10, 1000):
        calls.clear()
        run = _run(vendor, hooks, _guest_storm(count))
        assert run.metrics.guest_allocations == count
        counted.append(list(calls))
    assert counted[0] == counted[1] == ["ioasid_allocators_for_unit"] * 2  # one per unit


class Listener:
    @hookimpl
    def ioasid_set_created(self, space: IoasidSpace, set: IoasidSet) -> None:
        pass


def test_join_registers_for_the_run_and_leaves_only_what_it_registered() -> None:
    host = _manager()
    plugin = Listener()
    first, second = host.hooks.join(plugin, "joined"), host.hooks.join(plugin, "joined")
    assert host.pm.get_plugin("joined") is plugin
    first()
    first()  # leaving twice is leaving once
    assert host.pm.get_plugin("joined") is plugin  # the second join holds it
    second()
    assert host.pm.get_plugin("joined") is None
    owned = Listener()
    host.pm.register(owned, name="owned")  # as from an entry point
    host.hooks.join(owned, "other-name")()
    assert host.pm.get_plugin("owned") is owned  # not the join's to remove


class _NoClose:
    scalable_mode = True
    commands = exits = 0

    def plug(self, unit: str) -> None:
        pass

    def unplug(self, unit: str) -> None:
        pass


class _ClosePath:
    name = "closing"
    option_keys: frozenset[str] = frozenset()

    def __init__(self, make: Any) -> None:
        self.make = make

    def option_problems(self, options: object) -> list[tuple[str, str]]:
        return []

    def attach(self, vm: object) -> Any:
        return self.make()


class _ClosesBadly(_NoClose):
    def close(self) -> None:
        raise RuntimeError("cannot let go")


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_NoClose, "guest path 'closing': attach returned _NoClose, which lacks close"),
        (_ClosesBadly, "RuntimeError: cannot let go"),
    ],
)
def test_a_guest_path_without_close_or_whose_close_raises_is_the_vendors_failure(
    make: Any, said: str
) -> None:
    class Vendor(GenericPrq):
        name = "closing"
        guest_pasids = _ClosePath(make)

    with pytest.raises(VendorFailure) as caught:
        _run(Vendor(), None)
    assert str(caught.value).startswith("vendor 'closing' failed under policy 'device': ")
    assert said in str(caught.value)
