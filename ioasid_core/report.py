"""Present a comparison: a terminal table, JSON, CSV, and a figure.

The JSON shape is ``{"scenario": name, "results": [{"vendor", "policy", "seed", "metrics"}]}``;
the CSV has one row per run and one column per flattened metric (``responses.success``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ioasid_core.replay import RunResult

__all__ = ["TABLE_ROWS", "flatten", "to_csv", "to_json", "to_table", "write_plot"]

TABLE_ROWS: tuple[tuple[str, str], ...] = (
    ("page requests", "page_requests"),
    ("responses: success", "responses.success"),
    ("responses: invalid", "responses.invalid"),
    ("responses: failure", "responses.failure"),
    ("cross-owner hits", "cross_owner_hits"),
    ("type confusions", "type_confusions"),
    ("dropped: stop markers", "dropped.stop_markers"),
    ("dropped: overflow", "dropped.overflow"),
    ("dropped: unmatched", "dropped.unmatched"),
    ("dropped: partial groups", "dropped.discarded_partial"),
    ("dropped: malformed", "dropped.malformed"),
    ("vendor rejects", "vendor_rejects"),
    ("auto-responses (overflow)", "auto_responses"),
    ("allocations", "allocations"),
    ("peak live IOASIDs", "peak_live_ioasids"),
    ("allocator switches", "allocator_switches"),
    ("orphaned IDs", "orphaned_ids"),
    ("request latency p50 (us)", "request_latency_us.p50"),
    ("request latency p99 (us)", "request_latency_us.p99"),
)
"""The metrics the terminal table shows, in order (JSON and CSV carry all of them)."""

_RISKY = {"cross_owner_hits", "type_confusions"}


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
    return json.dumps({"scenario": scenario, "results": [r.as_dict() for r in results]}, indent=2)


def to_csv(results: Sequence[RunResult]) -> str:
    rows = []
    for result in results:
        row: dict[str, object] = {
            "vendor": result.vendor,
            "policy": result.policy.value,
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


def to_table(scenario: str, results: Sequence[RunResult]) -> Table:
    """Runs side by side: one column per (vendor, policy), one row per metric."""
    table = Table(title=f"scenario: {scenario}", show_lines=False)
    table.add_column("metric", style="bold")
    for result in results:
        table.add_column(f"{result.vendor}\n{result.policy.value}", justify="right")
    flats = [flatten(r.metrics.as_dict()) for r in results]
    for label, key in TABLE_ROWS:
        cells = []
        for flat in flats:
            value = flat.get(key, 0)
            text = f"{value:g}" if isinstance(value, float) else str(value)
            if key in _RISKY and value:
                text = f"[bold red]{text}[/]"
            cells.append(text)
        table.add_row(label, *cells)
    return table


def render_table(scenario: str, results: Sequence[RunResult], *, width: int = 160) -> str:
    """The table as plain text (no colour): for logs, tests and pipes."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(to_table(scenario, results))
    return console.export_text()


def write_plot(scenario: str, results: Sequence[RunResult], path: Path) -> None:
    """A figure a person would rather look at than the table: per run, how its page requests
    were answered, with the cross-owner hits and type confusions marked on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.vendor}\n{r.policy.value}" for r in results]
    metrics = [r.metrics for r in results]
    stacks = [
        ("success", "#4c9a2a"),
        ("invalid", "#e0a030"),
        ("failure", "#b03030"),
    ]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6.0, 1.3 * len(results) + 2), 7), sharex=True
    )
    base = [0] * len(results)
    for code, colour in stacks:
        heights = [m.responses[code] for m in metrics]
        top.bar(labels, heights, bottom=base, color=colour, label=code)
        base = [b + h for b, h in zip(base, heights, strict=True)]
    top.set_ylim(0, max([*base, 1]) * 1.3)  # room for the legend above the bars
    top.set_ylabel("page request groups answered")
    top.legend(loc="upper right", fontsize="small")
    top.set_title(f"{scenario}: how each (vendor, policy) answered")
    width = 0.38
    xs = list(range(len(results)))
    cross = [m.cross_owner_hits for m in metrics]
    confused = [m.type_confusions for m in metrics]
    bottom.bar([x - width / 2 for x in xs], cross, width, color="#b03030", label="cross-owner")
    bottom.bar(
        [x + width / 2 for x in xs], confused, width, color="#7040a0", label="type confusion"
    )
    bottom.set_xticks(xs, labels)
    bottom.set_ylim(0, max([*cross, *confused, 1]) * 1.3)
    bottom.set_ylabel("requests resolved wrongly")
    bottom.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
