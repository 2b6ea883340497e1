"""Seeded generators: ``[[generators]]`` entries expanded into ordinary steps, lazily.

One module per kind (its spec, its keys, its parse, its expansion and its work), registered
by one line in :data:`GENERATORS`: the loader reads an entry through the table (its keys, its
``parse``), and the expansion finds each spec's ``expand`` there. Adding a kind is a module
and a line here (and its section in docs/scenarios.md, which a test checks).

A generator yields its steps one at a time, in time order, and :func:`stream_all` merges the
generators as they come, so neither loading nor a replay holds every step: the loader checks
each generated step as it goes by (names live, devices plugged, ...) and keeps none, and the
scenario's :class:`~ioasid_core.scenario.stream.StepStream` expands them again when a replay
walks it. Everything is drawn from a ``random.Random`` seeded from the file, so the same file
and seed always give the same steps, in the same order, each time.
"""

from __future__ import annotations

import heapq
import math
import operator
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from ioasid_core.scenario.generators import (
    allocator_swaps,
    churn,
    driver_pasids,
    guest_allocations,
    hotplug,
    page_request_stream,
    storm,
)
from ioasid_core.scenario.generators.allocator_swaps import AllocatorSwapsSpec
from ioasid_core.scenario.generators.base import (
    Context,
    GeneratorKind,
    GeneratorSpec,
    RawStep,
    step_work,
)
from ioasid_core.scenario.generators.churn import ChurnSpec
from ioasid_core.scenario.generators.driver_pasids import DriverPasidsSpec
from ioasid_core.scenario.generators.guest_allocations import GuestAllocationsSpec
from ioasid_core.scenario.generators.hotplug import HotplugSpec
from ioasid_core.scenario.generators.page_request_stream import (
    UNKNOWN_PASID_BASE,
    PageRequestStreamSpec,
)
from ioasid_core.scenario.generators.storm import StormSpec
from ioasid_core.scenario.reader import join
from ioasid_core.scenario.schema import Step

__all__ = [
    "GENERATORS",
    "UNKNOWN_PASID_BASE",
    "AllocatorSwapsSpec",
    "ChurnSpec",
    "Context",
    "DriverPasidsSpec",
    "GeneratorKind",
    "GeneratorSpec",
    "GuestAllocationsSpec",
    "HotplugSpec",
    "PageRequestStreamSpec",
    "RawStep",
    "StormSpec",
    "expand",
    "expand_all",
    "generator_rng",
    "generator_work",
    "merge_steps",
    "read_generators",
    "step_work",
    "stream_all",
]

GENERATORS: Final[Mapping[str, GeneratorKind[Any]]] = {
    # kind: its module's KIND, in the order "expected one of ..." lists them.
    kind.name: kind
    for kind in (
        churn.KIND,
        page_request_stream.KIND,
        storm.KIND,
        guest_allocations.KIND,
        driver_pasids.KIND,
        hotplug.KIND,
        allocator_swaps.KIND,
    )
}
"""Every generator kind, by its ``kind = "..."``."""

_BY_SPEC: Final[Mapping[type, GeneratorKind[Any]]] = {k.spec: k for k in GENERATORS.values()}
_COMMON: Final = frozenset({"kind", "at", "seed"})


def read_generators(ctx: Context, top: Mapping[str, object]) -> list[tuple[str, GeneratorSpec]]:
    """Each well-formed ``[[generators]]`` entry with its key path; the bad ones are
    reported and left out (so they expand into nothing)."""
    r = ctx.reader
    found = []
    for path, table in r.tables(top, "", "generators"):
        spec = _read(ctx, path, table)
        if spec is not None:
            found.append((path, spec))
    return found


def _read(ctx: Context, path: str, table: Mapping[str, object]) -> GeneratorSpec | None:
    r = ctx.reader
    r = ctx.reader
    name = r.string(table, path, "kind", required=True)
    if name is not None and name not in GENERATORS:
        r.bad(join(path, "kind"), f"expected one of {', '.join(GENERATORS)}, got {name!r}")
        name = None
    if name is None:
        return None
    kind = GENERATORS[name]
    r.unknown_keys(table, path, _COMMON | kind.required | kind.optional)
    for key in sorted(kind.required - table.keys()):
        r.missing(path, key, f"generator kind {name!r} needs it")
    at = r.number(table, path, "at", positive=False)
    seed = r.integer(table, path, "seed", 0)
    problems = len(r.problems)
    spec: GeneratorSpec | None = kind.parse(ctx, path, table, at, seed)
    return spec if len(r.problems) == problems and at is not None else None


def generator_rng(spec: GeneratorSpec, index: int, scenario_seed: int) -> random.Random:
    """The generator's own stream: its ``seed`` if given, else the scenario's mixed with
    its index, so two generators of one file do not draw the same numbers."""
    if spec.seed is not None:
        return random.Random(spec.seed)
    return random.Random(f"{scenario_seed}/generators[{index}]")


def expand(spec: GeneratorSpec, rng: random.Random) -> Iterator[Step]:
    """The steps ``spec`` stands for, one at a time, in time order (its kind's ``expand``)."""
    expansion: Iterator[Step] = _BY_SPEC[type(spec)].expand(spec, rng)
    return expansion


def generator_work(order: int, path: str, spec: GeneratorSpec, scenario_seed: int) -> int:
    """The events (steps and page requests) of the ``order``-th valid generator, at
    ``path``, counted without keeping its steps: its kind's ``work``, drawing from the
    stream :func:`stream_all` gives it."""
    rng = generator_rng(spec, _index(path, order), scenario_seed)
    work: int = _BY_SPEC[type(spec)].work(spec, rng)
    return work


_AT: Final = operator.attrgetter("at")


def stream_all(specs: Sequence[tuple[str, GeneratorSpec]], scenario_seed: int) -> Iterator[Step]:
    """Every generator's steps, merged by time as they come; ties keep generator order,
    then the order within the generator. Each generator yields in time order, so this is
    the stable sort of all of them while holding one step per generator."""
    streams = [
        expand(spec, generator_rng(spec, _index(path, order), scenario_seed))
        for order, (path, spec) in enumerate(specs)
    ]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_AT)


def expand_all(specs: Sequence[tuple[str, GeneratorSpec]], scenario_seed: int) -> list[Step]:
    """:func:`stream_all`, held in a list (for a small file or a test)."""
    return list(stream_all(specs, scenario_seed))


def merge_steps(
    explicit: Iterable[tuple[str, Mapping[str, object]]],
    generated: Iterable[Step],
) -> Iterator[tuple[str, Mapping[str, object]] | Step]:
    """Explicit steps (key path and table) in file order, generated ones slotted in by
    time, lazily.

    An explicit step goes before generated ones at the same ``at``. Explicit steps are
    never reordered among themselves, so an explicit ``at`` that goes back is still
    reported by the step checks; one without a usable ``at`` keeps the previous one's.
    """
    pending = iter(generated)
    head = next(pending, None)
    last = 0.0
    for where, table in explicit:
        value = table.get("at", 0.0)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= last
        ):
            last = float(value)
        while head is not None and head.at < last:
            yield head
            head = next(pending, None)
        yield where, table
    if head is not None:
        yield head
        yield from pending


def _index(path: str, fallback: int) -> int:
    """``i`` of ``generators[i]``: the seed mix uses the index in the file, not the order
    among the valid entries, so fixing an earlier bad entry does not reseed this one."""
    head, _, tail = path.partition("[")
    digits = tail.rstrip("]")
    return int(digits) if head == "generators" and digits.isdigit() else fallback
