"""What ``ioasid logs`` reads out of a log: records, lines it could not read whole, and the
small helpers every vendor's parser needs to fill a record the same way.

A :class:`LogRecord` has every key of the ``--json`` contract, always present: ``None`` where
the log does not carry the value. Vendors build them; the core only counts, prints and replays.
"""

from __future__ import annotations

import functools
from typing import Final, NamedTuple

__all__ = [
    "KINDS",
    "LogRecord",
    "Unrecognised",
    "access_letters",
    "pci_device",
]

KINDS: Final = frozenset({"fault", "event", "page_request", "message"})
"""``fault``: an unrecoverable translation fault; ``event``: any other queue event (e.g. an
SMMUv3 C_BAD_STE); ``page_request``: a recoverable request (VT-d PRQ descriptor or
prq_report, SMMUv3 stall, AMD PPR); ``message``: a driver message about page requests or its
queues that carries no record (a PRQ or event queue overflow, a command queue timeout)."""


class LogRecord(NamedTuple):
    """One record read from a log, in the ``--json`` shape (see the README's ``ioasid logs``).

    ``line`` is 1-based, the record's first line; ``timestamp`` as printed, without brackets;
    ``device`` as printed (a PCI address as ``SSSS:BB:DD.F``); ``address`` a byte address;
    ``access`` letters in the order r, w, x, p (``""`` when the log prints no flag set);
    ``raw`` the hardware queue entry as lowercase little-endian hex, when the log prints the
    whole entry (then every other field came from the vendor's own binary decoder).
    ``kind`` is one of :data:`KINDS` (the reader refuses a record with another). A named
    tuple, immutable and cheap: a log of a million faults builds a million of them.
    """

    vendor: str
    kind: str
    line: int
    timestamp: str | None = None
    unit: str | None = None
    device: str | None = None
    source_id: int | None = None
    pasid: int | None = None
    address: int | None = None
    access: str | None = None
    code: int | None = None
    reason: str | None = None
    stall: bool | None = None
    tag: int | None = None
    raw: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON object, keys in contract order."""
        return self._asdict()


class Unrecognised(NamedTuple):
    """A line that looks like a vendor's IOMMU record but cannot be read whole (cut dwords, a
    redacted value). ``line``/``text`` go to JSON; ``why`` is said on the terminal."""

    line: int
    text: str
    why: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "text": self.text}


@functools.lru_cache(maxsize=4096)
def pci_device(segment: int | None, bus: int, dev: int, fn: int) -> tuple[str, int]:
    """``("SSSS:BB:DD.F", bus << 8 | dev << 3 | fn)``; segment 0000 when not printed.
    Cached: a storm repeats a few devices.

    ``ValueError`` when a part does not fit a PCI address (bus 8 bits, device 5, function 3).
    """
    seg = 0 if segment is None else segment
    if not (0 <= seg <= 0xFFFF and 0 <= bus <= 0xFF and 0 <= dev <= 0x1F and 0 <= fn <= 7):
        raise ValueError(f"{seg:x}:{bus:x}:{dev:x}.{fn:x} is not a PCI address")
    return f"{seg:04x}:{bus:02x}:{dev:02x}.{fn:x}", bus << 8 | dev << 3 | fn


def access_letters(*, read: bool, write: bool, execute: bool = False, priv: bool = False) -> str:
    """The ``access`` field: the letters of the set flags in the order r, w, x, p."""
    return (
        ("r" if read else "")
        + ("w" if write else "")
        + ("x" if execute else "")
        + ("p" if priv else "")
    )
