"""The AMD-Vi vendors' rules and unit model, through the pipeline and replays."""

from __future__ import annotations

import re
import struct
from typing import Any

import pytest

from ioasid_amd_vi.handlers import AmdViPrq, ppr_c_check
from ioasid_amd_vi.hardware import AmdUnits
from ioasid_core.platform import AddressSpace, Platform
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import Outcome
from ioasid_core.prq.types import PageRequest, Perm, ResponseCode, request_row
from ioasid_core.replay import replay
from ioasid_core.scenario import Scenario, ScenarioError, parse_scenario
from ioasid_core.space import IoasidSpace
from ioasid_core.types import INVALID_IOASID
from ioasid_core.units import IommuUnit

DEVID = 0x0210


def pipeline(vendor: AmdViPrq) -> tuple[PrqPipeline, int]:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u", vendor=vendor.name, pasid_bits=16))
    sva = space.create_set()
    proc = AddressSpace("p")
    platform.add_domain("d", "p", [sva])
    platform.add_device("gpu", unit="u", source_id=DEVID, owner="p", domain="d")
    pasid = space.alloc(sva, 1, 0xFFFF, proc)
    platform.bind("gpu", pasid, proc)
    rules = vendor.hardware_rules(platform, "u", {})
    return PrqPipeline(platform, "u", vendor, ring_entries=8, hardware=rules), pasid


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (PageRequest(DEVID, INVALID_IOASID, False, 1, True, Perm.READ), ResponseCode.FAILURE),
        (PageRequest(DEVID, 0, True, 1, True, Perm.READ), ResponseCode.FAILURE),
        (PageRequest(DEVID, 7, True, 1, True, Perm.READ), None),
    ],
)
def test_ppr_c_checks(request_: PageRequest, code: ResponseCode | None) -> None:
    assert ppr_c_check(request_row(request_)) is code
    assert AmdViPrq(iopf=True).check(request_) is code
    assert AmdViPrq().check(request_) is None  # amd_iommu_v2 had no such checks


def test_an_rvsd_entry_is_failure_for_ppr_c_and_looked_up_by_iommu_v2() -> None:
    # raw0 = DEVID 0x0210 | PASID[15:0] p << 16 | last 1 << 41
    #      | FLAGS (READ 0x004 | US 0x040 | RVSD 0x080 | GN 0x100 = 0x1C4) << 48 | TYPE 1 << 60
    for vendor in (AmdViPrq(), AmdViPrq(iopf=True)):
        pl, pasid = pipeline(vendor)
        raw0 = DEVID | pasid << 16 | 1 << 41 | 0x1C4 << 48 | 1 << 60
        pl.ring.push(struct.pack("<QQ", raw0, 0x4000))
        (response,) = pl.service()
        expected = ResponseCode.FAILURE if vendor.iopf else ResponseCode.SUCCESS
        assert response.code is expected


def test_the_driver_answers_with_complete_ppr_request() -> None:
    pl, pasid = pipeline(AmdViPrq())
    pl.submit(PageRequest(DEVID, pasid, True, 0x1A5, False, Perm.READ, 0x1000))
    pl.submit(PageRequest(DEVID, pasid, True, 0x1A5, True, Perm.READ, 0x2000))
    # data[0] = devid 0x0210; data[1] = opcode 7 << 28 (no GN: the device does not ask for
    # the PASID); data[2] = 0; data[3] = tag 0x1A5 | SUCCESS 0 << 12
    assert pl.service_raw() == bytes.fromhex("100200000000007000000000a5010000")


def test_a_pasid_not_in_the_devices_table_is_answered_invalid() -> None:
    pl, pasid = pipeline(AmdViPrq())
    (response,) = pl.process([PageRequest(DEVID, pasid + 1, True, 3, True, Perm.READ)])
    assert response.code is ResponseCode.INVALID
    assert pl.counters.outcomes == {Outcome.NOT_BOUND: 1}


def test_an_overflow_is_never_answered_and_stops_the_log_until_drained() -> None:
    pl, pasid = pipeline(AmdViPrq())  # 8 entries: holds 7
    taken = sum(pl.submit(PageRequest(DEVID, pasid, True, g, True, Perm.READ)) for g in range(9))
    assert taken == 7
    assert pl.counters.overflow_dropped == 2
    assert pl.counters.auto_responses == {}  # no auto-response: the device waits
    pl.service(limit=1)
    assert not pl.submit(PageRequest(DEVID, pasid, True, 20, True, Perm.READ))  # stopped
    pl.service()
    assert pl.submit(PageRequest(DEVID, pasid, True, 21, True, Perm.READ))  # restarted


# ---------------------------------------------------------------------- the unit model


def scenario(vendor: dict[str, Any] | None, groups: int = 1) -> Scenario:
    doc: dict[str, Any] = {
        "name": "amd",
        "platform": {
            "units": [{"name": "u", "pasid_bits": 20, "queue_entries": 4096}],
            "address_spaces": [{"name": "p"}],
            "sets": [{"name": "sva", "sva": True}],
            "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
            "devices": [
                {"name": "gpu", "unit": "u", "source_id": DEVID, "owner": "p", "domain": "d"}
            ],
        },
        "steps": [
            {"op": "bind", "device": "gpu", "set": "sva", "address_space": "p", "name": "p"},
            {"op": "page_requests", "device": "gpu", "pasid": "p", "groups": groups},
        ],
    }
    if vendor is not None:
        doc["vendor"] = {"amd-vi": vendor}
    return parse_scenario(doc, "t.toml")


@pytest.mark.parametrize("vendor", [AmdViPrq(), AmdViPrq(iopf=True)])
def test_the_ppr_log_length_sets_the_queue_and_overflow_goes_unanswered(vendor: AmdViPrq) -> None:
    m = replay(scenario({"ppr_log_entries": 256}, groups=300), vendor).metrics
    assert m.dropped["overflow"] == 300 - 255
    assert m.auto_responses == 0
    assert m.responses["success"] == 255


@pytest.mark.parametrize(
    ("pasid_bits", "options", "bits"),
    [
        (20, {}, 16),  # the driver's PASID_MASK caps any unit
        (12, {}, 12),
        (20, {"pasmax": 7}, 8),
        (20, {"pasmax": 19}, 16),
    ],
)
def test_pasid_width(pasid_bits: int, options: dict[str, object], bits: int) -> None:
    shape = AmdUnits().shape(pasid_bits, 4096, options)
    assert (shape.pasid_bits, shape.queue_entries) == (bits, 4096)


@pytest.mark.parametrize(
    ("options", "key", "says"),
    [
        ({"ppr_log_entries": 512 + 1}, "ppr_log_entries", "a power of two in 256..32768"),
        ({"ppr_log_entries": 128}, "ppr_log_entries", "a power of two in 256..32768"),
        ({"ppr_log_entries": 65536}, "ppr_log_entries", "a power of two in 256..32768"),
        ({"pasmax": 20}, "pasmax", "0..19"),
        ({"pasmax": "16"}, "pasmax", "0..19"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], key: str, says: str) -> None:
    problems = AmdUnits().option_problems(options)
    assert [k for k, _ in problems] == [key]
    assert says in problems[0][1]
    for vendor in (AmdViPrq(), AmdViPrq(iopf=True)):
        with pytest.raises(ScenarioError, match=re.escape(f"vendor.amd-vi.{key}")):
            replay(scenario(options), vendor)
