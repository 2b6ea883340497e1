"""What runs in a worker: a batch of a sweep's runs, against cargo the worker holds.

The cargo is the base scenario's TOML document, each point's changes and the vendors: a few
KB however large the generated scenarios are. A worker receives it once (a pool's
initializer, a Dask broadcast) and builds each point's scenario itself, keeping the last
few, so the runs of one point share one load; and, as a comparison's worker does, it makes
the point's generated steps once and holds them for those runs (``hold_steps``: the
scenarios a worker keeps hold at most 64 MiB of steps between them; a point above that
makes them again in each run). What comes back is a summary per run: its flat metric values
(in the order of the cargo's metric names: a tuple, not a dict, so a parent holding 100,000
of them holds about a kilobyte each) and timings, never the samples behind them.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from ioasid_core.compare import VendorFailure
from ioasid_core.plugins import Hooks, new_plugin_manager
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.replay import replay
from ioasid_core.scenario.load import parse_scenario
from ioasid_core.scenario.schema import Scenario
from ioasid_core.scenario.stream import HeldSteps, hold_steps, hold_steps_limit
from ioasid_core.shipping import held
from ioasid_core.sweep.paths import KeyPath
from ioasid_core.sweep.plan import RunKey, SweepPlan, point_document
from ioasid_core.sweep.rows import metric_row

__all__ = ["Cargo", "HeldCargo", "Outcome", "cargo_of", "forget", "held_steps", "run_batch"]

_KEPT: Final = 4
"""Scenarios a worker keeps loaded (a batch spans one or two points)."""


@attrs.frozen
class Cargo:
    """Everything a worker needs to run any run of one sweep."""

    key: str
    """The sweep's identity (its file's and base scenario's digests)."""
    base: Mapping[str, object]
    source: str
    changes: tuple[tuple[tuple[KeyPath, object], ...], ...]
    """Per point, its changes to the base."""
    vendors: Mapping[str, VendorPrq]
    metrics: tuple[str, ...]
    """The metric columns, in the order of each outcome's ``values``."""
    seeded: bool
    """The base has generators: the seed changes the scenario, not only the run."""
    plugins: bool
    """The runs take the installed plugins: a worker probes units and delivers set and event
    hooks through its own manager of them (made at its first run of the sweep; a manager
    does not pickle), as ``compare``'s workers do."""
    shared: bool
    """Some scenario (a point, under a seed when ``seeded``) has more than one run: its
    steps are worth making once and holding."""


@attrs.frozen
class HeldCargo:
    """Stands for cargo the worker was given at start (``ioasid_core.shipping``)."""

    key: str


@attrs.frozen
class Outcome:
    """One run's summary: its metric values, or the error that stopped it."""

    index: int
    values: tuple[object, ...] | None
    """One per metric column of the cargo (None: the run failed)."""
    extra: dict[str, object] | None
    """Metrics outside those columns (a point whose axis changed its ``[latency]`` ops)."""
    error: str | None
    wall_s: float
    cpu_s: float


def cargo_of(plan: SweepPlan, *, plugins: bool = False) -> Cargo:
    """The sweep's cargo; ``plugins``: its runs take the installed plugins."""
    spec = plan.spec
    seeded = "generators" in spec.base
    scenarios = {(run.point, run.seed if seeded else 0) for run in plan.runs}
    return Cargo(
        # This sweep's run of the file, not the file: a Dask worker outlives a sweep, and
        # makes its plugin manager again for the next one.
        key=f"sweep-{spec.digest[:16]}-{spec.base_digest[:16]}-{uuid.uuid4().hex[:12]}",
        base=spec.base,
        source=spec.base_source,
        changes=tuple(p.changes for p in plan.points),
        vendors=dict(plan.vendors),
        metrics=plan.columns,
        seeded=seeded,
        plugins=plugins,
        shared=len(scenarios) < len(plan.runs),
    )


_LOADED: OrderedDict[tuple[str, int, int], Scenario] = OrderedDict()
"""The scenarios this worker keeps, least recently used first (their steps held or not)."""


def _scenario(cargo: Cargo, point: int, seed: int) -> Scenario:
    key = (cargo.key, point, seed if cargo.seeded else 0)
    scenario = _LOADED.get(key)
    if scenario is not None:
        _LOADED.move_to_end(key)
        return scenario
    # An earlier sweep's scenarios go at this sweep's first load (a Dask worker outlives
    # sweeps, and their cargo keys are never asked for again): not only as many as it loads.
    for stale in [k for k in _LOADED if k[0] != cargo.key]:
        del _LOADED[stale]
    document = point_document(cargo.base, cargo.changes[point], seed)
    scenario = parse_scenario(document, cargo.source)
    if cargo.shared:
        steps = hold_steps(scenario.steps)
        if steps is not scenario.steps:
            scenario = attrs.evolve(scenario, steps=steps)
    _LOADED[key] = scenario
    # The oldest go first, until those kept hold no more steps than one process may.
    while len(_LOADED) > _KEPT or held_steps() > hold_steps_limit():
        _LOADED.popitem(last=False)
    return scenario


def forget(key: str) -> None:
    """Drop the scenarios of the sweep whose cargo is ``key`` (it is over)."""
    for loaded in [k for k in _LOADED if k[0] == key]:
        del _LOADED[loaded]


def held_steps() -> int:
    """The steps the scenarios this worker keeps hold between them."""
    return sum(len(s.steps) for s in _LOADED.values() if isinstance(s.steps, HeldSteps))


_HOOKS: dict[str, Hooks] = {}
"""This worker's manager of the installed plugins, for the sweep (cargo key) it serves."""


def _worker_hooks(key: str) -> Hooks:
    hooks = _HOOKS.get(key)
    if hooks is None:
        _HOOKS.clear()  # an earlier sweep's
        hooks = _HOOKS[key] = new_plugin_manager().hooks
    return hooks


def _run(cargo: Cargo, run: RunKey, hooks: Hooks | None) -> Outcome:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        scenario = _scenario(cargo, run.point, run.seed)
        vendor = cargo.vendors[run.vendor]
        try:
            result = replay(scenario, vendor, run.policy, seed=run.seed, hooks=hooks)
        except Exception as exc:  # a plugin's failure, named like compare names it
            raise VendorFailure(run.vendor, run.policy, exc) from exc
        row = metric_row(result.metrics)
        values: tuple[object, ...] | None = tuple(row.pop(key, None) for key in cargo.metrics)
        extra, error = row or None, None
    except Exception as exc:
        values, extra, error = None, None, str(exc) or type(exc).__name__
    # The CPU clock is a system call, where a busy machine often switches to another
    # process: read it before the wall clock, so that switch counts in this run's wall time.
    used = time.process_time() - cpu
    return Outcome(run.index, values, extra, error, time.perf_counter() - wall, used)


def run_batch(
    cargo: Cargo | HeldCargo, runs: Sequence[RunKey], hooks: Hooks | None = None
) -> list[Outcome]:
    """Each run of ``runs``, in order; a failing run is recorded, the others go on. The
    plugins take part through ``hooks`` (the command's, in its own process), else through
    this worker's own manager when the cargo says they do."""
    if isinstance(cargo, HeldCargo):
        cargo = held(cargo.key)
    assert isinstance(cargo, Cargo)
    if hooks is None and cargo.plugins:
        hooks = _worker_hooks(cargo.key)
    return [_run(cargo, run, hooks) for run in runs]
