"""An example third-party plugin: the kernel's design since v6.4/v6.6.

The IOASID sets, quotas and custom allocators were removed in v6.4; since v6.6 the core
hands out PASIDs from one global allocator (``iommu_alloc_global_pasid``: the lowest free
ID in ``[1, max_pasids - 1]``) and a PASID means something only where it is attached to a
device. Page requests are resolved by (device, PASID), never by searching sets
(kernel-facts §1.1, §1.9, §4, §6). Copy this package to start a vendor of your own.
"""

from ioasid_upstream_now.vendor import UpstreamNowPrq, alloc_global_pasid

__all__ = ["UpstreamNowPrq", "alloc_global_pasid"]
