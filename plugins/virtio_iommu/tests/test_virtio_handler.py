"""VirtioPrq end to end: through the core's pipeline, the replay, the CLI and the entry point.

The platform (``world``): a guest with one virtio-iommu unit and two endpoints, each in its own
domain owning its own PASID set (what ATTACH_TABLE gives each endpoint): endpoint 1 (``proc-a``)
bound to ``pasid_a``, endpoint 2 (``proc-b``) bound to ``pasid_b``. Responses are read back with
the plugin's own PAGE_RESP decoder, so the bytes the driver writes are what is checked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    DecodeError,
    EncodeError,
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
    UnhandledKind,
    VendorPrq,
    new_plugin_manager,
)
from ioasid_core.testing import cli, load_scenario, replay
from ioasid_virtio_iommu.bench import virtio_prq_ratio
from ioasid_virtio_iommu.faults import (
    EXTENDED_SIZE,
    MAX_PASID,
    FaultReason,
    UnrecoverableFault,
    decode_page_requests,
    encode_fault,
)
from ioasid_virtio_iommu.handler import VirtioPrq
from ioasid_virtio_iommu.probe import VENDOR
from ioasid_virtio_iommu.requests import (
    PAGE_RESP_SIZE,
    Status,
    decode_page_resp,
    encode_page_resp,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "null-set-search.toml"
UNIT = "viommu0"
EP_A, EP_B, EP_UNKNOWN = 1, 2, 0x99
RW = Perm.READ | Perm.WRITE


@attrs.define
class World:
    platform: Platform
    pasid_a: int
    pasid_b: int


@pytest.fixture
def world() -> World:
    space = IoasidSpace(1 << 10)
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name=UNIT, vendor=VENDOR, pasid_bits=8))
    pasids = []
    for ep, proc_name in ((EP_A, "proc-a"), (EP_B, "proc-b")):
        proc = AddressSpace(proc_name)
        table = space.create_set(proc, type=SetType.MM)
        platform.add_domain(f"dom-{ep}", proc_name, [table])
        platform.add_device(
            f"ep-{ep}", unit=UNIT, source_id=ep, owner=proc_name, domain=f"dom-{ep}"
        )
        pasid = space.alloc(table, 1, 0xFF, proc)
        platform.bind(f"ep-{ep}", pasid, proc)
        pasids.append(pasid)
    return World(platform, pasids[0], pasids[1])


def pipeline(
    world: World, policy: LookupPolicy | None = None, vendor: VirtioPrq | None = None
) -> PrqPipeline:
    return PrqPipeline(world.platform, UNIT, vendor or VirtioPrq(), policy=policy)


def answers(pipe: PrqPipeline) -> list[PageResponse]:
    """Service the ring; decode the PAGE_RESP requests the driver wrote."""
    raw = pipe.service_raw()
    assert len(raw) % PAGE_RESP_SIZE == 0
    out = []
    for offset in range(0, len(raw), PAGE_RESP_SIZE):
        response, status = decode_page_resp(raw, offset)
        assert status is Status.OK
        out.append(response)
    return out


def request(ep: int, pasid: int, grpid: int = 3, *, last: bool = True) -> PageRequest:
    return PageRequest(ep, pasid, True, grpid, last, RW, 0x4000)


# ---------------------------------------------------------------------- the vendor object


def test_is_a_vendor_prq() -> None:
    vendor = VirtioPrq()
    assert isinstance(vendor, VendorPrq)
    assert (vendor.name, vendor.entry_size) == ("virtio-iommu", EXTENDED_SIZE)
    assert vendor.default_policy is LookupPolicy.ENDPOINT
    assert vendor.expected is AddressSpace
    assert vendor.check(request(EP_A, 1)) is None


@pytest.mark.parametrize(
    "bad",
    [
        PageRequest(1 << 32, 1, True, 0, True, Perm.READ, 0),
        PageRequest(1, MAX_PASID + 1, True, 0, True, Perm.READ, 0),
        PageRequest(1, 1, True, 0x10000, True, Perm.READ, 0),
        PageRequest(1, 1, True, 0, True, Perm.READ, 1 << 64),
    ],
)
def test_encode_request_refuses_fields_that_do_not_fit(bad: PageRequest) -> None:
    with pytest.raises(EncodeError):
        VirtioPrq().encode_request(bad)


u64 = st.integers(0, (1 << 64) - 1)


@st.composite
def page_requests(draw: st.DrawFn) -> PageRequest:
    valid = draw(st.booleans())
    return PageRequest(
        device=draw(st.integers(0, 7) | st.integers(0, 0xFFFFFFFF)),
        pasid=draw(st.integers(0, MAX_PASID)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0xFFFF)),
        last=draw(st.booleans()),
        perm=Perm(draw(st.integers(0, 15))),
        addr=draw(u64),
        private_data=draw(st.none() | st.tuples(u64, u64)),
    )


@given(st.lists(page_requests(), max_size=8), st.frozensets(st.integers(0, 7)))
def test_decode_batch_round_trips_and_matches_the_plain_decoder(
    requests: list[PageRequest], needs: frozenset[int]
) -> None:
    vendor = VirtioPrq(needs_pasid=needs)
    raw = b"".join(vendor.encode_request(r) for r in requests)
    decoded = vendor.decode_batch(raw)
    assert decoded == decode_page_requests(raw, needs_pasid=needs)
    assert decoded == [attrs.evolve(r, needs_pasid=r.device in needs) for r in requests]


def test_decode_batch_names_the_bad_record() -> None:
    vendor = VirtioPrq()
    good = vendor.encode_request(request(EP_A, 5))
    bad = bytearray(good)
    bad[27] = 1  # reserved bytes 26..31
    with pytest.raises(DecodeError) as info:
        vendor.decode_batch(good + bytes(bad))
    assert info.value.offset == EXTENDED_SIZE + 26
    with pytest.raises(DecodeError):
        vendor.decode_batch(good[:-1])


@given(
    st.lists(
        st.builds(
            PageResponse,
            device=st.integers(0, 0xFFFFFFFF),
            grpid=st.integers(0, 0xFFFF),
            code=st.sampled_from(ResponseCode),
            pasid=st.integers(0, MAX_PASID),
            pasid_valid=st.booleans(),
        ),
        max_size=6,
    )
)
def test_encode_responses_is_the_page_resp_codec(responses: list[PageResponse]) -> None:
    raw = VirtioPrq().encode_responses(responses)
    assert raw == b"".join(encode_page_resp(r) for r in responses)


@pytest.mark.parametrize(
    "bad",
    [
        PageResponse(1, 0x10000, ResponseCode.SUCCESS),
        PageResponse(1, 0, ResponseCode.SUCCESS, MAX_PASID + 1, True),
        PageResponse(1 << 32, 0, ResponseCode.SUCCESS),
    ],
)
def test_encode_responses_refuses_what_page_resp_cannot_carry(bad: PageResponse) -> None:
    with pytest.raises(EncodeError):
        VirtioPrq().encode_responses([bad])


# ---------------------------------------------------------------------- through the pipeline


def test_own_pasid_is_answered_success(world: World) -> None:
    pipe = pipeline(world)
    assert pipe.policy is LookupPolicy.ENDPOINT
    assert pipe.submit(request(EP_A, world.pasid_a, grpid=9))
    [response] = answers(pipe)
    assert (response.device, response.grpid, response.code) == (EP_A, 9, ResponseCode.SUCCESS)
    assert not response.pasid_valid  # the endpoint does not need the PASID echoed
    assert pipe.counters.outcomes == {Outcome.RESOLVED: 1}


def test_pasid_echoed_for_endpoints_that_need_it(world: World) -> None:
    pipe = pipeline(world, vendor=VirtioPrq(needs_pasid=[EP_A]))
    pipe.submit(request(EP_A, world.pasid_a))
    [response] = answers(pipe)
    assert response.pasid_valid and response.pasid == world.pasid_a


def test_another_endpoints_pasid_is_foreign_under_endpoint(world: World) -> None:
    pipe = pipeline(world)
    pipe.submit(request(EP_A, world.pasid_b))
    [response] = answers(pipe)
    assert response.code is ResponseCode.INVALID
    assert pipe.counters.outcomes == {Outcome.FOREIGN: 1}
    assert pipe.counters.cross_owner_hits == 0


def test_another_endpoints_pasid_resolves_cross_owner_under_global(world: World) -> None:
    pipe = pipeline(world, LookupPolicy.GLOBAL)
    pipe.submit(request(EP_A, world.pasid_b))
    [response] = answers(pipe)
    assert response.code is ResponseCode.SUCCESS  # the NULL-set search: served the wrong mm
    assert pipe.counters.cross_owner_hits == 1


def test_unknown_endpoint_is_answered_invalid_and_counted(world: World) -> None:
    pipe = pipeline(world)
    pipe.submit(request(EP_UNKNOWN, world.pasid_a, grpid=4))
    [response] = answers(pipe)
    assert (response.device, response.grpid, response.code) == (
        EP_UNKNOWN,
        4,
        ResponseCode.INVALID,
    )
    assert pipe.counters.outcomes[Outcome.UNKNOWN_DEVICE] == 1
    assert pipe.counters.responses[ResponseCode.INVALID] == 1


def test_stop_marker_is_dropped(world: World) -> None:
    pipe = pipeline(world)
    pipe.submit(PageRequest(EP_A, world.pasid_a, True, 0, True, Perm.NONE, 0))
    assert answers(pipe) == []
    assert pipe.iopf.counters.stop_markers == 1
    assert pipe.counters.page_requests == 1


def test_partial_group_is_held_until_last(world: World) -> None:
    pipe = pipeline(world)
    for index in range(2):
        pipe.submit(PageRequest(EP_A, world.pasid_a, True, 7, False, Perm.READ, index << 12))
    pipe.submit(request(EP_B, world.pasid_b, grpid=7))  # same index, other endpoint: apart
    [other] = answers(pipe)
    assert other.device == EP_B
    assert len(pipe.iopf.partial(EP_A)) == 2
    pipe.submit(request(EP_A, world.pasid_a, grpid=7))
    [response] = answers(pipe)
    assert (response.device, response.grpid, response.code) == (EP_A, 7, ResponseCode.SUCCESS)
    assert pipe.iopf.partial(EP_A) == []
    assert pipe.counters.outcomes[Outcome.RESOLVED] == 4  # each member resolved


def test_malformed_event_is_counted_and_the_rest_answered(world: World) -> None:
    vendor = VirtioPrq()
    pipe = pipeline(world, vendor=vendor)
    bad = bytearray(vendor.encode_request(request(EP_A, world.pasid_a, grpid=2)))
    bad[1] = 0xFF  # reserved byte of the head
    pipe.submit(request(EP_A, world.pasid_a, grpid=1))
    assert pipe.ring.push(bytes(bad))
    pipe.submit(request(EP_B, world.pasid_b, grpid=3))
    got = answers(pipe)
    assert [(r.device, r.grpid, r.code) for r in got] == [
        (EP_A, 1, ResponseCode.SUCCESS),
        (EP_B, 3, ResponseCode.SUCCESS),
    ]
    assert pipe.counters.malformed == 1
    assert "reserved" in pipe.counters.errors[-1]


def test_unrecoverable_fault_is_logged_once_not_answered(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    vendor = VirtioPrq()
    pipe = pipeline(world, vendor=vendor)
    fault = UnrecoverableFault(EP_A, FaultReason.MAPPING, Perm.WRITE, 0x9000, world.pasid_a)
    bad = bytearray(vendor.encode_request(request(EP_B, world.pasid_b)))
    bad[26] = 1
    with caplog.at_level(logging.WARNING):
        assert pipe.ring.push(encode_fault(fault, extended=True))
        pipe.submit(request(EP_A, world.pasid_a, grpid=6))
        assert pipe.ring.push(bytes(bad))  # forces the pipeline's entry-by-entry re-decode
        [response] = answers(pipe)
    assert (response.device, response.grpid) == (EP_A, 6)
    assert vendor.faults.total == 1  # not twice, despite the second decoding pass
    assert vendor.faults.by_endpoint == {EP_A: 1}
    assert pipe.counters.unhandled_events == {UnhandledKind.FAULT: 1}  # this run's count
    assert pipe.counters.malformed == 1
    assert pipe.counters.page_requests == 1
    assert sum("MAPPING fault from endpoint 1" in r.getMessage() for r in caplog.records) == 1


# ---------------------------------------------------------------------- replay, CLI, plugin


def test_replay_null_set_search_endpoint_versus_global() -> None:
    scenario = load_scenario(EXAMPLE)
    vendor = VirtioPrq()
    own = replay(scenario, vendor)
    assert own.policy is LookupPolicy.ENDPOINT
    assert own.metrics.cross_owner_hits == 0
    assert own.metrics.page_requests > 0
    assert replay(scenario, vendor, LookupPolicy.GLOBAL).metrics.cross_owner_hits > 0


def test_cli_compare_with_virtio() -> None:
    result = CliRunner().invoke(cli, ["compare", str(EXAMPLE), "--vendors", "virtio-iommu"])
    assert result.exit_code == 0, result.output
    assert "virtio-iommu" in result.output


def test_discovered_through_the_entry_point() -> None:
    hooks = new_plugin_manager().hooks
    assert isinstance(hooks.prq_vendors()["virtio-iommu"], VirtioPrq)
    [figure] = [f for f in hooks.benchmarks() if f.name == "virtio_prq_ratio"]
    assert figure.limit == 10.0


def test_benchmark_runs_quick() -> None:
    ratio = virtio_prq_ratio(True)
    assert isinstance(ratio, float) and ratio > 0


@pytest.mark.parametrize(
    ("code", "resp_code"),
    [
        (ResponseCode.SUCCESS, "0000"),
        (ResponseCode.INVALID, "0100"),
        (ResponseCode.FAILURE, "0200"),
    ],
)
def test_each_generic_code_has_its_page_resp_wire_code(code: ResponseCode, resp_code: str) -> None:
    """PAGE_RESP (RFC, facts §5), by hand: u8 type 0x08, 7 reserved bytes, le32 endpoint
    0x10, le32 flags PASID_VALID 1, le32 pasid 0x77, le32 grpid 3, le16 resp_code (SUCCESS
    0, INVALID 1, FAILURE 2), 2 padding bytes, u8 status 0 (the device's), 3 reserved."""
    raw = VirtioPrq().encode_responses([PageResponse(0x10, 3, code, 0x77, True)])
    expected = (
        "08"
        + "00" * 7
        + "10000000"
        + "01000000"
        + "77000000"
        + "03000000"
        + resp_code
        + "0000"
        + "00"
        + "000000"
    )
    assert raw == bytes.fromhex(expected)
