"""Host units hot-unplugged and plugged again: the loader's rules, and what a replay does
(devices come back unbound, with an empty queue; bindings that went with the unit leave
orphaned PASIDs until freed)."""

from __future__ import annotations

from typing import Any

import pytest

from ioasid_core.compare import available_vendors
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq
from ioasid_core.replay import replay
from ioasid_core.scenario import Scenario, ScenarioError, parse_scenario


def doc(*steps: dict[str, Any], vendor: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "hotplug",
        "platform": {
            "units": [{"name": "u0", "queue_entries": 64}, {"name": "u1"}],
            "address_spaces": [{"name": "p"}],
            "sets": [{"name": "sva", "sva": True}],
            "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
            "devices": [
                {"name": "dev", "unit": "u0", "source_id": 0x10, "owner": "p", "domain": "d"},
                {"name": "other", "unit": "u1", "source_id": 0x20, "owner": "p", "domain": "d"},
            ],
        },
        "steps": list(steps),
    }
    if vendor is not None:
        out["vendor"] = vendor
    return out


BIND = {"op": "bind", "device": "dev", "set": "sva", "address_space": "p", "name": "a"}
UNPLUG = {"op": "unplug", "unit": "u0"}
PLUG = {"op": "plug", "unit": "u0"}


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(document, "t.toml")
    return [f"{p.key_path}: {p.expected}" for p in caught.value.problems]


def test_a_plugged_host_unit_cannot_be_plugged_again() -> None:
    assert problems(doc(PLUG)) == ["steps[0].unit: unit 'u0' is plugged already"]
    assert problems(doc(UNPLUG, PLUG, PLUG)) == ["steps[2].unit: unit 'u0' is plugged already"]


def test_a_device_is_gone_between_unplug_and_plug_and_back_after() -> None:
    requests = {"op": "page_requests", "device": "dev", "pasid": 5}
    assert problems(doc(UNPLUG, requests)) == [
        "steps[1].device: device 'dev' is gone: its unit 'u0' was unplugged at steps[0]"
    ]
    parse_scenario(doc(UNPLUG, PLUG, requests), "t.toml")  # no error


def test_a_binding_that_went_with_its_unit_cannot_be_unbound_only_freed() -> None:
    unbind = {"op": "unbind", "device": "dev", "pasid": "a"}
    assert problems(doc(BIND, UNPLUG, PLUG, unbind)) == [
        "steps[3].pasid: PASID 'a' is not bound any more: its binding on 'dev' went with unit "
        "'u0' at steps[1]; free it"
    ]
    parse_scenario(doc(BIND, UNPLUG, PLUG, {"op": "free", "pasid": "a"}), "t.toml")
    # A unit that is not the device's leaves its bindings alone.
    parse_scenario(doc(BIND, {"op": "unplug", "unit": "u1"}, unbind), "t.toml")


def run(scenario: Scenario, vendor: object | None = None) -> Any:
    result = replay(scenario, vendor if vendor is not None else GenericPrq())  # type: ignore[arg-type]
    assert not result.metrics.step_errors, result.metrics.step_errors
    return result.metrics


def test_a_replugged_unit_serves_its_devices_again_with_an_empty_queue() -> None:
    waiting = {"op": "page_requests", "device": "dev", "pasid": "a", "groups": 3, "service": False}
    served = {"op": "page_requests", "device": "dev", "pasid": 5, "groups": 2}
    m = run(parse_scenario(doc(BIND, waiting, UNPLUG, PLUG, served), "t.toml"))
    # The groups waiting in the old ring were lost with the unit; none was answered.
    assert m.page_requests == 5
    assert sum(m.responses.values()) == 2
    assert m.outcomes["unknown_pasid"] == 2  # PASID 5 was never allocated
    assert m.orphaned_ids == 1  # 'a' stays allocated, and 'dev' came back without it


def test_freeing_the_orphan_leaves_none() -> None:
    m = run(parse_scenario(doc(BIND, UNPLUG, PLUG, {"op": "free", "pasid": "a"}), "t.toml"))
    assert (m.orphaned_ids, m.frees) == (0, 1)


def test_an_orphan_is_counted_whether_or_not_its_device_came_back() -> None:
    assert run(parse_scenario(doc(BIND, UNPLUG), "t.toml")).orphaned_ids == 1
    assert run(parse_scenario(doc(BIND), "t.toml")).orphaned_ids == 0  # still bound


def test_a_replugged_unit_keeps_the_vendors_shape() -> None:
    vendors = available_vendors(new_plugin_manager().hooks)
    burst = {"op": "page_requests", "device": "dev", "pasid": "a", "groups": 200, "service": False}
    document = doc(BIND, UNPLUG, PLUG, burst, {"op": "service", "unit": "u0"})
    document["steps"][0] = BIND
    document["platform"]["units"][0]["queue_entries"] = 4096
    document["vendor"] = {"vtd": {"prq_order": 0}}
    m = run(parse_scenario(document, "t.toml"), vendors["vtd"])
    assert m.dropped["overflow"] == 200 - 127  # the re-plugged PRQ is 128 entries too
