"""The VT-d page request queue as a vendor of the core's pipeline (facts §3.2, §6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    DecodeError,
    Discipline,
    EncodeError,
    InvalidArgumentError,
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
    VendorPrq,
    Verdict,
    new_plugin_manager,
)
from ioasid_core.testing import cli, hardware_rules, load_scenario, replay
from ioasid_vtd.bench import vtd_prq_ratio
from ioasid_vtd.descriptors import (
    DESCRIPTOR_SIZE,
    PageGroupResponseDescriptor,
    PageRequestDescriptor,
)
from ioasid_vtd.prq import (
    PRQ_DEFAULT_ENTRIES,
    PRQ_DEFAULT_ORDER,
    VtdIopfPrq,
    VtdPrq,
    is_canonical,
    prq_entries,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "null-set-search.toml"
RID, OTHER_RID, STRANGER_RID = 0x100, 0x200, 0x300
RW = Perm.READ | Perm.WRITE
VTD = VtdPrq()
VTD_IOPF = VtdIopfPrq()


def request(
    pasid: int | None = None,
    *,
    grpid: int = 0,
    last: bool = True,
    perm: Perm = RW,
    addr: int = 0x1000,
    device: int = RID,
    private: tuple[int, int] | None = None,
) -> PageRequest:
    valid = pasid is not None
    return PageRequest(
        device,
        pasid if pasid is not None else INVALID_IOASID,
        valid,
        grpid,
        last,
        perm,
        addr,
        False,  # needs_pasid: the device's capability, not in the descriptor
        private,
    )


class Bench:
    """One VT-d unit; ``RID`` bound to ``own`` (proc-a), ``OTHER_RID`` to ``theirs``
    (proc-b), both in the same SVA set; ``STRANGER_RID`` is no device at all. Only dev-a
    requires the PASID in its responses (PRG Response PASID Required)."""

    def __init__(self, policy: LookupPolicy | None = None, vendor: VtdPrq = VTD) -> None:
        space = IoasidSpace()
        self.platform = Platform(space)
        self.platform.probe_unit(IommuUnit(name="dmar0", vendor="vtd", pasid_bits=20))
        sva = space.create_set()
        self.pasids: list[int] = []
        for name, rid, proc in (
            ("dev-a", RID, AddressSpace("proc-a")),
            ("dev-b", OTHER_RID, AddressSpace("proc-b")),
        ):
            self.platform.add_domain(f"{name}-sva", proc.name, [sva])
            self.platform.add_device(
                name,
                unit="dmar0",
                source_id=rid,
                owner=proc.name,
                domain=f"{name}-sva",
                prg_response_pasid_required=rid == RID,
            )
            pasid = space.alloc(sva, 1, 0xFFFFF, proc)
            self.platform.bind(name, pasid, proc)
            self.pasids.append(pasid)
        self.own, self.theirs = self.pasids
        self.pipeline = PrqPipeline(
            self.platform, "dmar0", vendor, policy=policy, sva_set=sva, ring_entries=64
        )

    def run(self, *requests: PageRequest) -> list[PageGroupResponseDescriptor]:
        """Submit as the device, service as the driver, decode what the driver wrote."""
        for r in requests:
            assert self.pipeline.submit(r)
        raw = self.pipeline.service_raw()
        assert len(raw) % DESCRIPTOR_SIZE == 0
        return [
            PageGroupResponseDescriptor.from_bytes(raw, offset)
            for offset in range(0, len(raw), DESCRIPTOR_SIZE)
        ]


# -- the vendor object


def test_vendor_shape() -> None:
    assert isinstance(VTD, VendorPrq)
    assert (VTD.name, VTD.entry_size) == ("vtd", 32)
    assert VTD.default_policy is LookupPolicy.GLOBAL
    assert VTD.discipline is Discipline.PER_REQUEST
    assert VTD.expected is AddressSpace
    assert isinstance(VTD_IOPF, VendorPrq)
    assert (VTD_IOPF.name, VTD_IOPF.entry_size) == ("vtd-iopf", 32)
    assert VTD_IOPF.default_policy is LookupPolicy.SET
    assert VTD_IOPF.discipline is Discipline.IOPF
    assert VTD_IOPF.option_section == "vtd"


def test_discovered_through_the_entry_point() -> None:
    hooks = new_plugin_manager(strict=True).hooks
    vendors = hooks.prq_vendors()
    assert type(vendors["vtd"]) is VtdPrq
    assert type(vendors["vtd-iopf"]) is VtdIopfPrq
    assert "vtd_prq_ratio" in {f.name for f in hooks.benchmarks()}


# -- check: one test per rule, each fails if its rule breaks


@pytest.mark.parametrize(
    "perm",
    [Perm.PRIV | Perm.READ, Perm.PRIV | Perm.WRITE, Perm.PRIV | RW, Perm.EXEC | Perm.READ],
    ids=["priv+read", "priv+write", "priv+rw", "exec+read"],
)
def test_check_rejects_bad_permissions(perm: Perm) -> None:
    assert VTD.check(request(5, perm=perm)) is ResponseCode.INVALID


@pytest.mark.parametrize(
    "perm",
    [Perm.READ, Perm.WRITE, RW, Perm.EXEC | Perm.WRITE, Perm.PRIV | Perm.EXEC],
    ids=["read", "write", "rw", "exec+write", "priv+exec"],
)
def test_check_accepts_other_permissions(perm: Perm) -> None:
    assert VTD.check(request(5, perm=perm)) is None


@pytest.mark.parametrize(
    ("addr", "canonical"),
    [
        (0x0000_7FFF_FFFF_F000, True),
        (0xFFFF_8000_0000_0000, True),
        (0xFFFF_FFFF_FFFF_F000, True),
        (0x0000_8000_0000_0000, False),
        (0xFFFF_7FFF_FFFF_F000, False),
        (0x0001_0000_0000_0000, False),
    ],
)
def test_check_rejects_non_canonical_addresses(addr: int, canonical: bool) -> None:
    assert is_canonical(addr) is canonical
    expected = None if canonical else ResponseCode.INVALID
    assert VTD.check(request(5, addr=addr)) is expected


def test_check_leaves_no_pasid_and_unknown_rid_to_the_resolver() -> None:
    assert VTD.check(request(None)) is None
    assert VTD.check(request(5, device=STRANGER_RID)) is None


def test_the_2019_check_answers_private_data_at_once() -> None:
    private = (1, 2)
    assert VTD.check(request(5, last=False, private=private)) is Verdict.EARLY
    bad = request(5, last=False, perm=Perm.PRIV | Perm.READ, private=private)
    assert VTD.check(bad) is Verdict.now(ResponseCode.INVALID)


def test_the_iopf_era_check_answers_only_a_bad_lpig_descriptor() -> None:
    bad = Perm.PRIV | Perm.READ
    assert VTD_IOPF.check(request(5, perm=bad)) is Verdict.now(ResponseCode.INVALID)
    assert VTD_IOPF.check(request(5, perm=bad, last=False)) is Verdict.SILENT
    assert VTD_IOPF.check(request(5, addr=0x0000_8000_0000_0000)) is not None
    assert VTD_IOPF.check(request(5, private=(1, 2), last=False)) is None


def test_the_iopf_era_driver_reports_private_data_as_last() -> None:
    raw = VTD.encode_request(request(5, last=False, private=(1, 2)))
    assert VTD.decode_batch(raw)[0].last is False
    assert VTD_IOPF.decode_batch(raw)[0].last is True
    plain = VTD.encode_request(request(5, last=False))
    assert VTD_IOPF.decode_batch(plain)[0].last is False


# -- the request codec


def test_encode_request_matches_the_descriptor_layout() -> None:
    r = request(0xABCDE, grpid=0x1FF, perm=Perm.EXEC | Perm.PRIV, addr=0xFFFF_8000_0000_0000)
    r.private_data = (1, 2**64 - 1)
    raw = VTD.encode_request(r)
    assert raw == PageRequestDescriptor.from_page_request(r).to_bytes()
    assert VTD.decode_batch(raw) == [r]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (request(1, device=0x10000), "requester ID"),
        (request(1, device=-1), "requester ID"),
        (request(0x100000), "PASID"),
        (request(INVALID_IOASID), "PASID"),
        (request(1, grpid=0x200), "group index"),
        (request(1, addr=0x1234), "page-aligned"),
        (request(1, addr=1 << 64), "page-aligned"),
        (request(1, private=(1 << 64, 0)), r"private data\[0\]"),
    ],
)
def test_encode_request_refuses_values_that_do_not_fit(bad: PageRequest, field: str) -> None:
    with pytest.raises(EncodeError, match=field) as info:
        VTD.encode_request(bad)
    assert isinstance(info.value, InvalidArgumentError)


@settings(max_examples=200, deadline=None)
@given(
    device=st.integers(0, 0xFFFF),
    pasid=st.none() | st.integers(0, 0xFFFFF),
    grpid=st.integers(0, 0x1FF),
    last=st.booleans(),
    perm=st.integers(0, 15),
    page=st.integers(0, (1 << 52) - 1),
    private=st.none() | st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)
def test_request_round_trip(
    *,
    device: int,
    pasid: int | None,
    grpid: int,
    last: bool,
    perm: int,
    page: int,
    private: tuple[int, int] | None,
) -> None:
    r = request(
        pasid,
        device=device,
        grpid=grpid,
        last=last,
        perm=Perm(perm),
        addr=page << 12,
        private=private,
    )
    raw = VTD.encode_request(r)
    assert raw == PageRequestDescriptor.from_page_request(r).to_bytes()
    assert VTD.decode_batch(raw) == [r]


def test_decode_batch_names_the_bad_entry() -> None:
    raw = bytearray(b"".join(VTD.encode_request(request(i)) for i in range(1, 4)))
    raw[64 + 7] |= 0x80  # entry 2 (offset 0x40): qw0 bit 63, reserved
    with pytest.raises(DecodeError, match=r"at byte offset 0x40: reserved bit 63 of word 0"):
        VTD.decode_batch(raw)
    with pytest.raises(DecodeError, match="not a whole number of 32-byte descriptors"):
        VTD.decode_batch(bytes(40))
    assert VTD.decode_batch(b"") == []


# -- the response codec


def test_encode_responses() -> None:
    raw = VTD.encode_responses(
        [
            PageResponse(RID, 3, ResponseCode.SUCCESS, 0x12345, True),
            PageResponse(RID, 4, ResponseCode.INVALID),
            PageResponse(OTHER_RID, 0x1FF, ResponseCode.FAILURE, 7, True, (5, 6)),
        ]
    )
    got = [PageGroupResponseDescriptor.from_bytes(raw, o) for o in (0, 32, 64)]
    assert [d.code for d in got] == [0x0, 0x1, 0xF]
    assert [(d.pasid_present, d.pasid) for d in got] == [(True, 0x12345), (False, 0), (True, 7)]
    assert [(d.priv_data_present, d.priv_data) for d in got] == [
        (False, (0, 0)),
        (False, (0, 0)),
        (True, (5, 6)),
    ]
    assert [(d.rid, d.prg_index) for d in got] == [(RID, 3), (RID, 4), (OTHER_RID, 0x1FF)]
    assert all(d.lpig for d in got)
    (early,) = [
        PageGroupResponseDescriptor.from_bytes(
            VTD.encode_responses([PageResponse(RID, 3, ResponseCode.SUCCESS, last=False)])
        )
    ]
    assert not early.lpig  # answered before its group closed
    assert (
        raw[:32]
        == PageGroupResponseDescriptor.from_page_response(
            PageResponse(RID, 3, ResponseCode.SUCCESS, 0x12345, True)
        ).to_bytes()
    )
    assert VTD.encode_responses([]) == b""


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (PageResponse(0x10000, 0, ResponseCode.SUCCESS), "requester ID"),
        (PageResponse(RID, 0x200, ResponseCode.SUCCESS), "group index"),
        (PageResponse(RID, 0, ResponseCode.SUCCESS, 0x100000, True), "PASID"),
        (PageResponse(RID, 0, ResponseCode.SUCCESS, private_data=(0, 1 << 64)), "private"),
        (PageResponse(RID, 0, 7), "not a page response code"),  # type: ignore[arg-type]
    ],
)
def test_encode_responses_refuses_bad_fields(bad: PageResponse, field: str) -> None:
    with pytest.raises(EncodeError, match=field):
        VTD.encode_responses([bad])


# -- end to end through the core's pipeline


def test_pipeline_uses_the_vendors_global_policy() -> None:
    assert Bench().pipeline.policy is LookupPolicy.GLOBAL
    assert Bench(vendor=VTD_IOPF).pipeline.policy is LookupPolicy.SET


def test_each_descriptor_is_looked_up_and_only_lpig_answered() -> None:
    b = Bench()
    assert b.run(request(b.own, grpid=5, last=False), request(b.own, grpid=5, last=False)) == []
    assert b.pipeline.iopf.partial(RID) == []  # nothing is held: handled on arrival
    assert b.pipeline.counters.outcomes[Outcome.RESOLVED] == 2
    (answer,) = b.run(request(b.own, grpid=5, addr=0x3000))
    assert (answer.code, answer.rid, answer.prg_index, answer.lpig) == (0x0, RID, 5, True)
    assert (answer.pasid_present, answer.pasid) == (True, b.own)
    assert b.pipeline.counters.outcomes[Outcome.RESOLVED] == 3


def test_the_iopf_era_driver_holds_partials_until_lpig() -> None:
    b = Bench(vendor=VTD_IOPF, policy=LookupPolicy.GLOBAL)
    assert b.run(request(b.own, grpid=5, last=False), request(b.own, grpid=5, last=False)) == []
    assert len(b.pipeline.iopf.partial(RID)) == 2
    (answer,) = b.run(request(b.own, grpid=5, addr=0x3000))
    assert (answer.code, answer.prg_index, answer.lpig) == (0x0, 5, True)
    assert b.pipeline.iopf.partial(RID) == []


def test_the_2019_handler_answers_a_stop_marker() -> None:
    """It did not single stop markers out: LPIG, so looked up and answered."""
    b = Bench()
    (answer,) = b.run(request(b.own, grpid=1, perm=Perm.NONE))
    assert (answer.prg_index, answer.code, answer.lpig) == (1, 0x0, True)
    assert b.pipeline.iopf.counters.stop_markers == 0
    iopf = Bench(vendor=VTD_IOPF)
    assert iopf.run(request(iopf.own, grpid=1, perm=Perm.NONE)) == []
    assert iopf.pipeline.iopf.counters.stop_markers == 1


def test_codes_per_group() -> None:
    b = Bench()
    answers = b.run(
        request(b.own, grpid=1),  # resolves
        request(None, grpid=2),  # no PASID
        request(0xABCDE, grpid=3),  # nobody's PASID
        request(b.own, grpid=4, perm=Perm.PRIV | Perm.READ),  # the vendor's check
        request(b.own, grpid=5, device=STRANGER_RID),  # no such requester
        request(b.theirs, grpid=6, device=OTHER_RID),  # dev-b does not require the PASID
    )
    assert [(a.prg_index, a.code) for a in answers] == [
        (1, 0),
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 1),
        (6, 0),
    ]
    assert [a.pasid_present for a in answers] == [True, False, True, True, False, False]
    c = b.pipeline.counters
    assert c.vendor_rejects == 1
    assert c.outcomes[Outcome.NO_PASID] == c.outcomes[Outcome.UNKNOWN_PASID] == 1
    assert c.outcomes[Outcome.UNKNOWN_DEVICE] == 1
    assert c.responses == {ResponseCode.SUCCESS: 2, ResponseCode.INVALID: 4}


def test_global_policy_resolves_another_owners_pasid() -> None:
    """The 2019 hazard: dev-a reaching proc-b's PASID is answered SUCCESS and counted."""
    b = Bench()
    (answer,) = b.run(request(b.theirs, grpid=9))
    assert answer.code == 0x0
    assert b.pipeline.counters.cross_owner_hits == 1
    strict = Bench(LookupPolicy.DEVICE)
    (answer,) = strict.run(request(strict.theirs, grpid=9))
    assert answer.code == 0x1
    assert strict.pipeline.counters.cross_owner_hits == 0


def test_the_2019_handler_answers_lpig_with_its_own_result() -> None:
    """No sticky errors: a failure earlier in the group is forgotten; the IOPF-era driver
    answers the same group with its first failure and looks nothing up after it."""

    def group(own: int) -> tuple[PageRequest, ...]:
        return (
            request(0xABCDE, grpid=7, last=False),  # nobody's PASID: INVALID
            request(own, grpid=7, last=False, addr=0x0000_8000_0000_0000),  # non-canonical
            request(own, grpid=7, last=False),
            request(own, grpid=7),
        )

    b = Bench()
    (answer,) = b.run(*group(b.own))
    assert (answer.prg_index, answer.code) == (7, 0x0)
    assert b.pipeline.counters.outcomes.total() == 3  # every descriptor but the rejected
    assert b.pipeline.counters.vendor_rejects == 1
    iopf = Bench(vendor=VTD_IOPF, policy=LookupPolicy.GLOBAL)
    (answer,) = iopf.run(*group(iopf.own))
    assert (answer.prg_index, answer.code) == (7, 0x1)
    assert iopf.pipeline.counters.outcomes.total() == 1  # stopped at the first failure
    # The IOPF-era driver never reported the bad partial: dropped, counted as a reject.
    assert iopf.pipeline.counters.vendor_rejects == 1


def test_private_data_is_echoed_at_once() -> None:
    b = Bench()
    (early, last) = b.run(
        request(b.own, grpid=2, last=False, private=(0xDEAD, 0xBEEF)),
        request(b.own, grpid=2),
    )
    assert (early.priv_data_present, early.priv_data) == (True, (0xDEAD, 0xBEEF))
    assert (early.prg_index, early.code, early.lpig) == (2, 0x0, False)
    assert (last.priv_data_present, last.lpig) == (False, True)
    assert b.pipeline.counters.premature_responses == 1
    (answer,) = b.run(request(b.own, grpid=3, private=(1, 2)))
    assert (answer.priv_data, answer.lpig) == ((1, 2), True)


def test_the_iopf_era_driver_answers_private_data_as_a_closed_group() -> None:
    b = Bench(vendor=VTD_IOPF, policy=LookupPolicy.GLOBAL)
    (answer,) = b.run(
        request(b.own, grpid=2, last=False),
        request(b.own, grpid=2, last=False, private=(0xDEAD, 0xBEEF)),
    )
    assert (answer.priv_data, answer.lpig, answer.code) == ((0xDEAD, 0xBEEF), True, 0x0)
    assert b.pipeline.iopf.partial(RID) == []  # the group closed with it
    assert b.pipeline.counters.premature_responses == 0


def test_malformed_descriptor_is_counted_and_the_rest_answered() -> None:
    b = Bench()
    bad = bytearray(VTD.encode_request(request(b.own, grpid=2)))
    bad[1] |= 0x04  # qw0 bit 10, reserved
    for raw in (
        VTD.encode_request(request(b.own, grpid=1)),
        bytes(bad),
        VTD.encode_request(request(b.own, grpid=3)),
    ):
        assert b.pipeline.ring.push(raw)
    raw = b.pipeline.service_raw()
    answers = [PageGroupResponseDescriptor.from_bytes(raw, offset) for offset in (0, 32)]
    assert len(raw) == 64
    assert [a.prg_index for a in answers] == [1, 3]
    assert b.pipeline.counters.malformed == 1
    assert "byte 0x20" in b.pipeline.counters.errors[-1]
    assert "reserved bit 10" in b.pipeline.counters.errors[-1]


# -- the scenario and the CLI


@pytest.mark.parametrize("policy", list(LookupPolicy), ids=lambda p: p.value)
def test_null_set_search_replay(policy: LookupPolicy) -> None:
    scenario = load_scenario(EXAMPLE)
    result = replay(scenario, VTD, None if policy is VTD.default_policy else policy)
    assert result.policy is policy
    m = result.metrics
    if policy is LookupPolicy.GLOBAL:
        assert m.cross_owner_hits > 0
    else:
        assert m.cross_owner_hits == 0
    assert m.dropped["stop_markers"] == 0  # the 2019 handler answers them
    assert m.dropped["malformed"] == 0
    assert m.responses["success"] > 0


def test_cli_compare_with_vtd() -> None:
    result = CliRunner().invoke(cli, ["compare", str(EXAMPLE), "--vendors", "vtd"])
    assert result.exit_code == 0, result.output
    assert "vtd" in result.output


# -- queue size and the benchmark


def test_prq_entries() -> None:
    assert [prq_entries(n) for n in range(8)] == [128 << n for n in range(8)]
    assert prq_entries(0) == 128 and prq_entries(7) == 16384
    assert PRQ_DEFAULT_ORDER == 4 and PRQ_DEFAULT_ENTRIES == prq_entries(4) == 2048


@pytest.mark.parametrize("bad", [-1, 8, True, 2.0, "4"])
def test_prq_entries_refuses_values_outside_the_field(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"3-bit value \(0\.\.7: 128 to 16384"):
        prq_entries(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("vendor", [VTD, VTD_IOPF], ids=lambda v: v.name)
def test_pro_drops_unanswered_and_stays_set_until_the_queue_is_drained(vendor: VtdPrq) -> None:
    """kernel-facts §3.2: a full PRQ sets PRO and drops the request (no auto-response); PRO
    stays set, dropping every request, until the driver finds head == tail and clears it."""
    b = Bench(vendor=vendor)
    rules = hardware_rules(vendor, b.platform, "dmar0", {})
    pl = PrqPipeline(
        b.platform, "dmar0", vendor, policy=LookupPolicy.DEVICE, ring_entries=4, hardware=rules
    )
    assert [pl.submit(request(b.own, grpid=g)) for g in range(4)] == [True] * 3 + [False]
    assert pl.counters.overflow_dropped == 1
    assert pl.counters.auto_responses == {}  # the LPIG request is never answered
    assert len(pl.service(limit=1)) == 1  # a free slot, but PRO is still set
    assert not pl.submit(request(b.own, grpid=5))
    assert pl.counters.overflow_dropped == 2 and pl.counters.auto_responses == {}
    assert len(pl.service()) == 2  # head == tail: the driver clears PRO
    assert not pl.ring.overflow
    assert pl.submit(request(b.own, grpid=6))
    assert [r.code for r in pl.service()] == [ResponseCode.SUCCESS]


def test_benchmark_quick() -> None:
    ratio = vtd_prq_ratio(True)
    assert isinstance(ratio, float) and ratio > 0


# -- generic code -> VT-d wire code, bytes computed by hand from the layout (facts §3.2)

# Page group response, RID 0x0100, PRG index 5, PASID 0x12345 present, no private data:
#   qw0 = type 0x9 | PASID present 1 << 4 (0x10) | code << 12 | 0x0100 << 16 | 0x12345 << 32
#       = 0x0001_2345_0100_c019 with c the response code nibble
#   qw1 = LPIG 1 << 2 | 5 << 3 = 0x2c (0x28 with LPIG clear)
_QW0_TAIL = "000145230100"  # bytes 2..7 of qw0: 0x00, 0x01 (RID), then PASID 0x012345
_QW2_QW3 = "00" * 16


@pytest.mark.parametrize("vendor", [VTD, VTD_IOPF], ids=["vtd", "vtd-iopf"])
@pytest.mark.parametrize(
    ("code", "low_byte_1"),
    [(ResponseCode.SUCCESS, "00"), (ResponseCode.INVALID, "10"), (ResponseCode.FAILURE, "f0")],
    ids=["success-0x0", "invalid-0x1", "failure-0xf"],
)
def test_each_generic_code_has_its_vtd_wire_code(
    vendor: VtdPrq, code: ResponseCode, low_byte_1: str
) -> None:
    raw = vendor.encode_responses([PageResponse(0x0100, 5, code, 0x12345, True)])
    assert raw == bytes.fromhex("19" + low_byte_1 + _QW0_TAIL + "2c00000000000000" + _QW2_QW3)


def test_a_response_before_the_group_closes_has_lpig_clear_and_echoes_private_data() -> None:
    raw = VTD.encode_responses(
        [PageResponse(0x0100, 5, ResponseCode.SUCCESS, 0x12345, True, (0x0102, 0x0304), False)]
    )
    # qw0 also has PDP (bit 5): 0x19 | 0x20 = 0x39; qw1 = 0x28; qw2 = 0x0102, qw3 = 0x0304
    expected = "3900" + _QW0_TAIL + "2800000000000000" + "0201000000000000" + "0403000000000000"
    assert raw == bytes.fromhex(expected)
