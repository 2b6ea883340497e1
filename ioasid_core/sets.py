"""``IoasidSet``: one owner's group of IDs, with its quota and its SPID map.

The space does all the bookkeeping under its lock; a set only holds the state and answers
questions about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ioasid_core.types import SetType

if TYPE_CHECKING:
    from ioasid_core.events import Subscription

__all__ = ["IoasidSet", "describe_token"]


def describe_token(token: object) -> str:
    """A short, readable name for a token, for error messages."""
    if isinstance(token, str):
        return token
    name = getattr(token, "name", None)
    if isinstance(name, str):
        return name
    return f"{type(token).__name__}@{id(token):#x}"


class IoasidSet:
    """A group of IOASIDs with one owner. Created by ``IoasidSpace.create_set``."""

    __slots__ = (
        "__weakref__",
        "_ids",
        "_live",
        "_open_in",
        "_pending",
        "_space",
        "_spid_of",
        "_spids",
        "_subs",
        "id",
        "quota",
        "token",
        "type",
    )

    def __init__(
        self, space: object, set_id: int, token: object, type: SetType, quota: int | None
    ) -> None:
        self._space = space
        self.id = set_id
        self.token = token
        self.type = type
        self.quota = quota
        self._ids: set[int] = set()
        self._spids: dict[int, int] = {}  # spid -> ioasid
        self._spid_of: dict[int, int] = {}  # ioasid -> spid
        self._subs: list[Subscription] = []
        self._live = True
        self._pending = False
        # The space while the set takes new IDs (live, not free-pending), else None: the
        # allocation hot path checks ownership, liveness and pending with one comparison.
        self._open_in: object = space

    @property
    def count(self) -> int:
        """How many IDs the set holds now (free-pending ones included)."""
        return len(self._ids)

    @property
    def free_pending(self) -> bool:
        """Freed while it still held IDs: destroyed when the last one is reclaimed."""
        return self._pending

    @property
    def destroyed(self) -> bool:
        return not self._live

    def ioasids(self) -> list[int]:
        """The set's IDs, sorted (a snapshot: safe while other threads allocate)."""
        return sorted(self._ids.copy())

    def __str__(self) -> str:
        if self.type is SetType.NULL:
            return f"set {self.id} (null)"
        return f"set {self.id} ({self.type.name.lower()}:{describe_token(self.token)})"

    def __repr__(self) -> str:
        state = "destroyed" if not self._live else "free-pending" if self._pending else "live"
        return f"<IoasidSet {self.id} {self.type.name} quota={self.quota} ids={self.count} {state}>"
