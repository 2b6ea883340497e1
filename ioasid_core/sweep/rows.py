"""A run's metrics as one flat row: what a sweep stores per run."""

from __future__ import annotations

from typing import Final

from ioasid_core.metrics import Metrics
from ioasid_core.quantiles import Quantiles
from ioasid_core.report import flatten

__all__ = ["FIXED_COLUMNS", "TOTALS", "metric_names", "metric_row"]

FIXED_COLUMNS: Final = ("run", "point", "vendor", "policy", "native", "seed")
"""The columns before the axis values; after the metrics come ``run_time_s``,
``run_cpu_s`` and ``error``."""
TIMING_COLUMNS: Final = ("run_time_s", "run_cpu_s", "error")
TOTALS: Final = ("dropped_total", "allocation_failures_total", "guest_allocation_failures_total")
"""Sums the terminal table shows too."""


def metric_row(metrics: Metrics) -> dict[str, object]:
    """Every metric of ``metrics.as_dict()`` as ``a.b`` keys, then the totals."""
    row = flatten(metrics.as_dict())
    row["dropped_total"] = sum(metrics.dropped.values())
    row["allocation_failures_total"] = sum(metrics.allocation_failures.values())
    row["guest_allocation_failures_total"] = sum(metrics.guest_allocation_failures.values())
    return row


def metric_names(latency_ops: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The numeric metric columns of a run (``latency_ops``: the scenario's modelled ones)."""
    metrics = Metrics()
    for op in latency_ops:
        metrics.latency_us[op] = Quantiles()
    return tuple(k for k in metric_row(metrics) if k != "step_errors")
