"""The AMD-Vi page-request handlers as ``VendorPrq`` vendors.

``amd-vi`` models the v5.x ``amd_iommu_v2`` driver (vendors-amd-riscv.md §3.3): the PASID
is looked up in the requesting device's own PASID table, so its lookup rule is ``DEVICE``.
``amd-vi-iopf`` models today's ``ppr.c`` (v6.10+): GN=0 or RVSD -> FAILURE, PASID 0 ->
FAILURE, then the IOPF framework, which looks the domain up by (device, PASID): ``DEVICE``
as well.

Both read the PPR log (:mod:`ioasid_amd_vi.ppr`) and answer with COMPLETE_PPR_REQUEST
(:mod:`ioasid_amd_vi.commands`). Entries of another TYPE are unhandled events ("Unknown
PPR request received"), counted by the pipeline and never answered.

On overflow the log stops until the driver restarts it (``amd_iommu_restart_ppr_log``),
and the requests lost meanwhile are never answered: the driver has no auto-response path
(§3.1, inferred from the code). So the hardware rules are a sticky overflow flag (cleared
when the driver has drained the log) and no overflow response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ioasid_amd_vi.commands import encode_complete_ppr_rows
from ioasid_amd_vi.hardware import SECTION, AmdUnits
from ioasid_amd_vi.ppr import PPR_ENTRY_SIZE, decode_ppr_rows, encode_ppr_rows
from ioasid_core.bits import Buffer
from ioasid_core.platform import AddressSpace, Platform
from ioasid_core.prq.hardware import HardwareRules
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import RequestRow, ResponseCode, ResponseRow
from ioasid_core.prq.vendor import RowCheck, RowVendorMixin

__all__ = [
    "AMD_HARDWARE",
    "IOMMU_V2_VENDOR",
    "PPR_IOPF_VENDOR",
    "AmdViPrq",
    "amd_vendors",
    "ppr_c_check",
]

IOMMU_V2_VENDOR: Final = "amd-vi"
PPR_IOPF_VENDOR: Final = "amd-vi-iopf"
AMD_HARDWARE: Final = HardwareRules(overflow_response=None, sticky_overflow=True)


def ppr_c_check(row: RequestRow) -> ResponseCode | None:
    """``ppr.c`` before the IOPF framework: no valid PASID (GN=0, or RVSD, which the
    decoder folds into it) or PASID 0 -> FAILURE."""
    if not row[2] or row[1] == 0:
        return ResponseCode.FAILURE
    return None


class AmdViPrq(RowVendorMixin):
    """AMD-Vi: the PPR log and COMPLETE_PPR_REQUEST, under the v5.x ``amd_iommu_v2`` rules
    (``iopf=False``) or today's ``ppr.c`` and IOPF (``iopf=True``)."""

    entry_size = PPR_ENTRY_SIZE
    expected: type | tuple[type, ...] = AddressSpace
    option_section: Final = SECTION
    unit_model: Final = AmdUnits()
    source_id_bits: Final = 16
    """A DeviceID is a 16-bit PCI requester ID."""

    def __init__(self, *, iopf: bool = False) -> None:
        self.iopf = iopf
        self.name = PPR_IOPF_VENDOR if iopf else IOMMU_V2_VENDOR
        self.default_policy = LookupPolicy.DEVICE
        self.row_check: RowCheck | None = ppr_c_check if iopf else None

    def hardware_rules(
        self, platform: Platform, unit: str, options: Mapping[str, object]
    ) -> HardwareRules:
        """No auto-response; logging stops at an overflow until the driver restarts it."""
        return AMD_HARDWARE

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        return encode_ppr_rows(rows)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return decode_ppr_rows(data, rvsd_drops_pasid=self.iopf)

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        return encode_complete_ppr_rows(rows)


def amd_vendors() -> list[AmdViPrq]:
    """The v5.x driver (``amd-vi``) and today's ``ppr.c`` with IOPF (``amd-vi-iopf``)."""
    return [AmdViPrq(), AmdViPrq(iopf=True)]
