"""What a vendor plugin hands the page-request pipeline: its codec and its rules.

A plugin returns one :class:`VendorPrq` per vendor from the ``ioasid_prq_vendors`` hook, once;
the pipeline then calls it directly for every batch (no pluggy call per request).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ioasid_core.bits import Buffer
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import PageRequest, PageResponse, ResponseCode

__all__ = ["VendorPrq"]


@runtime_checkable
class VendorPrq(Protocol):
    """A vendor's page-request queue format and handler rules."""

    name: str
    """The vendor's short name (``vtd``, ``smmuv3``, ``virtio-iommu``)."""
    entry_size: int
    """Bytes per raw queue entry."""
    default_policy: LookupPolicy
    """The lookup rule the vendor's driver followed."""
    expected: type | tuple[type, ...]
    """The type of private data the handler knows how to service."""

    def encode_request(self, request: PageRequest) -> bytes:
        """The raw entry the hardware would write for ``request`` (the device side)."""

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        """Decode whole entries; raise ``DecodeError`` naming the bad entry's offset."""

    def check(self, request: PageRequest) -> ResponseCode | None:
        """The vendor's own checks before any lookup: a code to answer with, or None."""

    def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
        """The raw responses (descriptors, commands) the driver would write."""
