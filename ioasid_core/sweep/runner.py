"""Run a planned sweep on an engine, streaming each batch's outcomes to the output folder.

Runs are cut into batches of consecutive runs (those of one point are neighbours, so a
worker loads the point once per batch); a batch is big enough to pay a task's overhead and
small enough that progress moves and the workers stay busy to the end. The rows do not
depend on the engine, the worker count or the batch size: each run is a pure function of
(point, seed, vendor, policy), and the tables are written in run order.
"""

from __future__ import annotations

import datetime
import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from ioasid_core.plugins import Hooks
from ioasid_core.sweep.engines import Engine
from ioasid_core.sweep.plan import RunKey, SweepPlan
from ioasid_core.sweep.store import SweepStore, result_columns
from ioasid_core.sweep.worker import Outcome, cargo_of

__all__ = ["MAX_BATCH", "SweepReport", "auto_batch", "run_sweep"]

MAX_BATCH: Final = 64
TASKS_PER_WORKER: Final = 32
"""Automatic batches: about this many tasks per worker, so the last ones end together."""


@attrs.frozen
class SweepReport:
    """What a sweep did: how many runs, which failed (with their errors), how long."""

    total: int
    ran: int
    """Runs done now (the rest were in the folder already)."""
    failed: tuple[tuple[RunKey, str], ...]
    wall_s: float
    cpu_s: float
    """The sum of the runs' own CPU time (run now)."""
    run_wall_s: float
    """The sum of the runs' own wall time (run now), each measured in its worker."""
    workers: int
    batch: int


def auto_batch(runs: int, workers: int) -> int:
    """Runs per task when none is asked for."""
    return max(1, min(MAX_BATCH, math.ceil(runs / (workers * TASKS_PER_WORKER))))


def run_sweep(
    plan: SweepPlan,
    store: SweepStore,
    engine: Engine,
    *,
    batch: int | None = None,
    versions: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    hooks: Hooks | None = None,
) -> SweepReport:
    """Every run of ``plan`` the folder does not hold yet (``store.check`` was called),
    then the results tables. ``progress(done, total)`` after each batch. ``hooks``: the
    plugins take part in every run, as in ``compare`` (in a worker process, through that
    worker's own manager of the installed plugins)."""
    started = time.time()
    clock = time.perf_counter()
    manifest = _manifest(plan, engine, versions or {}, started)
    done = store.begin(manifest)
    todo = [run for run in plan.runs if run.index not in done]
    size = batch or auto_batch(len(todo), engine.workers)
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    outcomes: dict[int, Outcome] = dict(done)
    cpu = run_wall = 0.0
    if progress is not None:
        progress(len(done), len(plan.runs))
    try:
        engine.start(cargo_of(plan, plugins=hooks is not None), hooks)
        for runs, result in engine.run(batches):
            got = result if isinstance(result, list) else _lost(runs, result)
            store.append(runs, got)
            for outcome in got:
                outcomes[outcome.index] = outcome
                cpu += outcome.cpu_s
                run_wall += outcome.wall_s
            if progress is not None:
                progress(len(outcomes), len(plan.runs))
    finally:
        store.close()
    wall = time.perf_counter() - clock
    store.write_results(*result_columns(plan, outcomes))
    failed = tuple(
        (run, outcomes[run.index].error or "")
        for run in plan.runs
        if outcomes[run.index].error is not None
    )
    manifest.update(
        status="failed" if failed else "complete",
        finished=_stamp(time.time()),
        timings={
            "wall_s": round(wall, 3),
            "runs_now": len(todo),
            "run_cpu_s_sum": round(cpu, 3),
            "run_cpu_s_mean": round(cpu / len(todo), 6) if todo else None,
            "run_wall_s_sum": round(run_wall, 3),
            "workers": engine.workers,
            "batch": size,
        },
        failures=[
            {
                "run": run.index,
                "point": run.point,
                "vendor": run.vendor,
                "policy": run.policy.value,
                "seed": run.seed,
                "error": error,
            }
            for run, error in failed
        ],
    )
    store.write_manifest(manifest)
    return SweepReport(len(plan.runs), len(todo), failed, wall, cpu, run_wall, engine.workers, size)


def _lost(runs: Sequence[RunKey], error: BaseException) -> list[Outcome]:
    """A task that failed as a whole (a worker died, a result did not pickle): each of its
    runs is recorded with that error."""
    text = f"the task failed: {type(error).__name__}: {error}"
    return [Outcome(run.index, None, None, text, 0.0, 0.0) for run in runs]


def _stamp(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat(timespec="seconds")


def _manifest(
    plan: SweepPlan, engine: Engine, versions: Mapping[str, str], started: float
) -> dict[str, object]:
    spec = plan.spec
    return {
        "sweep": spec.name,
        "description": spec.description,
        "sweep_file": str(Path(spec.source)),
        "sweep_sha256": spec.digest,
        "base": spec.base_source,
        "base_sha256": spec.base_digest,
        "runs": len(plan.runs),
        "points": len(plan.points),
        "axes": [
            {
                "name": a.name,
                "values": list(a.values),
                "sets": [_path_text(path) for path, _ in a.sets],
            }
            for a in spec.axes
        ],
        "vendors": list(plan.vendors),
        "policies": list(spec.policies),
        "seeds": list(spec.seeds),
        "plot": list(spec.plot),
        "metrics": list(plan.columns),
        "executor": engine.describe,
        "versions": {"python": sys.version.split()[0], "platform": platform.platform(), **versions},
        "started": _stamp(started),
        "status": "running",
    }


def _path_text(path: Sequence[str | int]) -> str:
    from ioasid_core.sweep.paths import show_path

    return show_path(path)
