"""Vendor sections: how each vendor's hardware shapes the scenario's units (queue depth, PASID
width), which keys each vendor reads, and the errors for everything else."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.compare import available_vendors, check_vendor_sections, compare
from ioasid_core.guest import OptionProblem
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.replay import replay
from ioasid_core.scenario import Scenario, ScenarioError, parse_scenario
from ioasid_core.vendor_options import (
    NEUTRAL_UNITS,
    UnitShape,
    bool_problems,
    int_problems,
    option_problems,
    option_section,
    unit_model,
    unread_sections,
)

VENDORS = available_vendors(new_plugin_manager().hooks)


def scenario(
    vendor: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    bursts: int = 1,
    groups: int = 200,
    binds: int = 1,
) -> Scenario:
    """One 20-bit unit with a 4096-entry queue and one device bound by ``binds`` processes
    (a PASID each), then ``bursts`` unserviced bursts of ``groups`` page requests, then one
    service."""
    steps: list[dict[str, Any]] = [
        {"op": "bind", "device": "dev", "set": "sva", "address_space": f"q{i}", "name": f"p{i}"}
        for i in range(binds)
    ]
    steps += [
        {"op": "page_requests", "device": "dev", "pasid": "p0", "groups": groups, "service": False}
        for _ in range(bursts)
    ]
    steps.append({"op": "service", "unit": "u"})
    doc: dict[str, Any] = {
        "name": "shape",
        "platform": {
            "units": [{"name": "u", "pasid_bits": 20, "queue_entries": 4096}],
            "address_spaces": [{"name": "p"}, *({"name": f"q{i}"} for i in range(binds))],
            "sets": [{"name": "sva", "sva": True}],
            "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
            "devices": [
                {"name": "dev", "unit": "u", "source_id": 0x10, "owner": "p", "domain": "d"}
            ],
        },
        "steps": steps,
    }
    if vendor is not None:
        doc["vendor"] = {name: dict(options) for name, options in vendor.items()}
    return parse_scenario(doc, "t.toml")


def overflow(vendor_name: str, options: Mapping[str, Mapping[str, Any]], groups: int) -> int:
    result = replay(scenario(options, groups=groups), VENDORS[vendor_name])
    assert not result.metrics.step_errors
    return result.metrics.dropped["overflow"]


# ---------------------------------------------------------------------- queue depth


@pytest.mark.parametrize(
    ("vendor", "section", "held"),
    [
        # A head/tail ring of n entries holds n - 1 (one slot tells full from empty) ...
        ("vtd", {"vtd": {"prq_order": 0}}, 127),
        ("vtd", {"vtd": {"prq_order": 1}}, 255),
        ("smmuv3", {"smmuv3": {"evtq_log2size": 7}}, 127),
        ("smmuv3-pri", {"smmuv3": {"priq_log2size": 8}}, 255),
        ("smmuv3-pri-iopf", {"smmuv3": {"priq_log2size": 7}}, 127),
        # ... a virtqueue of n buffers holds n events.
        ("virtio-iommu", {"virtio-iommu": {"event_queue_size": 256}}, 256),
    ],
)
def test_a_vendor_section_sets_the_queue_depth(
    vendor: str, section: dict[str, dict[str, Any]], held: int
) -> None:
    assert overflow(vendor, section, 1000) == 1000 - held
    assert overflow(vendor, {}, 1000) == 0  # the scenario's own 4096 entries


def test_each_smmuv3_vendor_reads_its_own_queue_from_the_shared_section() -> None:
    section = {"smmuv3": {"evtq_log2size": 7}}
    assert overflow("smmuv3", section, 1000) == 1000 - 127
    assert overflow("smmuv3-pri", section, 1000) == 0  # PRI requests arrive on the PRI queue


def test_other_vendors_ignore_a_section_that_is_not_theirs() -> None:
    assert overflow("generic", {"vtd": {"prq_order": 0}}, 1000) == 0
    assert overflow("virtio-iommu", {"vtd": {"prq_order": 0}}, 1000) == 0


# ---------------------------------------------------------------------- PASID width


def bind_failures(vendor_name: str, options: Mapping[str, Mapping[str, Any]], binds: int) -> int:
    result = replay(scenario(options, binds=binds, groups=1), VENDORS[vendor_name])
    return sum(result.metrics.allocation_failures.values())


@pytest.mark.parametrize(
    ("vendor", "section", "usable"),
    [
        ("vtd", {"vtd": {"pss": 2}}, 7),  # 2 << 2 = 8 PASIDs; PASID 0 is RID_PASID
        ("smmuv3", {"smmuv3": {"ssidsize": 3}}, 7),  # SSID 0 is DMA without PASID
        ("virtio-iommu", {"virtio-iommu": {"pasid_size": 3}}, 7),
    ],
)
def test_a_vendor_section_sets_the_pasid_width(
    vendor: str, section: dict[str, dict[str, Any]], usable: int
) -> None:
    assert bind_failures(vendor, section, usable) == 0
    assert bind_failures(vendor, section, usable + 3) == 3
    assert bind_failures(vendor, {}, usable + 3) == 0


def test_vtd_pss_beyond_twenty_bits_is_capped_at_the_driver_maximum() -> None:
    shape = unit_model(VENDORS["vtd"]).shape(8, 64, {"pss": 31})
    assert shape == UnitShape(pasid_bits=20, queue_entries=64)


def test_smmuv3_without_two_level_cd_tables_caps_every_master_at_ten_bits() -> None:
    model = unit_model(VENDORS["smmuv3"])
    assert model.shape(20, 64, {"two_level_cd": False}).device_pasid_bits == 10
    assert model.shape(20, 64, {}).device_pasid_bits is None
    linear = {"smmuv3": {"two_level_cd": False}}
    assert bind_failures("smmuv3", linear, 1023) == 0  # SSIDs 1..1023
    assert bind_failures("smmuv3", linear, 1025) == 2
    assert bind_failures("smmuv3", {}, 1025) == 0


# ---------------------------------------------------------------------- errors


def problems_of(sc: Scenario, vendors: list[VendorPrq], installed: list[VendorPrq]) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        check_vendor_sections(sc, vendors, installed)
    return [f"{p.key_path}: {p.expected}" for p in caught.value.problems]


def test_bad_values_and_unknown_keys_are_named_with_their_key_path() -> None:
    sc = scenario({"vtd": {"prq_order": 9, "pss": True, "queue": 3}})
    found = problems_of(sc, [VENDORS["vtd"]], list(VENDORS.values()))
    assert found == [
        "vendor.vtd.queue: unknown key (this vendor reads prq_order, pss, vcmd_layout)",
        "vendor.vtd.prq_order: expected an integer in 0..7, got 9",
        "vendor.vtd.pss: expected an integer in 0..31, got True",
    ]


def test_a_shared_section_reports_each_problem_once() -> None:
    sc = scenario({"smmuv3": {"two_level_cd": "no"}})
    smmus = [VENDORS[n] for n in ("smmuv3", "smmuv3-pri", "smmuv3-pri-iopf")]
    assert problems_of(sc, smmus, smmus) == [
        "vendor.smmuv3.two_level_cd: expected true or false, got 'no'"
    ]


def test_a_section_no_installed_vendor_reads_is_an_error() -> None:
    sc = scenario({"vdt": {"prq_order": 1}})
    problem = problems_of(sc, [GenericPrq()], list(VENDORS.values()))[0]
    assert problem.startswith("vendor.vdt: no installed vendor reads this section (vendors read: ")
    for section in ("amd-vi", "generic", "riscv-iommu", "smmuv3", "virtio-iommu", "vtd"):
        assert f" {section}," in problem or f" {section})" in problem


def test_virtio_event_queue_size_must_be_a_power_of_two() -> None:
    sc = scenario({"virtio-iommu": {"event_queue_size": 100}})
    assert problems_of(sc, [VENDORS["virtio-iommu"]], []) == [
        "vendor.virtio-iommu.event_queue_size: expected a power of two in 2..32768, got 100"
    ]


def test_compare_checks_every_section_before_running_anything() -> None:
    sc = scenario({"vtd": {"prq_order": -1}})
    ran: list[object] = []
    with pytest.raises(ScenarioError, match=r"vendor\.vtd\.prq_order"):
        compare(sc, [GenericPrq(), VENDORS["vtd"]], progress=ran.append)
    assert ran == []


def test_a_vendor_that_reads_nothing_says_so() -> None:
    assert option_problems(GenericPrq(), {"x": 1}) == [
        ("x", "unknown key (this vendor reads no options)")
    ]


def test_sections_and_helpers() -> None:
    assert option_section(VENDORS["smmuv3-pri"]) == "smmuv3"
    assert option_section(GenericPrq()) == "generic"
    assert unit_model(GenericPrq()) is NEUTRAL_UNITS
    assert unread_sections(["a"], []) == [("a", "no vendor is installed to read it")]
    assert int_problems({"k": 3}, "k", 0, 7) == []
    assert int_problems({}, "k", 0, 7) == []
    assert int_problems({"k": 6}, "k", 0, 8, power_of_two=True) == [
        ("k", "expected a power of two in 0..8, got 6")
    ]
    assert bool_problems({"k": 1}, "k") == [("k", "expected true or false, got 1")]


class _NotAModel:
    option_keys: frozenset[str] = frozenset()

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return []


class _BadVendor(GenericPrq):
    unit_model = _NotAModel()


def test_a_unit_model_missing_a_member_is_a_plugin_error_naming_it() -> None:
    with pytest.raises(
        TypeError, match=r"vendor 'generic' does not conform to VendorPrq: unit_model lacks shape"
    ):
        unit_model(_BadVendor())


# ---------------------------------------------------------------------- the command


def test_the_command_exits_2_naming_the_bad_section(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "s"\n[platform]\nunits = [{name = "u"}]\n'
        "[vendor.vtd]\nprq_order = 8\n[vendor.vdt]\nx = 1\n"
    )
    result = CliRunner().invoke(cli, ["compare", str(path), "--vendors", "vtd"])
    assert result.exit_code == 2
    assert f"{path}: vendor.vtd.prq_order: expected an integer in 0..7, got 8" in result.stderr
    assert f"{path}: vendor.vdt: no installed vendor reads this section" in result.stderr


# ---------------------------------------------------------------------- arrays as values


def test_an_option_may_be_an_array_of_plain_values() -> None:
    sc = scenario({"riscv-iommu": {"pri_disabled": [0x10, 0x20]}})
    assert sc.vendor_options == (("riscv-iommu", (("pri_disabled", (0x10, 0x20)),)),)


def test_an_array_of_tables_or_arrays_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"vendor\.vtd\.x: expected a string, number or"):
        scenario({"vtd": {"x": [[1]]}})


def test_an_overlong_array_is_refused_before_anything_reads_it() -> None:
    with pytest.raises(
        ScenarioError, match=r"vendor\.vtd\.x: an array of 4097 items; at most 4096"
    ):
        scenario({"vtd": {"x": list(range(4097))}})
