"""The page-request queue decoder checks reserved bits and PRIV/EXEC without PV a byte
column at a time over the whole queue; a bad record must still be found in every position
and the first one named."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import INVALID_IOASID, DecodeError, Perm, RequestRow, request_row
from ioasid_riscv_iommu.pq import PQ_RECORD, decode_pq, decode_pq_rows

# hdr = PID 5 << 12 | PV (bit 32) | DID 0x01_0100 << 40 = 0x0101_0001_0000_5000
# payload = R (bit 0) | W (bit 1) | L (bit 2) | PRGI 0x12 << 3 (0x90)
#         | address 0x7F00_0000_1000 = 0x0000_7F00_0000_1097
GOOD = bytes.fromhex("005000000100010197100000007f0000")
ROW = (0x01_0100, 5, True, 0x12, True, Perm.READ | Perm.WRITE, 0x7F00_0000_1000, False, None)
# hdr 11:0 and 39:35 are reserved.
RESERVED_BITS = [*range(12), *range(35, 40)]


def queue_with(hdr_xor: dict[int, int], entries: int = 8) -> bytes:
    """``entries`` good records; record ``i``'s header is XORed with ``hdr_xor[i]``."""
    out = bytearray(GOOD * entries)
    for index, xor in hdr_xor.items():
        word = struct.unpack_from("<Q", out, index * 16)[0]
        struct.pack_into("<Q", out, index * 16, word ^ xor)
    return bytes(out)


def test_a_clean_queue_decodes_to_the_hand_computed_rows() -> None:
    assert decode_pq_rows(queue_with({})) == [ROW] * 8
    # PV clear (and PRIV, EXEC clear, as the IOMMU writes): the PID is don't care.
    assert decode_pq_rows(queue_with({2: 1 << 32}))[2] == (
        0x01_0100,
        INVALID_IOASID,
        False,
        *ROW[3:],
    )
    # PRIV (bit 33) and EXEC (bit 34) with PV.
    assert decode_pq_rows(queue_with({1: 3 << 33}))[1][5] == Perm(0xF)


@pytest.mark.parametrize("bit", RESERVED_BITS)
@pytest.mark.parametrize("index", [0, 3, 7])
def test_every_reserved_bit_is_found_at_its_record(bit: int, index: int) -> None:
    with pytest.raises(DecodeError, match=rf"at byte offset {index * 16:#x}: reserved bit {bit} "):
        decode_pq_rows(queue_with({index: 1 << bit}))


@pytest.mark.parametrize("flag", [1 << 33, 1 << 34, 3 << 33])
def test_priv_or_exec_without_pv_is_found_at_its_record(flag: int) -> None:
    with pytest.raises(DecodeError, match=r"at byte offset 0x50: PRIV or EXEC set without PV"):
        decode_pq_rows(queue_with({5: 1 << 32 | flag}))


def test_the_first_bad_record_is_named_whichever_byte_holds_the_fault() -> None:
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: reserved bit 0 "):
        decode_pq_rows(queue_with({2: 1, 5: 1 << 39}))
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: reserved bit 39 "):
        decode_pq_rows(queue_with({2: 1 << 39, 5: 1 << 8}))
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: PRIV or EXEC set without PV"):
        decode_pq_rows(queue_with({2: 1 << 32 | 1 << 33, 5: 1 << 11}))


word = st.integers(0, (1 << 64) - 1)


@given(st.lists(st.tuples(word, word, st.integers(0, 7)), max_size=12))
def test_a_queue_decodes_as_the_layout_decoder_record_by_record(
    records: list[tuple[int, int, int]],
) -> None:
    """Mostly well-formed records (reserved bits cleared, PRIV/EXEC only with PV), now and
    then a random one: the rows, or the error of the first record the layout decoder
    refuses."""
    words = []
    for drawn, payload, dice in records:
        hdr = drawn
        if dice:
            hdr &= ~PQ_RECORD.reserved[0]
            if not hdr >> 32 & 1:
                hdr &= ~(3 << 33)
        words.append((hdr, payload))
    data = b"".join(struct.pack("<QQ", hdr, payload) for hdr, payload in words)
    expected: list[RequestRow] = []
    for offset in range(0, len(data), 16):
        try:
            expected.append(request_row(decode_pq(data, offset)))
        except DecodeError as first:
            with pytest.raises(DecodeError) as caught:
                decode_pq_rows(data)
            assert (caught.value.offset, str(caught.value)) == (offset, str(first))
            return
    assert decode_pq_rows(data) == expected
