"""``kind = "hotplug"``: a unit (a host one or a VM's) unplugged and plugged again.

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
    gap,
    numbered,
)
from ioasid_core.scenario.reader import join
from ioasid_core.scenario.schema import Step

__all__ = ["KIND", "HotplugSpec"]


@attrs.frozen(kw_only=True)
class HotplugSpec:
    """``kind = "hotplug"``: ``count`` cycles of ``unplug`` then ``plug`` of ``unit`` (a host
    unit, or with ``vm`` one of that VM's virtual units), each gap ``interval`` plus a seeded
    0..``jitter`` µs. The unit ends plugged."""

    at: float
    unit: str
    count: int
    interval: float
    vm: str | None = None
    jitter: int = 0
    seed: int | None = None
    where: str = ""


def parse(
    ctx: Context, path: str, table: Mapping[str, object], at: float | None, seed: int | None
) -> HotplugSpec | None:
    """A host unit, or with ``vm`` one of that VM's; the step checks then apply the
    life-cycle rules (alternation, devices gone, a VM's last unit) to every cycle."""
    r, d = ctx.reader, ctx.declared
    vm = r.name(table, path, "vm")
    unit = r.name(table, path, "unit")
    key = join(path, "unit")
    if vm is not None:
        if r.refer(d.vm_units, "VM", vm, join(path, "vm")):
            r.refer(d.vm_units[vm], f"virtual unit of VM {vm!r}", unit, key)
    elif "vm" not in table:
        r.refer(d.units, "unit", unit, key)
    count = r.integer(table, path, "count", 1, MAX_GENERATED)
    interval = r.number(table, path, "interval", positive=True)
    jitter = r.integer(table, path, "jitter", 0) or 0
    if at is None or unit is None or count is None or interval is None:
        return None
    return HotplugSpec(
        at=at,
        unit=unit,
        vm=vm,
        count=count,
        interval=interval,
        jitter=jitter,
        seed=seed,
        where=path,
    )


def expand(spec: HotplugSpec, rng: random.Random) -> Iterator[Step]:
    """Unplug, plug, unplug, ...: each gap at least ``interval`` > 0, so in time order."""
    labels = numbered(spec.where)
    now = spec.at
    for _ in range(spec.count):
        for op in ("unplug", "plug"):
            yield Step(op=op, at=now, unit=spec.unit, vm=spec.vm, where=next(labels))
            now += gap(spec, rng)


def work(spec: HotplugSpec, rng: random.Random) -> int:
    """An unplug and a plug per ``count``."""
    return 2 * spec.count


KIND: Final = GeneratorKind(
    name="hotplug",
    spec=HotplugSpec,
    required=frozenset({"unit", "count", "interval"}),
    optional=frozenset({"vm", "jitter"}),
    parse=parse,
    expand=expand,
    work=work,
)
