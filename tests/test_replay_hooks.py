"""The hooks run in the main job: a replay probes its units through the plugin manager, and
set and event hooks fire for plugins that implement them; nobody listening costs no pluggy
call per allocation or request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest

from ioasid_core.allocators import AllocatorOps
from ioasid_core.backends import IdBackend, backend_ops
from ioasid_core.compare import compare
from ioasid_core.events import Event
from ioasid_core.markers import ENTRY_POINT_GROUP, hookimpl
from ioasid_core.plugins import Hooks, new_plugin_manager
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.scenario import parse_scenario
from ioasid_core.scenario.bundled import load_named_scenario
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.testing import invoke_cli
from ioasid_core.types import EventKind
from ioasid_core.units import IommuUnit


class TopDown:
    """Offers every unit a top-down allocator: the highest free PASID first."""

    def __init__(self) -> None:
        self.probed: list[str] = []
        self.removed: list[str] = []

    @hookimpl
    def ioasid_allocators_for_unit(
        self, unit: IommuUnit, space: IoasidSpace
    ) -> Sequence[AllocatorOps[Any]]:
        self.probed.append(unit.name)
        return [backend_ops(IdBackend("top_down", space.capacity))]

    @hookimpl
    def ioasid_unit_removed(self, unit: IommuUnit, space: IoasidSpace) -> None:
        self.removed.append(unit.name)


@attrs.define(eq=False)  # a plugin must hash: by identity
class Tracer:
    """Records what a replay's space does."""

    sets: int = 0
    allocated: list[int] = attrs.field(factory=list)

    @hookimpl
    def ioasid_set_created(self, space: IoasidSpace, set: IoasidSet) -> None:
        self.sets += 1

    @hookimpl
    def ioasid_event(self, space: IoasidSpace, event: Event) -> None:
        if event.kind is EventKind.ALLOC:
            self.allocated.append(event.ioasid)


def _hooks(*plugins: object) -> Hooks:
    host = new_plugin_manager(load_entry_points=False)
    for n, plugin in enumerate(plugins):
        host.pm.register(plugin, name=f"p{n}")
    return host.hooks


def test_a_replay_probes_its_units_through_the_plugins() -> None:
    scenario = load_named_scenario("null-set-search")
    top, tracer = TopDown(), Tracer()
    (run,) = compare(scenario, [GenericPrq()], [LookupPolicy.SET], hooks=_hooks(top, tracer))
    assert top.probed == [u.name for u in scenario.platform.units]
    capacity = scenario.platform.capacity
    assert tracer.allocated and all(pasid > capacity // 2 for pasid in tracer.allocated)
    assert tracer.sets == len(scenario.platform.sets)
    (plain,) = compare(scenario, [GenericPrq()], [LookupPolicy.SET])
    assert plain.metrics.allocations == run.metrics.allocations == len(tracer.allocated)


def test_a_hot_unplug_calls_unit_removed_and_a_plug_probes_again() -> None:
    document = {
        "name": "hotplug",
        "platform": {
            "units": [{"name": "u0"}, {"name": "u1"}],
            "address_spaces": [{"name": "p"}],
            "devices": [{"name": "dev", "unit": "u0", "source_id": 0x10, "owner": "p"}],
        },
        "steps": [{"op": "unplug", "unit": "u0"}, {"op": "plug", "unit": "u0"}],
    }
    top = TopDown()
    (run,) = compare(
        parse_scenario(document, "t.toml"), [GenericPrq()], [LookupPolicy.SET], hooks=_hooks(top)
    )
    assert not run.metrics.step_errors
    assert (top.probed, top.removed) == (["u0", "u1", "u0"], ["u0"])


def test_nobody_listening_costs_no_hook_call_per_allocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = Hooks._call

    def counting(self: Hooks, name: str, **kwargs: Any) -> Any:
        calls.append(name)
        return real(self, name, **kwargs)

    monkeypatch.setattr(Hooks, "_call", counting)
    hooks = new_plugin_manager().hooks  # the bundled plugins: none listens to events
    small, large = load_named_scenario("null-set-search"), load_named_scenario("churn-and-stream")
    counts = []
    for scenario in (small, large):
        calls.clear()
        (run,) = compare(scenario, [GenericPrq()], [LookupPolicy.SET], hooks=hooks)
        counts.append((run.metrics.allocations, len(calls), set(calls)))
    (few, small_calls, small_names), (many, large_calls, large_names) = counts
    assert many > 10 * few  # the large one allocates far more ...
    units = [len(s.platform.units) for s in (small, large)]
    assert (small_calls, large_calls) == (units[0], units[1])  # ... one call per unit probe
    assert small_names == large_names == {"ioasid_allocators_for_unit"}


def test_compare_on_the_command_line_serves_installed_listeners(
    install: Callable[..., None],
) -> None:
    tracer = Tracer()

    class _EntryPoint:
        name = "tracer"
        value = "ioasid_tracer.plugin"
        group = ENTRY_POINT_GROUP
        dist = None

        def load(self) -> object:
            return tracer

    install(_EntryPoint())  # its dist is None: no distribution known
    result = invoke_cli(
        "compare", "null-set-search", "--vendors", "generic,vtd", "--policies", "set"
    )
    assert result.exit_code == 0, result.stderr
    assert tracer.sets == 2 * len(load_named_scenario("null-set-search").platform.sets)
