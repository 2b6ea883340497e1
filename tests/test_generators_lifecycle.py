"""Generators of hot-plug cycles and allocator swaps: exact expansions, determinism,
validation, the loader's life-cycle rules on what they expand to, and replays."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ioasid_core.compare import available_vendors, compare
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import LookupPolicy
from ioasid_core.scenario import Scenario, ScenarioError, Step, parse_scenario

BASE: dict[str, Any] = {
    "name": "lifecycle",
    "seed": 5,
    "platform": {
        "units": [{"name": "u0"}, {"name": "u1"}],
        "owners": ["drv"],
        "address_spaces": [{"name": "p"}],
        "sets": [{"name": "sva", "sva": True}],
        "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
        "devices": [
            {"name": "a", "unit": "u0", "source_id": 1, "owner": "p", "domain": "d"},
            {"name": "b", "unit": "u1", "source_id": 2, "owner": "p", "domain": "d"},
        ],
        "vms": [
            {"name": "vm", "quota": 8, "units": ["v0", "v1"]},
            {"name": "solo", "units": ["v0"]},
        ],
    },
    "steps": [],
}

HOTPLUG: dict[str, Any] = {"kind": "hotplug", "at": 100, "unit": "u1", "count": 2, "interval": 10}
SWAPS: dict[str, Any] = {
    "kind": "allocator_swaps",
    "at": 0,
    "kinds": ["cyclic", "top_down", "random"],
    "count": 4,
    "interval": 5,
}


def _doc(*generators: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["generators"] = [copy.deepcopy(g) for g in generators]
    data["steps"] = steps or []
    return data


def _load(*generators: dict[str, Any], **extra: Any) -> Scenario:
    return parse_scenario(_doc(*generators, **extra), "t.toml")


def _generated(scenario: Scenario) -> list[Step]:
    return [s for s in scenario.steps if s.where.startswith("generators")]


def _problems(*generators: dict[str, Any], **extra: Any) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        _load(*generators, **extra)
    return [f"{p.key_path}: {p.expected}" for p in caught.value.problems]


# ---------------------------------------------------------------- expansion


def test_hotplug_unplugs_and_plugs_a_host_unit_count_times_and_ends_plugged() -> None:
    where = [f"generators[0]/{n}" for n in range(4)]
    assert _generated(_load(HOTPLUG)) == [
        Step(op="unplug", at=100.0, unit="u1", where=where[0]),
        Step(op="plug", at=110.0, unit="u1", where=where[1]),
        Step(op="unplug", at=120.0, unit="u1", where=where[2]),
        Step(op="plug", at=130.0, unit="u1", where=where[3]),
    ]


def test_hotplug_of_a_vms_unit_names_the_vm_and_draws_its_gaps_from_the_seed() -> None:
    steps = _generated(_load(HOTPLUG | {"vm": "vm", "unit": "v0", "jitter": 4, "seed": 9}))
    assert [(s.op, s.at, s.vm, s.unit) for s in steps] == [
        ("unplug", 100.0, "vm", "v0"),
        ("plug", 113.0, "vm", "v0"),
        ("unplug", 127.0, "vm", "v0"),
        ("plug", 139.0, "vm", "v0"),  # gaps 13, 14, 12: each in 10 .. 10 + 4
    ]


def test_allocator_swaps_register_and_unregister_cycling_through_the_kinds() -> None:
    steps = _generated(_load(SWAPS | {"prefix": "s", "force": True}))
    register = [(s.at, s.allocator, s.kind) for s in steps if s.op == "register_allocator"]
    assert register == [
        (0.0, "s0", "cyclic"),
        (10.0, "s1", "top_down"),
        (20.0, "s2", "random"),
        (30.0, "s3", "cyclic"),
    ]
    gone = [(s.at, s.allocator, s.force) for s in steps if s.op == "unregister_allocator"]
    assert gone == [(5.0, "s0", True), (15.0, "s1", True), (25.0, "s2", True), (35.0, "s3", True)]
    assert [s.op for s in steps] == ["register_allocator", "unregister_allocator"] * 4


def test_allocator_swap_names_default_to_the_generator_index() -> None:
    names = [s.allocator for s in _generated(_load(HOTPLUG, SWAPS | {"count": 2}))]
    assert [n for n in names if n is not None] == ["swap[1].0"] * 2 + ["swap[1].1"] * 2


def test_the_same_file_expands_the_same_and_another_seed_moves_the_gaps() -> None:
    jittery = (HOTPLUG | {"jitter": 6}, SWAPS | {"jitter": 6})
    first = _generated(_load(*jittery))
    assert first == _generated(_load(*jittery))
    for step in first:
        assert step.at >= 0
    others = set()
    for seed in range(4):
        data = _doc(*jittery)
        data["seed"] = seed
        others.add(tuple(s.at for s in _generated(parse_scenario(data, "t.toml"))))
    assert len(others) > 1


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("generator", "expected"),
    [
        (HOTPLUG | {"unit": "u9"}, "generators[0].unit: no unit named 'u9' (known: u0, u1)"),
        (HOTPLUG | {"vm": "vx"}, "generators[0].vm: no VM named 'vx' (known: solo, vm)"),
        (
            HOTPLUG | {"vm": "vm", "unit": "u0"},
            "generators[0].unit: no virtual unit of VM 'vm' named 'u0' (known: v0, v1)",
        ),
        (HOTPLUG | {"count": 0}, "generators[0].count: expected an integer in 1..0x10000, got 0"),
        (HOTPLUG | {"interval": 0}, "generators[0].interval: expected a finite number > 0, got 0"),
        (
            {k: v for k, v in HOTPLUG.items() if k != "unit"},
            "generators[0].unit: required key is missing (expected generator kind 'hotplug' "
            "needs it)",
        ),
        (HOTPLUG | {"kinds": ["cyclic"]}, "generators[0].kinds: unknown key (allowed: at, count"),
        (SWAPS | {"kinds": []}, "generators[0].kinds: expected at least one allocator backend"),
        (
            SWAPS | {"kinds": ["cyclic", "fifo"]},
            "generators[0].kinds[1]: expected one of lowest, cyclic, top_down, random, got 'fifo'",
        ),
        (SWAPS | {"kinds": "cyclic"}, "generators[0].kinds: expected an array, got a string"),
        (SWAPS | {"force": 1}, "generators[0].force: expected a boolean, got an integer (1)"),
        (SWAPS | {"jitter": -1}, "generators[0].jitter: expected an integer >= 0, got -1"),
    ],
)
def test_bad_entries_name_their_key_path(generator: dict[str, Any], expected: str) -> None:
    (problem,) = _problems(generator)
    assert problem.startswith(expected), problem


def test_every_problem_is_reported_at_once() -> None:
    found = _problems(HOTPLUG | {"unit": "u9", "count": 0}, SWAPS | {"kinds": [], "interval": -1})
    assert [p.split(":")[0] for p in found] == [
        "generators[0].unit",
        "generators[0].count",
        "generators[1].kinds",
        "generators[1].interval",
    ]


# ---------------------------------------------------------------- life-cycle rules


def test_a_vms_only_unit_may_not_go_while_its_guest_holds_pasids() -> None:
    guest = [{"op": "guest_alloc", "at": 50, "vm": "solo", "name": "g"}]
    assert _problems(HOTPLUG | {"vm": "solo", "unit": "v0"}, steps=guest) == [
        "generators[0]/0.unit: unit 'v0' is VM 'solo''s last one and the guest still holds "
        "PASIDs (g): free them first",
        "generators[0]/1.unit: unit 'v0' of VM 'solo' is plugged already",
        "generators[0]/2.unit: unit 'v0' is VM 'solo''s last one and the guest still holds "
        "PASIDs (g): free them first",
        "generators[0]/3.unit: unit 'v0' of VM 'solo' is plugged already",
    ]
    freed = [*guest, {"op": "guest_free", "at": 60, "vm": "solo", "pasid": "g"}]
    _load(HOTPLUG | {"vm": "solo", "unit": "v0"}, steps=freed)  # no error


def test_a_device_is_gone_while_its_unit_is_out_and_a_unit_cannot_go_twice() -> None:
    during = [{"op": "page_requests", "at": 105, "device": "b", "pasid": 3}]
    assert _problems(HOTPLUG, steps=during) == [
        "steps[0].device: device 'b' is gone: its unit 'u1' was unplugged at generators[0]/0"
    ]
    _load(HOTPLUG, steps=[{**during[0], "at": 115}])  # back at 110
    twice = [{"op": "unplug", "at": 105, "unit": "u1"}]
    assert _problems(HOTPLUG, steps=twice) == [
        "steps[0].unit: unit 'u1' was unplugged at generators[0]/0"
    ]


def test_a_binding_that_went_with_a_hotplugged_unit_cannot_be_unbound() -> None:
    bind = {"op": "bind", "at": 1, "device": "b", "set": "sva", "address_space": "p", "name": "x"}
    unbind = {"op": "unbind", "at": 200, "device": "b", "pasid": "x"}
    assert _problems(HOTPLUG, steps=[bind, unbind]) == [
        "steps[1].pasid: PASID 'x' is not bound any more: its binding on 'b' went with unit 'u1' "
        "at generators[0]/0; free it"
    ]


# ---------------------------------------------------------------- replays


def test_hotplug_and_swaps_replay_under_every_vendor_without_step_errors() -> None:
    churn = {
        "kind": "churn",
        "at": 1,
        "device": "a",
        "set": "sva",
        "processes": True,
        "count": 2,
        "live": 1,
        "interval": 1,
    }  # all within the first registration (0 .. 5): its IDs are gone before it is
    guest = {"kind": "guest_allocations", "at": 40, "vm": "vm", "count": 4, "interval": 2}
    scenario = _load(
        SWAPS,
        HOTPLUG,
        HOTPLUG | {"vm": "vm", "unit": "v1", "count": 3},
        churn,
        guest,
    )
    vendors = list(available_vendors(new_plugin_manager().hooks).values())
    for result in compare(scenario, vendors, [LookupPolicy.DEVICE]):
        m = result.metrics
        assert m.step_errors == [], result.vendor
        assert m.allocations == 2 and m.frees == 2 and m.allocator_refusals == {}
        # Each registration takes over from the default and hands back: two switches each;
        # unplugging one of the VM's two units keeps its guest's allocator (VT-d) or
        # changes nothing (the others).
        assert m.allocator_switches == 2 * 4, result.vendor


def test_a_swap_while_ids_are_held_is_refused_or_forced() -> None:
    held = [{"op": "alloc", "at": 2, "set": "sva", "owner": "drv", "name": "k"}]
    vendors = available_vendors(new_plugin_manager().hooks)
    generic, device = [vendors["generic"]], [LookupPolicy.DEVICE]
    (refused,) = compare(_load(SWAPS | {"count": 2}, steps=held), generic, device)
    # s0 may not go while it holds k; s1 then waits behind it, inactive, and goes freely.
    assert refused.metrics.allocator_refusals == {"holds_ids": 1}
    assert [e.split(":")[0] for e in refused.metrics.step_errors] == ["generators[0]/1"]
    (forced,) = compare(_load(SWAPS | {"count": 2, "force": True}, steps=held), generic, device)
    assert forced.metrics.forced_reclaims == 1 and forced.metrics.step_errors == []
