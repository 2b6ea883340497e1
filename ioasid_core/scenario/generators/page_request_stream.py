"""``kind = "page_request_stream"``: ``count`` single-group ``page_requests`` steps.

Its spec, its keys, how an entry is read and what it expands into; registered by one line in
:data:`ioasid_core.scenario.generators.GENERATORS`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping
from typing import Final, Literal

import attrs

from ioasid_core.scenario.bounds import MAX_GENERATED
from ioasid_core.scenario.generators.base import (
    Context,
    GeneratorKind,
    device_list,
    draw_size,
    pasid_refs,
    size_range,
)
from ioasid_core.scenario.reader import join, known
from ioasid_core.scenario.schema import PermName, Step

__all__ = ["KIND", "PageRequestStreamSpec"]

UNKNOWN_PASID_BASE: Final = 0xFFF00
"""``unknown`` requests carry ``UNKNOWN_PASID_BASE + k % 256``: the top of the 20-bit
space, which the replay's bottom-up allocation does not reach in any example."""


_MixKind = Literal["valid", "unknown", "foreign", "stop"]

_MIX_KINDS: Final[tuple[_MixKind, ...]] = (
    "valid",
    "unknown",
    "foreign",
    "stop",
)


@attrs.frozen(kw_only=True)
class PageRequestStreamSpec:
    """``kind = "page_request_stream"``: ``count`` single-group ``page_requests`` steps.

    Each picks a device, a kind by the ``mix`` weights and a group size, from the seed.
    """

    at: float
    devices: tuple[str, ...]
    count: int
    group_size: tuple[int, int]
    """(min, max), inclusive; an int in the file is (n, n)."""
    interval: float
    mix: tuple[tuple[_MixKind, float], ...]
    pasids: tuple[tuple[str, tuple[str | int, ...]], ...] = ()
    """Per device, the PASIDs a ``valid`` request may carry."""
    foreign_pasids: tuple[str | int, ...] = ()
    perm: tuple[PermName, ...] = ("read",)
    service: bool = True
    seed: int | None = None
    where: str = ""


def parse(
    ctx: Context, path: str, table: Mapping[str, object], at: float | None, seed: int | None
) -> PageRequestStreamSpec | None:
    r = ctx.reader
    devices = device_list(ctx, table, path)
    count = r.integer(table, path, "count", 1, MAX_GENERATED)
    interval = r.number(table, path, "interval", positive=True)
    group_size = size_range(ctx, table, path, "group_size")
    mix = read_mix(ctx, table, path)
    weights = dict(mix)
    pools: list[tuple[str, tuple[str | int, ...]]] = []
    pasids_path = join(path, "pasids")
    if "pasids" in table:
        value = table["pasids"]
        if isinstance(value, Mapping):
            per_device = r.table(value, pasids_path) or {}
            for device, refs in per_device.items():
                where = join(pasids_path, device)
                if device not in devices:
                    r.bad(where, f"not one of this stream's devices ({known(devices)})")
                pools.append((device, pasid_refs(ctx, refs, where)))
            for device in devices:
                if device not in per_device and (weights.get("valid") or weights.get("stop")):
                    r.bad(
                        pasids_path,
                        f"no PASIDs for device {device!r}: valid and stop requests need some",
                    )
        else:
            shared = pasid_refs(ctx, value, pasids_path)
            pools = [(device, shared) for device in devices]
    elif weights.get("valid") or weights.get("stop"):
        r.missing(path, "pasids", "PASID names or numbers: the mix has valid or stop")
    foreign: tuple[str | int, ...] = ()
    if "foreign_pasids" in table:
        foreign = pasid_refs(ctx, table["foreign_pasids"], join(path, "foreign_pasids"))
    elif weights.get("foreign"):
        r.missing(path, "foreign_pasids", "PASID names or numbers: the mix has foreign")
    perm = r.perm(path, table)
    service = r.boolean(table, path, "service")
    if at is None or count is None or interval is None or not devices or not mix:
        return None
    return PageRequestStreamSpec(
        at=at,
        devices=devices,
        count=count,
        group_size=group_size,
        interval=interval,
        mix=mix,
        pasids=tuple(pools),
        foreign_pasids=foreign,
        perm=perm or ("read",),
        service=True if service is None else service,
        seed=seed,
        where=path,
    )


def read_mix(
    ctx: Context, table: Mapping[str, object], path: str
) -> tuple[tuple[_MixKind, float], ...]:
    """The weight of each request kind: numbers >= 0, at least one of them > 0."""
    r = ctx.reader
    if "mix" not in table:
        return ()
    where = join(path, "mix")
    weights = r.table(table["mix"], where)
    if weights is None:
        return ()
    r.unknown_keys(weights, where, _MIX_KINDS)
    mix: list[tuple[_MixKind, float]] = []
    for kind in _MIX_KINDS:
        if kind not in weights:
            continue
        weight = r.number(weights, where, kind, positive=False)
        if weight is not None and weight > 0:
            mix.append((kind, weight))
    if not mix and not any(p.key_path.startswith(where) for p in r.problems):
        r.bad(where, f"expected a weight > 0 for at least one of {', '.join(_MIX_KINDS)}")
    return tuple(mix)


def draws(
    spec: PageRequestStreamSpec, rng: random.Random
) -> Iterator[tuple[str, _MixKind, int, str | int]]:
    """Each request group's device, kind, size and PASID, drawn in the order the seed gives
    them: the one place the draws are made, for ``expand`` and ``work`` alike."""
    kinds = [kind for kind, _ in spec.mix]
    # The same draw as choices(kinds, weights), which accumulates the weights each call.
    cumulative = list(itertools.accumulate(weight for _, weight in spec.mix))
    pools = dict(spec.pasids)
    choice, choices = rng.choice, rng.choices
    for k in range(spec.count):
        device = choice(spec.devices)
        (kind,) = choices(kinds, cum_weights=cumulative)
        size = draw_size(spec.group_size, rng)
        pasid: str | int
        if kind == "unknown":
            pasid = UNKNOWN_PASID_BASE + k % 256
        elif kind == "foreign":
            pasid = choice(spec.foreign_pasids)
        else:
            pasid = choice(pools[device])
        yield device, kind, size, pasid


def expand(spec: PageRequestStreamSpec, rng: random.Random) -> Iterator[Step]:
    """One group a step, ``interval`` apart: time only grows."""
    for k, (device, kind, size, pasid) in enumerate(draws(spec, rng)):
        yield Step(
            op="page_requests",
            at=spec.at + k * spec.interval,
            device=device,
            pasid=pasid,
            group_size=size,
            perm=spec.perm,
            # A device stopping a PASID drains its last group, then sends the marker.
            stop_markers=1 if kind == "stop" else 0,
            service=spec.service,
            where=f"{spec.where}/{k}",
        )


def work(spec: PageRequestStreamSpec, rng: random.Random) -> int:
    """The step, its group's requests and a stop marker, by the same draws as ``expand``
    (no step built: this is the one kind whose count pass is a large part of loading)."""
    return sum(1 + size + (kind == "stop") for _, kind, size, _ in draws(spec, rng))


KIND: Final = GeneratorKind(
    name="page_request_stream",
    spec=PageRequestStreamSpec,
    required=frozenset({"devices", "count", "interval", "mix"}),
    optional=frozenset({"group_size", "pasids", "foreign_pasids", "perm", "service"}),
    parse=parse,
    expand=expand,
    work=work,
)
