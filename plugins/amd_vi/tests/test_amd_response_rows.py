"""The packed COMPLETE_PPR_REQUEST encoder gives, row for row, what the command's
``BitLayout`` gives for the same fields (an independent path), and names a field that does
not fit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_amd_vi.commands import COMPLETE_PPR_REQUEST, encode_complete_ppr_rows
from ioasid_core.plugin import EncodeError, ResponseCode, ResponseRow

PCIE_CODE = {ResponseCode.SUCCESS: 0x0, ResponseCode.INVALID: 0x1, ResponseCode.FAILURE: 0xF}

rows = st.tuples(
    st.integers(0, 0xFFFF),
    st.integers(0, 0x1FF),
    st.sampled_from(list(ResponseCode)),
    st.integers(0, 0xFFFFF),
    st.booleans(),
    st.none(),
    st.booleans(),
)


def by_layout(row: ResponseRow) -> bytes:
    device, grpid, code, pasid, valid, _private, _last = row
    return COMPLETE_PPR_REQUEST.encode(
        {
            "devid": device,
            "pasid": pasid if valid else 0,
            "opcode": 0x7,
            "gn": int(valid),
            "prg_index": grpid,
            "status": PCIE_CODE[code],
        }
    )


@given(st.lists(rows, max_size=12))
def test_packed_commands_equal_the_layouts(batch: list[ResponseRow]) -> None:
    assert encode_complete_ppr_rows(batch) == b"".join(by_layout(r) for r in batch)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ((-1, 0, ResponseCode.SUCCESS, 0, False, None, True), "devid=-1"),
        ((1 << 16, 0, ResponseCode.SUCCESS, 0, False, None, True), "devid=65536"),
        ((1, -1, ResponseCode.SUCCESS, 0, False, None, True), "prg_index=-1"),
        ((1, 0x200, ResponseCode.SUCCESS, 0, False, None, True), "prg_index=512"),
        ((1, 0, ResponseCode.SUCCESS, -1, True, None, True), "pasid=-1"),
        ((1, 0, ResponseCode.SUCCESS, 1 << 20, True, None, True), "pasid=1048576"),
        ((1, 0, ResponseCode.SUCCESS, 0, False, (1, 2), True), "no private data"),
        ((1, 0, 7, 0, False, None, True), "7 is not a page response code"),
    ],
)
def test_a_field_that_does_not_fit_is_named(row: ResponseRow, says: str) -> None:
    with pytest.raises(EncodeError, match=says):
        encode_complete_ppr_rows([(1, 0, ResponseCode.SUCCESS, 0, False, None, True), row])
