"""``ioasid sweep``: run a sweep file into a folder, or re-plot a folder's results.

Everything that can be wrong with the input is found before the folder is touched: the sweep
file, every point it expands to, the metrics to plot, the folder, the executor (a scheduler
that does not answer). Those exit with status 2; runs that fail are recorded and the sweep
goes on, then exits with status 1 naming them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from ioasid_core.cli_types import BoundedFloat, BoundedInt
from ioasid_core.printable import first_lines, printable, printable_lines

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ioasid_core.plugins import Hooks
    from ioasid_core.prq.vendor import VendorPrq
    from ioasid_core.sweep.engines import Engine
    from ioasid_core.sweep.plan import SweepPlan
    from ioasid_core.sweep.runner import SweepReport
    from ioasid_core.sweep.store import SweepStore

__all__ = ["sweep_command"]

EXIT_BAD_INPUT: Final = 2
EXIT_FAILED_RUNS: Final = 1
EXIT_INTERRUPTED: Final = 130
_SHOWN_FAILURES: Final = 10


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> click.exceptions.Exit:
    click.echo(f"ioasid: {first_lines(printable_lines(message))}", err=True)  # escaped, 20 lines
    return click.exceptions.Exit(code)


@click.command(name="sweep")
@click.argument("targets", nargs=-1, metavar="SWEEP.toml|DIR [METRIC...]")
@click.option("--out", "out", type=click.Path(), default=None, help="The output folder.")
@click.option(
    "--executor",
    default="local",
    show_default=True,
    metavar="local|dask-local|dask://HOST:PORT",
    help="Where runs go: a local process pool, a Dask cluster started here, or one running.",
)
@click.option(
    "--jobs",
    type=BoundedInt(1, 256),
    default=None,
    help="Worker processes (local, dask-local), 1..256; default: one per CPU.",
)
@click.option("--resume", is_flag=True, help="Continue a sweep in --out: skip runs it holds.")
@click.option(
    "--plot",
    "plot",
    is_flag=True,
    help="Plot the METRICs named after the target: after the sweep, or (without --out) the "
    "results DIR holds.",
)
@click.option("--batch", type=BoundedInt(1, 10_000), default=None, help="Runs per task, 1..10000.")
@click.option(
    "--connect-timeout",
    type=BoundedFloat(0.1, 600, metavar="SECONDS"),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a Dask scheduler, 0.1..600.",
)
def sweep_command(
    targets: Sequence[str],
    *,
    out: str | None,
    executor: str,
    jobs: int | None,
    resume: bool,
    plot: bool,
    batch: int | None,
    connect_timeout: float,
) -> None:
    """Run SWEEP.toml (a base scenario, axes, vendors, policies, seeds) into --out DIR:
    results.parquet, results.csv, manifest.json and plots. `ioasid sweep --plot DIR
    METRIC...` re-plots saved results. Exit status: 0 done, 1 some runs failed (named), 2
    bad input (nothing written)."""
    if not targets:
        raise _fail("expected a sweep file (with --out DIR), or --plot DIR METRIC...")
    target, metrics = targets[0], list(targets[1:])
    if metrics and not plot:
        raise _fail(f"unexpected argument(s) {' '.join(metrics)!r}: metrics to plot follow --plot")
    if out == "":  # an unset shell variable: not the current folder
        raise _fail("--out '': no folder given")
    if out is None:
        if not plot:
            raise _fail("--out DIR is required to run a sweep (or --plot DIR METRIC... to re-plot)")
        _replot(Path(target), metrics)
        return
    _sweep(
        target,
        Path(out),
        executor=executor,
        jobs=jobs or os.cpu_count() or 1,
        resume=resume,
        metrics=metrics,
        batch=batch,
        timeout=connect_timeout,
    )


def _need_pyarrow() -> None:
    from ioasid_core.sweep.store import PARQUET_INSTALL_HINT

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise _fail(f"ioasid sweep writes Parquet with pyarrow: {PARQUET_INSTALL_HINT}") from None


def _replot(folder: Path, metrics: list[str]) -> None:
    from ioasid_core.sweep.plot import plot_columns
    from ioasid_core.sweep.store import MANIFEST, RESULTS_PARQUET, result_names

    _need_pyarrow()
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        known = set(result_names(folder))
    except (OSError, ValueError) as exc:
        raise _fail(
            f"{str(folder)!r} holds no sweep results ({MANIFEST} and {RESULTS_PARQUET}): {exc}"
        ) from None
    metrics = metrics or list(manifest.get("plot", []))
    if not metrics:
        raise _fail("name the metrics to plot: --plot DIR METRIC...")
    axes = [axis["name"] for axis in manifest.get("axes", [])]
    unknown = [m for m in plot_columns(axes, metrics) if m not in known]
    if unknown:
        raise _fail(f"no metric {', '.join(map(repr, unknown))} in {str(folder)!r}'s results")
    _write_plots(folder, axes, metrics, str(manifest.get("sweep", folder.name)))


def _write_plots(folder: Path, axes: list[str], metrics: list[str], title: str) -> None:
    from ioasid_core.sweep.plot import plot_columns, write_plots
    from ioasid_core.sweep.store import read_results

    rows = read_results(folder, plot_columns(axes, metrics))
    try:
        paths = write_plots(rows, axes, metrics, folder, title)
    except OSError as exc:
        raise _fail(f"cannot write {exc.filename}: {exc.strerror}") from None
    for path in paths:
        click.echo(f"wrote {printable(str(path))}")


def _sweep(
    target: str,
    out: Path,
    *,
    executor: str,
    jobs: int,
    resume: bool,
    metrics: list[str],
    batch: int | None,
    timeout: float,
) -> None:
    from ioasid_core.compare import available_vendors
    from ioasid_core.plugins import new_plugin_manager
    from ioasid_core.scenario.load import ScenarioError
    from ioasid_core.sweep.engines import EngineError, make_engine
    from ioasid_core.sweep.store import StoreError, SweepStore

    _need_pyarrow()
    host = new_plugin_manager()
    left_out: list[str] = []  # a plugin's hook raised, a vendor does not conform: the rest run
    installed = available_vendors(host.hooks, left_out)
    for line in left_out:
        click.echo(f"ioasid: left out: {printable(line)}", err=True)
    try:
        plan = _load(target, installed)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    unknown = [m for m in metrics if m not in plan.metrics]
    if unknown:
        raise _fail(f"no metric {', '.join(map(repr, unknown))} (see docs/metrics.md)")
    store = SweepStore(out)
    try:
        store.check(plan, resume=resume)
        engine = make_engine(executor, min(jobs, len(plan.runs)), timeout)
    except (StoreError, EngineError) as exc:
        raise _fail(str(exc)) from None
    versions = {"ioasid-core": _version("ioasid-core")}
    versions.update({p.distribution: p.version for p in host.loaded})
    try:
        report = _run(plan, store, engine, batch, versions, hooks=host.hooks)
    except KeyboardInterrupt:
        message = f"interrupted: {out} keeps the runs that finished; --resume continues"
        raise _fail(message, EXIT_INTERRUPTED) from None
    except OSError as exc:  # the folder became unwritable, the disk filled up
        raise _fail(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    finally:
        engine.close()
    shown = metrics or list(plan.spec.plot)
    _plots(plan, out, shown)
    _summary(plan, report, engine.describe, out)
    if left_out:  # the sweep ran without them: not whole
        problems = "; ".join(map(printable, left_out))  # each one line: "; " between them
        message = f"{len(left_out)} plugin problem(s) left vendors out: {problems}"
        raise _fail(message, EXIT_FAILED_RUNS)


def _load(target: str, installed: Mapping[str, VendorPrq]) -> SweepPlan:
    """The sweep file and every point it expands to, with a progress bar while the points
    load (many points of a large base take a while)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Column

    from ioasid_core.sweep.plan import plan_sweep
    from ioasid_core.sweep.spec import load_sweep

    spec = load_sweep(target)
    columns = (  # the count never cut ("2…"): the bar gives way
        TextColumn("loading points"),
        BarColumn(bar_width=None if Console(stderr=True).width >= 60 else 4),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def checked(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return plan_sweep(spec, installed, checked=checked)


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def _run(
    plan: SweepPlan,
    store: SweepStore,
    engine: Engine,
    batch: int | None,
    versions: dict[str, str],
    *,
    hooks: Hooks,
) -> SweepReport:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Column

    from ioasid_core.sweep.runner import run_sweep

    console = Console(stderr=True)
    # The count is never cut ("2/…" stays on the screen after the sweep): the name folds,
    # the bar shrinks, and a narrow terminal leaves the times out.
    times = (TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    columns = (
        TextColumn("{task.description}", table_column=Column(overflow="fold")),
        BarColumn(bar_width=None if console.width >= 60 else 4),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        *(times if console.width >= 60 else ()),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(escape(f"sweep {plan.spec.name}"), total=len(plan.runs))

        def moved(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_sweep(
            plan, store, engine, batch=batch, versions=versions, progress=moved, hooks=hooks
        )


def _plots(plan: SweepPlan, out: Path, metrics: list[str]) -> None:
    if metrics:
        _write_plots(out, [a.name for a in plan.spec.axes], metrics, plan.spec.name)


def _seconds(value: float) -> str:
    """Tenths of a second, or two significant digits below 0.1 s (never "0.0" for 0.04)."""
    return f"{value:.1f}" if value >= 0.095 or value == 0 else f"{value:.2g}"


def _summary(plan: SweepPlan, report: SweepReport, where: str, out: Path) -> None:
    held = report.total - report.ran
    kept = f" ({held} held already)" if held else ""
    click.echo(
        f"sweep {plan.spec.name}: {report.total} runs{kept}, {report.ran} run now on {where} "
        f"in {_seconds(report.wall_s)} s; {len(report.failed)} failed; "
        f"results in {printable(str(out))}"
    )
    if not report.failed:
        return
    from ioasid_core.profile import profile_of

    for run, error in report.failed[:_SHOWN_FAILURES]:
        point = plan.points[run.point].label(plan.spec.axes)
        origin = profile_of(plan.vendors[run.vendor]).origin  # known here, not in a worker
        source = f" ({origin})" if origin is not None else ""
        click.echo(
            f"ioasid: run {run.index} failed: {point}, {run.vendor}/{run.policy.value}, "
            f"seed {run.seed}{source}: {printable(error)}",
            err=True,
        )
    if len(report.failed) > _SHOWN_FAILURES:
        more = len(report.failed) - _SHOWN_FAILURES
        click.echo(f"ioasid: ... and {more} more failed runs (manifest.json lists them)", err=True)
    raise click.exceptions.Exit(EXIT_FAILED_RUNS)
