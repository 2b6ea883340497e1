"""Queue entries that are well formed but are not page requests.

An IOMMU's queue carries more than page requests: SMMUv3's event queue reports every fault and
configuration error, virtio-iommu's event virtqueue unrecoverable faults. The kernel's driver
logs such an entry and answers nothing. A codec says so by raising :class:`UnhandledEvent`
(a ``DecodeError``, so callers that only know "not a request" keep working) for that entry:
the pipeline counts it by kind, not as malformed, and ``ioasid decode`` lists it.
"""

from __future__ import annotations

import enum

from ioasid_core.bits import DecodeError

__all__ = ["UNHANDLED_KINDS", "UnhandledEvent", "UnhandledKind"]


class UnhandledKind(enum.StrEnum):
    """What the entry was; a small fixed set, so runs of every vendor compare key by key."""

    FAULT = "fault"
    """An unrecoverable fault report: the access was already terminated, nothing waits."""
    EVENT = "event"
    """Another event type the driver only logs (e.g. SMMUv3 C_BAD_STE)."""
    REFUSED_STALL = "refused_stall"
    """A stalled transaction the driver refused to handle and never resumed: the device
    waits (SMMUv3 stage-2 faults in the IOASID-era kernels)."""


UNHANDLED_KINDS: tuple[str, ...] = tuple(kind.value for kind in UnhandledKind)


class UnhandledEvent(DecodeError):
    """The entry at ``offset`` is well formed and not a page request: logged, not answered.

    ``what`` is a one-line description; ``record`` the vendor's decoded entry, if it wants it
    back for its own log (see ``UnhandledLog`` in :mod:`ioasid_core.prq.vendor`).
    """

    def __init__(
        self,
        layout: str,
        what: str,
        *,
        offset: int,
        kind: UnhandledKind,
        record: object = None,
    ) -> None:
        super().__init__(layout, what, offset=offset)
        self.kind = kind
        self.record = record
