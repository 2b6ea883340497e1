"""The packed CMD_RESUME encoder gives, row for row, what the command's ``BitLayout`` gives
for the same fields (an independent path): SUCCESS retries, INVALID and FAILURE abort, any
other code terminates; a SID or STAG that does not fit is named, at either end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import EncodeError, ResponseCode, ResponseRow
from ioasid_smmuv3.commands import RESUME_LAYOUT
from ioasid_smmuv3.handlers import encode_resume_rows

RESP = {ResponseCode.SUCCESS: 1, ResponseCode.INVALID: 2, ResponseCode.FAILURE: 2}  # RETRY, ABORT

rows = st.tuples(
    st.integers(0, 0xFFFF_FFFF),
    st.integers(0, 0xFFFF),
    st.sampled_from([*ResponseCode, 7]),
    st.integers(0, 0xFFFFF),
    st.booleans(),
    st.none(),
    st.booleans(),
)


def by_layout(row: ResponseRow) -> bytes:
    sid, stag, code, *_ = row
    resp = RESP.get(code, 0)  # TERM
    return RESUME_LAYOUT.encode({"opcode": 0x44, "resp": resp, "sid": sid, "stag": stag})


@given(st.lists(rows, max_size=12))
def test_packed_commands_equal_the_layouts(batch: list[ResponseRow]) -> None:
    assert encode_resume_rows(batch) == b"".join(by_layout(r) for r in batch)


@pytest.mark.parametrize(
    ("sid", "stag", "says"),
    [
        (-1, 0, "sid=-0x1"),
        (1 << 32, 0, "sid=0x100000000"),
        (1, -1, "stag=-0x1"),
        (1, 1 << 16, "stag=0x10000"),
    ],
)
def test_a_field_that_does_not_fit_is_named(sid: int, stag: int, says: str) -> None:
    with pytest.raises(EncodeError, match=says):
        encode_resume_rows([(sid, stag, ResponseCode.SUCCESS, 0, False, None, True)])
