"""``IoasidSet``: one owner's group of IDs, with its quota and its SPID map.

The space does all the bookkeeping under its lock; a set only holds the state and answers
questions about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ioasid_core.records_view import snapshot
from ioasid_core.types import SetType

if TYPE_CHECKING:
    from ioasid_core.events import Subscription
    from ioasid_core.space import IoasidSpace

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
        "_count",
        "_fresh",
        "_live",
        "_open_in",
        "_pending",
        "_plain",
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
        self, space: IoasidSpace, set_id: int, token: object, type: SetType, quota: int | None
    ) -> None:
        self._space = space
        self.id = set_id
        self.token = token
        self.type = type
        self.quota = quota
        self._count = 0  # live IDs (kept by the space; a counter is cheaper than a set)
        # The record of every ID of this set with one reference and no free pending, shared
        # by all of them: a record is an immutable tuple ``(set, refs, free_pending)``,
        # replaced whole on any change, so one will do, and an allocation then builds no
        # tuple and a free destroys none (with 2^20 live records, a tuple per ID is a cold
        # cache line per free). The space stores it for exactly those IDs, so a hot free
        # knows an ID is its set's, with one reference and no free pending, by identity.
        # Private data lives in a list of its own (records_view.py), not in the tuple.
        self._fresh: tuple[IoasidSet, int, bool] = (self, 1, False)
        self._spids: dict[int, int] = {}  # spid -> ioasid
        self._spid_of: dict[int, int] = {}  # ioasid -> spid
        self._subs: list[Subscription] = []
        self._live = True
        self._pending = False
        # No SPID attached and not free-pending: freeing an ID needs no extra bookkeeping
        # (one flag for the hot path, kept by the space under its lock).
        self._plain = True
        # The space while the set takes new IDs (live, not free-pending), else None: the
        # allocation hot path checks ownership, liveness and pending with one comparison.
        self._open_in: IoasidSpace | None = space

    @property
    def count(self) -> int:
        """How many IDs the set holds now (free-pending ones included)."""
        return self._count

    @property
    def free_pending(self) -> bool:
        """Freed while it still held IDs: destroyed when the last one is reclaimed."""
        return self._pending

    @property
    def destroyed(self) -> bool:
        return not self._live

    def ioasids(self) -> list[int]:
        """The set's IDs, sorted (a snapshot: safe while other threads allocate).

        Found by scanning the space's records, a list indexed by ID (O(mapped IDs), in ID
        order): the allocation hot path keeps only a count per set, and this is asked rarely.
        The scan walks a copy (``snapshot``): one instant, never IDs freed and allocated
        while it walked.
        """
        return [
            i
            for i, rec in enumerate(snapshot(self._space._records))
            if rec is not None and rec[0] is self
        ]

    def __str__(self) -> str:
        if self.type is SetType.NULL:
            return f"set {self.id} (null)"
        return f"set {self.id} ({self.type.name.lower()}:{describe_token(self.token)})"

    def __repr__(self) -> str:
        state = "destroyed" if not self._live else "free-pending" if self._pending else "live"
        return f"<IoasidSet {self.id} {self.type.name} quota={self.quota} ids={self.count} {state}>"
