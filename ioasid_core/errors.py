"""The error classes of the core, each naming the kernel errno it models.

Every error is an :class:`IoasidError`; several also derive from the matching builtin
(``ValueError``, ``LookupError``, ``RuntimeError``) so that generic callers can catch them.
"""

from __future__ import annotations

import errno as _errno
from typing import ClassVar

__all__ = [
    "AccessDeniedError",
    "AllocatorBusyError",
    "AllocatorError",
    "AllocatorNoSpaceError",
    "AlreadyRegisteredError",
    "BusyError",
    "InvalidArgumentError",
    "IoasidError",
    "NoSpaceError",
    "NotFoundError",
    "QuotaExceededError",
    "ReentrancyError",
    "UnknownIoasidError",
]


class IoasidError(Exception):
    """Base class: ``errno`` is the kernel errno the condition models."""

    errno: ClassVar[int] = 0


class InvalidArgumentError(IoasidError, ValueError):
    """Bad range, type/token, quota or SPID; unknown, destroyed or free-pending set."""

    errno = _errno.EINVAL


class NotFoundError(IoasidError, LookupError):
    """The ID, SPID, allocator or subscription is not registered here."""

    errno = _errno.ENOENT


class UnknownIoasidError(NotFoundError, InvalidArgumentError):
    """``get`` of an ID that is not allocated. The kernel's ``ioasid_get`` answers ``-EINVAL``
    here (its ``ioasid_find`` says ``-ENOENT``), so the errno follows it; caught as either."""

    errno = _errno.EINVAL


class AccessDeniedError(IoasidError):
    """The ID belongs to another set than the one given."""

    errno = _errno.EACCES


class BusyError(IoasidError):
    """The ID's free is pending, its data is taken, or a removed allocator still holds IDs."""

    errno = _errno.EBUSY


class AllocatorBusyError(IoasidError):
    """A custom allocator cannot take over while the default allocator holds IDs."""

    errno = _errno.EAGAIN


class AlreadyRegisteredError(IoasidError):
    """The allocator ops object is registered already, or the token has an MM set."""

    errno = _errno.EEXIST


class NoSpaceError(IoasidError):
    """No free ID in the range, or not enough capacity left for a quota."""

    errno = _errno.ENOSPC


class QuotaExceededError(NoSpaceError):
    """The set already holds as many IDs as its quota allows."""

    errno = _errno.EDQUOT


class AllocatorError(IoasidError):
    """A custom allocator failed, raised, or returned an unusable ID."""

    errno = _errno.EIO


class AllocatorNoSpaceError(AllocatorError, NoSpaceError):
    """A custom allocator said it has no free ID (it raised ``NoSpaceError``): the kernel's
    ``-ENOSPC`` from a backend such as VT-d's virtual command interface. Caught as either."""

    errno = _errno.ENOSPC


class ReentrancyError(IoasidError, RuntimeError):
    """A callback called back into the space that is running it."""

    errno = _errno.EDEADLK
