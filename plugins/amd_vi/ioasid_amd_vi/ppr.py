"""The AMD-Vi PPR log entry (16 bytes) <-> :class:`PprEntry` and request rows.

Layout (vendors-amd-riscv.md §3.1: the driver's ``PPR_*`` macros, ``ppr.c``), two
little-endian 64-bit words:

=====  =======  ===================================================================
word   bits     field
=====  =======  ===================================================================
raw0   15:0     DEVID (PCI requester ID) -> ``PageRequest.device``
raw0   31:16    PASID[15:0]
raw0   40:32    TAG[8:0]: the PRG index -> ``PageRequest.grpid``
raw0   41       TAG[9]: last request of the group (``PPR_TAG & 0x200``)
raw0   45:42    PASID[19:16]
raw0   59:48    FLAGS: EXEC 0x002 (bit 49), READ 0x004 (50), WRITE 0x020 (53),
                US 0x040 (54, set = user), RVSD 0x080 (55), GN 0x100 (56)
raw0   63:60    TYPE: 1 = PPR_REQ_FAULT, the only page request
raw1   63:12    page address
raw1   11:0     don't care: the driver masks the address with ``PAGE_MASK``
=====  =======  ===================================================================

Reserved, checked on decode of a request (TYPE 1): raw0 bits 47:46 and the FLAGS bits the
driver gives no name (48, 52:51, 59:57). The AMD IOMMU specification itself could not be
read; these are the bits no source names, so a set one means an entry this model cannot
interpret, and it is refused rather than guessed.

An entry of any other TYPE is not a page request: the driver logs "Unknown PPR request
received" and answers nothing, and so does the model (an :class:`UnhandledEvent` of kind
``event``). TYPE 0 is an entry the IOMMU had not written yet when the driver gave up polling
(erratum 733); the driver handles it the same way. The rest of such an entry is not checked:
its layout is not the request's.

Permissions: the driver grants PRIV when US is *clear*; RVSD says the device's request had a
reserved bit set. GN says the PASID is valid; without it the PASID fields are don't care
and decode to ``INVALID_IOASID``, and encoding a request without a PASID writes PASID 0.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import attrs

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
    UnhandledEvent,
    UnhandledKind,
    byte_view,
    columns_allowed,
)

__all__ = [
    "PPR_ENTRY_SIZE",
    "PPR_LOG_ENTRY",
    "PPR_REQ_FAULT",
    "PprEntry",
    "decode_ppr",
    "decode_ppr_rows",
    "encode_ppr",
    "encode_ppr_rows",
    "ppr_entry_for",
]

PPR_LOG_ENTRY: Final = BitLayout(
    "AMD PPR log entry",
    16,
    [
        BitField("devid", 0, 0, 15),
        BitField("pasid_lo", 0, 16, 31),
        BitField("prg_index", 0, 32, 40),
        BitField("last", 0, 41, 41),
        BitField("pasid_hi", 0, 42, 45),
        BitField("exec", 0, 49, 49),
        BitField("read", 0, 50, 50),
        BitField("write", 0, 53, 53),
        BitField("us", 0, 54, 54),
        BitField("rvsd", 0, 55, 55),
        BitField("gn", 0, 56, 56),
        BitField("type", 0, 60, 63),
        BitField("addr_offset", 1, 0, 11),
        BitField("addr", 1, 12, 63),
    ],
)
PPR_ENTRY_SIZE: Final = PPR_LOG_ENTRY.size
PPR_REQ_FAULT: Final = 1
"""TYPE of a page request (``PPR_REQ_FAULT``)."""

_PAGE_SHIFT: Final = 12
_PAGE_MASK: Final = (1 << _PAGE_SHIFT) - 1
_ALL_PERMS: Final = int(Perm.READ | Perm.WRITE | Perm.EXEC | Perm.PRIV)


@attrs.frozen(kw_only=True)
class PprEntry:
    """One PPR log entry of TYPE 1, every field as the driver reads it."""

    devid: int
    pasid: int
    """PASID[19:16] << 16 | PASID[15:0], whatever GN says."""
    prg_index: int
    last: bool
    exec_: bool = False
    read: bool = False
    write: bool = False
    user: bool = True
    """US: a user-mode request; the driver asks for PRIV when it is clear."""
    rvsd: bool = False
    """The device's request had a reserved bit set."""
    gn: bool = False
    """The PASID is valid."""
    addr: int = 0
    """Page aligned (the driver drops bits 11:0)."""

    @property
    def perm(self) -> Perm:
        """The permissions the driver asks the IOPF layer (or ``handle_mm_fault``) for."""
        return _perm(self.exec_, self.read, self.write, self.user)

    def to_request(self) -> PageRequest:
        """The page request the driver reports (RVSD is not a request field: see the
        vendors for what each driver made of it)."""
        return PageRequest(
            device=self.devid,
            pasid=self.pasid if self.gn else INVALID_IOASID,
            pasid_valid=self.gn,
            grpid=self.prg_index,
            last=self.last,
            perm=self.perm,
            addr=self.addr,
        )


def _perm(exec_: bool, read: bool, write: bool, user: bool) -> Perm:
    perm = Perm.NONE
    if read:
        perm |= Perm.READ
    if write:
        perm |= Perm.WRITE
    if exec_:
        perm |= Perm.EXEC
    if not user:
        perm |= Perm.PRIV
    return perm


def _unhandled(word0: int, offset: int) -> UnhandledEvent:
    kind = word0 >> 60
    devid = word0 & 0xFFFF
    if kind == 0:
        what = (
            "TYPE 0: the entry was not written yet when the driver stopped polling "
            "(erratum 733); 'Unknown PPR request received', logged, not answered"
        )
    else:
        what = (
            f"TYPE {kind} from DEVID {devid:#06x} is not a page request "
            f"(PPR_REQ_FAULT is {PPR_REQ_FAULT}): 'Unknown PPR request received', "
            "logged, not answered"
        )
    return UnhandledEvent(PPR_LOG_ENTRY.name, what, offset=offset, kind=UnhandledKind.EVENT)


def decode_ppr(data: Buffer, offset: int = 0) -> PprEntry:
    """The entry at ``offset``. ``UnhandledEvent`` if it is not a page request,
    ``DecodeError`` if it is short or a reserved bit is set."""
    word0 = PPR_LOG_ENTRY.unpack_words(data, offset)[0]
    if word0 >> 60 != PPR_REQ_FAULT:
        raise _unhandled(word0, offset)
    f = PPR_LOG_ENTRY.decode(data, offset)
    return PprEntry(
        devid=f["devid"],
        pasid=f["pasid_hi"] << 16 | f["pasid_lo"],
        prg_index=f["prg_index"],
        last=bool(f["last"]),
        exec_=bool(f["exec"]),
        read=bool(f["read"]),
        write=bool(f["write"]),
        user=bool(f["us"]),
        rvsd=bool(f["rvsd"]),
        gn=bool(f["gn"]),
        addr=f["addr"] << _PAGE_SHIFT,
    )


def encode_ppr(entry: PprEntry) -> bytes:
    """The 16 bytes the IOMMU writes for ``entry`` (TYPE 1, address bits 11:0 zero)."""
    if not isinstance(entry.addr, int) or entry.addr & _PAGE_MASK:
        raise EncodeError(
            f"{PPR_LOG_ENTRY.name}: addr={entry.addr!r} is not 4 KiB aligned "
            "(the entry holds address bits 63:12)"
        )
    if not isinstance(entry.pasid, int) or not 0 <= entry.pasid < 1 << 20:
        raise EncodeError(f"{PPR_LOG_ENTRY.name}: pasid={entry.pasid!r} does not fit 20 bits")
    return PPR_LOG_ENTRY.encode(
        {
            "devid": entry.devid,
            "pasid_lo": entry.pasid & 0xFFFF,
            "prg_index": entry.prg_index,
            "last": int(entry.last),
            "pasid_hi": entry.pasid >> 16,
            "exec": int(entry.exec_),
            "read": int(entry.read),
            "write": int(entry.write),
            "us": int(entry.user),
            "rvsd": int(entry.rvsd),
            "gn": int(entry.gn),
            "type": PPR_REQ_FAULT,
            "addr": entry.addr >> _PAGE_SHIFT,
        }
    )


def ppr_entry_for(request: PageRequest) -> PprEntry:
    """The entry the IOMMU writes for ``request``; ``EncodeError`` if an entry cannot say it.

    ``needs_pasid`` (the device's "PRG response PASID required") is not in the entry: the
    driver keeps it per device (``pri_tlp``), so it is refused here. An entry has no private
    data either.
    """
    if request.needs_pasid:
        raise EncodeError(
            f"{PPR_LOG_ENTRY.name}: needs_pasid is a device property (the driver's pri_tlp), "
            "an entry cannot carry it"
        )
    if request.private_data is not None:
        raise EncodeError(f"{PPR_LOG_ENTRY.name}: an entry has no private data")
    perm = int(request.perm)
    if perm & ~_ALL_PERMS:
        raise EncodeError(f"{PPR_LOG_ENTRY.name}: perm {perm:#x} has unknown bits")
    return PprEntry(
        devid=request.device,
        pasid=request.pasid if request.pasid_valid else 0,
        prg_index=request.grpid,
        last=request.last,
        exec_=bool(perm & Perm.EXEC),
        read=bool(perm & Perm.READ),
        write=bool(perm & Perm.WRITE),
        user=not perm & Perm.PRIV,
        gn=request.pasid_valid,
        addr=request.addr,
    )


# The fast forms: rows straight from struct, without a dict or an entry per request.

_WORDS: Final = struct.Struct("<QQ")
_RESERVED0: Final = PPR_LOG_ENTRY.reserved[0]
_ADDR_MASK: Final = ~_PAGE_MASK & 0xFFFFFFFFFFFFFFFF
# FLAGS bits 6:0 (US WRITE . . READ EXEC .) as an index -> Perm; the unnamed bits among them
# are reserved, so zero in any entry that gets this far.
_PERMS: Final = tuple(
    _perm(bool(i & 0x02), bool(i & 0x04), bool(i & 0x20), bool(i & 0x40)) for i in range(128)
)
_TYPE_FAULT: Final = PPR_REQ_FAULT << 60
_TYPE_MASK: Final = 0xF << 60
# raw0 split where its fields are, so that the decoder works on small ints: DEVID (u16),
# PASID[15:0] (u16), TAG[7:0] (u8), byte 5 (TAG[8] bit 0, TAG[9] = last bit 1, PASID[19:16]
# bits 5:2), byte 6 (FLAGS 7:0: EXEC bit 1, READ 2, WRITE 5, US 6, RVSD 7), byte 7 (GN bit
# 0, TYPE bits 7:4); then raw1 (u64).
_FIELDS: Final = struct.Struct("<HHBBBBQ")
_REQUEST_COLUMNS: Final = tuple(
    (index, bytes(v for v in range(256) if v & mask == _TYPE_FAULT >> 8 * index & 0xFF))
    for index in range(8)
    if (mask := (_TYPE_MASK | _RESERVED0) >> 8 * index & 0xFF)
)
"""(byte index in the entry, the values that byte may hold in a request) for every byte of
raw0 holding TYPE or reserved bits: a log is checked a column of bytes at a time, in C."""
_TAG_HIGH: Final = tuple((b5 & 1) << 8 for b5 in range(256))
"""Indexed by byte 5: TAG[8] in place."""
_LAST: Final = tuple(b5 & 2 != 0 for b5 in range(256))
"""Indexed by byte 5: TAG[9], the last request of its group."""
_PASID_HIGH: Final = tuple((b5 >> 2 & 0xF) << 16 for b5 in range(256))
"""Indexed by byte 5: PASID[19:16] in place."""
_PERMS_BY_FLAGS: Final = tuple(_PERMS[b6 & 0x7F] for b6 in range(256))
"""Indexed by byte 6 (FLAGS 7:0): the permissions."""
_GN_OF: Final = tuple(b7 & 1 == 1 for b7 in range(256))
"""Indexed by byte 7: GN, the PASID is valid."""
_KEEP_ALL: Final = (True,) * 256
_KEEP_UNLESS_RVSD: Final = tuple(b6 & 0x80 == 0 for b6 in range(256))
"""Indexed by byte 6: whether the PASID stands when RVSD drops it (``rvsd_drops_pasid``)."""


def decode_ppr_rows(data: Buffer, *, rvsd_drops_pasid: bool = False) -> list[RequestRow]:
    """Whole entries as request rows, in order; the first bad entry raises, naming its
    offset in ``data`` (``UnhandledEvent`` for another TYPE, else ``DecodeError``).

    ``rvsd_drops_pasid``: a driver that answers RVSD as it answers GN=0 (``ppr.c``: both
    FAILURE) reads an RVSD entry as a request without a PASID; the row has no other place
    for the bit.

    TYPE and the reserved bits of the whole log are checked first, a column of bytes at a
    time; if any entry fails, a walk entry by entry finds the first and raises.
    """
    data = bytes(byte_view(data))  # len() in bytes; bytes slice with a step in C
    size = len(data)
    if size % PPR_ENTRY_SIZE:
        raise DecodeError(
            PPR_LOG_ENTRY.name,
            f"{size} bytes is not a whole number of {PPR_ENTRY_SIZE}-byte entries "
            f"({size % PPR_ENTRY_SIZE} trailing bytes)",
            offset=size - size % PPR_ENTRY_SIZE,
        )
    if not columns_allowed(data, PPR_ENTRY_SIZE, _REQUEST_COLUMNS):
        for index, (w0, w1) in enumerate(_WORDS.iter_unpack(data)):
            if w0 & _TYPE_MASK != _TYPE_FAULT:
                raise _unhandled(w0, index * PPR_ENTRY_SIZE)
            PPR_LOG_ENTRY.check_reserved((w0, w1), index * PPR_ENTRY_SIZE)
        raise AssertionError("an entry is bad, but the walk found none")  # pragma: no cover
    invalid, addr_mask = INVALID_IOASID, _ADDR_MASK
    tag_high, last, pasid_high, perms, gn = _TAG_HIGH, _LAST, _PASID_HIGH, _PERMS_BY_FLAGS, _GN_OF
    keep = _KEEP_UNLESS_RVSD if rvsd_drops_pasid else _KEEP_ALL
    return [
        (
            devid,
            pasid | pasid_high[b5] if (valid := gn[b7] and keep[b6]) else invalid,
            valid,
            tag | tag_high[b5],
            last[b5],
            perms[b6],
            w1 & addr_mask,
            False,
            None,
        )
        for devid, pasid, tag, b5, b6, b7, w1 in _FIELDS.iter_unpack(data)
    ]


# Perm (READ 1, WRITE 2, EXEC 4, PRIV 8) -> the FLAGS bits it sets, US when PRIV is clear.
_FLAGS_OF: Final = tuple(
    (0x004 if p & 1 else 0)
    | (0x020 if p & 2 else 0)
    | (0x002 if p & 4 else 0)
    | (0 if p & 8 else 0x040)
    for p in range(16)
)


def encode_ppr_rows(rows: Sequence[RequestRow]) -> bytes:
    """The entries for request rows, back to back (a device burst): byte for byte what
    :func:`encode_ppr` of :func:`ppr_entry_for` gives, packed directly; a row an entry
    cannot say raises the same ``EncodeError`` (found by that slower path)."""
    pack = _WORDS.pack
    flags_of = _FLAGS_OF
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
            or device >> 16 | pid >> 20 | grpid >> 9 | perm >> 4 | addr >> 64 | addr & _PAGE_MASK
        ):
            encode_ppr(ppr_entry_for(PageRequest(*row)))  # raises, naming the field
            raise AssertionError(f"no bad field in {row!r}")  # pragma: no cover
        flags = flags_of[perm] | (0x100 if valid else 0)
        append(
            pack(
                device
                | (pid & 0xFFFF) << 16
                | grpid << 32
                | last << 41
                | (pid >> 16) << 42
                | flags << 48
                | _TYPE_FAULT,
                addr,
            )
        )
    return b"".join(out)
