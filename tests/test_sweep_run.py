"""Running sweeps: the same rows whatever the engine and batch size, streamed to the folder,
resumable, failures recorded, and bad input leaving nothing behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ioasid_core import compare as compare_module
from ioasid_core.cli import cli
from ioasid_core.sweep import (
    PoolEngine,
    SerialEngine,
    StoreError,
    SweepStore,
    load_sweep,
    plan_sweep,
    read_results,
    run_sweep,
)
from ioasid_core.sweep.plan import SweepPlan
from ioasid_core.sweep.runner import SweepReport

# tests/sweep_helpers.py: ``tests.sweep_helpers`` at run time, ``sweep_helpers`` to mypy
# (see test_iopf.py).
if TYPE_CHECKING:
    from sweep_helpers import SMALL, VENDORS, WITH_EXPLODING, comparable, write_sweep
else:
    from tests.sweep_helpers import SMALL, VENDORS, WITH_EXPLODING, comparable, write_sweep


def _plan(tmp_path: Path, text: str = SMALL, vendors: Any = VENDORS) -> SweepPlan:
    return plan_sweep(load_sweep(write_sweep(tmp_path, text)), vendors)


def _sweep(plan: SweepPlan, out: Path, engine: Any, batch: int | None = None) -> SweepReport:
    store = SweepStore(out)
    store.check(plan, resume=False)
    try:
        return run_sweep(plan, store, engine, batch=batch)
    finally:
        engine.close()


def test_serial_and_pool_give_the_same_rows_whatever_the_batch(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    serial = _sweep(plan, tmp_path / "serial", SerialEngine(), batch=16)
    pooled = _sweep(plan, tmp_path / "pool", PoolEngine(2), batch=3)
    assert serial.failed == pooled.failed == ()
    rows = read_results(tmp_path / "serial")
    assert len(rows) == 16
    assert comparable(rows) == comparable(read_results(tmp_path / "pool"))
    # The seeds change the generated stream: a point's two seeds differ somewhere.
    by_seed = [
        [r["responses.success"] for r in rows if r["seed"] == seed and r["point"] == 1]
        for seed in (1, 2)
    ]
    assert by_seed[0] != by_seed[1]


def test_rows_carry_the_key_axis_values_native_flag_metrics_and_timings(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    _sweep(plan, tmp_path / "out", SerialEngine())
    table = pq.read_table(tmp_path / "out" / "results.parquet")
    names = table.column_names
    assert names[:7] == [
        "run",
        "point",
        "vendor",
        "policy",
        "native",
        "seed",
        "generators[1].count",
    ]
    assert names[-3:] == ["run_time_s", "run_cpu_s", "error"]
    assert {"responses.success", "dropped_total", "request_latency_us.p99"} <= set(names)
    rows = table.to_pylist()
    assert [r["generators[1].count"] for r in rows] == [10] * 8 + [30] * 8
    assert [(r["policy"], r["native"]) for r in rows[:2]] == [("global", True), ("device", False)]
    assert all(r["error"] is None and r["run_cpu_s"] >= 0 for r in rows)
    # One stream step is one page request group: more steps, more requests.
    assert rows[0]["page_requests"] < rows[8]["page_requests"]
    csv_lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert csv_lines[0].split(",")[:3] == ["run", "point", "vendor"] and len(csv_lines) == 17
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["runs"] == 16
    assert manifest["sweep_sha256"] == plan.spec.digest and manifest["seeds"] == [1, 2]
    assert manifest["timings"]["runs_now"] == 16


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path: Path) -> None:
    text = SMALL.replace('["generic", "vtd"]', '["generic", "exploding"]')
    plan = _plan(tmp_path, text, WITH_EXPLODING)
    report = _sweep(plan, tmp_path / "out", PoolEngine(2), batch=4)
    assert {run.vendor for run, _ in report.failed} == {"exploding"}
    assert len(report.failed) == 8
    assert "decoder exploded" in report.failed[0][1]
    rows = read_results(tmp_path / "out")
    assert all(r["error"] is None and r["page_requests"] for r in rows if r["vendor"] == "generic")
    assert all("exploding" in str(r["error"]) for r in rows if r["vendor"] == "exploding")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and len(manifest["failures"]) == 8


def test_resume_runs_only_what_the_folder_lacks(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    out = tmp_path / "out"
    _sweep(plan, out, SerialEngine())
    whole = comparable(read_results(out))
    runs = out / "runs.jsonl"
    lines = runs.read_text().splitlines(keepends=True)
    runs.write_text("".join(lines[:5]) + lines[5][:20])  # 5 runs kept, one cut mid-line
    (out / "results.parquet").unlink()
    store = SweepStore(out)
    with pytest.raises(StoreError, match="not empty"):
        store.check(plan, resume=False)
    store.check(plan, resume=True)
    report = run_sweep(plan, store, SerialEngine())
    assert report.ran == 11 and report.failed == ()
    assert comparable(read_results(out)) == whole


def test_resume_refuses_a_folder_of_another_sweep(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _sweep(_plan(tmp_path), out, SerialEngine())
    other = _plan(tmp_path, SMALL.replace("[10, 30]", "[10, 20]"))
    with pytest.raises(StoreError, match="holds another sweep"):
        SweepStore(out).check(other, resume=True)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, ["sweep", *args], catch_exceptions=False)


def test_the_command_runs_plots_and_replots(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    out = tmp_path / "out"
    result = _cli(str(path), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "16 runs" in result.output and "0 failed" in result.output
    assert (out / "plots" / "responses.success.png").stat().st_size > 1000
    replot = _cli("--plot", str(out), "dropped_total")
    assert replot.exit_code == 0, replot.output
    assert (out / "plots" / "dropped_total.png").stat().st_size > 1000
    assert _cli("--plot", str(out), "nope").exit_code == 2


def test_failed_runs_exit_1_naming_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare_module, "available_vendors", lambda *_: WITH_EXPLODING)
    path = write_sweep(tmp_path, SMALL.replace('["generic", "vtd"]', '["generic", "exploding"]'))
    result = CliRunner().invoke(
        cli, ["sweep", str(path), "--out", str(tmp_path / "out"), "--jobs", "1"]
    )
    assert result.exit_code == 1
    assert "8 failed" in result.stdout
    assert "run 2 failed: point 0 (generators[1].count=10), exploding/global, seed 1" in (
        result.stderr
    )
    assert "decoder exploded" in result.stderr


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        (SMALL.replace('"generators[1].count"', '"generators[9].count"'), [], "element(s)"),
        (SMALL.replace("[10, 30]", "[10, 0]"), [], "point 1 (generators[1].count=0)"),
        (SMALL.replace("[10, 30]", "[]"), [], "at least one value"),
        (SMALL, ["--plot", "nope"], "no metric 'nope'"),
        (SMALL, ["--executor", "ray://x"], "no executor 'ray://x'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, text: str, extra: list[str], message: str
) -> None:
    path = write_sweep(tmp_path, text)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["sweep", str(path), "--out", str(out), "--jobs", "1", *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not out.exists()


def test_an_unanswered_scheduler_exits_2_within_the_timeout(tmp_path: Path) -> None:
    import socket

    path = write_sweep(tmp_path)
    out = tmp_path / "out"
    # The port stays bound, never listening, for the whole test: a connection is refused as
    # at a closed port, and no other process (a Dask cluster of another test run on this
    # machine) can take the port meanwhile and answer.
    with socket.socket() as unanswered:
        unanswered.bind(("127.0.0.1", 0))
        port = unanswered.getsockname()[1]
        result = CliRunner().invoke(
            cli,
            [
                "sweep",
                str(path),
                "--out",
                str(out),
                "--executor",
                f"dask://127.0.0.1:{port}",
                "--connect-timeout",
                "1",
            ],
        )
    assert result.exit_code == 2, result.output
    assert f"no Dask scheduler answered at tcp://127.0.0.1:{port} within 1 s" in result.stderr
    assert not out.exists()


def test_a_folder_that_holds_files_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = _cli(str(write_sweep(tmp_path)), "--out", str(out))
    assert result.exit_code == 2 and "is not empty" in result.stderr
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_resume_from_the_command_runs_nothing_twice(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    out = tmp_path / "out"
    assert _cli(str(path), "--out", str(out), "--jobs", "1").exit_code == 0
    again = _cli(str(path), "--out", str(out), "--jobs", "1", "--resume")
    assert again.exit_code == 0, again.output
    assert "16 runs (16 held already), 0 run now" in again.stdout


def test_user_text_is_neither_markup_nor_mathtext(tmp_path: Path) -> None:
    # A rich closing tag and matplotlib mathtext in the sweep's name: shown as written.
    path = write_sweep(tmp_path, SMALL.replace('name = "small"', 'name = "q[/] $\\\\frac$"'))
    out = tmp_path / "out"
    result = _cli(str(path), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert "sweep q[/] $\\frac$: 16 runs" in result.stdout
    assert (out / "plots" / "responses.success.png").exists()


def test_metrics_without_plot_and_a_missing_out_are_usage_errors(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    result = _cli(str(path), "--out", str(tmp_path / "out"), "dropped_total")
    assert result.exit_code == 2 and "metrics to plot follow --plot" in result.stderr
    result = _cli(str(path))
    assert result.exit_code == 2 and "--out DIR is required" in result.stderr
    result = _cli("--plot", str(tmp_path / "nothing"), "dropped_total")
    assert result.exit_code == 2 and "holds no sweep results" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_tables_are_readable_like_any_file_the_user_writes(tmp_path: Path) -> None:
    import os

    plan = _plan(tmp_path)
    _sweep(plan, tmp_path / "out", SerialEngine())
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.parquet", "results.csv", "manifest.json"):
        mode = (tmp_path / "out" / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~umask, (name, oct(mode))
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
