"""Page request records packed straight from rows are ``encode_page_request``'s, byte for
byte, and a row the record cannot carry fails with its error."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import EncodeError, PageRequest, Perm, RequestRow
from ioasid_virtio_iommu.faults import encode_page_request, encode_page_request_rows

rows = st.tuples(
    st.integers(0, (1 << 33) - 1),  # endpoint: a few beyond 32 bits
    st.integers(0, (1 << 21) - 1),  # pasid: a few beyond 20 bits
    st.booleans(),
    st.integers(0, (1 << 17) - 1),  # group ID: a few beyond 16 bits
    st.booleans(),
    st.integers(0, 31).map(Perm),  # 16..31: unknown bits
    st.integers(0, (1 << 64) - 1),
    st.booleans(),
    st.one_of(st.none(), st.tuples(st.integers(0, 1 << 64), st.integers(0, 1 << 64))),
)


def _reference(row: RequestRow) -> bytes | str:
    try:
        return encode_page_request(PageRequest(*row))
    except EncodeError as exc:
        return str(exc)


@given(st.lists(rows, max_size=12))
def test_rows_pack_as_the_record_encoder_encodes(given_rows: list[RequestRow]) -> None:
    expected = [_reference(row) for row in given_rows]
    errors = [e for e in expected if isinstance(e, str)]
    if errors:
        with pytest.raises(EncodeError) as caught:
            encode_page_request_rows(given_rows)
        assert str(caught.value) == errors[0]
    else:
        packed = b"".join(e for e in expected if isinstance(e, bytes))
        assert encode_page_request_rows(given_rows) == packed


def test_a_request_by_hand() -> None:
    # Endpoint 0x101, PASID 5, group 7, read, last, address 0x3000. Flags: READ (bit 0),
    # LAST (4), PAGE_REQ (5), ADDRESS (8), PASID (9), GROUP_ID (10) = 0x731; reason MAPPING 2.
    row: RequestRow = (0x101, 5, True, 7, True, Perm.READ, 0x3000, False, None)
    want = struct.pack("<B3xIIIQH6xQQ", 2, 0x731, 0x101, 5, 0x3000, 7, 0, 0)
    assert len(want) == 48 and encode_page_request_rows([row]) == want
