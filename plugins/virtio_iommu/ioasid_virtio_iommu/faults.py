"""virtio-iommu fault records: the merged 24-byte record and the page-request extension.

Both are written by the device into event-virtqueue buffers, little-endian (kernel-facts §5).
Offsets in bytes::

    merged record (24 bytes, in the spec)    extended record (48 bytes, unmerged proposal)
     0  u8     reason                         0  u8     reason
     1  u8[3]  reserved                       1  u8[3]  reserved
     4  le32   flags                          4  le32   flags
     8  le32   endpoint                       8  le32   endpoint
    12  u8[4]  reserved                      12  le32   pasid          (the old reserved slot)
    16  le64   address                       16  le64   address
                                             24  le16   group_id
                                             26  u8[6]  reserved
                                             32  le64   private_data[0]
                                             40  le64   private_data[1]

The extended layout is Jean-Philippe Brucker's counter-proposal to the vSVA RFC: new fields are
appended and the PASID takes the old reserved slot, so its first 24 bytes are still a merged
record. (Vivek Gautam's RFC layout, with ``flt_type`` and ``pr_evt_flags``, is not modelled.)

How a reader tells them apart
-----------------------------
1. **By length.** The used length the device reports for the event buffer picks the format:
   24 bytes is a merged record, 48 bytes an extended one, anything else is refused
   (:func:`decode_event`). The extension would be negotiated (the RFC did not fix a feature
   bit); once it is, the driver posts 48-byte buffers and the device fills all 48 bytes for
   every event. A 24-byte record is read strictly as the merged spec defines it: only the flags
   READ, WRITE, EXEC and ADDRESS, and the ``pasid`` slot is reserved (zero). A 24-byte page
   request is impossible anyway: it would have no group ID to answer.
2. **By the PAGE_REQ flag**, within an extended record: set, the record is a recoverable page
   request (a :class:`~ioasid_core.plugin.PageRequest`, answered by a PAGE_RESP request); clear,
   it is an unrecoverable fault, which may now name a PASID.

Flags that contradict each other (refused, so that decoding is lossless and
``encode(decode(raw)) == raw`` for every accepted record):

- A field whose validity flag is clear must be zero: ``pasid`` without PASID, ``address``
  without ADDRESS, ``group_id`` without GROUP_ID, ``private_data`` without PRIV_DATA. Otherwise
  its value would be silently dropped; a device leaving stale data there is reported, not
  second-guessed. (This also holds for ``address`` in the merged record.)
- LAST, GROUP_ID, PRIV_DATA and PRIVILEGED only with PAGE_REQ. The first three describe a page
  request group and what its response must echo; an unrecoverable fault is never answered. The
  merged fault report has READ/WRITE/EXEC only, and PRIVILEGED is the page request's ``PRIV``
  permission (§6); on a fault it would have nowhere to go.
- PAGE_REQ needs ADDRESS (it asks for a page at an address), GROUP_ID (a response is matched to
  its request by group ID, the IOPF pending list of §6, so without one it cannot be answered)
  and reason MAPPING (the page is not mapped: what a page request asks to fix; DOMAIN means
  there is no domain to fault into, UNKNOWN would tell a driver reading only the merged prefix
  nothing).
- A PASID wider than 20 bits (kernel-facts §7; ``0xFFFFFFFF`` is ``INVALID_IOASID``).

Still accepted: a page request without a PASID (PCIe PRI without a PASID prefix; the IOPF layer
answers it INVALID) and a stop marker (PAGE_REQ + LAST, neither READ nor WRITE), which decodes
to a ``PageRequest`` whose ``stop_marker`` is true and which the pipeline discards (§6).

"PASID required in the response" is not a flag: per the review it comes from the endpoint's PCIe
capability or a probe property, so the decoders take it as an argument (``needs_pasid``).
"""

from __future__ import annotations

import enum
import logging
import struct
import threading
from collections import Counter
from collections.abc import Container, Sequence
from typing import Final

import attrs

from ioasid_core.plugin import (
    INVALID_IOASID,
    MAX_PASID_BITS,
    Buffer,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    PageRequest,
    Perm,
    RequestRow,
    UnhandledEvent,
    UnhandledKind,
    byte_view,
)
from ioasid_virtio_iommu._records import Record

__all__ = [
    "EXTENDED",
    "EXTENDED_FLAGS",
    "EXTENDED_SIZE",
    "MAX_PASID",
    "MERGED",
    "MERGED_FLAGS",
    "MERGED_SIZE",
    "PAGE_REQUEST_ONLY_FLAGS",
    "FaultFlag",
    "FaultLog",
    "FaultReason",
    "UnrecoverableFault",
    "decode_event",
    "decode_extended",
    "decode_merged",
    "decode_merged_run",
    "decode_page_request",
    "decode_page_requests",
    "encode_fault",
    "encode_page_request",
    "encode_page_request_rows",
]

MERGED_SIZE = 24
EXTENDED_SIZE = 48
MAX_PASID = (1 << MAX_PASID_BITS) - 1
"""The widest PASID a record may carry: 20 bits (PCIe and SMMU, kernel-facts §7)."""


class FaultReason(enum.IntEnum):
    """The record's ``reason`` byte (merged spec)."""

    UNKNOWN = 0
    DOMAIN = 1
    """The endpoint is not attached to a domain."""
    MAPPING = 2
    """No mapping for the address, or not with this permission."""


class FaultFlag(enum.IntFlag):
    """The record's ``flags`` word. READ, WRITE, EXEC, ADDRESS are merged; the rest are not."""

    READ = 1 << 0
    WRITE = 1 << 1
    EXEC = 1 << 2
    PRIVILEGED = 1 << 3
    LAST = 1 << 4
    """Last request of its page request group."""
    PAGE_REQ = 1 << 5
    """Recoverable: a page request that needs a response."""
    ADDRESS = 1 << 8
    """``address`` is valid."""
    PASID = 1 << 9
    """``pasid`` is valid."""
    GROUP_ID = 1 << 10
    """``group_id`` is valid."""
    PRIV_DATA = 1 << 11
    """``private_data`` is valid."""


# Masks are plain ints: ``~`` on an IntFlag only complements within the declared members, so
# ``flags & ~MERGED_FLAGS`` would miss undeclared bits such as bit 12.
MERGED_FLAGS: Final = int(FaultFlag.READ | FaultFlag.WRITE | FaultFlag.EXEC | FaultFlag.ADDRESS)
EXTENDED_FLAGS: Final = MERGED_FLAGS | int(
    FaultFlag.PRIVILEGED
    | FaultFlag.LAST
    | FaultFlag.PAGE_REQ
    | FaultFlag.PASID
    | FaultFlag.GROUP_ID
    | FaultFlag.PRIV_DATA
)
PAGE_REQUEST_ONLY_FLAGS: Final = int(
    FaultFlag.PRIVILEGED | FaultFlag.LAST | FaultFlag.GROUP_ID | FaultFlag.PRIV_DATA
)
"""Flags that only a page request (PAGE_REQ) may carry."""
_PAGE_REQUEST_NEEDS: Final = int(FaultFlag.ADDRESS | FaultFlag.GROUP_ID)
_ACCESS: Final = int(Perm.READ | Perm.WRITE | Perm.EXEC)
_PERM_BITS: Final = _ACCESS | int(Perm.PRIV)
_PERMS = tuple(Perm(bits) for bits in range(16))
"""FaultFlag bits 3:0 are IOPF's perm bits 3:0 (READ, WRITE, EXEC, PRIV), so index by them."""

MERGED = Record(
    "virtio-iommu fault record",
    MERGED_SIZE,
    [
        ("reason", 0, 1),
        ("reserved bytes 1..3", 1, 3),
        ("flags", 4, 4),
        ("endpoint", 8, 4),
        ("reserved bytes 12..15", 12, 4),
        ("address", 16, 8),
    ],
)
EXTENDED = Record(
    "virtio-iommu extended fault record",
    EXTENDED_SIZE,
    [
        ("reason", 0, 1),
        ("reserved bytes 1..3", 1, 3),
        ("flags", 4, 4),
        ("endpoint", 8, 4),
        ("pasid", 12, 4),
        ("address", 16, 8),
        ("group_id", 24, 2),
        ("reserved bytes 26..31", 26, 6),
        ("private_data[0]", 32, 8),
        ("private_data[1]", 40, 8),
    ],
)
_VALID_IF = (
    ("pasid", FaultFlag.PASID),
    ("address", FaultFlag.ADDRESS),
    ("group_id", FaultFlag.GROUP_ID),
    ("private_data[0]", FaultFlag.PRIV_DATA),
    ("private_data[1]", FaultFlag.PRIV_DATA),
)


def _names(flags: int) -> str:
    return "|".join(f.name or "?" for f in FaultFlag if flags & f)


@attrs.frozen
class UnrecoverableFault:
    """A fault the device reports for information only: the driver counts and logs it, and
    never answers (the mainline driver only logs these, kernel-facts §5).

    ``address`` is None when the record's ADDRESS flag is clear; ``pasid`` is None unless an
    extended record set PASID.
    """

    endpoint: int
    reason: FaultReason
    perm: Perm = Perm.NONE
    address: int | None = None
    pasid: int | None = None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.reason, FaultReason):
            raise InvalidArgumentError(f"fault reason {self.reason!r} is not a FaultReason")
        if int(self.perm) & ~_ACCESS:
            raise InvalidArgumentError(
                f"fault perm {self.perm!r}: only READ, WRITE and EXEC describe a fault "
                "(PRIV exists on page requests only)"
            )
        if not 0 <= self.endpoint <= 0xFFFFFFFF:
            raise InvalidArgumentError(f"fault endpoint {self.endpoint:#x} is not a le32")
        if self.address is not None and not 0 <= self.address < 1 << 64:
            raise InvalidArgumentError(f"fault address {self.address:#x} is not a le64")
        if self.pasid is not None and not 0 <= self.pasid <= MAX_PASID:
            raise InvalidArgumentError(f"fault PASID {self.pasid:#x} is wider than 20 bits")

    def __str__(self) -> str:
        access = "".join(c if self.perm & p else "-" for c, p in zip("rwx", (1, 2, 4), strict=True))
        where = f" at {self.address:#x}" if self.address is not None else ""
        pasid = f" PASID {self.pasid:#x}" if self.pasid is not None else ""
        return f"{self.reason.name} fault from endpoint {self.endpoint}{pasid} [{access}]{where}"


def _check_reason(record: Record, base: int, reason: int) -> FaultReason:
    try:
        return FaultReason(reason)
    except ValueError:
        raise record.error(
            base, "reason", f"unknown reason {reason} (UNKNOWN 0, DOMAIN 1, MAPPING 2)"
        ) from None


def _check_valid_if(record: Record, base: int, values: dict[str, int], flags: int) -> None:
    for field, flag in _VALID_IF:
        if field in values and values[field] and not flags & flag:
            raise record.error(
                base, field, f"is {values[field]:#x} but flag {flag.name} is clear (must be zero)"
            )


def decode_merged(data: Buffer, offset: int = 0) -> UnrecoverableFault:
    """The merged 24-byte record at ``offset``: an unrecoverable fault, nothing else."""
    values = MERGED.decode(data, offset)
    reason = _check_reason(MERGED, offset, values["reason"])
    flags = values["flags"]
    extension = flags & EXTENDED_FLAGS & ~MERGED_FLAGS
    if extension:
        raise MERGED.error(
            offset,
            "flags",
            f"{_names(extension)} ({extension:#x}) belong to the page-request extension, "
            f"which needs the {EXTENDED_SIZE}-byte record",
        )
    unknown = flags & ~MERGED_FLAGS
    if unknown:
        raise MERGED.error(offset, "flags", f"unknown bits {unknown:#x} ({flags=:#x})")
    _check_valid_if(MERGED, offset, values, flags)
    return UnrecoverableFault(
        endpoint=values["endpoint"],
        reason=reason,
        perm=_PERMS[flags & 0xF],
        address=values["address"] if flags & FaultFlag.ADDRESS else None,
    )


def decode_merged_run(data: Buffer) -> list[PageRequest]:
    """A run of merged 24-byte records read as a queue (``ioasid decode --format merged``):
    no record is a page request, so the first one raises ``UnhandledEvent`` (kind ``fault``)
    if it is well formed and ``DecodeError`` otherwise; only an empty run returns ([])."""
    data = byte_view(data)
    size = len(data)
    if size % MERGED_SIZE:
        raise DecodeError(
            MERGED.name,
            f"a run of records is a multiple of {MERGED_SIZE} bytes; "
            f"{size % MERGED_SIZE} bytes are left over",
            offset=size - size % MERGED_SIZE,
        )
    if size:
        fault = decode_merged(data)
        raise UnhandledEvent(
            MERGED.name,
            f"{fault}: unrecoverable, logged, never answered",
            offset=0,
            kind=UnhandledKind.FAULT,
            record=fault,
        )
    return []


def decode_extended(
    data: Buffer, offset: int = 0, *, needs_pasid: bool = False
) -> UnrecoverableFault | PageRequest:
    """The 48-byte extended record at ``offset``: a page request if PAGE_REQ is set.

    :param needs_pasid: the endpoint's page responses must carry the PASID (from its PCIe
        capability or a probe property, not from the record).
    """
    values = EXTENDED.decode(data, offset)
    reason = _check_reason(EXTENDED, offset, values["reason"])
    flags = values["flags"]
    unknown = flags & ~EXTENDED_FLAGS
    if unknown:
        raise EXTENDED.error(offset, "flags", f"unknown bits {unknown:#x} ({flags=:#x})")
    if flags & FaultFlag.PAGE_REQ:
        missing = _PAGE_REQUEST_NEEDS & ~flags
        if missing:
            raise EXTENDED.error(
                offset, "flags", f"a page request (PAGE_REQ) needs {_names(missing)} ({flags=:#x})"
            )
        if reason is not FaultReason.MAPPING:
            raise EXTENDED.error(
                offset,
                "reason",
                f"a page request (PAGE_REQ) must have reason MAPPING (2), not {reason.name}",
            )
    else:
        stray = flags & PAGE_REQUEST_ONLY_FLAGS
        if stray:
            raise EXTENDED.error(
                offset,
                "flags",
                f"{_names(stray)} only belong on a page request, and PAGE_REQ is clear "
                f"({flags=:#x})",
            )
    _check_valid_if(EXTENDED, offset, values, flags)
    pasid_valid = bool(flags & FaultFlag.PASID)
    pasid = values["pasid"]
    if pasid > MAX_PASID:
        raise EXTENDED.error(offset, "pasid", f"{pasid:#x} is wider than {MAX_PASID_BITS} bits")
    if not flags & FaultFlag.PAGE_REQ:
        return UnrecoverableFault(
            endpoint=values["endpoint"],
            reason=reason,
            perm=_PERMS[flags & 0xF],
            address=values["address"] if flags & FaultFlag.ADDRESS else None,
            pasid=pasid if pasid_valid else None,
        )
    return PageRequest(
        device=values["endpoint"],
        pasid=pasid if pasid_valid else INVALID_IOASID,
        pasid_valid=pasid_valid,
        grpid=values["group_id"],
        last=bool(flags & FaultFlag.LAST),
        perm=_PERMS[flags & 0xF],
        addr=values["address"],
        needs_pasid=needs_pasid,
        private_data=(
            (values["private_data[0]"], values["private_data[1]"])
            if flags & FaultFlag.PRIV_DATA
            else None
        ),
    )


def decode_event(data: Buffer, *, needs_pasid: bool = False) -> UnrecoverableFault | PageRequest:
    """One event buffer, exactly as long as the device wrote it: 24 or 48 bytes."""
    data = byte_view(data)
    size = len(data)
    if size == MERGED_SIZE:
        return decode_merged(data)
    if size == EXTENDED_SIZE:
        return decode_extended(data, needs_pasid=needs_pasid)
    raise DecodeError(
        "virtio-iommu event",
        f"{size} bytes: a fault record is {MERGED_SIZE} bytes (merged) or {EXTENDED_SIZE} "
        "(page-request extension)",
        offset=0,
    )


def decode_page_request(data: Buffer, offset: int = 0, *, needs_pasid: bool = False) -> PageRequest:
    """The extended record at ``offset``, which must be a page request (PAGE_REQ set)."""
    event = decode_extended(data, offset, needs_pasid=needs_pasid)
    if not isinstance(event, PageRequest):
        raise EXTENDED.error(
            offset, "flags", f"PAGE_REQ is clear: this is an unrecoverable fault ({event})"
        )
    return event


def encode_fault(fault: UnrecoverableFault, *, extended: bool = False) -> bytes:
    """The record for ``fault``: merged (24 bytes) unless ``extended`` (48 bytes).

    A fault with a PASID needs the extended record: the merged one has no PASID field.
    """
    flags = int(fault.perm)
    values = {"reason": int(fault.reason), "endpoint": fault.endpoint}
    if fault.address is not None:
        flags |= FaultFlag.ADDRESS
        values["address"] = fault.address
    if fault.pasid is not None:
        if not extended:
            raise EncodeError(
                f"{MERGED.name}: fault {fault} has a PASID, which only the extended record carries"
            )
        flags |= FaultFlag.PASID
        values["pasid"] = fault.pasid
    values["flags"] = flags
    return (EXTENDED if extended else MERGED).encode(values)


def encode_page_request(request: PageRequest) -> bytes:
    """The 48-byte extended record for ``request`` (reason MAPPING, PAGE_REQ|ADDRESS|GROUP_ID).

    ``pasid`` is written only if ``pasid_valid``; ``needs_pasid`` is not part of the record.
    """
    if int(request.perm) & ~_PERM_BITS:
        raise EncodeError(f"{EXTENDED.name}: perm {request.perm!r} has unknown bits")
    flags = FaultFlag.PAGE_REQ | FaultFlag.ADDRESS | FaultFlag.GROUP_ID | int(request.perm)
    values = {
        "reason": int(FaultReason.MAPPING),
        "endpoint": request.device,
        "address": request.addr,
        "group_id": request.grpid,
    }
    if request.last:
        flags |= FaultFlag.LAST
    if request.pasid_valid:
        if not 0 <= request.pasid <= MAX_PASID:
            raise EncodeError(
                f"{EXTENDED.name}: pasid={request.pasid:#x} is wider than {MAX_PASID_BITS} bits"
            )
        flags |= FaultFlag.PASID
        values["pasid"] = request.pasid
    if request.private_data is not None:
        flags |= FaultFlag.PRIV_DATA
        values["private_data[0]"], values["private_data[1]"] = request.private_data
    values["flags"] = flags
    return EXTENDED.encode(values)


_REQUEST_FLAGS: Final = tuple(
    int(FaultFlag.PAGE_REQ | FaultFlag.ADDRESS | FaultFlag.GROUP_ID) | perm for perm in range(16)
)
"""Indexed by perm: the flags of a page request with that perm (a table, not ``IntFlag``
arithmetic per request)."""
_LAST: Final = int(FaultFlag.LAST)
_PASID_FLAG: Final = int(FaultFlag.PASID)
_REQUEST_RECORD: Final = struct.Struct("<B3xIIIQH6xQQ")
"""reason, flags, endpoint, pasid, address, group_id, private_data[0..1]: EXTENDED's fields."""


def encode_page_request_rows(rows: Sequence[RequestRow]) -> bytes:
    """``encode_page_request`` of each row, packed straight from the row (the device side of
    every replay step). A row off the common path (private data, a field out of range,
    unknown perm bits) goes through ``encode_page_request``: its record, or its error."""
    out = bytearray(len(rows) * EXTENDED_SIZE)
    pack_into = _REQUEST_RECORD.pack_into
    flags_of = _REQUEST_FLAGS
    reason = int(FaultReason.MAPPING)
    offset = 0
    for row in rows:
        device, pasid, valid, grpid, last, perm, addr, _needs, private = row
        if (
            private is not None
            or not 0 <= perm < 16
            or not 0 <= device < 1 << 32
            or (valid and not 0 <= pasid <= MAX_PASID)
            or not 0 <= grpid < 1 << 16
            or not 0 <= addr < 1 << 64
        ):
            out[offset : offset + EXTENDED_SIZE] = encode_page_request(PageRequest(*row))
        else:
            flags = flags_of[perm] | (_LAST if last else 0) | (_PASID_FLAG if valid else 0)
            pack_into(out, offset, reason, flags, device, pasid if valid else 0, addr, grpid, 0, 0)
        offset += EXTENDED_SIZE
    return bytes(out)


# The batch decoder reads every field, reserved runs included, with one struct per record:
# reason, reserved byte 1, reserved bytes 2..3, flags, endpoint, pasid, address, group_id,
# reserved bytes 26..27, reserved bytes 28..31, private_data[0], private_data[1].
_BATCH = struct.Struct("<BBHIIIQHHIQQ")
assert _BATCH.size == EXTENDED_SIZE
_BAD_FLAGS = 0xFFFFFFFF & ~EXTENDED_FLAGS
_PR_FLAGS = int(FaultFlag.PAGE_REQ) | _PAGE_REQUEST_NEEDS
_F_LAST = int(FaultFlag.LAST)
_F_PASID = int(FaultFlag.PASID)
_F_PRIV_DATA = int(FaultFlag.PRIV_DATA)
_MAPPING = int(FaultReason.MAPPING)


def decode_page_requests(
    data: Buffer, *, needs_pasid: Container[int] = frozenset()
) -> list[PageRequest]:
    """A run of extended page-request records, back to back, decoded without per-entry dicts.

    Returns exactly what :func:`decode_page_request` returns for each record, and raises
    exactly its error for the first bad one: a record the fast check does not accept at once
    is handed to the plain decoder.

    :param needs_pasid: endpoint IDs whose page responses must carry the PASID.
    """
    data = byte_view(data)
    size = len(data)
    if size % EXTENDED_SIZE:
        whole = size - size % EXTENDED_SIZE
        raise DecodeError(
            EXTENDED.name,
            f"a run of records is a multiple of {EXTENDED_SIZE} bytes; "
            f"{size % EXTENDED_SIZE} bytes are left over",
            offset=whole,
        )
    out: list[PageRequest] = []
    append = out.append
    perms = _PERMS
    for index, entry in enumerate(_BATCH.iter_unpack(data)):
        reason, r1, r2, flags, endpoint, pasid, addr, grpid, r3, r4, pd0, pd1 = entry
        pasid_valid = flags & _F_PASID
        has_priv = flags & _F_PRIV_DATA
        if (
            r1 | r2 | r3 | r4 | (flags & _BAD_FLAGS)
            or reason != _MAPPING
            or flags & _PR_FLAGS != _PR_FLAGS
            or pasid > MAX_PASID
            or (pasid and not pasid_valid)
            or ((pd0 | pd1) and not has_priv)
        ):
            append(
                decode_page_request(
                    data, index * EXTENDED_SIZE, needs_pasid=endpoint in needs_pasid
                )
            )
            continue
        append(
            PageRequest(
                device=endpoint,
                pasid=pasid if pasid_valid else INVALID_IOASID,
                pasid_valid=bool(pasid_valid),
                grpid=grpid,
                last=bool(flags & _F_LAST),
                perm=perms[flags & 0xF],
                addr=addr,
                needs_pasid=endpoint in needs_pasid,
                private_data=(pd0, pd1) if has_priv else None,
            )
        )
    return out


class FaultLog:
    """Where unrecoverable faults end: counted by reason and endpoint, and logged.

    Nothing is ever answered: the device does not wait for these (the mainline driver only logs
    them, kernel-facts §5). Thread-safe, so one event handler per virtqueue may share it.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self.by_reason: Counter[FaultReason] = Counter()
        self.by_endpoint: Counter[int] = Counter()

    @property
    def total(self) -> int:
        """How many faults were reported."""
        return sum(self.by_reason.values())

    def __getstate__(self) -> dict[str, object]:
        """Picklable (a comparison may hand the vendor to a process pool): not the lock."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if k != "_lock"}

    def __setstate__(self, state: dict[str, object]) -> None:
        vars(self).update(state)
        self._lock = threading.Lock()

    def report(self, fault: UnrecoverableFault) -> None:
        """Count and log ``fault``. Returns nothing: there is no response to send."""
        with self._lock:
            self.by_reason[fault.reason] += 1
            self.by_endpoint[fault.endpoint] += 1
        self._logger.warning("virtio-iommu: %s", fault)
