"""The 48-byte event queue read as request rows a batch at a time: the usual batch, fast.

The usual batch is a run of page requests (reason MAPPING; PAGE_REQ, ADDRESS and GROUP_ID
set; no private data) whose PASID flags are all set or all clear. Such a batch is checked a
column at a time over the whole run, in C: the bytes (or the 2-, 4- or 8-byte words) at one
offset of every record are taken as a strided slice, and ``translate`` deletes the values
they may hold; anything left is a record this path does not take. The rows are then one
comprehension over a struct format split at field boundaries, LAST and the permissions read
from tables indexed by the flags byte. Any other batch gets None: the caller then takes the
record-checking path, which accepts what it accepted before and names the first bad record.
"""

from __future__ import annotations

import struct
from typing import Final, Literal

from ioasid_core.plugin import INVALID_IOASID, Buffer, Perm, RequestRow
from ioasid_virtio_iommu.faults import EXTENDED_SIZE, MAX_PASID, FaultFlag, FaultReason

__all__ = ["usual_rows"]

_ROW_FIELDS: Final = struct.Struct("<4xB3xIIQH22x")
"""Flags bits 7:0 (record byte 4), endpoint (8), pasid (12), address (16), group_id (24)."""
assert _ROW_FIELDS.size == EXTENDED_SIZE

_ANY_BYTE: Final = bytes(range(256))
_ZERO: Final = b"\x00"
_FLAGS_LOW: Final = bytes(v for v in _ANY_BYTE if v & 0xE0 == int(FaultFlag.PAGE_REQ))
"""Record byte 4, flags bits 7:0: PAGE_REQ set, bits 7:6 (no flag) clear; R, W, X, PRIV and
LAST may be anything."""
_F_HIGH: Final = int(FaultFlag.ADDRESS | FaultFlag.GROUP_ID) >> 8
"""Record byte 5, flags bits 15:8, as the usual batch has it: ADDRESS and GROUP_ID set,
PRIV_DATA and bits 15:12 clear, PASID as the batch's first record has it."""
_F_PASID_HIGH: Final = int(FaultFlag.PASID) >> 8
assert MAX_PASID == 0xFFFFF, "record bytes 14-15 hold the bits a PASID may not have"

# (record offset, item size, allowed values): the column of the items at that offset must hold
# only those. Items wider than a byte are only checked for zero (so their byte order is moot).
_COMMON: Final = (
    (0, 1, bytes([int(FaultReason.MAPPING)])),
    (1, 1, _ZERO),  # reserved byte 1
    (2, 2, _ZERO),  # reserved bytes 2..3
    (4, 1, _FLAGS_LOW),
    (6, 2, _ZERO),  # flags bits 31:16
    (26, 2, _ZERO),  # reserved bytes 26..27
    (28, 4, _ZERO),  # reserved bytes 28..31
    (32, 8, _ZERO),  # private_data[0]: PRIV_DATA is clear
    (40, 8, _ZERO),  # private_data[1]
)
_WITH_PASID: Final = (
    *_COMMON,
    (5, 1, bytes([_F_HIGH | _F_PASID_HIGH])),
    (14, 1, bytes(range(16))),  # pasid bits 23:16: at most 20 bits
    (15, 1, _ZERO),  # pasid bits 31:24
)
_WITHOUT_PASID: Final = (
    *_COMMON,
    (5, 1, bytes([_F_HIGH])),
    (12, 4, _ZERO),  # no PASID flag: the field must be zero
)
_FORMATS: Final[dict[int, Literal["H", "I", "Q"]]] = {2: "H", 4: "I", 8: "Q"}

_LAST: Final = tuple(flags & int(FaultFlag.LAST) != 0 for flags in _ANY_BYTE)
"""Indexed by flags bits 7:0: LAST."""
_PERMS: Final = tuple(Perm(flags & 0xF) for flags in _ANY_BYTE)
"""Indexed by flags bits 7:0: bits 3:0 are IOPF's perm bits (READ, WRITE, EXEC, PRIV)."""


def _columns_hold(data: bytes, columns: tuple[tuple[int, int, bytes], ...]) -> bool:
    """Whether every record's item at each column's offset is one of its allowed values."""
    words: dict[int, memoryview] = {}
    for offset, size, allowed in columns:
        if size == 1:
            column = data[offset::EXTENDED_SIZE]
        else:
            view = words.get(size)
            if view is None:
                view = words[size] = memoryview(data).cast(_FORMATS[size])
            column = view[offset // size :: EXTENDED_SIZE // size].tobytes()
        if column.translate(None, allowed):
            return False
    return True


def usual_rows(data: Buffer, needs_pasid: frozenset[int]) -> list[RequestRow] | None:
    """The rows of ``data`` (whole 48-byte records, a buffer counting bytes) if it is a
    usual batch, else None (then nothing is known about it: the caller checks it record by
    record)."""
    if not data:
        return []
    if data.__class__ is not bytes:
        data = bytes(data)  # one copy: slices of bytes have translate, a view's have not
    with_pasid = data[5] & _F_PASID_HIGH
    if not _columns_hold(data, _WITH_PASID if with_pasid else _WITHOUT_PASID):
        return None
    last, perms = _LAST, _PERMS
    if with_pasid:
        return [
            (
                endpoint,
                pasid,
                True,
                grpid,
                last[flags],
                perms[flags],
                addr,
                endpoint in needs_pasid,
                None,
            )
            for flags, endpoint, pasid, addr, grpid in _ROW_FIELDS.iter_unpack(data)
        ]
    invalid = INVALID_IOASID
    return [
        (
            endpoint,
            invalid,
            False,
            grpid,
            last[flags],
            perms[flags],
            addr,
            endpoint in needs_pasid,
            None,
        )
        for flags, endpoint, _pasid, addr, grpid in _ROW_FIELDS.iter_unpack(data)
    ]
