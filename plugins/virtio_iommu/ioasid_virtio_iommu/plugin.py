"""The ioasid hook implementations for virtio-iommu (wiring only).

The page-request handler is :class:`~ioasid_virtio_iommu.handler.VirtioPrq`; its benchmark
figure is in :mod:`ioasid_virtio_iommu.bench`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ioasid_core.plugin import BenchmarkFigure, LogFormat, VendorInfo, VendorPrq, hookimpl
from ioasid_virtio_iommu.bench import FIGURES
from ioasid_virtio_iommu.handler import VirtioPrq
from ioasid_virtio_iommu.logs import VIRTIO_LOG_FORMAT


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Name the vendor for ``ioasid plugins``."""
    return VendorInfo(name="virtio-iommu", description="virtio-iommu")


@hookimpl
def ioasid_prq_vendors() -> list[VendorPrq]:
    """The page-request handler (collected once; the pipeline calls it directly)."""
    return [VirtioPrq()]


@hookimpl
def ioasid_benchmarks() -> list[BenchmarkFigure]:
    """``virtio_prq_ratio``: decode, resolve and respond per event."""
    return list(FIGURES)


@hookimpl
def ioasid_log_formats() -> Sequence[LogFormat]:
    """``ioasid logs``: ``viommu_fault_handler`` fault lines."""
    return [VIRTIO_LOG_FORMAT]
