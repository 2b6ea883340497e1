"""The ioasid hook implementations for the RISC-V IOMMU: wiring only.

The codecs (``pq``, ``commands``), the hardware model (``hardware``), the handler
(``handlers``) and the benchmark (``bench``) live in their own modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from ioasid_core.plugin import BenchmarkFigure, LogFormat, VendorInfo, VendorPrq, hookimpl
from ioasid_riscv_iommu.bench import FIGURES
from ioasid_riscv_iommu.handlers import VENDOR, RiscvPrq
from ioasid_riscv_iommu.logs import RISCV_LOG_FORMAT


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Name the vendor for ``ioasid plugins``."""
    return VendorInfo(name=VENDOR, description="RISC-V IOMMU")


@hookimpl
def ioasid_prq_vendors() -> Sequence[VendorPrq]:
    """The page-request queue under the 2023 RFC driver's rules."""
    return [RiscvPrq()]


@hookimpl
def ioasid_benchmarks() -> Sequence[BenchmarkFigure]:
    """``riscv_prq_ratio``: decode, resolve and respond per queue entry."""
    return list(FIGURES)


@hookimpl
def ioasid_log_formats() -> Sequence[LogFormat]:
    """``ioasid logs``: fault-queue reports."""
    return [RISCV_LOG_FORMAT]
