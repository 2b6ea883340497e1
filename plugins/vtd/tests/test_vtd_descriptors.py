"""VT-d page request / page group response descriptors and the PRQ ring decoder."""

from __future__ import annotations

import struct
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core import INVALID_IOASID
from ioasid_core.plugin import (
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    PageRequest,
    PageResponse,
    Perm,
    ResponseCode,
)
from ioasid_vtd.descriptors import (
    PAGE_GROUP_RESPONSE,
    PAGE_REQUEST,
    PageGroupResponseDescriptor,
    PageRequestDescriptor,
    decode_ring,
    decode_ring_reference,
    ring_offsets,
    vtd_response_code,
)

U64 = st.integers(0, (1 << 64) - 1)
PRIVATE = st.tuples(U64, U64)

# Page request, PASID 0x12345 from 0a:03.0 (requester ID 0x0a18 = bus 0x0a << 8 | devfn 0x18),
# privileged read+write of 0x7fff_dead_b000, last in group 0x1a5, no private data.
#   qw0 = type 1 | PASID present 1 << 8 (0x100) | 0x0a18 << 16 (0x0a18_0000)
#         | 0x12345 << 32 (0x1_2345_0000_0000) | privileged 1 << 53 (0x20_0000_0000_0000)
#       = 0x0021_2345_0a18_0101
#   qw1 = read 1 | write 2 | LPIG 4 | 0x1a5 << 3 (0xd28) | 0x7fff_dead_b000 = 0x7fff_dead_bd2f
REQUEST_1 = bytes.fromhex("0101180a452321002fbdaddeff7f0000") + bytes(16)
REQUEST_1_FIELDS = PageRequestDescriptor(
    type=1,
    pasid_present=True,
    rid=0x0A18,
    pasid=0x12345,
    pm=True,
    rd=True,
    wr=True,
    lpig=True,
    prg_index=0x1A5,
    address=0x7FFF_DEAD_B000,
)
REQUEST_1_GENERIC = PageRequest(
    device=0x0A18,
    pasid=0x12345,
    pasid_valid=True,
    grpid=0x1A5,
    last=True,
    perm=Perm.READ | Perm.WRITE | Perm.PRIV,
    addr=0x7FFF_DEAD_B000,
)

# No PASID, execute+read of page 0x1000, not last, with private data, from requester 0x0001.
#   qw0 = type 1 | private data present 1 << 9 (0x200) | 0x0001 << 16 | exec 1 << 52
#       = 0x0010_0000_0001_0201
#   qw1 = read 1 | 0x1000 = 0x1001
REQUEST_2 = (
    bytes.fromhex("01020100000010000110000000000000")
    + (0x1122_3344_5566_7788).to_bytes(8, "little")
    + (0x99AA_BBCC_DDEE_FF00).to_bytes(8, "little")
)
REQUEST_2_GENERIC = PageRequest(
    device=0x0001,
    last=False,
    perm=Perm.READ | Perm.EXEC,
    addr=0x1000,
    private_data=(0x1122_3344_5566_7788, 0x99AA_BBCC_DDEE_FF00),
)

# Page group response FAILURE for REQUEST_1:
#   qw0 = type 9 | PASID present 1 << 4 (0x10) | code 0xf << 12 (0xf000) | 0x0a18 << 16
#         | 0x12345 << 32 = 0x0001_2345_0a18_f019
#   qw1 = LPIG 1 << 2 (0x4) | 0x1a5 << 3 (0xd28) = 0xd2c
RESPONSE_1 = bytes.fromhex("19f0180a452301002c0d000000000000") + bytes(16)


# -- golden vectors


def test_request_golden() -> None:
    assert PageRequestDescriptor.from_bytes(REQUEST_1) == REQUEST_1_FIELDS
    assert REQUEST_1_FIELDS.to_bytes() == REQUEST_1
    assert REQUEST_1_FIELDS.to_page_request() == REQUEST_1_GENERIC
    assert PageRequestDescriptor.from_page_request(REQUEST_1_GENERIC) == REQUEST_1_FIELDS


def test_request_with_private_data_golden() -> None:
    descriptor = PageRequestDescriptor.from_bytes(REQUEST_2)
    assert descriptor.priv_data_present and descriptor.exe and not descriptor.pasid_present
    assert descriptor.to_page_request() == REQUEST_2_GENERIC
    assert PageRequestDescriptor.from_page_request(REQUEST_2_GENERIC).to_bytes() == REQUEST_2


def test_response_golden() -> None:
    response = PageResponse(
        device=0x0A18, grpid=0x1A5, code=ResponseCode.FAILURE, pasid=0x12345, pasid_valid=True
    )
    descriptor = PageGroupResponseDescriptor.from_page_response(response)
    assert descriptor.code == 0xF
    assert descriptor.to_bytes() == RESPONSE_1
    assert PageGroupResponseDescriptor.from_bytes(RESPONSE_1) == descriptor
    assert descriptor.to_page_response() == response


def test_response_codes() -> None:
    assert [vtd_response_code(c) for c in ResponseCode] == [0x0, 0x1, 0xF]


def test_a_generic_failure_code_is_not_a_vtd_code() -> None:
    # The kernel's IOPF path wrote generic FAILURE (2) unmapped: 2 << 12 = 0x2000 in qw0.
    raw = bytearray(RESPONSE_1)
    raw[1] = 0x20
    descriptor = PageGroupResponseDescriptor.from_bytes(raw)
    assert descriptor.code == 2
    with pytest.raises(DecodeError, match=r"code 0x2 .*IOPF path wrote unmapped"):
        descriptor.to_page_response()
    with pytest.raises(DecodeError, match=r"code 0x5 is not SUCCESS.*0xf$"):
        PageGroupResponseDescriptor(code=5).to_page_response()


def test_private_data_is_echoed_in_the_response() -> None:
    response = PageResponse(
        device=1, grpid=0, code=ResponseCode.SUCCESS, private_data=REQUEST_2_GENERIC.private_data
    )
    descriptor = PageGroupResponseDescriptor.from_page_response(response, lpig=False)
    raw = descriptor.to_bytes()
    # qw0 = 9 | private data present 1 << 5 (0x20) | 0x0001 << 16 = 0x0001_0029; qw1 = 0.
    assert raw[:16] == bytes.fromhex("29000100000000000000000000000000")
    assert raw[16:] == REQUEST_2[16:]


# -- malformed bytes, out-of-range fields


@pytest.mark.parametrize(
    ("word", "bit", "message"),
    [
        (0, 10, "reserved bit 10 of word 0 must be zero"),
        (0, 15, "reserved bit 15 of word 0"),
        (0, 54, "reserved bit 54 of word 0"),
        (0, 63, "reserved bit 63 of word 0"),
    ],
)
def test_request_reserved_bits(word: int, bit: int, message: str) -> None:
    raw = bytearray(REQUEST_1)
    raw[word * 8 + bit // 8] |= 1 << bit % 8
    with pytest.raises(DecodeError, match="VT-d page request descriptor at byte offset 0x0: "):
        PageRequestDescriptor.from_bytes(raw)
    with pytest.raises(DecodeError, match=message):
        PageRequestDescriptor.from_bytes(raw)


@pytest.mark.parametrize(
    ("word", "bit", "message"),
    [
        (0, 6, "reserved bit 6 of word 0"),
        (0, 11, "reserved bit 11 of word 0"),
        (0, 52, "reserved bit 52 of word 0"),
        (1, 0, "reserved bit 0 of word 1"),
        (1, 1, "reserved bit 1 of word 1"),
        (1, 12, "reserved bit 12 of word 1"),
    ],
)
def test_response_reserved_bits(word: int, bit: int, message: str) -> None:
    raw = bytearray(RESPONSE_1)
    raw[word * 8 + bit // 8] |= 1 << bit % 8
    with pytest.raises(DecodeError, match=message):
        PageGroupResponseDescriptor.from_bytes(raw)


def test_response_type_must_be_9() -> None:
    raw = bytearray(RESPONSE_1)
    raw[0] = 0x18  # type 8
    with pytest.raises(DecodeError, match=r"at byte offset 0x0: type is 0x8, not 0x9"):
        PageGroupResponseDescriptor.from_bytes(raw)


def test_short_buffers() -> None:
    with pytest.raises(DecodeError, match="needs 32 bytes, only 31 left"):
        PageRequestDescriptor.from_bytes(REQUEST_1[:31])
    with pytest.raises(DecodeError, match="needs 32 bytes, only 0 left"):
        PageGroupResponseDescriptor.from_bytes(RESPONSE_1, 32)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rid": 0x10000}, "rid=65536 does not fit 16 bits"),
        ({"pasid": 1 << 20}, "pasid=1048576 does not fit 20 bits"),
        ({"prg_index": 512}, "prg_index=512 does not fit 9 bits"),
        ({"type": 0x100}, "type=256 does not fit 8 bits"),
        ({"address": 0x1001}, "address 4097 is not a page-aligned"),
        ({"address": 1 << 64}, "is not a page-aligned 64-bit address"),
        ({"priv_data": (1 << 64, 0)}, "priv_data_0=18446744073709551616 does not fit"),
    ],
)
def test_request_fields_out_of_range(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        attrs.evolve(REQUEST_1_FIELDS, **changes).to_bytes()


def test_generic_values_that_vtd_cannot_carry() -> None:
    with pytest.raises(EncodeError, match="pasid=4294967295 does not fit 20 bits"):
        PageRequestDescriptor.from_page_request(
            PageRequest(device=1, pasid=INVALID_IOASID, pasid_valid=True)
        ).to_bytes()
    response = PageResponse(device=1, grpid=512, code=ResponseCode.SUCCESS)
    with pytest.raises(EncodeError, match="prg_index=512 does not fit 9 bits"):
        PageGroupResponseDescriptor.from_page_response(response).to_bytes()
    with pytest.raises(EncodeError, match="code=16 does not fit 4 bits"):
        PageGroupResponseDescriptor(code=16).to_bytes()


# -- round trips


def request_descriptors() -> st.SearchStrategy[PageRequestDescriptor]:
    return st.builds(
        PageRequestDescriptor,
        type=st.integers(0, 0xFF),
        pasid_present=st.booleans(),
        priv_data_present=st.booleans(),
        rid=st.integers(0, 0xFFFF),
        pasid=st.integers(0, 0xFFFFF),
        exe=st.booleans(),
        pm=st.booleans(),
        rd=st.booleans(),
        wr=st.booleans(),
        lpig=st.booleans(),
        prg_index=st.integers(0, 0x1FF),
        address=st.integers(0, (1 << 52) - 1).map(lambda page: page << 12),
        priv_data=PRIVATE,
    )


def response_descriptors() -> st.SearchStrategy[PageGroupResponseDescriptor]:
    return st.builds(
        PageGroupResponseDescriptor,
        pasid_present=st.booleans(),
        priv_data_present=st.booleans(),
        code=st.integers(0, 0xF),
        rid=st.integers(0, 0xFFFF),
        pasid=st.integers(0, 0xFFFFF),
        lpig=st.booleans(),
        prg_index=st.integers(0, 0x1FF),
        priv_data=PRIVATE,
    )


@st.composite
def vtd_page_requests(draw: st.DrawFn) -> PageRequest:
    """Generic requests a VT-d descriptor can carry (not needs_pasid: a device property)."""
    valid = draw(st.booleans())
    return PageRequest(
        device=draw(st.integers(0, 0xFFFF)),
        pasid=draw(st.integers(0, 0xFFFFF)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0x1FF)),
        last=draw(st.booleans()),
        perm=Perm(draw(st.integers(0, 15))),
        addr=draw(st.integers(0, (1 << 52) - 1)) << 12,
        private_data=draw(st.none() | PRIVATE),
    )


@st.composite
def vtd_page_responses(draw: st.DrawFn) -> PageResponse:
    valid = draw(st.booleans())
    return PageResponse(
        device=draw(st.integers(0, 0xFFFF)),
        grpid=draw(st.integers(0, 0x1FF)),
        code=draw(st.sampled_from(ResponseCode)),
        pasid=draw(st.integers(0, 0xFFFFF)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        private_data=draw(st.none() | PRIVATE),
    )


def words(reserved: tuple[int, ...]) -> st.SearchStrategy[bytes]:
    """Random descriptors with every reserved bit clear."""

    def word(mask: int) -> st.SearchStrategy[int]:
        return U64.map(lambda value: value & ~mask)

    return st.tuples(*[word(mask) for mask in reserved]).map(lambda ws: struct.pack("<4Q", *ws))


@given(request_descriptors())
def test_request_descriptor_round_trip(descriptor: PageRequestDescriptor) -> None:
    assert PageRequestDescriptor.from_bytes(descriptor.to_bytes()) == descriptor


@given(words(PAGE_REQUEST.reserved))
def test_request_bytes_round_trip(raw: bytes) -> None:
    assert PageRequestDescriptor.from_bytes(raw).to_bytes() == raw


@given(response_descriptors())
def test_response_descriptor_round_trip(descriptor: PageGroupResponseDescriptor) -> None:
    assert PageGroupResponseDescriptor.from_bytes(descriptor.to_bytes()) == descriptor


@given(words(PAGE_GROUP_RESPONSE.reserved))
def test_response_bytes_round_trip(raw: bytes) -> None:
    raw = bytes([raw[0] & 0xF0 | 0x9]) + raw[1:]  # the type is fixed
    assert PageGroupResponseDescriptor.from_bytes(raw).to_bytes() == raw


@given(vtd_page_requests())
def test_page_request_round_trip(request: PageRequest) -> None:
    raw = PageRequestDescriptor.from_page_request(request).to_bytes()
    assert PageRequestDescriptor.from_bytes(raw).to_page_request() == request


@given(vtd_page_responses(), st.booleans())
def test_page_response_round_trip(response: PageResponse, last: bool) -> None:
    response = attrs.evolve(response, last=last)
    descriptor = PageGroupResponseDescriptor.from_page_response(response)
    decoded = PageGroupResponseDescriptor.from_bytes(descriptor.to_bytes())
    assert decoded.lpig == last  # LPIG is the response's last
    assert decoded.to_page_response() == response


def test_page_response_lpig_may_be_forced() -> None:
    response = PageResponse(device=1, grpid=2, code=ResponseCode.SUCCESS)
    assert not PageGroupResponseDescriptor.from_page_response(response, lpig=False).lpig


# -- the PRQ ring


def ring_of(rids: list[int]) -> bytes:
    return b"".join(PageRequestDescriptor(rid=rid, lpig=True, rd=True).to_bytes() for rid in rids)


def test_ring_wraps_from_head_to_tail() -> None:
    ring = ring_of([0, 1, 2, 3])
    assert ring_offsets(ring, 96, 64) == [96, 0, 32]
    assert [r.device for r in decode_ring(ring, 96, 64)] == [3, 0, 1]
    assert [r.device for r in decode_ring(ring, 32, 96)] == [1, 2]
    assert decode_ring(ring, 64, 64) == []


def test_ring_accepts_any_buffer() -> None:
    ring = ring_of([5, 6])
    expected = decode_ring(ring, 0, 32)
    assert decode_ring(bytearray(ring), 0, 32) == expected
    assert decode_ring(memoryview(ring), 0, 32) == expected
    assert decode_ring(memoryview(ring).cast("Q"), 0, 32) == expected


@pytest.mark.parametrize(
    ("size", "head", "tail", "message"),
    [
        (0, 0, 0, "ring of 0 bytes"),
        (33, 0, 0, "ring of 33 bytes"),
        (128, 16, 0, "head 16 is not a 32-byte-aligned offset"),
        (128, 0, 128, "tail 128 is not a 32-byte-aligned offset in the 128-byte ring"),
        (128, -32, 0, "head -32"),
    ],
)
def test_ring_bounds(size: int, head: int, tail: int, message: str) -> None:
    for decode in (decode_ring, decode_ring_reference):
        with pytest.raises(InvalidArgumentError, match=message):
            decode(bytes(size), head, tail)


def test_ring_reports_the_bad_entry_by_offset() -> None:
    ring = bytearray(ring_of([0, 1, 2, 3]))
    ring[64 + 1] |= 0x04  # entry 2 (byte offset 0x40), qw0 bit 10 (byte 1, bit 2)
    with pytest.raises(DecodeError, match=r"at byte offset 0x40: reserved bit 10 of word 0"):
        decode_ring(ring, 0, 96)
    with pytest.raises(DecodeError, match=r"at byte offset 0x40"):
        decode_ring(ring, 64, 32)  # 64, 96, 0
    assert len(decode_ring(ring, 96, 64)) == 3  # 96, 0, 32: entry 2 is not read


@st.composite
def rings(draw: st.DrawFn) -> tuple[bytes, int, int]:
    entries = draw(st.integers(1, 12))
    raw = b""
    for _ in range(entries):
        qw = draw(st.tuples(U64, U64, U64, U64))
        if draw(st.integers(0, 7)) != 0:  # mostly well-formed entries
            qw = (qw[0] & ~PAGE_REQUEST.reserved[0], *qw[1:])
        raw += struct.pack("<4Q", *qw)
    head = draw(st.integers(0, entries - 1)) * 32
    tail = draw(st.integers(0, entries - 1)) * 32
    return raw, head, tail


def outcome(decode: object, ring: bytes, head: int, tail: int) -> object:
    try:
        return decode(ring, head, tail)  # type: ignore[operator]
    except DecodeError as exc:
        return ("error", str(exc))


@given(rings())
def test_fast_ring_decoder_equals_the_bitlayout_path(case: tuple[bytes, int, int]) -> None:
    ring, head, tail = case
    assert outcome(decode_ring, ring, head, tail) == outcome(
        decode_ring_reference, ring, head, tail
    )
