"""The VT-d page request queue as :class:`~ioasid_core.plugin.VendorPrq` vendors (facts
§3.2, §6): ``vtd``, the 2019 handler, and ``vtd-iopf``, the driver once it used the IOPF
framework (v5.13+).

The codec is the 32-byte page request descriptor and the 32-byte page group response
descriptor of :mod:`ioasid_vtd.descriptors`; the rules are the checks the VT-d handler made
itself and its answer discipline. The core's pipeline does the rest.

``vtd`` (:class:`VtdPrq`) follows ``prq_event_thread`` of the IOASID era (intel-svm.c,
v5.5 - v5.12), step by step, per descriptor (discipline ``PER_REQUEST``):

1. ``result = QI_RESP_INVALID``; no PASID present -> "goto no_pasid": INVALID. Here: the
   core's resolver (``NO_PASID``). The model follows that code (kernel-facts §3.2). From
   v5.5 until the patch "Use INVALID response code instead of FAILURE" (intel/svm.c, about
   v5.10) ``result`` started at ``QI_RESP_FAILURE`` and became INVALID only after a
   successful lookup, so a request without a PASID or for an unknown one was answered
   0xF, a Response Failure, which stops the device's page requests; not modelled.
2. Privileged request with read or write, or execute with read -> "goto no_pasid"
   (v5.12 and the stable trees, commit "Reject unsupported page request modes"): the
   check answers INVALID before any lookup.
3. ``ioasid_find(NULL, pasid, NULL)``: any set -> ``default_policy`` is ``GLOBAL``; an ERR
   or NULL result -> INVALID (``UNKNOWN_PASID``). The cache of the last ``svm`` changes
   nothing here (the lookup is repeated, same answer), so it is not modelled.
4. The private data was taken to be the driver's own SVM object with an mm; what it points
   at is modelled by ``expected = AddressSpace``: anything else is a type confusion
   (counted, answered INVALID), the hazard the NULL-set search was criticised for.
5. Non-canonical address -> "goto bad_req": INVALID, by the check.
6. mm exiting (``mmget_not_zero`` fails) -> INVALID: the resolver's ``DYING``.
7. VMA, access and ``handle_mm_fault`` checks: not modelled (no page tables); a request
   that resolves is answered SUCCESS.
8. "if (req->lpig || req->priv_data_present)": a response, with this descriptor's own
   ``result`` and LPIG copied from the request. Every descriptor is handled on its own, so
   a failure earlier in the group is not remembered, and a stop marker (LPIG, neither read
   nor write) is looked up and answered like any other. A descriptor with private data is
   answered at once (the check's ``Verdict.EARLY``, or ``Verdict.now(INVALID)`` when it
   fails a check), before its group closes (``premature_responses``), with the private
   data echoed (VT-d spec 3.0 §7.7).

``vtd-iopf`` (:class:`VtdIopfPrq`) is the driver from v5.13 on, reporting page requests to
the IOPF framework (discipline ``IOPF``): groups collected until LPIG, the first failure
answering the group, stop markers dropped. Its own checks (non-canonical, privileged,
exec+read) answer a bad LPIG descriptor INVALID at once and drop any other bad one unanswered
(``handle_bad_prq_event``: "if (!req->lpig) return"); a descriptor with private data is
reported with LAST_PAGE set ("iommu_report_device_fault() doesn't understand this vendor
specific requirement thus we set last_page as a workaround"), so it closes its group and its
response has LPIG set. The IOPF core looked the PASID up in the SVA library's own set
(``iommu_sva_find``, v5.13 - v6.1), so its default policy is ``SET`` (``device`` for v6.2+).

Both: the response carries the PASID when the device requires it (its PCIe "PRG Response
PASID Required" bit, ``prg_response_pasid_required``): the kernel wrote ``PASID_P`` from the
request, but enabled PRI on a PASID-capable device only if the device required the PASID in
its responses (intel-iommu.c, ``info->pasid_enabled ? pci_prg_resp_pasid_required(pdev) :
1``), so on real VT-d the two agree; a scenario device that does not require it, which the
kernel would have kept off PRI, is answered without the PASID, as PCIe asks. Codes: SUCCESS
0x0, INVALID 0x1, FAILURE 0xF (VT-d's, not the generic 2 the later IOPF path wrote, §3.2).

What differs from the kernel, and why:

- Unknown requester ID: the 2019 handler only warned (``WARN_ON(!sdev)``) and went on; the
  core answers INVALID (``UNKNOWN_DEVICE``), as the current handler does.
- Order of checks: the 2019 handler looked at the PASID-present bit before the permission
  checks, and at the address after the lookup; here the check runs first. Each answers
  INVALID; only the counter differs (``vendor_rejects`` instead of an ``outcomes`` entry).
- The private data: the 2019 code copied it into the response and then cleared qw2/qw3
  ("memcpy(&resp.qw2, ...); resp.qw2 = 0; resp.qw3 = 0;"), so the device got PDP set with
  zeros; the model echoes it, as the spec and the code's own comment require.
- ``vtd-iopf``, a bad LPIG descriptor with partial requests held: the kernel answered it
  and left the partials in the IOPF layer; the model takes them with the group.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final, NoReturn

from ioasid_core.plugin import (
    AddressSpace,
    Buffer,
    CheckResult,
    Discipline,
    EncodeError,
    HardwareRules,
    LookupPolicy,
    Platform,
    RequestRow,
    ResponseCode,
    ResponseRow,
    RowCheck,
    RowVendorMixin,
    Verdict,
)
from ioasid_vtd.descriptors import (
    DESCRIPTOR_SIZE,
    PAGE_GROUP_RESPONSE,
    PAGE_GROUP_RESPONSE_TYPE,
    PAGE_REQUEST,
    PAGE_REQUEST_TYPE,
    VTD_RESPONSE_CODES,
    decode_descriptor_rows,
)
from ioasid_vtd.guest import VcmdGuestPasids
from ioasid_vtd.hardware import (
    PRQ_DEFAULT_ENTRIES,
    PRQ_DEFAULT_ORDER,
    PRQ_MAX_ORDER,
    VTD_HARDWARE,
    VtdUnits,
    prq_entries,
)

__all__ = [
    "IOPF_VENDOR",
    "PRQ_DEFAULT_ENTRIES",
    "PRQ_DEFAULT_ORDER",
    "PRQ_MAX_ORDER",
    "VENDOR",
    "VtdIopfPrq",
    "VtdPrq",
    "is_canonical",
    "prq_entries",
]


def is_canonical(address: int) -> bool:
    """x86-64 with 48-bit virtual addresses: bits 63:47 all equal (as a 64-bit value)."""
    top = address >> 47
    return top in (0, 0x1FFFF)


_STRUCT: Final = struct.Struct("<4Q")
_RESPONSE: Final = struct.Struct("<BBHIH22x")
"""A page group response without private data: byte 0, byte 1, requester ID, PASID, qw1
bits 15:0."""
_RESPONSE_PRIVATE: Final = struct.Struct("<BBHIH6xQQ")
"""The same with the private data (qw2, qw3)."""
_U64: Final = (1 << 64) - 1
_PAGE_OFFSET: Final = 0xFFF  # 4 KiB pages
_REQ: Final = PAGE_REQUEST.name
_RESP: Final = PAGE_GROUP_RESPONSE.name
# Perm bits: READ 1, WRITE 2, EXEC 4, PRIV 8. Bad: PRIV with READ or WRITE; EXEC with READ.
_Q0_PERM: Final = tuple((p >> 2) << 52 for p in range(16))
"""Indexed by perm: EXEC and PRIV in descriptor bits 52 and 53 (a table: ``Perm`` arithmetic
per request cost more than the rest of the packing)."""
_Q1_PERM: Final = tuple(p & 3 for p in range(16))
"""Indexed by perm: READ and WRITE in descriptor bits 0 and 1."""
_BAD_PERM: Final = tuple(bool(p & 8 and p & 3) or p & 5 == 5 for p in range(16))
_CODES: Final = dict(VTD_RESPONSE_CODES)
_CODE_BYTE: Final = {code: raw << 4 for code, raw in VTD_RESPONSE_CODES.items()}
"""A response code -> descriptor byte 1 (the code is qw0 bits 15:12)."""
_BYTE0: Final = PAGE_GROUP_RESPONSE_TYPE
"""Descriptor byte 0: the type (bits 3:0), PASID present (bit 4), private data (bit 5)."""
_BYTE0_PASID: Final = _BYTE0 | 0x10
_BYTE0_PRIVATE: Final = _BYTE0 | 0x20
_BYTE0_PASID_PRIVATE: Final = _BYTE0 | 0x30


def _fits(layout: str, field: str, value: int, bits: int) -> None:
    if not 0 <= value < 1 << bits:
        raise EncodeError(f"{layout}: {field} {value!r} does not fit {bits} bits")


VENDOR: Final = "vtd"
IOPF_VENDOR: Final = "vtd-iopf"
_INVALID: Final = ResponseCode.INVALID
_NOW_INVALID: Final = Verdict.now(ResponseCode.INVALID)
_EARLY: Final = Verdict.EARLY


def _vtd_2019_check(
    row: RequestRow,
    _bad: tuple[bool, ...] = _BAD_PERM,
    _invalid: ResponseCode = _INVALID,
    _now: Verdict = _NOW_INVALID,
    _early: Verdict = _EARLY,
) -> CheckResult:
    """The 2019 handler's own rules: supervisor requests with read/write, exec+read and a
    non-canonical address are INVALID before any lookup; a descriptor with private data is
    answered at once, whatever its group (VT-d spec 3.0 §7.7). (The constants are bound as
    defaults: this runs once per descriptor, and a global lookup costs more.)"""
    top = row[6] >> 47
    if row[8] is None:
        return _invalid if _bad[row[5]] or (top and top != 0x1FFFF) else None
    return _now if _bad[row[5]] or (top and top != 0x1FFFF) else _early


def _vtd_iopf_check(
    row: RequestRow, _bad: tuple[bool, ...] = _BAD_PERM, _now: Verdict = _NOW_INVALID
) -> CheckResult:
    """The IOPF-era handler's own rules: a bad descriptor (the same three checks) is never
    reported to the IOPF layer; it is answered INVALID at once if it has LPIG, else not at
    all."""
    top = row[6] >> 47
    if _bad[row[5]] or (top and top != 0x1FFFF):
        return _now if row[4] else Verdict.SILENT
    return None


class VtdPrq(RowVendorMixin):
    """Intel VT-d, the 2019 handler: the PRQ descriptor codec, the handler's own checks and
    its per-request answers (written on rows; the object methods come from
    :class:`~ioasid_core.plugin.RowVendorMixin`)."""

    name: str = VENDOR
    entry_size = DESCRIPTOR_SIZE
    default_policy: LookupPolicy = LookupPolicy.GLOBAL
    """``ioasid_find(NULL, pasid, NULL)``: the driver owned every PASID it saw, so it searched
    every set."""
    discipline: Discipline = Discipline.PER_REQUEST
    expected: type | tuple[type, ...] = AddressSpace
    row_check: RowCheck | None = staticmethod(_vtd_2019_check)
    guest_pasids: Final = VcmdGuestPasids()
    """Guests allocate through the virtual command interface (``ioasid_core.guest``)."""
    unit_model: Final = VtdUnits()
    source_id_bits: Final = 16
    """A requester ID is bus << 8 | devfn: scenarios with wider source IDs are refused."""

    def hardware_rules(
        self, platform: Platform, unit: str, options: Mapping[str, object]
    ) -> HardwareRules:
        """PRO: an overflow drops requests unanswered until the driver has drained the queue
        (:data:`~ioasid_vtd.hardware.VTD_HARDWARE`)."""
        return VTD_HARDWARE

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        """The descriptors the unit writes for ``rows``. ``needs_pasid`` is the device's PCIe
        capability, not a descriptor field: it is not stored."""
        pack = _STRUCT.pack
        q0_perm, q1_perm = _Q0_PERM, _Q1_PERM
        out: list[bytes] = []
        append = out.append
        for device, given, valid, grpid, last, perm, addr, _needs, private in rows:
            pasid = given if valid else 0
            if device >> 16 or pasid >> 20 or grpid >> 9 or perm >> 4 or addr & _PAGE_OFFSET:
                _request_error(device, pasid, grpid, perm, addr)
            if private is None:
                p0 = p1 = 0
            else:
                p0, p1 = private
                _fits(_REQ, "private data[0]", p0, 64)
                _fits(_REQ, "private data[1]", p1, 64)
            q0 = (
                PAGE_REQUEST_TYPE
                | valid << 8
                | (private is not None) << 9
                | device << 16
                | pasid << 32
                | q0_perm[perm]  # EXEC → bit 52, PRIV → bit 53
            )
            try:
                append(pack(q0, q1_perm[perm] | last << 2 | grpid << 3 | addr, p0, p1))
            except struct.error:
                _request_error(device, pasid, grpid, perm, addr)
        return b"".join(out)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        """Whole descriptors; ``DecodeError`` names the first bad one's byte offset."""
        return decode_descriptor_rows(data)

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        """Page group response descriptors (type 0x9), one per response; LPIG is the
        response's ``last`` (clear for a request answered before its group closed). PASID
        present only if the response carries one; the request's private data is echoed."""
        # Packed in the descriptor's own fields, small ints: byte 0 (type, PASID present,
        # private data present), byte 1 (code << 4), requester ID, PASID, qw1 bits 15:0.
        pack, pack_private = _RESPONSE.pack, _RESPONSE_PRIVATE.pack
        code_byte = _CODE_BYTE
        plain, with_pasid = _BYTE0, _BYTE0_PASID
        out: list[bytes] = []
        append = out.append
        for row in rows:
            device, grpid, code, pasid, valid, private, last = row
            try:
                vcode = code_byte[code]
            except KeyError:
                _response_error(row)
            # A negative value shifts to -1, so one test per field catches both ends.
            if device >> 16 or grpid >> 9 or (valid and pasid >> 20):
                _response_error(row)
            low = grpid << 3 | 4 if last else grpid << 3  # qw1 bits 15:0: PRG index, LPIG
            if private is None:
                if valid:
                    append(pack(with_pasid, vcode, device, pasid, low))
                else:
                    append(pack(plain, vcode, device, 0, low))
            else:
                p0, p1 = private
                if p0 >> 64 or p1 >> 64:
                    _response_error(row)
                if valid:
                    append(pack_private(_BYTE0_PASID_PRIVATE, vcode, device, pasid, low, p0, p1))
                else:
                    append(pack_private(_BYTE0_PRIVATE, vcode, device, 0, low, p0, p1))
        return b"".join(out)


class VtdIopfPrq(VtdPrq):
    """Intel VT-d from v5.13, reporting to the IOPF framework (see the module docstring)."""

    name: str = IOPF_VENDOR
    default_policy: LookupPolicy = LookupPolicy.SET
    """The IOPF core's ``iommu_sva_find(pasid)``: the SVA library's own set (v5.13 - v6.1)."""
    discipline: Discipline = Discipline.IOPF
    option_section: Final = VENDOR
    """It reads ``[vendor.vtd]``, the same hardware as ``vtd``."""
    row_check: RowCheck | None = staticmethod(_vtd_iopf_check)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        """Whole descriptors, as the driver reported them to the IOPF layer: one with
        private data present closes its group (LAST_PAGE set, the kernel's workaround)."""
        rows = decode_descriptor_rows(data)
        if all(row[8] is None for row in rows):
            return rows
        return [
            (device, pasid, valid, grpid, last or private is not None, perm, addr, needs, private)
            for device, pasid, valid, grpid, last, perm, addr, needs, private in rows
        ]


def _request_error(device: int, pasid: int, grpid: int, perm: int, addr: int) -> NoReturn:
    """Raise the ``EncodeError`` naming the first field of a request that does not fit."""
    _fits(_REQ, "requester ID", device, 16)
    _fits(_REQ, "PASID", pasid, 20)
    _fits(_REQ, "page request group index", grpid, 9)
    _fits(_REQ, "permissions", perm, 4)
    raise EncodeError(f"{_REQ}: address {addr:#x} is not a page-aligned 64-bit address")


def _response_error(row: ResponseRow) -> NoReturn:
    """Raise the ``EncodeError`` naming the first field of ``row`` that does not fit."""
    device, grpid, code, pasid, valid, private, _last = row
    if code not in _CODES:
        raise EncodeError(f"{_RESP}: {code!r} is not a page response code")
    _fits(_RESP, "requester ID", device, 16)
    _fits(_RESP, "PASID", pasid if valid else 0, 20)
    _fits(_RESP, "page request group index", grpid, 9)
    for index, value in enumerate(private or ()):
        _fits(_RESP, f"private data[{index}]", value, 64)
    raise AssertionError(f"no bad field in {row!r}")  # pragma: no cover
