"""``logs_line_ratio``: reading a mixed real-style log, per line, over one compiled
``re.search`` per line in the same process (issue "Read what real machines print").

The log is every installed format's ``examples`` (so a third-party vendor's printer formats
are measured too), each followed by :data:`FOREIGN_PER_RECORD` ordinary kernel lines that
name no IOMMU: a fifth of the lines are IOMMU records, a log with a fault storm in it (a
boot log has far fewer; a paste of the storm alone, more: the figure grows with the share,
about 13 when every other line is a record).
Both sides read the same lines in chunks (``chunked_ratio``); the baseline is one compiled
``re.search`` per line for the installed vendors' words (their triggers and ``callbacks
suppressed``), the least any reader of these logs must do.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Final

from ioasid_core.bench import chunked_ratio
from ioasid_core.logs.format import LogFormat
from ioasid_core.logs.reader import LogReader, trie_pattern

__all__ = [
    "FOREIGN_LINES",
    "FOREIGN_PER_RECORD",
    "LIMIT",
    "baseline_pattern",
    "mixed_log",
    "run_logs_bench",
]

LIMIT: Final = 6.0
FOREIGN_PER_RECORD: Final = 4

FOREIGN_LINES: Final = (
    "[    1.473381] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
    "[   32.950723] nvme nvme0: I/O 192 (Read) QID 8 timeout, aborting",
    "[  262.094626] amdgpu 0000:03:00.0: amdgpu:   in page starting at address 0x0",
    "[  478.947552] hisi_zip 0000:31:00.0: qm_axi_rresp [error status=0x1] found",
    "[ 1016.398057] Modules linked in:",
    "[ 1016.514088]  iommu_report_device_fault+0x2c8/0x470 (P)",
    "[ 3265.471356] tegra-mc 8108020000.memory-controller: dispr: non-secure read",
    "[   14.698460] pci 0000:00:1f.3: Adding to iommu group 20",
)
"""Kernel lines that name no IOMMU record (taken from the real samples' surroundings)."""

_DRIVER_WORDS: Final = ("DMAR", "arm-smmu-v3", "AMD-Vi", "fault from EP", "prq_report")
"""The baseline's words when no vendor is installed."""


def baseline_pattern(formats: Sequence[LogFormat]) -> re.Pattern[str]:
    """One expression for every installed vendor's words: what any reader must search for."""
    words = {word for fmt in formats for word in fmt.triggers} or set(_DRIVER_WORDS)
    return re.compile(trie_pattern({*words, "callbacks suppressed"}))


def mixed_log(
    formats: Sequence[LogFormat], lines: int, foreign_per_record: int = FOREIGN_PER_RECORD
) -> list[str]:
    """``lines`` lines: the formats' examples in order, each followed by
    ``foreign_per_record`` foreign lines."""
    examples = [line for fmt in formats for line in fmt.examples] or list(FOREIGN_LINES)
    foreign = itertools.cycle(FOREIGN_LINES)
    records = itertools.cycle(examples)
    out: list[str] = []
    while len(out) < lines:
        out.append(next(records))
        out += itertools.islice(foreign, foreign_per_record)
    return out[:lines]


def _passes(log: list[str], run: Callable[[list[str]], None]) -> Callable[[], int]:
    def one() -> int:
        run(log)
        return len(log)

    return one


def run_logs_bench(formats: Sequence[LogFormat], *, quick: bool = False) -> dict[str, float]:
    """``logs_line_ratio`` for ``formats`` (every installed vendor's): whole passes over a
    log of 1,000 lines (a stream is read whole, its parsers keep their state), the best of
    many, interleaved with the baseline's passes over the same lines."""
    log = mixed_log(formats, 1_000)
    reader = LogReader(formats)

    def parse(lines: list[str]) -> None:
        for _ in reader.read(lines):
            pass

    search = baseline_pattern(formats).search

    def baseline(lines: list[str]) -> None:
        for line in lines:
            search(line)

    ratio = chunked_ratio(_passes(log, parse), _passes(log, baseline), 10 if quick else 200)
    return {"logs_line_ratio": round(ratio, 3)}
