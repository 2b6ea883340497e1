"""VT-d page request and page group response descriptors (32 bytes each, kernel-facts §3.2).

Page request descriptor (the PRQ ring entry)::

    qw0  7:0 type | 8 PASID present | 9 private data present | 15:10 rsvd | 31:16 requester ID
         51:32 PASID | 52 execute | 53 privileged | 63:54 rsvd
    qw1  0 read | 1 write | 2 LPIG | 11:3 PRG index | 63:12 page address (address >> 12)
    qw2-qw3  private data

Bit 9: this codec follows the descriptor of the IOASID era (spec 3.0, kernels v5.5-v5.16),
where bit 9 is "private data present" and a request carrying private data must be answered
even when it is not the last of its group, with the same private data. Later kernels dropped
the field and treat bit 9 as reserved; this model covers the kernels that had the IOASID
allocator, so it keeps the field (a later layout would simply move bit 9 into the reserved mask).

``type`` is not checked on decode (the kernel never checked it). A descriptor built from a
``PageRequest`` gets :data:`PAGE_REQUEST_TYPE` = 1, the value QEMU's VT-d PRI emulation writes
(the facts file leaves the spec's value open, question 5).

Page group response descriptor (an invalidation-queue descriptor, type 0x9)::

    qw0  3:0 type (9) | 4 PASID present | 5 private data present | 15:12 response code
         31:16 requester ID | 51:32 PASID   (11:6 and 63:52 rsvd)
    qw1  2 LPIG | 11:3 PRG index            (1:0 and 63:12 rsvd)
    qw2-qw3  private data (copied from the request)

Response codes: SUCCESS 0x0, INVALID 0x1, FAILURE 0xF. The kernel's IOPF path wrote the
generic code straight into the field, so a generic FAILURE (2) went out as 2, not 0xF (§3.2
caution). This codec maps ``ResponseCode`` properly and refuses to turn any other raw code
(2 included) into a ``ResponseCode``.

Every reserved bit must be zero on decode; the error names the field and the byte offset.
:func:`decode_ring` is the batch decoder for a PRQ region (:func:`decode_descriptors` for a
drained run of whole descriptors): one ``struct.iter_unpack`` splitting each entry where its
fields are and tables indexed by them, the reserved bits checked a byte column at a time over
the whole run, no dict; the same reserved check and the same errors as the
:class:`~ioasid_core.plugin.BitLayout` path (:func:`decode_ring_reference`).
"""

from __future__ import annotations

import struct
from typing import Final

import attrs

from ioasid_core.plugin import (
    INVALID_IOASID,
    BitField,
    BitLayout,
    Buffer,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    PageRequest,
    PageResponse,
    Perm,
    RequestRow,
    ResponseCode,
    byte_view,
    columns_allowed,
)

__all__ = [
    "DESCRIPTOR_SIZE",
    "PAGE_GROUP_RESPONSE",
    "PAGE_GROUP_RESPONSE_TYPE",
    "PAGE_REQUEST",
    "PAGE_REQUEST_TYPE",
    "VTD_RESPONSE_CODES",
    "PageGroupResponseDescriptor",
    "PageRequestDescriptor",
    "decode_descriptor_rows",
    "decode_descriptors",
    "decode_ring",
    "decode_ring_reference",
    "ring_offsets",
    "vtd_response_code",
]

DESCRIPTOR_SIZE: Final = 32
PAGE_REQUEST_TYPE: Final = 0x1
PAGE_GROUP_RESPONSE_TYPE: Final = 0x9
PAGE_SHIFT: Final = 12
_PAGE_MASK: Final = (1 << 64) - (1 << PAGE_SHIFT)

PAGE_REQUEST: Final = BitLayout(
    "VT-d page request descriptor",
    DESCRIPTOR_SIZE,
    [
        BitField("type", 0, 0, 7),
        BitField("pasid_present", 0, 8, 8),
        BitField("priv_data_present", 0, 9, 9),
        BitField("rid", 0, 16, 31),
        BitField("pasid", 0, 32, 51),
        BitField("exe", 0, 52, 52),
        BitField("pm", 0, 53, 53),
        BitField("rd", 1, 0, 0),
        BitField("wr", 1, 1, 1),
        BitField("lpig", 1, 2, 2),
        BitField("prg_index", 1, 3, 11),
        BitField("page", 1, 12, 63),
        BitField("priv_data_0", 2, 0, 63),
        BitField("priv_data_1", 3, 0, 63),
    ],
)

PAGE_GROUP_RESPONSE: Final = BitLayout(
    "VT-d page group response descriptor",
    DESCRIPTOR_SIZE,
    [
        BitField("type", 0, 0, 3),
        BitField("pasid_present", 0, 4, 4),
        BitField("priv_data_present", 0, 5, 5),
        BitField("code", 0, 12, 15),
        BitField("rid", 0, 16, 31),
        BitField("pasid", 0, 32, 51),
        BitField("lpig", 1, 2, 2),
        BitField("prg_index", 1, 3, 11),
        BitField("priv_data_0", 2, 0, 63),
        BitField("priv_data_1", 3, 0, 63),
    ],
)

VTD_RESPONSE_CODES: Final = {
    ResponseCode.SUCCESS: 0x0,
    ResponseCode.INVALID: 0x1,
    ResponseCode.FAILURE: 0xF,
}
_FROM_VTD: Final = {raw: code for code, raw in VTD_RESPONSE_CODES.items()}


def vtd_response_code(code: ResponseCode) -> int:
    """The VT-d encoding of a generic response code (FAILURE is 0xF, not 2)."""
    return VTD_RESPONSE_CODES[ResponseCode(code)]


@attrs.frozen(kw_only=True)
class PageRequestDescriptor:
    """One PRQ entry, field by field (``address`` is the full, page-aligned address)."""

    type: int = PAGE_REQUEST_TYPE
    pasid_present: bool = False
    priv_data_present: bool = False
    rid: int = 0
    pasid: int = 0
    exe: bool = False
    pm: bool = False
    rd: bool = False
    wr: bool = False
    lpig: bool = False
    prg_index: int = 0
    address: int = 0
    priv_data: tuple[int, int] = (0, 0)

    @classmethod
    def from_bytes(cls, data: Buffer, offset: int = 0) -> PageRequestDescriptor:
        """Decode 32 bytes at ``offset``; ``DecodeError`` for a short buffer or reserved bits."""
        f = PAGE_REQUEST.decode(data, offset)
        return cls(
            type=f["type"],
            pasid_present=bool(f["pasid_present"]),
            priv_data_present=bool(f["priv_data_present"]),
            rid=f["rid"],
            pasid=f["pasid"],
            exe=bool(f["exe"]),
            pm=bool(f["pm"]),
            rd=bool(f["rd"]),
            wr=bool(f["wr"]),
            lpig=bool(f["lpig"]),
            prg_index=f["prg_index"],
            address=f["page"] << PAGE_SHIFT,
            priv_data=(f["priv_data_0"], f["priv_data_1"]),
        )

    def to_bytes(self) -> bytes:
        """The 32 bytes; ``EncodeError`` naming a field that does not fit."""
        if self.address.__class__ is not int or self.address & ~_PAGE_MASK:
            raise EncodeError(
                f"{PAGE_REQUEST.name}: address {self.address!r} is not a page-aligned "
                "64-bit address"
            )
        return PAGE_REQUEST.encode(
            {
                "type": self.type,
                "pasid_present": int(self.pasid_present),
                "priv_data_present": int(self.priv_data_present),
                "rid": self.rid,
                "pasid": self.pasid,
                "exe": int(self.exe),
                "pm": int(self.pm),
                "rd": int(self.rd),
                "wr": int(self.wr),
                "lpig": int(self.lpig),
                "prg_index": self.prg_index,
                "page": self.address >> PAGE_SHIFT,
                "priv_data_0": self.priv_data[0],
                "priv_data_1": self.priv_data[1],
            }
        )

    def to_page_request(self) -> PageRequest:
        """The generic request. A PASID field without the present bit is dropped.
        ``needs_pasid`` stays clear: whether the response carries the PASID is the device's
        PCIe "PRG Response PASID Required" bit, which the descriptor does not hold (the
        pipeline reads it from the platform)."""
        perm = Perm.NONE
        if self.rd:
            perm |= Perm.READ
        if self.wr:
            perm |= Perm.WRITE
        if self.exe:
            perm |= Perm.EXEC
        if self.pm:
            perm |= Perm.PRIV
        return PageRequest(
            device=self.rid,
            pasid=self.pasid if self.pasid_present else INVALID_IOASID,
            pasid_valid=self.pasid_present,
            grpid=self.prg_index,
            last=self.lpig,
            perm=perm,
            addr=self.address,
            private_data=self.priv_data if self.priv_data_present else None,
        )

    @classmethod
    def from_page_request(
        cls, request: PageRequest, *, type: int = PAGE_REQUEST_TYPE
    ) -> PageRequestDescriptor:
        """The descriptor a VT-d unit would queue for ``request`` (``needs_pasid`` is the
        device's PCIe capability, not a descriptor field: it is not stored)."""
        private = request.private_data
        perm = Perm(request.perm)
        return cls(
            type=type,
            pasid_present=request.pasid_valid,
            priv_data_present=private is not None,
            rid=request.device,
            pasid=request.pasid if request.pasid_valid else 0,
            exe=bool(perm & Perm.EXEC),
            pm=bool(perm & Perm.PRIV),
            rd=bool(perm & Perm.READ),
            wr=bool(perm & Perm.WRITE),
            lpig=request.last,
            prg_index=request.grpid,
            address=request.addr,
            priv_data=(0, 0) if private is None else private,
        )


@attrs.frozen(kw_only=True)
class PageGroupResponseDescriptor:
    """One page group response, field by field; ``code`` is the raw 4-bit VT-d code."""

    pasid_present: bool = False
    priv_data_present: bool = False
    code: int = 0
    rid: int = 0
    pasid: int = 0
    lpig: bool = False
    prg_index: int = 0
    priv_data: tuple[int, int] = (0, 0)

    @classmethod
    def from_bytes(cls, data: Buffer, offset: int = 0) -> PageGroupResponseDescriptor:
        """Decode 32 bytes; ``DecodeError`` for reserved bits or a type other than 0x9."""
        f = PAGE_GROUP_RESPONSE.decode(data, offset)
        if f["type"] != PAGE_GROUP_RESPONSE_TYPE:
            raise DecodeError(
                PAGE_GROUP_RESPONSE.name,
                f"type is {f['type']:#x}, not {PAGE_GROUP_RESPONSE_TYPE:#x} (page group response)",
                offset=offset,
            )
        return cls(
            pasid_present=bool(f["pasid_present"]),
            priv_data_present=bool(f["priv_data_present"]),
            code=f["code"],
            rid=f["rid"],
            pasid=f["pasid"],
            lpig=bool(f["lpig"]),
            prg_index=f["prg_index"],
            priv_data=(f["priv_data_0"], f["priv_data_1"]),
        )

    def to_bytes(self) -> bytes:
        """The 32 bytes; ``EncodeError`` naming a field that does not fit."""
        return PAGE_GROUP_RESPONSE.encode(
            {
                "type": PAGE_GROUP_RESPONSE_TYPE,
                "pasid_present": int(self.pasid_present),
                "priv_data_present": int(self.priv_data_present),
                "code": self.code,
                "rid": self.rid,
                "pasid": self.pasid,
                "lpig": int(self.lpig),
                "prg_index": self.prg_index,
                "priv_data_0": self.priv_data[0],
                "priv_data_1": self.priv_data[1],
            }
        )

    def to_page_response(self) -> PageResponse:
        """The generic response; ``DecodeError`` for a code VT-d does not define."""
        code = _FROM_VTD.get(self.code)
        if code is None:
            hint = (
                " (2 is the generic FAILURE the kernel's IOPF path wrote unmapped; VT-d's is 0xf)"
                if self.code == ResponseCode.FAILURE
                else ""
            )
            raise DecodeError(
                PAGE_GROUP_RESPONSE.name,
                f"response code {self.code:#x} is not SUCCESS 0x0, INVALID 0x1 or FAILURE 0xf"
                + hint,
            )
        return PageResponse(
            device=self.rid,
            grpid=self.prg_index,
            code=code,
            pasid=self.pasid if self.pasid_present else INVALID_IOASID,
            pasid_valid=self.pasid_present,
            private_data=self.priv_data if self.priv_data_present else None,
            last=self.lpig,
        )

    @classmethod
    def from_page_response(
        cls, response: PageResponse, *, lpig: bool | None = None
    ) -> PageGroupResponseDescriptor:
        """The descriptor answering ``response``; LPIG is its ``last`` unless ``lpig`` says
        (clear only for a reply to a request that was not the last of its group)."""
        private = response.private_data
        return cls(
            pasid_present=response.pasid_valid,
            priv_data_present=private is not None,
            code=vtd_response_code(response.code),
            rid=response.device,
            pasid=response.pasid if response.pasid_valid else 0,
            lpig=response.last if lpig is None else lpig,
            prg_index=response.grpid,
            priv_data=(0, 0) if private is None else private,
        )


# -- the PRQ ring

_ENTRY: Final = struct.Struct("<4Q")
_RESERVED_QW0: Final = PAGE_REQUEST.reserved[0]
# The same 32 bytes split where the fields are, so that the decoder works on small ints:
# flags (u8, qw0 15:8: bit 0 PASID present, bit 1 private data), requester ID (u16), qw0
# high half (u32: PASID 19:0, exec 20, privileged 21), qw1 (read, write, LPIG, PRG index
# 11:3, address 63:12). The type byte is skipped (never checked); the private data is read
# apart (:data:`_PRIVATE_FIELDS`), only for a run with some.
_FIELDS: Final = struct.Struct("<xBHIQ16x")
_PRIVATE_FIELDS: Final = struct.Struct("<xB14xQQ")
"""The flags byte and the private data (qw2, qw3)."""
_RESERVED_COLUMNS: Final = tuple(
    (index, bytes(value for value in range(256) if not value & mask))
    for index in range(8)
    if (mask := _RESERVED_QW0 >> 8 * index & 0xFF)
)
"""(byte index in the descriptor, the values that byte may hold) for every byte of qw0 with
reserved bits: a ring is checked a column of bytes at a time, in C."""
_PRESENT: Final = (False, True, False, True)
"""Indexed by the flags byte (reserved bits clear): the PASID present bit."""
_NO_PRIVATE: Final = b"\x00\x01"
"""The flags bytes (reserved bits clear) without private data present."""
_QW1_LOW: Final = range(1 << PAGE_SHIFT)
_LPIG: Final = tuple(low & 4 != 0 for low in _QW1_LOW)
"""Indexed by qw1 bits 11:0: LPIG."""
_PRG_INDEX: Final = tuple(low >> 3 for low in _QW1_LOW)
"""Indexed by qw1 bits 11:0: the PRG index (bits 11:3)."""
_PERM_OF: Final = tuple(Perm(i) for i in range(16))  # READ 1, WRITE 2, EXEC 4, PRIV 8
_PERMS: Final = tuple(
    tuple(_PERM_OF[rw | ep << 2] for rw in range(4)) * (len(_QW1_LOW) // 4) for ep in range(4)
)
"""``[qw0 high >> 20][qw1 bits 11:0]``: EXEC and PRIV from qw0 bits 53:52, READ and WRITE
from qw1 bits 1:0 (repeating down bits 11:0: each row is built by repetition). Tables
indexed by whole fields cost less per descriptor than shifts and masks."""
assert PAGE_REQUEST.reserved[1:] == (0, 0, 0), "the fast path checks only qw0's reserved bits"


def _byte_view(data: Buffer) -> memoryview:
    return memoryview(byte_view(data))


def _ring_segments(data: memoryview, head: int, tail: int) -> tuple[tuple[int, int], ...]:
    """The byte ranges from ``head`` to ``tail`` (wrapping), after checking the three."""
    size = len(data)
    if size <= 0 or size % DESCRIPTOR_SIZE:
        raise InvalidArgumentError(
            f"a PRQ ring of {size} bytes is not a positive multiple of {DESCRIPTOR_SIZE}"
        )
    for name, value in (("head", head), ("tail", tail)):
        if type(value) is not int or not 0 <= value < size or value % DESCRIPTOR_SIZE:
            raise InvalidArgumentError(
                f"PRQ {name} {value!r} is not a {DESCRIPTOR_SIZE}-byte-aligned offset in the "
                f"{size}-byte ring"
            )
    if head <= tail:
        return ((head, tail),)
    return ((head, size), (0, tail))


def ring_offsets(data: Buffer, head: int, tail: int) -> list[int]:
    """The byte offset of every entry from ``head`` up to (not including) ``tail``."""
    return [
        offset
        for start, end in _ring_segments(_byte_view(data), head, tail)
        for offset in range(start, end, DESCRIPTOR_SIZE)
    ]


def decode_ring_reference(data: Buffer, head: int, tail: int) -> list[PageRequest]:
    """:func:`decode_ring` through the ``BitLayout`` path, one descriptor at a time."""
    view = _byte_view(data)
    return [
        PageRequestDescriptor.from_bytes(view, offset).to_page_request()
        for offset in ring_offsets(view, head, tail)
    ]


def _decode_span(view: memoryview, start: int, end: int, rows: list[RequestRow]) -> None:
    """Append the request rows of bytes ``start:end`` of ``view`` (whole entries, checked).

    The reserved bits of the whole span are checked first, a column of bytes at a time; if
    any is set, a walk entry by entry finds the first and raises naming its offset (the
    error path may be slow). The rows are then one comprehension over small fields.
    """
    chunk = bytes(view[start:end])
    if not columns_allowed(chunk, DESCRIPTOR_SIZE, _RESERVED_COLUMNS):
        for index, words in enumerate(_ENTRY.iter_unpack(chunk)):
            PAGE_REQUEST.check_reserved(words, start + index * DESCRIPTOR_SIZE)
        raise AssertionError("a reserved bit is set, but no entry has it")  # pragma: no cover
    present, perms, lpig, prg_index = _PRESENT, _PERMS, _LPIG, _PRG_INDEX
    invalid = INVALID_IOASID
    page_mask = _PAGE_MASK
    first = len(rows)
    rows += [
        (
            rid,
            high & 0xFFFFF if (valid := present[flags]) else invalid,
            valid,
            prg_index[low := qw1 & 0xFFF],
            lpig[low],
            perms[high >> 20][low],
            qw1 & page_mask,
            False,
            None,
        )
        for flags, rid, high, qw1 in _FIELDS.iter_unpack(chunk)
    ]
    if chunk[1::DESCRIPTOR_SIZE].translate(None, _NO_PRIVATE):  # some carry private data
        for index, (flags, qw2, qw3) in enumerate(_PRIVATE_FIELDS.iter_unpack(chunk), first):
            if flags & 2:
                rows[index] = (*rows[index][:8], (qw2, qw3))


def decode_ring(data: Buffer, head: int, tail: int) -> list[PageRequest]:
    """Every page request from ``head`` up to ``tail`` (byte offsets, wrapping at the end).

    ``head == tail`` is an empty queue. Offsets must be 32-byte aligned and inside the ring
    (the kernel masked them with ``size - 0x20``; a model would rather say what is wrong).
    ``DecodeError`` names the first entry with a reserved bit set, exactly as
    :func:`decode_ring_reference` does.
    """
    view = _byte_view(data)
    rows: list[RequestRow] = []
    for start, end in _ring_segments(view, head, tail):
        _decode_span(view, start, end, rows)
    return [PageRequest(*row) for row in rows]


def decode_descriptors(data: Buffer) -> list[PageRequest]:
    """Every page request of ``data``, a run of whole descriptors (a drained batch, not a
    ring: no head or tail). ``DecodeError`` names the bad entry's offset within ``data``."""
    return [PageRequest(*row) for row in decode_descriptor_rows(data)]


def decode_descriptor_rows(data: Buffer) -> list[RequestRow]:
    """:func:`decode_descriptors` as rows (``RequestRow``), the pipeline's fast form."""
    view = _byte_view(data)
    size = len(view)
    if size % DESCRIPTOR_SIZE:
        raise DecodeError(
            PAGE_REQUEST.name,
            f"{size} bytes is not a whole number of {DESCRIPTOR_SIZE}-byte descriptors",
        )
    rows: list[RequestRow] = []
    _decode_span(view, 0, size, rows)
    return rows
