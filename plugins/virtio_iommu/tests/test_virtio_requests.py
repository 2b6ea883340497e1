"""virtio-iommu request constants and the PAGE_RESP request."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import INVALID_IOASID, DecodeError, EncodeError, PageResponse, ResponseCode
from ioasid_virtio_iommu.requests import (
    MERGED_REQUEST_TYPES,
    RequestType,
    Status,
    decode_page_resp,
    encode_page_resp,
    peek_request_type,
)

# Golden PAGE_RESP, by hand: endpoint 3, PASID 0x1234 valid, group 0x1FF, INVALID, status OK.
#   byte  0      type PAGE_RESP = 8            -> 08
#   bytes 1..3   reserved                      -> 00 00 00
#   bytes 4..7   reserved (RFC domain)         -> 00 00 00 00
#   bytes 8..11  endpoint 3                    -> 03 00 00 00
#   bytes 12..15 flags PASID_VALID = 1         -> 01 00 00 00
#   bytes 16..19 pasid 0x1234                  -> 34 12 00 00
#   bytes 20..23 grpid 0x1FF                   -> ff 01 00 00
#   bytes 24..25 resp_code INVALID = 1         -> 01 00
#   bytes 26..27 padding                       -> 00 00
#   byte  28     status OK = 0; 29..31 reserved -> 00 00 00 00
GOLDEN = bytes.fromhex("08000000 00000000 03000000 01000000 34120000 ff010000 0100 0000 00000000")
RESPONSE = PageResponse(
    device=3, grpid=0x1FF, code=ResponseCode.INVALID, pasid=0x1234, pasid_valid=True
)

# Without a PASID, FAILURE (2), endpoint 0xA0B0C0D0, group 0xFFFF, device answered FAULT (7):
#   flags 0, pasid 0; endpoint LE d0 c0 b0 a0; grpid ff ff 00 00; code 02 00; status byte 28 = 07
GOLDEN_NO_PASID = bytes.fromhex(
    "08000000 00000000 d0c0b0a0 00000000 00000000 ffff0000 0200 0000 07000000"
)
RESPONSE_NO_PASID = PageResponse(device=0xA0B0C0D0, grpid=0xFFFF, code=ResponseCode.FAILURE)


def test_golden_page_resp_both_ways() -> None:
    assert len(GOLDEN) == 32
    assert encode_page_resp(RESPONSE) == GOLDEN
    assert decode_page_resp(GOLDEN) == (RESPONSE, Status.OK)


def test_golden_page_resp_without_pasid_with_a_device_status() -> None:
    assert encode_page_resp(RESPONSE_NO_PASID, status=Status.FAULT) == GOLDEN_NO_PASID
    response, status = decode_page_resp(GOLDEN_NO_PASID)
    assert (response, status) == (RESPONSE_NO_PASID, Status.FAULT)
    assert response.pasid == INVALID_IOASID


def test_constants_are_the_specs_numbers() -> None:
    assert {t.name: int(t) for t in RequestType} == {
        "ATTACH": 1,
        "DETACH": 2,
        "MAP": 3,
        "UNMAP": 4,
        "PROBE": 5,
        "ATTACH_TABLE": 6,
        "INVALIDATE": 7,
        "PAGE_RESP": 8,
    }
    assert {s.name: int(s) for s in Status} == {
        "OK": 0,
        "IOERR": 1,
        "UNSUPP": 2,
        "DEVERR": 3,
        "INVAL": 4,
        "RANGE": 5,
        "NOENT": 6,
        "FAULT": 7,
    }
    assert sorted(MERGED_REQUEST_TYPES) == [1, 2, 3, 4, 5]


responses = st.builds(
    lambda device, grpid, code, pasid: PageResponse(
        device=device,
        grpid=grpid,
        code=code,
        pasid=INVALID_IOASID if pasid is None else pasid,
        pasid_valid=pasid is not None,
    ),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.sampled_from(ResponseCode),
    st.none() | st.integers(0, (1 << 20) - 1),
)


@given(responses, st.sampled_from(Status))
def test_page_resp_round_trip(response: PageResponse, status: Status) -> None:
    raw = encode_page_resp(response, status=status)
    assert len(raw) == 32
    assert decode_page_resp(raw) == (response, status)
    assert peek_request_type(raw) is RequestType.PAGE_RESP


@given(responses, st.lists(st.integers(0, 255), min_size=1, max_size=3))
def test_every_accepted_page_resp_re_encodes_to_itself(
    response: PageResponse, flips: list[int]
) -> None:
    value = int.from_bytes(encode_page_resp(response), "little")
    for bit in flips:
        value ^= 1 << bit
    mutated = value.to_bytes(32, "little")
    try:
        decoded, status = decode_page_resp(mutated)
    except DecodeError:
        return
    assert encode_page_resp(decoded, status=status) == mutated


def test_private_data_is_not_sent() -> None:
    raw = encode_page_resp(
        PageResponse(device=1, grpid=2, code=ResponseCode.SUCCESS, private_data=(5, 6))
    )
    assert decode_page_resp(raw)[0].private_data is None


def test_an_invalid_pasid_is_not_written() -> None:
    raw = encode_page_resp(PageResponse(device=1, grpid=2, code=ResponseCode.SUCCESS, pasid=9))
    assert raw[12:20] == bytes(8)


@pytest.mark.parametrize(
    ("byte", "value", "says", "offset"),
    [
        (0, 1, "type (record byte 0): is 1 (ATTACH), not PAGE_RESP (8)", 0),
        (0, 0x42, "type (record byte 0): is 66 (unknown), not PAGE_RESP (8)", 0),
        (3, 1, "reserved bytes 1..3 (record byte 1): must be zero", 1),
        (4, 1, "reserved bytes 4..7 (RFC domain) (record byte 4): must be zero", 4),
        (7, 0x80, "reserved bytes 4..7 (RFC domain) (record byte 4): must be zero", 4),
        (12, 3, "flags (record byte 12): unknown bits 0x2", 12),
        (15, 0x80, "flags (record byte 12): unknown bits 0x80000000", 12),
        (12, 0, "pasid (record byte 16): is 0x1234 but flag PASID_VALID is clear", 16),
        (18, 0x10, "pasid (record byte 16): 0x101234 is wider than 20 bits", 16),
        (22, 1, "grpid (record byte 20): 0x101ff does not fit the fault record's 16-bit", 20),
        (24, 3, "resp_code (record byte 24): unknown code 3 (SUCCESS 0, INVALID 1, FAILURE 2)", 24),
        (25, 1, "resp_code (record byte 24): unknown code 257", 24),
        (27, 1, "reserved bytes 26..27 (padding) (record byte 26): must be zero", 26),
        (28, 8, "status (record byte 28): unknown status 8", 28),
        (31, 1, "reserved bytes 29..31 (record byte 29): must be zero", 29),
    ],
)
def test_malformed_page_resp_is_refused(byte: int, value: int, says: str, offset: int) -> None:
    raw = bytearray(GOLDEN)
    raw[byte] = value
    with pytest.raises(DecodeError, match=re.escape(says)) as info:
        decode_page_resp(bytes(raw))
    assert info.value.offset == offset


def test_errors_are_offset_within_a_larger_buffer() -> None:
    raw = bytearray(bytes(16) + GOLDEN)
    raw[16 + 26] = 1
    with pytest.raises(DecodeError, match=re.escape("at byte offset 0x2a: reserved bytes 26..27")):
        decode_page_resp(bytes(raw), 16)
    assert decode_page_resp(bytes(16) + GOLDEN, 16) == (RESPONSE, Status.OK)


def test_short_page_resp_is_refused() -> None:
    with pytest.raises(DecodeError, match="needs 32 bytes, only 31 left"):
        decode_page_resp(GOLDEN[:31])


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (PageResponse(device=1, grpid=0x10000, code=ResponseCode.SUCCESS), "grpid=0x10000"),
        (
            PageResponse(
                device=1, grpid=1, code=ResponseCode.SUCCESS, pasid=1 << 20, pasid_valid=True
            ),
            "pasid=0x100000 is wider than 20 bits",
        ),
        (
            PageResponse(device=1 << 32, grpid=1, code=ResponseCode.SUCCESS),
            "endpoint=4294967296 does not fit 32 bits",
        ),
        (PageResponse(device=1, grpid=1, code=1), "code 1 is not a ResponseCode"),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_what_does_not_fit(response: PageResponse, says: str) -> None:
    with pytest.raises(EncodeError, match=re.escape(says)):
        encode_page_resp(response)


@pytest.mark.parametrize(
    ("head", "expected"),
    [(b"\x01\x00\x00\x00", RequestType.ATTACH), (b"\x06\x00\x00\x00", RequestType.ATTACH_TABLE)],
)
def test_peek_request_type(head: bytes, expected: RequestType) -> None:
    assert peek_request_type(head + bytes(8)) is expected


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (b"\x09\x00\x00\x00", "type (record byte 0): unknown request type 9"),
        (b"\x00\x00\x00\x00", "unknown request type 0"),
        (b"\x01\x00\x01\x00", "reserved bytes 1..3 (record byte 1): must be zero"),
        (b"\x01\x00", "needs 4 bytes"),
    ],
)
def test_peek_request_type_refuses_bad_heads(head: bytes, says: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(says)):
        peek_request_type(head)
