"""Replay: each step does what it says, and the metrics count it."""

from __future__ import annotations

import attrs
import pytest

from ioasid_core.metrics import Metrics
from ioasid_core.prq import GenericPrq, LookupPolicy, Outcome
from ioasid_core.quantiles import Quantiles
from ioasid_core.replay import replay
from ioasid_core.scenario.schema import (
    AddressSpaceSpec,
    DeviceSpec,
    DomainSpec,
    PlatformSpec,
    Scenario,
    SetSpec,
    Step,
    UnitSpec,
)

PLATFORM = PlatformSpec(
    units=(UnitSpec(name="iommu0", queue_entries=16),),
    address_spaces=(AddressSpaceSpec(name="proc-42"), AddressSpaceSpec(name="proc-7")),
    sets=(
        SetSpec(name="sva", sva=True),
        SetSpec(name="idxd-private"),
        SetSpec(name="small", quota=1),
    ),
    domains=(DomainSpec(name="proc-42-sva", owner="proc-42", sets=("sva",)),),
    devices=(
        DeviceSpec(
            name="dsa0", unit="iommu0", source_id=0x100, owner="proc-42", domain="proc-42-sva"
        ),
        DeviceSpec(name="dsa1", unit="iommu0", source_id=0x101, owner="proc-7"),
    ),
)

NULL_SET = Scenario(
    name="null-set",
    platform=PLATFORM,
    steps=(
        Step(op="bind", device="dsa0", set="sva", address_space="proc-42", name="p"),
        Step(op="alloc", set="idxd-private", owner="idxd", name="aux", at=10),
        Step(op="page_requests", device="dsa0", pasid="p", groups=3, group_size=2, at=20),
        Step(op="page_requests", device="dsa0", pasid="aux", groups=4, stop_markers=1, at=30),
        Step(op="page_requests", device="dsa0", pasid=0x999, at=40),
    ),
)


def _metrics(scenario: Scenario, policy: LookupPolicy) -> dict[str, object]:
    return replay(scenario, GenericPrq(), policy).metrics.as_dict()


def test_global_lookup_hands_the_driver_object_to_the_handler_the_others_refuse() -> None:
    results = {policy: _metrics(NULL_SET, policy) for policy in LookupPolicy}
    assert results[LookupPolicy.GLOBAL]["cross_owner_hits"] == 4
    assert results[LookupPolicy.GLOBAL]["type_confusions"] == 4
    for policy in (LookupPolicy.SET, LookupPolicy.ENDPOINT, LookupPolicy.DEVICE):
        assert results[policy]["cross_owner_hits"] == 0, policy
        assert results[policy]["type_confusions"] == 0, policy
    outcomes = results[LookupPolicy.SET]["outcomes"]
    assert isinstance(outcomes, dict)
    assert {k: v for k, v in outcomes.items() if v} == {
        "foreign": 4,
        "resolved": 6,
        "unknown_pasid": 1,
    }
    assert len(outcomes) == len(Outcome)  # every outcome has a key, zero or not
    device = results[LookupPolicy.DEVICE]["outcomes"]
    assert isinstance(device, dict)
    assert {k: v for k, v in device.items() if v} == {"not_bound": 5, "resolved": 6}
    for result in results.values():
        assert result["responses"] == {"success": 3, "invalid": 5, "failure": 0}
        dropped = result["dropped"]
        assert isinstance(dropped, dict) and dropped["stop_markers"] == 1
        assert result["page_requests"] == 3 * 2 + 4 + 1 + 1
        # The generic queue holds page requests only; every kind is shown all the same.
        assert result["unhandled_events"] == {"fault": 0, "event": 0, "refused_stall": 0}


def test_a_replay_is_deterministic() -> None:
    first = _metrics(NULL_SET, LookupPolicy.GLOBAL)
    assert _metrics(NULL_SET, LookupPolicy.GLOBAL) == first


def test_a_process_pasid_requested_by_another_owners_device_is_a_cross_owner_success() -> None:
    scenario = attrs.evolve(
        NULL_SET,
        steps=(
            Step(op="bind", device="dsa0", set="sva", address_space="proc-42", name="p"),
            Step(op="page_requests", device="dsa1", pasid="p", groups=2),
        ),
    )
    metrics = _metrics(scenario, LookupPolicy.GLOBAL)
    assert metrics["cross_owner_hits"] == 2
    assert metrics["type_confusions"] == 0
    assert metrics["responses"] == {"success": 2, "invalid": 0, "failure": 0}
    refused = _metrics(scenario, LookupPolicy.DEVICE)
    assert refused["responses"] == {"success": 0, "invalid": 2, "failure": 0}


def test_allocation_failures_are_counted_by_reason_and_later_steps_skipped() -> None:
    scenario = attrs.evolve(
        NULL_SET,
        steps=(
            Step(op="alloc", set="small", owner="idxd", name="a"),
            Step(op="alloc", set="small", owner="idxd", name="b"),
            Step(op="free", pasid="b"),
        ),
    )
    result = replay(scenario, GenericPrq()).metrics
    assert result.allocations == 1
    assert result.allocation_failures == {"quota": 1}
    assert len(result.step_errors) == 1
    assert "'b' was never allocated" in result.step_errors[0]
    assert result.peak_live_ioasids == 1


def test_an_unserviced_queue_overflows_and_latency_is_modelled_time() -> None:
    scenario = attrs.evolve(
        NULL_SET,
        steps=(
            Step(op="bind", device="dsa0", set="sva", address_space="proc-42", name="p"),
            Step(op="page_requests", device="dsa0", pasid="p", groups=20, service=False, at=5),
            Step(op="service", unit="iommu0", at=25),
        ),
    )
    metrics = replay(scenario, GenericPrq()).metrics
    assert metrics.dropped["overflow"] == 20 - 15  # 16 slots, one always empty
    assert metrics.auto_responses == 5
    assert metrics.responses["success"] == 15
    assert metrics.request_latency_us == Quantiles([20.0] * 15)


def test_unplug_answers_pending_groups_and_leaves_bound_pasids_orphaned() -> None:
    scenario = attrs.evolve(
        NULL_SET,
        steps=(
            Step(op="bind", device="dsa0", set="sva", address_space="proc-42", name="p"),
            Step(op="page_requests", device="dsa0", pasid="p", groups=2, service=False),
            Step(op="unplug", unit="iommu0", at=3),
        ),
    )
    metrics = replay(scenario, GenericPrq()).metrics
    assert metrics.responses["invalid"] == 0  # the ring was never serviced: nothing pending
    assert metrics.orphaned_ids == 1
    # The requests still in the ring were sent, and died unread with the unit.
    assert metrics.page_requests == metrics.dropped["unit_removed"] == 2


@pytest.mark.parametrize("policy", list(LookupPolicy))
def test_unbind_frees_the_pasid_and_later_requests_find_nothing(policy: LookupPolicy) -> None:
    scenario = attrs.evolve(
        NULL_SET,
        steps=(
            Step(op="bind", device="dsa0", set="sva", address_space="proc-42", name="p"),
            Step(op="page_requests", device="dsa0", pasid=1),
            Step(op="unbind", device="dsa0", pasid="p"),
            Step(op="page_requests", device="dsa0", pasid=1),
        ),
    )
    metrics = replay(scenario, GenericPrq(), policy).metrics
    assert metrics.frees == 1
    assert metrics.responses["success"] == 1
    assert metrics.responses["invalid"] == 1
    assert metrics.orphaned_ids == 0


def test_bind_allocates_within_the_devices_pasid_width() -> None:
    narrow = attrs.evolve(
        PLATFORM,
        devices=(
            DeviceSpec(name="dsa0", unit="iommu0", source_id=0x100, owner="proc-42", pasid_bits=1),
            DeviceSpec(name="dsa1", unit="iommu0", source_id=0x101, owner="proc-7", pasid_bits=0),
        ),
    )
    scenario = Scenario(
        name="narrow",
        platform=narrow,
        steps=(
            Step(op="bind", device="dsa0", set="sva", address_space="proc-42", name="a"),
            Step(op="bind", device="dsa0", set="sva", address_space="proc-7", name="b"),
            Step(op="bind", device="dsa1", set="sva", address_space="proc-7", name="c"),
        ),
    )
    metrics = replay(scenario, GenericPrq()).metrics
    assert metrics.allocations == 1  # PASID 1: the only one a 1-bit device can carry
    # b found no room; so proc-7 still has no PASID, and c tries a 0-bit range.
    assert metrics.allocation_failures == {"no_space": 1, "invalid": 1}


def test_a_run_keeps_the_first_step_errors_and_counts_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run where every step fails keeps a bounded list of messages (its memory must not
    grow with its length) and the exact count, in the metrics and in --json."""
    import ioasid_core.metrics as metrics_module

    monkeypatch.setattr(metrics_module, "STEP_ERRORS_KEPT", 3)
    scenario = attrs.evolve(
        NULL_SET,
        steps=(
            Step(op="alloc", set="small", owner="idxd", name="a"),
            *(Step(op="free", pasid=f"gone{n}") for n in range(7)),
        ),
    )
    result = replay(scenario, GenericPrq()).metrics
    assert result.step_errors_total == 7
    assert len(result.step_errors) == 3  # the first three, in order
    assert all(f"'gone{n}'" in e for n, e in enumerate(result.step_errors))
    as_dict = result.as_dict()
    assert as_dict["step_errors_total"] == 7 and len(as_dict["step_errors"]) == 3  # type: ignore[arg-type]


def test_metrics_made_with_errors_count_them() -> None:
    assert Metrics(step_errors=["a", "b"]).step_errors_total == 2
    assert Metrics(step_errors=["a"], step_errors_total=9).step_errors_total == 9
