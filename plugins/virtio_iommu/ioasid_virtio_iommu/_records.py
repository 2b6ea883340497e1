"""Byte-addressed virtio records on top of :class:`ioasid_core.plugin.BitLayout`.

virtio structures are packed little-endian fields of 1, 2, 4 or 8 bytes, each naturally aligned,
so every field is a bit range of one 64-bit little-endian word and a ``BitLayout`` can decode it.
This module declares the fields by byte offset, as the virtio headers print them, and declares
the reserved bytes as fields too: that way a non-zero reserved byte is reported with its byte
offset ("reserved bytes 1..3 (record byte 1): must be zero"), not as a bit range of a word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ioasid_core.plugin import BitField, BitLayout, Buffer, DecodeError

__all__ = ["Record"]


class Record:
    """A packed little-endian record: ``(name, byte offset, size)`` per field, covering it all.

    Value fields are naturally aligned (as virtio's are); a reserved run may have any length
    that stays inside one 8-byte word. Fields whose name starts with ``reserved`` must be zero
    on decode (and are zero on encode).
    """

    def __init__(self, name: str, size: int, fields: Iterable[tuple[str, int, int]]) -> None:
        self.name = name
        self.size = size
        self.offsets: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        bits: list[BitField] = []
        covered = 0
        for field, offset, width in fields:
            aligned = width in (1, 2, 4, 8) and offset % width == 0
            one_word = width > 0 and offset // 8 == (offset + width - 1) // 8
            if not one_word or not (aligned or field.startswith("reserved")):
                raise ValueError(f"{name}: {field} ({width} bytes at {offset}) is not aligned")
            if offset != covered:
                raise ValueError(f"{name}: {field} at {offset}, expected {covered} (gap/overlap)")
            covered += width
            self.offsets[field] = offset
            self.sizes[field] = width
            lo = (offset % 8) * 8
            bits.append(BitField(field, offset // 8, lo, lo + width * 8 - 1))
        if covered != size:
            raise ValueError(f"{name}: fields cover {covered} bytes, not {size}")
        self.layout = BitLayout(name, size, bits)
        self.reserved: tuple[str, ...] = tuple(f for f in self.offsets if f.startswith("reserved"))

    def error(self, base: int, field: str, what: str) -> DecodeError:
        """A decode error naming ``field`` and its absolute byte offset (record at ``base``)."""
        rel = self.offsets[field]
        return DecodeError(self.name, f"{field} (record byte {rel}): {what}", offset=base + rel)

    def decode(self, data: Buffer, offset: int = 0) -> dict[str, int]:
        """Every field's value; short buffers and non-zero reserved bytes are refused."""
        values = self.layout.decode(data, offset)
        for field in self.reserved:
            if values[field]:
                width = self.sizes[field] * 2
                raise self.error(offset, field, f"must be zero, is {values[field]:#0{width + 2}x}")
        return values

    def encode(self, values: Mapping[str, int]) -> bytes:
        """The record's bytes (reserved bytes zero); a value too wide for its field is refused."""
        return self.layout.encode(values)
