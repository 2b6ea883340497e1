"""``kind = "churn"``: SVA bind/unbind churn, by address spaces or fresh processes.

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
from ioasid_core.scenario.processes import split_process_name
from ioasid_core.scenario.reader import join
from ioasid_core.scenario.schema import GeneratedProcesses, Step, process_name

__all__ = ["KIND", "ChurnSpec"]


@attrs.frozen(kw_only=True)
class ChurnSpec:
    """``kind = "churn"``: ``count`` SVA binds of ``device`` in ``set``, each by the next
    address space of ``address_spaces`` (cycled) or, with ``processes``, by a fresh process
    ``<prefix>proc<n>`` that exits after its unbind (a PASID allocated per bind).

    At most ``live`` are bound at once: the oldest is unbound to make room, the rest are
    unbound at the end. Names are ``<prefix><n>``.
    """

    at: float
    device: str
    set: str
    count: int
    live: int
    interval: float
    address_spaces: tuple[str, ...] = ()
    """The pool the binds cycle through; a bind of one still bound shares its PASID."""
    processes: bool = False
    jitter: int = 0
    """Each gap is ``interval`` plus a seeded 0..jitter µs: the seed's only effect here."""
    prefix: str = ""
    seed: int | None = None
    where: str = ""

    def address_space(self, n: int) -> str:
        """Who makes bind ``n``."""
        if self.processes:
            return process_name(self.prefix, n)
        return self.address_spaces[n % len(self.address_spaces)]


def parse(
    ctx: Context, path: str, table: Mapping[str, object], at: float | None, seed: int | None
) -> ChurnSpec | None:
    r, d = ctx.reader, ctx.declared
    device = r.name(table, path, "device")
    r.refer(d.devices, "device", device, join(path, "device"))
    set_name = r.name(table, path, "set")
    r.refer(d.sets, "set", set_name, join(path, "set"))
    spaces = churn_spaces(ctx, path, table)
    processes = bool(r.boolean(table, path, "processes"))
    given = [k for k in ("address_space", "address_spaces") if k in table]
    if processes:
        given.append("processes")
    if len(given) != 1:
        r.bad(
            path,
            "churn takes one of address_space, address_spaces or processes = true (who "
            f"binds), got {' and '.join(given) or 'none'}",
        )
    count = r.integer(table, path, "count", 1, MAX_GENERATED)
    live = r.integer(table, path, "live", 1)
    interval = r.number(table, path, "interval", positive=True)
    jitter = r.integer(table, path, "jitter", 0) or 0
    prefix = r.string(table, path, "prefix")
    index = path.removeprefix("generators")
    prefix = f"churn{index}." if prefix is None else prefix
    if processes and count is not None:
        spawn(ctx, path, table, GeneratedProcesses(prefix=prefix, count=count, where=path))
    if (
        at is None
        or device is None
        or set_name is None
        or (not spaces and not processes)
        or count is None
        or live is None
        or interval is None
    ):
        return None
    return ChurnSpec(
        at=at,
        device=device,
        set=set_name,
        address_spaces=spaces,
        processes=processes,
        count=count,
        live=live,
        interval=interval,
        jitter=jitter,
        prefix=prefix,
        seed=seed,
        where=path,
    )


def churn_spaces(ctx: Context, path: str, table: Mapping[str, object]) -> tuple[str, ...]:
    """``address_space`` (one), or ``address_spaces`` (a pool, cycled), all declared."""
    r, d = ctx.reader, ctx.declared
    if "address_space" in table:
        space = r.name(table, path, "address_space")
        ok = r.refer(d.all_spaces, "address space", space, join(path, "address_space"))
        return (space,) if ok and space is not None else ()
    found = r.names(table, path, "address_spaces")
    if "address_spaces" in table and isinstance(table["address_spaces"], list) and not found:
        r.bad(join(path, "address_spaces"), "expected at least one address space name")
    refs = [(w, n) for w, n in found if r.refer(d.all_spaces, "address space", n, w)]
    return tuple(name for _, name in refs) if len(refs) == len(found) else ()


def spawn(
    ctx: Context, path: str, table: Mapping[str, object], processes: GeneratedProcesses
) -> None:
    """Declare a churn's generated processes (a range, not one name each); a name already
    taken (by a declared address space or another churn's range) is reported once, the
    lowest-numbered one."""
    r, d = ctx.reader, ctx.declared
    taken = d.processes.by_prefix.get(processes.prefix)
    clash = (processes.name(0), taken.where) if taken is not None else None
    if clash is None:
        numbered_names = (
            (split[1], name, where)
            for name, where in d.spaces.items()
            if (split := split_process_name(name)) is not None
            and split[0] == processes.prefix
            and split[1] < processes.count
        )
        first = min(numbered_names, default=None)
        clash = (first[1], first[2]) if first is not None else None
    if clash is not None:
        key = "prefix" if "prefix" in table else "processes"
        r.bad(
            join(path, key),
            f"generated process {clash[0]!r} is already an address space ({clash[1]}): "
            "pick another prefix",
        )
        return
    d.processes.add(processes)


def expand(spec: ChurnSpec, rng: random.Random) -> Iterator[Step]:
    labels = numbered(spec.where)

    def bind(name: str, n: int, now: float) -> tuple[Step]:
        return (
            Step(
                op="bind",
                at=now,
                device=spec.device,
                set=spec.set,
                address_space=spec.address_space(n),
                name=name,
                where=next(labels),
            ),
        )

    def unbind(name: str, now: float) -> Step:
        return Step(op="unbind", at=now, device=spec.device, pasid=name, where=next(labels))

    return window(spec, rng, bind, unbind)


def work(spec: ChurnSpec, rng: random.Random) -> int:
    """A bind and its unbind per ``count``, whatever the draws."""
    return 2 * spec.count


KIND: Final = GeneratorKind(
    name="churn",
    spec=ChurnSpec,
    required=frozenset({"device", "set", "count", "live", "interval"}),
    optional=frozenset({"address_space", "address_spaces", "processes", "jitter", "prefix"}),
    parse=parse,
    expand=expand,
    work=work,
)
