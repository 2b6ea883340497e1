"""Seeded generators: ``[[generators]]`` entries expanded into ordinary step tables.

One module per kind (its spec, its keys, its parse and its expansion), registered by one
line in :data:`GENERATORS`: the loader reads an entry through the table (its keys, its
``parse``), and the expansion finds each spec's ``expand`` there. Adding a kind is a module
and a line here (and its section in docs/scenarios.md, which a test checks).

Expansion happens at load time, before the step checks, so a generated step is checked
exactly like a written one (names live, devices plugged, ...) and the replay needs no
change. Everything is drawn from a ``random.Random`` seeded from the file, so the same
file and seed always give the same steps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
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
from ioasid_core.scenario.generators.base import Context, GeneratorKind, GeneratorSpec, RawStep
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
    "merge_steps",
    "read_generators",
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


def expand(spec: GeneratorSpec, rng: random.Random) -> list[RawStep]:
    """The step tables ``spec`` stands for, in time order (its kind's ``expand``)."""
    expansion: list[RawStep] = _BY_SPEC[type(spec)].expand(spec, rng)
    return expansion


def expand_all(
    specs: Sequence[tuple[str, GeneratorSpec]], scenario_seed: int
) -> list[tuple[str, RawStep]]:
    """Every generator's steps, each with its ``where`` (``generators[i]/<n>``), sorted by
    time; ties keep generator order, then the order within the generator."""
    found: list[tuple[float, int, int, str, RawStep]] = []
    for order, (path, spec) in enumerate(specs):
        index = _index(path, order)
        for n, table in enumerate(expand(spec, generator_rng(spec, index, scenario_seed))):
            found.append((_at(table), order, n, f"{path}/{n}", table))
    found.sort(key=lambda item: item[:3])
    return [(where, table) for _, _, _, where, table in found]


def merge_steps(
    explicit: Iterable[tuple[str, Mapping[str, object]]],
    generated: Sequence[tuple[str, Mapping[str, object]]],
) -> list[tuple[str, Mapping[str, object]]]:
    """Explicit steps in file order, generated ones slotted in by time.

    An explicit step goes before generated ones at the same ``at``. Explicit steps are
    never reordered among themselves, so an explicit ``at`` that goes back is still
    reported by the step checks; one without a usable ``at`` keeps the previous one's.
    """
    merged: list[tuple[str, Mapping[str, object]]] = []
    pending = list(generated)
    taken = 0
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
        while taken < len(pending) and _at(pending[taken][1]) < last:
            merged.append(pending[taken])
            taken += 1
        merged.append((where, table))
    merged.extend(pending[taken:])
    return merged


def _index(path: str, fallback: int) -> int:
    """``i`` of ``generators[i]``: the seed mix uses the index in the file, not the order
    among the valid entries, so fixing an earlier bad entry does not reseed this one."""
    head, _, tail = path.partition("[")
    digits = tail.rstrip("]")
    return int(digits) if head == "generators" and digits.isdigit() else fallback


def _at(table: Mapping[str, object]) -> float:
    value = table["at"]
    assert isinstance(value, float)
    return value
