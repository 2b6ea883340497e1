"""A sweep's figures: for a metric, one line per (vendor, policy) against each axis, the
median over seeds drawn, the spread across seeds (min to max) as a band.

With several axes, a row of panels per axis: one panel per combination of the other axes'
values (at most ``MAX_PANELS``; the figure says when some are left out), so no line mixes
points that differ in another axis.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import product
from pathlib import Path
from typing import Final

__all__ = ["MAX_PANELS", "plot_columns", "plot_file", "write_plots"]

MAX_PANELS: Final = 6


def _plain(text: object) -> str:
    """User text as matplotlib shows it literally (no mathtext)."""
    return str(text).replace("$", r"\$")


def plot_columns(axes: Sequence[str], metrics: Sequence[str]) -> list[str]:
    """The result columns the plots of ``metrics`` read."""
    return list(dict.fromkeys(["vendor", "policy", "native", "seed", "error", *axes, *metrics]))


def plot_file(out: Path, metric: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in metric)
    return out / "plots" / f"{safe}.png"


def _as_float(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def _numeric(values: Sequence[object]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def write_plots(
    rows: Sequence[Mapping[str, object]],
    axes: Sequence[str],
    metrics: Sequence[str],
    out: Path,
    title: str,
) -> list[Path]:
    """One PNG per metric under ``out/plots``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    good = [row for row in rows if row.get("error") is None]
    shown_axes = list(axes) or ["seed"]
    written = []
    (out / "plots").mkdir(exist_ok=True)
    for metric in metrics:
        panels = [_panels(good, axis, shown_axes) for axis in shown_axes]
        columns = max(1, *(len(p) for p in panels))
        figure, grid = plt.subplots(
            len(shown_axes),
            columns,
            figsize=(4.2 * columns, 3.4 * len(shown_axes)),
            squeeze=False,
        )
        for r, (axis, axis_panels) in enumerate(zip(shown_axes, panels, strict=True)):
            for c in range(columns):
                ax = grid[r][c]
                if c >= len(axis_panels):
                    ax.set_visible(False)
                    continue
                fixed, subset = axis_panels[c]
                _draw(ax, subset, axis, metric, bands=axis != "seed")
                ax.set_title(_plain(fixed), fontsize=8)
        handles, labels = grid[0][0].get_legend_handles_labels()
        height = figure.get_figheight()
        legend_rows = -(-len(labels) // 4)
        figure.suptitle(_plain(f"{title}: {metric}"), y=1 - 0.08 / height, va="top", fontsize=10)
        if handles:
            figure.legend(
                handles,
                labels,
                loc="upper center",
                bbox_to_anchor=(0.5, 1 - 0.4 / height),
                ncol=min(4, len(labels)),
                fontsize=8,
                frameon=False,
            )
        figure.tight_layout(rect=(0, 0, 1, 1 - (0.5 + 0.2 * legend_rows) / height))
        path = plot_file(out, metric)
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _panels(
    rows: Sequence[Mapping[str, object]], axis: str, axes: Sequence[str]
) -> list[tuple[str, list[Mapping[str, object]]]]:
    others = [a for a in axes if a not in (axis, "seed")]
    if not others:
        return [("", list(rows))]
    levels = [list(dict.fromkeys(row[a] for row in rows)) for a in others]
    out = []
    for combo in product(*levels):
        subset = [
            row for row in rows if all(row[a] == v for a, v in zip(others, combo, strict=True))
        ]
        if subset:
            out.append((", ".join(f"{a}={v}" for a, v in zip(others, combo, strict=True)), subset))
    if len(out) > MAX_PANELS:
        left = len(out) - MAX_PANELS
        out = out[:MAX_PANELS]
        out[-1] = (f"{out[-1][0]} (+{left} not shown)", out[-1][1])
    return out


def _draw(
    ax: object, rows: Sequence[Mapping[str, object]], axis: str, metric: str, *, bands: bool
) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    lines: dict[str, dict[object, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        value = row.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            name = f"{row['vendor']}/{row['policy']}" + (" (native)" if row.get("native") else "")
            lines[name][row[axis]].append(float(value))
    xs_all = list(dict.fromkeys(x for series in lines.values() for x in series))
    numeric = _numeric(xs_all)
    order = sorted(xs_all, key=_as_float) if numeric else xs_all
    position = {x: (_as_float(x) if numeric else float(i)) for i, x in enumerate(order)}
    for name, series in lines.items():
        xs = [x for x in order if x in series]
        px = [position[x] for x in xs]
        mid = [statistics.median(series[x]) for x in xs]
        (line,) = ax.plot(px, mid, marker="o", markersize=3, label=_plain(name))
        if bands:
            low = [min(series[x]) for x in xs]
            high = [max(series[x]) for x in xs]
            ax.fill_between(px, low, high, alpha=0.2, color=line.get_color(), linewidth=0)
    spots = sorted(position.values())
    if numeric and spots and spots[0] > 0 and spots[-1] / spots[0] >= 100:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(order)), [_plain(x) for x in order])
    ax.set_xlabel(_plain(axis), fontsize=8)
    ax.set_ylabel(_plain(metric), fontsize=8)
    ax.tick_params(labelsize=7)
    if not lines:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
