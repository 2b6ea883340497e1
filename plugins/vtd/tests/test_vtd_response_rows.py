"""The packed page group response encoder gives, row for row, what the descriptor's
``BitLayout`` gives for the same fields (an independent path), and names a field that does
not fit, at either end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import INVALID_IOASID, EncodeError, ResponseCode, ResponseRow
from ioasid_vtd.descriptors import PAGE_GROUP_RESPONSE
from ioasid_vtd.prq import VtdPrq

VTD_CODE = {ResponseCode.SUCCESS: 0x0, ResponseCode.INVALID: 0x1, ResponseCode.FAILURE: 0xF}
U64 = st.integers(0, (1 << 64) - 1)

rows = st.tuples(
    st.integers(0, 0xFFFF),
    st.integers(0, 0x1FF),
    st.sampled_from(list(ResponseCode)),
    st.integers(0, 0xFFFFF),
    st.booleans(),
    st.none() | st.tuples(U64, U64),
    st.booleans(),
)


def by_layout(row: ResponseRow) -> bytes:
    device, grpid, code, pasid, valid, private, last = row
    return PAGE_GROUP_RESPONSE.encode(
        {
            "type": 0x9,
            "pasid_present": int(valid),
            "priv_data_present": int(private is not None),
            "code": VTD_CODE[code],
            "rid": device,
            "pasid": pasid if valid else 0,
            "lpig": int(last),
            "prg_index": grpid,
            "priv_data_0": private[0] if private else 0,
            "priv_data_1": private[1] if private else 0,
        }
    )


@given(st.lists(rows, max_size=12))
def test_packed_responses_equal_the_layouts(batch: list[ResponseRow]) -> None:
    assert VtdPrq().encode_response_rows(batch) == b"".join(by_layout(r) for r in batch)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ((-1, 0, ResponseCode.SUCCESS, 0, False, None, True), "requester ID -1"),
        ((0x10000, 0, ResponseCode.SUCCESS, 0, False, None, True), "requester ID 65536"),
        ((1, -1, ResponseCode.SUCCESS, 0, False, None, True), "group index -1"),
        ((1, 0x200, ResponseCode.SUCCESS, 0, False, None, True), "group index 512"),
        ((1, 0, ResponseCode.SUCCESS, -1, True, None, True), "PASID -1"),
        ((1, 0, ResponseCode.SUCCESS, 1 << 20, True, None, True), "PASID 1048576"),
        ((1, 0, ResponseCode.SUCCESS, 0, False, (-1, 0), True), r"private data\[0\] -1"),
        ((1, 0, ResponseCode.SUCCESS, 0, False, (0, 1 << 64), True), r"private data\[1\]"),
        ((1, 0, 7, 0, False, None, True), "7 is not a page response code"),
    ],
)
def test_a_field_that_does_not_fit_is_named(row: ResponseRow, says: str) -> None:
    with pytest.raises(EncodeError, match=says):
        VtdPrq().encode_response_rows([(1, 0, ResponseCode.SUCCESS, 0, False, None, True), row])


def test_no_pasid_is_written_without_the_present_bit() -> None:
    row = (1, 2, ResponseCode.INVALID, INVALID_IOASID, False, None, True)
    assert VtdPrq().encode_response_rows([row]) == by_layout(row)
