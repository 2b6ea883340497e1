"""PROBE properties, the virtio-iommu ``IommuUnit``, and ATTACH_TABLE as a model operation.

Property list layout (little-endian; offsets relative to each property)::

     0  le16  type     bits 11:0 the property type, bits 15:12 reserved (zero)
     2  le16  length   of the value in bytes, the 4-byte head excluded
     4  u8[length] value

Properties follow each other with no padding from the start of the PROBE request's property
area. The list ends at a head whose type is NONE (0) or at the end of the area; everything after
the end must be zero (the device zero-fills what it does not use), and so must a tail too short
to hold a head. The head, NONE and the 12-bit type come from the merged header (they appear as
context in the RFC patch; the facts file lists only the RFC's types, §5).

PASID_SIZE (type 5, RFC): ``u8 bits; u8 reserved[3]`` (length 4), the width of the endpoint's
PASIDs. Accepted up to 32 bits (the width of every PASID field); :func:`virtio_iommu_unit`
clamps to the 20 bits the core allows, as drivers take the minimum with ``PASID_MAX`` (§7).
Other property types are kept as :class:`RawProperty` (their value bytes) so that a list
round-trips; unknown ones are not errors, a driver skips them.

PROBE is per endpoint, so each endpoint may advertise its own width. ATTACH_TABLE hands a
guest-owned PASID table to the device for one endpoint; :class:`GuestPasidTable` models what
that means for PASIDs: the guest allocates them from its own space. The virtio-iommu plugin
registers no custom allocator (unlike VT-d's virtual command interface, where the host hands
out guest PASIDs), so the guest space's allocator picks the numbers: lowest free first, with the
default allocator.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from ioasid_core.plugin import (
    MAX_PASID_BITS,
    Buffer,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    IoasidSet,
    IoasidSpace,
    IommuUnit,
    SetType,
)
from ioasid_virtio_iommu._records import Record

__all__ = [
    "PASID_SIZE_PROPERTY",
    "TYPE_MASK",
    "VENDOR",
    "GuestPasidTable",
    "PasidSize",
    "ProbeProperty",
    "PropertyType",
    "RawProperty",
    "decode_properties",
    "encode_properties",
    "pasid_size",
    "virtio_iommu_unit",
]

VENDOR: Final = "virtio-iommu"
TYPE_MASK: Final = 0xFFF
"""The property type is the low 12 bits of the head's first le16; bits 15:12 are reserved."""
PASID_BITS_MAX: Final = 32
"""The widest PASID_SIZE accepted: every PASID field of virtio-iommu is a le32."""
_HEAD = struct.Struct("<HH")
_LIST = "virtio-iommu probe properties"


class PropertyType(enum.IntEnum):
    """Probe property types. NONE and RESV_MEM are merged; 2-7 are the vSVA RFC's (§5)."""

    NONE = 0
    """Ends the list."""
    RESV_MEM = 1
    PAGE_SIZE_MASK = 2
    INPUT_RANGE = 3
    OUTPUT_SIZE = 4
    PASID_SIZE = 5
    PAGE_TABLE_FMT = 6
    PASID_TABLE_FMT = 7
    """The reviewer suggested merging 6 and 7 into one table-format property."""


PASID_SIZE_PROPERTY = Record(
    "virtio-iommu PASID_SIZE property",
    8,
    [("type", 0, 2), ("length", 2, 2), ("bits", 4, 1), ("reserved bytes 5..7", 5, 3)],
)


def _pasid_bits(instance: object, attribute: object, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= PASID_BITS_MAX:
        raise InvalidArgumentError(f"PASID_SIZE bits={value!r}: must be 0..{PASID_BITS_MAX}")


@attrs.frozen
class PasidSize:
    """PASID_SIZE: the endpoint's PASIDs have ``bits`` bits."""

    bits: int = attrs.field(validator=_pasid_bits)


def _raw_type(instance: object, attribute: object, value: int) -> None:
    if not 0 < value <= TYPE_MASK or value == PropertyType.PASID_SIZE:
        raise InvalidArgumentError(
            f"raw probe property type {value}: must be 1..{TYPE_MASK:#x}, and PASID_SIZE (5) "
            "is a PasidSize"
        )


def _raw_value(instance: object, attribute: object, value: bytes) -> None:
    if len(value) > 0xFFFF:
        raise InvalidArgumentError(f"probe property value of {len(value)} bytes: max 65535")


@attrs.frozen
class RawProperty:
    """A property this model does not interpret: its type and value bytes, kept as they are."""

    type: int = attrs.field(validator=_raw_type)
    value: bytes = attrs.field(converter=bytes, validator=_raw_value)


ProbeProperty = PasidSize | RawProperty


def decode_properties(data: Buffer) -> list[ProbeProperty]:
    """The properties of a PROBE request's property area (all of ``data``)."""
    view = memoryview(data).cast("B")
    size = len(view)
    out: list[ProbeProperty] = []
    seen_pasid: int | None = None
    pos = 0
    while pos < size:
        if size - pos < _HEAD.size:
            if any(view[pos:]):
                raise DecodeError(
                    _LIST,
                    f"{size - pos} trailing bytes cannot hold a property head and are not zero",
                    offset=pos,
                )
            break
        word, length = _HEAD.unpack_from(view, pos)
        if word & ~TYPE_MASK:
            raise DecodeError(
                _LIST,
                f"type (property byte 0): reserved bits 15:12 must be zero, type word is "
                f"{word:#06x}",
                offset=pos,
            )
        if word == PropertyType.NONE:
            if any(view[pos:]):
                raise DecodeError(
                    _LIST, "bytes after the end of the list (a NONE head) must be zero", offset=pos
                )
            break
        end = pos + _HEAD.size + length
        if end > size:
            raise DecodeError(
                _LIST,
                f"length (property byte 2): type {word} value of {length} bytes overruns the "
                f"area ({size - pos - _HEAD.size} bytes left)",
                offset=pos + 2,
            )
        if word == PropertyType.PASID_SIZE:
            if seen_pasid is not None:
                raise DecodeError(
                    _LIST,
                    f"PASID_SIZE given twice (first at byte offset {seen_pasid:#x})",
                    offset=pos,
                )
            seen_pasid = pos
            if length != 4:
                raise PASID_SIZE_PROPERTY.error(pos, "length", f"is {length}, PASID_SIZE has 4")
            values = PASID_SIZE_PROPERTY.decode(view, pos)
            if values["bits"] > PASID_BITS_MAX:
                raise PASID_SIZE_PROPERTY.error(
                    pos, "bits", f"{values['bits']} is more than {PASID_BITS_MAX}"
                )
            out.append(PasidSize(values["bits"]))
        else:
            out.append(RawProperty(word, bytes(view[pos + _HEAD.size : end])))
        pos = end
    return out


def encode_properties(properties: Iterable[ProbeProperty], size: int | None = None) -> bytes:
    """The property area for ``properties``, zero-padded to ``size`` bytes if given.

    The zero padding reads as a NONE head, which ends the list.
    """
    parts: list[bytes] = []
    for prop in properties:
        if isinstance(prop, PasidSize):
            parts.append(
                PASID_SIZE_PROPERTY.encode(
                    {"type": int(PropertyType.PASID_SIZE), "length": 4, "bits": prop.bits}
                )
            )
        else:
            parts.append(_HEAD.pack(prop.type, len(prop.value)) + prop.value)
    raw = b"".join(parts)
    if size is None:
        return raw
    if len(raw) > size:
        raise EncodeError(f"{_LIST}: {len(raw)} bytes do not fit a {size}-byte area")
    return raw + bytes(size - len(raw))


def pasid_size(properties: Iterable[ProbeProperty]) -> int | None:
    """The endpoint's PASID width, or None if it advertised none (no PASID support)."""
    widths = [p.bits for p in properties if isinstance(p, PasidSize)]
    if len(widths) > 1:
        raise InvalidArgumentError(f"PASID_SIZE given {len(widths)} times: {widths}")
    return widths[0] if widths else None


def virtio_iommu_unit(name: str, probes: Mapping[int, Sequence[ProbeProperty]]) -> IommuUnit:
    """The unit for a virtio-iommu device whose endpoints answered PROBE with ``probes``.

    ``pasid_bits`` is the widest any endpoint advertises, clamped to 20 (what the unit can do;
    each endpoint's own width still bounds its table, see :class:`GuestPasidTable`). ``caps``:
    ``pasid_size`` (that width before clamping, 0 if none), ``endpoints`` (how many were
    probed), ``pasid_endpoints`` (how many advertise PASID_SIZE).

    :param probes: endpoint ID -> the properties its PROBE returned.
    """
    widths = [w for w in (pasid_size(props) for props in probes.values()) if w is not None]
    widest = max(widths, default=0)
    return IommuUnit(
        name=name,
        vendor=VENDOR,
        pasid_bits=min(widest, MAX_PASID_BITS),
        caps={"pasid_size": widest, "endpoints": len(probes), "pasid_endpoints": len(widths)},
    )


class GuestPasidTable:
    """A guest's PASID table attached to one endpoint (ATTACH_TABLE), as a model.

    The guest owns the PASID space: its PASIDs come from the guest's own ``IoasidSpace``,
    through a set that this table owns, within ``[1, 2**pasid_bits - 1]``. PASID 0 is kept
    for DMA without a PASID (the RFC's table is an Arm SMMUv3 context descriptor table, where
    substream 0 is reserved, §7). ``pasid_bits`` plays the role of the descriptor's
    ``s1cdmax``; it may not exceed what the endpoint's PROBE advertised.
    """

    def __init__(
        self,
        space: IoasidSpace,
        endpoint: int,
        properties: Sequence[ProbeProperty],
        *,
        pasid_bits: int | None = None,
        quota: int | None = None,
    ) -> None:
        advertised = pasid_size(properties)
        if advertised is None:
            raise InvalidArgumentError(
                f"endpoint {endpoint}: PROBE advertised no PASID_SIZE, so it takes no PASID table"
            )
        bits = advertised if pasid_bits is None else pasid_bits
        if not 1 <= bits <= min(advertised, MAX_PASID_BITS):
            raise InvalidArgumentError(
                f"endpoint {endpoint}: a {bits}-bit PASID table, but PASID_SIZE is {advertised} "
                f"(and at most {MAX_PASID_BITS}); need 1..{min(advertised, MAX_PASID_BITS)}"
            )
        top = min((1 << bits) - 1, space.capacity - 1)
        if top < 1:
            raise InvalidArgumentError(
                f"endpoint {endpoint}: the guest space (capacity {space.capacity}) has no "
                "PASID above 0"
            )
        self.space = space
        self.endpoint = endpoint
        self.pasid_bits = bits
        self.max_pasid = top
        self.set: IoasidSet = space.create_set(None, quota=quota, type=SetType.NULL)
        self._attached = True

    @property
    def attached(self) -> bool:
        return self._attached

    def _check_attached(self, what: str) -> None:
        if not self._attached:
            raise InvalidArgumentError(
                f"{what}: the PASID table of endpoint {self.endpoint} is detached"
            )

    def alloc(self, private: object = None) -> int:
        """A new guest PASID for this endpoint (lowest free one, with the default allocator)."""
        self._check_attached("alloc")
        return self.space.alloc(self.set, 1, self.max_pasid, private)

    def free(self, pasid: int) -> None:
        """Give back a PASID of this table (the space refuses another set's)."""
        self._check_attached("free")
        self.space.free(self.set, pasid)

    def find(self, pasid: int) -> object | None:
        """The private data of one of this table's PASIDs."""
        return self.space.find(self.set, pasid)

    def pasids(self) -> list[int]:
        """This table's live PASIDs, sorted."""
        return self.set.ioasids()

    def detach(self) -> int:
        """Detach the table: free all its PASIDs and its set. Returns how many were freed."""
        self._check_attached("detach")
        freed = self.space.free_all(self.set)
        self.space.free_set(self.set)
        self._attached = False
        return freed
