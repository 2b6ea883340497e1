"""The ioasid hook implementations for AMD-Vi: wiring only.

The codecs (``ppr``, ``commands``), the hardware model (``hardware``), the handlers
(``handlers``) and the benchmark (``bench``) live in their own modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from ioasid_amd_vi.bench import FIGURES
from ioasid_amd_vi.handlers import IOMMU_V2_VENDOR, amd_vendors
from ioasid_amd_vi.logs import AMD_VI_LOG_FORMAT
from ioasid_core.plugin import BenchmarkFigure, LogFormat, VendorInfo, VendorPrq, hookimpl


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Name the vendor for ``ioasid plugins``."""
    return VendorInfo(name=IOMMU_V2_VENDOR, description="AMD-Vi (AMD IOMMU)")


@hookimpl
def ioasid_prq_vendors() -> Sequence[VendorPrq]:
    """The v5.x ``amd_iommu_v2`` driver and today's ``ppr.c`` with IOPF."""
    return amd_vendors()


@hookimpl
def ioasid_benchmarks() -> Sequence[BenchmarkFigure]:
    """``amd_vi_ppr_ratio``: decode, resolve and respond per queue entry."""
    return list(FIGURES)


@hookimpl
def ioasid_log_formats() -> Sequence[LogFormat]:
    """``ioasid logs``: event log lines, PPR messages, amdkfd's invalid PPRs."""
    return [AMD_VI_LOG_FORMAT]
