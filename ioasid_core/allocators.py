"""Custom allocators (``AllocatorOps``) and the groups that share one ID space.

Two ops objects share an ID space when their ``alloc`` and ``free`` callables are equal: the
same backend functions with different ``pdata`` (every VT-d unit's virtual command interface).
Only one group is active at a time; the others wait in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs

__all__ = ["AllocatorOps"]

P = TypeVar("P")


@attrs.define(eq=False)
class AllocatorOps(Generic[P]):
    """A custom allocator: ``alloc(min, max, pdata) -> id`` and ``free(id, pdata)``.

    Identity matters: registering the same object twice is an error, while a second object
    with the same functions joins the first one's group.
    """

    alloc: Callable[[int, int, P], int]
    free: Callable[[int, P], None]
    pdata: P = None  # type: ignore[assignment]

    def shares_space_with(self, other: AllocatorOps[Any]) -> bool:
        """True when both use the same backend functions (so one ID space)."""
        return bool(self.alloc == other.alloc and self.free == other.free)


class AllocatorGroup:
    """Ops objects that share one ID space; the first still-registered one is used."""

    __slots__ = ("members",)

    def __init__(self, first: AllocatorOps[Any]) -> None:
        self.members: list[AllocatorOps[Any]] = [first]

    @property
    def head(self) -> AllocatorOps[Any]:
        """The member whose ``pdata`` the group's calls carry."""
        return self.members[0]

    def accepts(self, ops: AllocatorOps[Any]) -> bool:
        return self.head.shares_space_with(ops)

    def holds(self, ops: AllocatorOps[Any]) -> bool:
        return any(member is ops for member in self.members)
