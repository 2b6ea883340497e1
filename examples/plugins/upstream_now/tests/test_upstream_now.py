"""The example plugin: found through its entry point, resolves by (device, PASID) only."""

from __future__ import annotations

import pytest

from ioasid_core.plugin import (
    AddressSpace,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    IoasidSpace,
    IommuUnit,
    LookupPolicy,
    PageRequest,
    PageResponse,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
    request_row,
)
from ioasid_core.testing import (
    GoldenRequest,
    GoldenResponses,
    assert_conforms,
    compare,
    load_named_scenario,
    new_plugin_manager,
)
from ioasid_upstream_now import UpstreamNowPrq, alloc_global_pasid


def test_the_plugin_is_found_through_its_entry_point() -> None:
    host = new_plugin_manager(strict=True)
    assert "upstream_now" in {p.name for p in host.loaded}
    assert isinstance(host.hooks.prq_vendors()["upstream-now"], UpstreamNowPrq)


def test_global_pasids_start_at_1_and_respect_the_device_width() -> None:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u0", vendor="upstream-now", pasid_bits=20))
    narrow = platform.add_device("d", unit="u0", source_id=1, owner="p", pasid_bits=1)
    none = platform.add_device("n", unit="u0", source_id=2, owner="p", pasid_bits=0)
    ida = space.create_set()
    assert alloc_global_pasid(space, ida, narrow) == 1
    with pytest.raises(InvalidArgumentError, match="supports no PASID"):
        alloc_global_pasid(space, ida, none)


def test_a_pasid_is_only_resolved_on_the_device_it_is_attached_to() -> None:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u0", vendor="upstream-now", pasid_bits=20))
    mine = platform.add_device("mine", unit="u0", source_id=1, owner="proc")
    platform.add_device("other", unit="u0", source_id=2, owner="proc")
    proc = AddressSpace("proc")
    pasid = alloc_global_pasid(space, space.create_set(), mine)
    platform.bind("mine", pasid, proc)
    pipeline = PrqPipeline(platform, "u0", UpstreamNowPrq())
    assert pipeline.policy is LookupPolicy.DEVICE
    for source in (1, 2):
        pipeline.submit(PageRequest(source, pasid, True, 0, True, Perm.READ, 0x1000))
    assert [(r.device, r.code) for r in pipeline.service()] == [
        (1, ResponseCode.SUCCESS),
        (2, ResponseCode.INVALID),
    ]


def test_the_null_set_example_gives_no_cross_owner_hit_under_its_own_policy() -> None:
    (result,) = compare(
        load_named_scenario("null-set-search"), [UpstreamNowPrq()], [LookupPolicy.DEVICE]
    )
    assert result.metrics.cross_owner_hits == 0
    assert result.metrics.type_confusions == 0


@pytest.mark.parametrize(
    ("code", "word"), [(ResponseCode.SUCCESS, "00"), (ResponseCode.INVALID, "01")]
)
def test_each_code_the_uapi_has_is_its_wire_code(code: ResponseCode, word: str) -> None:
    """iommu_hwpt_page_response by hand: le32 cookie (0x10 << 9 | 3 = 0x2003), le32 code."""
    raw = UpstreamNowPrq().encode_responses([PageResponse(0x10, 3, code)])
    assert raw == bytes.fromhex("03200000" + word + "000000")


# -- the codec: golden vectors written by hand from the layout in fault.py

# dev_id 0x0a18, PASID 0x12345, last in group 0x1a5, read+write of 0x7fff_dead_b000:
#   w0 = flags PASID_VALID | LAST_PAGE (0x3) | dev_id 0x0a18 << 32 -> 03 00 00 00 18 0a 00 00
#   w1 = pasid 0x12345 | grpid 0x1a5 << 32                         -> 45 23 01 00 a5 01 00 00
#   w2 = perm READ | WRITE (0x3), __reserved 0                     -> 03 00 00 00 00 00 00 00
#   w3 = addr 0x0000_7fff_dead_b000                                -> 00 b0 ad de ff 7f 00 00
#   w4 = length 0 | cookie (0x0a18 << 9 | 0x1a5 = 0x1431a5) << 32  -> 00 00 00 00 a5 31 14 00
READ_WRITE = PageRequest(
    device=0x0A18,
    pasid=0x12345,
    pasid_valid=True,
    grpid=0x1A5,
    last=True,
    perm=Perm.READ | Perm.WRITE,
    addr=0x7FFF_DEAD_B000,
)
READ_WRITE_HEX = (
    "03000000 180a0000 45230100 a5010000 03000000 00000000 00b0adde ff7f0000 00000000 a5311400"
)
# dev_id 1, no PASID, not last, group 0, privileged read+exec of 0x1000:
#   w0 = flags 0 | 1 << 32; w1 = 0; w2 = perm READ | EXEC | PRIV (0xd); w3 = 0x1000;
#   w4 = cookie (1 << 9 | 0 = 0x200) << 32
FETCH = PageRequest(
    device=1, grpid=0, last=False, perm=Perm.READ | Perm.EXEC | Perm.PRIV, addr=0x1000
)
FETCH_HEX = (
    "00000000 01000000 00000000 00000000 0d000000 00000000 00100000 00000000 00000000 00020000"
)
# The answers for READ_WRITE's group: cookie 0x1431a5, then code SUCCESS 0 / INVALID 1.
SUCCESS = PageResponse(device=0x0A18, grpid=0x1A5, code=ResponseCode.SUCCESS, pasid=0x12345)
INVALID = PageResponse(device=0x0A18, grpid=0x1A5, code=ResponseCode.INVALID)


def test_the_vendor_conforms() -> None:
    samples = [
        READ_WRITE,
        FETCH,
        PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
        PageRequest(device=7, grpid=9, perm=Perm.NONE),  # a stop marker
        PageRequest(device=(1 << 23) - 1, pasid=0xFFFFF, pasid_valid=True, grpid=0x1FF),
    ]
    assert_conforms(
        UpstreamNowPrq(),
        requests=samples,
        responses=[SUCCESS, INVALID],
        golden=[GoldenRequest(READ_WRITE, READ_WRITE_HEX), GoldenRequest(FETCH, FETCH_HEX)],
        golden_responses=[
            GoldenResponses((SUCCESS, INVALID), "a5311400 00000000 a5311400 01000000")
        ],
    )


def test_a_reserved_bit_is_named_with_its_offset() -> None:
    raw = bytearray(bytes.fromhex(READ_WRITE_HEX.replace(" ", "")) * 2)
    raw[40 + 20] = 1  # the second record's __reserved word (bits 63:32 of word 2)
    with pytest.raises(DecodeError, match=r"at byte offset 0x28: reserved bit 32 of word 2"):
        UpstreamNowPrq().decode_rows(bytes(raw))


def test_the_uapi_has_no_failure_code() -> None:
    failure = PageResponse(device=1, grpid=0, code=ResponseCode.FAILURE)
    with pytest.raises(EncodeError, match="the uAPI has no code for FAILURE"):
        UpstreamNowPrq().encode_response_rows([(1, 0, ResponseCode.FAILURE, 0, False, None, True)])
    with pytest.raises(EncodeError, match="the uAPI has no code for FAILURE"):
        UpstreamNowPrq().encode_responses([failure])


def test_a_device_id_too_wide_for_the_cookie_is_refused() -> None:
    wide = PageRequest(device=1 << 23, grpid=0)
    with pytest.raises(EncodeError, match="dev_id 0x800000 does not fit 23 bits"):
        UpstreamNowPrq().encode_request(wide)
    with pytest.raises(EncodeError, match="dev_id 0x800000 does not fit 23 bits"):
        UpstreamNowPrq().encode_request_rows([request_row(wide)])
