"""Present a comparison: a terminal table, JSON, CSV, and a figure.

The JSON shape is ``{"scenario": name, "results": [{"vendor", "policy", "seed", "metrics"}]}``;
the CSV has one row per run and one column per flattened metric (``responses.success``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ioasid_core.metrics import STEP_ERRORS_KEPT, Metrics
from ioasid_core.printable import printable, printable_lines
from ioasid_core.replay import RunResult
from ioasid_core.whole_table import narrowest

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ALLOCATION_COLUMNS",
    "TABLE_COLUMNS",
    "Column",
    "flatten",
    "natural_width",
    "own_rule_note",
    "plot_figure",
    "print_report",
    "step_errors_text",
    "to_csv",
    "to_json",
    "to_table",
    "to_tables",
    "write_plot",
]


@attrs.frozen
class Column:
    """One column of a terminal view: its header, the metric (a key of the flattened
    metrics, with the totals of :func:`_flat`) and what it means, for the caption."""

    label: str
    key: str
    what: str
    always: bool = True
    """Shown even when every run has 0 (or nothing measured); else only when some run has
    something: a table keeps the columns a scenario's story needs."""
    risky: bool = False
    """A non-zero value is shown in red: the handler was handed what it must not touch."""
    whole: bool = False
    """A count kept as a float (a summary's ``min``): shown whole, not abbreviated."""


TABLE_COLUMNS: tuple[Column, ...] = (
    Column("req", "page_requests", "page requests sent"),
    Column("ok", "responses.success", "groups answered success"),
    Column("inval", "responses.invalid", "answered invalid"),
    Column("fail", "responses.failure", "answered failure"),
    Column(
        "auto",
        "auto_responses",
        "answered by the hardware itself (its queue full, or its own checks)",
        always=False,
    ),
    Column("cross", "cross_owner_hits", "resolved to another owner's data", risky=True),
    Column("type", "type_confusions", "to the wrong type of object", risky=True),
    Column(
        "stale",
        "stale_pasid_hits",
        "groups queued before their PASID was freed, served for its next owner",
        always=False,
        risky=True,
    ),
    Column("rej", "vendor_rejects", "answered by the vendor's own checks"),
    Column("spid", "spid_requests", "requests naming a guest PASID (found by SPID)", always=False),
    Column(
        "unans",
        "unanswered_groups",
        "groups never answered (the device times out)",
        always=False,
        risky=True,
    ),
    Column(
        "early",
        "premature_responses",
        "responses before the group's last request",
        always=False,
        risky=True,
    ),
    Column(
        "drop",
        "dropped_total",
        "stop markers, overflow, unmatched, partial, malformed, kept by the hardware and lost "
        "with an unplugged unit",
    ),
    Column(
        "p99",
        "request_latency_us.p99",
        "99th-percentile response latency in modelled µs, rounded (k: 10^3, M: 10^6, "
        "G: 10^9, T: 10^12, P: 10^15; -: none answered)",
    ),
)
"""The page-request view, in order (JSON and CSV carry every metric)."""

ALLOCATION_COLUMNS: tuple[Column, ...] = (
    Column("alloc", "allocations", "host PASID allocations"),
    Column("fail", "allocation_failures_total", "failed ones"),
    Column("orph", "orphaned_ids", "PASIDs left allocated with their binding gone", always=False),
    Column("swap", "allocator_switches", "allocator switches", always=False),
    Column("refused", "allocator_refusals_total", "allocator swaps refused", always=False),
    Column("reclaim", "forced_reclaims", "IDs a forced unregister took back", always=False),
    Column("reuse", "pasid_reuses", "allocations of a freed PASID", always=False),
    Column(
        "dist",
        "reuse_distance.min",
        "fewest other allocations between a free and its reuse (0: handed straight back)",
        always=False,
        whole=True,
    ),
    Column("defer", "deferred_frees", "frees left pending by a reference (an SPID)", always=False),
    Column("pend", "pending_frees", "still pending at the end", always=False),
    Column("galloc", "guest_allocations", "guest allocations", always=False),
    Column("gfail", "guest_allocation_failures_total", "failed ones", always=False),
    Column("host", "host_pasids_peak", "most host PASIDs held for guests", always=False),
    Column("exits", "vm_exits", "VM exits for guest PASID commands", always=False),
)
"""The second view, for scenarios about allocation (guests, swaps, churn)."""

_OWN = " (own)"

STEP_ERRORS_SHOWN = 3
"""How many step errors of each run the terminal shows (JSON and CSV carry all)."""


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
    """One row per run. The columns are fixed: ``vendor``, ``policy``, ``native``,
    ``discipline``, ``seed``, then every metric in :meth:`Metrics.as_dict` order, whatever
    the scenario; only a reason a plugin reports beyond the known ones
    (``allocation_failures.<other>``) adds a column, last."""
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
    columns = ["vendor", "policy", "native", "discipline", "seed", *flatten(Metrics().as_dict())]
    known = set(columns)
    columns += sorted({c for row in rows for c in row if c not in known})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_table(
    scenario: str,
    results: Sequence[RunResult],
    columns: Sequence[Column] = TABLE_COLUMNS,
    view: str = "",
) -> Table:
    """One row per (vendor, policy) run, one column per metric in ``columns`` (all of them,
    shown or not: :func:`to_tables` picks and fits them). Wrong resolutions are in red."""
    flats = [_flat(result) for result in results]
    cells = [[_cell(flat.get(column.key, 0), column.whole) for column in columns] for flat in flats]
    return _table(scenario, results, columns, cells, view)


def _table(
    scenario: str,
    results: Sequence[RunResult],
    columns: Sequence[Column],
    cells: Sequence[Sequence[str]],
    view: str,
) -> Table:
    caption = _caption(results, columns)
    # Text, not markup: a scenario or vendor name is shown as written ("[v5.5]", "[/]"),
    # its control characters escaped (the loader refuses them; results built in Python
    # are not loaded).
    table = Table(
        title=Text(printable(f"scenario: {scenario}" + (f" ({view})" if view else ""))),
        caption=Text(printable_lines(caption)),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # The policy is never cut ("gl…") to make room.
    table.add_column("vendor", style="bold", overflow="fold")
    policies = [f"{r.policy.value}*" if r.native else r.policy.value for r in results]
    table.add_column("policy", no_wrap=True, min_width=max(map(len, ["policy", *policies])))
    for index, column in enumerate(columns):
        widest = max([len(column.label)] + [len(row[index]) for row in cells])
        table.add_column(column.label, justify="right", min_width=widest, no_wrap=True)
    previous = None
    for result, row in zip(results, cells, strict=True):
        shown = [
            Text(text, style="bold red" if column.risky and text not in ("0", "-") else "")
            for column, text in zip(columns, row, strict=True)
        ]
        vendor = result.vendor if result.vendor != previous else ""
        previous = result.vendor
        policy = (
            Text(f"{result.policy.value}*", style="bold")
            if result.native
            else Text(result.policy.value)
        )
        table.add_row(Text(printable(vendor)), policy, *shown)
    return table


def _caption(results: Sequence[RunResult], columns: Sequence[Column]) -> str:
    """What each column means, and what ``*`` marks (two lines)."""
    caption = "; ".join(f"{c.label}: {c.what}" for c in columns)
    if any(column.risky for column in columns):
        # Said in words too: a pipe, NO_COLOR or a dumb terminal shows no red.
        risky = ", ".join(c.label for c in columns if c.risky)
        caption += f" ({risky} not 0, in red: the handler was handed what it must not touch)"
    return caption + f"\n{own_rule_note(results)}"


DISCIPLINE_NAMES = {
    "iopf": "IOPF groups, first failure sticky",
    "per-request": "each request on its own",
    "device-tables": "per-device tables",
}
"""How the table's caption names each answer discipline (what it does, not whose it is: a
plugin's vendor may follow any of them)."""

BUNDLED_DRIVERS = {"vtd": "VT-d 2019", "amd-vi": "AMD v2"}
"""The driver a bundled vendor's discipline came from, said after its name in the caption;
any other vendor is named as it names itself."""


def own_rule_note(results: Sequence[RunResult]) -> str:
    """The caption's line on the vendors' own rules: what ``*`` marks, and which answer
    discipline each vendor follows (the same under every policy)."""
    by_discipline: dict[str, list[str]] = {}
    for result in results:
        names = by_discipline.setdefault(result.discipline.value, [])
        if result.vendor not in names:
            names.append(result.vendor)
    answered = "; ".join(
        f"{DISCIPLINE_NAMES.get(d, d)}: {', '.join(map(_driver_named, names))}"
        for d, names in by_discipline.items()
    )
    return f"*: the vendor's own rule (its driver's lookup policy). Answered as: {answered}"


def _driver_named(vendor: str) -> str:
    driver = BUNDLED_DRIVERS.get(vendor)
    return f"{vendor} ({driver})" if driver else vendor


def natural_width(table: Table) -> int:
    """The columns ``table`` needs to show every cell whole on one line."""
    console = Console(width=1 << 16, file=io.StringIO())
    return Measurement.get(console, console.options, table).maximum


def to_tables(scenario: str, results: Sequence[RunResult], *, width: int = 80) -> list[Table]:
    """The views a scenario needs (page requests if any run sent some, allocations if any
    run allocated), each with the columns its story needs, split into as many tables as it
    takes to fit ``width`` columns: a number is never cut to fit."""
    tables: list[Table] = []
    flats = [_flat(result) for result in results]
    for name, shown in _shown_views(results, flats):
        cells = [[_cell(flat.get(c.key, 0), c.whole) for c in shown] for flat in flats]
        parts = _fit_columns(scenario, results, shown, cells, width)
        for number, part in enumerate(parts, 1):
            label = name
            if len(parts) > 1:
                label = f"{name}, " if name else ""
                label += f"{number} of {len(parts)}"
            picked = [[row[i] for i in part] for row in cells]
            tables.append(_table(scenario, results, [shown[i] for i in part], picked, label))
    return tables


def _shown_views(
    results: Sequence[RunResult], flats: Sequence[dict[str, object]]
) -> list[tuple[str, list[Column]]]:
    """Each view the results need, named if there are several, with the columns its story
    needs (every ``always`` one, the others where some run has something)."""
    views = _views(results)
    shown = []
    for view in views:
        columns = TABLE_COLUMNS if view == "requests" else ALLOCATION_COLUMNS
        picked = [c for c in columns if c.always or any(_something(f.get(c.key)) for f in flats)]
        name = ("page requests" if view == "requests" else "allocations") if len(views) > 1 else ""
        shown.append((name, picked))
    return shown


def print_vertical(console: Console, scenario: str, results: Sequence[RunResult]) -> None:
    """The views as lists, for a terminal too narrow for a table of one metric: each run's
    name on a line, then one metric a line (``  cross 8``). A table wider than the terminal
    would be wrapped by it, anywhere: in the middle of a number."""
    flats = [_flat(result) for result in results]
    for index, (name, shown) in enumerate(_shown_views(results, flats)):
        if index:
            console.print()
        title = printable(f"scenario: {scenario}" + (f" ({name})" if name else ""))
        console.print(Text(title, style="bold"))
        width = max(len(c.label) for c in shown)
        for result, flat in zip(results, flats, strict=True):
            policy = f"{result.policy.value}*" if result.native else result.policy.value
            console.print(Text(printable(f"{result.vendor} {policy}"), style="bold"))
            for column in shown:
                cell = _cell(flat.get(column.key, 0), column.whole)
                red = column.risky and cell not in ("0", "-")
                console.print(Text(f"  {column.label:<{width}} {cell}", "bold red" if red else ""))
        console.print(Text(printable_lines(_caption(results, shown))))


def _fit_columns(
    scenario: str,
    results: Sequence[RunResult],
    columns: Sequence[Column],
    cells: Sequence[Sequence[str]],
    width: int,
) -> list[list[int]]:
    """The columns (by index) of each table, in order, as many in each as fit ``width``."""
    # Measured unbounded: a measurement is clamped to the console's width, so measuring at
    # ``width`` would say everything fits.
    console = Console(width=1 << 16, file=io.StringIO())

    def fits(part: list[int]) -> bool:
        table = _table(
            scenario, results, [columns[i] for i in part], [[r[i] for i in part] for r in cells], ""
        )
        return Measurement.get(console, console.options, table).maximum <= width

    parts: list[list[int]] = []
    current: list[int] = []
    for index in range(len(columns)):
        if current and not fits([*current, index]):
            parts.append(current)
            current = []
        current.append(index)
    if current or not parts:
        parts.append(current)
    return parts


def _something(value: object) -> bool:
    """Whether a metric's value says anything: a count that is not 0, a summary that
    measured something (a float, 0.0 included: a reuse distance of 0 is the story)."""
    return value is not None and (isinstance(value, float) or value != 0)


def step_errors_text(results: Sequence[RunResult], shown: int = STEP_ERRORS_SHOWN) -> str:
    """Under the tables: each run's count of steps that could not run, and the first few
    with their key paths; runs with the same errors share one entry. Empty if none."""
    groups: dict[tuple[int, tuple[str, ...]], list[RunResult]] = {}
    for result in results:
        metrics = result.metrics
        if metrics.step_errors_total:
            key = (metrics.step_errors_total, tuple(metrics.step_errors))
            groups.setdefault(key, []).append(result)
    if not groups:
        return ""
    failed = sum(len(runs) for runs in groups.values())
    lines = [
        f"step errors: steps that could not run in {failed} of {len(results)} run(s) "
        f"(--json and --csv have the first {STEP_ERRORS_KEPT:,} of a run and the count):"
    ]
    for (total, errors), runs in groups.items():
        names = ", ".join(printable(f"{r.vendor}/{r.policy.value}") for r in runs[:4])
        if len(runs) > 4:
            names += f" and {len(runs) - 4} more"
        lines.append(f"  {names}: {total:,} step error(s)")
        # An error may quote the file (a name, a key): one line each, escaped.
        lines += [f"    {printable(error)}" for error in errors[:shown]]
        if total > shown:
            lines.append(f"    ... and {total - min(shown, len(errors)):,} more")
    return "\n".join(lines)


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
    allocator was switched or refused, a PASID was orphaned or its free deferred, or the
    runs allocated differently (a few binds, the same under every vendor, would only add a
    view of identical bars)."""
    return len({r.metrics.allocations for r in results}) > 1 or any(
        r.metrics.guest_allocations
        or r.metrics.allocator_switches
        or r.metrics.orphaned_ids
        or r.metrics.deferred_frees
        or r.metrics.forced_reclaims
        or sum(r.metrics.allocator_refusals.values())
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
    flat["allocator_refusals_total"] = sum(m.allocator_refusals.values())
    return flat


def _cell(value: object, whole: bool = False) -> str:
    if value is None:
        return "-"  # nothing measured (no request answered)
    if isinstance(value, float):
        return str(round(value)) if whole else _fit(value)
    return str(value)


def _fit(value: float) -> str:
    """A latency in at most four characters, within 5 % of it (two significant digits at
    least: ``.25``, ``7.7``, ``350``, ``4.5k``, ``12k``, ``350M``); never ``0`` for what is
    not 0 (``<.01``). The caption gives the unit, JSON and CSV the exact value."""
    if value <= 0 or not math.isfinite(value):
        return f"{value:g}"  # 0 (a negative or nan would be a bug: shown, not hidden)
    if value < 0.01:
        return "<.01"
    # Up to P: a scenario's times reach 10^15 µs (its ``at`` bound), and so can a latency.
    for suffix, scale in (("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15)):
        scaled = value / scale
        if scaled < 9.95:
            return f"{scaled:.2g}".removeprefix("0") + suffix  # 0.25 as .25: four at most
        if scaled < 999.5:
            return f"{scaled:.0f}{suffix}"
    return f"{value:.1e}"


def render_table(scenario: str, results: Sequence[RunResult], *, width: int | None = None) -> str:
    """The tables (``to_tables``) and the step errors as plain text (no colour), for logs,
    tests and pipes; ``width`` None: the terminal's (``$COLUMNS``, else 80)."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    print_report(console, scenario, results)
    return console.export_text()


def print_report(console: Console, scenario: str, results: Sequence[RunResult]) -> None:
    """What ``compare`` and ``run`` print: the tables at the console's width (lists, if
    the console is too narrow for a table of one metric), then the step errors if any run
    had some."""
    if not results:  # every run failed: an empty table, and a caption naming no vendor
        console.print(Text(f"scenario: {scenario}: no run finished (see standard error)"))
        return
    tables = to_tables(scenario, results, width=console.width)
    if any(narrowest(table) > console.width for table in tables):
        print_vertical(console, scenario, results)
    else:
        for index, table in enumerate(tables):
            if index:
                console.print()  # a caption, then the next table's title: keep them apart
            console.print(table)
    errors = step_errors_text(results)
    if errors:
        console.print()
        console.print(Text(errors, overflow="fold"))


def write_plot(scenario: str, results: Sequence[RunResult], path: Path) -> None:
    """A figure a person would rather look at than the table (see :func:`plot_figure`), in
    the format ``path``'s suffix names (checked by :func:`plot_format_problem` first)."""
    import matplotlib.pyplot as plt

    fig = plot_figure(scenario, results)
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def plot_formats() -> dict[str, str]:
    """The file suffixes matplotlib can write (``png``, ``pdf``, ``svg``, ...) and what each is."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    return dict(FigureCanvasBase.get_supported_filetypes())


def plot_format_problem(path: Path) -> str | None:
    """Why ``path`` cannot name a plot (no suffix, or one matplotlib cannot write), or None:
    checked before any run, so that a slip does not cost the runs."""
    formats = plot_formats()
    suffix = path.suffix.lower().removeprefix(".")
    known = ", ".join(sorted(formats))
    if not suffix:
        return f"has no file suffix to name its format (one of: {known})"
    if suffix not in formats:
        return f"{suffix!r} is not a format the plot can be written in (one of: {known})"
    return None


def mathtext_escaped(text: str) -> str:
    """``text`` as matplotlib shows it literally: a ``$`` would start mathtext (``$x^2$``
    drawn as math, ``$\\frac$`` an error), so each is escaped."""
    return text.replace("$", r"\$")


def plot_figure(scenario: str, results: Sequence[RunResult]) -> Figure:
    """One row per run, in the views the tables use (:func:`to_tables`). Page requests: how
    each run's groups were answered (by the driver or the hardware), and how many requests
    went wrong (another owner's data, the wrong type, a stale PASID) or were dropped.
    Allocations: host and guest allocations and failures, and what they cost or left behind
    (VM exits, orphans, switches, reuses straight back, frees left pending)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    views = _views(results)
    labels = [
        mathtext_escaped(f"{r.vendor} / {r.policy.value}" + (_OWN if r.native else ""))
        for r in results
    ]
    rows = list(range(len(results)))[::-1]  # the first run on top
    height = 1.9 + 0.32 * len(results)
    # Constrained layout makes room for the legends above the panels and the title above
    # them (tight_layout ignores legends outside the axes: the title sat on them).
    fig, grid = plt.subplots(
        len(views),
        2,
        figsize=(11, height * len(views)),
        sharey=True,
        gridspec_kw={"width_ratios": [3, 2]},
        squeeze=False,
        layout="constrained",
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
                ncol=3,
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
    fig.suptitle(
        mathtext_escaped(f"{scenario}: each (vendor, lookup policy)")
        + "; (own): the vendor's own rule"
    )
    return fig


Bar = tuple[str, str, list[int]]
"""A bar series: its legend label, colour and one value per run."""


def _stacked(axes: Axes, rows: list[int], parts: Sequence[Bar]) -> None:
    """Horizontal bars, one per row, made of ``(label, colour, widths)`` parts."""
    start = [0] * len(rows)
    for label, colour, widths in parts:
        axes.barh(rows, widths, left=start, color=colour, label=label)
        start = [a + b for a, b in zip(start, widths, strict=True)]


def _paired(axes: Axes, rows: list[int], bars: Sequence[Bar]) -> None:
    """Thin side-by-side bars per row, ``(label, colour, values)`` each."""
    height = 0.8 / len(bars)
    for index, (label, colour, values) in enumerate(bars):
        offset = 0.4 - height * (index + 0.5)
        axes.barh([y + offset for y in rows], values, height, color=colour, label=label)
    axes.set_xlim(0, max([v for _, _, values in bars for v in values] + [1]) * 1.15)


def _story(always: Sequence[Bar], optional: Sequence[Bar]) -> list[Bar]:
    """The ``always`` bars, then each ``optional`` one some run has a non-zero value for:
    as the tables leave out a column of zeros."""
    return [*always, *(bar for bar in optional if any(bar[2]))]


def _plot_requests(left: Axes, right: Axes, results: Sequence[RunResult], rows: list[int]) -> None:
    metrics = [r.metrics for r in results]
    always = [
        (code, colour, [m.responses[code] for m in metrics])
        for code, colour in (
            ("success", "#4c9a2a"),
            ("invalid", "#e0a030"),
            ("failure", "#b03030"),
        )
    ]
    optional = [
        ("by the hardware", "#808080", [m.auto_responses for m in metrics]),
        ("never answered", "#999999", [m.unanswered_groups for m in metrics]),
    ]
    _stacked(left, rows, _story(always, optional))
    left.set_xlabel("page request groups answered (or not)")
    _paired(
        right,
        rows,
        _story(
            [
                ("cross-owner", "#b03030", [m.cross_owner_hits for m in metrics]),
                ("type confusion", "#7040a0", [m.type_confusions for m in metrics]),
            ],
            [
                ("stale PASID (groups)", "#e05050", [m.stale_pasid_hits for m in metrics]),
                ("answered early", "#c07000", [m.premature_responses for m in metrics]),
                ("dropped", "#808080", [sum(m.dropped.values()) for m in metrics]),
                ("by SPID", "#3070b0", [m.spid_requests for m in metrics]),
            ],
        ),
    )
    right.set_xlabel("requests resolved wrongly, answered early, dropped or by SPID")


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
        _story(
            [
                ("VM exits", "#3070b0", [m.vm_exits for m in metrics]),
                ("orphaned", "#b03030", [m.orphaned_ids for m in metrics]),
                ("allocator switches", "#7040a0", [m.allocator_switches for m in metrics]),
            ],
            [
                (
                    "reused straight back",
                    "#e05050",
                    [m.reuse_distance.count_of(0.0) for m in metrics],
                ),
                ("frees left pending", "#e0a030", [m.deferred_frees for m in metrics]),
                ("swaps refused", "#808080", [sum(m.allocator_refusals.values()) for m in metrics]),
            ],
        ),
    )
    right.set_xlabel("what they cost or left behind")
