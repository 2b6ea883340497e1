"""The two SMMUv3 commands that answer page requests: CMD_PRI_RESP and CMD_RESUME (16 bytes).

CMD_PRI_RESP (opcode 0x41) answers a PCIe page request group (kernel-facts §4):

====  =======  =====================================
word  bits     field
====  =======  =====================================
dw0   7:0      opcode 0x41
dw0   11       SSV
dw0   31:12    SSID
dw0   63:32    SID
dw1   8:0      GRPID (the PRG index)
dw1   13:12    RESP: DENY 0, FAIL 1, SUCC 2 (3 is ILLEGAL)
====  =======  =====================================

CMD_RESUME (opcode 0x44) retries or terminates a stalled transaction:

====  =======  =====================================
word  bits     field
====  =======  =====================================
dw0   7:0      opcode 0x44
dw0   13:12    RESP: TERM 0, RETRY 1, ABORT 2
dw0   63:32    SID
dw1   15:0     STAG (from the stall's event record)
====  =======  =====================================

Every other bit is reserved and checked on decode. That is safe here, unlike for event
records: the driver writes commands, and it writes only these fields, so a decoded command with
another bit set did not come from the driver we model. RESP 3 is refused too: ILLEGAL for
PRI_RESP, and no encoding the kernel uses for RESUME. Decoding checks, in order: the length,
the opcode, the reserved bits, RESP.

Response mapping from the IOPF codes. RESUME: SUCCESS -> RETRY, INVALID or FAILURE -> ABORT,
anything else -> TERM. PRI_RESP: :data:`PRI_RESP_OUT_OF_TREE`, J-P Brucker's out-of-tree PRI
patch ("[PATCH v4 26/26] iommu/arm-smmu-v3: Add support for PRI", 2020-02-24: FAILURE -> 0,
INVALID -> 1, SUCCESS -> 2), which is also what the Arm SMMUv3 spec's names say (0b00
ResponseFailure, 0b01 InvalidRequest, 0b10 Success). The kernel's DENY (0) is the PCIe
Response Failure, which disables PRI at the function: an ordinary miss (INVALID) must never be
sent as 0. Mainline sends DENY for every PRI request (``smmuv3-pri``): Response Failure.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from ioasid_core.plugin import (
    BitField,
    BitLayout,
    Buffer,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    PageResponse,
    ResponseCode,
)

__all__ = [
    "CMD_PRI_RESP",
    "CMD_RESUME",
    "COMMAND_SIZE",
    "PRI_RESP_LAYOUT",
    "PRI_RESP_OUT_OF_TREE",
    "RESUME_LAYOUT",
    "PriResp",
    "PriRespCommand",
    "ResumeCommand",
    "ResumeResp",
    "decode_command",
    "pri_resp_for",
    "resume_for",
]

CMD_PRI_RESP: Final = 0x41
CMD_RESUME: Final = 0x44
COMMAND_SIZE: Final = 16


class PriResp(enum.IntEnum):
    """CMD_PRI_RESP.RESP, with the kernel's names; the PCIe meaning in the comments."""

    DENY = 0
    """Response Failure: the function stops sending page requests (PRI disabled)."""
    FAIL = 1
    """Invalid Request: this request cannot be satisfied."""
    SUCC = 2
    """Success: retry the access."""


class ResumeResp(enum.IntEnum):
    """CMD_RESUME.RESP: terminate (RAZ/WI), retry, or terminate with an abort."""

    TERM = 0
    RETRY = 1
    ABORT = 2


PRI_RESP_LAYOUT: Final = BitLayout(
    "SMMUv3 CMD_PRI_RESP",
    COMMAND_SIZE,
    [
        BitField("opcode", 0, 0, 7),
        BitField("ssv", 0, 11, 11),
        BitField("ssid", 0, 12, 31),
        BitField("sid", 0, 32, 63),
        BitField("grpid", 1, 0, 8),
        BitField("resp", 1, 12, 13),
    ],
)

RESUME_LAYOUT: Final = BitLayout(
    "SMMUv3 CMD_RESUME",
    COMMAND_SIZE,
    [
        BitField("opcode", 0, 0, 7),
        BitField("resp", 0, 12, 13),
        BitField("sid", 0, 32, 63),
        BitField("stag", 1, 0, 15),
    ],
)

_OPCODE_MASK: Final = 0xFF


def _check_opcode(layout: BitLayout, data: Buffer, offset: int, opcode: int) -> None:
    words = layout.unpack_words(data, offset)
    found = words[0] & _OPCODE_MASK
    if found != opcode:
        raise DecodeError(
            layout.name,
            f"opcode (dw0 bits 7:0) is {found:#04x}, expected {opcode:#04x}",
            offset=offset,
        )


def _resp(layout: BitLayout, kind: type[enum.IntEnum], value: int, offset: int, why: str) -> int:
    try:
        return int(kind(value))
    except ValueError:
        raise DecodeError(
            layout.name, f"RESP (bits 13:12) is {value}: {why}", offset=offset
        ) from None


def _resp_bits(layout: BitLayout, kind: type[enum.IntEnum], value: int) -> int:
    try:
        return int(kind(value))
    except ValueError:
        names = ", ".join(f"{e.name} {e.value}" for e in kind)
        raise EncodeError(f"{layout.name}: resp={value!r} is not one of {names}") from None


@attrs.frozen(kw_only=True)
class PriRespCommand:
    """CMD_PRI_RESP: the response to page request group ``grpid`` of stream ``sid``.

    ``ssid`` is meaningful only with ``ssv`` (kept as given either way, so decoding is lossless).
    """

    sid: int
    grpid: int
    resp: PriResp
    ssv: bool = False
    ssid: int = 0

    def encode(self) -> bytes:
        """The command's 16 bytes; ``EncodeError`` naming a field that does not fit."""
        return PRI_RESP_LAYOUT.encode(
            {
                "opcode": CMD_PRI_RESP,
                "ssv": int(self.ssv),
                "ssid": self.ssid,
                "sid": self.sid,
                "grpid": self.grpid,
                "resp": _resp_bits(PRI_RESP_LAYOUT, PriResp, self.resp),
            }
        )

    @classmethod
    def decode(cls, data: Buffer, offset: int = 0) -> PriRespCommand:
        """The command at ``offset``: opcode 0x41, reserved bits zero, RESP not 3."""
        _check_opcode(PRI_RESP_LAYOUT, data, offset, CMD_PRI_RESP)
        f = PRI_RESP_LAYOUT.decode(data, offset)
        resp = _resp(PRI_RESP_LAYOUT, PriResp, f["resp"], offset, "reserved (ILLEGAL)")
        return cls(
            sid=f["sid"], grpid=f["grpid"], resp=PriResp(resp), ssv=bool(f["ssv"]), ssid=f["ssid"]
        )


@attrs.frozen(kw_only=True)
class ResumeCommand:
    """CMD_RESUME: what to do with the transaction stalled under ``stag`` on stream ``sid``."""

    sid: int
    stag: int
    resp: ResumeResp

    def encode(self) -> bytes:
        """The command's 16 bytes; ``EncodeError`` naming a field that does not fit."""
        return RESUME_LAYOUT.encode(
            {
                "opcode": CMD_RESUME,
                "resp": _resp_bits(RESUME_LAYOUT, ResumeResp, self.resp),
                "sid": self.sid,
                "stag": self.stag,
            }
        )

    @classmethod
    def decode(cls, data: Buffer, offset: int = 0) -> ResumeCommand:
        """The command at ``offset``: opcode 0x44, reserved bits zero, RESP not 3."""
        _check_opcode(RESUME_LAYOUT, data, offset, CMD_RESUME)
        f = RESUME_LAYOUT.decode(data, offset)
        resp = _resp(RESUME_LAYOUT, ResumeResp, f["resp"], offset, "not TERM 0, RETRY 1, ABORT 2")
        return cls(sid=f["sid"], stag=f["stag"], resp=ResumeResp(resp))


def decode_command(data: Buffer, offset: int = 0) -> PriRespCommand | ResumeCommand:
    """Whichever of the two commands is at ``offset``; any other opcode is refused."""
    if offset < 0 or len(data) - offset < COMMAND_SIZE:
        raise DecodeError(
            "SMMUv3 command",
            f"needs {COMMAND_SIZE} bytes, only {max(len(data) - offset, 0)} left",
            offset=offset,
        )
    opcode = data[offset] & _OPCODE_MASK
    if opcode == CMD_PRI_RESP:
        return PriRespCommand.decode(data, offset)
    if opcode == CMD_RESUME:
        return ResumeCommand.decode(data, offset)
    raise DecodeError(
        "SMMUv3 command",
        f"opcode {opcode:#04x} is neither CMD_PRI_RESP ({CMD_PRI_RESP:#04x}) "
        f"nor CMD_RESUME ({CMD_RESUME:#04x})",
        offset=offset,
    )


# Response mappings.

PRI_RESP_OUT_OF_TREE: Final[Mapping[ResponseCode, PriResp]] = MappingProxyType(
    {
        ResponseCode.FAILURE: PriResp.DENY,
        ResponseCode.INVALID: PriResp.FAIL,
        ResponseCode.SUCCESS: PriResp.SUCC,
    }
)
"""J-P Brucker's out-of-tree PRI patch (kernel-facts §4): FAILURE -> DENY 0 (Response
Failure), INVALID -> FAIL 1 (Invalid Request), SUCCESS -> SUCC 2."""


def pri_resp_for(
    response: PageResponse, mapping: Mapping[ResponseCode, PriResp] = PRI_RESP_OUT_OF_TREE
) -> PriRespCommand:
    """The CMD_PRI_RESP answering ``response`` (the PASID only if the response carries one)."""
    try:
        resp = mapping[response.code]
    except KeyError:
        raise InvalidArgumentError(
            f"no CMD_PRI_RESP code for response code {response.code!r} in this mapping"
        ) from None
    return PriRespCommand(
        sid=response.device,
        grpid=response.grpid,
        resp=resp,
        ssv=response.pasid_valid,
        ssid=response.pasid if response.pasid_valid else 0,
    )


_RESUME_BY_CODE: Final[Mapping[int, ResumeResp]] = MappingProxyType(
    {
        ResponseCode.SUCCESS: ResumeResp.RETRY,
        ResponseCode.INVALID: ResumeResp.ABORT,
        ResponseCode.FAILURE: ResumeResp.ABORT,
    }
)


def resume_for(response: PageResponse) -> ResumeCommand:
    """The CMD_RESUME answering a stall: ``grpid`` is the STAG; an unknown code terminates."""
    return ResumeCommand(
        sid=response.device,
        stag=response.grpid,
        resp=_RESUME_BY_CODE.get(response.code, ResumeResp.TERM),
    )
