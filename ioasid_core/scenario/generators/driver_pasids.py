"""``kind = "driver_pasids"``: a driver's own PASIDs (and auxiliary domains).

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
    numbered,
    window,
)
from ioasid_core.scenario.reader import join
from ioasid_core.scenario.schema import Step

__all__ = ["KIND", "DriverPasidsSpec"]


@attrs.frozen(kw_only=True)
class DriverPasidsSpec:
    """``kind = "driver_pasids"``: a device driver's own PASIDs, ``count`` ``alloc`` steps in
    its private ``set``, each one's private data a driver object of ``owner``.

    At most ``live`` are held at once (the oldest is freed to make room; the rest at the
    end). With ``device`` and ``groups``: auxiliary domains, each PASID used by ``device``
    right after its allocation (``groups`` page request groups), as a driver hands an
    auxiliary domain's PASID to the device it is attached to. Names are ``<prefix><n>``.
    """

    at: float
    set: str
    owner: str
    count: int
    live: int
    interval: float
    jitter: int = 0
    """Each gap is ``interval`` plus a seeded 0..jitter µs."""
    device: str | None = None
    groups: int = 0
    prefix: str = ""
    seed: int | None = None
    where: str = ""


def parse(
    ctx: Context, path: str, table: Mapping[str, object], at: float | None, seed: int | None
) -> DriverPasidsSpec | None:
    r, d = ctx.reader, ctx.declared
    set_name = r.name(table, path, "set")
    r.refer(d.sets, "set", set_name, join(path, "set"))
    owner = r.name(table, path, "owner")
    count = r.integer(table, path, "count", 1, MAX_GENERATED)
    live = r.integer(table, path, "live", 1)
    interval = r.number(table, path, "interval", positive=True)
    jitter = r.integer(table, path, "jitter", 0) or 0
    device = r.name(table, path, "device", required=False)
    r.refer(d.devices, "device", device, join(path, "device"))
    groups = r.integer(table, path, "groups", 0, MAX_GENERATED) or 0
    if groups and "device" not in table:
        r.missing(path, "device", "the device that sends the groups' page requests")
    prefix = r.string(table, path, "prefix")
    if (
        at is None
        or set_name is None
        or owner is None
        or count is None
        or live is None
        or interval is None
    ):
        return None
    return DriverPasidsSpec(
        at=at,
        set=set_name,
        owner=owner,
        count=count,
        live=live,
        interval=interval,
        jitter=jitter,
        device=device,
        groups=groups,
        prefix=f"driver{path.removeprefix('generators')}." if prefix is None else prefix,
        seed=seed,
        where=path,
    )


def expand(spec: DriverPasidsSpec, rng: random.Random) -> Iterator[Step]:
    labels = numbered(spec.where)
    aux = spec.device is not None and spec.groups > 0

    def alloc(name: str, n: int, now: float) -> Iterator[Step]:
        yield Step(
            op="alloc", at=now, set=spec.set, owner=spec.owner, name=name, where=next(labels)
        )
        if aux:  # an auxiliary domain, used at once
            yield Step(
                op="page_requests",
                at=now,
                device=spec.device,
                pasid=name,
                groups=spec.groups,
                where=next(labels),
            )

    def free(name: str, now: float) -> Step:
        return Step(op="free", at=now, pasid=name, where=next(labels))

    return window(spec, rng, alloc, free)


def work(spec: DriverPasidsSpec, rng: random.Random) -> int:
    """An alloc and its free per ``count``, and with a device its groups' requests."""
    per = 2 + (1 + spec.groups if spec.device is not None and spec.groups > 0 else 0)
    return per * spec.count


KIND: Final = GeneratorKind(
    name="driver_pasids",
    spec=DriverPasidsSpec,
    required=frozenset({"set", "owner", "count", "live", "interval"}),
    optional=frozenset({"jitter", "device", "groups", "prefix"}),
    parse=parse,
    expand=expand,
    work=work,
)
