"""Stall records and PRI queue entries packed straight from rows are the entry path's, byte
for byte, and a row the format cannot carry fails with the entry path's error."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import EncodeError, PageRequest, Perm, RequestRow
from ioasid_smmuv3.handlers import StallPrq, encode_stall_rows
from ioasid_smmuv3.priq import encode_pri, encode_pri_rows

rows = st.tuples(
    st.integers(0, (1 << 33) - 1),  # source: a few beyond 32 bits
    st.integers(0, (1 << 21) - 1),  # pasid: a few beyond 20 bits
    st.booleans(),
    st.integers(0, (1 << 17) - 1),  # grpid: a few beyond 16 bits
    st.booleans(),
    st.integers(0, 31).map(Perm),  # 16..31: unknown bits
    st.integers(0, (1 << 64) - 1),
    st.booleans(),
    st.sampled_from([None, object()]),
)


def _reference(row: RequestRow) -> bytes | str:
    try:
        return StallPrq().encode_request(PageRequest(*row))
    except EncodeError as exc:
        return str(exc)


@given(st.lists(rows, max_size=12))
def test_rows_pack_as_the_entry_path_encodes(given_rows: list[RequestRow]) -> None:
    expected = [_reference(row) for row in given_rows]
    errors = [e for e in expected if isinstance(e, str)]
    if errors:
        with pytest.raises(EncodeError) as caught:
            encode_stall_rows(given_rows)
        assert str(caught.value) == errors[0]
    else:
        assert encode_stall_rows(given_rows) == b"".join(
            e for e in expected if isinstance(e, bytes)
        )


def test_a_read_stall_by_hand() -> None:
    # SID 0x101, SSID 5 valid, STAG 7, read, addr 0x3000. Word 0: ID 0x10 (bits 7:0), SSV
    # bit 11, SSID bits 31:12, SID bits 63:32. Word 1: STAG 15:0, STALL 31, RnW 35.
    row: RequestRow = (0x101, 5, True, 7, True, Perm.READ, 0x3000, False, None)
    w0 = 0x10 | 1 << 11 | 5 << 12 | 0x101 << 32
    w1 = 7 | 1 << 31 | 1 << 35
    assert w0 == 0x0000_0101_0000_5810 and w1 == 0x0000_0008_8000_0007
    assert encode_stall_rows([row]) == struct.pack("<4Q", w0, w1, 0x3000, 0)
    # A stop marker (no access) is a non-stalled write fault: no STALL, no RnW.
    stop: RequestRow = (0x101, 5, True, 0, True, Perm.NONE, 0, False, None)
    assert encode_stall_rows([stop]) == struct.pack("<4Q", w0, 0, 0, 0)


pri_rows = st.tuples(
    st.integers(0, (1 << 33) - 1),
    st.integers(0, (1 << 21) - 1),
    st.booleans(),
    st.integers(0, (1 << 10) - 1),  # PRG index: a few beyond 9 bits
    st.booleans(),
    st.integers(0, 31).map(Perm),
    st.one_of(st.integers(0, (1 << 52) - 1).map(lambda page: page << 12), st.integers(0, 1 << 64)),
    st.booleans(),
    st.sampled_from([None, (1, 2)]),
)


def _pri_reference(row: RequestRow) -> bytes | str:
    try:
        return encode_pri(PageRequest(*row))
    except EncodeError as exc:
        return str(exc)


@given(st.lists(pri_rows, max_size=12))
def test_pri_rows_pack_as_the_entry_encoder_encodes(given_rows: list[RequestRow]) -> None:
    expected = [_pri_reference(row) for row in given_rows]
    errors = [e for e in expected if isinstance(e, str)]
    if errors:
        with pytest.raises(EncodeError) as caught:
            encode_pri_rows(given_rows)
        assert str(caught.value) == errors[0]
    else:
        packed = b"".join(e for e in expected if isinstance(e, bytes))
        assert encode_pri_rows(given_rows) == packed


def test_a_pri_entry_by_hand() -> None:
    # SID 0x101 (31:0), SSID 5 (51:32), WRITE (61), LAST (62), SSV (63); PRG index 7 (8:0),
    # address 0x3000 in bits 63:12 as it is.
    row: RequestRow = (0x101, 5, True, 7, True, Perm.WRITE, 0x3000, False, None)
    w0 = 0x101 | 5 << 32 | 1 << 61 | 1 << 62 | 1 << 63
    assert w0 == 0xE000_0005_0000_0101
    assert encode_pri_rows([row]) == struct.pack("<QQ", w0, 0x3007)
