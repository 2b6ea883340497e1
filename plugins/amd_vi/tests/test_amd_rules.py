"""The AMD-Vi vendors' rules and unit model, through the pipeline and replays."""

from __future__ import annotations

import re
import struct
from typing import Any

import pytest

from ioasid_amd_vi.handlers import AmdViPrq, ppr_c_check
from ioasid_amd_vi.hardware import AmdUnits
from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    IoasidSpace,
    IommuUnit,
    Outcome,
    PageRequest,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
    request_row,
)
from ioasid_core.testing import Scenario, ScenarioError, parse_scenario, replay

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


# ---------------------------------------------------------------------- the disciplines

STRANGER = 0x0300


def test_iommu_v2_never_answers_a_device_it_does_not_know() -> None:
    pl, pasid = pipeline(AmdViPrq())
    pl.submit(PageRequest(STRANGER, pasid, True, 4, False, Perm.READ, 0x1000))
    pl.submit(PageRequest(STRANGER, pasid, True, 4, True, Perm.READ, 0x2000))
    assert pl.service() == []
    assert pl.counters.unanswered_groups == 1
    assert pl.counters.outcomes == {Outcome.UNKNOWN_DEVICE: 2}


def test_iommu_v2_answers_an_unknown_pasid_at_once_and_the_group_when_it_completes() -> None:
    # get_pasid_state fails for pasid + 1: PPR_INVALID for that request, at once (its tag);
    # the group's own requests complete with the last one: one answer, SUCCESS.
    pl, pasid = pipeline(AmdViPrq())
    pl.submit(PageRequest(DEVID, pasid + 1, True, 5, False, Perm.READ, 0x1000))
    pl.submit(PageRequest(DEVID, pasid, True, 5, False, Perm.READ, 0x2000))
    pl.submit(PageRequest(DEVID, pasid, True, 5, True, Perm.READ, 0x3000))
    responses = pl.service()
    assert [(r.grpid, r.code, r.last) for r in responses] == [
        (5, ResponseCode.INVALID, False),
        (5, ResponseCode.SUCCESS, True),
    ]
    assert pl.counters.premature_responses == 1


def test_ppr_c_never_answers_a_requester_without_a_pci_dev() -> None:
    pl, pasid = pipeline(AmdViPrq(iopf=True))
    pl.submit(PageRequest(STRANGER, pasid, True, 4, False, Perm.READ, 0x1000))
    pl.submit(PageRequest(STRANGER, pasid, True, 4, True, Perm.READ, 0x2000))
    assert pl.service() == []
    assert pl.counters.unanswered_groups == 1
    assert pl.counters.outcomes == {}  # never looked up


@pytest.mark.parametrize(
    ("pasid", "code"),
    [
        (0, ResponseCode.FAILURE),  # pasid == 0
        (0xFF, ResponseCode.INVALID),  # the last the device carries: looked up, not bound
        (0x100, ResponseCode.FAILURE),  # pasid >= max_pasids (8 bits)
    ],
)
def test_ppr_c_refuses_a_pasid_beyond_the_devices_width(pasid: int, code: ResponseCode) -> None:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u", vendor="amd-vi-iopf", pasid_bits=16))
    platform.add_device("narrow", unit="u", source_id=DEVID, owner="p", pasid_bits=8)
    pl = PrqPipeline(platform, "u", AmdViPrq(iopf=True))
    (response,) = pl.process([PageRequest(DEVID, pasid, True, 1, True, Perm.READ)])
    assert response.code is code


def test_gn_is_set_when_the_device_requires_the_pasid() -> None:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u", vendor="amd-vi", pasid_bits=16))
    sva = space.create_set()
    proc = AddressSpace("p")
    platform.add_domain("d", "p", [sva])
    platform.add_device(
        "gpu", unit="u", source_id=DEVID, owner="p", domain="d", prg_response_pasid_required=True
    )
    pasid = space.alloc(sva, 0x8002, 0x8002, proc)
    platform.bind("gpu", pasid, proc)
    pl = PrqPipeline(platform, "u", AmdViPrq())
    pl.submit(PageRequest(DEVID, pasid, True, 0x1A5, True, Perm.READ, 0x1000))
    # data[0] = devid 0x0210; data[1] = PASID 0x8002 | opcode 7 << 28 = 0x7000_8002
    # data[2] = GN 0x4; data[3] = tag 0x1A5 | SUCCESS 0 << 12 = 0x01A5
    assert pl.service_raw() == bytes.fromhex("100200000280007004000000a5010000")
