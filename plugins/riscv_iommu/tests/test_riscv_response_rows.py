"""The packed ATS.PRGR encoder gives, row for row, what the command's ``BitLayout`` gives
for the same fields (an independent path), and names a field that does not fit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import EncodeError, ResponseCode, ResponseRow
from ioasid_riscv_iommu.commands import ATS_PRGR, encode_prgr_rows

PCIE_CODE = {ResponseCode.SUCCESS: 0x0, ResponseCode.INVALID: 0x1, ResponseCode.FAILURE: 0xF}

rows = st.tuples(
    st.integers(0, 0xFF_FFFF),
    st.integers(0, 0x1FF),
    st.sampled_from(list(ResponseCode)),
    st.integers(0, 0xFFFFF),
    st.booleans(),
    st.none(),
    st.booleans(),
)


def by_layout(row: ResponseRow) -> bytes:
    device, grpid, code, pasid, valid, _private, _last = row
    return ATS_PRGR.encode(
        {
            "opcode": 4,
            "func": 1,
            "pid": pasid if valid else 0,
            "pv": int(valid),
            "dsv": 1,
            "rid": device & 0xFFFF,
            "dseg": device >> 16,
            "prgi": grpid,
            "resp": PCIE_CODE[code],
            "dst_id": device & 0xFFFF,
        }
    )


@given(st.lists(rows, max_size=12))
def test_packed_commands_equal_the_layouts(batch: list[ResponseRow]) -> None:
    assert encode_prgr_rows(batch) == b"".join(by_layout(r) for r in batch)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ((-1, 0, ResponseCode.SUCCESS, 0, False, None, True), "device=-1"),
        ((1 << 24, 0, ResponseCode.SUCCESS, 0, False, None, True), "device=16777216"),
        ((1, -1, ResponseCode.SUCCESS, 0, False, None, True), "prgi=-1"),
        ((1, 0x200, ResponseCode.SUCCESS, 0, False, None, True), "prgi=512"),
        ((1, 0, ResponseCode.SUCCESS, -1, True, None, True), "pid=-1"),
        ((1, 0, ResponseCode.SUCCESS, 1 << 20, True, None, True), "pid=1048576"),
        ((1, 0, ResponseCode.SUCCESS, 0, False, (1, 2), True), "no private data"),
        ((1, 0, 7, 0, False, None, True), "7 is not a page response code"),
    ],
)
def test_a_field_that_does_not_fit_is_named(row: ResponseRow, says: str) -> None:
    with pytest.raises(EncodeError, match=says):
        encode_prgr_rows([(1, 0, ResponseCode.SUCCESS, 0, False, None, True), row])
