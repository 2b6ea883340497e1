"""COMPLETE_PPR_REQUEST (command opcode 7, 16 bytes): the AMD-Vi answer to a PRG.

Layout (vendors-amd-riscv.md §3.2, ``build_complete_ppr``; the opcode goes where
``CMD_SET_TYPE`` puts it, ``data[1]`` bits 31:28), as two little-endian 64-bit words
(``data[0] | data[1] << 32``, ``data[2] | data[3] << 32``):

====  =======  ==========================================================
word  bits     field
====  =======  ==========================================================
w0    15:0     DeviceID (``data[0]``)
w0    51:32    PASID (``data[1]`` 19:0, only when GN)
w0    63:60    opcode 7 (``data[1]`` 31:28)
w1    2        GN (``CMD_INV_IOMMU_PAGES_GN_MASK`` in ``data[2]``)
w1    40:32    PRG index (``data[3]`` 8:0: ``tag & 0x1ff``)
w1    47:44    status (``data[3]`` 15:12): SUCCESS 0, INVALID 1, FAILURE 0xF
====  =======  ==========================================================

Every other bit is zero in what the driver builds (it clears the command first), so it is
reserved here. The status is the PCIe PRG response code: generic FAILURE goes out as 0xF,
not as the generic value 2 (which today's ``amd_iommu_page_response`` writes unmapped: a
reserved code; vendors-amd-riscv.md §3.2); a command with a status other than 0, 1 or 0xF
is refused on decode, naming it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final, NoReturn

from ioasid_core.plugin import (
    INVALID_IOASID,
    BitField,
    BitLayout,
    Buffer,
    DecodeError,
    EncodeError,
    PageResponse,
    ResponseCode,
    ResponseRow,
)

__all__ = [
    "CMD_COMPLETE_PPR",
    "COMMAND_SIZE",
    "COMPLETE_PPR_REQUEST",
    "PPR_STATUS",
    "decode_complete_ppr",
    "encode_complete_ppr_rows",
]

COMPLETE_PPR_REQUEST: Final = BitLayout(
    "AMD COMPLETE_PPR_REQUEST",
    16,
    [
        BitField("devid", 0, 0, 15),
        BitField("pasid", 0, 32, 51),
        BitField("opcode", 0, 60, 63),
        BitField("gn", 1, 2, 2),
        BitField("prg_index", 1, 32, 40),
        BitField("status", 1, 44, 47),
    ],
)
COMMAND_SIZE: Final = COMPLETE_PPR_REQUEST.size
CMD_COMPLETE_PPR: Final = 0x7

PPR_STATUS: Final[Mapping[ResponseCode, int]] = {
    ResponseCode.SUCCESS: 0x0,
    ResponseCode.INVALID: 0x1,
    ResponseCode.FAILURE: 0xF,
}
"""``PPR_SUCCESS``, ``PPR_INVALID``, ``PPR_FAILURE``."""
_CODE_OF: Final = {status: code for code, status in PPR_STATUS.items()}

_OPCODE: Final = CMD_COMPLETE_PPR << 60
_NAME: Final = COMPLETE_PPR_REQUEST.name


def decode_complete_ppr(data: Buffer, offset: int = 0) -> PageResponse:
    """The response a command at ``offset`` sends; ``DecodeError`` names what is wrong."""
    f = COMPLETE_PPR_REQUEST.decode(data, offset)
    if f["opcode"] != CMD_COMPLETE_PPR:
        raise DecodeError(
            _NAME, f"opcode {f['opcode']:#x} is not COMPLETE_PPR_REQUEST (7)", offset=offset
        )
    code = _CODE_OF.get(f["status"])
    if code is None:
        note = " (the generic FAILURE written unmapped)" if f["status"] == 2 else ""
        raise DecodeError(
            _NAME,
            f"status {f['status']:#x} is not a PRG response code (0, 1 or 0xf){note}",
            offset=offset,
        )
    gn = f["gn"] == 1
    if not gn and f["pasid"]:
        raise DecodeError(
            _NAME, f"PASID {f['pasid']:#x} without GN: the driver writes none", offset=offset
        )
    return PageResponse(
        device=f["devid"],
        grpid=f["prg_index"],
        code=code,
        pasid=f["pasid"] if gn else INVALID_IOASID,
        pasid_valid=gn,
    )


# The command as four 32-bit halves, so that packing works on small ints: DEVID (dw0 bits
# 31:0), PASID and the opcode (dw0 bits 63:32), GN (dw1 bit 2), PRG index and status (dw1
# bits 63:32).
_HALVES: Final = struct.Struct("<IIII")
_OPCODE_HIGH: Final = _OPCODE >> 32
_STATUS_HIGH: Final[Mapping[ResponseCode, int]] = {
    code: status << 12 for code, status in PPR_STATUS.items()
}
"""A response code -> the status in place in dw1 bits 63:32."""


def encode_complete_ppr_rows(rows: Sequence[ResponseRow]) -> bytes:
    """One command per response row, packed directly (no dict per command); the range
    checks are the layout's."""
    pack = _HALVES.pack
    status_of = _STATUS_HIGH
    opcode = _OPCODE_HIGH
    out: list[bytes] = []
    append = out.append
    for row in rows:
        device, grpid, code, pasid, valid, private, _last = row
        try:
            status = status_of[code]
        except KeyError:
            _response_error(row)
        # A negative value shifts to -1: one test per field catches both ends.
        if private is not None or device >> 16 or grpid >> 9:
            _response_error(row)
        if valid:
            if pasid >> 20:
                _response_error(row)
            append(pack(device, pasid | opcode, 4, grpid | status))
        else:
            append(pack(device, opcode, 0, grpid | status))
    return b"".join(out)


def _response_error(row: ResponseRow) -> NoReturn:
    """Raise the ``EncodeError`` naming the first thing in ``row`` a command cannot say."""
    device, grpid, code, pasid, valid, private, _last = row
    if code not in PPR_STATUS:
        raise EncodeError(f"{_NAME}: {code!r} is not a page response code")
    if private is not None:
        raise EncodeError(f"{_NAME}: a command carries no private data")
    fields = [("devid", device, 16), ("prg_index", grpid, 9)]
    if valid:
        fields.append(("pasid", pasid, 20))
    for field, value, bits in fields:
        if not 0 <= value < 1 << bits:
            raise EncodeError(f"{_NAME}: {field}={value!r} does not fit {bits} bits")
    raise AssertionError(f"no bad field in {row!r}")  # pragma: no cover
