"""Built-in allocator backends: custom allocators a scenario can swap in at run time.

Each backend is a real ``AllocatorOps`` over its own ID state, so the space checks it exactly
as it checks a vendor's (range, duplicates, errors). They differ only in *which* free ID they
hand out, which is what decides how soon a freed PASID comes back: the sooner it does, the
likelier a stale page request or a late invalidation reaches the ID's next owner.

- ``lowest``: the lowest free ID (first fit), like the default allocator and ``xa_alloc``.
- ``cyclic``: the lowest free ID after the last one handed out, wrapping to the bottom (next
  fit), like the kernel's cyclic IDRs: a freed ID waits a whole lap.
- ``top_down``: the highest free ID.
- ``random``: a seeded draw in the range, then the next free ID from there (wrapping).
"""

from __future__ import annotations

import random
from typing import Final, Literal, get_args

from ioasid_core.allocators import AllocatorOps
from ioasid_core.errors import (
    AlreadyRegisteredError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
)
from ioasid_core.space import IoasidSpace

__all__ = ["BACKEND_KINDS", "BackendKind", "IdBackend", "Registrations", "backend_ops"]

BackendKind = Literal["lowest", "cyclic", "top_down", "random"]
BACKEND_KINDS: Final[tuple[BackendKind, ...]] = get_args(BackendKind)


class IdBackend:
    """One backend's ID state: a byte per ID of capacity (searches run in C)."""

    __slots__ = ("_cursor", "_rng", "_used", "kind")

    def __init__(self, kind: BackendKind, capacity: int, seed: int | str = 0) -> None:
        if kind not in BACKEND_KINDS:
            raise InvalidArgumentError(
                f"unknown backend kind {kind!r} (known: {', '.join(BACKEND_KINDS)})"
            )
        self.kind = kind
        self._used = bytearray(capacity)
        self._cursor = 0  # cyclic: where the next search starts
        self._rng = random.Random(seed)

    def __contains__(self, ioasid: int) -> bool:
        return 0 <= ioasid < len(self._used) and bool(self._used[ioasid])

    def __len__(self) -> int:
        return self._used.count(1)

    def alloc(self, lo: int, hi: int, pdata: object = None) -> int:
        """A free ID in ``[lo, hi]`` chosen by the kind; ``NoSpaceError`` if there is none."""
        if not 0 <= lo <= hi < len(self._used):
            raise InvalidArgumentError(
                f"range [{lo:#x}, {hi:#x}] is outside the backend's [0, {len(self._used) - 1:#x}]"
            )
        used, end = self._used, hi + 1
        if self.kind == "lowest":
            found = used.find(0, lo, end)
        elif self.kind == "top_down":
            found = used.rfind(0, lo, end)
        else:
            start = self._cursor if self.kind == "cyclic" else self._rng.randint(lo, hi)
            found = used.find(0, max(lo, start), end) if start <= hi else -1
            if found < 0:
                found = used.find(0, lo, end)
        if found < 0:
            raise NoSpaceError(f"{self.kind} backend: no free ID in [{lo:#x}, {hi:#x}]")
        used[found] = 1
        self._cursor = found + 1
        return found

    def free(self, ioasid: int, pdata: object = None) -> None:
        """Take an ID back; ``NotFoundError`` if this backend did not hand it out."""
        if ioasid not in self:
            raise NotFoundError(f"{self.kind} backend did not hand out {ioasid:#x}")
        self._used[ioasid] = 0


def backend_ops(backend: IdBackend, pdata: object = None) -> AllocatorOps[object]:
    """Ops over ``backend``. Ops made from one backend share its ID space (their callables are
    equal bound methods); ops of two backends never do, whatever their kind."""
    return AllocatorOps(backend.alloc, backend.free, pdata)


class Registrations:
    """Named backend registrations in one space: what a scenario's swap steps act on."""

    def __init__(self, space: IoasidSpace, seed: int | str) -> None:
        self.space = space
        self.seed = seed
        self.ops: dict[str, AllocatorOps[object]] = {}
        self._backends: dict[str, IdBackend] = {}

    def register(self, name: str, kind: BackendKind, *, share: bool = False) -> None:
        """Register a new backend of ``kind`` as ``name``; with ``share``, join (with a
        pdata of its own) the ID space of the first live registration of that kind."""
        if name in self.ops:
            raise AlreadyRegisteredError(f"an allocator is already registered as {name!r}")
        partner = next((b for b in self._backends.values() if b.kind == kind), None)
        if share and partner is None:
            raise NotFoundError(f"no live {kind} allocator to share with")
        backend = partner if share and partner is not None else None
        if backend is None:
            backend = IdBackend(kind, self.space.capacity, f"{self.seed}/allocator/{name}")
        ops = backend_ops(backend, name)
        self.space.register_allocator(ops)  # raises before anything is kept
        self.ops[name] = ops
        self._backends[name] = backend

    def unregister(self, name: str, *, force: bool = False) -> list[int]:
        """Unregister ``name``; return the IDs a forced unregister reclaimed."""
        ops = self.ops.get(name)
        if ops is None:
            raise NotFoundError(f"no allocator is registered as {name!r}")
        before = _live(self.space) if force else set()
        self.space.unregister_allocator(ops, force=force)
        del self.ops[name], self._backends[name]
        return sorted(before - _live(self.space))


def _live(space: IoasidSpace) -> set[int]:
    return set(space.records_view())  # the allocated IDs
