"""The page-request record and ATS.PRGR: golden vectors, round trips, refusals, fuzzing."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import (
    INVALID_IOASID,
    DecodeError,
    EncodeError,
    PageRequest,
    PageResponse,
    Perm,
    ResponseCode,
    ResponseRow,
    request_row,
    response_row,
)
from ioasid_riscv_iommu.commands import ATS_PRGR, decode_prgr, encode_prgr_rows
from ioasid_riscv_iommu.pq import (
    PQ_RECORD,
    PQ_RECORD_SIZE,
    decode_pq,
    decode_pq_rows,
    encode_pq_rows,
)

# hdr = PID 0xFABCD << 12                      = 0x0000_0000_FABC_D000
#     | PV 1 << 32 | PRIV 1 << 33              = 0x0000_0003_0000_0000
#     | DID 0x01_0203 << 40                    = 0x0102_0300_0000_0000
#     = 0x0102_0303_FABC_D000 -> little-endian 00 d0 bc fa 03 03 02 01
# payload = R 1 | L 1 << 2 | PRGI 0x1A5 << 3 (0xD28) | address 0x7F00_DEAD_B000
#     = 0x0000_7F00_DEAD_BD2D -> 2d bd ad de 00 7f 00 00
GOLDEN_RECORD = bytes.fromhex("00d0bcfa030302012dbdadde007f0000")
GOLDEN_REQUEST = PageRequest(
    device=0x010203,
    pasid=0xFABCD,
    pasid_valid=True,
    grpid=0x1A5,
    last=True,
    perm=Perm.READ | Perm.PRIV,
    addr=0x7F00DEADB000,
)

# dword0 = opcode 4 | func 1 << 7 (0x84) | PID 0xFABCD << 12 | PV 1 << 32 | DSV 1 << 33
#        | RID 0x0203 << 40 | DSEG 0x01 << 56  = 0x0102_0303_FABC_D084
#        -> 84 d0 bc fa 03 03 02 01
# dword1 = PRGI 0x1A5 << 32 | RESP 0 << 44 | DST_ID 0x0203 << 48 = 0x0203_01A5_0000_0000
#        -> 00 00 00 00 a5 01 03 02
GOLDEN_PRGR = bytes.fromhex("84d0bcfa0303020100000000a5010302")
GOLDEN_RESPONSE = PageResponse(
    device=0x010203, grpid=0x1A5, code=ResponseCode.SUCCESS, pasid=0xFABCD, pasid_valid=True
)

# dword0 = 0x84 | DSV 1 << 33 | RID 0x0042 << 40 = 0x0000_4202_0000_0084
#        -> 84 00 00 00 02 42 00 00
# dword1 = PRGI 3 << 32 | RESP 0xF << 44 | DST_ID 0x42 << 48 = 0x0042_F003_0000_0000
#        -> 00 00 00 00 03 f0 42 00
GOLDEN_PRGR_FAILURE = bytes.fromhex("84000000024200000000000003f04200")
GOLDEN_FAILURE = PageResponse(device=0x42, grpid=3, code=ResponseCode.FAILURE)


def test_golden_record() -> None:
    assert decode_pq(GOLDEN_RECORD) == GOLDEN_REQUEST
    assert decode_pq_rows(GOLDEN_RECORD) == [request_row(GOLDEN_REQUEST)]
    assert encode_pq_rows([request_row(GOLDEN_REQUEST)]) == GOLDEN_RECORD


@pytest.mark.parametrize(
    ("raw", "response"), [(GOLDEN_PRGR, GOLDEN_RESPONSE), (GOLDEN_PRGR_FAILURE, GOLDEN_FAILURE)]
)
def test_golden_prgr(raw: bytes, response: PageResponse) -> None:
    assert encode_prgr_rows([response_row(response)]) == raw
    assert decode_prgr(raw) == response


@pytest.mark.parametrize(
    ("code", "resp"),
    [(ResponseCode.SUCCESS, 0), (ResponseCode.INVALID, 1), (ResponseCode.FAILURE, 0xF)],
)
def test_every_code_goes_out_as_the_pcie_code(code: ResponseCode, resp: int) -> None:
    raw = encode_prgr_rows([(0, 0, code, INVALID_IOASID, False, None, True)])
    assert struct.unpack("<QQ", raw)[1] == resp << 44


def test_the_hardware_zeroes_priv_and_exec_without_a_pasid() -> None:
    row = request_row(PageRequest(0x7, pasid_valid=False, perm=Perm.READ | Perm.EXEC | Perm.PRIV))
    # hdr = DID 7 << 40 = 0x0000_0700_0000_0000; payload = R 1 | L 1 << 2 = 0x5
    assert encode_pq_rows([row]) == bytes.fromhex("00000000000700000500000000000000")


@pytest.mark.parametrize("bit", [33, 34])
def test_a_record_with_priv_or_exec_and_no_pv_is_refused(bit: int) -> None:
    raw = GOLDEN_RECORD + struct.pack("<QQ", 1 << bit, 4 | 1)
    for decode in (lambda: decode_pq(raw, PQ_RECORD_SIZE), lambda: decode_pq_rows(raw)):
        with pytest.raises(DecodeError, match=r"offset 0x10: PRIV or EXEC set without PV"):
            decode()


def test_pid_without_pv_is_not_a_pasid() -> None:
    # hdr = PID 0x5 << 12 = 0x5000, PV clear
    request = decode_pq(bytes.fromhex("00500000000000000000000000000000"))
    assert (request.pasid, request.pasid_valid) == (INVALID_IOASID, False)


@pytest.mark.parametrize(("word", "bit"), [(0, 0), (0, 11), (0, 35), (0, 39)])
def test_reserved_bits_are_refused_naming_bit_and_offset(word: int, bit: int) -> None:
    data = GOLDEN_RECORD + struct.pack("<QQ", 1 << bit, 0)
    says = rf"record at byte offset 0x10: reserved bit {bit} of word {word} must be zero"
    with pytest.raises(DecodeError, match=says):
        decode_pq(data, PQ_RECORD_SIZE)
    with pytest.raises(DecodeError, match=says):
        decode_pq_rows(data)


def test_reserved_masks() -> None:
    # record: hdr 11:0 and 39:35; payload none
    assert PQ_RECORD.reserved == (0x0000_00F8_0000_0FFF, 0)
    # ATS.PRGR: dword0 11:10, 39:34; dword1 31:0, 43:41
    assert ATS_PRGR.reserved == (0x0000_00FC_0000_0C00, 0x0000_0E00_FFFF_FFFF)


@pytest.mark.parametrize(
    ("words", "says"),
    [
        ((0x84 & ~0x80, 0), "opcode 4 func 0 is not ATS.PRGR"),
        ((0x84 | 1 << 40, 0), r"DST_ID 0x0000 is not the RID 0x0001"),
        ((0x84 | 1 << 56, 0), "DSEG 0x1 without DSV"),
        ((0x84 | 1 << 12, 0), "PID 0x1 without PV"),
        ((0x84, 2 << 44), "RESP 0x2 is not a PRG response code"),
        ((0x84, 1), "reserved bit 0 of word 1"),
    ],
)
def test_prgr_decode_refuses(words: tuple[int, int], says: str) -> None:
    with pytest.raises(DecodeError, match=says):
        decode_prgr(struct.pack("<QQ", *words))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"addr": 0x1001}, "not a 4 KiB aligned"),
        ({"needs_pasid": True}, "needs_pasid is a device property"),
        ({"private_data": (1, 2)}, "no private data"),
        ({"grpid": 0x200}, r"prgi=512 does not fit 9 bits"),
        ({"pasid": 0x100000}, r"pid=1048576 does not fit 20 bits"),
        ({"device": 1 << 24}, r"did=16777216 does not fit 24 bits"),
        ({"perm": Perm(16)}, r"perm=16 does not fit 4 bits"),
    ],
)
def test_record_encode_refuses(changes: dict[str, object], says: str) -> None:
    fields: dict[str, object] = {
        "device": 1,
        "pasid": 2,
        "pasid_valid": True,
        "grpid": 3,
        "last": True,
        "perm": Perm.READ,
        "addr": 0x1000,
    }
    fields.update(changes)
    with pytest.raises(EncodeError, match=says):
        encode_pq_rows([request_row(PageRequest(**fields))])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (
            (1 << 24, 0, ResponseCode.SUCCESS, 0, False, None, True),
            "device=16777216 does not fit 24",
        ),
        ((1, 0x200, ResponseCode.SUCCESS, 0, False, None, True), "prgi=512 does not fit 9"),
        ((1, 0, ResponseCode.SUCCESS, 1 << 20, True, None, True), "pid=1048576 does not fit 20"),
        ((1, 0, ResponseCode.SUCCESS, 0, False, (1, 2), True), "no private data"),
        ((1, 0, 9, 0, False, None, True), "not a page response code"),
    ],
)
def test_prgr_encode_refuses(row: ResponseRow, says: str) -> None:
    with pytest.raises(EncodeError, match=says):
        encode_prgr_rows([row])


# Round trips and fuzzing.


@st.composite
def requests(draw: st.DrawFn) -> PageRequest:
    valid = draw(st.booleans())
    perm = Perm(draw(st.integers(0, 15 if valid else 3)))  # no PRIV/EXEC without a PASID
    return PageRequest(
        device=draw(st.integers(0, (1 << 24) - 1)),
        pasid=draw(st.integers(0, 0xFFFFF)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0x1FF)),
        last=draw(st.booleans()),
        perm=perm,
        addr=draw(st.integers(0, (1 << 52) - 1)) << 12,
    )


@given(st.lists(requests(), max_size=8))
def test_record_round_trip(reqs: list[PageRequest]) -> None:
    rows = [request_row(r) for r in reqs]
    raw = encode_pq_rows(rows)
    assert decode_pq_rows(raw) == rows
    assert [decode_pq(raw, i) for i in range(0, len(raw), PQ_RECORD_SIZE)] == reqs


word = st.integers(0, (1 << 64) - 1)


@given(st.lists(st.tuples(word, word), max_size=12))
def test_rows_equal_the_layout_decoder(words: list[tuple[int, int]]) -> None:
    data = b"".join(struct.pack("<QQ", a, b) for a, b in words)
    try:
        rows = decode_pq_rows(data)
    except DecodeError as exc:
        assert exc.offset is not None
        with pytest.raises(DecodeError) as single:
            decode_pq(data, exc.offset)
        assert str(single.value) == str(exc)
        return
    assert rows == [request_row(decode_pq(data, i)) for i in range(0, len(data), 16)]


@given(st.binary(max_size=80))
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_pq_rows(data)
    for offset in range(0, len(data), PQ_RECORD_SIZE):
        with contextlib.suppress(DecodeError):
            decode_pq(data, offset)


@given(
    st.integers(0, (1 << 24) - 1),
    st.integers(0, 0x1FF),
    st.sampled_from(list(ResponseCode)),
    st.integers(0, 0xFFFFF),
    st.booleans(),
)
def test_prgr_round_trip(device: int, grpid: int, code: ResponseCode, pid: int, pv: bool) -> None:
    response = PageResponse(device, grpid, code, pid if pv else INVALID_IOASID, pv)
    assert decode_prgr(encode_prgr_rows([response_row(response)])) == response


@given(st.binary(min_size=16, max_size=16))
def test_prgr_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        response = decode_prgr(data)
    except DecodeError:
        return
    # A DSEG of 0 without DSV decodes the same as with it; the driver always sets DSV.
    raw = encode_prgr_rows([response_row(response)])
    assert struct.unpack("<QQ", raw)[0] | 1 << 33 == struct.unpack("<QQ", data)[0] | 1 << 33
    assert raw[8:] == data[8:]
