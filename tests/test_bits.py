"""BitLayout: fields where the spec puts them, reserved bits enforced, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.bits import BitField, BitLayout, DecodeError, EncodeError

LAYOUT = BitLayout(
    "test record",
    16,
    [
        BitField("type", 0, 0, 7),
        BitField("flag", 0, 8, 8),
        BitField("rid", 0, 16, 31),
        BitField("pasid", 0, 32, 51),
        BitField("addr", 1, 12, 63),
    ],
)


def test_fields_land_on_the_declared_bits() -> None:
    raw = LAYOUT.encode({"type": 0x9, "flag": 1, "rid": 0xABCD, "pasid": 0x12345, "addr": 1})
    assert raw == bytes.fromhex("0901cdab452301000010000000000000")


@given(
    st.integers(0, 0xFF),
    st.integers(0, 1),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFF),
    st.integers(0, (1 << 52) - 1),
)
def test_encode_then_decode_is_the_identity(t: int, f: int, rid: int, pasid: int, a: int) -> None:
    values = {"type": t, "flag": f, "rid": rid, "pasid": pasid, "addr": a}
    assert LAYOUT.decode(LAYOUT.encode(values)) == values


@pytest.mark.parametrize(
    ("word", "bit", "says"),
    [(0, 9, "bit 9 of word 0"), (0, 63, "bit 63 of word 0"), (1, 0, "bit 0 of word 1")],
)
def test_a_set_reserved_bit_is_named(word: int, bit: int, says: str) -> None:
    raw = bytearray(16)
    raw[word * 8 : word * 8 + 8] = (1 << bit).to_bytes(8, "little")
    with pytest.raises(DecodeError, match=f"reserved {says} must be zero"):
        LAYOUT.decode(bytes(raw))


def test_reserved_ranges_are_named_by_their_span() -> None:
    raw = (0x3 << 10).to_bytes(8, "little") + bytes(8)
    with pytest.raises(DecodeError, match="bits 11:10 of word 0"):
        LAYOUT.decode(raw)


def test_short_buffer_names_the_offset_and_sizes() -> None:
    with pytest.raises(DecodeError, match=r"at byte offset 0x10: needs 16 bytes, only 4 left"):
        LAYOUT.decode(bytes(20), offset=16)


@pytest.mark.parametrize(
    ("values", "says"),
    [({"rid": 1 << 16}, "rid=65536 does not fit 16 bits"), ({"nope": 1}, "no field named")],
)
def test_encode_refuses_what_does_not_fit(values: dict[str, int], says: str) -> None:
    with pytest.raises(EncodeError, match=says):
        LAYOUT.encode(values)


@pytest.mark.parametrize(
    "fields",
    [
        [BitField("a", 0, 0, 7), BitField("b", 0, 7, 8)],
        [BitField("a", 0, 0, 7), BitField("a", 0, 8, 9)],
        [BitField("a", 2, 0, 7)],
    ],
)
def test_bad_declarations_are_refused(fields: list[BitField]) -> None:
    with pytest.raises(ValueError):
        BitLayout("bad", 16, fields)
