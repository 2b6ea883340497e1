"""COMPLETE_PPR_REQUEST: golden vectors, every status, refusals, fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_amd_vi.commands import (
    COMMAND_SIZE,
    COMPLETE_PPR_REQUEST,
    decode_complete_ppr,
    encode_complete_ppr_rows,
)
from ioasid_core.plugin import (
    INVALID_IOASID,
    DecodeError,
    EncodeError,
    PageResponse,
    ResponseCode,
    ResponseRow,
    response_row,
)

# data[0] = devid 0x0210
# data[1] = PASID 0x8002 | opcode 7 << 28          = 0x7000_8002
# data[2] = GN (CMD_INV_IOMMU_PAGES_GN_MASK) 0x4
# data[3] = tag 0x1A5 | status INVALID 1 << 12     = 0x0000_11A5
# w0 = data[0] | data[1] << 32 = 0x7000_8002_0000_0210 -> 10 02 00 00 02 80 00 70
# w1 = data[2] | data[3] << 32 = 0x0000_11A5_0000_0004 -> 04 00 00 00 a5 11 00 00
GOLDEN_INVALID_GN = bytes.fromhex("100200000280007004000000a5110000")
GOLDEN_INVALID_GN_RESPONSE = PageResponse(
    device=0x0210, grpid=0x1A5, code=ResponseCode.INVALID, pasid=0x8002, pasid_valid=True
)

# data[0] = devid 0x0003; data[1] = opcode 7 << 28 = 0x7000_0000 (no GN: no PASID)
# data[2] = 0; data[3] = tag 0x1FF | FAILURE 0xF << 12 = 0x0000_F1FF
# w0 = 0x7000_0000_0000_0003 -> 03 00 00 00 00 00 00 70
# w1 = 0x0000_F1FF_0000_0000 -> 00 00 00 00 ff f1 00 00
GOLDEN_FAILURE = bytes.fromhex("030000000000007000000000fff10000")
GOLDEN_FAILURE_RESPONSE = PageResponse(device=0x0003, grpid=0x1FF, code=ResponseCode.FAILURE)


@pytest.mark.parametrize(
    ("raw", "response"),
    [
        (GOLDEN_INVALID_GN, GOLDEN_INVALID_GN_RESPONSE),
        (GOLDEN_FAILURE, GOLDEN_FAILURE_RESPONSE),
    ],
)
def test_golden_commands(raw: bytes, response: PageResponse) -> None:
    assert encode_complete_ppr_rows([response_row(response)]) == raw
    assert decode_complete_ppr(raw) == response


@pytest.mark.parametrize(
    ("code", "status"),
    [(ResponseCode.SUCCESS, 0x0), (ResponseCode.INVALID, 0x1), (ResponseCode.FAILURE, 0xF)],
)
def test_every_code_goes_out_as_the_pcie_status(code: ResponseCode, status: int) -> None:
    raw = encode_complete_ppr_rows([(1, 2, code, INVALID_IOASID, False, None, True)])
    # data[3] is bytes 12..15: tag 2 | status << 12
    assert raw[12:16] == struct.pack("<I", 2 | status << 12)


def test_generic_failure_written_raw_is_named_on_decode() -> None:
    # w1 = status 2 << 44: what today's amd_iommu_page_response writes for generic FAILURE
    raw = struct.pack("<QQ", 7 << 60, 2 << 44)
    with pytest.raises(DecodeError, match=r"status 0x2 .*\(the generic FAILURE written unmapped\)"):
        decode_complete_ppr(raw)


@pytest.mark.parametrize(
    ("words", "says"),
    [
        ((6 << 60, 0), "opcode 0x6 is not COMPLETE_PPR_REQUEST"),
        ((7 << 60 | 5 << 32, 0), "PASID 0x5 without GN"),
        ((7 << 60 | 1 << 16, 0), "reserved bit 16 of word 0"),
        ((7 << 60, 1 << 3), "reserved bit 3 of word 1"),
        ((7 << 60, 7 << 41), "reserved bits 43:41 of word 1"),
    ],
)
def test_decode_refuses(words: tuple[int, int], says: str) -> None:
    with pytest.raises(DecodeError, match=says):
        decode_complete_ppr(struct.pack("<QQ", *words))


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ((1 << 16, 0, ResponseCode.SUCCESS, 0, False, None, True), "devid=65536 does not fit 16"),
        ((1, 0x200, ResponseCode.SUCCESS, 0, False, None, True), "prg_index=512 does not fit 9"),
        ((1, 0, ResponseCode.SUCCESS, 1 << 20, True, None, True), "pasid=1048576 does not fit 20"),
        ((1, 0, ResponseCode.SUCCESS, 0, False, (1, 2), True), "no private data"),
        ((1, 0, 7, 0, False, None, True), "not a page response code"),
    ],
)
def test_encode_refuses(row: ResponseRow, says: str) -> None:
    with pytest.raises(EncodeError, match=says):
        encode_complete_ppr_rows([row])


codes = st.sampled_from(list(ResponseCode))


@given(st.integers(0, 0xFFFF), st.integers(0, 0x1FF), codes, st.integers(0, 0xFFFFF), st.booleans())
def test_round_trip(device: int, grpid: int, code: ResponseCode, pasid: int, gn: bool) -> None:
    response = PageResponse(device, grpid, code, pasid if gn else INVALID_IOASID, gn)
    raw = encode_complete_ppr_rows([response_row(response)])
    assert len(raw) == COMMAND_SIZE
    assert decode_complete_ppr(raw) == response


@given(st.binary(min_size=16, max_size=16))
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        response = decode_complete_ppr(data)
    except DecodeError:
        return
    assert encode_complete_ppr_rows([response_row(response)]) == data


def test_reserved_masks() -> None:
    # w0: 31:16, 59:52; w1: 1:0, 31:3, 43:41, 63:48
    assert COMPLETE_PPR_REQUEST.reserved == (
        0x0FF0_0000_FFFF_0000,
        0xFFFF_0E00_FFFF_FFFB,
    )
