"""The VT-d page request queue as a :class:`~ioasid_core.prq.vendor.VendorPrq` (facts §3.2, §6).

The codec is the 32-byte page request descriptor and the 32-byte page group response
descriptor of :mod:`ioasid_vtd.descriptors`; the rules are the checks the VT-d handler made
itself. The core's pipeline does the rest (grouping, lookup, one response per group), so
this module is the VT-d-specific part only.

How this maps to the 2019 handler (``prq_event_thread`` of the IOASID era, v5.5 - ~v5.16),
step by step, per descriptor:

1. No PASID present → log and answer INVALID. Here: the core's resolver (``NO_PASID``).
2. Privileged request with read or write, or execute with read → bad (INVALID): :meth:`check`.
3. ``ioasid_find(NULL, pasid, NULL)``: any set → ``default_policy`` is ``GLOBAL``; an ERR or
   NULL result → INVALID (``UNKNOWN_PASID``). The handler cached the result across
   consecutive descriptors with the same PASID; the cache changes nothing here (the lookup is
   repeated, same answer), so it is not modelled.
4. The private data was taken to be the driver's own SVM object with an mm; what it points at
   is modelled by ``expected = AddressSpace``: anything else is a type confusion (counted,
   answered INVALID), which is the hazard the NULL-set search was criticised for.
5. Non-canonical address → bad: :meth:`check` (x86-64, 48-bit virtual addresses).
6. mm exiting (``mmget_not_zero`` fails) → bad: the resolver's ``DYING``.
7. VMA, access and ``handle_mm_fault`` checks: not modelled (no page tables); a request that
   resolves is answered SUCCESS.

What differs from the 2019 handler, and why:

- Grouping: the 2019 handler answered each descriptor on its own and sent only the LPIG
  descriptor's result, whatever happened to the earlier ones. The core applies the IOPF rules
  (facts §6) that VT-d adopted later: a group is handled when LPIG closes it, the first
  failure answers the whole group ("sticky errors"), one response per group.
- Private data: the 2019 handler also answered a non-LPIG descriptor that carried private
  data. The core answers closed groups only, so such a descriptor waits for its LPIG; the
  response echoes the LPIG descriptor's private data. (Answering early needs a core change:
  a way for the IOPF layer to answer a request that does not close its group.)
- Unknown requester ID: the 2019 handler only warned and went on; the core answers INVALID
  (``UNKNOWN_DEVICE``), as the current handler does.
- Stop markers (LPIG, neither read nor write): dropped by the core without a response, as
  the current handler and the PCIe rules require; the 2019 handler did not single them out.
- Order of checks: the 2019 handler looked at the PASID-present bit before the permission
  checks; here :meth:`check` runs first. Both answer INVALID; only the counter differs
  (``vendor_rejects`` instead of ``outcomes[NO_PASID]``).
- FAILURE is encoded as VT-d's 0xF, not as the generic 2 the later IOPF path wrote (§3.2).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, NoReturn

from ioasid_core.bits import Buffer, EncodeError
from ioasid_core.platform import AddressSpace
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import RequestRow, ResponseCode, ResponseRow
from ioasid_core.prq.vendor import RowCheck, RowVendorMixin
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
    VtdUnits,
    prq_entries,
)

__all__ = [
    "PRQ_DEFAULT_ENTRIES",
    "PRQ_DEFAULT_ORDER",
    "PRQ_MAX_ORDER",
    "VtdPrq",
    "is_canonical",
    "prq_entries",
]


def is_canonical(address: int) -> bool:
    """x86-64 with 48-bit virtual addresses: bits 63:47 all equal (as a 64-bit value)."""
    top = address >> 47
    return top in (0, 0x1FFFF)


_STRUCT: Final = struct.Struct("<4Q")
_HALVES: Final = struct.Struct("<IIIIQQ")  # qw0 low, qw0 high, qw1 low, qw1 high, qw2, qw3
_U64: Final = (1 << 64) - 1
_PAGE_OFFSET: Final = 0xFFF  # 4 KiB pages
_REQ: Final = PAGE_REQUEST.name
_RESP: Final = PAGE_GROUP_RESPONSE.name
# Perm bits: READ 1, WRITE 2, EXEC 4, PRIV 8. Bad: PRIV with READ or WRITE; EXEC with READ.
_BAD_PERM: Final = tuple(bool(p & 8 and p & 3) or p & 5 == 5 for p in range(16))
_CODES: Final = dict(VTD_RESPONSE_CODES)
_RESPONSE_BASE: Final = PAGE_GROUP_RESPONSE_TYPE


def _fits(layout: str, field: str, value: int, bits: int) -> None:
    if not 0 <= value < 1 << bits:
        raise EncodeError(f"{layout}: {field} {value!r} does not fit {bits} bits")


def _vtd_check(row: RequestRow) -> ResponseCode | None:
    """The handler's own rules: supervisor requests with read/write, exec+read and a
    non-canonical address are answered INVALID before any lookup."""
    if _BAD_PERM[row[5]]:
        return ResponseCode.INVALID
    top = row[6] >> 47
    if top and top != 0x1FFFF:
        return ResponseCode.INVALID
    return None


class VtdPrq(RowVendorMixin):
    """Intel VT-d: the PRQ descriptor codec and the handler's own checks (written on rows;
    the object methods come from :class:`~ioasid_core.prq.vendor.RowVendorMixin`)."""

    name = "vtd"
    entry_size = DESCRIPTOR_SIZE
    default_policy = LookupPolicy.GLOBAL
    """``ioasid_find(NULL, pasid, NULL)``: the driver owned every PASID it saw, so it searched
    every set."""
    expected: type | tuple[type, ...] = AddressSpace
    row_check: RowCheck | None = staticmethod(_vtd_check)
    guest_pasids: Final = VcmdGuestPasids()
    unit_model: Final = VtdUnits()
    source_id_bits: Final = 16
    """A requester ID is bus << 8 | devfn: scenarios with wider source IDs are refused."""
    """Guests allocate through the virtual command interface (``ioasid_core.guest``)."""

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        """The descriptors the unit writes for ``rows``. A PASID is always carried in the
        response on VT-d, so ``needs_pasid`` is implied by ``pasid_valid`` and not stored."""
        pack = _STRUCT.pack
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
                | (perm >> 2) << 52  # EXEC → bit 52, PRIV → bit 53
            )
            try:
                append(pack(q0, perm & 3 | last << 2 | grpid << 3 | addr, p0, p1))
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
        pack = _HALVES.pack
        codes = _CODES
        out: list[bytes] = []
        append = out.append
        for row in rows:
            device, grpid, code, given, valid, private, last = row
            vcode = codes.get(code)
            pasid = given if valid else 0
            # A negative value shifts to -1, so one test per field catches both ends.
            if vcode is None or device >> 16 or pasid >> 20 or grpid >> 9:
                _response_error(row)
            # Packed as 32-bit halves: the shifts then work on small ints.
            if private is None:
                low = _RESPONSE_BASE | valid << 4 | vcode << 12 | device << 16
                append(pack(low, pasid, last << 2 | grpid << 3, 0, 0, 0))
            else:
                p0, p1 = private
                if p0 >> 64 or p1 >> 64:
                    _response_error(row)
                low = _RESPONSE_BASE | valid << 4 | 0x20 | vcode << 12 | device << 16
                append(pack(low, pasid, last << 2 | grpid << 3, 0, p0, p1))
        return b"".join(out)


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
