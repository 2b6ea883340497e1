"""Scenario generators: exact expansions, determinism, merge order, and validation."""

from __future__ import annotations

import copy
import itertools
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ioasid_core.compare import available_vendors, compare
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import LookupPolicy
from ioasid_core.scenario import Scenario, ScenarioError, Step, load_scenario, parse_scenario
from ioasid_core.scenario.generators import UNKNOWN_PASID_BASE
from ioasid_core.scenario.schema import GeneratedProcesses

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

BASE = tomllib.loads(
    """\
name = "gen"
seed = 3

[platform]
owners = ["idxd"]

[[platform.units]]
name = "iommu0"
[[platform.units]]
name = "iommu1"

[[platform.address_spaces]]
name = "proc"
[[platform.address_spaces]]
name = "proc1"

[[platform.sets]]
name = "sva"
sva = true

[[platform.devices]]
name = "d0"
unit = "iommu0"
source_id = 1
owner = "proc"
[[platform.devices]]
name = "d1"
unit = "iommu0"
source_id = 2
owner = "proc"
[[platform.devices]]
name = "d9"
unit = "iommu1"
source_id = 3
owner = "proc"

[[steps]]
at = 0
op = "bind"
device = "d0"
set = "sva"
address_space = "proc"
name = "p0"
[[steps]]
at = 0
op = "bind"
device = "d1"
set = "sva"
address_space = "proc1"                 # another process: binding proc would share p0's PASID
name = "p1"
"""
)

CHURN: dict[str, Any] = {
    "kind": "churn",
    "at": 10,
    "device": "d0",
    "set": "sva",
    "address_space": "proc",
    "count": 3,
    "live": 2,
    "interval": 5,
    "prefix": "c",
}
STREAM: dict[str, Any] = {
    "kind": "page_request_stream",
    "at": 5,
    "devices": ["d0", "d1"],
    "count": 6,
    "group_size": [1, 3],
    "interval": 2,
    "pasids": {"d0": ["p0"], "d1": ["p1"]},
    "foreign_pasids": ["p0"],
    "mix": {"valid": 1, "unknown": 1, "foreign": 1, "stop": 1},
}
STORM: dict[str, Any] = {
    "kind": "storm",
    "at": 7,
    "devices": ["d0", "d1"],
    "pasids": ["p0", "p1"],
    "groups": 4,
    "group_size": 2,
    "unit": "iommu0",
    "delay": 30,
}


def _load(*generators: dict[str, Any], seed: int | None = None) -> Scenario:
    data = copy.deepcopy(BASE)
    data["generators"] = [copy.deepcopy(g) for g in generators]
    if seed is not None:
        data["seed"] = seed
    return parse_scenario(data, "t.toml")


def _generated(scenario: Scenario) -> list[Step]:
    return [s for s in scenario.steps if s.where.startswith("generators")]


def _error(*generators: dict[str, Any]) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        _load(*generators)
    return caught.value


# ---------------------------------------------------------------- expansion


def test_churn_binds_unbinds_the_oldest_past_live_and_the_rest_at_the_end() -> None:
    steps = _generated(_load(CHURN))
    bind = {"op": "bind", "device": "d0", "set": "sva", "address_space": "proc"}
    assert steps == [
        Step(**bind, at=10.0, name="c0", where="generators[0]/0"),  # type: ignore[arg-type]
        Step(**bind, at=15.0, name="c1", where="generators[0]/1"),  # type: ignore[arg-type]
        Step(op="unbind", at=20.0, device="d0", pasid="c0", where="generators[0]/2"),
        Step(**bind, at=25.0, name="c2", where="generators[0]/3"),  # type: ignore[arg-type]
        Step(op="unbind", at=30.0, device="d0", pasid="c1", where="generators[0]/4"),
        Step(op="unbind", at=35.0, device="d0", pasid="c2", where="generators[0]/5"),
    ]


def test_churn_names_default_to_the_generator_index() -> None:
    churn = {k: v for k, v in CHURN.items() if k != "prefix"}
    names = [s.name for s in _generated(_load(churn)) if s.op == "bind"]
    assert names == ["churn[0].0", "churn[0].1", "churn[0].2"]


def test_churn_jitter_is_drawn_from_the_seed() -> None:
    churn = CHURN | {"jitter": 4}
    times = [s.at for s in _generated(_load(churn))]
    assert times == [s.at for s in _generated(_load(churn))]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(5 <= gap <= 9 for gap in gaps)
    others = {tuple(s.at for s in _generated(_load(churn, seed=seed))) for seed in range(5)}
    assert len(others) > 1


def test_churn_by_processes_binds_each_from_a_fresh_process_that_exits_after() -> None:
    churn = {k: v for k, v in CHURN.items() if k != "address_space"} | {"processes": True}
    scenario = _load(churn)
    binds = [s for s in _generated(scenario) if s.op == "bind"]
    assert [(s.address_space, s.name) for s in binds] == [
        ("cproc0", "c0"),
        ("cproc1", "c1"),
        ("cproc2", "c2"),
    ]
    # The declared address spaces, and the churn's processes as one range.
    assert [a.name for a in scenario.platform.address_spaces] == ["proc", "proc1"]
    assert scenario.platform.processes == (
        GeneratedProcesses(prefix="c", count=3, where="generators[0]"),
    )
    vendors = available_vendors(new_plugin_manager().hooks)
    (result,) = compare(scenario, [vendors["generic"]], [LookupPolicy.DEVICE])
    m = result.metrics
    # Every bind allocates (the two explicit binds too); every churn unbind frees.
    assert (m.allocations, m.sva_binds, m.frees, m.step_errors) == (5, 5, 3, [])


def test_churn_over_one_address_space_shares_its_pasid() -> None:
    vendors = available_vendors(new_plugin_manager().hooks)
    (result,) = compare(_load(CHURN), [vendors["generic"]], [LookupPolicy.DEVICE])
    m = result.metrics
    # proc is bound on d0 already (p0): the churn's binds are references on that PASID.
    assert (m.allocations, m.sva_binds, m.frees, m.step_errors) == (2, 5, 0, [])


def test_churn_cycles_through_a_pool_of_address_spaces() -> None:
    churn = {k: v for k, v in CHURN.items() if k != "address_space"}
    churn |= {"address_spaces": ["proc1", "proc"], "count": 4}
    binds = [s for s in _generated(_load(churn)) if s.op == "bind"]
    assert [s.address_space for s in binds] == ["proc1", "proc", "proc1", "proc"]


def test_an_exited_process_cannot_be_bound_again() -> None:
    churn = {k: v for k, v in CHURN.items() if k != "address_space"} | {"processes": True}
    data = copy.deepcopy(BASE)
    data["generators"] = [churn]
    data["steps"].append(
        {
            "op": "bind",
            "at": 100,
            "device": "d1",
            "set": "sva",
            "address_space": "cproc0",
            "name": "late",
        }
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "t.toml")
    assert str(caught.value) == (
        "t.toml: steps[2].address_space: process 'cproc0' has exited (its last binding went "
        "at generators[0]/2)"
    )


@pytest.mark.parametrize(
    ("change", "key_path", "message"),
    [
        ({"processes": True}, "generators[0]", "got address_space and processes"),
        ({"address_space": None}, "generators[0]", "got none"),
        ({"address_space": None, "address_spaces": []}, "generators[0].address_spaces", "least"),
        ({"address_space": None, "address_spaces": ["x"]}, "generators[0].address_spaces[0]", "no"),
        ({"address_space": None, "processes": 1}, "generators[0].processes", "a boolean"),
        (
            {"address_space": None, "processes": True, "prefix": ""},
            "generators[0].prefix",
            "process 'proc1' is already an address space (platform.address_spaces[1])",
        ),
    ],
)
def test_churn_says_who_binds(change: dict[str, Any], key_path: str, message: str) -> None:
    churn = {k: v for k, v in (CHURN | change).items() if v is not None}
    error = _error(churn)
    assert error.key_path == key_path, str(error)
    assert message in error.expected, str(error)


def test_page_request_stream_exact_steps_for_a_seed() -> None:
    steps = _generated(_load(STREAM))
    shown = [(s.at, s.device, s.pasid, s.group_size, s.stop_markers) for s in steps]
    assert shown == EXPECTED_STREAM
    assert all(s.op == "page_requests" and s.groups == 1 and s.service for s in steps)
    assert [s.where for s in steps] == [f"generators[0]/{n}" for n in range(6)]


EXPECTED_STREAM: list[tuple[float, str | None, str | int | None, int, int]] = [
    (5.0, "d0", "p0", 1, 0),  # valid
    (7.0, "d1", UNKNOWN_PASID_BASE + 1, 3, 0),  # unknown: base + its index in the stream
    (9.0, "d0", "p0", 2, 1),  # stop: a last group, then the marker
    (11.0, "d1", "p1", 2, 0),  # valid
    (13.0, "d1", "p0", 2, 0),  # foreign: d0's PASID from d1
    (15.0, "d0", UNKNOWN_PASID_BASE + 5, 1, 0),
]


def test_page_request_stream_kinds_follow_the_mix() -> None:
    only_unknown = STREAM | {"mix": {"unknown": 1}, "count": 3}
    pasids = [s.pasid for s in _generated(_load(only_unknown))]
    assert pasids == [UNKNOWN_PASID_BASE, UNKNOWN_PASID_BASE + 1, UNKNOWN_PASID_BASE + 2]
    only_stop = STREAM | {"mix": {"stop": 1}}
    steps = _generated(_load(only_stop))
    assert all(
        s.stop_markers == 1 and s.pasid == {"d0": "p0", "d1": "p1"}[s.device or ""] for s in steps
    )
    only_foreign = STREAM | {"mix": {"foreign": 2, "valid": 0}, "service": False}
    steps = _generated(_load(only_foreign))
    assert {s.pasid for s in steps} == {"p0"} and not any(s.service for s in steps)


def test_page_request_stream_shared_pasids_and_fixed_group_size() -> None:
    stream = STREAM | {"pasids": ["p0"], "devices": ["d0"], "group_size": 2, "mix": {"valid": 1}}
    steps = _generated(_load(stream))
    assert {(s.device, s.pasid, s.group_size) for s in steps} == {("d0", "p0", 2)}


def test_storm_fires_every_device_at_once_then_services_the_unit() -> None:
    steps = _generated(_load(STORM))
    assert steps == [
        Step(
            op="page_requests",
            at=7.0,
            device=device,
            pasid=pasid,
            groups=4,
            group_size=2,
            service=False,
            where=f"generators[0]/{n}",
        )
        for n, (device, pasid) in enumerate([("d0", "p0"), ("d1", "p1")])
    ] + [Step(op="service", at=37.0, unit="iommu0", where="generators[0]/2")]


# ---------------------------------------------------------------- determinism and merge


def test_same_seed_same_steps_another_seed_different() -> None:
    first = _load(STREAM, CHURN | {"jitter": 3}).steps
    assert _load(STREAM, CHURN | {"jitter": 3}).steps == first
    assert _load(STREAM, CHURN | {"jitter": 3}, seed=4).steps != first


def test_a_generator_seed_overrides_the_scenario_seed() -> None:
    pinned = STREAM | {"seed": 99}
    assert _generated(_load(pinned, seed=1)) == _generated(_load(pinned, seed=2))


def test_two_generators_of_one_file_draw_different_numbers() -> None:
    scenario = _load(STREAM, STREAM | {"at": 100})
    first = [
        (s.device, s.group_size) for s in scenario.steps if s.where.startswith("generators[0]")
    ]
    second = [
        (s.device, s.group_size) for s in scenario.steps if s.where.startswith("generators[1]")
    ]
    assert first != second


def test_merge_is_by_time_explicit_steps_first_at_equal_times() -> None:
    data = copy.deepcopy(BASE)
    data["steps"].append({"at": 20, "op": "service", "unit": "iommu0"})
    data["steps"].append({"at": 100, "op": "service", "unit": "iommu0"})
    data["generators"] = [CHURN]
    steps = parse_scenario(data, "t.toml").steps
    assert [s.where for s in steps] == [
        "steps[0]",
        "steps[1]",
        "generators[0]/0",
        "generators[0]/1",
        "steps[2]",
        "generators[0]/2",
        "generators[0]/3",
        "generators[0]/4",
        "generators[0]/5",
        "steps[3]",
    ]
    assert [s.at for s in steps] == sorted(s.at for s in steps)


def test_generators_tie_in_file_order() -> None:
    scenario = _load(STORM, STORM | {"at": 7, "delay": 0})
    assert [s.where for s in scenario.steps[2:]] == [
        "generators[0]/0",
        "generators[0]/1",
        "generators[1]/0",
        "generators[1]/1",
        "generators[1]/2",
        "generators[0]/2",
    ]


def test_explicit_steps_going_back_in_time_are_still_reported() -> None:
    data = copy.deepcopy(BASE)
    data["steps"].append({"at": 50, "op": "service", "unit": "iommu0"})
    data["steps"].append({"at": 40, "op": "service", "unit": "iommu0"})
    data["generators"] = [CHURN]
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "t.toml")
    assert [p.key_path for p in caught.value.problems] == ["steps[3].at"]
    assert "steps[2].at" in caught.value.problems[0].expected


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("generator", "key_path", "message"),
    [
        ({"kind": "chrun", "at": 0}, "generators[0].kind", "expected one of churn, "),
        ({"at": 0}, "generators[0].kind", "required key is missing"),
        (CHURN | {"colour": 1}, "generators[0].colour", "unknown key (allowed: address_space,"),
        ({k: v for k, v in CHURN.items() if k != "live"}, "generators[0].live", "missing"),
        (CHURN | {"device": "d7"}, "generators[0].device", "no device named 'd7'"),
        (CHURN | {"set": "nope"}, "generators[0].set", "no set named 'nope'"),
        (CHURN | {"address_space": "x"}, "generators[0].address_space", "no address space"),
        (CHURN | {"count": 0}, "generators[0].count", "expected an integer in 1..0x10000"),
        (CHURN | {"interval": 0}, "generators[0].interval", "expected a finite number > 0"),
        (CHURN | {"at": -1}, "generators[0].at", "expected a finite number >= 0"),
        (CHURN | {"seed": "x"}, "generators[0].seed", "expected an integer >= 0"),
        (STREAM | {"devices": []}, "generators[0].devices", "at least one device"),
        (STREAM | {"devices": ["d0", "zz"]}, "generators[0].devices[1]", "no device named"),
        (STREAM | {"group_size": [3, 1]}, "generators[0].group_size", "1 <= min <= max"),
        (STREAM | {"group_size": 0}, "generators[0].group_size", "an integer in 1..0x10000"),
        (STORM | {"group_size": [1, 10**6]}, "generators[0].group_size", "<= max <= 0x10000"),
        (STREAM | {"mix": {"valid": 0}}, "generators[0].mix", "a weight > 0"),
        (STREAM | {"mix": {"bogus": 1}}, "generators[0].mix.bogus", "unknown key"),
        (STREAM | {"mix": {"valid": -1}}, "generators[0].mix.valid", ">= 0"),
        (STREAM | {"pasids": {"d0": ["p0"]}}, "generators[0].pasids", "no PASIDs for device"),
        (
            STREAM | {"pasids": {"d0": ["p0"], "d1": ["p1"], "d9": ["p0"]}},
            "generators[0].pasids.d9",
            "not one of this stream's devices",
        ),
        (STREAM | {"pasids": [True]}, "generators[0].pasids[0]", "a PASID name or a number"),
        (
            {k: v for k, v in STREAM.items() if k != "foreign_pasids"},
            "generators[0].foreign_pasids",
            "the mix has foreign",
        ),
        (STREAM | {"perm": ["fly"]}, "generators[0].perm[0]", "expected one of read"),
        (STORM | {"pasids": ["p0"]}, "generators[0].pasids", "one PASID per device (2), got 1"),
        (STORM | {"unit": "iommu9"}, "generators[0].unit", "no unit named 'iommu9'"),
        (
            STORM | {"devices": ["d0", "d9"], "pasids": ["p0", "p1"]},
            "generators[0].devices",
            "behind unit 'iommu1'",
        ),
        # Generated steps are checked like written ones, at their generated key path.
        (STREAM | {"pasids": ["nope"]}, "generators[0]/", "no PASID named 'nope'"),
        (CHURN | {"prefix": "p"}, "generators[0]/0.name", "'p0' already names a live PASID"),
    ],
)
def test_each_generator_rule_names_its_key_path(
    generator: dict[str, Any], key_path: str, message: str
) -> None:
    error = _error(generator)
    assert error.key_path.startswith(key_path), str(error)
    assert message in error.expected, str(error)


def test_every_problem_of_every_generator_is_reported() -> None:
    error = _error(CHURN | {"count": 0}, STORM | {"unit": "zz", "delay": -1})
    assert [p.key_path for p in error.problems] == [
        "generators[0].count",
        "generators[1].unit",
        "generators[1].delay",
    ]


def test_a_stream_using_a_name_before_the_churn_binds_it_is_reported() -> None:
    stream = STREAM | {"at": 0, "pasids": ["c0"], "mix": {"valid": 1}}
    error = _error(CHURN, stream)
    assert error.key_path.startswith("generators[1]/")
    assert "no PASID named 'c0'" in error.expected


# ---------------------------------------------------------------- the example


def test_the_example_expands_deterministically_and_replays_without_step_errors() -> None:
    path = EXAMPLES / "churn-and-stream.toml"
    scenario = load_scenario(path)
    assert scenario.steps == load_scenario(path).steps
    kinds = {s.where.split("/")[0] for s in scenario.steps}
    assert {"generators[0]", "generators[1]"} <= kinds
    vendors = list(available_vendors(new_plugin_manager().hooks).values())
    for result in compare(scenario, vendors):
        assert result.metrics.step_errors == [], (result.vendor, result.policy)


# ---------------------------------------------------------------- driver_pasids

DRIVER: dict[str, Any] = {
    "kind": "driver_pasids",
    "at": 4,
    "set": "sva",
    "owner": "idxd",
    "count": 3,
    "live": 2,
    "interval": 5,
    "device": "d1",
    "groups": 2,
    "prefix": "aux",
}


def test_driver_pasids_allocate_use_and_free_the_oldest_past_live() -> None:
    steps = _generated(_load(DRIVER))
    alloc = {"op": "alloc", "set": "sva", "owner": "idxd"}
    use = {"op": "page_requests", "device": "d1", "groups": 2}
    assert steps == [
        Step(**alloc, at=4.0, name="aux0", where="generators[0]/0"),  # type: ignore[arg-type]
        Step(**use, at=4.0, pasid="aux0", where="generators[0]/1"),  # type: ignore[arg-type]
        Step(**alloc, at=9.0, name="aux1", where="generators[0]/2"),  # type: ignore[arg-type]
        Step(**use, at=9.0, pasid="aux1", where="generators[0]/3"),  # type: ignore[arg-type]
        Step(op="free", at=14.0, pasid="aux0", where="generators[0]/4"),
        Step(**alloc, at=19.0, name="aux2", where="generators[0]/5"),  # type: ignore[arg-type]
        Step(**use, at=19.0, pasid="aux2", where="generators[0]/6"),  # type: ignore[arg-type]
        Step(op="free", at=24.0, pasid="aux1", where="generators[0]/7"),
        Step(op="free", at=29.0, pasid="aux2", where="generators[0]/8"),
    ]


def test_driver_pasids_without_a_device_only_allocate_and_free() -> None:
    plain = {k: v for k, v in DRIVER.items() if k not in ("device", "groups", "prefix")}
    steps = _generated(_load(plain))
    assert {s.op for s in steps} == {"alloc", "free"}
    assert [s.name for s in steps if s.op == "alloc"] == [
        "driver[0].0",
        "driver[0].1",
        "driver[0].2",
    ]


@pytest.mark.parametrize(
    ("generator", "key_path", "message"),
    [
        ({k: v for k, v in DRIVER.items() if k != "device"}, "generators[0].device", "missing"),
        (DRIVER | {"owner": ""}, "generators[0].owner", "expected a non-empty string"),
        (DRIVER | {"set": "x"}, "generators[0].set", "no set named 'x'"),
        (DRIVER | {"device": "d7"}, "generators[0].device", "no device named 'd7'"),
        (DRIVER | {"groups": -1}, "generators[0].groups", "expected an integer in 0..0x10000"),
        (DRIVER | {"live": 0}, "generators[0].live", "expected an integer >= 1"),
    ],
)
def test_driver_pasids_rules_name_their_key_path(
    generator: dict[str, Any], key_path: str, message: str
) -> None:
    error = _error(generator)
    assert error.key_path.startswith(key_path), str(error)
    assert message in error.expected, str(error)


def test_driver_pasids_requests_are_type_confusions_only_where_the_search_reaches_them() -> None:
    vendors = available_vendors(new_plugin_manager().hooks)
    for result in compare(_load(DRIVER), [vendors["generic"]]):
        m = result.metrics
        assert not m.step_errors and m.allocations == 2 + 3 and m.frees == 3
        # d1's requests carry the driver's PASIDs, whose private data is a driver object.
        found = result.policy.value in ("global", "set")  # "sva" is the SVA set here
        assert m.type_confusions == (6 if found else 0), result.policy
