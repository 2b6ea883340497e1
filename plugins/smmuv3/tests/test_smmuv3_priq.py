"""The PRI queue entry codec: golden vectors, round trips, malformed entries."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import INVALID_IOASID, DecodeError, EncodeError, PageRequest, Perm
from ioasid_smmuv3.priq import PRIQ_ENTRY_SIZE, decode_pri, decode_pri_batch, encode_pri

# dw0 = SID 0x1234 | SSID 0xFABCD << 32 | READ 1 << 60 | WRITE 1 << 61 | LAST 1 << 62 | SSV 1 << 63
#     = 0x0000_0000_0000_1234 | 0x000F_ABCD_0000_0000 | 0xF000_0000_0000_0000
#     = 0xF00F_ABCD_0000_1234            -> little-endian 34 12 00 00 cd ab 0f f0
# dw1 = PRG index 0x1A5 | page address 0x7F00_DEAD_B000 (bits 63:12 in place)
#     = 0x0000_7F00_DEAD_B1A5            -> little-endian a5 b1 ad de 00 7f 00 00
GOLDEN_RW = bytes.fromhex("34120000cdab0ff0a5b1adde007f0000")
GOLDEN_RW_REQUEST = PageRequest(
    device=0x1234,
    pasid=0xFABCD,
    pasid_valid=True,
    grpid=0x1A5,
    last=True,
    perm=Perm.READ | Perm.WRITE,
    addr=0x7F00DEADB000,
)

# dw0 = SID 0xFFFF_FFFF | PRIV 1 << 58 | EXEC 1 << 59 | READ 1 << 60, SSV and LAST clear
#     = 0x0400_0000_0000_0000 + 0x0800_0000_0000_0000 + 0x1000_0000_0000_0000 + 0xFFFF_FFFF
#     = 0x1C00_0000_FFFF_FFFF            -> ff ff ff ff 00 00 00 1c
# dw1 = PRG index 0 | address 0xFFFF_FFFF_FFFF_F000 -> 00 f0 ff ff ff ff ff ff
GOLDEN_PRIV_EXEC = bytes.fromhex("ffffffff0000001c00f0ffffffffffff")
GOLDEN_PRIV_EXEC_REQUEST = PageRequest(
    device=0xFFFFFFFF,
    pasid=INVALID_IOASID,
    pasid_valid=False,
    grpid=0,
    last=False,
    perm=Perm.READ | Perm.EXEC | Perm.PRIV,
    addr=0xFFFFFFFFFFFFF000,
)


@pytest.mark.parametrize(
    ("raw", "request_"),
    [(GOLDEN_RW, GOLDEN_RW_REQUEST), (GOLDEN_PRIV_EXEC, GOLDEN_PRIV_EXEC_REQUEST)],
)
def test_golden_entries(raw: bytes, request_: PageRequest) -> None:
    assert decode_pri(raw) == request_
    assert encode_pri(request_) == raw
    assert decode_pri_batch(raw) == [request_]


@pytest.mark.parametrize(
    ("bit", "perm"),
    [(58, Perm.PRIV), (59, Perm.EXEC), (60, Perm.READ), (61, Perm.WRITE)],
)
def test_each_permission_bit(bit: int, perm: Perm) -> None:
    raw = struct.pack("<QQ", 1 << bit, 0)
    assert decode_pri(raw).perm == perm
    assert decode_pri_batch(raw)[0].perm == perm


def test_stop_marker_is_last_without_read_or_write() -> None:
    # dw0 = SID 0x10 | LAST 1 << 62 = 0x4000_0000_0000_0010
    request = decode_pri(bytes.fromhex("10000000000000400000000000000000"))
    assert request.last and request.perm == Perm.NONE
    assert request.stop_marker


def test_ssid_is_ignored_without_ssv() -> None:
    # dw0 = SSID 0x5 << 32 = 0x0000_0005_0000_0000, SSV clear: the SSID is UNKNOWN, not a PASID
    request = decode_pri(bytes.fromhex("00000000050000000000000000000000"))
    assert (request.pasid, request.pasid_valid) == (INVALID_IOASID, False)


def test_decode_at_an_offset() -> None:
    data = bytes(PRIQ_ENTRY_SIZE) + GOLDEN_RW
    assert decode_pri(data, PRIQ_ENTRY_SIZE) == GOLDEN_RW_REQUEST


# Malformed entries.


@pytest.mark.parametrize(
    ("word", "bit"),
    [(0, 52), (0, 55), (0, 57), (1, 9), (1, 10), (1, 11)],
)
def test_reserved_bits_are_refused_naming_bit_and_offset(word: int, bit: int) -> None:
    words = [0xF00FABCD00001234, 0x00007F00DEADB1A5]
    words[word] |= 1 << bit
    data = bytes(PRIQ_ENTRY_SIZE) + struct.pack("<QQ", *words)
    says = rf"PRI queue entry at byte offset 0x10: reserved bit {bit} of word {word} must be zero"
    with pytest.raises(DecodeError, match=says):
        decode_pri(data, PRIQ_ENTRY_SIZE)
    with pytest.raises(DecodeError, match=says):
        decode_pri_batch(data)


def test_a_reserved_range_is_named_by_its_span() -> None:
    with pytest.raises(DecodeError, match="reserved bits 57:52 of word 0"):
        decode_pri(struct.pack("<QQ", 0x3F << 52, 0))


@pytest.mark.parametrize("size", [0, 8, 15])
def test_short_buffer(size: int) -> None:
    with pytest.raises(DecodeError, match=rf"needs 16 bytes, only {size} left"):
        decode_pri(bytes(size))


def test_batch_refuses_a_partial_entry() -> None:
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: 40 bytes .* \(8 trailing bytes\)"):
        decode_pri_batch(GOLDEN_RW * 2 + bytes(8))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"addr": 0x1001}, "not 4 KiB aligned"),
        ({"needs_pasid": True}, "needs_pasid"),
        ({"private_data": (1, 2)}, "private data"),
        ({"grpid": 0x200}, r"prg_index=512 does not fit 9 bits"),
        ({"pasid": 0x100000}, r"ssid=1048576 does not fit 20 bits"),
        ({"device": 1 << 32}, r"sid=4294967296 does not fit 32 bits"),
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
        encode_pri(PageRequest(**fields))  # type: ignore[arg-type]


# Round trips.

perms = st.sampled_from([Perm(i) for i in range(16)])


@st.composite
def pri_requests(draw: st.DrawFn) -> PageRequest:
    valid = draw(st.booleans())
    return PageRequest(
        device=draw(st.integers(0, 0xFFFFFFFF)),
        pasid=draw(st.integers(0, 0xFFFFF)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0x1FF)),
        last=draw(st.booleans()),
        perm=draw(perms),
        addr=draw(st.integers(0, (1 << 52) - 1)) << 12,
    )


@given(pri_requests())
def test_request_round_trip(request_: PageRequest) -> None:
    raw = encode_pri(request_)
    assert len(raw) == PRIQ_ENTRY_SIZE
    assert decode_pri(raw) == request_


@given(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1))
def test_bytes_round_trip(dw0: int, dw1: int) -> None:
    dw0 &= ~(0x3F << 52)  # reserved 57:52
    dw1 &= ~(0x7 << 9)  # reserved 11:9
    if not dw0 >> 63:
        dw0 &= ~(0xFFFFF << 32)  # SSID without SSV is not kept
    raw = struct.pack("<QQ", dw0, dw1)
    assert encode_pri(decode_pri(raw)) == raw
