"""The PPR log decoder checks TYPE and the reserved bits a byte column at a time over the
whole log; a bad entry must still be found in every position and the first one named."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_amd_vi.ppr import PPR_LOG_ENTRY, decode_ppr, decode_ppr_rows
from ioasid_core.plugin import (
    INVALID_IOASID,
    DecodeError,
    Perm,
    RequestRow,
    UnhandledEvent,
    request_row,
)

# raw0 = DEVID 0x0210 | PASID 0x8002 << 16 | TAG (0x1A5 | last 0x200) << 32
#      | FLAGS (READ 0x004 | WRITE 0x020 | US 0x040 | GN 0x100 = 0x164) << 48 | TYPE 1 << 60
#      = 0x1164_03A5_8002_0210; raw1 = 0x7F00_DEAD_B000
GOOD = bytes.fromhex("10020280a503641100b0adde007f0000")
ROW = (0x0210, 0x8002, True, 0x1A5, True, Perm.READ | Perm.WRITE, 0x7F00_DEAD_B000, False, None)
# raw0 47:46, FLAGS bits the driver does not name (48, 52:51, 59:57).
RESERVED_BITS = [46, 47, 48, 51, 52, 57, 58, 59]


def log_with(bits: dict[int, int], types: dict[int, int] | None = None, entries: int = 8) -> bytes:
    """``entries`` good entries; entry ``i`` gets raw0 bit ``bits[i]`` set, or TYPE
    ``types[i]``."""
    out = bytearray(GOOD * entries)
    for index, bit in bits.items():
        word = struct.unpack_from("<Q", out, index * 16)[0]
        struct.pack_into("<Q", out, index * 16, word | 1 << bit)
    for index, kind in (types or {}).items():
        word = struct.unpack_from("<Q", out, index * 16)[0]
        struct.pack_into("<Q", out, index * 16, word & ~(0xF << 60) | kind << 60)
    return bytes(out)


def test_a_clean_log_decodes_to_the_hand_computed_rows() -> None:
    assert decode_ppr_rows(log_with({})) == [ROW] * 8
    # RVSD (raw0 bit 55) drops the PASID only when asked to.
    rvsd = log_with({3: 55})
    assert decode_ppr_rows(rvsd)[3] == ROW
    assert decode_ppr_rows(rvsd, rvsd_drops_pasid=True)[3] == (
        0x0210,
        INVALID_IOASID,
        False,
        *ROW[3:],
    )


@pytest.mark.parametrize("bit", RESERVED_BITS)
@pytest.mark.parametrize("index", [0, 3, 7])
def test_every_reserved_bit_is_found_at_its_entry(bit: int, index: int) -> None:
    with pytest.raises(DecodeError, match=rf"at byte offset {index * 16:#x}: reserved bit {bit} "):
        decode_ppr_rows(log_with({index: bit}))


@pytest.mark.parametrize("kind", [0, 2, 3, 15])
def test_another_type_is_an_unhandled_event_at_its_entry(kind: int) -> None:
    with pytest.raises(UnhandledEvent) as caught:
        decode_ppr_rows(log_with({}, {5: kind}))
    assert caught.value.offset == 0x50 and f"TYPE {kind}" in str(caught.value)


def test_the_first_bad_entry_is_named_whichever_byte_holds_the_fault() -> None:
    with pytest.raises(UnhandledEvent) as caught:
        decode_ppr_rows(log_with({5: 47}, {2: 2}))
    assert caught.value.offset == 0x20
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: reserved bit 59 ") as error:
        decode_ppr_rows(log_with({2: 59}, {5: 0}))
    assert not isinstance(error.value, UnhandledEvent)
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: reserved bit 59 "):
        decode_ppr_rows(log_with({2: 59, 4: 46}))


word = st.integers(0, (1 << 64) - 1)


@given(st.lists(st.tuples(word, word, st.integers(0, 7)), max_size=12), st.booleans())
def test_a_log_decodes_as_the_layout_decoder_entry_by_entry(
    entries: list[tuple[int, int, int]], fold: bool
) -> None:
    """Mostly well-formed requests (TYPE 1, reserved bits cleared), now and then a random
    entry: the rows, or the error of the first entry the layout decoder refuses."""
    words = []
    for drawn, raw1, dice in entries:
        raw0 = drawn & ~PPR_LOG_ENTRY.reserved[0] & ~(0xF << 60) | 1 << 60 if dice else drawn
        words.append((raw0, raw1))
    data = b"".join(struct.pack("<QQ", raw0, raw1) for raw0, raw1 in words)
    expected: list[RequestRow] = []
    for offset in range(0, len(data), 16):
        try:
            entry = decode_ppr(data, offset)
        except DecodeError as first:
            with pytest.raises(DecodeError) as caught:
                decode_ppr_rows(data, rvsd_drops_pasid=fold)
            assert type(caught.value) is type(first)
            assert (caught.value.offset, str(caught.value)) == (offset, str(first))
            return
        row = request_row(entry.to_request())
        if fold and entry.rvsd:  # the driver reads RVSD as no PASID
            row = (row[0], INVALID_IOASID, False, *row[3:])
        expected.append(row)
    assert decode_ppr_rows(data, rvsd_drops_pasid=fold) == expected
