"""The ioasid hook implementations for Arm SMMUv3.

For now the plugin only says what it drives; its allocator, event and page-request hooks come
with its own issue.
"""

from __future__ import annotations

from ioasid_core.markers import hookimpl
from ioasid_core.units import VendorInfo


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Name the vendor for ``ioasid plugins``."""
    return VendorInfo(name="smmuv3", description="Arm SMMUv3")
