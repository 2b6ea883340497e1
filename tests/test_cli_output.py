"""What ``compare`` prints is true at any width: every number shown whole (checked against the
JSON), user text shown as written, step errors under the tables, each example's story in
its default table and plot; and the CSV's columns never depend on the scenario."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.compare import available_vendors, compare
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import LookupPolicy
from ioasid_core.replay import RunResult
from ioasid_core.report import (
    ALLOCATION_COLUMNS,
    TABLE_COLUMNS,
    plot_figure,
    render_table,
    to_csv,
)
from ioasid_core.scenario import load_scenario, parse_scenario

EXAMPLES = Path(__file__).parent.parent / "examples"
LABELS = {c.label: c.key for c in (*TABLE_COLUMNS, *ALLOCATION_COLUMNS)}
"""Header -> metric (``fail`` is in both views: see ``check_every_cell``)."""
TOTALS = {
    "dropped_total": "dropped",
    "allocation_failures_total": "allocation_failures",
    "guest_allocation_failures_total": "guest_allocation_failures",
    "allocator_refusals_total": "allocator_refusals",
}


def invoke(*args: str, columns: int = 80) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def metric(metrics: dict[str, Any], key: str) -> object:
    """A shown column's value, from the JSON (totals summed by hand)."""
    if key in TOTALS:
        return sum(metrics[TOTALS[key]].values())
    value: Any = metrics
    for part in key.split("."):
        value = value[part]
    return value


def tables(stdout: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each printed table: its headers and its rows' cells (a blank vendor cell filled in)."""
    return [(headers, rows) for _, headers, rows in titled_tables(stdout)]


def titled_tables(stdout: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """Each printed table with its title (its lines joined: a narrow terminal wraps it)."""
    found = []
    lines = stdout.splitlines()
    title = ""
    for index, line in enumerate(lines):
        if line.strip().startswith("scenario:"):
            title = ""
        title += " " + line.strip()
        if line.split()[:2] != ["vendor", "policy"]:
            continue
        headers = line.split()
        rows: list[list[str]] = []
        vendor = ""
        for row in lines[index + 2 :]:
            cells = row.split()
            if not cells:
                break
            if len(cells) == len(headers):
                vendor = cells[0]
            else:
                assert len(cells) == len(headers) - 1, f"a row with a cell missing: {row!r}"
                cells = [vendor, *cells]
            rows.append(cells)
        found.append((" ".join(title.split()), headers, rows))
    return found


def shown_value(cell: str) -> float | None:
    """A latency cell back to a number (``7.7``, ``350``, ``4.5k``, ``12k``); None for ``-``;
    ``<.01`` as 0.01 (checked as above 0 and below 0.01 by the caller)."""
    if cell == "-":
        return None
    match = re.fullmatch(r"<?(\d*\.?\d+)([kMGT]?)", cell)
    assert match, f"not a number with a unit: {cell!r}"
    return float(match[1]) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[match[2]]


POLICIES = {"global", "set", "endpoint", "device"}


def listed_runs(stdout: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """The views of a terminal too narrow for tables (each run's vendor and policy, wrapped
    maybe, then ``  label value`` lines, then the caption), as :func:`titled_tables` gives
    tables."""
    found: list[tuple[str, list[str], list[list[str]]]] = []
    title, headers, caption = "", ["vendor", "policy"], False
    rows: list[list[str]] = []
    row: list[str] = []
    pending: list[str] = []
    for line in [*stdout.splitlines(), "scenario: (end)"]:
        words = line.split()
        if line.startswith("scenario:"):
            rows += [row] if row else []
            if rows:
                found.append((title, headers, rows))
            title, headers, rows, row, pending, caption = (
                line,
                ["vendor", "policy"],
                [],
                [],
                [],
                False,
            )
        elif caption or not words:
            continue
        elif line.startswith("  ") and row and len(words) == 2:
            if words[0] not in headers:
                headers.append(words[0])
            row.append(words[1])
        elif row and ":" in line:  # the caption: "req: page requests sent; ..."
            caption = True
        else:
            title += "" if row or rows else " " + line.strip()
            pending += words
            if pending[-1].removesuffix("*") in POLICIES:
                rows += [row] if row else []
                row, pending = pending[-2:], []
    return found


def check_every_cell(
    stdout: str, report: dict[str, Any], width: int, *, fits: bool = True
) -> set[str]:
    """Every cell of every table is its run's metric, whole; no line is wider than
    ``width`` (if it ``fits``: a terminal narrower than a table's narrowest layout gets
    longer lines). Returns the headers seen."""
    if fits:
        assert all(len(line) <= width for line in stdout.splitlines()), stdout
    runs = {(r["vendor"], r["policy"]): r["metrics"] for r in report["results"]}
    seen: set[str] = set()
    parsed = titled_tables(stdout) or listed_runs(stdout)
    assert parsed, stdout
    for title, headers, rows in parsed:
        assert len(rows) == len(runs)
        for cells in rows:
            metrics = runs[(cells[0], cells[1].removesuffix("*"))]  # *: the vendor's own
            for header, cell in zip(headers[2:], cells[2:], strict=True):
                seen.add(header)
                key = LABELS[header]
                if header == "fail":  # both views have one: the title names the allocations'
                    alloc = "alloc" in headers or "(allocations" in title
                    key = "allocation_failures_total" if alloc else "responses.failure"
                expected = metric(metrics, key)
                if key.startswith("request_latency_us"):
                    value = shown_value(cell)
                    assert (value is None) == (expected is None), (header, cell, expected)
                    if cell.startswith("<"):  # "<.01": above 0, below 0.01
                        assert isinstance(expected, float) and 0 < expected < 0.01
                    elif value is not None and isinstance(expected, float):
                        assert abs(value - expected) <= 0.05 * expected, (cell, expected)
                elif key == "reuse_distance.min":
                    assert cell == ("-" if expected is None else f"{expected:.0f}")
                else:
                    assert cell == str(expected), (cells[:2], header, cell, expected)
    return seen


@pytest.mark.parametrize("width", [20, 40, 60, 80, 200])
@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_cell_of_every_example_is_its_number_whole_at_any_width(
    example: str, width: int, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    code, stdout, _ = invoke("compare", str(EXAMPLES / example), "--json", str(out), columns=width)
    assert code == 0
    assert "…" not in stdout
    # 20 and 40 columns are narrower than some examples' narrowest table (vendor, policy,
    # one metric): those lines are longer, never cut.
    check_every_cell(stdout, json.loads(out.read_text()), width, fits=width >= 60)


def test_a_wide_scenario_is_split_into_tables_that_each_fit(tmp_path: Path) -> None:
    """queue-depths at 80 columns: the column cut to 'p9' with '2' for 20.0 before."""
    out = tmp_path / "r.json"
    path = str(EXAMPLES / "queue-depths.toml")
    code, stdout, _ = invoke("compare", path, "--json", str(out), columns=80)
    assert code == 0
    seen = check_every_cell(stdout, json.loads(out.read_text()), 80)
    assert {"p99", "auto", "drop", "req"} <= seen
    assert "scenario: queue-depths (1 of 2)" in stdout and "(2 of 2)" in stdout


def test_big_counts_are_shown_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(
        'name = "big"\n[platform]\nunits = [{ name = "u", queue_entries = 16384 }]\n'
        'address_spaces = [{ name = "p" }]\nsets = [{ name = "sva", sva = true }]\n'
        'domains = [{ name = "d", owner = "p", sets = ["sva"] }]\n'
        'devices = [{ name = "a", unit = "u", source_id = 1, owner = "p", domain = "d" }]\n'
        '[[steps]]\nop = "bind"\ndevice = "a"\nset = "sva"\naddress_space = "p"\nname = "x"\n'
        + '[[steps]]\nop = "page_requests"\ndevice = "a"\npasid = "x"\ngroups = 65535\n'
        * 2
    )
    out = tmp_path / "r.json"
    code, stdout, _ = invoke(
        "compare",
        str(path),
        "--json",
        str(out),
        "--vendors",
        "generic,smmuv3-pri-iopf",
        "--policies",
        "global,device",
        columns=80,
    )
    assert code == 0
    check_every_cell(stdout, json.loads(out.read_text()), 80)
    assert " 131070 " in stdout


def test_scenario_names_are_shown_as_written_not_read_as_markup(tmp_path: Path) -> None:
    for name in ("null-set [v5.5]", "base[/]", "[bold red]x[/] $x^2$"):
        path = tmp_path / "s.toml"
        path.write_text(f'name = {json.dumps(name)}\n[platform]\nunits = [{{ name = "u" }}]\n')
        code, stdout, stderr = invoke("compare", str(path), "--vendors", "generic")
        assert code == 0, stderr
        assert f"scenario: {name}" in stdout


def test_a_name_with_terminal_control_characters_is_refused_before_it_reaches_the_screen(
    tmp_path: Path,
) -> None:
    """An escape sequence or carriage return in a name would rewrite what the terminal shows."""
    for name, key in (
        ("a\x1b[31mred", "name"),
        ("over\rwrite", "name"),
        ("u\x1b[2J", "platform.units[0].name"),
    ):
        path = tmp_path / "s.toml"
        scenario_name, unit = (name, "u") if key == "name" else ("s", name)
        path.write_text(
            f"name = {json.dumps(scenario_name)}\n"
            f"[platform]\nunits = [{{ name = {json.dumps(unit)} }}]\n"
        )
        code, stdout, stderr = invoke("compare", str(path), "--vendors", "generic")
        assert code == 2
        assert "\x1b" not in stdout + stderr and "\r" not in stdout + stderr
        assert f"{key}: expected printable characters only" in stderr


def test_mathtext_in_a_name_is_drawn_as_written_and_does_not_crash_the_plot(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "$\\\\frac$ and $x^2$"\n[platform]\nunits = [{ name = "u" }]\n')
    plot = tmp_path / "p.png"
    code, _, stderr = invoke("compare", str(path), "--vendors", "generic", "--plot", str(plot))
    assert code == 0, stderr
    assert plot.read_bytes()[:4] == b"\x89PNG"
    scenario = load_scenario(path)
    figure = plot_figure(scenario.name, compare(scenario, [_vendors()["generic"]]))
    assert figure.get_suptitle() == (
        r"\$\frac\$ and \$x^2\$: each (vendor, lookup policy); (own): the vendor's own rule"
    )


STEP_ERRORS = """
name = "errors"
[platform]
units = [{ name = "u" }]
address_spaces = [{ name = "p" }]
sets = [{ name = "s", quota = 1 }]
devices = [{ name = "a", unit = "u", source_id = 1, owner = "p" }]
[[steps]]
op = "alloc"
set = "s"
owner = "p"
name = "one"
[[steps]]
op = "alloc"
set = "s"
owner = "p"
name = "two"
""" + "".join(
    f'[[steps]]\nop = "page_requests"\ndevice = "a"\npasid = "two"\nat = {n}\n' for n in range(1, 6)
)


def test_step_errors_are_listed_under_the_table_and_the_exit_status_stays_0(
    tmp_path: Path,
) -> None:
    path = tmp_path / "errors.toml"
    path.write_text(STEP_ERRORS)
    code, stdout, _ = invoke("compare", str(path), "--vendors", "generic,vtd", columns=80)
    assert code == 0
    after = stdout[stdout.index("step errors:") :]
    assert "step errors: steps that could not run in 8 of 8 run(s)" in after
    assert "generic/global, generic/set, generic/endpoint, generic/device and 4 more: 5" in after
    assert "steps[2]: PASID 'two' was never allocated" in after
    assert "steps[4]" in after and "steps[5]" not in after  # the first three
    assert "... and 2 more" in after
    assert all(len(line) <= 80 for line in stdout.splitlines())


def test_step_errors_past_those_kept_are_counted_in_the_text_and_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ioasid_core.metrics as metrics_module

    monkeypatch.setattr(metrics_module, "STEP_ERRORS_KEPT", 4)
    path = tmp_path / "errors.toml"
    path.write_text(STEP_ERRORS)
    out = tmp_path / "out.json"
    code, stdout, _ = invoke("compare", str(path), "--vendors", "generic", "--json", str(out))
    assert code == 0
    assert ": 5 step error(s)" in stdout and "... and 2 more" in stdout
    runs = json.loads(out.read_text())["results"]
    assert len(runs) == 4
    for run in runs:
        assert run["metrics"]["step_errors_total"] == 5
        assert len(run["metrics"]["step_errors"]) == 4


def _vendors() -> dict[str, Any]:
    return available_vendors(new_plugin_manager().hooks)


def _run(example: str) -> list[RunResult]:
    return compare(load_scenario(EXAMPLES / example), list(_vendors().values()))


def _bars(figure: Any, label: str) -> list[float]:
    """The widths of the bar series called ``label``, one per run (the first run on top)."""
    for axes in figure.axes:
        for container in axes.containers:
            if container.get_label() == label:
                bars = sorted(container.patches, key=lambda p: -p.get_y())
                return [float(p.get_width()) for p in bars]
    raise AssertionError(f"no bars called {label!r}")


def _row(stdout: str, vendor: str, header: str) -> str:
    for headers, rows in tables(stdout):
        if header in headers:
            for cells in rows:
                if cells[0] == vendor:
                    return cells[headers.index(header)]
    raise AssertionError(f"no {header!r} for {vendor!r}")


def test_queue_depths_devices_see_the_dropped_requests_fail_in_table_and_plot() -> None:
    """The header: the hardware auto-answers what the queue cannot hold."""
    code, stdout, _ = invoke("compare", str(EXAMPLES / "queue-depths.toml"), columns=80)
    assert code == 0
    kept = {"generic": 160, "virtio-iommu": 64, "smmuv3-pri": 63}
    for vendor, answered in kept.items():
        assert _row(stdout, vendor, "auto") == str(160 - answered), vendor
    # VT-d drops 160 - 127 = 33 too, but PRO answers none of them (the devices wait).
    assert _row(stdout, "vtd", "auto") == "0"
    results = _run("queue-depths.toml")
    auto = _bars(plot_figure("q", results), "by the hardware")
    by_vendor = {r.vendor: a for r, a in zip(results, auto, strict=True)}
    assert by_vendor["smmuv3-pri"] == 97 and by_vendor["virtio-iommu"] == 96
    assert by_vendor["generic"] == by_vendor["vtd"] == 0


def test_prq_storm_drops_are_in_the_plot() -> None:
    results = _run("prq-storm.toml")
    dropped = _bars(plot_figure("s", results), "dropped")
    assert dropped == [sum(r.metrics.dropped.values()) for r in results]
    assert dropped[0] == 96  # generic: 88 overflowed, 8 of a partial group discarded


def test_allocator_swap_reuse_spid_and_pending_free_are_in_table_and_plot() -> None:
    code, stdout, _ = invoke("compare", str(EXAMPLES / "allocator-swap.toml"), columns=80)
    assert code == 0
    for header, value in (("reuse", "20"), ("dist", "0"), ("defer", "1"), ("spid", "2")):
        assert _row(stdout, "vtd", header) == value, header
    figure = plot_figure("a", _run("allocator-swap.toml"))
    assert set(_bars(figure, "reused straight back")) == {18}
    assert set(_bars(figure, "frees left pending")) == {1}
    assert set(_bars(figure, "by SPID")) == {2}


def test_stale_pasid_hits_are_shown_in_red_when_some_run_has_them() -> None:
    doc: dict[str, Any] = {
        "name": "stale",
        "platform": {
            "units": [{"name": "u"}],
            "address_spaces": [{"name": "p"}, {"name": "q"}],
            "sets": [{"name": "sva", "sva": True}],
            "devices": [{"name": "a", "unit": "u", "source_id": 1, "owner": "p"}],
        },
        "steps": [
            {"op": "bind", "device": "a", "set": "sva", "address_space": "p", "name": "x"},
            {"op": "page_requests", "device": "a", "pasid": "x", "service": False},
            {"op": "unbind", "device": "a", "pasid": "x"},
            {"op": "bind", "device": "a", "set": "sva", "address_space": "q", "name": "y"},
            {"op": "service", "unit": "u"},
        ],
    }
    results = compare(parse_scenario(doc, "t"), [_vendors()["generic"]], [LookupPolicy.DEVICE])
    from rich.console import Console

    from ioasid_core.report import print_report

    console = Console(width=80, record=True, file=io.StringIO(), color_system="truecolor")
    print_report(console, "stale", results)
    assert _row(console.export_text(), "generic", "stale") == "1"
    assert "\x1b[1;31m" in console.file.getvalue()  # type: ignore[attr-defined]
    assert _bars(plot_figure("s", results), "stale PASID (groups)") == [1]


@pytest.mark.parametrize("example", ["allocator-swap.toml", "guest-vcmd.toml", "prq-storm.toml"])
def test_the_title_does_not_sit_on_the_legends(example: str) -> None:
    figure = plot_figure("a rather long scenario name", _run(example))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    suptitle = figure.get_suptitle() and figure.texts[0]
    assert suptitle and suptitle.get_text().startswith("a rather long")
    title = suptitle.get_window_extent(renderer)
    legends = []
    for axes in figure.axes:
        legend = axes.get_legend()
        assert legend is not None
        legends.append(legend.get_window_extent(renderer))
    assert not any(title.overlaps(box) for box in legends)
    for index, box in enumerate(legends):  # nor on each other, nor on another row's panels
        others = legends[:index] + legends[index + 1 :]
        assert not any(box.overlaps(other) for other in others)


def test_csv_columns_do_not_depend_on_the_scenario() -> None:
    headers = set()
    for example in sorted(EXAMPLES.glob("*.toml")):
        results = compare(load_scenario(example), [_vendors()["generic"]])
        headers.add(next(csv.reader(io.StringIO(to_csv(results)))).__str__())
    assert len(headers) == 1  # allocator-swap has a [latency] table, the others not


def test_amd_riscv_unanswered_and_hardware_answered_groups_are_in_table_and_plot() -> None:
    """The header: AMD answers nothing for an unknown requester (2 groups) and has no
    auto-response for the 9 it drops; the RISC-V IOMMU answers all 11 itself."""
    code, stdout, _ = invoke("compare", str(EXAMPLES / "amd-riscv.toml"), columns=80)
    assert code == 0
    assert (_row(stdout, "amd-vi", "unans"), _row(stdout, "amd-vi", "auto")) == ("2", "0")
    assert _row(stdout, "amd-vi", "drop") == "9"
    assert (_row(stdout, "riscv-iommu", "auto"), _row(stdout, "riscv-iommu", "unans")) == (
        "11",
        "0",
    )
    results = _run("amd-riscv.toml")
    figure = plot_figure("a", results)
    by_vendor = {
        r.vendor: (never, auto)
        for r, never, auto in zip(
            results,
            _bars(figure, "never answered"),
            _bars(figure, "by the hardware"),
            strict=True,
        )
    }
    assert by_vendor["amd-vi"] == (2, 0) and by_vendor["riscv-iommu"] == (0, 11)


@pytest.mark.parametrize(
    ("example", "vendor", "table", "plot"),
    [
        # The 2019 argument: only the global search hands out another owner's object.
        # (VT-d 2019 looks every request of a group up: more than the IOPF vendors.)
        ("null-set-search.toml", "vtd", {"cross": "8", "type": "10"}, {"cross-owner": 8}),
        ("null-set-search.toml", "generic", {"cross": "4", "type": "6"}, {"cross-owner": 4}),
        # vm-b hits its quota of 4 under vtd; every command is VM exits.
        ("guest-vcmd.toml", "vtd", {"gfail": "2", "exits": "89"}, {"VM exits": 89}),
        # acc-b's requests for acc-a's PASID resolve to another owner's mm under a search.
        ("churn-and-stream.toml", "vtd", {"cross": "14"}, {"cross-owner": 14}),
    ],
)
def test_the_other_examples_stories_are_in_table_and_plot(
    example: str, vendor: str, table: dict[str, str], plot: dict[str, int]
) -> None:
    code, stdout, _ = invoke("compare", str(EXAMPLES / example), columns=80)
    assert code == 0
    for header, value in table.items():
        assert _row(stdout, vendor, header) == value, header
    results = _run(example)
    figure = plot_figure("x", results)
    for label, bar in plot.items():
        shown = dict(
            zip([(r.vendor, r.policy) for r in results], _bars(figure, label), strict=True)
        )
        assert shown[(vendor, LookupPolicy.GLOBAL)] == bar, label


def test_run_prints_the_same_fitted_tables(tmp_path: Path) -> None:
    path = str(EXAMPLES / "queue-depths.toml")
    # smmuv3-pri: its 64-entry PRI queue keeps 63, the hardware answers the other 97 (auto).
    code, stdout, _ = invoke("run", path, "--vendor", "smmuv3-pri", columns=50)
    assert code == 0
    _, as_json, _ = invoke("run", path, "--vendor", "smmuv3-pri", "--json")
    seen = check_every_cell(stdout, json.loads(as_json), 50)
    assert {"auto", "p99"} <= seen


@pytest.mark.parametrize("width", [20, 30])
def test_a_terminal_narrower_than_one_column_gets_lists_not_cut_numbers(width: int) -> None:
    """Below the narrowest layout (vendor, policy, one metric), rich squeezed the table to the
    terminal: 131070 showed as "1310", policies as "gl…", whole columns vanished. Printed at
    its narrowest instead, the terminal wrapped its lines anywhere, numbers too. Now each
    run is a list, one metric a line, no line wider than the terminal but a word that is.
    (Below 20 columns a word wider than the terminal is folded.)"""
    scenario = load_scenario(EXAMPLES / "queue-depths.toml")
    vendors = _vendors()
    results = compare(scenario, [vendors["smmuv3-pri-iopf"], vendors["generic"]])
    text = render_table(scenario.name, results, width=width)
    assert "…" not in text
    for line in text.splitlines():
        assert len(line.rstrip()) <= width or len(line.split()) == 1, (line, text)
    runs = text.split("scenario:")[1].split("\n\n")[0]  # the page requests
    lines = [line.split() for line in runs.splitlines()]
    assert ["generic", "global*"] in lines and ["smmuv3-pri-iopf", "set*"] in lines, text
    assert lines.count(["req", "160"]) == len(results), text  # every run's count, whole


def test_json_or_csv_dash_goes_to_stdout_instead_of_the_table(tmp_path: Path) -> None:
    base = ["compare", "null-set-search", "--policies", "native", "--vendors", "vtd,smmuv3"]
    json_file = tmp_path / "out.json"
    to_file = CliRunner().invoke(cli, [*base, "--json", str(json_file)])
    assert to_file.exit_code == 0, to_file.output
    as_json = CliRunner().invoke(cli, [*base, "--json", "-"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == json.loads(json_file.read_text())  # nothing else on it
    as_csv = CliRunner().invoke(cli, [*base, "--csv", "-"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["vendor"], r["policy"]) for r in rows] == [("vtd", "global"), ("smmuv3", "set")]
    assert not Path("-").exists()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--json", "-", "--csv", "-"], "only one output can go to the standard output"),
        (["--plot", "-"], "a plot goes to a file"),
    ],
)
def test_dash_outputs_that_cannot_share_stdout_are_bad_input(args: list[str], problem: str) -> None:
    result = CliRunner().invoke(cli, ["compare", "null-set-search", *args])
    assert result.exit_code == 2
    assert problem in result.stderr
