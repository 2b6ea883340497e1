"""``kind = "storm"``: every device fires its groups at once, then one service.

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
    device_list,
    draw_size,
    pasid_refs,
    size_range,
    streamed_work,
)
from ioasid_core.scenario.reader import join
from ioasid_core.scenario.schema import PermName, Step

__all__ = ["KIND", "StormSpec"]


@attrs.frozen(kw_only=True)
class StormSpec:
    """``kind = "storm"``: every device fires ``groups`` groups at ``at`` with service off,
    then one ``service`` of ``unit`` after ``delay`` µs."""

    at: float
    devices: tuple[str, ...]
    pasids: tuple[str | int, ...]
    groups: int
    group_size: tuple[int, int]
    unit: str
    delay: float
    perm: tuple[PermName, ...] = ("read",)
    seed: int | None = None
    where: str = ""


def parse(
    ctx: Context, path: str, table: Mapping[str, object], at: float | None, seed: int | None
) -> StormSpec | None:
    r, d = ctx.reader, ctx.declared
    devices = device_list(ctx, table, path)
    pasids: tuple[str | int, ...] = ()
    if "pasids" in table:
        pasids = pasid_refs(ctx, table["pasids"], join(path, "pasids"))
        if devices and pasids and len(pasids) != len(devices):
            r.bad(
                join(path, "pasids"),
                f"expected one PASID per device ({len(devices)}), got {len(pasids)}",
            )
    groups = r.integer(table, path, "groups", 1, MAX_GENERATED)
    group_size = size_range(ctx, table, path, "group_size")
    unit = r.name(table, path, "unit")
    if r.refer(d.units, "unit", unit, join(path, "unit")):
        for device in devices:
            if d.devices.get(device) not in (None, unit):
                r.bad(
                    join(path, "devices"),
                    f"device {device!r} is behind unit {d.devices[device]!r}, not "
                    f"{unit!r}: the storm services {unit!r} only",
                )
    delay = r.number(table, path, "delay", positive=False)
    perm = r.perm(path, table)
    if at is None or groups is None or unit is None or delay is None or not devices:
        return None
    return StormSpec(
        at=at,
        devices=devices,
        pasids=pasids,
        groups=groups,
        group_size=group_size,
        unit=unit,
        delay=delay,
        perm=perm or ("read",),
        seed=seed,
        where=path,
    )


def expand(spec: StormSpec, rng: random.Random) -> Iterator[Step]:
    """Every device's groups at ``at``, then the service at ``at + delay``: in time order."""
    n = 0
    for device, pasid in zip(spec.devices, spec.pasids, strict=True):
        yield Step(
            op="page_requests",
            at=spec.at,
            device=device,
            pasid=pasid,
            groups=spec.groups,
            group_size=draw_size(spec.group_size, rng),
            perm=spec.perm,
            service=False,
            where=f"{spec.where}/{n}",
        )
        n += 1
    yield Step(op="service", at=spec.at + spec.delay, unit=spec.unit, where=f"{spec.where}/{n}")


work = streamed_work(expand)
"""Counted as made: the sizes are drawn (one step per device and one more)."""


KIND: Final = GeneratorKind(
    name="storm",
    spec=StormSpec,
    required=frozenset({"devices", "pasids", "groups", "unit"}),
    optional=frozenset({"group_size", "delay", "perm"}),
    parse=parse,
    expand=expand,
    work=work,
)
