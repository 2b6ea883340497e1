"""Small enums and constants shared by every module of the core."""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "DEFAULT_CAPACITY",
    "INVALID_IOASID",
    "EventKind",
    "IoasidState",
    "Priority",
    "SetType",
]

INVALID_IOASID: Final = 0xFFFFFFFF
"""The kernel's ``INVALID_IOASID`` (later ``IOMMU_PASID_INVALID``): all ones in 32 bits."""

DEFAULT_CAPACITY: Final = 1 << 20
"""``PCI_PASID_MAX``: a 20-bit PASID space."""


class SetType(enum.IntEnum):
    """The kind of owner a set has (values as in the DCP tree)."""

    NULL = 1
    """No token: a driver-private or static set."""
    MM = 2
    """The token is an address space (a process or a VM); one MM set per token."""


class IoasidState(enum.Enum):
    """The life cycle of an allocated ID (the reclaimed state is simply absence)."""

    IDLE = "idle"
    ACTIVE = "active"
    FREE_PENDING = "free_pending"


class Priority(enum.IntEnum):
    """Notifier priority: higher runs first (KVM before the IOMMU driver before devices)."""

    LAST = 0
    DEVICE = 1
    IOMMU = 2
    CPU = 3


class EventKind(enum.Enum):
    """What a notifier event reports."""

    ALLOC = "alloc"
    FREE = "free"
    BIND = "bind"
    UNBIND = "unbind"
    SET_ALLOC = "set_alloc"
    SET_FREE = "set_free"
