"""What the virtio-iommu driver prints about faults, read back (real-world-formats §2.7).

``viommu_fault_handler`` prints ``"%s fault from EP %u at %#llx [%s%s%s]"`` (reason ``unknown``,
``domain`` or ``page``; R/W/X letters, ``[]`` for none) when the fault carries an address, and
``"%s fault from EP %u"`` when it does not. The reason words map to this plugin's
:class:`~ioasid_virtio_iommu.faults.FaultReason` codes. No page-request output exists upstream.
The PASID RFC (Vivek Gautam, "[PATCH RFC v1 15/15] iommu/virtio: Update fault type and reason
info for viommu fault", Jan 2021) printed ``"%s fault from EP %u PASID %u at %#llx
[%s%s%s]"``: its PASID is read; its new reason words (``pte fetch``, ``permission``, ...) have
no code in the spec, so such a line is unrecognised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from ioasid_core.plugin import (
    MORE,
    LogFormat,
    LogItem,
    LogLine,
    LogRecord,
    ParseResult,
    Unrecognised,
    access_letters,
)
from ioasid_virtio_iommu.faults import FaultReason

__all__ = ["VIRTIO_LOG_FORMAT", "VirtioLogParser"]

VENDOR: Final = "virtio-iommu"

_MARK: Final = " fault from EP "
_TAIL: Final = re.compile(
    r"(?P<ep>\d{1,20})(?: PASID (?P<pasid>\d{1,10}))?"
    r"(?: at (?P<addr>0x[0-9a-fA-F]+|0) \[(?P<flags>[RWX]*)\])?\s*$"
)
"""What follows the words ``fault from EP``; the reason word and unit come before them."""
_WORDS: Final = {
    "unknown": int(FaultReason.UNKNOWN),
    "domain": int(FaultReason.DOMAIN),
    "page": int(FaultReason.MAPPING),
}


def _access(flags: str) -> str:
    return access_letters(read="R" in flags, write="W" in flags, execute="X" in flags)


_ACCESS: Final = {flags: _access(flags) for flags in ("", "R", "W", "X", "RW", "RX", "WX", "RWX")}


class VirtioLogParser:
    """Stateless: one line, one record."""

    held_from: int | None = None

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        body = line.body
        at = body.find(_MARK)
        if at < 0:
            return None
        head = body[:at].split()
        word = head[-1] if head else ""
        match = _TAIL.match(body, at + len(_MARK))
        if match is None or word not in _WORDS:
            if not final:
                return MORE  # wrapped
            return [Unrecognised(line.number, line.text, "a cut virtio-iommu fault")]
        if not final and body.rstrip().endswith(" at"):
            return MORE
        unit = head[-2][:-1] if len(head) >= 2 and head[-2].endswith(":") else None
        ep, pasid, addr, flags = match.groups()
        return [
            LogRecord(
                VENDOR,
                "fault",
                line.number,
                line.timestamp,
                unit,
                None,
                int(ep),
                None if pasid is None else int(pasid),
                None if addr is None else int(addr, 16) if addr != "0" else 0,
                None if flags is None else _ACCESS.get(flags) or _access(flags),
                _WORDS[word],
                word,
            )
        ]

    def expire(self, before: int) -> Sequence[LogItem]:
        return []

    def close(self) -> Sequence[LogItem]:
        return []


VIRTIO_LOG_FORMAT: Final = LogFormat(
    vendor=VENDOR,
    triggers=("fault from EP",),
    new_parser=VirtioLogParser,
    ratelimited=("viommu_fault_handler",),
    examples=(
        "[   32.951225] virtio_iommu virtio0: unknown fault from EP 32 at 0x103231000 []",
        "[   32.951702] virtio_iommu virtio0: page fault from EP 32 at 0x103231000 [RW]",
    ),
    description="virtio-iommu fault reports",
)
