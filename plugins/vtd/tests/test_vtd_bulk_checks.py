"""The PRQ decoder checks reserved bits a byte column at a time over the whole run; a set
bit must still be found in every position and named at the first bad descriptor."""

from __future__ import annotations

import struct

import pytest

from ioasid_core.plugin import DecodeError, Perm
from ioasid_vtd.descriptors import decode_descriptor_rows, decode_ring

# qw0 = type 1 | PASID present (bit 8) | RID 0x0100 << 16 | PASID 5 << 32
#     = 0x0000_0005_0100_0101
# qw1 = read (bit 0) | write (bit 1) | LPIG (bit 2) | PRG index 0x12 << 3 (0x90)
#       | address 0x7F00_0000_1000 = 0x0000_7F00_0000_1097
GOOD = bytes.fromhex("010100010500000097100000007f0000") + bytes(16)
ROW = (0x0100, 5, True, 0x12, True, Perm.READ | Perm.WRITE, 0x7F00_0000_1000, False, None)
# qw0 15:10 and 63:54 are reserved (the descriptor's layout); nothing else is.
RESERVED_BITS = [*range(10, 16), *range(54, 64)]


def run_with(bad: dict[int, int], entries: int = 8) -> bytes:
    """``entries`` good descriptors; descriptor ``i`` gets qw0 bit ``bad[i]`` set."""
    out = bytearray(GOOD * entries)
    for index, bit in bad.items():
        word = struct.unpack_from("<Q", out, index * 32)[0]
        struct.pack_into("<Q", out, index * 32, word | 1 << bit)
    return bytes(out)


def test_a_clean_run_decodes_to_the_hand_computed_rows() -> None:
    assert decode_descriptor_rows(run_with({})) == [ROW] * 8


@pytest.mark.parametrize("bit", RESERVED_BITS)
@pytest.mark.parametrize("index", [0, 3, 7])
def test_every_reserved_bit_is_found_at_its_descriptor(bit: int, index: int) -> None:
    with pytest.raises(DecodeError, match=rf"at byte offset {index * 32:#x}: reserved bit {bit} "):
        decode_descriptor_rows(run_with({index: bit}))


@pytest.mark.parametrize(("first", "second"), [(63, 10), (10, 63), (54, 15)])
def test_the_first_bad_descriptor_is_named_whichever_byte_holds_its_bit(
    first: int, second: int
) -> None:
    with pytest.raises(DecodeError, match=rf"at byte offset 0x40: reserved bit {first} "):
        decode_descriptor_rows(run_with({2: first, 5: second}))


def test_a_wrapped_ring_names_the_bad_entry_by_its_ring_offset() -> None:
    ring = run_with({1: 55}, entries=4)
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: reserved bit 55 "):
        decode_ring(ring, 96, 64)  # 96, then 0 and 32: the bad entry is in the second span
    assert len(decode_ring(ring, 64, 32)) == 3  # 64, 96, 0: entry 1 is not read


def test_private_data_is_read_for_the_descriptors_that_carry_it() -> None:
    ring = bytearray(run_with({}, entries=6))
    for index in (2, 5):  # private data present (qw0 bit 9), qw2 and qw3 set
        ring[index * 32 + 1] |= 0x02
        struct.pack_into("<QQ", ring, index * 32 + 16, 0x1111 * index, 0xFFFF_FFFF_FFFF_FFFF)
    ring[3 * 32 + 16] = 0x99  # qw2 without the present bit: not read
    rows = decode_descriptor_rows(bytes(ring))
    for index, row in enumerate(rows):
        private = (0x1111 * index, 0xFFFF_FFFF_FFFF_FFFF) if index in (2, 5) else None
        assert row == (*ROW[:8], private)
    # A wrapped ring: the second span's rows are patched at their own places.
    wrapped = decode_ring(bytes(ring), 128, 96)  # entries 4, 5, then 0, 1, 2
    assert [r.private_data for r in wrapped] == [
        None,
        (0x5555, 0xFFFF_FFFF_FFFF_FFFF),
        None,
        None,
        (0x2222, 0xFFFF_FFFF_FFFF_FFFF),
    ]
