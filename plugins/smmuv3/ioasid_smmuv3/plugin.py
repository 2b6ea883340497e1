"""The ioasid hook implementations for Arm SMMUv3.

Wiring only: the model (``model``) and the queue codecs (``priq``, ``events``, ``commands``) live
in their own modules; the page-request hooks that hand them to the core come with the pipeline.
"""

from __future__ import annotations

from ioasid_core.markers import hookimpl
from ioasid_core.units import VendorInfo
from ioasid_smmuv3.model import VENDOR


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Name the vendor for ``ioasid plugins``."""
    return VendorInfo(name=VENDOR, description="Arm SMMUv3")
