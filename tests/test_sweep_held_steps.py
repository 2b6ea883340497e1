"""A sweep's worker makes a point's generated steps once for that point's runs (as a
comparison's does), within the same 64 MiB a process may hold: the rows are those of runs
that each walk the stream, and the expansions are counted, not timed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ioasid_core.scenario import stream as stream_module
from ioasid_core.scenario.schema import Step
from ioasid_core.scenario.stream import StepStream
from ioasid_core.sweep import (
    PoolEngine,
    SerialEngine,
    SweepStore,
    load_sweep,
    plan_sweep,
    read_results,
    run_sweep,
    worker,
)
from ioasid_core.sweep.plan import SweepPlan, point_scenario
from ioasid_core.sweep.worker import cargo_of, held_steps, run_batch

if TYPE_CHECKING:
    from sweep_helpers import SMALL, VENDORS, comparable, write_sweep
else:
    from tests.sweep_helpers import SMALL, VENDORS, comparable, write_sweep

SCENARIOS = 4
"""SMALL's 2 points x 2 seeds (its generators draw from the seed): 4 runs each."""


def _plan(tmp_path: Path) -> SweepPlan:
    return plan_sweep(load_sweep(write_sweep(tmp_path, SMALL)), VENDORS)


def _sweep(plan: SweepPlan, out: Path, engine: Any, **kwargs: Any) -> list[dict[str, Any]]:
    store = SweepStore(out)
    store.check(plan, resume=False)
    try:
        report = run_sweep(plan, store, engine, **kwargs)
    finally:
        engine.close()
    assert report.failed == ()
    return comparable(read_results(out))


def _count_walks(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Each walk of a stream's generators (not of held steps) adds a line to ``log``: the
    process, and the stream's seed and length (which scenario it is). A forked pool
    worker inherits the patch."""
    walk = StepStream.__iter__

    def counted(self: StepStream) -> Iterator[Step]:
        with log.open("a") as out:
            out.write(f"{os.getpid()} {self.seed} {self.size}\n")
        return walk(self)

    monkeypatch.setattr(StepStream, "__iter__", counted)


def _walks(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_serial_makes_each_points_steps_once_and_the_rows_do_not_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(tmp_path)
    log = tmp_path / "walks"
    _count_walks(monkeypatch, log)
    with monkeypatch.context() as holding_off:
        holding_off.setattr(stream_module, "HOLD_LIMIT_BYTES", 0)
        streamed = _sweep(plan, tmp_path / "streamed", SerialEngine())
    assert len(_walks(log)) == len(plan.runs)  # every run walked its generators
    log.unlink()
    held = _sweep(plan, tmp_path / "held", SerialEngine())
    walks = _walks(log)
    assert len(walks) == SCENARIOS and len(set(walks)) == SCENARIOS  # once per scenario
    assert held == streamed
    assert held_steps() == 0  # the engine closed: this process holds nothing any more


def test_a_pool_worker_makes_each_points_steps_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(tmp_path)
    serial = _sweep(plan, tmp_path / "serial", SerialEngine())
    log = tmp_path / "walks"
    _count_walks(monkeypatch, log)
    pooled = _sweep(plan, tmp_path / "pool", PoolEngine(2), batch=3)
    walks = _walks(log)
    assert pooled == serial
    # A point's runs may be split between the two workers: each makes its steps once.
    assert SCENARIOS <= len(walks) <= 2 * SCENARIOS
    assert len(set(walks)) == len(walks)


def _sizes(plan: SweepPlan) -> list[int]:
    """Each scenario's steps, in run order."""
    spec = plan.spec
    return [
        len(point_scenario(spec.base, spec.base_source, point, seed).steps)
        for point in plan.points
        for seed in spec.seeds
    ]


def _recorder(seen: list[int]) -> Callable[[int, int], None]:
    """A progress callback noting the steps held after each batch."""

    def progress(done: int, total: int) -> None:
        seen.append(held_steps())

    return progress


def test_the_held_steps_stay_within_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a limit of the larger point's steps a worker never holds more: the older
    scenarios are let go. One step below it, the larger point is not held: each of its
    runs walks the stream."""
    plan = _plan(tmp_path)
    serial = _sweep(plan, tmp_path / "serial", SerialEngine())
    small, _, large, _ = _sizes(plan)
    assert _sizes(plan) == [small, small, large, large] and large < 2 * small  # 54, 74
    log = tmp_path / "walks"
    _count_walks(monkeypatch, log)
    runs = len(plan.runs) // SCENARIOS
    for limit, walks in ((large, SCENARIOS), (large - 1, 2 + 2 * runs)):
        monkeypatch.setattr(stream_module, "HOLD_LIMIT_BYTES", limit * stream_module.STEP_BYTES)
        seen: list[int] = []
        progress = _recorder(seen)
        out = tmp_path / f"held-{limit}"
        assert _sweep(plan, out, SerialEngine(), batch=1, progress=progress) == serial
        assert max(seen) == (large if limit == large else small)  # never two together
        assert len(_walks(log)) == walks
        log.unlink()


def test_a_worker_lets_go_of_an_earlier_sweeps_scenarios_at_the_next_sweep(
    tmp_path: Path,
) -> None:
    """A worker that outlives a sweep (Dask's) keeps its last scenarios only until the next
    sweep runs: all of them go then, not only as many as the next one loads."""
    plan = _plan(tmp_path)
    first, second = cargo_of(plan), cargo_of(plan)  # the same file swept twice
    try:
        run_batch(first, plan.runs)
        assert {key[0] for key in worker._LOADED} == {first.key}
        assert len(worker._LOADED) == SCENARIOS and held_steps() > 0
        run_batch(second, plan.runs[:1])
        assert [key[0] for key in worker._LOADED] == [second.key]
    finally:
        worker.forget(first.key)
        worker.forget(second.key)
