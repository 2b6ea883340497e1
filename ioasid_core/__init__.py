"""ioasid_core: a model of the Linux kernel's I/O ASID (PASID) allocator.

The public names of SPEC.md are re-exported here.
"""

from ioasid_core.allocators import AllocatorOps
from ioasid_core.errors import (
    AccessDeniedError,
    AllocatorBusyError,
    AllocatorError,
    AllocatorNoSpaceError,
    AlreadyRegisteredError,
    BusyError,
    InvalidArgumentError,
    IoasidError,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
    ReentrancyError,
    UnknownIoasidError,
)
from ioasid_core.events import Event, Subscription
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.types import (
    DEFAULT_CAPACITY,
    INVALID_IOASID,
    EventKind,
    IoasidState,
    Priority,
    SetType,
)

__all__ = [
    "DEFAULT_CAPACITY",
    "INVALID_IOASID",
    "AccessDeniedError",
    "AllocatorBusyError",
    "AllocatorError",
    "AllocatorNoSpaceError",
    "AllocatorOps",
    "AlreadyRegisteredError",
    "BusyError",
    "Event",
    "EventKind",
    "InvalidArgumentError",
    "IoasidError",
    "IoasidSet",
    "IoasidSpace",
    "IoasidState",
    "NoSpaceError",
    "NotFoundError",
    "Priority",
    "QuotaExceededError",
    "ReentrancyError",
    "SetType",
    "Subscription",
    "UnknownIoasidError",
]

__version__ = "0.1.0"
