"""examples/amd-riscv.toml, as RISC-V has it: the IOMMU answers what the driver never sees."""

from __future__ import annotations

from pathlib import Path

from ioasid_core.plugin import LookupPolicy, new_plugin_manager
from ioasid_core.testing import available_vendors, compare, load_scenario

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "amd-riscv.toml"


def test_riscv_answers_the_stranger_failure_and_the_overflow_success_itself_vtd_drops() -> None:
    vendors = available_vendors(new_plugin_manager().hooks)
    scenario = load_scenario(EXAMPLE)
    riscv, vtd = compare(scenario, [vendors["riscv-iommu"], vendors["vtd"]], [LookupPolicy.DEVICE])
    m = riscv.metrics
    assert m.page_requests == 2 * 2 + 24
    # The stranger's 4 requests never reach the queue: the 2 LAST ones answered FAILURE.
    assert m.dropped["hardware"] == 4
    assert m.outcomes["unknown_device"] == 0  # the driver never looked them up
    # 15 of the 24 fit the 16-entry queue; pqof, and the other 9 are answered SUCCESS.
    assert m.dropped["overflow"] == 9
    assert dict(m.auto_response_codes) == {"failure": 2, "success": 9}
    assert dict(m.responses) == {"success": 15}
    # VT-d's driver sees the stranger and answers INVALID itself.
    v = vtd.metrics
    assert v.dropped["hardware"] == 0
    # VT-d 2019 looks every request up as it comes (per request): all 4 of the stranger's.
    assert v.outcomes["unknown_device"] == 4
    assert v.responses["invalid"] == 2
    # VT-d's PRO drops the same 9 without an answer (no auto-response): they never retry.
    assert v.dropped["overflow"] == 9
    assert v.auto_responses == 0
    assert dict(v.responses) == {"invalid": 2, "success": 15}
