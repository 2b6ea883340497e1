"""The PPR log entry codec: golden vectors, round trips, unhandled types, malformed entries."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_amd_vi.ppr import (
    PPR_ENTRY_SIZE,
    PPR_LOG_ENTRY,
    PprEntry,
    decode_ppr,
    decode_ppr_rows,
    encode_ppr,
    encode_ppr_rows,
    ppr_entry_for,
)
from ioasid_core.plugin import (
    INVALID_IOASID,
    DecodeError,
    EncodeError,
    PageRequest,
    Perm,
    UnhandledEvent,
    UnhandledKind,
    request_row,
)

# raw0 = DEVID 0x0210                                   = 0x0000_0000_0000_0210
#      | PASID[15:0] 0x8002 << 16                       = 0x0000_0000_8002_0000
#      | TAG: PRG index 0x1A5 << 32, last 1 << 41       = 0x0000_03A5_0000_0000
#      | PASID[19:16] 0 << 42
#      | FLAGS (READ 0x004 | WRITE 0x020 | US 0x040 | GN 0x100 = 0x164) << 48
#                                                       = 0x0164_0000_0000_0000
#      | TYPE 1 << 60                                   = 0x1000_0000_0000_0000
#      = 0x1164_03A5_8002_0210 -> little-endian 10 02 02 80 a5 03 64 11
# raw1 = page address 0x7F00_DEAD_B000                  -> 00 b0 ad de 00 7f 00 00
GOLDEN_USER_RW = bytes.fromhex("10020280a503641100b0adde007f0000")
GOLDEN_USER_RW_ENTRY = PprEntry(
    devid=0x0210,
    pasid=0x8002,
    prg_index=0x1A5,
    last=True,
    read=True,
    write=True,
    user=True,
    gn=True,
    addr=0x7F00DEADB000,
)
GOLDEN_USER_RW_REQUEST = PageRequest(
    device=0x0210,
    pasid=0x8002,
    pasid_valid=True,
    grpid=0x1A5,
    last=True,
    perm=Perm.READ | Perm.WRITE,
    addr=0x7F00DEADB000,
)

# raw0 = DEVID 0xFFFF | PASID[15:0] 0xBCDE << 16        = 0x0000_0000_BCDE_FFFF
#      | TAG 0 (PRG index 0, not last)
#      | PASID[19:16] 0xA << 42 (bits 43 and 45)        = 0x0000_2800_0000_0000
#      | FLAGS (EXEC 0x002 | READ 0x004 | GN 0x100 = 0x106; US clear) << 48
#                                                       = 0x0106_0000_0000_0000
#      | TYPE 1 << 60
#      = 0x1106_2800_BCDE_FFFF -> ff ff de bc 00 28 06 11
# raw1 = 0xFFFF_FFFF_FFFF_F000 -> 00 f0 ff ff ff ff ff ff
GOLDEN_SUPERVISOR_EXEC = bytes.fromhex("ffffdebc0028061100f0ffffffffffff")
GOLDEN_SUPERVISOR_EXEC_REQUEST = PageRequest(
    device=0xFFFF,
    pasid=0xABCDE,
    pasid_valid=True,
    grpid=0,
    last=False,
    perm=Perm.READ | Perm.EXEC | Perm.PRIV,  # US clear: the driver asks for PRIV
    addr=0xFFFFFFFFFFFFF000,
)


def test_golden_user_read_write() -> None:
    assert decode_ppr(GOLDEN_USER_RW) == GOLDEN_USER_RW_ENTRY
    assert encode_ppr(GOLDEN_USER_RW_ENTRY) == GOLDEN_USER_RW
    assert GOLDEN_USER_RW_ENTRY.to_request() == GOLDEN_USER_RW_REQUEST
    assert ppr_entry_for(GOLDEN_USER_RW_REQUEST) == GOLDEN_USER_RW_ENTRY
    assert decode_ppr_rows(GOLDEN_USER_RW) == [request_row(GOLDEN_USER_RW_REQUEST)]


def test_golden_supervisor_exec_with_a_20_bit_pasid() -> None:
    assert decode_ppr(GOLDEN_SUPERVISOR_EXEC).to_request() == GOLDEN_SUPERVISOR_EXEC_REQUEST
    assert encode_ppr_rows([request_row(GOLDEN_SUPERVISOR_EXEC_REQUEST)]) == (
        GOLDEN_SUPERVISOR_EXEC
    )
    assert decode_ppr_rows(GOLDEN_SUPERVISOR_EXEC) == [request_row(GOLDEN_SUPERVISOR_EXEC_REQUEST)]


@pytest.mark.parametrize(
    ("flag", "perm"),
    [
        # FLAGS bit -> raw0 bit 48 + n; US set in each so no PRIV is added
        (0x002 | 0x040, Perm.EXEC),
        (0x004 | 0x040, Perm.READ),
        (0x020 | 0x040, Perm.WRITE),
        (0x000, Perm.PRIV),
    ],
)
def test_each_permission_flag(flag: int, perm: Perm) -> None:
    raw = struct.pack("<QQ", 1 << 60 | flag << 48, 0)
    assert decode_ppr(raw).perm == perm
    assert decode_ppr_rows(raw)[0][5] == perm


def test_gn_clear_means_no_pasid() -> None:
    # raw0 = PASID[15:0] 0x5 << 16 | TYPE 1 << 60, GN clear = 0x1000_0000_0005_0000
    raw = bytes.fromhex("00000500000000100000000000000000")
    entry = decode_ppr(raw)
    assert (entry.gn, entry.pasid) == (False, 5)
    assert entry.to_request().pasid == INVALID_IOASID
    row = decode_ppr_rows(raw)[0]
    assert (row[1], row[2]) == (INVALID_IOASID, False)


def test_rvsd_is_read_and_folded_into_no_pasid_only_when_asked() -> None:
    # raw0 = PASID 0x10 << 16 | FLAGS (RVSD 0x080 | GN 0x100 | US 0x040 | READ 0x004) << 48
    #      | last 1 << 41 | TYPE 1 << 60 = 0x11C4_0200_0010_0000
    #      -> little-endian 00 00 10 00 00 02 c4 11; raw1 = 0
    raw = bytes.fromhex("000010000002c4110000000000000000")
    assert decode_ppr(raw).rvsd
    assert decode_ppr_rows(raw)[0][1:3] == (0x10, True)
    assert decode_ppr_rows(raw, rvsd_drops_pasid=True)[0][1:3] == (INVALID_IOASID, False)


def test_address_offset_bits_are_dropped_as_the_driver_does() -> None:
    raw = struct.pack("<QQ", 1 << 60, 0x1234_5FFF)
    assert decode_ppr(raw).addr == 0x1234_5000
    assert decode_ppr_rows(raw)[0][6] == 0x1234_5000


@pytest.mark.parametrize("type_", [0, 2, 0xF])
def test_other_types_are_unhandled_events(type_: int) -> None:
    # Reserved bits set as well: the rest of such an entry is not the request layout.
    raw = GOLDEN_USER_RW + struct.pack("<QQ", type_ << 60 | 1 << 47 | 0x42, 0x7)
    for decode in (lambda: decode_ppr(raw, PPR_ENTRY_SIZE), lambda: decode_ppr_rows(raw)):
        with pytest.raises(UnhandledEvent, match="Unknown PPR request received") as info:
            decode()
        assert info.value.kind is UnhandledKind.EVENT
        assert info.value.offset == PPR_ENTRY_SIZE
    if type_ == 0:
        with pytest.raises(UnhandledEvent, match="erratum 733"):
            decode_ppr_rows(raw)


@pytest.mark.parametrize("bit", [46, 47, 48, 51, 52, 57, 58, 59])
def test_reserved_bits_are_refused_naming_bit_and_offset(bit: int) -> None:
    data = GOLDEN_USER_RW + struct.pack("<QQ", 1 << 60 | 1 << bit, 0)
    says = rf"PPR log entry at byte offset 0x10: reserved bit {bit} of word 0 must be zero"
    with pytest.raises(DecodeError, match=says):
        decode_ppr(data, PPR_ENTRY_SIZE)
    with pytest.raises(DecodeError, match=says):
        decode_ppr_rows(data)


def test_reserved_mask_is_exactly_the_unnamed_bits() -> None:
    # 47:46, FLAGS 0x001 (48), 0x008 (51), 0x010 (52), 0xE00 (59:57); word 1 has none.
    assert PPR_LOG_ENTRY.reserved == (0x0E19_C000_0000_0000, 0)


@pytest.mark.parametrize("size", [0, 8, 15])
def test_short_buffer(size: int) -> None:
    with pytest.raises(DecodeError, match=rf"needs 16 bytes, only {size} left"):
        decode_ppr(bytes(size))


def test_rows_refuse_a_partial_entry() -> None:
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: 40 bytes .*\(8 trailing bytes\)"):
        decode_ppr_rows(GOLDEN_USER_RW * 2 + bytes(8))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"addr": 0x1001}, "not 4 KiB aligned"),
        ({"needs_pasid": True}, "needs_pasid is a device property"),
        ({"private_data": (1, 2)}, "no private data"),
        ({"grpid": 0x200}, r"prg_index=512 does not fit 9 bits"),
        ({"pasid": 0x100000}, r"pasid=1048576 does not fit 20 bits"),
        ({"device": 1 << 16}, r"devid=65536 does not fit 16 bits"),
        ({"perm": Perm(16)}, "unknown bits"),
    ],
)
def test_encode_refuses_what_an_entry_cannot_say(changes: dict[str, object], says: str) -> None:
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
        encode_ppr_rows([request_row(PageRequest(**fields))])  # type: ignore[arg-type]


# Round trips and fuzzing.

perms = st.sampled_from([Perm(i) for i in range(16)])


@st.composite
def ppr_requests(draw: st.DrawFn) -> PageRequest:
    valid = draw(st.booleans())
    return PageRequest(
        device=draw(st.integers(0, 0xFFFF)),
        pasid=draw(st.integers(0, 0xFFFFF)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0x1FF)),
        last=draw(st.booleans()),
        perm=draw(perms),
        addr=draw(st.integers(0, (1 << 52) - 1)) << 12,
    )


@given(st.lists(ppr_requests(), max_size=8))
def test_request_round_trip(requests: list[PageRequest]) -> None:
    rows = [request_row(r) for r in requests]
    raw = encode_ppr_rows(rows)
    assert len(raw) == PPR_ENTRY_SIZE * len(rows)
    assert decode_ppr_rows(raw) == rows
    assert [decode_ppr(raw, i).to_request() for i in range(0, len(raw), 16)] == requests


word = st.integers(0, (1 << 64) - 1)


@given(word, word)
def test_bytes_round_trip(raw0: int, raw1: int) -> None:
    raw0 = raw0 & ~PPR_LOG_ENTRY.reserved[0] & ~(0xF << 60) | 1 << 60
    raw1 &= ~0xFFF  # the driver drops the address's offset bits
    raw = struct.pack("<QQ", raw0, raw1)
    assert encode_ppr(decode_ppr(raw)) == raw


@given(st.binary(max_size=80), st.booleans())
def test_any_bytes_decode_or_raise_decode_error(data: bytes, fold: bool) -> None:
    try:
        rows = decode_ppr_rows(data, rvsd_drops_pasid=fold)
    except DecodeError:
        rows = None
    if rows is not None:
        assert len(rows) == len(data) // PPR_ENTRY_SIZE
    for offset in range(0, len(data), PPR_ENTRY_SIZE):
        with contextlib.suppress(DecodeError):
            decode_ppr(data, offset)


@given(st.lists(st.tuples(word, word), max_size=12))
def test_rows_equal_the_layout_decoder_entry_by_entry(words: list[tuple[int, int]]) -> None:
    data = b"".join(struct.pack("<QQ", a, b) for a, b in words)
    try:
        rows = decode_ppr_rows(data)
    except DecodeError as exc:
        assert exc.offset is not None
        with pytest.raises(DecodeError) as single:
            decode_ppr(data, exc.offset)
        assert str(single.value) == str(exc)
        return
    assert rows == [request_row(decode_ppr(data, i).to_request()) for i in range(0, len(data), 16)]


@given(st.lists(st.tuples(ppr_requests(), st.booleans()), max_size=8))
def test_the_fast_row_encoder_equals_the_entry_encoder(
    pairs: list[tuple[PageRequest, bool]],
) -> None:
    rows = [request_row(r) for r, _ in pairs]
    assert encode_ppr_rows(rows) == b"".join(encode_ppr(ppr_entry_for(r)) for r, _ in pairs)
