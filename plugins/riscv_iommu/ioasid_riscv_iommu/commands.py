"""``ATS.PRGR`` (opcode 4 = ATS, func 1): the RISC-V IOMMU command that sends a PCIe page
request group response, 16 bytes.

Layout (vendors-amd-riscv.md §3.4, Linux ``iommu-bits.h``; opcode bits 6:0 and func bits
9:7 as ``RISCV_IOMMU_CMD_OPCODE`` / ``_FUNC`` place them), two little-endian 64-bit words:

======  =======  ==========================================================
dword   bits     field
======  =======  ==========================================================
dword0  6:0      opcode 4 (ATS)
dword0  9:7      func 1 (PRGR)
dword0  31:12    PID (when PV)
dword0  32       PV
dword0  33       DSV: DSEG is valid
dword0  55:40    RID: the device ID's low 16 bits
dword0  63:56    DSEG: the device ID's bits 23:16
dword1  40:32    PRGI
dword1  47:44    RESP: PCIe codes, success 0, invalid 1, failure 0b1111
dword1  63:48    DST_ID: the response's destination, the requester's RID
======  =======  ==========================================================

Reserved: dword0 bits 11:10 and 39:34, dword1 bits 31:0 and 43:41 (the driver zeroes
them). As the 2023 RFC's ``riscv_iommu_cmd_prgr_set_devid`` builds it: DSV always set, DSEG
and RID from the 24-bit device ID, DST_ID equal to RID; PV and PID when the response
carries the PASID. On decode, a DST_ID other than RID, a DSEG without DSV, a PID without PV
or a RESP other than 0, 1 and 0xF is refused, naming it.
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
    "ATS_FUNC_PRGR",
    "ATS_OPCODE",
    "ATS_PRGR",
    "COMMAND_SIZE",
    "PRGR_RESP",
    "decode_prgr",
    "encode_prgr_rows",
]

ATS_PRGR: Final = BitLayout(
    "RISC-V IOMMU ATS.PRGR command",
    16,
    [
        BitField("opcode", 0, 0, 6),
        BitField("func", 0, 7, 9),
        BitField("pid", 0, 12, 31),
        BitField("pv", 0, 32, 32),
        BitField("dsv", 0, 33, 33),
        BitField("rid", 0, 40, 55),
        BitField("dseg", 0, 56, 63),
        BitField("prgi", 1, 32, 40),
        BitField("resp", 1, 44, 47),
        BitField("dst_id", 1, 48, 63),
    ],
)
COMMAND_SIZE: Final = ATS_PRGR.size
ATS_OPCODE: Final = 4
ATS_FUNC_PRGR: Final = 1

PRGR_RESP: Final[Mapping[ResponseCode, int]] = {
    ResponseCode.SUCCESS: 0b0000,
    ResponseCode.INVALID: 0b0001,
    ResponseCode.FAILURE: 0b1111,
}
"""The RFC's ``riscv_iommu_page_response`` mapping (PCIe PRG response codes)."""
_CODE_OF: Final = {resp: code for code, resp in PRGR_RESP.items()}

_NAME: Final = ATS_PRGR.name


def decode_prgr(data: Buffer, offset: int = 0) -> PageResponse:
    """The response an ATS.PRGR at ``offset`` sends; ``DecodeError`` names what is wrong."""
    f = ATS_PRGR.decode(data, offset)

    def bad(what: str) -> DecodeError:
        return DecodeError(_NAME, what, offset=offset)

    if (f["opcode"], f["func"]) != (ATS_OPCODE, ATS_FUNC_PRGR):
        raise bad(f"opcode {f['opcode']} func {f['func']} is not ATS.PRGR (opcode 4, func 1)")
    code = _CODE_OF.get(f["resp"])
    if code is None:
        raise bad(f"RESP {f['resp']:#x} is not a PRG response code (0, 1 or 0xf)")
    if f["dst_id"] != f["rid"]:
        raise bad(
            f"DST_ID {f['dst_id']:#06x} is not the RID {f['rid']:#06x}: "
            "the response would go to another function"
        )
    if not f["dsv"] and f["dseg"]:
        raise bad(f"DSEG {f['dseg']:#x} without DSV")
    pv = f["pv"] == 1
    if not pv and f["pid"]:
        raise bad(f"PID {f['pid']:#x} without PV: the driver writes none")
    return PageResponse(
        device=f["dseg"] << 16 | f["rid"],
        grpid=f["prgi"],
        code=code,
        pasid=f["pid"] if pv else INVALID_IOASID,
        pasid_valid=pv,
    )


# The command in pieces, so that packing works on small ints: dw0 bits 31:0 (opcode, func,
# PID << 12), dw0 bits 63:32 (PV 0, DSV 1, RID 23:8, DSEG 31:24: the 24-bit device << 8),
# dw1 bits 31:0 (zero), dw1 bits 47:32 (PRGI 8:0, RESP 15:12), dw1 bits 63:48 (DST_ID).
_PIECES: Final = struct.Struct("<II4xHH")
_HEAD_LOW: Final = ATS_OPCODE | ATS_FUNC_PRGR << 7
_RESP_HIGH: Final[Mapping[ResponseCode, int]] = {
    code: resp << 12 for code, resp in PRGR_RESP.items()
}
"""A response code -> RESP in place in dw1 bits 47:32."""


def encode_prgr_rows(rows: Sequence[ResponseRow]) -> bytes:
    """One ATS.PRGR per response row, packed directly; the range checks name the field."""
    pack = _PIECES.pack
    resp_of = _RESP_HIGH
    head = _HEAD_LOW
    out: list[bytes] = []
    append = out.append
    for row in rows:
        device, grpid, code, pasid, valid, private, _last = row
        try:
            resp = resp_of[code]
        except KeyError:
            _response_error(row)
        # A negative value shifts to -1: one test per field catches both ends.
        if private is not None or device >> 24 or grpid >> 9:
            _response_error(row)
        if valid:
            if pasid >> 20:
                _response_error(row)
            append(pack(head | pasid << 12, 3 | device << 8, grpid | resp, device & 0xFFFF))
        else:
            append(pack(head, 2 | device << 8, grpid | resp, device & 0xFFFF))
    return b"".join(out)


def _response_error(row: ResponseRow) -> NoReturn:
    device, grpid, code, pasid, valid, private, _last = row
    if code not in PRGR_RESP:
        raise EncodeError(f"{_NAME}: {code!r} is not a page response code")
    if private is not None:
        raise EncodeError(f"{_NAME}: a command carries no private data")
    fields = [("device", device, 24), ("prgi", grpid, 9)]
    if valid:
        fields.append(("pid", pasid, 20))
    for field, value, bits in fields:
        if not 0 <= value < 1 << bits:
            raise EncodeError(f"{_NAME}: {field}={value!r} does not fit {bits} bits")
    raise AssertionError(f"no bad field in {row!r}")  # pragma: no cover
