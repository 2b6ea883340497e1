"""The hook implementations: wiring only (the entry point ``upstream_now`` loads this)."""

from __future__ import annotations

from collections.abc import Sequence

from ioasid_core.plugin import VendorInfo, VendorPrq, hookimpl
from ioasid_upstream_now.vendor import UpstreamNowPrq


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Say what this plugin drives (``ioasid plugins``)."""
    return VendorInfo(
        name="upstream-now", description="Linux v6.6+: global PASIDs, per-device attach"
    )


@hookimpl
def ioasid_prq_vendors() -> Sequence[VendorPrq]:
    """Hand the page-request rules to the core once; it calls them directly per batch."""
    return [UpstreamNowPrq()]
