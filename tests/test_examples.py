"""The bundled examples load and show what they are there to show, under every vendor."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioasid_core.compare import available_vendors, compare
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import LookupPolicy
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.report import render_table
from ioasid_core.scenario import load_scenario

EXAMPLES = Path(__file__).parent.parent / "examples"


def _vendors() -> list[VendorPrq]:
    return list(available_vendors(new_plugin_manager().hooks).values())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_loads_and_replays_without_step_errors(path: Path) -> None:
    scenario = load_scenario(path)
    for result in compare(scenario, _vendors()):
        assert result.metrics.step_errors == [], (result.vendor, result.policy)


def test_null_set_search_global_lookup_is_the_only_one_with_cross_owner_hits() -> None:
    scenario = load_scenario(EXAMPLES / "null-set-search.toml")
    for result in compare(scenario, _vendors()):
        hits = result.metrics.cross_owner_hits
        if not result.metrics.outcomes:
            # A vendor that answers before any lookup (mainline SMMUv3 PRI denies all).
            assert hits == 0 and result.metrics.vendor_rejects > 0, result.vendor
        elif result.policy is LookupPolicy.GLOBAL:
            assert hits > 0, result.vendor
        else:
            assert hits == 0, (result.vendor, result.policy)


def test_prq_storm_overflows_the_shared_ring_and_loses_a_partial_group() -> None:
    scenario = load_scenario(EXAMPLES / "prq-storm.toml")
    (result,) = compare(scenario, _vendors()[:1], [LookupPolicy.DEVICE])
    metrics = result.metrics
    assert metrics.dropped["overflow"] > 0
    assert metrics.auto_responses > 0
    assert metrics.dropped["discarded_partial"] >= 1
    assert metrics.responses["invalid"] == metrics.responses["failure"] == 0
    # 49 usable slots: 16 whole groups of 3 got through the storm, then 16 of the second wave.
    assert metrics.responses["success"] == 16 + 16


def test_guest_vcmd_one_vm_hits_its_quota_under_vtd_and_guests_own_their_space_elsewhere() -> None:
    scenario = load_scenario(EXAMPLES / "guest-vcmd.toml")
    for result in compare(scenario, _vendors(), [LookupPolicy.DEVICE]):
        m = result.metrics
        if result.vendor in ("vtd", "vtd-iopf"):  # one VT-d unit, two drivers' PRQ rules
            # vm-b's quota of 4 refuses b4 and b5; the host only says "no PASID".
            assert m.guest_allocation_failures == {"quota": 2}
            assert 4 < m.host_pasids_peak <= 4 + 24
            assert m.vcmd_commands > 0 and m.vm_exits > m.vcmd_commands
            # viommu0's unplug keeps vm-a's group; viommu1's brings the default back.
            assert m.allocator_switches == 1
        else:
            assert m.guest_allocation_failures == {}, result.vendor
            assert m.host_pasids_peak == m.vcmd_commands == m.allocator_switches == 0
        assert m.scalable_mode_off == 0
        assert m.guest_frees == 17  # vm-a's 16 (as it goes, then drained) and vm-b's b0


def test_queue_depths_each_vendor_drops_what_its_own_queue_cannot_hold() -> None:
    scenario = load_scenario(EXAMPLES / "queue-depths.toml")
    # Rings keep one slot empty (127 of 128, 63 of 64); the virtqueue's 64 buffers all count.
    held = {
        "vtd": 127,
        "vtd-iopf": 127,
        "smmuv3-pri": 63,
        "smmuv3-pri-iopf": 63,
        "virtio-iommu": 64,
    }
    # VT-d's PRO drops without an answer; AMD-Vi has no auto-response either.
    unanswered = {"vtd", "vtd-iopf", "amd-vi", "amd-vi-iopf"}
    for result in compare(scenario, _vendors(), [LookupPolicy.DEVICE]):
        m = result.metrics
        kept = held.get(result.vendor, 160)  # no section, or a queue deep enough (smmuv3)
        assert m.page_requests == 160, result.vendor
        assert m.dropped["overflow"] == 160 - kept, result.vendor
        auto = 0 if result.vendor in unanswered else 160 - kept
        assert m.auto_responses == auto, result.vendor
        assert sum(m.responses.values()) == kept, result.vendor


def test_allocator_swap_shows_cyclic_against_first_fit_reuse_and_the_pending_free() -> None:
    scenario = load_scenario(EXAMPLES / "allocator-swap.toml")
    results = compare(scenario, _vendors())
    for result in results:
        m = result.metrics
        # cyclic in, shared member out (no switch), default back, first fit in, default back.
        assert m.allocator_switches == 4 and m.allocator_refusals == {}
        assert m.forced_reclaims == 0 and m.pending_frees == 0
        # The first-fit churn hands every freed PASID out at the next bind; under cyclic no
        # freed PASID came back (the only reuses are of its IDs, by the first-fit backend).
        # 18 of the 20 reuse distances are 0: ranks 1..18 (p90 of 20) are 0, rank 19 is not.
        distance = m.reuse_distance
        assert distance.percentile(90) == 0.0 < distance.percentile(95) and m.pasid_reuses == 20
        assert set(m.latency_us) == {
            "alloc",
            "free",
            "bind",
            "unbind",
            "attach_spid",
            "page_request_service",
        }
        assert m.request_latency_us.max > 0
    # The guest's requests named guest PASID 101: the SPID resolved them to the VM's PASID.
    for result in results:
        if result.policy is LookupPolicy.GLOBAL and result.metrics.outcomes:
            assert result.metrics.outcomes == {"resolved": 2}, result.vendor
    rows = render_table(scenario.name, results).splitlines()
    assert all(len(row.rstrip()) <= 80 for row in rows if " global " in row or " vendor " in row)


def test_answer_disciplines_own_rules_differ_in_what_the_device_receives() -> None:
    """Worked out by hand from the scenario (17 requests: 2 groups of 4 for acc0's PASID,
    2 groups of 3 for PASID 0x4242 nobody allocated, 1 write, 2 stop markers) and each
    driver's code path."""
    scenario = load_scenario(EXAMPLES / "answer-disciplines.toml")
    results = {r.vendor: r for r in compare(scenario, _vendors(), ["native"])}
    assert all(r.native for r in results.values())

    def seen(vendor: str) -> tuple[object, ...]:
        m = results[vendor].metrics
        return (
            results[vendor].policy,
            m.page_requests,
            dict(m.responses),
            dict(m.outcomes),
            m.dropped["stop_markers"],
            m.unhandled_events["fault"],
        )

    # VT-d 2019: every request looked up on arrival (11 resolved: 8 + 1 + the 2 stop
    # markers; 6 unknown); the 5 LPIG requests answered with their own results.
    assert seen("vtd") == (
        LookupPolicy.GLOBAL,
        17,
        {"success": 5, "invalid": 2},
        {"resolved": 11, "unknown_pasid": 6},
        0,
        0,
    )
    # IOPF era: the first failure stops a group's lookups; stop markers dropped.
    assert seen("vtd-iopf") == (
        LookupPolicy.SET,
        17,
        {"success": 3, "invalid": 2},
        {"resolved": 9, "unknown_pasid": 2},
        2,
        0,
    )
    # SMMUv3 stalls: each request its own group, resumed on its own; the stop markers
    # become faults that did not stall (logged, not page requests).
    assert seen("smmuv3") == (
        LookupPolicy.SET,
        15,
        {"success": 9, "invalid": 6},
        {"resolved": 9, "unknown_pasid": 6},
        0,
        2,
    )
    # Mainline SMMUv3 PRI: every group denied with RESP 0, a Response Failure.
    assert seen("smmuv3-pri")[1:4] == (17, {"failure": 5}, {})


def test_null_set_search_own_rules_tell_the_readme_story() -> None:
    """What the README says of `compare examples/null-set-search.toml --policies native`."""
    scenario = load_scenario(EXAMPLES / "null-set-search.toml")
    own = {r.vendor: r.metrics for r in compare(scenario, _vendors(), ["native"])}
    assert own["vtd"].cross_owner_hits > 0 and own["vtd"].type_confusions > 0
    assert own["smmuv3"].cross_owner_hits == own["virtio-iommu"].cross_owner_hits == 0
    # VT-d 2019 answers the stop marker the IOPF-era drivers drop.
    assert (own["vtd"].responses["success"], own["vtd"].dropped["stop_markers"]) == (6, 0)
    assert (own["vtd-iopf"].responses["success"], own["vtd-iopf"].dropped["stop_markers"]) == (
        5,
        1,
    )
    # Mainline SMMUv3 PRI: nothing but Response Failures.
    assert dict(own["smmuv3-pri"].responses) == {"failure": 13}
