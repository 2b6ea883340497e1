"""The ioasid hook implementations for Arm SMMUv3.

Wiring only: the model (``model``), the queue codecs (``priq``, ``events``, ``commands``), the
page-request handlers (``handlers``) and the benchmark (``bench``) live in their own modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from ioasid_core.plugin import BenchmarkFigure, LogFormat, VendorInfo, VendorPrq, hookimpl
from ioasid_smmuv3.bench import FIGURES
from ioasid_smmuv3.handlers import smmuv3_vendors
from ioasid_smmuv3.logs import SMMUV3_LOG_FORMAT
from ioasid_smmuv3.model import VENDOR


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Name the vendor for ``ioasid plugins``."""
    return VendorInfo(name=VENDOR, description="Arm SMMUv3")


@hookimpl
def ioasid_prq_vendors() -> Sequence[VendorPrq]:
    """The stall path (``smmuv3``), mainline PRI (``smmuv3-pri``), PRI via IOPF."""
    return smmuv3_vendors()


@hookimpl
def ioasid_benchmarks() -> Sequence[BenchmarkFigure]:
    """``smmuv3_evtq_ratio``: decode, resolve and RESUME stall records."""
    return list(FIGURES)


@hookimpl
def ioasid_log_formats() -> Sequence[LogFormat]:
    """``ioasid logs``: event records (raw and decoded), PRI requests, overflows."""
    return [SMMUV3_LOG_FORMAT]
