"""The stall records packed straight from rows are the entry path's, byte for byte, and a
row the record cannot carry fails with the entry path's error."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.bits import EncodeError
from ioasid_core.prq.types import PageRequest, Perm, RequestRow
from ioasid_smmuv3.handlers import StallPrq, encode_stall_rows

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
