"""The AMD-Vi page-request handlers as ``VendorPrq`` vendors.

``amd-vi`` models the v5.x ``amd_iommu_v2`` driver (vendors-amd-riscv.md §3.3), under the
per-device-tables answer discipline (:mod:`ioasid_core.prq.discipline`):

- ``get_device_state(devid)`` in a global list of registered devices: an unknown device gets
  no response at all (the device waits: ``unanswered_groups``);
- the PASID in that device's own table: its lookup rule is ``DEVICE``; an unknown PASID is
  answered ``PPR_INVALID`` at once, for that request alone;
- per (PASID, tag) an in-flight count and the last failure: one answer when the group's last
  request is done. Not modelled: out of memory (answered SUCCESS so the device re-faults).

``amd-vi-iopf`` models today's ``ppr.c`` (v6.10+), under the IOPF discipline: no ``pci_dev``
for the DeviceID -> no response; GN=0 or RVSD -> FAILURE; ``pasid == 0 || pasid >=
max_pasids`` -> FAILURE ("Invalid PASID"); then the IOPF framework, which looks the domain up
by (device, PASID): ``DEVICE``. These checks need the device, so they are bound to the
platform per unit (``row_check_for``); ``row_check`` alone has the device-free ones.

Both read the PPR log (:mod:`ioasid_amd_vi.ppr`) and answer with COMPLETE_PPR_REQUEST
(:mod:`ioasid_amd_vi.commands`), the PASID in it (GN) when the device requires it (its PCI
"PRG Response PASID Required" bit, the driver's ``pri_tlp``: a device property in
scenarios). Entries of another TYPE are unhandled events ("Unknown PPR request received"),
counted by the pipeline and never answered. FAILURE goes out as 0xF: today's
``amd_iommu_page_response`` writes the generic code unmapped (2, a reserved PCIe value);
the model sends what the code means, as the VT-d plugin does.

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
from ioasid_core.plugin import (
    AddressSpace,
    Buffer,
    CheckResult,
    Discipline,
    HardwareRules,
    LookupPolicy,
    Platform,
    RequestRow,
    ResponseCode,
    ResponseRow,
    RowCheck,
    RowVendorMixin,
    Verdict,
)

__all__ = [
    "AMD_HARDWARE",
    "IOMMU_V2_VENDOR",
    "PPR_IOPF_VENDOR",
    "AmdViPrq",
    "amd_vendors",
    "ppr_c_check",
    "ppr_c_checks_for",
]

IOMMU_V2_VENDOR: Final = "amd-vi"
PPR_IOPF_VENDOR: Final = "amd-vi-iopf"
AMD_HARDWARE: Final = HardwareRules(overflow_response=None, sticky_overflow=True)


def ppr_c_check(row: RequestRow) -> CheckResult:
    """``ppr.c``'s device-free checks: no valid PASID (GN=0, or RVSD, which the decoder folds
    into it) or PASID 0 -> FAILURE."""
    if not row[2] or row[1] == 0:
        return ResponseCode.FAILURE
    return None


def ppr_c_checks_for(platform: Platform, unit: str) -> RowCheck:
    """``ppr.c`` before the IOPF framework, in its order, for requests on ``unit``: no device
    for the DeviceID -> silence; no valid PASID -> FAILURE; PASID 0 or beyond the device's
    width (``max_pasids``) -> FAILURE."""
    devices = platform.sources(unit)  # live: plugged and unplugged devices come and go
    failure, silent = ResponseCode.FAILURE, Verdict.SILENT

    def check(row: RequestRow) -> CheckResult:
        device = devices.get(row[0])
        if device is None:
            return silent
        if not row[2] or not 0 < row[1] < device.pasid_limit:
            return failure
        return None

    return check


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
        self.discipline = Discipline.IOPF if iopf else Discipline.DEVICE_TABLES
        self.row_check: RowCheck | None = ppr_c_check if iopf else None

    def row_check_for(self, platform: Platform, unit: str) -> RowCheck | None:
        """``ppr.c``'s checks with the device lookup; ``amd_iommu_v2`` has none of its own
        (its unknown devices are the discipline's)."""
        return ppr_c_checks_for(platform, unit) if self.iopf else None

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
