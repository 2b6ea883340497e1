"""The ioasid hook implementations for Intel VT-d: wiring only.

The state (guest units and their registers, scalable mode per guest) lives in
``ioasid_vtd.state``; attach a virtual unit's registers with ``attach_guest_unit`` before
probing it. The page-request vendor is ``ioasid_vtd.prq.VtdPrq``; its benchmark figure is in
``ioasid_vtd.bench``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ioasid_core.plugin import (
    AllocatorOps,
    BenchmarkFigure,
    IoasidError,
    IoasidSpace,
    IommuUnit,
    LogFormat,
    VendorInfo,
    VendorPrq,
    hookimpl,
)
from ioasid_vtd.bench import figure
from ioasid_vtd.logs import VTD_LOG_FORMAT
from ioasid_vtd.prq import VtdIopfPrq, VtdPrq
from ioasid_vtd.state import REGISTRY


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Name the vendor for ``ioasid plugins``."""
    return VendorInfo(name="vtd", description="Intel VT-d")


@hookimpl
def ioasid_allocators_for_unit(
    unit: IommuUnit, space: IoasidSpace
) -> Sequence[AllocatorOps[Any]] | None:
    """A guest's vIOMMU unit (CM, VCS, PAS) offers its virtual command allocator."""
    return REGISTRY.allocators_for(unit, space)


@hookimpl
def ioasid_allocator_refused(
    unit: IommuUnit, space: IoasidSpace, ops: AllocatorOps[Any], error: IoasidError
) -> None:
    """A refused VCMD allocator turns scalable mode off for that guest."""
    REGISTRY.refused(unit, space, ops, error)


@hookimpl
def ioasid_unit_removed(unit: IommuUnit, space: IoasidSpace) -> None:
    """Forget a hot-unplugged unit's registers."""
    REGISTRY.forget(unit, space)


@hookimpl
def ioasid_prq_vendors() -> Sequence[VendorPrq]:
    """The VT-d page request queue: ``vtd`` (the 2019 handler, answering per request) and
    ``vtd-iopf`` (v5.13+, through the IOPF framework)."""
    return [VtdPrq(), VtdIopfPrq()]


@hookimpl
def ioasid_benchmarks() -> Sequence[BenchmarkFigure]:
    """``vtd_prq_ratio``: decode, resolve and respond per PRQ descriptor."""
    return [figure()]


@hookimpl
def ioasid_log_formats() -> Sequence[LogFormat]:
    """``ioasid logs``: DMAR faults, prq_report trace events, PRQ messages."""
    return [VTD_LOG_FORMAT]
