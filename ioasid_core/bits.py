"""Bit-exact layouts of little-endian hardware records, declared as the specs print them.

A :class:`BitLayout` is a list of fields, each ``(name, word, lo, hi)``: bits ``hi:lo``
(inclusive) of 64-bit little-endian word ``word``. Every bit that no field covers is reserved
and must be zero on decode; :meth:`BitLayout.decode` says which field (or reserved range) of
which record at which byte offset is wrong. Bits the hardware may set but software ignores are
declared as named fields (so they are not reserved) and simply not used; allowed values of a
field are the caller's to check.

Decoding is compiled once into shifts and masks over a single ``struct.unpack_from``, so a
vendor's batch decoder can afford it per queue entry.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence

import attrs

from ioasid_core.errors import InvalidArgumentError

__all__ = [
    "BitField",
    "BitLayout",
    "Buffer",
    "DecodeError",
    "EncodeError",
    "byte_view",
    "columns_allowed",
]

Buffer = bytes | bytearray | memoryview


def columns_allowed(
    data: bytes | bytearray, record_size: int, columns: tuple[tuple[int, bytes], ...]
) -> bool:
    """Whether every record of ``data`` (whole records of ``record_size`` bytes) holds only
    allowed values in each ``(byte index, allowed values)`` column.

    A decoder's bulk check of reserved or fixed bits: one strided slice per column, then
    ``translate`` deleting the allowed values (anything left is a bad byte), all in C. When
    it answers False the decoder walks record by record to name the first bad one. A loop,
    not ``any()`` of a generator: cheaper for a handful of columns.
    """
    for index, allowed in columns:  # noqa: SIM110 (a loop: see above)
        if data[index::record_size].translate(None, allowed):
            return False
    return True


def byte_view(data: Buffer) -> Buffer:
    """``data`` as a buffer whose ``len()`` and slices count bytes, for decoders.

    A memoryview counts items: a ring mapped as 64-bit words (``memoryview(buf).cast("Q")``)
    has ``len()`` 9 for 72 bytes. Such a view is cast to bytes (no copy); one that is not
    contiguous (a strided slice) is copied, since ``struct`` cannot read it. Bytes and
    bytearrays are returned as they are, so this costs two comparisons on the common path.
    """
    cls = data.__class__
    if cls is bytes or cls is bytearray:
        return data
    view = memoryview(data)
    if not view.c_contiguous:
        return view.tobytes()
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class DecodeError(InvalidArgumentError):
    """Raw bytes that are not a valid record: names the layout, the field and the offset."""

    def __init__(self, layout: str, what: str, *, offset: int | None = None) -> None:
        where = f" at byte offset {offset:#x}" if offset is not None else ""
        super().__init__(f"{layout}{where}: {what}")
        self.layout = layout
        self.offset = offset
        self.what = what
        """The problem alone, without the layout and offset."""


class EncodeError(InvalidArgumentError):
    """A value that does not fit its field."""


@attrs.frozen
class BitField:
    """Bits ``hi:lo`` (inclusive) of 64-bit word ``word``."""

    name: str
    word: int
    lo: int
    hi: int

    def __attrs_post_init__(self) -> None:
        if not (0 <= self.lo <= self.hi < 64) or self.word < 0:
            raise ValueError(f"field {self.name}: bits {self.hi}:{self.lo} of word {self.word}")

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def mask(self) -> int:
        """The field's value mask (unshifted)."""
        return (1 << self.width) - 1


def _ranges(mask: int) -> list[tuple[int, int]]:
    """The runs of set bits of ``mask`` as (lo, hi) pairs."""
    runs: list[tuple[int, int]] = []
    bit = 0
    while mask >> bit:
        if mask >> bit & 1:
            start = bit
            while mask >> bit & 1:
                bit += 1
            runs.append((start, bit - 1))
        else:
            bit += 1
    return runs


class BitLayout:
    """A record of ``size`` bytes (a multiple of 8) made of 64-bit little-endian words."""

    def __init__(self, name: str, size: int, fields: Iterable[BitField]) -> None:
        if size <= 0 or size % 8:
            raise ValueError(f"{name}: size {size} is not a positive multiple of 8")
        self.name = name
        self.size = size
        self.words = size // 8
        self.fields: tuple[BitField, ...] = tuple(fields)
        self._struct = struct.Struct(f"<{self.words}Q")
        covered = [0] * self.words
        names: set[str] = set()
        for field in self.fields:
            if field.word >= self.words:
                raise ValueError(f"{name}: field {field.name} is in word {field.word}")
            bits = field.mask << field.lo
            if covered[field.word] & bits:
                raise ValueError(f"{name}: field {field.name} overlaps another field")
            if field.name in names:
                raise ValueError(f"{name}: field {field.name} declared twice")
            names.add(field.name)
            covered[field.word] |= bits
        full = (1 << 64) - 1
        self.reserved: tuple[int, ...] = tuple(full & ~c for c in covered)
        self.by_name: Mapping[str, BitField] = {f.name: f for f in self.fields}
        self._plan = tuple((f.name, f.word, f.lo, f.mask) for f in self.fields)

    def unpack_words(self, data: Buffer, offset: int = 0) -> tuple[int, ...]:
        """The record's words, with a clear error for a short buffer."""
        data = byte_view(data)
        if len(data) - offset < self.size or offset < 0:
            raise DecodeError(
                self.name,
                f"needs {self.size} bytes, only {max(len(data) - offset, 0)} left",
                offset=offset,
            )
        words: tuple[int, ...] = self._struct.unpack_from(data, offset)
        return words

    def check_reserved(self, words: Sequence[int], offset: int | None = None) -> None:
        """Raise :class:`DecodeError` naming the first reserved bits that are set."""
        for index, (value, reserved) in enumerate(zip(words, self.reserved, strict=True)):
            bad = value & reserved
            if bad:
                lo, hi = _ranges(bad)[0]
                bits = f"bit {lo}" if lo == hi else f"bits {hi}:{lo}"
                raise DecodeError(
                    self.name,
                    f"reserved {bits} of word {index} must be zero (word is {value:#018x})",
                    offset=offset,
                )

    def decode(self, data: Buffer, offset: int = 0) -> dict[str, int]:
        """Every field's value; reserved bits must be zero."""
        words = self.unpack_words(data, offset)
        self.check_reserved(words, offset)
        return {name: words[word] >> lo & mask for name, word, lo, mask in self._plan}

    def encode(self, values: Mapping[str, int]) -> bytes:
        """The record's bytes; a missing field is zero, an unknown or oversized one an error."""
        words = [0] * self.words
        for name, value in values.items():
            field = self.by_name.get(name)
            if field is None:
                raise EncodeError(f"{self.name}: no field named {name!r}")
            if not isinstance(value, int) or not 0 <= value <= field.mask:
                raise EncodeError(
                    f"{self.name}: {name}={value!r} does not fit {field.width} bits "
                    f"(0..{field.mask:#x})"
                )
            words[field.word] |= value << field.lo
        return self._struct.pack(*words)
