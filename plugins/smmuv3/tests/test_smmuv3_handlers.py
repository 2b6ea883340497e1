"""The SMMUv3 handlers end to end: raw ring in, decoded commands out, replay and CLI."""

from __future__ import annotations

import errno
import json
import re
import struct
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    EncodeError,
    IoasidSet,
    IoasidSpace,
    IommuUnit,
    LookupPolicy,
    Outcome,
    PageRequest,
    PageResponse,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
    SetType,
    UnhandledEvent,
    UnhandledKind,
    VendorPrq,
    new_plugin_manager,
)
from ioasid_core.testing import cli, load_scenario, replay, to_csv
from ioasid_smmuv3.bench import smmuv3_evtq_ratio
from ioasid_smmuv3.commands import (
    COMMAND_SIZE,
    PriResp,
    PriRespCommand,
    ResumeCommand,
    ResumeResp,
    resume_for,
)
from ioasid_smmuv3.events import (
    EVENT_RECORD_SIZE,
    EventNotRecoverableError,
    EventRecord,
    StageTwoFaultError,
    decode_event_batch,
)
from ioasid_smmuv3.handlers import (
    PRI_IOPF_VENDOR,
    PRI_VENDOR,
    STALL_VENDOR,
    PriPrq,
    StallPrq,
    decode_stall_batch,
    encode_resumes,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "null-set-search.toml"
SID, OTHER_SID, UNKNOWN_SID = 0x100, 0x101, 0x999


@attrs.define
class World:
    platform: Platform
    sva: IoasidSet
    proc: AddressSpace
    pasid: int
    """proc's SVA PASID, bound on SID."""
    private: int
    """A PASID of another owner's set (a driver object, not an address space)."""


@attrs.define(eq=False)
class DriverObject:
    owner: str
    dying: bool = False


def world() -> World:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="smmu0", vendor="smmuv3", pasid_bits=20))
    sva = space.create_set()
    proc = AddressSpace("proc-1")
    mm = space.create_set(proc, type=SetType.MM)
    private = space.create_set()
    platform.add_domain("sva-1", proc.name, [sva, mm])
    platform.add_domain("aux", "drv", [private])
    platform.add_device("m0", unit="smmu0", source_id=SID, owner=proc.name, domain="sva-1")
    platform.add_device("m1", unit="smmu0", source_id=OTHER_SID, owner="drv", domain="aux")
    pasid = space.alloc(sva, 1, 0xFFFFF, proc)
    platform.bind("m0", pasid, proc)
    driver_pasid = space.alloc(private, 1, 0xFFFFF, DriverObject("drv"))
    return World(platform, sva, proc, pasid, driver_pasid)


def pipe(w: World, vendor: VendorPrq, policy: LookupPolicy | None = None) -> PrqPipeline:
    return PrqPipeline(w.platform, "smmu0", vendor, policy=policy, sva_set=w.sva)


def req(
    pasid: int | None, *, sid: int = SID, grpid: int = 1, last: bool = True, perm: Perm = Perm.READ
) -> PageRequest:
    if pasid is None:
        return PageRequest(sid, INVALID_IOASID, False, grpid, last, perm, 0x4000)
    return PageRequest(sid, pasid, True, grpid, last, perm, 0x4000)


def resumes(raw: bytes) -> list[ResumeCommand]:
    return [ResumeCommand.decode(raw, o) for o in range(0, len(raw), COMMAND_SIZE)]


def pri_resps(raw: bytes) -> list[PriRespCommand]:
    return [PriRespCommand.decode(raw, o) for o in range(0, len(raw), COMMAND_SIZE)]


# ---------------------------------------------------------------------- the stall path


def test_stall_vendor_shape() -> None:
    vendor = StallPrq()
    assert isinstance(vendor, VendorPrq)
    assert (vendor.name, vendor.entry_size) == (STALL_VENDOR, EVENT_RECORD_SIZE)
    assert vendor.default_policy is LookupPolicy.SET
    assert vendor.expected is AddressSpace


def test_stall_record_fields() -> None:
    request = PageRequest(SID, 0x42, True, 0xBEEF, True, Perm.READ | Perm.EXEC | Perm.PRIV, 0x1234)
    (record,) = decode_event_batch(StallPrq().encode_request(request))
    assert (record.event_id, record.stall, record.stag) == (0x10, True, 0xBEEF)
    assert (record.sid, record.ssv, record.ssid, record.input_addr) == (SID, True, 0x42, 0x1234)
    assert (record.rnw, record.ind, record.pnu) == (True, True, True)
    assert StallPrq().decode_batch(StallPrq().encode_request(request)) == [request]


@pytest.mark.parametrize(
    ("pasid_of", "sid", "resp", "outcome"),
    [
        ("own", SID, ResumeResp.RETRY, Outcome.RESOLVED),
        ("unallocated", SID, ResumeResp.ABORT, Outcome.UNKNOWN_PASID),
        ("none", SID, ResumeResp.ABORT, Outcome.NO_PASID),
        ("private", SID, ResumeResp.ABORT, Outcome.FOREIGN),
        ("own", UNKNOWN_SID, ResumeResp.ABORT, Outcome.UNKNOWN_DEVICE),
    ],
)
def test_stall_resume_per_outcome(
    pasid_of: str, sid: int, resp: ResumeResp, outcome: Outcome
) -> None:
    w = world()
    pasid = {"own": w.pasid, "unallocated": 0xABCDE, "none": None, "private": w.private}[pasid_of]
    p = pipe(w, StallPrq())
    assert p.submit(req(pasid, sid=sid, grpid=0x1234))
    assert resumes(p.service_raw()) == [ResumeCommand(sid=sid, stag=0x1234, resp=resp)]
    assert p.counters.outcomes == {outcome: 1}


def test_dying_address_space_is_aborted_under_set() -> None:
    w = world()
    w.proc.dying = True
    p = pipe(w, StallPrq())
    p.submit(req(w.pasid))
    assert [c.resp for c in resumes(p.service_raw())] == [ResumeResp.ABORT]
    assert p.counters.outcomes == {Outcome.DYING: 1}


def test_each_stall_is_its_own_group() -> None:
    """Partial requests and a shared STAG still give one RESUME per stall, nothing held."""
    w = world()
    p = pipe(w, StallPrq())
    for last in (False, False, True):
        p.submit(req(w.pasid, grpid=7, last=last))
    out = resumes(p.service_raw())
    assert out == [ResumeCommand(sid=SID, stag=7, resp=ResumeResp.RETRY)] * 3
    assert p.iopf.counters.groups == 3
    assert p.iopf.partial(SID) == [] and p.iopf.pending(SID) == []


def test_read_write_is_a_write_stall() -> None:
    raw = StallPrq().encode_request(req(1, perm=Perm.READ | Perm.WRITE | Perm.EXEC))
    assert StallPrq().decode_batch(raw)[0].perm == Perm.WRITE | Perm.EXEC


# Golden records that are well formed but not page requests (bytes worked out by hand):
# C_BAD_STE (0x04) from SID 0x100: dw0 = 0x04 | 0x100 << 32 = 0x0000_0100_0000_0004
C_BAD_STE = bytes.fromhex("0400000000010000" + "00" * 24)
# F_PERMISSION (0x13), STALL clear, a read: dw0 = 0x13 | 0x100 << 32; dw1 = RnW 1 << 35
#   = 0x0000_0008_0000_0000 -> 00 00 00 00 08 00 00 00
TERMINATED = bytes.fromhex("1300000000010000" + "0000000008000000" + "00" * 16)
# F_TRANSLATION (0x10), stalled, stage 2: dw0 = 0x10 | SSV 1 << 11 | SSID 0x2A << 12 | SID 0x100
#   << 32 = 0x0000_0100_0002_A810 -> 10 a8 02 00 00 01 00 00; dw1 = STAG 0x1234 | STALL 1 << 31
#   | S2 1 << 39 = 0x0000_0080_8000_1234 -> 34 12 00 80 80 00 00 00; dw2 = 0x7000; dw3 = 0
S2_STALL = bytes.fromhex("10a8020000010000" + "3412008080000000" + "0070000000000000" + "00" * 8)


def test_golden_unhandled_records_decode_as_what_they_are() -> None:
    c_bad_ste, terminated, s2_stall = (
        decode_event_batch(r)[0] for r in (C_BAD_STE, TERMINATED, S2_STALL)
    )
    assert (c_bad_ste.event_id, c_bad_ste.sid, c_bad_ste.handled) == (0x04, SID, False)
    assert (terminated.event_id, terminated.stall, terminated.rnw) == (0x13, False, True)
    assert (s2_stall.stall, s2_stall.s2, s2_stall.ssid, s2_stall.stag) == (True, True, 0x2A, 0x1234)
    assert s2_stall.input_addr == 0x7000 and not s2_stall.recoverable
    with pytest.raises(StageTwoFaultError) as info:
        s2_stall.to_page_request()
    assert info.value.errno == errno.EFAULT


@pytest.mark.parametrize(
    ("raw", "kind", "says"),
    [
        (C_BAD_STE, UnhandledKind.EVENT, "C_BAD_STE (0x04) from SID 0x100: not a fault"),
        (TERMINATED, UnhandledKind.FAULT, "F_PERMISSION (0x13) from SID 0x100 did not stall"),
        (S2_STALL, UnhandledKind.REFUSED_STALL, "STAG 0x1234 is never resumed"),
    ],
)
def test_a_record_that_is_not_a_request_is_an_unhandled_event(
    raw: bytes, kind: UnhandledKind, says: str
) -> None:
    vendor = StallPrq()
    with pytest.raises(UnhandledEvent, match=re.escape(says)) as info:
        vendor.decode_batch(vendor.encode_request(req(1)) + raw)
    assert (info.value.kind, info.value.offset) == (kind, EVENT_RECORD_SIZE)


def test_unhandled_events_are_counted_by_kind_never_resumed_nor_malformed() -> None:
    """Three records the driver only logs among two stalls: the stalls are resumed, the
    others counted once each by kind (not as malformed, not as page requests)."""
    w = world()
    p = pipe(w, StallPrq())
    p.submit(req(w.pasid, grpid=1))
    for raw in (C_BAD_STE, TERMINATED, S2_STALL):
        assert p.ring.push(raw)
    p.submit(req(w.pasid, grpid=4))
    assert [c.stag for c in resumes(p.service_raw())] == [1, 4]
    assert p.counters.unhandled_events == {
        UnhandledKind.EVENT: 1,
        UnhandledKind.FAULT: 1,
        UnhandledKind.REFUSED_STALL: 1,
    }
    assert (p.counters.malformed, p.counters.page_requests, p.counters.errors) == (0, 2, [])


def test_a_stage_2_stall_alone_is_not_resumed() -> None:
    """Before, an S2 stall was resumed like a stage-1 one (RETRY): the kernel refused it."""
    w = world()
    p = pipe(w, StallPrq())
    assert p.ring.push(S2_STALL)
    assert p.service_raw() == b""
    assert p.counters.unhandled_events == {UnhandledKind.REFUSED_STALL: 1}
    assert p.counters.outcomes == {}


def test_stop_marker_is_never_answered() -> None:
    """A stalling master sends no stop marker: the model writes a terminated fault for one,
    which the driver only logs."""
    w = world()
    p = pipe(w, StallPrq())
    p.submit(req(w.pasid, perm=Perm.NONE))
    assert p.service_raw() == b""
    assert p.counters.unhandled_events == {UnhandledKind.FAULT: 1}
    assert p.counters.malformed == 0


def test_cli_decode_lists_unhandled_records_and_exits_0(tmp_path: Path) -> None:
    dump = tmp_path / "evtq.bin"
    dump.write_bytes(StallPrq().encode_request(req(5, grpid=9)) + C_BAD_STE + S2_STALL)
    result = CliRunner().invoke(cli, ["decode", "smmuv3", str(dump), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(e["offset"], e["pasid"], e["grpid"]) for e in report["entries"]] == [(0, 5, 9)]
    assert [(u["offset"], u["kind"]) for u in report["unhandled"]] == [
        (0x20, "event"),
        (0x40, "refused_stall"),
    ]
    assert "C_BAD_STE" in report["unhandled"][0]["description"]
    assert report["errors"] == []
    table = CliRunner().invoke(cli, ["decode", "smmuv3", str(dump)], terminal_width=200)
    assert table.exit_code == 0
    assert "2 unhandled event(s)" in table.stdout and "refused_stall" in table.stdout
    assert "1 page request(s)" in table.stdout


def test_stall_refuses_what_a_record_cannot_carry() -> None:
    with pytest.raises(EncodeError):
        StallPrq().encode_request(attrs.evolve(req(1), needs_pasid=True))
    with pytest.raises(EncodeError):
        StallPrq().encode_request(req(1, grpid=1 << 16))


word = st.integers(0, (1 << 64) - 1)
stall_words = st.tuples(word, word, word, word).map(
    lambda w: ((w[0] & ~0xFC) | 0x10, (w[1] | 1 << 31) & ~(1 << 39), w[2], w[3])
)


def _reference(data: bytes) -> list[PageRequest]:
    return [record.to_page_request() for record in decode_event_batch(data)]


def _kind(record: EventRecord) -> UnhandledKind:
    """The reference classification of a record that is not a page request."""
    if not record.handled:
        return UnhandledKind.EVENT
    return UnhandledKind.REFUSED_STALL if record.stall and record.s2 else UnhandledKind.FAULT


@given(st.lists(stall_words, max_size=16))
def test_fast_stall_decode_equals_the_reference(records: list[tuple[int, ...]]) -> None:
    data = b"".join(struct.pack("<4Q", *r) for r in records)
    assert decode_stall_batch(data) == _reference(data)
    assert decode_stall_batch(memoryview(data)) == _reference(data)


@given(st.lists(stall_words, min_size=1, max_size=8), st.tuples(word, word, word, word), st.data())
def test_fast_stall_decode_rejects_like_the_reference(
    records: list[tuple[int, ...]], bad: tuple[int, int, int, int], data: st.DataObject
) -> None:
    if (bad[0] & 0xFC) == 0x10 and bad[1] >> 31 & 1 and not bad[1] >> 39 & 1:
        # make it not a page request: drop the stall, or make it a stage-2 one
        flip = data.draw(st.sampled_from([1 << 31, 1 << 39]))
        bad = (bad[0], bad[1] ^ flip, bad[2], bad[3])
    at = data.draw(st.integers(0, len(records)))
    records.insert(at, bad)
    raw = b"".join(struct.pack("<4Q", *r) for r in records)
    with pytest.raises(EventNotRecoverableError):
        _reference(raw)
    with pytest.raises(UnhandledEvent) as caught:
        decode_stall_batch(raw)
    assert caught.value.offset == at * EVENT_RECORD_SIZE
    assert caught.value.kind is _kind(decode_event_batch(raw)[at])


@given(
    st.lists(
        st.builds(
            PageResponse,
            st.integers(0, (1 << 32) - 1),
            st.integers(0, (1 << 16) - 1),
            st.sampled_from(ResponseCode),
        ),
        max_size=8,
    )
)
def test_fast_resume_encode_equals_the_codec(responses: list[PageResponse]) -> None:
    assert encode_resumes(responses) == b"".join(resume_for(r).encode() for r in responses)


def test_fast_resume_encode_checks_ranges() -> None:
    with pytest.raises(EncodeError, match="stag"):
        encode_resumes([PageResponse(1, 1 << 16, ResponseCode.SUCCESS)])
    with pytest.raises(EncodeError, match="sid"):
        encode_resumes([PageResponse(1 << 32, 1, ResponseCode.SUCCESS)])


# ---------------------------------------------------------------------- the PRI path


def test_mainline_pri_denies_every_group_on_last_only() -> None:
    w = world()
    vendor = PriPrq()
    assert (vendor.name, vendor.entry_size) == (PRI_VENDOR, 16)
    p = pipe(w, vendor)
    p.submit(req(w.pasid, grpid=3, last=False))
    p.submit(req(w.pasid, grpid=3, last=False))
    assert p.service_raw() == b""
    p.submit(req(w.pasid, grpid=3))
    p.submit(req(0xABCDE, grpid=4))
    out = pri_resps(p.service_raw())
    assert [(c.grpid, c.resp) for c in out] == [(3, PriResp.DENY), (4, PriResp.DENY)]
    assert p.counters.outcomes == {}  # nothing was looked up
    assert p.counters.vendor_rejects == 2
    # RESP 0 is the PCIe Response Failure: counted as such, not as INVALID.
    assert p.counters.responses == {ResponseCode.FAILURE: 2}


def test_pri_iopf_resolves() -> None:
    w = world()
    vendor = PriPrq(iopf=True)
    assert vendor.name == PRI_IOPF_VENDOR
    p = pipe(w, vendor)
    p.submit(req(w.pasid, grpid=3, last=False))
    p.submit(req(w.pasid, grpid=3))
    p.submit(req(w.private, grpid=5))
    out = pri_resps(p.service_raw())
    assert [(c.sid, c.grpid, c.resp) for c in out] == [
        (SID, 3, PriResp.SUCC),
        (SID, 5, PriResp.FAIL),  # INVALID -> 1, Invalid Request: PRI stays on
    ]
    assert p.counters.outcomes == {Outcome.RESOLVED: 2, Outcome.FOREIGN: 1}


def test_pri_mapping_may_be_replaced() -> None:
    w = world()
    swapped = {
        ResponseCode.SUCCESS: PriResp.SUCC,
        ResponseCode.INVALID: PriResp.DENY,
        ResponseCode.FAILURE: PriResp.FAIL,
    }
    p = pipe(w, PriPrq(iopf=True, mapping=swapped))
    p.submit(req(0xABCDE))
    assert [c.resp for c in pri_resps(p.service_raw())] == [PriResp.DENY]
    p = pipe(w, PriPrq(mapping=swapped))  # mainline denies with the code mapped to DENY
    p.submit(req(w.pasid))
    assert [c.resp for c in pri_resps(p.service_raw())] == [PriResp.DENY]
    assert p.counters.responses == {ResponseCode.INVALID: 1}


@pytest.mark.parametrize("policy", list(LookupPolicy))
@pytest.mark.parametrize("make", [StallPrq, lambda: PriPrq(iopf=True)])
def test_every_policy_can_be_chosen(policy: LookupPolicy, make: Callable[[], VendorPrq]) -> None:
    w = world()
    p = pipe(w, make(), policy)
    p.submit(req(w.pasid))
    assert [r.code for r in p.service()] == [ResponseCode.SUCCESS]


# ---------------------------------------------------------------------- replay, CLI, plugin


def test_replay_set_has_no_cross_owner_hits_global_has() -> None:
    scenario = load_scenario(EXAMPLE)
    vendor = StallPrq()
    by_set = replay(scenario, vendor).metrics
    assert replay(scenario, vendor).policy is LookupPolicy.SET
    assert by_set.cross_owner_hits == 0
    assert replay(scenario, vendor, LookupPolicy.GLOBAL).metrics.cross_owner_hits > 0
    pri = replay(scenario, PriPrq(iopf=True), LookupPolicy.GLOBAL).metrics
    assert pri.cross_owner_hits > 0
    assert replay(scenario, PriPrq(), LookupPolicy.GLOBAL).metrics.cross_owner_hits == 0


def test_replay_counts_the_stop_marker_as_an_unhandled_fault_per_run() -> None:
    """The example's stop marker is written as a terminated fault record (see
    ``encode_request``): each run counts it as an unhandled fault, never as malformed."""
    scenario = load_scenario(EXAMPLE)
    vendor = StallPrq()
    for _ in range(2):  # per run: nothing carried over on the shared vendor object
        result = replay(scenario, vendor)
        assert result.metrics.unhandled_events == {"fault": 1}
        assert result.metrics.dropped["malformed"] == 0
        shown = result.metrics.as_dict()["unhandled_events"]
        assert shown == {"fault": 1, "event": 0, "refused_stall": 0}
    header, row = to_csv([result]).splitlines()
    columns = dict(zip(header.split(","), row.split(","), strict=True))
    assert columns["unhandled_events.fault"] == "1"
    assert columns["unhandled_events.refused_stall"] == "0"


def test_cli_compare_smmuv3() -> None:
    result = CliRunner().invoke(cli, ["compare", str(EXAMPLE), "--vendors", "smmuv3"])
    assert result.exit_code == 0, result.output


def test_vendors_and_figure_through_the_entry_point() -> None:
    hooks = new_plugin_manager().hooks
    vendors = hooks.prq_vendors()
    assert {STALL_VENDOR, PRI_VENDOR, PRI_IOPF_VENDOR} <= set(vendors)
    assert isinstance(vendors[STALL_VENDOR], StallPrq)
    assert "smmuv3_evtq_ratio" in {f.name for f in hooks.benchmarks()}


def test_benchmark_quick() -> None:
    ratio = smmuv3_evtq_ratio(True)
    assert isinstance(ratio, float) and ratio > 0


@pytest.mark.parametrize(
    ("code", "dw0", "dw1"),
    [
        # PRI_RESP, SID 0x10, SSV and SSID 0x77 (the master requires the PASID), GRPID 3:
        #   dw0 = 0x41 | SSV 1 << 11 (0x800) | 0x77 << 12 (0x77000) | 0x10 << 32
        #       = 0x0000_0010_0007_7841; dw1 = 3 | RESP << 12
        (ResponseCode.SUCCESS, "4178070010000000", "0320000000000000"),
        (ResponseCode.INVALID, "4178070010000000", "0310000000000000"),
        (ResponseCode.FAILURE, "4178070010000000", "0300000000000000"),
    ],
)
def test_each_generic_code_has_its_pri_resp_wire_code_from_both_pri_vendors(
    code: ResponseCode, dw0: str, dw1: str
) -> None:
    response = PageResponse(0x10, 3, code, 0x77, True)
    for vendor in (PriPrq(), PriPrq(iopf=True)):
        assert vendor.encode_responses([response]) == bytes.fromhex(dw0 + dw1), vendor.name


@pytest.mark.parametrize(
    ("code", "resp"),
    [(ResponseCode.SUCCESS, "10"), (ResponseCode.INVALID, "20"), (ResponseCode.FAILURE, "20")],
)
def test_each_generic_code_has_its_resume_wire_code_from_the_stall_vendor(
    code: ResponseCode, resp: str
) -> None:
    # CMD_RESUME, SID 0x10, STAG 0x42: dw0 = 0x44 | RESP << 12 | 0x10 << 32, dw1 = 0x42.
    raw = StallPrq().encode_responses([PageResponse(0x10, 0x42, code)])
    assert raw == bytes.fromhex("44" + resp + "0000100000004200000000000000")
