"""A vendor-neutral reference codec: a plugin author's starting point, and the test vendor.

Entry (24 bytes, little-endian): u32 device, u32 pasid, u16 group index, u16 flags,
u32 reserved (zero), u64 address. Flags: PASID_VALID b0, LAST b1, NEEDS_PASID b2, READ b3,
WRITE b4, EXEC b5, PRIV b6; the other bits are reserved. Response (16 bytes): u32 device,
u32 pasid, u16 group index, u8 code, u8 flags (PASID_VALID b0), u32 reserved.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ioasid_core.bits import Buffer, DecodeError, EncodeError, byte_view
from ioasid_core.platform import AddressSpace
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import Perm, RequestRow, ResponseRow
from ioasid_core.prq.vendor import RowCheck, RowVendorMixin

__all__ = ["GenericPrq"]

_ENTRY = struct.Struct("<IIHHIQ")
_RESPONSE = struct.Struct("<IIHBBI")
_PASID_VALID, _LAST, _NEEDS_PASID = 1, 2, 4
_PERM_SHIFT = 3
_KNOWN_FLAGS = 0x7F


_PERMS = tuple(Perm(bits) for bits in range(16))


def _check_request(row: RequestRow) -> None:
    device, pasid, valid, grpid, _last, perm, addr, _needs, _private = row
    for field, value, bits in (
        ("device", device, 32),
        ("pasid", pasid if valid else 0, 32),
        ("grpid", grpid, 16),
        ("perm", int(perm), 4),
        ("addr", addr, 64),
    ):
        if not 0 <= value < 1 << bits:
            raise EncodeError(f"generic page request: {field}={value:#x} does not fit {bits} bits")


class GenericPrq(RowVendorMixin):
    """The reference vendor ("generic"): global lookup by default, no extra checks.

    Written on rows (:class:`~ioasid_core.prq.vendor.RowCodec`); the object methods come
    from the mixin. A new vendor may write the four object methods instead and skip rows.
    """

    name = "generic"
    entry_size = _ENTRY.size
    expected: type | tuple[type, ...] = AddressSpace
    row_check: RowCheck | None = None
    """No checks of its own: the pipeline makes no call per request for them."""

    def __init__(self, default_policy: LookupPolicy = LookupPolicy.GLOBAL) -> None:
        self.default_policy = default_policy

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        pack = _ENTRY.pack
        out: list[bytes] = []
        append = out.append
        for row in rows:
            device, pasid, valid, grpid, last, perm, addr, needs, _private = row
            flags = valid | last << 1 | needs << 2 | perm << _PERM_SHIFT
            try:
                append(pack(device, pasid if valid else 0, grpid, flags, 0, addr))
            except struct.error:
                _check_request(row)
                raise  # pragma: no cover - _check_request names the field
            if perm >> 4:
                _check_request(row)
        return b"".join(out)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        data = byte_view(data)
        if len(data) % _ENTRY.size:
            raise DecodeError(
                "generic page request",
                f"{len(data)} bytes is not a whole number of {_ENTRY.size}-byte entries",
            )
        perms = _PERMS
        rows: list[RequestRow] = [
            (
                device,
                pasid if (valid := flags & _PASID_VALID != 0) else 0xFFFFFFFF,
                valid,
                grpid,
                flags & _LAST != 0,
                perms[flags >> _PERM_SHIFT & 0xF],
                addr,
                flags & _NEEDS_PASID != 0,
                None,
            )
            for device, pasid, grpid, flags, reserved, addr in _ENTRY.iter_unpack(data)
            if not (flags & ~_KNOWN_FLAGS or reserved or (pasid and not flags & _PASID_VALID))
        ]
        if len(rows) * _ENTRY.size != len(data):
            _raise_first_bad(data)
        return rows

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        pack = _RESPONSE.pack
        return b"".join(
            [
                pack(device, pasid if valid else 0, grpid, code, valid, 0)
                for device, grpid, code, pasid, valid, _private, _last in rows
            ]
        )


def _raise_first_bad(data: Buffer) -> None:
    for index, (_device, pasid, _grpid, flags, reserved, _addr) in enumerate(
        _ENTRY.iter_unpack(data)
    ):
        if flags & ~_KNOWN_FLAGS or reserved:
            raise DecodeError(
                "generic page request",
                f"reserved bits set (flags {flags:#06x}, reserved {reserved:#x})",
                offset=index * _ENTRY.size,
            )
        if pasid and not flags & _PASID_VALID:
            raise DecodeError(
                "generic page request",
                f"PASID {pasid:#x} given without PASID_VALID",
                offset=index * _ENTRY.size,
            )
