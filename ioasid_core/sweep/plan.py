"""From a checked sweep file to the list of runs, with every point loaded first.

A point is a combination of axis values; each is turned into a scenario document and put
through the scenario loader (and each chosen vendor's section and source-ID checks) before
the first run, so a sweep never stops half-way on a point that cannot load: such a point is
named with its axis values, with the loader's own key path and message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs

from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.scenario.load import ScenarioError, ScenarioProblem, parse_scenario
from ioasid_core.scenario.schema import Scenario
from ioasid_core.scenario.vendors import check_source_ids, check_vendor_sections
from ioasid_core.sweep.paths import KeyPath, apply
from ioasid_core.sweep.rows import FIXED_COLUMNS, TIMING_COLUMNS, metric_names
from ioasid_core.sweep.spec import NATIVE, Point, SweepSpec

__all__ = ["MAX_RUNS", "RunKey", "SweepPlan", "plan_sweep", "point_document", "point_scenario"]

MAX_RUNS: Final = 1_000_000
"""The most runs one sweep may ask for (points x seeds x vendors x policies)."""
_SHOWN_POINTS: Final = 20
"""Points that do not load named one by one; the rest are counted."""
_SHOWN_PER_POINT: Final = 3
"""Problems shown per point that does not load (a generator may repeat one 1,000 times)."""


@attrs.frozen
class RunKey:
    """One run of a sweep: its place in the results and what it replays."""

    index: int
    point: int
    seed: int
    vendor: str
    policy: LookupPolicy
    native: bool
    """The policy is the vendor's own rule (``vendor.default_policy``)."""


@attrs.frozen
class SweepPlan:
    spec: SweepSpec
    points: tuple[Point, ...]
    vendors: Mapping[str, VendorPrq]
    """The chosen vendors, in order."""
    runs: tuple[RunKey, ...]
    metrics: tuple[str, ...]
    """The numeric metric columns (what ``--plot`` may name)."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Every metric column of a run: the numeric ones, then ``step_errors``."""
        return (*self.metrics, "step_errors")


def point_document(
    base: Mapping[str, object], changes: Sequence[tuple[KeyPath, object]], seed: int
) -> dict[str, object]:
    """The base document with a point's changes and the replica's seed."""
    document = apply(base, changes)
    document["seed"] = seed
    return document


def point_scenario(
    spec_base: Mapping[str, object], source: str, point: Point, seed: int
) -> Scenario:
    """A point's scenario under one seed (``ScenarioError`` if it does not load)."""
    return parse_scenario(point_document(spec_base, point.changes, seed), source)


def plan_sweep(
    spec: SweepSpec,
    installed: Mapping[str, VendorPrq],
    *,
    checked: Callable[[int, int], None] | None = None,
) -> SweepPlan:
    """Every run of ``spec``, after loading every point (``checked(done, total)`` is told
    after each); ``ScenarioError`` naming the sweep file's key paths and the points that
    would not load."""
    problems: list[ScenarioProblem] = []
    chosen = _vendors(spec, installed, problems)
    if problems:
        raise ScenarioError(spec.source, problems)
    points = tuple(spec.points())
    runs = _runs(spec, points, chosen)
    if len(runs) > MAX_RUNS:
        raise ScenarioError(
            spec.source,
            [
                ScenarioProblem(
                    "axes",
                    f"at most {MAX_RUNS} runs, got {len(runs)} (points x "
                    "seeds x vendors x policies)",
                )
            ],
        )
    latency_ops = _check_points(
        spec, points, chosen=chosen, installed=installed, problems=problems, checked=checked
    )
    if problems:
        raise ScenarioError(spec.source, problems)
    metrics = metric_names(latency_ops)
    taken = {*FIXED_COLUMNS, *TIMING_COLUMNS, *metrics, "step_errors"}
    for axis in spec.axes:
        if axis.name in taken:
            problems.append(
                ScenarioProblem(
                    f'axes."{axis.name}"',
                    f"{axis.name!r} is a column of the results already: name the axis otherwise",
                )
            )
    for index, name in enumerate(spec.plot):
        if name not in metrics:
            problems.append(ScenarioProblem(f"plot[{index}]", _unknown_metric(name, metrics)))
    if problems:
        raise ScenarioError(spec.source, problems)
    return SweepPlan(spec, points, chosen, runs, metrics)


def _unknown_metric(name: str, metrics: Sequence[str]) -> str:
    near = [m for m in metrics if name in m or m.endswith(name)]
    hint = f" (did you mean {', '.join(near[:5])}?)" if near else ""
    return f"no metric named {name!r}{hint}; the metrics are listed in docs/metrics.md"


def _vendors(
    spec: SweepSpec, installed: Mapping[str, VendorPrq], problems: list[ScenarioProblem]
) -> dict[str, VendorPrq]:
    if spec.vendors is None:
        return dict(installed)
    chosen: dict[str, VendorPrq] = {}
    for index, name in enumerate(spec.vendors):
        if name in installed:
            chosen[name] = installed[name]
        else:
            known = ", ".join(installed)
            problems.append(
                ScenarioProblem(
                    f"vendors[{index}]", f"no vendor named {name!r} installed (known: {known})"
                )
            )
    return chosen


def _runs(
    spec: SweepSpec, points: Sequence[Point], vendors: Mapping[str, VendorPrq]
) -> tuple[RunKey, ...]:
    per_vendor: list[tuple[str, LookupPolicy, bool]] = []
    for name, vendor in vendors.items():
        policies: list[LookupPolicy] = []
        for policy_name in spec.policies:
            policy = vendor.default_policy if policy_name == NATIVE else LookupPolicy(policy_name)
            if policy not in policies:
                policies.append(policy)
        per_vendor += [(name, p, p is vendor.default_policy) for p in policies]
    runs: list[RunKey] = []
    for point in points:
        for seed in spec.seeds:
            for name, policy, native in per_vendor:
                runs.append(RunKey(len(runs), point.index, seed, name, policy, native))
    return tuple(runs)


def _check_points(
    spec: SweepSpec,
    points: Sequence[Point],
    *,
    chosen: Mapping[str, VendorPrq],
    installed: Mapping[str, VendorPrq],
    problems: list[ScenarioProblem],
    checked: Callable[[int, int], None] | None,
) -> tuple[str, ...]:
    """Load every point (under every seed when generators draw from it); the latency ops
    of the first that loads."""
    seeds = spec.seeds if "generators" in spec.base else spec.seeds[:1]
    vendors = list(chosen.values())
    every = list(installed.values())
    failing = 0
    latency_ops: tuple[str, ...] | None = None
    total = len(points) * len(seeds)
    done = 0
    for point in points:
        for seed in seeds:
            done += 1
            try:
                scenario = point_scenario(spec.base, spec.base_source, point, seed)
                check_vendor_sections(scenario, vendors, every)
                check_source_ids(scenario, vendors)
            except ScenarioError as exc:
                failing += 1
                if failing <= _SHOWN_POINTS:
                    where = point.label(spec.axes) + (f", seed {seed}" if len(seeds) > 1 else "")
                    for problem in exc.problems[:_SHOWN_PER_POINT]:
                        at = f"{problem.key_path}: " if problem.key_path else ""
                        text = f"{where} does not load: {at}{problem.expected}"
                        problems.append(ScenarioProblem("axes", text))
                    more = len(exc.problems) - _SHOWN_PER_POINT
                    if more > 0:
                        text = f"{where}: ... and {more} more problems"
                        problems.append(ScenarioProblem("axes", text))
                break  # one failing seed names the point
            if latency_ops is None:
                latency_ops = tuple(op for op, _ in scenario.latency)
            if checked is not None:
                checked(done, total)
    if failing > _SHOWN_POINTS:
        problems.append(
            ScenarioProblem("axes", f"... and {failing - _SHOWN_POINTS} more points do not load")
        )
    return latency_ops or ()
