"""The SMMUv3 page-request handlers as ``VendorPrq`` vendors: the stall path and the PRI path.

``smmuv3`` (:class:`StallPrq`) is the only SVA fault path upstream had: a stalled
translation fault arrives as a 32-byte event queue record, becomes a one-request group
(each stall is LAST) and is answered with CMD_RESUME (SUCCESS -> RETRY, INVALID or
FAILURE -> ABORT). Its driver looked PASIDs up in the SVA library's own set with a getter
refusing exiting address spaces, so the default policy is ``SET``.

``smmuv3-pri`` (:class:`PriPrq`) is the PRI queue as mainline handled it: not at all. Every
request is refused by the vendor check (no lookup) with the code the mapping turns into DENY,
FAILURE, so every closed group is answered CMD_PRI_RESP DENY (RESP 0, the PCIe Response
Failure: counted in ``responses.failure``) on LAST, and nothing is answered before LAST.
``smmuv3-pri-iopf`` (``PriPrq(iopf=True)``) is J-P Brucker's out-of-tree PRI patch: the groups
go through the IOPF pipeline and are answered with the mapping of
:mod:`ioasid_smmuv3.commands` (FAILURE -> 0, INVALID -> 1, SUCCESS -> 2). All three follow the
IOPF answer discipline (the stall path's groups are single stalls anyway).

PASID in PRI responses: SSV and the SSID are set when the request had a PASID and the master
requires it in its responses (the device's PCIe "PRG Response PASID Required", as the
out-of-tree patch does, kernel-facts §4). Mainline's deny path set SSV from the request
itself ("substream_valid = ssv" in ``arm_smmu_handle_ppr``), whatever the device required;
the model applies the device's bit to it too, so that a device is answered the way it asked.

Records that are well formed but not page requests (anything but a stage-1 stalled
0x10..0x13 fault) raise ``UnhandledEvent`` from ``decode_batch``, naming the event and its
offset: the kernel logged them and moved on, so the pipeline counts each by kind
(``unhandled_events``), not as malformed, and still answers the stalls of the same batch.
The kinds: ``fault`` (0x10..0x13 without STALL: terminated already), ``event`` (any other ID,
e.g. C_BAD_STE) and ``refused_stall`` (a stalled stage-2 fault: the IOASID-era driver
returned ``-EFAULT`` and sent no RESUME, so the model sends none either and the transaction
stays stalled; see ``docs/kernel-differences.md``). Nothing is resumed for any of them.

Nothing here assumes a policy: the pipeline may run either vendor under any ``LookupPolicy``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    Buffer,
    EncodeError,
    LookupPolicy,
    PageRequest,
    PageResponse,
    Perm,
    RequestRow,
    ResponseCode,
    ResponseRow,
    RowCheck,
    RowVendorMixin,
    UnhandledEvent,
    UnhandledKind,
    byte_view,
    columns_allowed,
    response_row,
)
from ioasid_smmuv3.commands import (
    CMD_RESUME,
    PRI_RESP_OUT_OF_TREE,
    PriResp,
    ResumeResp,
    pri_resp_for,
)
from ioasid_smmuv3.events import (
    EVENT_RECORD,
    EVENT_RECORD_SIZE,
    EventId,
    check_whole_records,
    encode_event,
    event_name,
    stall_record,
)
from ioasid_smmuv3.hardware import SECTION, SmmuUnits
from ioasid_smmuv3.priq import PRIQ_ENTRY_SIZE, decode_pri_rows, encode_pri, encode_pri_rows

__all__ = [
    "PRI_IOPF_VENDOR",
    "PRI_VENDOR",
    "STALL_VENDOR",
    "PriPrq",
    "StallPrq",
    "decode_stall_batch",
    "decode_stall_rows",
    "encode_resume_rows",
    "encode_resumes",
    "encode_stall_rows",
    "smmuv3_vendors",
]

STALL_VENDOR: Final = "smmuv3"
PRI_VENDOR: Final = "smmuv3-pri"
PRI_IOPF_VENDOR: Final = "smmuv3-pri-iopf"

_WORDS: Final = struct.Struct("<4Q")
_STALL_BIT: Final = 1 << 31
_S2_BIT: Final = 1 << 39
_STALL_OR_S2: Final = _STALL_BIT | _S2_BIT
# ``id & 0xFC == 0x10`` is exactly the handled faults 0x10..0x13.
_HANDLED_MASK: Final = 0xFC
_HANDLED_BASE: Final = 0x10


def _stall_perm(rnw: int, ind: int, pnu: int) -> Perm:
    perm = Perm.READ if rnw else Perm.WRITE
    if ind:
        perm |= Perm.EXEC
    if pnu:
        perm |= Perm.PRIV
    return perm


# dw1 bits 35:33 (RnW InD PnU) as a 3-bit index -> Perm, as EventRecord.to_page_request has it.
_STALL_PERMS: Final = tuple(_stall_perm(i >> 2 & 1, i >> 1 & 1, i & 1) for i in range(8))


def _not_a_request(dw0: int, dw1: int, offset: int) -> UnhandledEvent:
    """What the driver makes of a record that is not a stage-1 stall: logged, never resumed."""
    event_id = dw0 & 0xFF
    source = f"from SID {dw0 >> 32:#x}"
    if event_id & _HANDLED_MASK != _HANDLED_BASE:
        kind = UnhandledKind.EVENT
        what = f"{event_name(event_id)} {source}: not a fault the SVA path handles, logged"
    elif dw1 & _S2_BIT:
        stalled = dw1 & _STALL_BIT != 0
        kind = UnhandledKind.REFUSED_STALL if stalled else UnhandledKind.FAULT
        what = f"stage-2 {event_name(event_id)} {source}: refused (-EFAULT), logged" + (
            f"; STAG {dw1 & 0xFFFF:#x} is never resumed" if stalled else ""
        )
    else:
        kind = UnhandledKind.FAULT
        what = f"{event_name(event_id)} {source} did not stall: terminated, logged"
    return UnhandledEvent(EVENT_RECORD.name, what, offset=offset, kind=kind)


def decode_stall_batch(data: Buffer) -> list[PageRequest]:
    """The page requests of a run of event records, without building ``EventRecord`` objects.

    Equal, record by record, to ``decode_event_batch(data)[i].to_page_request()``; the first
    record that is not a stage-1 stalled handled fault raises ``UnhandledEvent`` with its
    offset (a short run, ``DecodeError``).
    """
    return [PageRequest(*row) for row in decode_stall_rows(data)]


# A record split so that the decoder works on small ints: dw0 byte 1 (SSV bit 3, SSID[3:0]
# bits 7:4), SSID[19:4] (u16), SID (u32), STAG (u16), dw1 byte 4 (RnW InD PnU in bits 3:1);
# then dw2, the address. The event ID, STALL and S2 are checked apart, on the whole run.
_STALL_FIELDS: Final = struct.Struct("<xBHIH2xB3xQ8x")
_STALL_COLUMNS: Final = (
    (0, bytes(v for v in range(256) if v & _HANDLED_MASK == _HANDLED_BASE)),  # dw0 7:0
    (11, bytes(v for v in range(256) if v & 0x80)),  # dw1 31:24: STALL (bit 31) set
    (12, bytes(v for v in range(256) if not v & 0x80)),  # dw1 39:32: S2 (bit 39) clear
)
"""(byte index in the record, the values that byte may hold in a stage-1 stall of a handled
fault): a run is checked a column of bytes at a time, in C."""
_SSV_OF: Final = tuple(b1 & 8 != 0 for b1 in range(256))
"""Indexed by dw0 bits 15:8: SSV (bit 11)."""
_STALL_PERMS_OF: Final = tuple(_STALL_PERMS[b4 >> 1 & 7] for b4 in range(256))
"""Indexed by dw1 bits 39:32: the permissions of RnW InD PnU (bits 35:33)."""


def decode_stall_rows(data: Buffer) -> list[RequestRow]:
    """:func:`decode_stall_batch` as rows, the pipeline's fast form. The whole run is
    checked first, a column of bytes at a time; if any record is not a stage-1 stall of a
    handled fault, a walk record by record finds the first and raises."""
    data = bytes(byte_view(data))  # len() in bytes; bytes slice with a step in C
    check_whole_records(data)
    if not columns_allowed(data, EVENT_RECORD_SIZE, _STALL_COLUMNS):
        for index, (dw0, dw1, _dw2, _dw3) in enumerate(_WORDS.iter_unpack(data)):
            if dw0 & _HANDLED_MASK != _HANDLED_BASE or dw1 & _STALL_OR_S2 != _STALL_BIT:
                raise _not_a_request(dw0, dw1, index * EVENT_RECORD_SIZE)
        raise AssertionError("a record is not a stall, but the walk found none")  # pragma: no cover
    ssv_of, perms_of, invalid = _SSV_OF, _STALL_PERMS_OF, INVALID_IOASID
    return [
        (
            sid,
            b1 >> 4 | ssid << 4 if (ssv := ssv_of[b1]) else invalid,
            ssv,
            stag,
            True,
            perms_of[b4],
            addr,
            False,
            None,
        )
        for b1, ssid, sid, stag, b4, addr in _STALL_FIELDS.iter_unpack(data)
    ]


_RESUME: Final = struct.Struct("<IIQ")
"""dw0 bits 31:0 (opcode, RESP), the SID (dw0 bits 63:32), dw1 (STAG): small ints."""
_RESUME_DW0: Final[Mapping[int, int]] = {
    int(ResponseCode.SUCCESS): CMD_RESUME | ResumeResp.RETRY << 12,
    int(ResponseCode.INVALID): CMD_RESUME | ResumeResp.ABORT << 12,
    int(ResponseCode.FAILURE): CMD_RESUME | ResumeResp.ABORT << 12,
}
_RESUME_TERM: Final = CMD_RESUME | ResumeResp.TERM << 12


def encode_resumes(responses: Sequence[PageResponse]) -> bytes:
    """One CMD_RESUME per response, byte for byte what ``resume_for(r).encode()`` gives."""
    return encode_resume_rows([response_row(r) for r in responses])


def encode_resume_rows(rows: Sequence[ResponseRow]) -> bytes:
    """:func:`encode_resumes` on rows. Packed directly (the BitLayout encoder builds a dict
    per command, which would dominate the stall path); the range checks are the layout's,
    with its field names.
    """
    pack = _RESUME.pack
    dw0_for = _RESUME_DW0
    term = _RESUME_TERM
    out: list[bytes] = []
    append = out.append
    for sid, stag, code, _pasid, _valid, _private, _last in rows:
        # A negative value shifts to -1: one test per field catches both ends.
        if sid >> 32 or stag >> 16:
            field, value, bits = ("sid", sid, 32) if sid >> 32 else ("stag", stag, 16)
            raise EncodeError(f"SMMUv3 CMD_RESUME: {field}={value:#x} does not fit {bits} bits")
        try:
            append(pack(dw0_for[code], sid, stag))
        except KeyError:  # not a code the driver maps: terminate
            append(pack(term, sid, stag))
    return b"".join(out)


def _stall_word1_bits(perm: int) -> int | None:
    """Word 1 of the record ``StallPrq.encode_request`` writes for ``perm``, STAG aside:
    STALL, PnU, InD and RnW after its folding (read+write is a write; no access is a
    non-stalled write fault). None for bits beyond the four (left to ``encode_request``)."""
    if perm & ~int(Perm.READ | Perm.WRITE | Perm.EXEC | Perm.PRIV):
        return None
    rw = perm & (Perm.READ | Perm.WRITE)
    if not rw:
        return 0  # a stop marker: a write fault record, not stalled, no PnU/InD
    if rw == Perm.READ | Perm.WRITE:
        perm &= ~Perm.READ
    return (
        1 << 31
        | bool(perm & Perm.PRIV) << 33
        | bool(perm & Perm.EXEC) << 34
        | ((perm & (Perm.READ | Perm.WRITE)) == Perm.READ) << 35
    )


_STALL_W1: Final = tuple(_stall_word1_bits(perm) for perm in range(16))
"""Indexed by perm: a table instead of ``Perm`` arithmetic per request."""
_STALL_W0: Final = int(EventId.TRANSLATION)
_STALL_RECORD: Final = struct.Struct("<4Q")


def encode_stall_rows(rows: Sequence[RequestRow]) -> bytes:
    """``StallPrq.encode_request`` of each row, packed straight from the row (the device
    side of every replay step: the generic bit-field encoder cost 27 µs a request). A row
    off the common path goes through ``encode_request``: its record, or its error."""
    out = bytearray(len(rows) * EVENT_RECORD_SIZE)
    pack_into = _STALL_RECORD.pack_into
    table = _STALL_W1
    offset = 0
    for row in rows:
        source, pasid, valid, grpid, _last, perm, addr, needs_pasid, private = row
        w1 = table[perm] if 0 <= perm < 16 else None
        ssid = pasid if valid else 0
        if (
            w1 is None
            or needs_pasid
            or private is not None
            or source >> 32
            or ssid >> 20
            or grpid >> 16
            or addr >> 64
            or (source | ssid | grpid | addr) < 0
        ):
            # Unusual rows (perm bits beyond the four, out-of-range fields) take the entry
            # path: its record, or its error naming the field.
            out[offset : offset + EVENT_RECORD_SIZE] = StallPrq().encode_request(PageRequest(*row))
            offset += EVENT_RECORD_SIZE
            continue
        pack_into(
            out,
            offset,
            _STALL_W0 | bool(valid) << 11 | ssid << 12 | source << 32,
            grpid | w1,
            addr,
            0,
        )
        offset += EVENT_RECORD_SIZE
    return bytes(out)


class StallPrq(RowVendorMixin):
    """``smmuv3``: stalled faults from the event queue, answered with CMD_RESUME."""

    entry_size = EVENT_RECORD_SIZE
    expected: type | tuple[type, ...] = AddressSpace
    option_section: Final = SECTION
    unit_model: Final = SmmuUnits("evtq_log2size")

    def __init__(self, default_policy: LookupPolicy = LookupPolicy.SET) -> None:
        self.name = STALL_VENDOR
        self.default_policy = default_policy

    def encode_request(self, request: PageRequest) -> bytes:
        """The translation-fault stall record the SMMU writes for ``request``.

        A stall is one transaction, so what a PCIe page request can say beyond that is
        folded: a partial request is stalled (and answered) on its own; read+write is a
        write (RnW clear); a stop marker, which a stalling master never sends, becomes a
        non-stalled fault record, which the driver only logs (an unhandled ``fault``, no
        RESUME).
        """
        rw = request.perm & (Perm.READ | Perm.WRITE)
        if not rw:
            if request.needs_pasid or request.private_data is not None:
                raise EncodeError(
                    f"{EVENT_RECORD.name}: a record carries neither needs_pasid nor private data"
                )
            record = stall_record(
                PageRequest(
                    request.device,
                    request.pasid,
                    request.pasid_valid,
                    request.grpid,
                    True,
                    Perm.WRITE,
                    request.addr,
                )
            )
            return encode_event(attrs.evolve(record, stall=False))
        if rw == Perm.READ | Perm.WRITE or not request.last:
            request = PageRequest(
                request.device,
                request.pasid,
                request.pasid_valid,
                request.grpid,
                True,
                request.perm & ~Perm.READ if rw == Perm.READ | Perm.WRITE else request.perm,
                request.addr,
                request.needs_pasid,
                request.private_data,
            )
        return encode_event(stall_record(request))

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        return encode_stall_rows(rows)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return decode_stall_rows(data)

    row_check: RowCheck | None = None
    """No check of its own: the SID lookup is the resolver's (UNKNOWN_DEVICE -> ABORT)."""

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        return encode_resume_rows(rows)


class PriPrq(RowVendorMixin):
    """``smmuv3-pri``: the PRI queue, answered with CMD_PRI_RESP.

    ``iopf=False`` (mainline): every request is refused by :meth:`check` with the code the
    mapping turns into DENY (FAILURE), so no lookup happens and each group is denied on
    LAST: a Response Failure.
    ``iopf=True`` (``smmuv3-pri-iopf``, the out-of-tree patch): groups are resolved.
    """

    entry_size = PRIQ_ENTRY_SIZE
    expected: type | tuple[type, ...] = AddressSpace
    option_section: Final = SECTION
    unit_model: Final = SmmuUnits("priq_log2size")

    def __init__(
        self,
        *,
        iopf: bool = False,
        default_policy: LookupPolicy = LookupPolicy.SET,
        mapping: Mapping[ResponseCode, PriResp] = PRI_RESP_OUT_OF_TREE,
    ) -> None:
        deny = [code for code in ResponseCode if mapping.get(code) is PriResp.DENY]
        if not iopf and not deny:
            raise ValueError("the mainline PRI handler needs a response code that maps to DENY")
        self.name = PRI_IOPF_VENDOR if iopf else PRI_VENDOR
        self.iopf = iopf
        self.default_policy = default_policy
        self.mapping = dict(mapping)  # a plain dict pickles; a mappingproxy does not
        self._verdict: ResponseCode | None = None if iopf else deny[0]
        # A bound method, not a closure: the vendor must pickle (process pools).
        self.row_check: RowCheck | None = None if iopf else self._unexpected

    def encode_request(self, request: PageRequest) -> bytes:
        return encode_pri(request)

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        return encode_pri_rows(rows)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return decode_pri_rows(data)

    def check(self, request: PageRequest) -> ResponseCode | None:
        """Mainline: "unexpected PRI request", denied. The IOPF patch: no check of its own."""
        return self._verdict

    def _unexpected(self, row: RequestRow) -> ResponseCode | None:
        return self._verdict

    def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
        mapping = self.mapping
        return b"".join(pri_resp_for(r, mapping).encode() for r in responses)

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        return self.encode_responses([PageResponse(*row) for row in rows])


def smmuv3_vendors() -> list[StallPrq | PriPrq]:
    """The vendors the plugin offers: the stall path, mainline PRI, and PRI through IOPF."""
    return [StallPrq(), PriPrq(), PriPrq(iopf=True)]
