"""The SMMUv3 PRI queue entry (16 bytes) <-> :class:`PageRequest`.

Layout (kernel-facts §4), two little-endian 64-bit words:

====  =======  ===============================================
word  bits     field
====  =======  ===============================================
dw0   31:0     SID (stream ID) -> ``PageRequest.device``
dw0   51:32    SSID (SubstreamID = PASID)
dw0   58       PRIV
dw0   59       EXEC
dw0   60       READ
dw0   61       WRITE
dw0   62       LAST (closes the page request group)
dw0   63       SSV (SSID valid) -> ``PageRequest.pasid_valid``
dw1   8:0      PRG index -> ``PageRequest.grpid``
dw1   63:12    page address (in place: ``addr`` is 4 KiB aligned)
====  =======  ===============================================

Reserved, checked on decode: dw0 bits 57:52, dw1 bits 11:9. Unlike the event queue, the PRI
queue has a single record format, so a set reserved bit means a corrupt entry (or one read at
the wrong offset), not a record type we don't know.

Don't care: the SSID field when SSV is clear (the SMMU spec calls it UNKNOWN in that case for
event records; the kernel ignores it). It decodes to ``pasid=INVALID_IOASID``; encoding a
request without a valid PASID writes SSID 0.

What an entry cannot carry (``needs_pasid``, ``private_data``) is refused on encode rather than
dropped: ``needs_pasid`` comes from the master's PCIe PRI capability, set by the handler.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

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
)

__all__ = [
    "PRIQ_ENTRY",
    "PRIQ_ENTRY_SIZE",
    "decode_pri",
    "decode_pri_batch",
    "decode_pri_rows",
    "encode_pri",
    "encode_pri_rows",
]

PRIQ_ENTRY: Final = BitLayout(
    "SMMUv3 PRI queue entry",
    16,
    [
        BitField("sid", 0, 0, 31),
        BitField("ssid", 0, 32, 51),
        BitField("priv", 0, 58, 58),
        BitField("exec", 0, 59, 59),
        BitField("read", 0, 60, 60),
        BitField("write", 0, 61, 61),
        BitField("last", 0, 62, 62),
        BitField("ssv", 0, 63, 63),
        BitField("prg_index", 1, 0, 8),
        BitField("addr", 1, 12, 63),
    ],
)
PRIQ_ENTRY_SIZE: Final = PRIQ_ENTRY.size

_PAGE_SHIFT: Final = 12
_PAGE_MASK: Final = (1 << _PAGE_SHIFT) - 1
# An int: ``~`` of an IntFlag complements within the flag's members, hiding unknown bits.
_ALL_PERMS: Final = int(Perm.READ | Perm.WRITE | Perm.EXEC | Perm.PRIV)


def _perm(priv: int, exec_: int, read: int, write: int) -> Perm:
    perm = Perm.NONE
    if read:
        perm |= Perm.READ
    if write:
        perm |= Perm.WRITE
    if exec_:
        perm |= Perm.EXEC
    if priv:
        perm |= Perm.PRIV
    return perm


def decode_pri(data: Buffer, offset: int = 0) -> PageRequest:
    """The page request in the entry at ``offset``; reserved bits must be zero."""
    f = PRIQ_ENTRY.decode(data, offset)
    ssv = bool(f["ssv"])
    return PageRequest(
        device=f["sid"],
        pasid=f["ssid"] if ssv else INVALID_IOASID,
        pasid_valid=ssv,
        grpid=f["prg_index"],
        last=bool(f["last"]),
        perm=_perm(f["priv"], f["exec"], f["read"], f["write"]),
        addr=f["addr"] << _PAGE_SHIFT,
    )


def encode_pri(request: PageRequest) -> bytes:
    """The entry the SMMU would write for ``request``; ``EncodeError`` if it cannot say it."""
    if request.needs_pasid:
        raise EncodeError(
            "SMMUv3 PRI queue entry: needs_pasid is the master's PRI capability, "
            "an entry cannot carry it"
        )
    if request.private_data is not None:
        raise EncodeError("SMMUv3 PRI queue entry: an entry has no private data")
    if not isinstance(request.addr, int) or request.addr & _PAGE_MASK:
        raise EncodeError(
            f"SMMUv3 PRI queue entry: addr={request.addr!r} is not 4 KiB aligned "
            "(the entry holds address bits 63:12)"
        )
    perm = int(request.perm)
    if perm & ~_ALL_PERMS:
        raise EncodeError(f"SMMUv3 PRI queue entry: perm {perm:#x} has unknown bits")
    return PRIQ_ENTRY.encode(
        {
            "sid": request.device,
            "ssid": request.pasid if request.pasid_valid else 0,
            "priv": 1 if perm & Perm.PRIV else 0,
            "exec": 1 if perm & Perm.EXEC else 0,
            "read": 1 if perm & Perm.READ else 0,
            "write": 1 if perm & Perm.WRITE else 0,
            "last": 1 if request.last else 0,
            "ssv": 1 if request.pasid_valid else 0,
            "prg_index": request.grpid,
            "addr": request.addr >> _PAGE_SHIFT,
        }
    )


_PERM_BITS: Final = tuple(
    (p >> 3 & 1) << 58 | (p >> 2 & 1) << 59 | (p & 1) << 60 | (p >> 1 & 1) << 61 for p in range(16)
)
"""Indexed by perm: PRIV, EXEC, READ, WRITE in bits 58..61 (a table, not ``Perm``
arithmetic per request)."""
_ENTRY: Final = struct.Struct("<QQ")


def encode_pri_rows(rows: Sequence[RequestRow]) -> bytes:
    """``encode_pri`` of each row, packed straight from the row (the device side of every
    replay step). A row off the common path goes through ``encode_pri``: its entry, or its
    error naming the field."""
    out = bytearray(len(rows) * PRIQ_ENTRY_SIZE)
    pack_into = _ENTRY.pack_into
    perm_bits = _PERM_BITS
    offset = 0
    for row in rows:
        sid, pasid, valid, grpid, last, perm, addr, needs_pasid, private = row
        ssid = pasid if valid else 0
        # ``x >> bits`` is nonzero both when x is too wide and when it is negative: one test
        # a field (the row's common path costs what a struct pack does).
        if (
            needs_pasid
            or private is not None
            or not isinstance(addr, int)
            or perm >> 4 | sid >> 32 | ssid >> 20 | grpid >> 9 | addr >> 64 | addr & _PAGE_MASK
        ):
            out[offset : offset + PRIQ_ENTRY_SIZE] = encode_pri(PageRequest(*row))
        else:
            w0 = sid | ssid << 32 | perm_bits[perm] | (1 << 62 if last else 0)
            pack_into(out, offset, w0 | (1 << 63 if valid else 0), grpid | addr)
        offset += PRIQ_ENTRY_SIZE
    return bytes(out)


# The batch decoder: the same result as decode_pri on each entry, without a dict per entry.

_WORDS: Final = struct.Struct("<QQ")
_RESERVED0, _RESERVED1 = PRIQ_ENTRY.reserved
_SID_MASK: Final = 0xFFFFFFFF
_SSID_MASK: Final = 0xFFFFF
_PRG_MASK: Final = 0x1FF
_ADDR_MASK: Final = ~_PAGE_MASK & 0xFFFFFFFFFFFFFFFF
# dw0 bits 61:58 (WRITE READ EXEC PRIV) as a 4-bit index -> Perm.
_PERMS: Final = tuple(_perm(i & 1, i >> 1 & 1, i >> 2 & 1, i >> 3 & 1) for i in range(16))


def decode_pri_batch(data: Buffer) -> list[PageRequest]:
    """Every entry of a run of PRI queue entries, in order.

    The buffer must hold whole entries. A bad entry raises the same ``DecodeError`` as
    :func:`decode_pri`, naming its byte offset in ``data``.
    """
    return [PageRequest(*row) for row in decode_pri_rows(data)]


def decode_pri_rows(data: Buffer) -> list[RequestRow]:
    """:func:`decode_pri_batch` as rows, the pipeline's fast form."""
    data = byte_view(data)  # len() in bytes, whatever the view's item size
    size = len(data)
    if size % PRIQ_ENTRY_SIZE:
        raise DecodeError(
            PRIQ_ENTRY.name,
            f"{size} bytes is not a whole number of {PRIQ_ENTRY_SIZE}-byte entries "
            f"({size % PRIQ_ENTRY_SIZE} trailing bytes)",
            offset=size - size % PRIQ_ENTRY_SIZE,
        )
    rows: list[RequestRow] = []
    append = rows.append
    perms = _PERMS
    for index, (dw0, dw1) in enumerate(_WORDS.iter_unpack(data)):
        if dw0 & _RESERVED0 or dw1 & _RESERVED1:
            PRIQ_ENTRY.check_reserved((dw0, dw1), index * PRIQ_ENTRY_SIZE)
        ssv = dw0 >> 63 == 1
        append(
            (
                dw0 & _SID_MASK,
                dw0 >> 32 & _SSID_MASK if ssv else INVALID_IOASID,
                ssv,
                dw1 & _PRG_MASK,
                dw0 >> 62 & 1 == 1,
                perms[dw0 >> 58 & 0xF],
                dw1 & _ADDR_MASK,
                False,
                None,
            )
        )
    return rows
