"""The RISC-V IOMMU's hardware rules and its unit model, through the pipeline and replays."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ioasid_core.plugin import (
    AddressSpace,
    IoasidSpace,
    IommuUnit,
    PageRequest,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
)
from ioasid_core.testing import Scenario, ScenarioError, parse_scenario, replay
from ioasid_riscv_iommu.handlers import RiscvPrq
from ioasid_riscv_iommu.hardware import MAX_DID_LIST, RiscvUnits

DID = 0x01_0010  # segment 1, RID 0x0010
OTHER = 0x01_0020
UNKNOWN = 0x02_0000


def world(
    pri_disabled: tuple[int, ...] = (), entries: int = 8
) -> tuple[PrqPipeline, int, AddressSpace]:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u", vendor="riscv-iommu", pasid_bits=20))
    sva = space.create_set()
    proc = AddressSpace("p")
    platform.add_domain("d", "p", [sva])
    platform.add_device("dev", unit="u", source_id=DID, owner="p", domain="d")
    platform.add_device("off", unit="u", source_id=OTHER, owner="p", domain="d")
    pasid = space.alloc(sva, 1, 0xFFFFF, proc)
    platform.bind("dev", pasid, proc)
    vendor = RiscvPrq()
    rules = vendor.hardware_rules(platform, "u", {"pri_disabled": list(pri_disabled)})
    pipeline = PrqPipeline(platform, "u", vendor, ring_entries=entries, hardware=rules)
    return pipeline, pasid, proc


def rw(device: int, pasid: int, grpid: int = 1, *, last: bool = True) -> PageRequest:
    return PageRequest(device, pasid, True, grpid, last, Perm.READ | Perm.WRITE, 0x1000)


def test_no_device_context_is_answered_failure_by_the_iommu() -> None:
    pl, pasid, _ = world()
    assert not pl.submit(rw(UNKNOWN, pasid))
    assert pl.counters.auto_responses == {ResponseCode.FAILURE: 1}
    assert pl.counters.hardware_rejected == 1
    assert pl.service() == []  # the driver never saw it


def test_pri_disabled_is_answered_invalid_by_the_iommu() -> None:
    pl, pasid, _ = world(pri_disabled=(OTHER,))
    assert not pl.submit(rw(OTHER, pasid))
    assert pl.submit(rw(DID, pasid))
    assert pl.counters.auto_responses == {ResponseCode.INVALID: 1}
    assert [r.code for r in pl.service()] == [ResponseCode.SUCCESS]


@pytest.mark.parametrize(
    "request_",
    [
        PageRequest(UNKNOWN, 1, True, 1, False, Perm.READ, 0x1000),  # L=0
        PageRequest(UNKNOWN, 1, True, 1, True, Perm.NONE, 0),  # a stop marker
    ],
)
def test_what_needs_no_answer_is_dropped_without_one(request_: PageRequest) -> None:
    pl, _, _ = world()
    assert not pl.submit(request_)
    assert pl.counters.hardware_rejected == 1
    assert pl.counters.auto_responses == {}


def test_overflow_sets_pqof_answers_success_and_drops_until_it_is_cleared() -> None:
    pl, pasid, _ = world(entries=4)  # holds 3
    taken = sum(pl.submit(rw(DID, pasid, g)) for g in range(5))
    assert taken == 3 and pl.ring.overflow
    assert pl.counters.auto_responses == {ResponseCode.SUCCESS: 2}  # retried by the device
    assert len(pl.service(limit=2)) == 2  # room now, but pqof is still set
    assert not pl.submit(rw(DID, pasid, 9))
    assert pl.counters.auto_responses == {ResponseCode.SUCCESS: 3}
    assert len(pl.service()) == 1  # drained: the driver clears pqof
    assert pl.submit(rw(DID, pasid, 10))


def test_the_driver_answers_with_ats_prgr_per_group() -> None:
    pl, pasid, _ = world()
    pl.submit(rw(DID, pasid, 7, last=False))
    pl.submit(rw(DID, pasid, 7))
    raw = pl.service_raw()
    # dword0 = opcode 4 | func 1 << 7 | DSV 1 << 33 | RID 0x0010 << 40 | DSEG 1 << 56
    #        = 0x0100_1002_0000_0084 (no PASID: the device does not require one)
    # dword1 = PRGI 7 << 32 | SUCCESS 0 << 44 | DST_ID 0x0010 << 48 = 0x0010_0007_0000_0000
    assert raw == bytes.fromhex("84000000021000010000000007001000")


# ---------------------------------------------------------------------- through replays


def scenario(vendor: dict[str, Any] | None, *, groups: int = 1, device: str = "dev") -> Scenario:
    doc: dict[str, Any] = {
        "name": "riscv",
        "platform": {
            "units": [{"name": "u", "pasid_bits": 20, "queue_entries": 4096}],
            "address_spaces": [{"name": "p"}],
            "sets": [{"name": "sva", "sva": True}],
            "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
            "devices": [
                {"name": "dev", "unit": "u", "source_id": DID, "owner": "p", "domain": "d"},
                {"name": "off", "unit": "u", "source_id": OTHER, "owner": "p", "domain": "d"},
            ],
        },
        "steps": [
            {"op": "bind", "device": device, "set": "sva", "address_space": "p", "name": "p"},
            {"op": "page_requests", "device": device, "pasid": "p", "groups": groups},
        ],
    }
    if vendor is not None:
        doc["vendor"] = {"riscv-iommu": vendor}
    return parse_scenario(doc, "t.toml")


def test_pri_disabled_in_a_scenario() -> None:
    m = replay(scenario({"pri_disabled": [OTHER]}, groups=3, device="off"), RiscvPrq()).metrics
    assert m.page_requests == 3
    assert m.dropped["hardware"] == 3
    assert m.auto_responses == 3
    assert sum(m.responses.values()) == 0


@pytest.mark.parametrize(("log2", "held"), [(3, 7), (5, 31)])
def test_pq_log2size_sets_the_queue_depth(log2: int, held: int) -> None:
    m = replay(scenario({"pq_log2size": log2}, groups=100), RiscvPrq()).metrics
    assert m.dropped["overflow"] == 100 - held
    assert m.auto_responses == 100 - held
    assert m.responses["success"] == held


@pytest.mark.parametrize("pd", [8, 17, 20])
def test_pd_sets_the_pasid_width(pd: int) -> None:
    shape = RiscvUnits().shape(20, 4096, {"pd": pd})
    assert (shape.pasid_bits, shape.queue_entries) == (pd, 4096)


def test_without_options_the_scenario_shapes_the_unit() -> None:
    shape = RiscvUnits().shape(13, 100, {})
    assert (shape.pasid_bits, shape.queue_entries) == (13, 100)


@pytest.mark.parametrize(
    ("options", "key", "says"),
    [
        ({"pd": 16}, "pd", "expected 8, 17 or 20"),
        ({"pd": True}, "pd", "expected 8, 17 or 20"),
        ({"pq_log2size": 0}, "pq_log2size", "1..19"),
        ({"pq_log2size": 20}, "pq_log2size", "1..19"),
        ({"pri_disabled": 5}, "pri_disabled", "a list of at most 4096 device IDs"),
        ({"pri_disabled": [1, 1 << 24]}, "pri_disabled[1]", "a 24-bit device ID"),
        ({"pri_disabled": [True]}, "pri_disabled[0]", "a 24-bit device ID"),
        ({"pri_disabled": list(range(MAX_DID_LIST + 1))}, "pri_disabled", "at most 4096"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], key: str, says: str) -> None:
    problems = RiscvUnits().option_problems(options)
    assert [k for k, _ in problems] == [key]
    assert says in problems[0][1]
    with pytest.raises(ScenarioError, match=re.escape(f"vendor.riscv-iommu.{key}")):
        replay(scenario(options), RiscvPrq())


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"vendor\.riscv-iommu\.log2sz: unknown key"):
        replay(scenario({"log2sz": 3}), RiscvPrq())


def test_a_request_from_a_device_gone_since_it_was_queued_is_not_answered() -> None:
    pl, pasid, _ = world()
    assert pl.submit(rw(OTHER, pasid, 3))  # "off" has a device context: queued
    pl.platform.remove_device("off")
    assert pl.service() == []  # the RFC: no device tracked, no point to process PRGR
    assert pl.counters.unanswered_groups == 1
