"""The RISC-V IOMMU page-request queue record (16 bytes) <-> request rows.

Layout (vendors-amd-riscv.md §3.4: Linux ``iommu-bits.h``, the reference model's
``page_rec_t``), two little-endian 64-bit words:

========  =======  =========================================================
word      bits     field
========  =======  =========================================================
hdr       31:12    PID -> ``PageRequest.pasid`` (when PV)
hdr       32       PV: the PID is valid -> ``PageRequest.pasid_valid``
hdr       33       PRIV
hdr       34       EXEC
hdr       63:40    DID (24-bit device ID) -> ``PageRequest.device``
payload   0        R
payload   1        W
payload   2        L: last request of the group
payload   11:3     PRGI -> ``PageRequest.grpid``
payload   63:12    page address
========  =======  =========================================================

Reserved, checked on decode: hdr bits 11:0 and 39:35 (the reference model writes them
zero). The payload is the PCIe page request's own, as in VT-d qw1 and SMMUv3 PRIQ dw1.

The IOMMU zeroes PRIV and EXEC when PV is 0 before writing the record, so a record with
either set and PV clear is refused; encoding zeroes them, as the hardware does. The PID of
a record without PV is whatever the message carried (the model copies it): don't care,
decoded as ``INVALID_IOASID``; encoding a request without a PASID writes PID 0.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, NoReturn

from ioasid_core.plugin import (
    INVALID_IOASID,
    BitField,
    BitLayout,
    Buffer,
    DecodeError,
    EncodeError,
    PageRequest,
    Perm,
    RequestRow,
    byte_view,
    columns_allowed,
)

__all__ = [
    "PQ_RECORD",
    "PQ_RECORD_SIZE",
    "decode_pq",
    "decode_pq_rows",
    "encode_pq_rows",
]

PQ_RECORD: Final = BitLayout(
    "RISC-V IOMMU page-request record",
    16,
    [
        BitField("pid", 0, 12, 31),
        BitField("pv", 0, 32, 32),
        BitField("priv", 0, 33, 33),
        BitField("exec", 0, 34, 34),
        BitField("did", 0, 40, 63),
        BitField("r", 1, 0, 0),
        BitField("w", 1, 1, 1),
        BitField("l", 1, 2, 2),
        BitField("prgi", 1, 3, 11),
        BitField("addr", 1, 12, 63),
    ],
)
PQ_RECORD_SIZE: Final = PQ_RECORD.size

_NAME: Final = PQ_RECORD.name
_WORDS: Final = struct.Struct("<QQ")
_RESERVED0 = PQ_RECORD.reserved[0]
assert PQ_RECORD.reserved[1] == 0  # the payload is the PCIe message's, every bit named
_PRIV_EXEC: Final = 3 << 33
_PV: Final = 1 << 32
_PAGE_MASK: Final = 0xFFF
_ADDR_MASK: Final = ~_PAGE_MASK & 0xFFFFFFFFFFFFFFFF
# hdr bits 34:32 (EXEC PRIV PV): PRIV or EXEC without PV is not what the IOMMU writes.
_FLAGS_OK: Final = tuple(bool(i & 1) or not i & 6 for i in range(8))


def _perm(r: int, w: int, exec_: int, priv: int) -> Perm:
    perm = Perm.NONE
    if r:
        perm |= Perm.READ
    if w:
        perm |= Perm.WRITE
    if exec_:
        perm |= Perm.EXEC
    if priv:
        perm |= Perm.PRIV
    return perm


# hdr bits 34:33 (EXEC PRIV) << 2 | payload bits 1:0 (W R) -> Perm.
_PERMS: Final = tuple(_perm(i & 1, i >> 1 & 1, i >> 3 & 1, i >> 2 & 1) for i in range(16))


def _priv_without_pv(offset: int) -> DecodeError:
    return DecodeError(
        _NAME,
        "PRIV or EXEC set without PV: the IOMMU zeroes both when the request has no PASID",
        offset=offset,
    )


def decode_pq(data: Buffer, offset: int = 0) -> PageRequest:
    """The page request in the record at ``offset``; ``DecodeError`` names what is wrong."""
    f = PQ_RECORD.decode(data, offset)
    pv = f["pv"] == 1
    if not pv and (f["priv"] or f["exec"]):
        raise _priv_without_pv(offset)
    return PageRequest(
        device=f["did"],
        pasid=f["pid"] if pv else INVALID_IOASID,
        pasid_valid=pv,
        grpid=f["prgi"],
        last=f["l"] == 1,
        perm=_perm(f["r"], f["w"], f["exec"], f["priv"]),
        addr=f["addr"] << 12,
    )


# The record split so that the decoder works on small ints: hdr bits 31:0 (u32: PID in
# 31:12 above the reserved 11:0), hdr bits 63:32 (u32: PV 0, PRIV 1, EXEC 2, DID 31:8),
# then the payload (u64).
_FIELDS: Final = struct.Struct("<IIQ")
_COLUMNS: Final = tuple(
    (
        index,
        bytes(
            v
            for v in range(256)
            if not v & mask and (index != 4 or _FLAGS_OK[v & 7])  # hdr bits 39:32
        ),
    )
    for index in range(8)
    if (mask := _RESERVED0 >> 8 * index & 0xFF)
)
"""(byte index in the record, the values that byte may hold) for every header byte with
reserved bits (byte 4 also holds PV, PRIV and EXEC): a queue is checked a column of bytes
at a time, in C."""
_PV_OF: Final = tuple(flags & 1 == 1 for flags in range(8))
"""Indexed by hdr bits 34:32 (EXEC PRIV PV): PV."""
_LOW_BITS: Final = range(1 << 12)
_PERMS_OF: Final = tuple(
    tuple(_PERMS[(flags >> 1 & 3) << 2 | rw] for rw in range(4)) * (len(_LOW_BITS) // 4)
    for flags in range(8)
)
"""``[hdr bits 34:32][payload bits 11:0]``: the permissions (PRIV and EXEC from the header,
R and W from the payload; the four R/W values repeat down bits 11:0, so each row is built
by repetition, in C)."""
_LAST_OF: Final = tuple(low & 4 != 0 for low in _LOW_BITS)
"""Indexed by payload bits 11:0: L."""
_PRGI_OF: Final = tuple(low >> 3 for low in _LOW_BITS)
"""Indexed by payload bits 11:0: PRGI (bits 11:3). Tables indexed by whole fields cost less
per record than shifts and masks."""


def decode_pq_rows(data: Buffer) -> list[RequestRow]:
    """Whole records as request rows, in order; the first bad record raises a
    ``DecodeError`` naming its offset in ``data`` (the same as :func:`decode_pq`).

    The reserved bits and PV/PRIV/EXEC of the whole queue are checked first, a column of
    bytes at a time; if any record fails, a walk record by record finds the first."""
    data = bytes(byte_view(data))  # len() in bytes; bytes slice with a step in C
    size = len(data)
    if size % PQ_RECORD_SIZE:
        raise DecodeError(
            _NAME,
            f"{size} bytes is not a whole number of {PQ_RECORD_SIZE}-byte records "
            f"({size % PQ_RECORD_SIZE} trailing bytes)",
            offset=size - size % PQ_RECORD_SIZE,
        )
    if not columns_allowed(data, PQ_RECORD_SIZE, _COLUMNS):
        for index, (hdr, payload) in enumerate(_WORDS.iter_unpack(data)):
            PQ_RECORD.check_reserved((hdr, payload), index * PQ_RECORD_SIZE)
            if not _FLAGS_OK[hdr >> 32 & 7]:
                raise _priv_without_pv(index * PQ_RECORD_SIZE)
        raise AssertionError("a record is bad, but the walk found none")  # pragma: no cover
    invalid, addr_mask = INVALID_IOASID, _ADDR_MASK
    pv_of, perms_of, last_of, prgi_of = _PV_OF, _PERMS_OF, _LAST_OF, _PRGI_OF
    return [
        (
            high >> 8,
            low >> 12 if (valid := pv_of[flags := high & 7]) else invalid,
            valid,
            prgi_of[bits := payload & 0xFFF],
            last_of[bits],
            perms_of[flags][bits],
            payload & addr_mask,
            False,
            None,
        )
        for low, high, payload in _FIELDS.iter_unpack(data)
    ]


_HDR_PERM: Final = tuple((p >> 2 & 1) << 34 | (p >> 3 & 1) << 33 for p in range(16))
"""Indexed by perm: EXEC and PRIV in the header (with a PASID only)."""
_LOW_PERM: Final = tuple(p & 3 for p in range(16))
"""Indexed by perm: READ and WRITE in the payload. Tables: ``Perm`` arithmetic per request
cost more than the packing."""


def encode_pq_rows(rows: Sequence[RequestRow]) -> bytes:
    """The records the IOMMU writes for request rows, back to back. PRIV and EXEC are
    zeroed when there is no PASID; what a record cannot say is an ``EncodeError``."""
    pack = _WORDS.pack
    hdr_perm, low_perm = _HDR_PERM, _LOW_PERM
    out: list[bytes] = []
    append = out.append
    for row in rows:
        device, pasid, valid, grpid, last, perm, addr, needs, private = row
        pid = pasid if valid else 0
        # ``x >> bits`` is nonzero both when x is too wide and when it is negative: one test
        # a field (the row's common path costs what a struct pack does).
        if (
            needs
            or private is not None
            or not isinstance(addr, int)
            or device >> 24 | pid >> 20 | grpid >> 9 | perm >> 4 | addr >> 64 | addr & _PAGE_MASK
        ):
            _request_error(row)
        hdr = pid << 12 | valid << 32 | device << 40
        if valid:
            hdr |= hdr_perm[perm]
        append(pack(hdr, low_perm[perm] | last << 2 | grpid << 3 | addr))
    return b"".join(out)


def _request_error(row: RequestRow) -> NoReturn:
    device, pasid, valid, grpid, _last, perm, addr, needs, private = row
    if needs:
        raise EncodeError(
            f"{_NAME}: needs_pasid is a device property (PCI PRI capability), "
            "a record cannot carry it"
        )
    if private is not None:
        raise EncodeError(f"{_NAME}: a record has no private data")
    for field, value, bits in (
        ("did", device, 24),
        ("pid", pasid if valid else 0, 20),
        ("prgi", grpid, 9),
        ("perm", int(perm), 4),
    ):
        if not 0 <= value < 1 << bits:
            raise EncodeError(f"{_NAME}: {field}={value!r} does not fit {bits} bits")
    raise EncodeError(f"{_NAME}: addr={addr!r} is not a 4 KiB aligned 64-bit address")
