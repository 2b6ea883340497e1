"""The usual batch of 48-byte events is checked a column at a time and read in one pass; any
other batch goes record by record. Either way a run decodes (or is refused) exactly as the
plain decoder does it record by record, naming the first bad record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import (
    INVALID_IOASID,
    DecodeError,
    Perm,
    RequestRow,
    UnhandledEvent,
    request_row,
)
from ioasid_virtio_iommu.event_rows import usual_rows
from ioasid_virtio_iommu.faults import UnrecoverableFault, decode_extended
from ioasid_virtio_iommu.handler import VirtioPrq

# reason MAPPING (2); reserved 1..3; flags = R 0x1 | W 0x2 | LAST 0x10 | PAGE_REQ 0x20
# | ADDRESS 0x100 | PASID 0x200 | GROUP_ID 0x400 = 0x733; endpoint 2; pasid 0x1234;
# address 0x7F00_0000_1000; group_id 3; reserved 26..31; private_data[0], [1] zero.
GOOD = bytes.fromhex("0200000033070000020000003412000000100000007f00000300000000000000") + bytes(16)
ROW = (2, 0x1234, True, 3, True, Perm.READ | Perm.WRITE, 0x7F00_0000_1000, False, None)
# The same without PASID: flags 0x533, pasid field zero.
NO_PASID = GOOD[:5] + b"\x05" + GOOD[6:12] + bytes(4) + GOOD[16:]
NO_PASID_ROW = (2, INVALID_IOASID, False, *ROW[3:])


def batch(patches: dict[int, dict[int, int]], records: int = 20, base: bytes = GOOD) -> bytes:
    """``records`` copies of ``base``; record ``i``'s byte ``b`` set to ``patches[i][b]``."""
    out = bytearray(base * records)
    for index, values in patches.items():
        for byte, value in values.items():
            out[index * 48 + byte] = value
    return bytes(out)


def test_the_hand_written_record_is_48_bytes() -> None:
    assert len(GOOD) == len(NO_PASID) == 48


def test_a_usual_batch_reads_as_the_hand_computed_rows() -> None:
    assert usual_rows(GOOD * 3, frozenset()) == [ROW] * 3
    assert usual_rows(memoryview(GOOD * 2), frozenset({2})) == [(*ROW[:7], True, None)] * 2
    assert usual_rows(NO_PASID * 2, frozenset()) == [NO_PASID_ROW] * 2
    assert usual_rows(b"", frozenset()) == []
    # EXEC, PRIV (flags bits 2, 3) and LAST clear, group 0x1FF, the widest PASID.
    other = batch({1: {4: 0x2C, 14: 0x0F, 13: 0xFF, 12: 0xFF, 24: 0xFF, 25: 0x01}}, 2)
    assert usual_rows(other, frozenset()) == [
        ROW,
        (2, 0xFFFFF, True, 0x1FF, False, Perm.EXEC | Perm.PRIV, *ROW[6:]),
    ]


# (byte, value) that takes a batch off the usual path, whatever record holds it.
UNUSUAL = [
    (0, 1),  # reason DOMAIN
    (1, 1),  # reserved byte 1
    (2, 1),  # reserved bytes 2..3
    (3, 0x80),
    (4, 0x73),  # flags bit 6
    (4, 0xB3),  # flags bit 7
    (4, 0x13),  # PAGE_REQ clear (a fault)
    (5, 0x0F),  # PRIV_DATA
    (5, 0x17),  # flags bit 12
    (5, 0x87),  # flags bit 15
    (5, 0x06),  # ADDRESS clear
    (5, 0x03),  # GROUP_ID clear
    (5, 0x05),  # PASID clear in one record only (legal, but not a usual batch)
    (6, 1),  # flags bits 23:16
    (7, 0x80),  # flags bit 31
    (14, 0x10),  # PASID bit 20
    (15, 1),  # PASID bits 31:24
    *((byte, 1) for byte in range(26, 32)),  # reserved bytes 26..31
    *((byte, 0x80) for byte in range(32, 48)),  # private data without PRIV_DATA
]


@pytest.mark.parametrize(("byte", "value"), UNUSUAL)
@pytest.mark.parametrize("index", [0, 9, 19])
def test_each_column_keeps_an_unusual_batch_off_the_fast_path(
    byte: int, value: int, index: int
) -> None:
    data = batch({index: {byte: value}})
    assert usual_rows(data, frozenset()) is None
    assert outcome(data) == reference(data)  # the checked path decides


@pytest.mark.parametrize("byte", [12, 13, 14, 15])
def test_a_pasid_without_the_pasid_flag_is_not_usual(byte: int) -> None:
    data = batch({13: {byte: 1}}, base=NO_PASID)
    assert usual_rows(data, frozenset()) is None
    with pytest.raises(DecodeError, match="flag PASID is clear") as info:
        VirtioPrq().decode_rows(data)
    assert info.value.offset == 13 * 48 + 12


def test_the_first_bad_record_is_named() -> None:
    data = batch({11: {30: 1}, 13: {2: 1}})
    with pytest.raises(DecodeError, match=r"reserved bytes 26\.\.31") as info:
        VirtioPrq().decode_rows(data)
    assert info.value.offset == 11 * 48 + 26


def reference(data: bytes, needs: frozenset[int] = frozenset()) -> object:
    """The plain decoder record by record: the rows, or what the first refused record
    raises (an unrecoverable fault is an unhandled event)."""
    rows: list[RequestRow] = []
    for offset in range(0, len(data), 48):
        endpoint = int.from_bytes(data[offset + 8 : offset + 12], "little")
        try:
            event = decode_extended(data, offset, needs_pasid=endpoint in needs)
        except DecodeError as error:
            return ("DecodeError", str(error), error.offset)
        if isinstance(event, UnrecoverableFault):
            return ("UnhandledEvent", offset)
        rows.append(request_row(event))
    return rows


def outcome(data: bytes, needs: frozenset[int] = frozenset()) -> object:
    try:
        return VirtioPrq(needs_pasid=needs).decode_rows(data)
    except DecodeError as error:
        return ("DecodeError", str(error), error.offset)
    except UnhandledEvent as event:
        return ("UnhandledEvent", event.offset)


record_fields = st.tuples(
    st.integers(0, 7),  # endpoint
    st.integers(0, 0xFFFFF),  # pasid
    st.integers(0, 0x1F),  # flags bits 4:0 (R, W, X, PRIV, LAST)
    st.integers(0, 0xFFFF),  # group_id
    st.integers(0, (1 << 64) - 1),  # address
)


@given(
    # Over 16 records are checked by columns first, fewer record by record: both sizes.
    st.lists(record_fields, max_size=4) | st.lists(record_fields, min_size=17, max_size=24),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 23), st.integers(0, 48 * 8 - 1)), max_size=3),
    st.frozensets(st.integers(0, 7)),
)
def test_a_run_decodes_as_the_plain_decoder_record_by_record(
    fields: list[tuple[int, int, int, int, int]],
    with_pasid: bool,
    flips: list[tuple[int, int]],
    needs: frozenset[int],
) -> None:
    """Usual records (all with a PASID, or all without), then a few bits flipped anywhere:
    the same rows, or the same first error, as the plain decoder."""
    base = GOOD if with_pasid else NO_PASID
    out = bytearray()
    for endpoint, pasid, low, grpid, addr in fields:
        record = bytearray(base)
        record[4] = 0x20 | low
        record[8:12] = endpoint.to_bytes(4, "little")
        if with_pasid:
            record[12:16] = pasid.to_bytes(4, "little")
        record[16:24] = addr.to_bytes(8, "little")
        record[24:26] = grpid.to_bytes(2, "little")
        out += record
    for index, bit in flips:
        if index < len(fields):
            out[index * 48 + bit // 8] ^= 1 << bit % 8
    data = bytes(out)
    expected = reference(data, needs)
    assert outcome(data, needs) == expected
    if not flips and data:
        assert usual_rows(data, needs) == expected
