"""The stall decoder checks the event ID, STALL and S2 a byte column at a time over the
whole run; a record that is not a stage-1 stall must still be found in every position and
the first one named, with its kind."""

from __future__ import annotations

import struct

import pytest

from ioasid_core.plugin import INVALID_IOASID, Perm, UnhandledEvent, UnhandledKind
from ioasid_smmuv3.handlers import decode_stall_rows

# dw0 = ID 0x10 (F_TRANSLATION) | SSV (bit 11) | SSID 5 << 12 | SID 0x100 << 32
#     = 0x0000_0100_0000_5810
# dw1 = STAG 0x12 | STALL (bit 31) | RnW (bit 35) = 0x0000_0008_8000_0012
# dw2 = input address 0x7F00_0000_1000; dw3 = 0
GOOD = bytes.fromhex("1058000000010000120000800800000000100000007f0000") + bytes(8)
ROW = (0x100, 5, True, 0x12, True, Perm.READ, 0x7F00_0000_1000, False, None)


def run_with(edits: dict[int, tuple[int, int]], records: int = 8) -> bytes:
    """``records`` good stalls; record ``i`` has word ``edits[i][0]`` XORed with
    ``edits[i][1]``."""
    out = bytearray(GOOD * records)
    for index, (word, xor) in edits.items():
        at = index * 32 + word * 8
        struct.pack_into("<Q", out, at, struct.unpack_from("<Q", out, at)[0] ^ xor)
    return bytes(out)


def test_a_clean_run_decodes_to_the_hand_computed_rows() -> None:
    assert decode_stall_rows(run_with({})) == [ROW] * 8
    # IDs 0x11..0x13 are handled too; SSV clear drops the SSID; PnU (33) and InD (34).
    rows = decode_stall_rows(run_with({1: (0, 0x10 ^ 0x13), 2: (0, 1 << 11), 3: (1, 3 << 33)}))
    assert rows[1] == ROW
    assert rows[2] == (0x100, INVALID_IOASID, False, *ROW[3:])
    assert rows[3][5] == Perm.READ | Perm.EXEC | Perm.PRIV


@pytest.mark.parametrize(
    ("edit", "kind", "words"),
    [
        ((0, 0x10 ^ 0x04), UnhandledKind.EVENT, "not a fault the SVA path handles"),
        ((0, 0x10 ^ 0x14), UnhandledKind.EVENT, "not a fault the SVA path handles"),
        ((1, 1 << 31), UnhandledKind.FAULT, "did not stall"),
        ((1, 1 << 39), UnhandledKind.REFUSED_STALL, "STAG 0x12 is never resumed"),
        ((1, 1 << 39 | 1 << 31), UnhandledKind.FAULT, "stage-2"),
    ],
)
@pytest.mark.parametrize("index", [0, 3, 7])
def test_every_kind_of_other_record_is_found_at_its_offset(
    edit: tuple[int, int], kind: UnhandledKind, words: str, index: int
) -> None:
    with pytest.raises(UnhandledEvent) as caught:
        decode_stall_rows(run_with({index: edit}))
    assert (caught.value.offset, caught.value.kind) == (index * 32, kind)
    assert words in str(caught.value)


def test_the_first_other_record_is_named_whichever_byte_holds_the_fault() -> None:
    with pytest.raises(UnhandledEvent) as caught:
        decode_stall_rows(run_with({2: (1, 1 << 39), 5: (0, 0x10 ^ 0x04)}))
    assert (caught.value.offset, caught.value.kind) == (0x40, UnhandledKind.REFUSED_STALL)
    with pytest.raises(UnhandledEvent) as caught:
        decode_stall_rows(run_with({2: (0, 0x10 ^ 0x04), 5: (1, 1 << 31)}))
    assert (caught.value.offset, caught.value.kind) == (0x40, UnhandledKind.EVENT)
