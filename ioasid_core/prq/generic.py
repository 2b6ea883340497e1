"""A vendor-neutral reference codec: a plugin author's starting point, and the test vendor.

Entry (24 bytes, little-endian): u32 device, u32 pasid, u16 group index, u16 flags,
u32 reserved (zero), u64 address. Flags: PASID_VALID b0, LAST b1, NEEDS_PASID b2, READ b3,
WRITE b4, EXEC b5, PRIV b6; the other bits are reserved. Response (16 bytes): u32 device,
u32 pasid, u16 group index, u8 code, u8 flags (PASID_VALID b0), u32 reserved.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ioasid_core.bits import Buffer, DecodeError, EncodeError
from ioasid_core.platform import AddressSpace
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode

__all__ = ["GenericPrq"]

_ENTRY = struct.Struct("<IIHHIQ")
_RESPONSE = struct.Struct("<IIHBBI")
_PASID_VALID, _LAST, _NEEDS_PASID = 1, 2, 4
_PERM_SHIFT = 3
_KNOWN_FLAGS = 0x7F


class GenericPrq:
    """The reference vendor ("generic"): global lookup by default, no extra checks."""

    name = "generic"
    entry_size = _ENTRY.size
    expected: type | tuple[type, ...] = AddressSpace

    def __init__(self, default_policy: LookupPolicy = LookupPolicy.GLOBAL) -> None:
        self.default_policy = default_policy

    def encode_request(self, request: PageRequest) -> bytes:
        pasid = request.pasid if request.pasid_valid else 0
        for field, value, bits in (
            ("device", request.device, 32),
            ("pasid", pasid, 32),
            ("grpid", request.grpid, 16),
            ("addr", request.addr, 64),
        ):
            if not 0 <= value < 1 << bits:
                raise EncodeError(
                    f"generic page request: {field}={value:#x} does not fit {bits} bits"
                )
        flags = (
            (_PASID_VALID if request.pasid_valid else 0)
            | (_LAST if request.last else 0)
            | (_NEEDS_PASID if request.needs_pasid else 0)
            | int(request.perm) << _PERM_SHIFT
        )
        return _ENTRY.pack(request.device, pasid, request.grpid, flags, 0, request.addr)

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        if len(data) % _ENTRY.size:
            raise DecodeError(
                "generic page request",
                f"{len(data)} bytes is not a whole number of {_ENTRY.size}-byte entries",
            )
        out: list[PageRequest] = []
        append = out.append
        for index, (device, pasid, grpid, flags, reserved, addr) in enumerate(
            _ENTRY.iter_unpack(data)
        ):
            if flags & ~_KNOWN_FLAGS or reserved:
                raise DecodeError(
                    "generic page request",
                    f"reserved bits set (flags {flags:#06x}, reserved {reserved:#x})",
                    offset=index * _ENTRY.size,
                )
            valid = bool(flags & _PASID_VALID)
            if pasid and not valid:
                raise DecodeError(
                    "generic page request",
                    f"PASID {pasid:#x} given without PASID_VALID",
                    offset=index * _ENTRY.size,
                )
            append(
                PageRequest(
                    device,
                    pasid if valid else 0xFFFFFFFF,
                    valid,
                    grpid,
                    bool(flags & _LAST),
                    Perm(flags >> _PERM_SHIFT & 0xF),
                    addr,
                    bool(flags & _NEEDS_PASID),
                )
            )
        return out

    def check(self, request: PageRequest) -> ResponseCode | None:
        return None

    def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
        return b"".join(
            _RESPONSE.pack(
                r.device,
                r.pasid if r.pasid_valid else 0,
                r.grpid,
                int(r.code),
                1 if r.pasid_valid else 0,
                0,
            )
            for r in responses
        )
