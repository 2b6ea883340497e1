"""``kind = "allocator_swaps"``: built-in allocator backends swapped in turn.

Its spec, its keys, how an entry is read and what it expands into; registered by one line in
:data:`ioasid_core.scenario.generators.GENERATORS`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Final

import attrs

from ioasid_core.backends import BACKEND_KINDS, BackendKind
from ioasid_core.scenario.bounds import MAX_GENERATED
from ioasid_core.scenario.generators.base import (
    Context,
    GeneratorKind,
    gap,
    numbered,
)
from ioasid_core.scenario.reader import choose, describe, join
from ioasid_core.scenario.schema import Step

__all__ = ["KIND", "AllocatorSwapsSpec"]


@attrs.frozen(kw_only=True)
class AllocatorSwapsSpec:
    """``kind = "allocator_swaps"``: ``count`` registrations of built-in allocator backends,
    their kinds cycling through ``kinds``, each unregistered (with ``force``) before the
    next is registered; gaps are ``interval`` plus a seeded 0..``jitter`` µs. Registration
    names are ``<prefix><n>``."""

    at: float
    kinds: tuple[BackendKind, ...]
    count: int
    interval: float
    jitter: int = 0
    force: bool = False
    prefix: str = ""
    seed: int | None = None
    where: str = ""


def parse(
    ctx: Context, path: str, table: Mapping[str, object], at: float | None, seed: int | None
) -> AllocatorSwapsSpec | None:
    r = ctx.reader
    kinds: list[BackendKind] = []
    listed = r.array(table, path, "kinds")
    for index, name in enumerate(listed):  # a kind may come back in the cycle
        kind = choose(name, BACKEND_KINDS) if isinstance(name, str) else None
        if kind is None:
            shown = repr(name) if isinstance(name, str) else describe(name)
            r.bad(
                f"{path}.kinds[{index}]",
                f"expected one of {', '.join(BACKEND_KINDS)}, got {shown}",
            )
        else:
            kinds.append(kind)
    if "kinds" in table and isinstance(table["kinds"], list) and not listed:
        r.bad(join(path, "kinds"), "expected at least one allocator backend")
    count = r.integer(table, path, "count", 1, MAX_GENERATED)
    interval = r.number(table, path, "interval", positive=True)
    jitter = r.integer(table, path, "jitter", 0) or 0
    force = r.boolean(table, path, "force")
    prefix = r.string(table, path, "prefix")
    if at is None or not kinds or count is None or interval is None:
        return None  # (a bad kind was reported: the generator is dropped)
    return AllocatorSwapsSpec(
        at=at,
        kinds=tuple(kinds),
        count=count,
        interval=interval,
        jitter=jitter,
        force=bool(force),
        prefix=f"swap{path.removeprefix('generators')}." if prefix is None else prefix,
        seed=seed,
        where=path,
    )


def expand(spec: AllocatorSwapsSpec, rng: random.Random) -> Iterator[Step]:
    """Register, unregister, register, ...: each gap at least ``interval`` > 0."""
    labels = numbered(spec.where)
    now = spec.at
    for n in range(spec.count):
        name = f"{spec.prefix}{n}"
        kind = spec.kinds[n % len(spec.kinds)]
        yield Step(op="register_allocator", at=now, allocator=name, kind=kind, where=next(labels))
        now += gap(spec, rng)
        yield Step(
            op="unregister_allocator",
            at=now,
            allocator=name,
            force=spec.force,
            where=next(labels),
        )
        now += gap(spec, rng)


def work(spec: AllocatorSwapsSpec, rng: random.Random) -> int:
    """A registration and its end per ``count``."""
    return 2 * spec.count


KIND: Final = GeneratorKind(
    name="allocator_swaps",
    spec=AllocatorSwapsSpec,
    required=frozenset({"kinds", "count", "interval"}),
    optional=frozenset({"jitter", "force", "prefix"}),
    parse=parse,
    expand=expand,
    work=work,
)
