"""The page-request rules and the PASID allocation of today's kernel."""

from __future__ import annotations

from ioasid_core.plugin import (
    Device,
    GenericPrq,
    InvalidArgumentError,
    IoasidSet,
    IoasidSpace,
    LookupPolicy,
)

__all__ = ["UpstreamNowPrq", "alloc_global_pasid"]

IOMMU_FIRST_GLOBAL_PASID = 1
"""PASID 0 is ``IOMMU_NO_PASID``: DMA without a PASID."""


def alloc_global_pasid(space: IoasidSpace, global_set: IoasidSet, device: Device) -> int:
    """``iommu_alloc_global_pasid(dev)``: the lowest free PASID the device can carry.

    One set stands for the kernel's single global IDA; a device with no PASID support gets
    none (the kernel returns ``IOMMU_PASID_INVALID``; here that is an error naming it).
    """
    if device.pasid_bits == 0:
        raise InvalidArgumentError(f"device {device.name!r} supports no PASID")
    top = min(device.pasid_limit, space.capacity) - 1
    return space.alloc(global_set, IOMMU_FIRST_GLOBAL_PASID, top)


class UpstreamNowPrq(GenericPrq):
    """Vendor "upstream-now": the generic queue format, resolved by (device, PASID).

    Since v6.2 the IOPF core looks up the domain attached to (device, PASID) (kernel-facts
    §4, §6), which is the ``DEVICE`` lookup policy. A request without a PASID would go to the
    device's default domain; this model has none, so the core's resolver answers it
    ``NO_PASID`` (INVALID).
    """

    name = "upstream-now"

    def __init__(self) -> None:
        super().__init__(LookupPolicy.DEVICE)

    # No checks of its own before the lookup (the driver hands every request to the IOPF
    # core): the generic vendor's ``row_check = None`` says so, and the pipeline makes no
    # call per request for it. Overriding ``check`` to return None would say the same, but
    # send every request through the slower object path.
