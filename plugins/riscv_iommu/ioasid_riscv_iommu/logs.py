"""What the RISC-V IOMMU driver prints about fault-queue records, read back.

``dev_warn_ratelimited("Fault %d devid: 0x%x iotval: %llx iotval2: %llx")`` (cause, device
ID, iotval, iotval2: drivers/iommu/riscv/iommu.c, report only); the 2023 RFC printed the
device ID in decimal, and one variant added ``ttyp %d``. Text a modified kernel appends is
left alone. Causes (iommu-bits.h ``enum riscv_iommu_fq_causes``): below 256 an access or
page fault, whose iotval is the faulting address; from 256 the IOMMU's own errors.
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
)

__all__ = ["CAUSES", "RISCV_LOG_FORMAT", "RiscvLogParser"]

VENDOR: Final = "riscv-iommu"

CAUSES: Final = {
    1: "INST_FAULT",
    4: "RD_ADDR_MISALIGNED",
    5: "RD_FAULT",
    6: "WR_ADDR_MISALIGNED",
    7: "WR_FAULT",
    12: "INST_FAULT_S",
    13: "RD_FAULT_S",
    15: "WR_FAULT_S",
    20: "INST_FAULT_VS",
    21: "RD_FAULT_VS",
    23: "WR_FAULT_VS",
    256: "DMA_DISABLED",
    257: "DDT_LOAD_FAULT",
    258: "DDT_INVALID",
    259: "DDT_MISCONFIGURED",
    260: "TTYP_BLOCKED",
    261: "MSI_LOAD_FAULT",
    262: "MSI_INVALID",
    263: "MSI_MISCONFIGURED",
    264: "MRIF_FAULT",
    265: "PDT_LOAD_FAULT",
    266: "PDT_INVALID",
    267: "PDT_MISCONFIGURED",
    268: "DDT_CORRUPTED",
}
"""The fault-queue causes the spec names (others are printed by number only)."""
_ACCESS: Final = {1: "x", 12: "x", 20: "x", 4: "r", 5: "r", 13: "r", 21: "r", 6: "w"} | {
    7: "w",
    15: "w",
    23: "w",
}
"""The access a fault cause names: instruction fetch, read or write (AMO counts as write)."""
_FIRST_IOMMU_CAUSE: Final = 256

_MARK: Final = " devid: "
_FAULT: Final = re.compile(
    r"Fault (?P<cause>\d{1,20})(?:\s+ttyp:? (?P<ttyp>\d+))? "
    r"devid: (?P<devid>0x[0-9a-fA-F]+|\d{1,20})"
    r"\s+iotval: (?P<iotval>(?:0x)?[0-9a-fA-F]+)\s+iotval2: (?P<iotval2>(?:0x)?[0-9a-fA-F]+)"
    r"(?=\s|$)"
)


class RiscvLogParser:
    """Stateless: one line, one record."""

    held_from: int | None = None

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        body = line.body
        mark = body.find(_MARK)
        at = body.rfind("Fault ", 0, mark) if mark >= 0 else -1
        if at < 0:
            return None
        match = _FAULT.match(body, at)
        if match is None:
            if not final:
                return MORE
            return [Unrecognised(line.number, line.text, "a cut RISC-V IOMMU fault")]
        head = body[:at].split()
        unit = head[-1][:-1] if head and head[-1].endswith(":") else None
        cause = int(match.group("cause"))
        devid = match.group("devid")
        iotval = int(match.group("iotval").removeprefix("0x"), 16)
        faulted = cause < _FIRST_IOMMU_CAUSE
        return [
            LogRecord(
                VENDOR,
                "fault" if faulted else "event",
                line.number,
                line.timestamp,
                unit,
                None,
                int(devid, 16) if devid.startswith("0x") else int(devid),
                None,
                iotval if cause in _ACCESS else None,
                _ACCESS.get(cause),
                cause,
                CAUSES.get(cause),
            )
        ]

    def expire(self, before: int) -> Sequence[LogItem]:
        return []

    def close(self) -> Sequence[LogItem]:
        return []


RISCV_LOG_FORMAT: Final = LogFormat(
    vendor=VENDOR,
    triggers=("devid: ",),  # not " devid: ": a trigger should not start with a space
    new_parser=RiscvLogParser,
    ratelimited=("riscv_iommu_fault",),
    examples=(
        "[   42.1] riscv,iommu 10000000.iommu: Fault 15 devid: 0x10 iotval: 82d00000 iotval2: 0",
    ),
    description="RISC-V IOMMU fault-queue reports",
)
