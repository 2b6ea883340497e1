"""The virtio-iommu page-request handler: what the pipeline calls for this vendor.

:class:`VirtioPrq` implements :class:`ioasid_core.plugin.VendorPrq` over the 48-byte
extended event record (:mod:`ioasid_virtio_iommu.faults`) and the PAGE_RESP request
(:mod:`ioasid_virtio_iommu.requests`), both from the unmerged vSVA proposals (kernel-facts §5).

Decisions:

- **Default policy ENDPOINT.** The RFC guest finds the endpoint by the event's endpoint ID and
  reports the fault to that endpoint's device; the PASID is then looked up for that device
  only. The closest core rule is ``LookupPolicy.ENDPOINT``: only the sets owned by the
  requesting endpoint's domain are searched. Any other policy may be chosen for comparison.
- **Unrecoverable faults in the ring are unhandled events**, not malformed ones: an extended
  record with PAGE_REQ clear is a well-formed event the device may legitimately write into the
  same event queue; it needs no response (the mainline driver only logs it), so the decoder
  raises ``UnhandledEvent`` (kind ``fault``) for it and the pipeline counts it per run. The
  driver's own log, :attr:`VirtioPrq.faults`, is fed by the pipeline through
  :meth:`VirtioPrq.log_unhandled`, once per fault it counts: the decoder itself logs nothing,
  since the pipeline decodes a batch twice (whole, then entry by entry) when it holds anything
  but page requests.
- **No vendor check** (``check`` returns None). Everything a virtio-specific rule could refuse
  is already refused elsewhere: contradictory flags and over-wide PASIDs by the decoder, an
  unknown endpoint (UNKNOWN_DEVICE), a missing PASID (NO_PASID) and a PASID beyond the
  endpoint's width (PASID_TOO_WIDE) by the core's resolver, stop markers by the IOPF layer.
- **"PASID required in the response"** is not in the record (§5: it comes from the endpoint's
  PCIe capability or a probe property), so the vendor is given the set of such endpoints.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Final

from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    Buffer,
    DecodeError,
    DumpFormat,
    EncodeError,
    LookupPolicy,
    PageRequest,
    Perm,
    RequestRow,
    ResponseCode,
    ResponseRow,
    RowCheck,
    RowVendorMixin,
    UnhandledEvent,
    UnhandledKind,
    byte_view,
    request_row,
)
from ioasid_virtio_iommu.event_rows import usual_rows
from ioasid_virtio_iommu.faults import (
    EXTENDED,
    EXTENDED_FLAGS,
    EXTENDED_SIZE,
    MAX_PASID,
    MERGED_SIZE,
    FaultFlag,
    FaultLog,
    FaultReason,
    UnrecoverableFault,
    decode_extended,
    decode_merged_run,
    encode_page_request,
    encode_page_request_rows,
)
from ioasid_virtio_iommu.hardware import VirtioUnits
from ioasid_virtio_iommu.requests import (
    GRPID_MAX,
    PAGE_RESP,
    PAGE_RESP_PASID_VALID,
    RequestType,
    Status,
)

__all__ = ["VirtioPrq"]

# One struct per record, reserved runs included: reason, reserved byte 1, reserved bytes 2..3,
# flags, endpoint, pasid, address, group_id, reserved bytes 26..27, reserved bytes 28..31,
# private_data[0], private_data[1].
_EVENT = struct.Struct("<BBHIIIQHHIQQ")
assert _EVENT.size == EXTENDED_SIZE
# PAGE_RESP: type, 3 reserved, 4 reserved (RFC domain), endpoint, flags, pasid, grpid,
# resp_code, 2 padding, status, 3 reserved.
_PAGE_RESP = struct.Struct("<B7xIIIIH2xB3x")
assert _PAGE_RESP.size == PAGE_RESP.size

_COLUMNS_FROM: Final = 16 * EXTENDED_SIZE
"""Bytes above which a batch is checked by columns first: about a dozen slices cost a fixed
~3 us, which the pass per record only pays back from about 16 records (a replay step
services one group: 1-4)."""
_BAD_FLAGS: Final = 0xFFFFFFFF & ~EXTENDED_FLAGS
_PR_NEEDS: Final = int(FaultFlag.PAGE_REQ | FaultFlag.ADDRESS | FaultFlag.GROUP_ID)
_F_LAST: Final = int(FaultFlag.LAST)
_F_PASID: Final = int(FaultFlag.PASID)
_F_PRIV_DATA: Final = int(FaultFlag.PRIV_DATA)
_MAPPING: Final = int(FaultReason.MAPPING)
_TYPE: Final = int(RequestType.PAGE_RESP)
_OK: Final = int(Status.OK)
_CODES: Final = frozenset(ResponseCode)
_PERMS: Final = tuple(Perm(bits) for bits in range(16))
"""Flags bits 3:0 are IOPF's perm bits 3:0 (READ, WRITE, EXEC, PRIV): index by them."""


class VirtioPrq(RowVendorMixin):
    """virtio-iommu's page-request codec and handler rules (the vSVA RFC's guest driver)."""

    name = "virtio-iommu"
    entry_size = EXTENDED_SIZE
    expected: type | tuple[type, ...] = AddressSpace
    unit_model: Final = VirtioUnits()
    dump_formats: Final = (
        DumpFormat(
            "merged",
            MERGED_SIZE,
            decode_merged_run,
            "24-byte fault records of the merged virtio spec (mainline devices): every "
            "record is an unrecoverable fault",
        ),
    )
    """Dumps ``ioasid decode --format merged`` reads besides the 48-byte queue's own."""

    def __init__(
        self,
        default_policy: LookupPolicy = LookupPolicy.ENDPOINT,
        *,
        needs_pasid: Iterable[int] = (),
        faults: FaultLog | None = None,
    ) -> None:
        """``needs_pasid``: endpoint IDs whose responses must carry the PASID (probe/PCIe).
        ``faults``: the driver's log of unrecoverable faults found in the ring (a new log if
        None); one vendor object serves every pipeline, so the log spans them all (each run
        counts its own in the pipeline's ``unhandled_events``)."""
        self.default_policy = default_policy
        self.needs_pasid = frozenset(needs_pasid)
        self.faults = faults if faults is not None else FaultLog()

    def encode_request(self, request: PageRequest) -> bytes:
        """The 48-byte page-request event the device writes; a field too wide → EncodeError."""
        return encode_page_request(request)

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        """The 48-byte page-request events the device writes; a field too wide → EncodeError."""
        return encode_page_request_rows(rows)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        """Page requests of a run of 48-byte events; ``UnhandledEvent`` for the first
        unrecoverable fault, ``DecodeError`` for the first bad record, by offset.

        The usual batch of over 16 records is checked a column at a time and read in one
        pass (:func:`~ioasid_virtio_iommu.event_rows.usual_rows`); any other is checked
        record by record here, and a record that check does not accept at once goes to the plain
        decoder, which either classifies it (a fault, or a legal page request the fast path
        does not take) or raises the ``DecodeError`` naming the bad field and its offset.
        """
        data = byte_view(data)  # bytes, whatever the view's item size or strides
        size = len(data)
        if size % EXTENDED_SIZE:
            raise DecodeError(
                EXTENDED.name,
                f"a run of records is a multiple of {EXTENDED_SIZE} bytes; "
                f"{size % EXTENDED_SIZE} bytes are left over",
                offset=size - size % EXTENDED_SIZE,
            )
        needs = self.needs_pasid
        if size > _COLUMNS_FROM:
            usual = usual_rows(data, needs)
            if usual is not None:
                return usual
        perms = _PERMS
        rows: list[RequestRow] = [
            (
                endpoint,
                pasid if (valid := flags & _F_PASID != 0) else INVALID_IOASID,
                valid,
                grpid,
                flags & _F_LAST != 0,
                perms[flags & 0xF],
                addr,
                endpoint in needs,
                (pd0, pd1) if flags & _F_PRIV_DATA else None,
            )
            for reason, r1, r2, flags, endpoint, pasid, addr, grpid, r3, r4, pd0, pd1 in (
                _EVENT.iter_unpack(data)
            )
            if not (
                r1 | r2 | r3 | r4 | (flags & _BAD_FLAGS)
                or reason != _MAPPING
                or flags & _PR_NEEDS != _PR_NEEDS
                or pasid > MAX_PASID
                or (pasid and not flags & _F_PASID)
                or ((pd0 | pd1) and not flags & _F_PRIV_DATA)
            )
        ]
        if len(rows) * EXTENDED_SIZE != size:
            return self._decode_slowly(data)
        return rows

    def _decode_slowly(self, data: Buffer) -> list[RequestRow]:
        """Record by record, for a run holding something the fast check does not accept: a
        legal request the fast path does not take, a fault (``UnhandledEvent``) or a bad
        record (``DecodeError`` naming it), whichever comes first."""
        needs = self.needs_pasid
        rows: list[RequestRow] = []
        data = byte_view(data)
        for index in range(len(data) // EXTENDED_SIZE):
            offset = index * EXTENDED_SIZE
            endpoint = _EVENT.unpack_from(data, offset)[4]
            event = decode_extended(data, offset, needs_pasid=endpoint in needs)
            if isinstance(event, UnrecoverableFault):
                raise UnhandledEvent(
                    EXTENDED.name,
                    f"{event}: unrecoverable, logged, never answered",
                    offset=offset,
                    kind=UnhandledKind.FAULT,
                    record=event,
                )
            rows.append(request_row(event))
        return rows

    def log_unhandled(self, event: UnhandledEvent) -> None:
        """The driver logs each unrecoverable fault the pipeline counts (``UnhandledLog``)."""
        if isinstance(event.record, UnrecoverableFault):
            self.faults.report(event.record)

    row_check: RowCheck | None = None
    """No virtio-specific rule (see the module doc)."""

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        """One 32-byte PAGE_RESP request per response, status OK (the device's to fill)."""
        pack = _PAGE_RESP.pack
        codes = _CODES
        parts: list[bytes] = []
        append = parts.append
        for endpoint, grpid, code, given, valid, _private, _last in rows:
            if code not in codes or not 0 <= grpid <= GRPID_MAX:
                raise EncodeError(
                    f"{PAGE_RESP.name}: code {code!r} / grpid {grpid:#x} cannot be encoded"
                )
            if valid:
                if not 0 <= given <= MAX_PASID:
                    raise EncodeError(f"{PAGE_RESP.name}: pasid={given:#x} is wider than 20 bits")
                flags, pasid = PAGE_RESP_PASID_VALID, given
            else:
                flags = pasid = 0
            try:
                append(pack(_TYPE, endpoint, flags, pasid, grpid, code, _OK))
            except struct.error as exc:
                raise EncodeError(f"{PAGE_RESP.name}: endpoint={endpoint:#x}: {exc}") from None
        return b"".join(parts)
