"""VMs in scenarios: loading (key-path errors), the guest_allocations generator, and replay
under the default guest-owned path and VT-d's virtual command path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.allocators import AllocatorOps
from ioasid_core.cli import cli
from ioasid_core.compare import available_vendors
from ioasid_core.errors import AllocatorError
from ioasid_core.guest import GUEST_OWNED, GuestIommu, GuestVm, OptionProblem, guest_path
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.replay import replay
from ioasid_core.scenario import Scenario, ScenarioError, parse_scenario
from ioasid_core.space import IoasidSpace
from ioasid_core.types import SetType
from ioasid_vtd.guest import VcmdGuestIommu
from ioasid_vtd.prq import VtdPrq
from ioasid_vtd.registers import LAYOUT_3_1, LAYOUT_3_3
from ioasid_vtd.state import REGISTRY

EXAMPLE = Path(__file__).parent.parent / "examples" / "guest-vcmd.toml"


def _doc(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "g",
        "platform": {
            "vms": [
                {"name": "vm-a", "quota": 2, "units": ["v0", "v1"]},
                {"name": "vm-b", "units": ["v0"]},
            ]
        },
        "steps": list(steps),
    }
    doc.update(extra)
    return doc


def _alloc(vm: str, name: str, at: float = 0) -> dict[str, Any]:
    return {"op": "guest_alloc", "at": at, "vm": vm, "name": name}


def _nonzero(counts: object) -> dict[str, object]:
    """The reasons that happened (``as_dict`` lists every reason, zero or not)."""
    assert isinstance(counts, dict)
    return {k: v for k, v in counts.items() if v}


def _problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(doc, "t.toml")
    return [(p.key_path, p.expected) for p in caught.value.problems]


# ---------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("doc", "key_path", "message"),
    [
        (_doc(_alloc("vm-z", "a")), "steps[0].vm", "no VM named 'vm-z' (known: vm-a, vm-b)"),
        (
            _doc({"op": "unplug", "vm": "vm-a", "unit": "v9"}),
            "steps[0].unit",
            "no virtual unit of VM 'vm-a' named 'v9' (known: v0, v1)",
        ),
        (
            _doc({"op": "plug", "vm": "vm-a", "unit": "v0"}),
            "steps[0].unit",
            "unit 'v0' of VM 'vm-a' is plugged already",
        ),
        (
            _doc(
                {"op": "unplug", "vm": "vm-b", "unit": "v0"},
                {"op": "unplug", "vm": "vm-b", "unit": "v0"},
            ),
            "steps[1].unit",
            "unit 'v0' of VM 'vm-b' is not plugged here",
        ),
        (
            _doc(_alloc("vm-b", "p"), {"op": "unplug", "vm": "vm-b", "unit": "v0"}),
            "steps[1].unit",
            "unit 'v0' is VM 'vm-b''s last one and the guest still holds PASIDs (p)",
        ),
        (
            _doc(_alloc("vm-a", "p"), _alloc("vm-a", "p")),
            "steps[1].name",
            "'p' already names a live guest PASID of VM 'vm-a' (from steps[0])",
        ),
        (
            _doc(_alloc("vm-a", "p"), {"op": "guest_free", "vm": "vm-b", "pasid": "p"}),
            "steps[1].pasid",
            "no guest PASID named 'p' in VM 'vm-b'",
        ),
        (
            _doc(
                _alloc("vm-a", "p"),
                {"op": "guest_free", "vm": "vm-a", "pasid": "p"},
                {"op": "guest_free", "vm": "vm-a", "pasid": "p"},
            ),
            "steps[2].pasid",
            "guest PASID 'p' was freed at steps[1]; it is no longer live",
        ),
        (
            _doc({"op": "guest_free", "vm": "vm-a", "pasid": 0x100000}),
            "steps[0].pasid",
            "expected a PASID in 0..0xfffff (VM 'vm-a''s capacity)",
        ),
        (_doc({"op": "guest_alloc", "vm": "vm-a"}), "steps[0].name", "required key is missing"),
        (
            _doc({"op": "plug", "unit": "v0"}),
            "steps[0].unit",
            "no host unit named 'v0'; for VM 'vm-a''s, add vm",
        ),
        (
            _doc({"op": "guest_alloc", "vm": "vm-a", "name": "p", "unit": "v0"}),
            "steps[0].unit",
            "op 'guest_alloc' takes no 'unit'",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v and " " not in v else "",
)
def test_guest_steps_are_checked_with_key_paths(
    doc: dict[str, Any], key_path: str, message: str
) -> None:
    ((where, expected),) = _problems(doc)
    assert where == key_path
    assert message in expected


def test_vm_declarations_are_checked_and_every_problem_is_collected() -> None:
    doc = _doc()
    doc["platform"] = {
        "capacity": 16,
        "sets": [{"name": "s", "quota": 10}],
        "vms": [
            {"name": "vm-a", "quota": -1, "capacity": 1, "units": ["v0", "v0"]},
            {"name": "vm-a"},
            {"name": "vm-c", "quota": 8, "colour": "red"},
        ],
    }
    doc["vendor"] = {"vtd": {"vcmd_layout": [{"v": "3.3"}]}, "smmuv3": 4}
    assert _problems(doc) == [
        ("platform.vms[1].name", "duplicate VM name 'vm-a' (first at platform.vms[0])"),
        ("platform.vms[0].quota", "expected an integer >= 0, got -1"),
        ("platform.vms[0].capacity", "expected an integer in 2..0x100000, got 1"),
        ("platform.vms[0].units[1]", "'v0' is listed twice (first at platform.vms[0].units[0])"),
        (
            "platform.vms[2].colour",
            "unknown key (allowed: capacity, name, quota, units)",
        ),
        (
            "platform.vms[2].quota",
            "quotas add up to 18 here, more than the capacity (16): a quota reserves its IDs "
            "up front",
        ),
        (
            "vendor.vtd.vcmd_layout",
            "expected a string, number or boolean, or an array of them, got an array",
        ),
        ("vendor.smmuv3", "expected a table, got an integer (4)"),
    ]


def test_the_generator_is_checked_with_key_paths() -> None:
    doc = _doc(
        generators=[
            {"kind": "guest_allocations", "vm": "vm-z", "count": 0, "interval": 1},
            {"kind": "guest_allocations", "vm": "vm-a", "count": 2, "interval": 0, "free": 2},
        ]
    )
    assert _problems(doc) == [
        ("generators[0].vm", "no VM named 'vm-z' (known: vm-a, vm-b)"),
        ("generators[0].count", "expected an integer in 1..0x10000, got 0"),
        ("generators[1].interval", "expected a finite number > 0, got 0"),
        ("generators[1].free", "expected a number in 0..1, got 2"),
    ]


def test_the_generator_expands_into_checked_steps_the_same_way_every_time() -> None:
    doc = _doc(
        generators=[
            {
                "kind": "guest_allocations",
                "vm": "vm-b",
                "count": 30,
                "interval": 2,
                "free": 0.4,
                "drain": True,
                "prefix": "g",
                "seed": 3,
            }
        ]
    )
    first = parse_scenario(doc, "t.toml")
    assert parse_scenario(doc, "t.toml") == first
    ops = [s.op for s in first.steps]
    assert ops.count("guest_alloc") == 30
    assert ops.count("guest_free") == 30  # the ones freed on the way, then the rest
    last_alloc = max(i for i, op in enumerate(ops) if op == "guest_alloc")
    assert "guest_free" in ops[:last_alloc]
    assert first.steps[0].where == "generators[0]/0" and first.steps[0].name == "g0"
    times = [s.at for s in first.steps]
    assert times == sorted(times)


# ---------------------------------------------------------------------------- replay


def _vtd() -> VendorPrq:
    return VtdPrq()


def _run(doc: dict[str, Any], vendor: VendorPrq) -> dict[str, Any]:
    result = replay(parse_scenario(doc, "t.toml"), vendor)
    metrics: dict[str, Any] = result.metrics.as_dict()
    return metrics


def test_vendors_without_a_guest_path_let_the_guest_own_its_space() -> None:
    assert guest_path(GenericPrq()) is GUEST_OWNED
    assert guest_path(_vtd()) is VtdPrq.guest_pasids
    doc = _doc(*(_alloc("vm-a", f"a{n}", n) for n in range(4)))
    metrics = _run(doc, GenericPrq())
    assert metrics["guest_allocations"] == 4  # a host quota of 2 means nothing to the guest
    assert metrics["host_pasids_peak"] == metrics["vcmd_commands"] == 0


def test_under_vtd_the_host_quota_bounds_the_guest_and_a_free_makes_room() -> None:
    steps = [_alloc("vm-a", f"a{n}", n) for n in range(3)]
    steps.append({"op": "guest_free", "at": 5, "vm": "vm-a", "pasid": "a0"})
    steps.append(_alloc("vm-a", "a3", 6))
    metrics = _run(_doc(*steps), _vtd())
    assert metrics["guest_allocations"] == 3
    assert _nonzero(metrics["guest_allocation_failures"]) == {"quota": 1}
    assert metrics["host_pasids_peak"] == 2
    assert metrics["vcmd_commands"] == 5  # 4 allocate + 1 free, each one write ...
    assert metrics["vm_exits"] == 5 * 2 + 3 * 3  # ... and one VCRSP read; CAP/ECAP/VCCAP


def test_each_vm_gets_distinct_host_pasids_that_its_guest_sees_unchanged() -> None:
    host = IoasidSpace(1 << 20)
    guests = []
    for name in ("vm-a", "vm-b"):
        vm = GuestVm(
            name=name,
            host=host,
            host_set=host.create_set(object(), quota=8, type=SetType.MM),
            space=IoasidSpace(1 << 20),
        )
        iommu = VcmdGuestIommu(vm, LAYOUT_3_1)
        iommu.plug("viommu0")
        guests.append((vm, vm.space.create_set()))
    seen = [[vm.space.alloc(own, 1, 0xFFFFF) for _ in range(3)] for vm, own in guests]
    assert not set(seen[0]) & set(seen[1])
    for (vm, _), pasids in zip(guests, seen, strict=True):
        assert vm.host_set.ioasids() == sorted(pasids)


def test_unplugging_units_keeps_the_group_then_falls_back_and_a_late_plug_is_refused() -> None:
    doc = _doc(
        _alloc("vm-a", "a0", 0),
        {"op": "unplug", "at": 1, "vm": "vm-a", "unit": "v0"},  # the group stays
        _alloc("vm-a", "a1", 2),
        {"op": "guest_free", "at": 3, "vm": "vm-a", "pasid": "a0"},
        {"op": "guest_free", "at": 3, "vm": "vm-a", "pasid": "a1"},
        {"op": "unplug", "at": 4, "vm": "vm-a", "unit": "v1"},  # default allocator again
        _alloc("vm-a", "a2", 5),
        {"op": "plug", "at": 6, "vm": "vm-a", "unit": "v0"},  # busy default: refused
        _alloc("vm-a", "a3", 7),
    )
    vtd = _run(doc, _vtd())
    assert vtd["allocator_switches"] == 1
    assert vtd["scalable_mode_off"] == 1
    assert vtd["guest_allocations"] == 3
    assert _nonzero(vtd["guest_allocation_failures"]) == {"scalable_mode_off": 1}
    assert vtd["host_pasids_peak"] == 2 and vtd["step_errors"] == []
    generic = _run(doc, GenericPrq())
    assert generic["guest_allocations"] == 4 and generic["scalable_mode_off"] == 0
    assert generic["allocator_switches"] == 0


def test_a_replay_without_plugins_uses_a_registry_of_its_own_never_the_global_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the global REGISTRY was used")

    monkeypatch.setattr(REGISTRY, "attach", refuse)
    monkeypatch.setattr(REGISTRY, "allocators_for", refuse)
    metrics = _run(_doc(_alloc("vm-b", "p")), _vtd())
    assert metrics["guest_allocations"] == 1


def test_a_bad_vendor_section_is_reported_with_its_key_path_when_that_vendor_runs() -> None:
    doc = _doc(vendor={"vtd": {"vcmd_layout": "3.2", "colour": 1}, "generic": {"x": 1}})
    with pytest.raises(ScenarioError) as caught:
        _run(doc, _vtd())
    assert [p.key_path for p in caught.value.problems] == [
        "vendor.vtd.colour",
        "vendor.vtd.vcmd_layout",
    ]
    with pytest.raises(ScenarioError, match=r"vendor\.generic\.x: unknown key"):
        _run(doc, GenericPrq())


def test_both_register_layouts_give_the_same_outcome() -> None:
    steps = [_alloc("vm-a", f"a{n}", n) for n in range(3)]
    by_layout = [
        _run(_doc(*steps, vendor={"vtd": {"vcmd_layout": name}}), _vtd())
        for name in (LAYOUT_3_1.name, LAYOUT_3_3.name)
    ]
    assert by_layout[0] == by_layout[1]
    assert _nonzero(by_layout[0]["guest_allocation_failures"]) == {"quota": 1}


class _FailingFreeIommu:
    """A guest path whose backend refuses every free (to see a failed step change nothing)."""

    scalable_mode = True
    commands = 0
    exits = 0

    def __init__(self, vm: GuestVm) -> None:
        self.ops: AllocatorOps[None] = AllocatorOps(self._alloc, self._free)
        self.next = 1
        vm.space.register_allocator(self.ops)

    def _alloc(self, lo: int, hi: int, pdata: None) -> int:
        self.next += 1
        return self.next

    def _free(self, ioasid: int, pdata: None) -> None:
        raise AllocatorError("the backend says no")

    def plug(self, unit: str) -> None:
        pass

    def unplug(self, unit: str) -> None:
        pass

    def close(self) -> None:
        pass


class _FailingFreePath:
    name = "failing-free"
    option_keys: frozenset[str] = frozenset()

    def option_problems(self, options: object) -> list[OptionProblem]:
        return []

    def attach(self, vm: GuestVm) -> GuestIommu:
        return _FailingFreeIommu(vm)


class _FailingFreeVendor(GenericPrq):
    guest_pasids = _FailingFreePath()


def test_a_failed_guest_free_is_a_step_error_and_changes_nothing() -> None:
    scenario = parse_scenario(
        _doc(
            _alloc("vm-b", "p"),
            {"op": "guest_free", "at": 1, "vm": "vm-b", "pasid": "p"},
            {"op": "guest_free", "at": 2, "vm": "vm-b", "pasid": 2},  # the same ID, by number
        ),
        "t.toml",
    )
    run_metrics = replay(scenario, _FailingFreeVendor()).metrics
    assert run_metrics.guest_frees == 0
    # The second attempt meets the same refusal: the ID is still allocated, not half-freed.
    first, second = run_metrics.step_errors
    assert first.startswith("steps[1]: ") and second.startswith("steps[2]: ")
    assert "the backend says no" in first and first[10:] == second[10:]


def _example_doc_with_seed(seed: int) -> Scenario:
    doc = _doc(
        _alloc("vm-b", "b0"),
        generators=[
            {"kind": "guest_allocations", "vm": "vm-a", "count": 12, "interval": 1, "free": 0.5}
        ],
        seed=seed,
    )
    return parse_scenario(doc, "t.toml")


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_the_same_file_and_seed_give_the_same_metrics(seed: int) -> None:
    scenario = _example_doc_with_seed(seed)
    for vendor in (_vtd(), GenericPrq()):
        first = replay(scenario, vendor).metrics.as_dict()
        assert replay(scenario, vendor).metrics.as_dict() == first


def test_compare_json_carries_the_guest_metrics_for_every_vendor(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli, ["compare", str(EXAMPLE), "--policies", "device", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    vendors = set(available_vendors(new_plugin_manager().hooks))
    assert {r["vendor"] for r in report["results"]} == vendors
    for run in report["results"]:
        metrics = run["metrics"]
        for key in (
            "guest_allocations",
            "guest_allocation_failures",
            "guest_frees",
            "host_pasids_peak",
            "scalable_mode_off",
            "vcmd_commands",
            "vm_exits",
        ):
            assert key in metrics, key
        assert (metrics["vcmd_commands"] > 0) == (run["vendor"] in ("vtd", "vtd-iopf"))


def test_compare_exits_2_naming_the_file_once_for_a_bad_vendor_section(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('vcmd_layout = "3.3"', 'vcmd_layout = "3.2"'))
    result = CliRunner().invoke(cli, ["compare", str(bad), "--vendors", "vtd"])
    assert result.exit_code == 2
    assert result.stderr.count(str(bad)) == 1
    assert "vendor.vtd.vcmd_layout: expected one of '3.1', '3.3', got '3.2'" in result.stderr
