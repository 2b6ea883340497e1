"""A replay's PASID names both ways: name -> PASID, and PASID -> its names.

A scenario names each PASID it allocates or binds; several names may stand for one PASID
(binds of one address space share it). When a PASID goes, every name of it goes too: the
reverse index finds them without walking all live names (a walk made each free cost
O(live names), a replay O(events x live)).
"""

from __future__ import annotations

__all__ = ["PasidNames"]


class PasidNames:
    """Live PASID names of one space; every change keeps both directions in step."""

    __slots__ = ("_names_of", "_pasid_of")

    def __init__(self) -> None:
        self._pasid_of: dict[str, int] = {}
        self._names_of: dict[int, dict[str, None]] = {}  # an ordered set per PASID

    def get(self, name: str) -> int | None:
        return self._pasid_of.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._pasid_of

    def __len__(self) -> int:
        return len(self._pasid_of)

    def names_of(self, pasid: int) -> list[str]:
        """``pasid``'s names, oldest first."""
        return list(self._names_of.get(pasid, ()))

    def set(self, name: str, pasid: int) -> None:
        """``name`` now stands for ``pasid`` (and no longer for what it named before)."""
        self.drop(name)
        self._pasid_of[name] = pasid
        self._names_of.setdefault(pasid, {})[name] = None

    def drop(self, name: str) -> None:
        """``name`` stands for nothing (a name that stood for nothing stays so)."""
        pasid = self._pasid_of.pop(name, None)
        if pasid is None:
            return
        names = self._names_of[pasid]
        del names[name]
        if not names:
            del self._names_of[pasid]

    def drop_pasid(self, pasid: int) -> list[str]:
        """Every name of ``pasid`` goes; returns them, oldest first."""
        names = self._names_of.pop(pasid, None)
        if names is None:
            return []
        for name in names:
            del self._pasid_of[name]
        return list(names)
