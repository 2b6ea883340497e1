"""``examples/shared-sva-set.toml``: with one SVA set shared by processes, a reused PASID
reaches another process's address space under GLOBAL, SET and ENDPOINT; DEVICE refuses it."""

from __future__ import annotations

from pathlib import Path

from ioasid_core.compare import available_vendors, compare
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import LookupPolicy
from ioasid_core.scenario import load_scenario

EXAMPLE = Path(__file__).parent.parent / "examples" / "shared-sva-set.toml"
STALE_GROUPS = 3  # dev-a's requests with the number proc-b was given


def test_set_and_endpoint_hand_a_device_another_process_after_a_pasid_is_reused() -> None:
    vendors = list(available_vendors(new_plugin_manager().hooks).values())
    results = compare(load_scenario(EXAMPLE), vendors)
    checked = 0
    for result in results:
        m = result.metrics
        assert m.step_errors == [], result.vendor
        assert m.pasid_reuses == 1, result.vendor  # proc-b was given proc-a's number
        if not m.outcomes:  # a vendor that answers before any lookup (mainline PRI)
            assert m.cross_owner_hits == 0 and m.vendor_rejects > 0, result.vendor
            continue
        checked += 1
        if result.policy is LookupPolicy.DEVICE:
            assert m.cross_owner_hits == 0, result.vendor
            assert m.responses["invalid"] == STALE_GROUPS, result.vendor
        else:
            assert m.cross_owner_hits == STALE_GROUPS, (result.vendor, result.policy)
            assert m.responses["invalid"] == 0, (result.vendor, result.policy)
    assert checked >= 4 * 4  # generic, vtd, smmuv3, virtio-iommu at least, every policy
