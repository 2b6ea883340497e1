"""The kernel IOMMU layer's own fault trace, read back: the ``iommu:io_page_fault`` tracepoint.

Facts (include/trace/events/iommu.h, drivers/iommu/iommu.c, include/linux/iommu.h):

- ``report_iommu_fault(domain, dev, iova, flags)`` fires it for an unrecoverable fault an
  IOMMU driver hands to the IOMMU layer (never for a page request); its ``TP_printk`` is
  ``"IOMMU:%s %s iova=0x%016llx flags=0x%04x"``: ``dev_driver_string(dev)`` (the bound
  driver's name, else the bus's: ``pci`` for an unbound PCI device, else ``""``, which
  prints ``IOMMU: <device>``), ``dev_name(dev)``, the IOVA (always 16 digits), the flags.
- ``dev`` is whatever the driver passes, so neither string names the IOMMU's vendor: AMD-Vi
  passes the faulting PCI device (``IOMMU:amdgpu 0000:03:00.0 ...``; a November 2025 patch
  removes that call as dead code); the Rockchip, sun50i, MediaTek and Verisilicon drivers
  pass the IOMMU's own platform device (``IOMMU:rk_iommu ff8f3f00.iommu ...``); Arm SMMU v2
  passed NULL, so enabling the tracepoint crashed on its faults until a 2026 fix passed
  ``smmu->dev``.
- ``flags`` is ``IOMMU_FAULT_READ`` 0x0 or ``IOMMU_FAULT_WRITE`` 0x1 for most drivers; some
  (Verisilicon) pass their own interrupt status word instead.

The record: vendor :data:`VENDOR` (the IOMMU layer, not a hardware vendor), kind ``fault``;
``device`` as ``SSSS:BB:DD.F`` with its source ID when the name is a PCI address, else the
name as printed; ``access`` ``r``/``w`` from flags 0x0/0x1 and ``None`` for any other word;
``code`` the flags word as printed; ``reason`` ``io_page_fault (<driver string>)``; no unit,
no PASID. The line is found wherever ``io_page_fault:`` stands (ftrace ``trace`` and
``trace_pipe``, ``trace-cmd report``, ``perf script``'s ``iommu:io_page_fault:``); one that
holds it but cannot be read whole (cut, ``iova=0x...`` redacted) is unrecognised.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Final

from ioasid_core.logs.format import MORE, LogFormat, LogItem, ParseResult
from ioasid_core.logs.normalise import LogLine
from ioasid_core.logs.record import LogRecord, Unrecognised, pci_device

__all__ = ["IO_PAGE_FAULT_FORMAT", "VENDOR", "IoPageFaultParser"]

VENDOR: Final = "iommu-core"
TRIGGER: Final = "io_page_fault:"
FAULT_READ: Final = 0x0
FAULT_WRITE: Final = 0x1

_HEX16: Final = "[0-9a-fA-F]{16}"
_FIELDS: Final = re.compile(
    rf"\s*IOMMU:(?P<driver>\S*) (?P<device>\S+) iova=0x(?P<iova>{_HEX16})"
    r" flags=0x(?P<flags>[0-9a-fA-F]{4,8})(?![0-9a-zA-Z])"
)
"""What follows ``io_page_fault:``. ``%04x`` of an int: 4 digits at least, 8 at most."""


def _beginnings(*atoms: str) -> re.Pattern[str]:
    """Any beginning of the sequence of expressions ``atoms`` that ends the text: a record
    cut short (a wrapped paste) rather than one that says something else."""
    pattern = ""
    for atom in reversed(atoms):
        pattern = f"(?:{atom}{pattern})?"
    return re.compile(rf"\s*{pattern}\s*$")


_CUT: Final = _beginnings(
    *map(re.escape, "IOMMU:"),
    r"\S*",
    " ",
    r"\S+",
    *map(re.escape, " iova=0x"),
    "[0-9a-fA-F]{0,16}",
    *map(re.escape, " flags=0x"),
    "[0-9a-fA-F]{0,3}",
)
_PCI_NAME: Final = re.compile(
    r"(?P<seg>[0-9a-f]{4,8}):(?P<bus>[0-9a-f]{2}):(?P<dev>[0-9a-f]{2})\.(?P<fn>[0-7])"
)
"""``pci_name()``: ``%04x:%02x:%02x.%d`` (a VMD domain from 0x10000 prints 5 digits)."""
_ACCESS: Final = {FAULT_READ: "r", FAULT_WRITE: "w"}


@functools.lru_cache(maxsize=1024)
def device_of(name: str) -> tuple[str, int | None]:
    """``(device, source ID)`` of a printed device name: a PCI address as ``SSSS:BB:DD.F``
    with its requester ID; any other name as printed, without one. Cached: a storm repeats
    its devices."""
    match = _PCI_NAME.fullmatch(name)
    if match is None:
        return name, None
    seg, bus, dev, fn = (int(part, 16) for part in match.groups())
    try:
        if seg > 0xFFFF:  # wider than the PCI segment the record's form has: kept as printed
            return name, pci_device(0, bus, dev, fn)[1]
        return pci_device(seg, bus, dev, fn)
    except ValueError:  # a device number past 0x1f: a name that only looks like one
        return name, None


class IoPageFaultParser:
    """Stateless: one line, one record."""

    held_from: int | None = None

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        body = line.body
        at = body.find(TRIGGER)
        if at < 0:
            return None
        rest = body[at + len(TRIGGER) :]
        match = _FIELDS.match(rest)
        if match is None:
            if not final and _CUT.match(rest):
                return MORE  # wrapped: the next line may hold the rest
            why = "an io_page_fault trace line cut short or with an unreadable field"
            return [Unrecognised(line.number, line.text, why)]
        driver, name, iova, flags_text = match.groups()
        device, source_id = device_of(name)
        flags = int(flags_text, 16)
        return [
            LogRecord(
                VENDOR,
                "fault",
                line.number,
                line.timestamp,
                None,
                device,
                source_id,
                None,
                int(iova, 16),
                _ACCESS.get(flags),
                flags,
                f"io_page_fault ({driver})" if driver else "io_page_fault",
            )
        ]

    def expire(self, before: int) -> Sequence[LogItem]:
        return []

    def close(self) -> Sequence[LogItem]:
        return []


IO_PAGE_FAULT_FORMAT: Final = LogFormat(
    vendor=VENDOR,
    triggers=(TRIGGER,),
    new_parser=IoPageFaultParser,
    examples=(
        "     irq/35-AMD-Vi-142     [002] d.h1.  262.094622: io_page_fault: "
        "IOMMU:amdgpu 0000:03:00.0 iova=0x0000000064a7f000 flags=0x0001",
        "   kworker/0:2-91    [000]  4352.246463: io_page_fault:        "
        "IOMMU:rk_iommu ff8f3f00.iommu iova=0x00000000fe210000 flags=0x0000",
    ),
    description="the IOMMU layer's io_page_fault tracepoint (report_iommu_fault)",
)
"""Registered by the core for every run (:mod:`ioasid_core.logs.core_formats`): the
tracepoint belongs to no vendor's driver."""
