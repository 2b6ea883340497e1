"""The RISC-V IOMMU page-request handler as a ``VendorPrq`` vendor, ``riscv-iommu``.

Software side: Tomasz Jeznach's 2023 RFC (``riscv_iommu_page_request``): the device is
found by DID (none: no response), stop markers are ignored, the request goes to the IOPF
framework, which looks
the domain up by (device, PASID): ``DEVICE``. Responses are ATS.PRGR commands
(:mod:`ioasid_riscv_iommu.commands`). Before any of that, the IOMMU applies its own rules
(:mod:`ioasid_riscv_iommu.hardware`): no device context -> FAILURE, PRI disabled ->
INVALID, overflow -> SUCCESS with ``pqof`` sticky; PRIV and EXEC are zeroed without a PASID
(:mod:`ioasid_riscv_iommu.pq`). Mainline Linux has no page-request handling yet
(§3.4): this vendor is the RFC's driver on the specification's hardware.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ioasid_core.plugin import (
    AddressSpace,
    Buffer,
    CheckResult,
    HardwareRules,
    LookupPolicy,
    Platform,
    RequestRow,
    ResponseRow,
    RowCheck,
    RowVendorMixin,
    Verdict,
)
from ioasid_riscv_iommu.commands import encode_prgr_rows
from ioasid_riscv_iommu.hardware import SECTION, RiscvUnits, riscv_hardware
from ioasid_riscv_iommu.pq import PQ_RECORD_SIZE, decode_pq_rows, encode_pq_rows

__all__ = ["VENDOR", "RiscvPrq"]

VENDOR: Final = "riscv-iommu"


class RiscvPrq(RowVendorMixin):
    """RISC-V IOMMU: page-request queue records in, ATS.PRGR commands out."""

    name = VENDOR
    entry_size = PQ_RECORD_SIZE
    default_policy = LookupPolicy.DEVICE
    expected: type | tuple[type, ...] = AddressSpace
    option_section: Final = SECTION
    unit_model: Final = RiscvUnits()
    source_id_bits: Final = 24
    """A DID is 24 bits (RID plus an 8-bit segment)."""
    row_check: RowCheck | None = None
    """No device-free check of its own: the RFC hands every request to the IOPF framework."""

    def row_check_for(self, platform: Platform, unit: str) -> RowCheck | None:
        """The RFC's one check: a DID the driver no longer tracks (a device that went away
        after its request was queued; the IOMMU itself answers one it has no context for)
        is dropped without a response ("no point to process PRGR")."""
        devices = platform.sources(unit)
        silent = Verdict.SILENT

        def check(row: RequestRow) -> CheckResult:
            return None if row[0] in devices else silent

        return check

    def hardware_rules(
        self, platform: Platform, unit: str, options: Mapping[str, object]
    ) -> HardwareRules:
        """What the IOMMU does before the driver sees a request (:mod:`.hardware`)."""
        return riscv_hardware(platform, unit, options)

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        return encode_pq_rows(rows)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return decode_pq_rows(data)

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        return encode_prgr_rows(rows)
