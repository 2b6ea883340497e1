"""Present a comparison: a terminal table, JSON, CSV, and a figure.

The JSON shape is ``{"scenario": name, "results": [{"vendor", "policy", "native",
"discipline", "seed", "metrics"}]}`` (``native``: the policy is the vendor's own); the CSV has
one row per run and one column per flattened metric (``responses.success``). The table and
the plot mark each vendor's own rule.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from ioasid_core.replay import RunResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "TABLE_CAPTION",
    "TABLE_COLUMNS",
    "flatten",
    "natural_width",
    "plot_figure",
    "to_csv",
    "to_json",
    "to_table",
    "to_tables",
    "write_plot",
]

TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("req", "page_requests"),
    ("ok", "responses.success"),
    ("inval", "responses.invalid"),
    ("fail", "responses.failure"),
    ("cross", "cross_owner_hits"),
    ("type", "type_confusions"),
    ("rej", "vendor_rejects"),
    ("drop", "dropped_total"),
    ("p99", "request_latency_us.p99"),
)
"""The metrics the terminal table shows, one narrow column each (JSON and CSV carry all)."""

TABLE_CAPTION = (
    "req: page requests sent; ok/inval/fail: group responses by code; cross: resolved to "
    "another owner's data; type: to the wrong type of object (red: the handler was handed "
    "what it must not touch); rej: answered by the vendor's own checks; drop: stop "
    "markers, overflow, unmatched, partial, malformed, kept by the hardware and lost with an "
    "unplugged unit; p99: "
    "response latency in modelled µs (-: none answered)"
)

ALLOCATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("alloc", "allocations"),
    ("fail", "allocation_failures_total"),
    ("orph", "orphaned_ids"),
    ("swap", "allocator_switches"),
    ("galloc", "guest_allocations"),
    ("gfail", "guest_allocation_failures_total"),
    ("host", "host_pasids_peak"),
    ("exits", "vm_exits"),
)
"""The second view, for scenarios about allocation (guests, swaps, churn)."""

ALLOCATION_CAPTION = (
    "alloc/fail: host allocations and failed ones; orph: "
    "PASIDs left allocated with their binding gone; swap: allocator switches; galloc/gfail: "
    "guest allocations and failed ones; host: most host PASIDs held for guests; exits: VM "
    "exits for guest PASID commands"
)

ANSWER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("unans", "unanswered_groups"),
    ("early", "premature_responses"),
)
"""Shown in the page-request view when some run has any: groups never answered, responses
before a group's last request (what an answer discipline did to the device)."""

ANSWER_CAPTION = {
    "unans": "unans: groups never answered (the device times out)",
    "early": "early: responses before the group's last request",
}
"""The caption's words for each answer column shown."""

DISCIPLINE_NAMES = {
    "iopf": "IOPF groups, first failure sticky",
    "per-request": "each request on its own, VT-d 2019",
    "device-tables": "per-device tables, AMD v2",
}
"""How the table's caption names each answer discipline."""

_RISKY = {"cross_owner_hits", "type_confusions"}
_OWN = " (own)"


def flatten(metrics: dict[str, object], prefix: str = "") -> dict[str, object]:
    """Nested metric dicts as ``a.b`` keys (lists are joined)."""
    flat: dict[str, object] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = "; ".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def to_json(scenario: str, results: Sequence[RunResult]) -> str:
    # Strict JSON: the loader's bounds keep every number finite; a NaN would be a bug here.
    return json.dumps(
        {"scenario": scenario, "results": [r.as_dict() for r in results]},
        indent=2,
        allow_nan=False,
    )


def to_csv(results: Sequence[RunResult]) -> str:
    rows = []
    for result in results:
        row: dict[str, object] = {
            "vendor": result.vendor,
            "policy": result.policy.value,
            "native": result.native,
            "discipline": result.discipline.value,
            "seed": result.seed,
        }
        row.update(flatten(result.metrics.as_dict()))
        rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_table(
    scenario: str,
    results: Sequence[RunResult],
    columns: Sequence[tuple[str, str]] = TABLE_COLUMNS,
    caption: str = TABLE_CAPTION,
    view: str = "",
) -> Table:
    """One row per (vendor, policy) run, one column per key metric: it fits a terminal
    however many vendors are installed. Wrong resolutions are shown in red."""
    table = Table(
        title=f"scenario: {scenario}" + (f" ({view})" if view else ""),
        caption=caption,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("vendor", style="bold", no_wrap=True)
    table.add_column("policy", no_wrap=True)
    for label, _ in columns:
        table.add_column(label, justify="right", min_width=len(label), no_wrap=True)
    previous = None
    for result in results:
        flat = _flat(result)
        cells = []
        for _, key in columns:
            value = flat.get(key, 0)
            text = _cell(value)
            if key in _RISKY and value:
                text = f"[bold red]{text}[/]"
            cells.append(text)
        vendor = result.vendor if result.vendor != previous else ""
        previous = result.vendor
        policy = f"[bold]{result.policy.value}*[/]" if result.native else result.policy.value
        table.add_row(vendor, policy, *cells)
    return table


def own_rule_note(results: Sequence[RunResult]) -> str:
    """The caption's line on the vendors' own rules: what ``*`` marks, and which answer
    discipline each vendor follows (the same under every policy)."""
    by_discipline: dict[str, list[str]] = {}
    for result in results:
        names = by_discipline.setdefault(result.discipline.value, [])
        if result.vendor not in names:
            names.append(result.vendor)
    answered = "; ".join(
        f"{DISCIPLINE_NAMES.get(d, d)}: {', '.join(names)}" for d, names in by_discipline.items()
    )
    return f"*: the vendor's own rule (its driver's lookup policy). Answered as: {answered}"


def to_tables(scenario: str, results: Sequence[RunResult]) -> list[Table]:
    """The views a scenario needs: page requests if any run sent some, allocations if any
    run allocated (host or guest); the page-request view when neither happened."""
    views = _views(results)
    both = len(views) == 2
    tables = []
    if "requests" in views:
        answers = [
            column
            for column in ANSWER_COLUMNS
            if any(getattr(r.metrics, column[1]) for r in results)
        ]
        caption = "; ".join([TABLE_CAPTION, *(ANSWER_CAPTION[label] for label, _ in answers)])
        tables.append(
            to_table(
                scenario,
                results,
                (*TABLE_COLUMNS[:-2], *answers, *TABLE_COLUMNS[-2:]),
                f"{caption}\n{own_rule_note(results)}",
                view="page requests" if both else "",
            )
        )
    if "allocations" in views:
        tables.append(
            to_table(
                scenario,
                results,
                ALLOCATION_COLUMNS,
                ALLOCATION_CAPTION,
                view="allocations" if both else "",
            )
        )
    return tables


def _views(results: Sequence[RunResult]) -> list[str]:
    """``requests`` if any run sent page requests, ``allocations`` if any allocated (host or
    guest); ``requests`` alone when neither happened."""
    requests = any(r.metrics.page_requests for r in results)
    allocations = _allocates(results)
    return (["requests"] if requests or not allocations else []) + (
        ["allocations"] if allocations else []
    )


def _allocates(results: Sequence[RunResult]) -> bool:
    """Whether allocation is part of the story: guests allocated, an allocation failed, an
    allocator was switched, a PASID was orphaned, or the runs allocated differently (a few
    binds, the same under every vendor, would only add a view of identical bars)."""
    return len({r.metrics.allocations for r in results}) > 1 or any(
        r.metrics.guest_allocations
        or r.metrics.allocator_switches
        or r.metrics.orphaned_ids
        or sum(r.metrics.allocation_failures.values())
        or sum(r.metrics.guest_allocation_failures.values())
        for r in results
    )


def _flat(result: RunResult) -> dict[str, object]:
    """The run's metrics as ``a.b`` keys, with the totals the tables show."""
    m = result.metrics
    flat = flatten(m.as_dict())
    flat["dropped_total"] = sum(m.dropped.values())
    flat["allocation_failures_total"] = sum(m.allocation_failures.values())
    flat["guest_allocation_failures_total"] = sum(m.guest_allocation_failures.values())
    return flat


def _cell(value: object) -> str:
    if value is None:
        return "-"  # nothing measured (no request answered)
    return _fit(value) if isinstance(value, float) else str(value)


def _fit(value: float) -> str:
    """A latency in at most three characters (``7.7``, ``350``, ``12k``), so that modelled
    latencies keep the table within 80 columns; JSON and CSV carry the exact value."""
    if value < 9.95:
        return f"{value:.1f}".removesuffix(".0")
    for suffix, scale in (("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9)):
        scaled = value / scale
        if scaled < 0.95:  # 100k..949k: tenths of the next unit
            return f".{round(scaled * 10)}{suffix}"
        digits = f"{scaled:.0f}"
        if len(digits) + len(suffix) <= 3:
            return digits + suffix
    return f"{value:.0e}"


def natural_width(table: Table) -> int:
    """The columns ``table`` needs to show every cell whole (a narrower console would cut
    numbers short)."""
    console = Console(width=10_000, file=io.StringIO())
    return Measurement.get(console, console.options, table).maximum


def render_table(scenario: str, results: Sequence[RunResult], *, width: int = 160) -> str:
    """The tables (``to_tables``) as plain text (no colour): for logs, tests and pipes."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    for table in to_tables(scenario, results):
        console.print(table)
    return console.export_text()


def write_plot(scenario: str, results: Sequence[RunResult], path: Path) -> None:
    """A figure a person would rather look at than the table (see :func:`plot_figure`)."""
    import matplotlib.pyplot as plt

    fig = plot_figure(scenario, results)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_figure(scenario: str, results: Sequence[RunResult]) -> Figure:
    """One row per run, in the views the tables use (:func:`to_tables`). Page requests: how
    each run's groups were answered, and how many requests resolved to another owner's data
    or to the wrong type (the ones that matter). Allocations: host and guest allocations and
    failures, and what they cost or left behind (VM exits, orphans, allocator switches)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    views = _views(results)
    labels = [f"{r.vendor} / {r.policy.value}" + (_OWN if r.native else "") for r in results]
    rows = list(range(len(results)))[::-1]  # the first run on top
    height = 1.6 + 0.32 * len(results)
    fig, grid = plt.subplots(
        len(views),
        2,
        figsize=(11, height * len(views)),
        sharey=True,
        gridspec_kw={"width_ratios": [3, 2]},
        squeeze=False,
    )
    for (left, right), view in zip(grid, views, strict=True):
        if view == "requests":
            _plot_requests(left, right, results, rows)
        else:
            _plot_allocations(left, right, results, rows)
        left.set_yticks(rows, labels, fontsize="small")
        for axes in (left, right):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts, not fractions
            # Above the bars, not on them: the bars may fill the whole width.
            axes.legend(
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                ncol=4,
                fontsize="small",
                frameon=False,
                handlelength=1.2,
                columnspacing=1.0,
            )
            # A faint line between vendors, so each vendor's policies read as one group.
            for row, (above, below) in zip(rows[1:], pairwise(results), strict=True):
                if above.vendor != below.vendor:
                    axes.axhline(row + 0.5, color="#999999", linewidth=0.6)
    for axes in grid[:, 0]:
        for label in axes.get_yticklabels():
            if label.get_text().endswith(_OWN):
                label.set_fontweight("bold")
    fig.suptitle(f"{scenario}: each (vendor, lookup policy); (own): the vendor's own rule")
    fig.tight_layout()
    return fig


def _stacked(axes: Axes, rows: list[int], parts: Sequence[tuple[str, str, list[int]]]) -> None:
    """Horizontal bars, one per row, made of ``(label, colour, widths)`` parts."""
    start = [0] * len(rows)
    for label, colour, widths in parts:
        axes.barh(rows, widths, left=start, color=colour, label=label)
        start = [a + b for a, b in zip(start, widths, strict=True)]


def _paired(axes: Axes, rows: list[int], bars: Sequence[tuple[str, str, list[int]]]) -> None:
    """Thin side-by-side bars per row, ``(label, colour, values)`` each."""
    height = 0.8 / len(bars)
    for index, (label, colour, values) in enumerate(bars):
        offset = 0.4 - height * (index + 0.5)
        axes.barh([y + offset for y in rows], values, height, color=colour, label=label)
    axes.set_xlim(0, max([v for _, _, values in bars for v in values] + [1]) * 1.15)


def _plot_requests(left: Axes, right: Axes, results: Sequence[RunResult], rows: list[int]) -> None:
    metrics = [r.metrics for r in results]
    parts = [
        (code, colour, [m.responses[code] for m in metrics])
        for code, colour in (
            ("success", "#4c9a2a"),
            ("invalid", "#e0a030"),
            ("failure", "#b03030"),
        )
    ]
    if any(m.unanswered_groups for m in metrics):  # what the device waits for in vain
        parts.append(("never answered", "#999999", [m.unanswered_groups for m in metrics]))
    _stacked(left, rows, parts)
    left.set_xlabel("page request groups answered")
    _paired(
        right,
        rows,
        [
            ("cross-owner", "#b03030", [m.cross_owner_hits for m in metrics]),
            ("type confusion", "#7040a0", [m.type_confusions for m in metrics]),
        ],
    )
    right.set_xlabel("requests resolved wrongly")


def _plot_allocations(
    left: Axes, right: Axes, results: Sequence[RunResult], rows: list[int]
) -> None:
    metrics = [r.metrics for r in results]
    _stacked(
        left,
        rows,
        [
            ("host", "#4c9a2a", [m.allocations for m in metrics]),
            ("host failed", "#b03030", [sum(m.allocation_failures.values()) for m in metrics]),
            ("guest", "#3070b0", [m.guest_allocations for m in metrics]),
            (
                "guest failed",
                "#e0a030",
                [sum(m.guest_allocation_failures.values()) for m in metrics],
            ),
        ],
    )
    left.set_xlabel("PASID allocations (and failures)")
    _paired(
        right,
        rows,
        [
            ("VM exits", "#3070b0", [m.vm_exits for m in metrics]),
            ("orphaned", "#b03030", [m.orphaned_ids for m in metrics]),
            ("allocator switches", "#7040a0", [m.allocator_switches for m in metrics]),
        ],
    )
    right.set_xlabel("what they cost or left behind")
