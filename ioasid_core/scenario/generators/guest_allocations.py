"""``kind = "guest_allocations"``: ``count`` ``guest_alloc`` steps of ``vm``.

Its spec, its keys, how an entry is read and what it expands into; registered by one line in
:data:`ioasid_core.scenario.generators.GENERATORS`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Final

import attrs

from ioasid_core.scenario.bounds import MAX_GENERATED
from ioasid_core.scenario.generators.base import (
    Context,
    GeneratorKind,
    fraction,
    numbered,
    streamed_work,
)
from ioasid_core.scenario.reader import join
from ioasid_core.scenario.schema import Step

__all__ = ["KIND", "GuestAllocationsSpec"]


@attrs.frozen(kw_only=True)
class GuestAllocationsSpec:
    """``kind = "guest_allocations"``: ``count`` ``guest_alloc`` steps of ``vm``.

    After each, with probability ``free``, a seeded pick among the live ones is freed
    ``interval / 2`` µs later; with ``drain``, the rest are freed at the end, oldest first.
    Names are ``<prefix><n>``.
    """

    at: float
    vm: str
    count: int
    interval: float
    free: float = 0.5
    drain: bool = False
    owner: str | None = None
    prefix: str = ""
    seed: int | None = None
    where: str = ""


def parse(
    ctx: Context, path: str, table: Mapping[str, object], at: float | None, seed: int | None
) -> GuestAllocationsSpec | None:
    r, d = ctx.reader, ctx.declared
    vm = r.name(table, path, "vm")
    r.refer(d.vms, "VM", vm, join(path, "vm"))
    count = r.integer(table, path, "count", 1, MAX_GENERATED)
    interval = r.number(table, path, "interval", positive=True)
    free = fraction(ctx, table, path, "free")
    drain = r.boolean(table, path, "drain")
    owner = r.name(table, path, "owner")
    prefix = r.string(table, path, "prefix")
    if at is None or vm is None or count is None or interval is None or free is None:
        return None
    return GuestAllocationsSpec(
        at=at,
        vm=vm,
        count=count,
        interval=interval,
        free=free,
        drain=bool(drain),
        owner=owner,
        prefix=f"guest{path.removeprefix('generators')}." if prefix is None else prefix,
        seed=seed,
        where=path,
    )


def expand(spec: GuestAllocationsSpec, rng: random.Random) -> Iterator[Step]:
    """In time order: a free comes half an interval after its alloc, before the next one
    (float rounding keeps it at or before: ``tests/test_step_stream.py`` checks the order
    down to intervals below ``at``'s precision), and the drain after the last."""
    labels = numbered(spec.where)
    live: list[str] = []
    for n in range(spec.count):
        at = spec.at + n * spec.interval
        name = f"{spec.prefix}{n}"
        yield Step(
            op="guest_alloc", at=at, vm=spec.vm, name=name, owner=spec.owner, where=next(labels)
        )
        live.append(name)
        if rng.random() < spec.free:
            gone = live.pop(rng.randrange(len(live)))
            yield Step(
                op="guest_free",
                at=at + spec.interval / 2,
                vm=spec.vm,
                pasid=gone,
                where=next(labels),
            )
    if spec.drain:
        end = spec.at + spec.count * spec.interval
        for k, name in enumerate(live):
            yield Step(
                op="guest_free",
                at=end + k * spec.interval / 2,
                vm=spec.vm,
                pasid=name,
                where=next(labels),
            )


work = streamed_work(expand)
"""Counted as made: how many frees there are is drawn."""


KIND: Final = GeneratorKind(
    name="guest_allocations",
    spec=GuestAllocationsSpec,
    required=frozenset({"vm", "count", "interval"}),
    optional=frozenset({"free", "drain", "owner", "prefix"}),
    parse=parse,
    expand=expand,
    work=work,
)
