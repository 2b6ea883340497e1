"""The ``ioasid`` command line.

``cli`` is the click group; each command is a function decorated with ``@cli.command()`` in this
module, or defined elsewhere and added with ``cli.add_command(...)`` here. Commands build their
own plugin manager with ``new_plugin_manager`` so each run sees the installed plugins afresh.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click
from rich.console import Console

from ioasid_core.cli_types import MAX_SEED, BoundedInt
from ioasid_core.figures import BenchmarkFigure
from ioasid_core.plugins import Hooks, PluginHost, VendorCollection, new_plugin_manager
from ioasid_core.printable import describe, first_lines, printable, printable_lines
from ioasid_core.stdout import PipeConsole, stdout_console, write_stdout

if TYPE_CHECKING:
    from ioasid_core.compare import PolicyChoice, VendorFailure
    from ioasid_core.prq.vendor import VendorPrq
    from ioasid_core.replay import RunResult
    from ioasid_core.scenario.schema import Scenario

__all__ = ["PipeConsole", "bench_table", "cli", "main"]


# Exit codes: 0 success, 2 bad input, 1 a failure inside a plugin, 141 a closed pipe, 130
# interrupted.
EXIT_BAD_INPUT = 2
EXIT_PLUGIN_FAILURE = 1
EXIT_CLOSED_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a tool killed by a closed pipe (``| head``)."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT: what a shell reports for a tool stopped by Ctrl-C (``sweep`` says so too)."""


class _Group(click.Group):
    """The command group, with one rule for every command's output: a reader that went
    away (``| head -1``) ends the command with status 141, not 1 (which means a plugin
    failed); standard output that cannot be written (``> /dev/full``) is a clear message
    and status 2, not a traceback. The group's own ``--help`` and ``--version`` too."""

    def invoke(self, ctx: click.Context) -> object:
        with _output_errors(), _space_logs_quiet():
            return super().invoke(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _output_errors():
            return super().parse_args(ctx, args)


@contextmanager
def _output_errors() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:  # click's own "Aborted!" is status 1: a plugin failed, here
        raise click.exceptions.Exit(_fail("interrupted", EXIT_INTERRUPTED)) from None
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _drop_stdout()
            raise click.exceptions.Exit(EXIT_CLOSED_PIPE) from None
        if exc.filename is not None or exc.errno not in _OUTPUT_ERRNOS:
            raise
        _drop_stdout()
        message = f"cannot write the standard output: {exc.strerror or exc}"
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT)) from None


@contextmanager
def _logger_held(name: str, level: int) -> Iterator[None]:
    """Hold back ``name``'s log records below ``level`` for the block (a forked worker
    inherits it), then give the logger its own level again."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def _space_logs_quiet() -> AbstractContextManager[None]:
    """Hold back the space's log of a failed callback while a command runs. The space logs
    it and raises it in a group (the SPEC's rule, for library users); a command names that
    group itself, escaped, with the plugin and hook that raised, so the log's traceback, raw
    on standard error before it, said it twice."""
    return _logger_held("ioasid_core.space", logging.CRITICAL + 1)


_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG, errno.EBADF})
"""What writing the standard output may meet (and nothing else a command does unnamed)."""


def _drop_stdout() -> None:
    """Point the standard output at /dev/null: what is still buffered for it is lost anyway,
    and flushing it again at exit would fail again (a second message, another status)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a test's capture, or closed: no flush
        pass


def _console() -> Console:
    return stdout_console()


@click.group(name="ioasid", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ioasid-core", prog_name="ioasid")
def cli() -> None:
    """A model of the Linux kernel's I/O ASID (PASID) allocator and its IOMMU drivers."""


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--block",
    "block",
    multiple=True,
    metavar="NAME",
    help="Don't import this plugin (repeatable; adds to $IOASID_BLOCK_PLUGINS).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit with status 1 if a plugin failed to load or a vendor does not conform.",
)
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool, block: Sequence[str], strict: bool) -> None:
    """List the installed vendor plugins with their vendors, and those that failed."""
    with _loader_quiet():  # the listing reports the failures itself
        host = new_plugin_manager(blocked=block)
    vendors = host.hooks.collect_vendors(reserved=frozenset({"generic"}))
    if as_json:
        write_stdout(json.dumps(plugins_report(host, vendors), indent=2) + "\n")
    else:
        # A terminal narrower than the table would wrap its lines anywhere, through a
        # version: one plugin a block there. A pipe gets the table (a script reads it).
        write_stdout(plugins_table(host, vendors, width=_terminal_width()) + "\n")
    if strict and (host.failures or vendors.problems):
        ctx.exit(1)


def plugins_report(host: PluginHost, vendors: VendorCollection) -> dict[str, object]:
    """The ``--json`` shape: ``plugins`` (each with the page-request ``vendors`` it offers),
    ``failures``, ``vendor_problems`` (lists of objects), ``blocked`` (names)."""
    return {
        "plugins": [
            {**attrs.asdict(plugin), "vendors": list(vendors.offered.get(plugin.name, ()))}
            for plugin in host.loaded
        ],
        "failures": [attrs.asdict(failure) for failure in host.failures],
        "vendor_problems": [
            {**attrs.asdict(problem.origin), "error": problem.message}
            for problem in vendors.problems
        ],
        "blocked": sorted(host.blocked),
    }


def plugins_table(host: PluginHost, vendors: VendorCollection, *, width: int | None = None) -> str:
    """The plain-text listing: a table of plugins (one plugin a block if the table is wider
    than ``width``), then failures and blocked names if any. What plugins say of themselves
    (names, versions, descriptions, errors) is escaped: it reaches the terminal as written
    by a stranger."""
    lines: list[str] = []
    if host.loaded:
        rows: list[tuple[str, ...]] = [
            ("NAME", "DISTRIBUTION", "VERSION", "VENDORS", "DESCRIPTION")
        ]
        rows += [
            tuple(
                printable(cell)
                for cell in (
                    p.name,
                    p.distribution,
                    p.version,
                    ",".join(vendors.offered.get(p.name, ())) or "-",
                    p.vendor.description if p.vendor else "-",
                )
            )
            for p in host.loaded
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        table = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        if width is None or max(map(len, table)) <= width:
            lines += table
        else:
            labels = [label.lower() for label in rows[0][1:]]
            for row in rows[1:]:
                lines.append(row[0])
                for label, value in zip(labels, row[1:], strict=True):
                    # One vendor a line: "smmuv3,smmuv3-pri,smmuv3-pri-iopf" is 33 wide.
                    parts = value.split(",") if label == "vendors" else [value]
                    lines += [f"  {label if n == 0 else '':<12} {v}" for n, v in enumerate(parts)]
    else:
        lines.append("no ioasid plugins loaded")
    if host.failures:
        lines += ["", "failed to load:"]
        lines += [
            "  " + printable(f"{f.name} ({f.distribution}, {f.entry_point}): {f.error}")
            for f in host.failures
        ]
    if vendors.problems:
        lines += ["", "vendors left out (they do not conform):"]
        lines += [f"  {printable(problem.message)}" for problem in vendors.problems]
    if host.blocked:
        lines += ["", printable(f"blocked: {', '.join(sorted(host.blocked))}")]
    return "\n".join(lines)


def _loader_quiet() -> AbstractContextManager[None]:
    """Hold back the loader's "skipping plugin" warnings (not other modules' logs)."""
    return _logger_held("ioasid_core.plugins", logging.ERROR)


@cli.command(name="demo")
def demo_command() -> None:
    """A short tour of the core: what global and set-scoped lookups hand back."""
    from ioasid_core.demo import run_demo

    steps = run_demo()
    width = max(len(step.action) for step in steps)
    lines = [f"{step.action.ljust(width)}  {step.outcome}" for step in steps]
    terminal = _terminal_width()
    if terminal is not None and max(map(len, lines)) > terminal:
        # A narrow terminal: the outcome under its action, wrapped at words.
        lines = [
            f"{_wrapped(step.action, terminal)}\n{_wrapped(step.outcome, terminal, indent='  ')}"
            for step in steps
        ]
    write_stdout("\n".join(lines) + "\n")


def _terminal_width() -> int | None:
    """The terminal's columns, or None if the output is not a terminal (a pipe, a file:
    a script reads the lines as they are)."""
    out = sys.stdout
    return shutil.get_terminal_size().columns if out is not None and out.isatty() else None


def _wrapped(text: str, width: int, indent: str = "") -> str:
    """``text`` in lines of at most ``width`` columns, broken only between words: a
    terminal wraps a longer line anywhere, in the middle of a number."""
    return textwrap.fill(
        text,
        max(width, 1),
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


@cli.command(name="bench")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quick", is_flag=True, help="Short loops: a smoke run, not numbers to trust.")
@click.option("--check", is_flag=True, help="Exit with status 1 if a figure is over its limit.")
@click.pass_context
def bench_command(ctx: click.Context, as_json: bool, quick: bool, check: bool) -> None:
    """Speed and memory figures, each a ratio against a baseline run in the same process."""
    from ioasid_core.bench import run_bench
    from ioasid_core.bench_scale import interpreter_build
    from ioasid_core.compare import available_vendors
    from ioasid_core.logs.core_formats import read_formats

    with _loader_quiet():
        host = new_plugin_manager()
    log_formats, _ = read_formats(host.hooks)  # what `ioasid logs` reads; a failing one: out
    vendors = list(available_vendors(host.hooks).values())
    failed: list[str] = []  # a plugin's figure that raised or is not a number: the rest run
    try:
        extra = [_guarded(figure, failed) for figure in host.hooks.benchmarks()]
    except Exception as exc:  # a plugin's hook raised, or offered something else
        failed.append(f"ioasid_benchmarks failed: {describe(exc)}")
        extra = []
    figures, limits = run_bench(quick=quick, extra=extra, log_formats=log_formats, vendors=vendors)
    # Not within its limit: over it, or not a number at all (a plugin's figure; nan > x is
    # false, so "over" alone would call a nan "ok").
    over = [name for name, value in figures.items() if not value <= limits[name]]
    if as_json:
        # The build too: figures differ by a quarter between builds of one Python version.
        # A figure that is not a finite number is null (JSON has no nan).
        shown = {k: v if math.isfinite(v) else None for k, v in figures.items()}
        write_stdout(json.dumps({**shown, "interpreter": interpreter_build()}) + "\n")
    else:
        write_stdout(bench_table(figures, limits, over, width=_terminal_width()) + "\n")
    for line in failed:
        _fail(line, EXIT_PLUGIN_FAILURE)
    if failed or (check and over):
        ctx.exit(1)


def _guarded(figure: BenchmarkFigure, failed: list[str]) -> BenchmarkFigure:
    """``figure`` with a run that cannot stop the bench: what it raises, or returns that
    is not a number, is said in ``failed`` and the figure is ``nan`` (shown OVER)."""
    name = printable(repr(figure.name))
    if not isinstance(figure.limit, int | float) or isinstance(figure.limit, bool):
        failed.append(f"benchmark figure {name}: its limit {figure.limit!r} is not a number")
        return attrs.evolve(figure, limit=math.nan, run=lambda quick: math.nan)

    def run(quick: bool) -> float:
        try:
            value = figure.run(quick)
        except Exception as exc:
            failed.append(f"benchmark figure {name} failed: {describe(exc)}")
            return math.nan
        if not isinstance(value, int | float) or isinstance(value, bool):
            failed.append(f"benchmark figure {name} returned {value!r}, not a number")
            return math.nan
        return float(value)

    return attrs.evolve(figure, run=run)


def bench_table(
    figures: dict[str, float],
    limits: dict[str, float],
    over: list[str],
    *,
    width: int | None = None,
) -> str:
    """One line per figure: its value, its limit and whether it is within it (two lines a
    figure if the lines are wider than ``width``). A value is never shown as 0 when it is
    not (``0.0004``), nor a limit rounded (``1.25``, not ``1.2``): the line must say what
    the check compared."""
    widest = max(28, *(len(name) for name in figures))
    lines = []
    for name, value in figures.items():
        mark = "OVER" if name in over else "ok"
        shown = (printable(name), _figure(value), _limit(limits[name]))
        line = f"{shown[0]:<{widest}} {shown[1]:>10}   limit {shown[2]:>7}   {mark}"
        if width is not None and len(line) > width:  # the name, then its numbers
            line = f"{shown[0]}\n  {shown[1]}  limit {shown[2]}  {mark}"
        lines.append(line)
    return "\n".join(lines)


def _limit(limit: float) -> str:
    """One decimal (``2.0``, ``540.0``), or as many as the limit has (``1.25``)."""
    text = f"{limit:.1f}"
    return text if float(text) == limit else f"{limit:.6g}"


def _figure(value: float) -> str:
    """Three decimals, or three significant digits for a figure below 0.001 (not 0.000)."""
    if value == 0 or not math.isfinite(value) or abs(value) >= 0.001:
        return f"{value:.3f}"
    return f"{value:.3g}"


@attrs.frozen
class _Picked:
    """The vendors a command runs, the plugins taking part, and the plugin problems that
    left vendors out of it (of a run of all vendors, or vendors it named)."""

    installed: dict[str, VendorPrq]
    chosen: list[VendorPrq]
    left_out: list[str]
    hooks: Hooks


def _scenario_and_vendors(
    path: str, vendor_names: Sequence[str] | None
) -> tuple[Scenario, _Picked]:
    """Load the scenario and pick the vendors; bad input (the file, a vendor section no
    installed vendor reads or the chosen ones cannot) exits with status 2."""
    from ioasid_core.scenario import ScenarioError
    from ioasid_core.scenario.bundled import load_named_scenario
    from ioasid_core.scenario.vendors import check_vendors

    try:
        scenario = load_named_scenario(path)
    except ScenarioError as exc:
        raise click.exceptions.Exit(_fail(str(exc), EXIT_BAD_INPUT)) from exc
    picked = _vendors_named(vendor_names)
    installed, chosen = picked.installed, picked.chosen
    try:
        # Every installed vendor's section, chosen or not: a slip in one is still a slip.
        # Marked checked for the chosen ones: compare() and the runs do not check again.
        every = list(installed.values())
        scenario = check_vendors(scenario, chosen, sections_of=every, installed=every)
    except ScenarioError as exc:
        raise click.exceptions.Exit(_fail(str(exc), EXIT_BAD_INPUT)) from exc
    except Exception as exc:  # a plugin's option check raised
        raise click.exceptions.Exit(_fail(str(exc), EXIT_PLUGIN_FAILURE)) from exc
    return scenario, picked


def _vendors_named(vendor_names: Sequence[str] | None) -> _Picked:
    """Every available vendor, the ones named (all when None), and what was left out: each
    plugin that failed to load or offered a vendor that does not conform, said on standard
    error as it is found (the others run). A vendor named that a plugin offered but that
    does not conform is left out too (the others named run; exit 1 if none is left). Exits 2
    on unknown names, saying which plugins failed and pointing to ``ioasid plugins``."""
    from ioasid_core.profile import NonConformingVendor
    from ioasid_core.prq.generic import GenericPrq

    with _loader_quiet():
        host = new_plugin_manager()
    collection = host.hooks.collect_vendors(reserved=frozenset({"generic"}))
    left_out = [  # each one line, escaped: a plugin's exception may hold a newline or ESC
        printable(
            f"plugin {f.name!r} ({f.distribution}, entry point {f.entry_point}) failed to "
            f"load: {f.error}"
        )
        for f in host.failures
    ] + [printable(problem.message) for problem in collection.problems]
    for line in left_out:
        click.echo(f"ioasid: left out: {line}", err=True)
    vendors: dict[str, VendorPrq] = {"generic": GenericPrq()}
    vendors.update((name, p.vendor) for name, p in collection.profiles.items())
    if not vendor_names:
        return _Picked(vendors, list(vendors.values()), left_out, host.hooks)
    vendor_names = list(dict.fromkeys(vendor_names))  # each once, in the order given
    refused = {  # a vendor named by a plugin but refused: a plugin failure, not a typo
        p.error.vendor: printable(p.message)
        for p in collection.problems
        if isinstance(p.error, NonConformingVendor)
    }
    unknown = [v for v in vendor_names if v not in vendors and v not in refused]
    if unknown:
        message = f"no vendor named {', '.join(map(repr, unknown))} (known: {', '.join(vendors)})"
        if left_out:
            message += (
                f"; {len(left_out)} plugin problem(s) above may be why: "
                "see `ioasid plugins` for each plugin and its vendors"
            )
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    named_out = [refused[v] for v in vendor_names if v not in vendors]
    chosen = [vendors[v] for v in vendor_names if v in vendors]
    if not chosen:  # every vendor named was refused (said above): nothing to run
        names = ", ".join(map(repr, vendor_names))
        message = (
            f"nothing to run: {names} left out (the plugin problem is above; "
            "`ioasid plugins` lists each plugin and its vendors)"
        )
        raise click.exceptions.Exit(_fail(message, EXIT_PLUGIN_FAILURE))
    return _Picked(vendors, chosen, named_out, host.hooks)


def _fail(message: str, code: int) -> int:
    """Say ``message`` on standard error (user text in it escaped: a file name, a TOML key
    or a plugin's exception can hold an escape sequence) and give back ``code``."""
    click.echo(f"ioasid: {first_lines(printable_lines(message))}", err=True)
    return code


def _names(flag: str, given: str | None) -> list[str] | None:
    """A comma-separated option's names; None if not given. Given but naming nothing
    (``--vendors ""``) is bad input, as ``--policies ""`` is: an empty shell variable
    should not quietly mean "all"."""
    if given is None:
        return None
    names = [name.strip() for name in given.split(",") if name.strip()]
    if not names:
        message = f"{flag} {given!r}: no name given (leave the option out for all)"
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    return names


def _policies(names: str | None) -> list[PolicyChoice] | None:
    from ioasid_core.compare import parse_policies

    if names is None:
        return None
    try:
        return parse_policies([n for n in names.split(",") if n.strip()])
    except ValueError as exc:
        raise click.exceptions.Exit(_fail(str(exc), EXIT_BAD_INPUT)) from exc


def _compare(
    scenario: Scenario,
    picked: _Picked,
    policies: Sequence[PolicyChoice] | None,
    seed: int | None,
    *,
    progress: bool,
    jobs: int = 1,
    failures: list[VendorFailure] | None = None,
) -> list[RunResult]:
    """The runs; a vendor that raises in one exits 1 naming it, or, given ``failures``, is
    left out and said there (the others' results are returned)."""
    from concurrent.futures import Executor

    from rich.markup import escape
    from rich.progress import Progress

    from ioasid_core.compare import VendorFailure, compare, scenario_pool, vendor_policies
    from ioasid_core.errors import IoasidError
    from ioasid_core.replay import scenario_work
    from ioasid_core.scenario import ScenarioError

    vendors, hooks = picked.chosen, picked.hooks  # the plugins take part in every run
    total = sum(len(vendor_policies(v, policies)) for v in vendors)
    # Each worker receives the scenario once, not with every run.
    pool: Executor | None = scenario_pool(scenario, min(jobs, total)) if jobs > 1 else None
    try:
        if not progress:
            return compare(
                scenario,
                vendors,
                policies,
                seed=seed,
                executor=pool,
                hooks=hooks,
                failures=failures,
            )
        # On stderr: progress is not output (a pipe of the table gets the table alone).
        console = PipeConsole(stderr=True)
        # Counted in events (steps and page requests), so a long run moves the bar too; runs
        # in worker processes move it as each one ends.
        work = scenario_work(scenario) or 1
        with Progress(transient=True, console=console, disable=not console.is_terminal) as bar:
            # The description is rich markup: the scenario's name is escaped ("base[/]").
            task = bar.add_task(f"replaying {escape(scenario.name)}", total=total * work)
            ended = 0

            def run_ended(_: RunResult) -> None:
                nonlocal ended
                ended += 1
                bar.update(task, completed=ended * work)

            return compare(
                scenario,
                vendors,
                policies,
                seed=seed,
                executor=pool,
                progress=run_ended,
                events=None if pool is not None else lambda n: bar.advance(task, n),
                hooks=hooks,
                failures=failures,
            )
    except VendorFailure as exc:
        raise click.exceptions.Exit(_fail(str(exc), EXIT_PLUGIN_FAILURE)) from exc
    except IoasidError as exc:
        # A ScenarioError (a vendor's own section) names the file already.
        where = "" if isinstance(exc, ScenarioError) else f"{scenario.source}: "
        raise click.exceptions.Exit(_fail(where + str(exc), EXIT_BAD_INPUT)) from exc
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


@cli.command(name="run")
@click.argument("scenario_path", metavar="SCENARIO")
@click.option("--vendor", "vendor_name", default="generic", show_default=True)
@click.option(
    "--policy", "policy_name", default=None, help="Default (or 'native'): the vendor's own."
)
@click.option(
    "--seed",
    type=BoundedInt(0, MAX_SEED),
    default=None,
    help=f"0..{MAX_SEED} (a TOML integer). Default: the scenario's seed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def run_command(
    scenario_path: str,
    *,
    vendor_name: str,
    policy_name: str | None,
    seed: int | None,
    as_json: bool,
) -> None:
    """Replay SCENARIO once, under one vendor and one lookup policy.

    SCENARIO is a scenario file, or the name of a bundled example (null-set-search).
    """
    from ioasid_core.report import print_report, to_json

    policies = _policies(policy_name)
    if policies is not None and len(policies) > 1:
        message = f"run takes one policy, not {policy_name!r}: use compare for several"
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    scenario, picked = _scenario_and_vendors(scenario_path, [vendor_name])
    policies = policies or [picked.chosen[0].default_policy]
    results = _compare(scenario, picked, policies, seed, progress=False)
    if as_json:
        write_stdout(to_json(scenario.name, results) + "\n")
    else:
        print_report(_console(), scenario.name, results)


@cli.command(name="compare")
@click.argument("scenario_path", metavar="SCENARIO")
@click.option("--vendors", "vendor_list", default=None, help="Comma-separated; default: all.")
@click.option(
    "--policies",
    "policy_list",
    default=None,
    help="Comma-separated; 'native': each vendor's own; default: all (the own one first).",
)
@click.option(
    "--seed",
    type=BoundedInt(0, MAX_SEED),
    default=None,
    help=f"0..{MAX_SEED} (a TOML integer). Default: the scenario's seed.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every run's metrics as JSON ('-': to standard output, instead of the table).",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write one CSV row per run ('-': to standard output, instead of the table).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw the comparison (format from the suffix: .png, .svg, .pdf).",
)
@click.option(
    "--jobs",
    type=BoundedInt(1, 64),
    default=1,
    show_default=True,
    help="Runs in parallel processes, 1..64 (same results, in the same order).",
)
def compare_command(
    scenario_path: str,
    *,
    vendor_list: str | None,
    policy_list: str | None,
    seed: int | None,
    json_path: str | None,
    csv_path: str | None,
    plot_path: str | None,
    jobs: int,
) -> None:
    """Replay SCENARIO under each vendor and lookup policy, and show them side by side.

    SCENARIO is a scenario file, or the name of a bundled example (null-set-search).

    Steps that could not run (a failed bind, a refused allocator swap) are listed under the
    tables: they are what the modelled kernel answered, not failures of the command, so the
    exit status stays 0. Exit status: 0 success, 2 bad input (the message names the file
    and key, or the output that cannot be written), 1 a plugin failed, 141 the reader of
    the output went away (a closed pipe, as for a process killed by SIGPIPE), 130
    interrupted (Ctrl-C).
    """
    from ioasid_core.report import plot_format_problem, print_report, to_csv, to_json, write_plot

    names = _names("--vendors", vendor_list)
    policies = _policies(policy_list)
    for flag, given in (("--json", json_path), ("--csv", csv_path), ("--plot", plot_path)):
        if given == "":  # an unset shell variable: else nothing written, and status 0
            message = f"{flag} '': no path given ('-' is the standard output)"
            raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    outputs = [
        (f, p) for f, p in (("--json", json_path), ("--csv", csv_path), ("--plot", plot_path)) if p
    ]
    to_stdout = [flag for flag, path in outputs if path == STDOUT_PATH]
    if "--plot" in to_stdout:
        message = "--plot '-': a plot goes to a file (its suffix names the format)"
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    if len(to_stdout) > 1:
        message = "--json '-' and --csv '-': only one output can go to the standard output"
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    files = [(flag, path) for flag, path in outputs if path != STDOUT_PATH]
    for flag, path in files:
        _check_writable(flag, Path(path))
    _check_distinct([("SCENARIO", scenario_path), *files])
    if plot_path:
        problem = plot_format_problem(Path(plot_path))
        if problem:
            message = f"--plot {plot_path!r}: {problem}"
            raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    scenario, picked = _scenario_and_vendors(scenario_path, names)
    failures: list[VendorFailure] = []  # a vendor that raises: the others run on
    results = _compare(
        scenario, picked, policies, seed, progress=True, jobs=jobs, failures=failures
    )
    left_out = picked.left_out
    # The files first: a reader that stops reading the table early loses none of them.
    if json_path:
        _write(json_path, to_json(scenario.name, results) + "\n")
    if csv_path:
        _write(csv_path, to_csv(results))
    if plot_path:
        try:
            write_plot(scenario.name, results, Path(plot_path))
        except OSError as exc:
            raise click.exceptions.Exit(_cannot_write(plot_path, exc)) from exc
    if not to_stdout:  # '-' puts the JSON or CSV where the table would go
        print_report(_console(), scenario.name, results)
    for failure in failures:  # shown and written without it; the run is still not whole
        _fail(f"left out: {failure}", EXIT_PLUGIN_FAILURE)
    if left_out:
        message = f"{len(left_out)} plugin problem(s) left vendors out: " + "; ".join(left_out)
        _fail(message, EXIT_PLUGIN_FAILURE)
    if failures or left_out:
        raise click.exceptions.Exit(EXIT_PLUGIN_FAILURE)


STDOUT_PATH = "-"
"""An output path meaning the standard output (``--json -``), as most tools read it."""


def _write(path: str, text: str) -> None:
    """Write an output file; a failure (disk full, ``/dev/full``) names it and exits 2."""
    if path == STDOUT_PATH:
        write_stdout(text)  # a closed pipe or a full disk: the group's own rules
        return
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except BrokenPipeError:  # --json /dev/stdout into a pipe whose reader left: 141
        raise
    except OSError as exc:
        raise click.exceptions.Exit(_cannot_write(path, exc)) from exc


def _cannot_write(path: str, exc: OSError) -> int:
    return _fail(f"cannot write {path!r}: {exc.strerror or exc}", EXIT_BAD_INPUT)


def _check_writable(flag: str, path: Path) -> None:
    """Before any run: an output the command could not write is bad input (exit 2), found
    now rather than after minutes of replay."""
    folder = path.parent
    if path.is_dir():
        why = "is a directory"
    elif not folder.is_dir():
        why = f"its folder {str(folder)!r} does not exist"
    elif path.exists():  # written in place: /dev/stdout needs no writable /dev
        if os.access(path, os.W_OK):
            return
        why = "is not writable"
    elif not os.access(folder, os.W_OK):
        why = "is not writable"
    else:
        return
    raise click.exceptions.Exit(_fail(f"{flag} {str(path)!r}: {why}", EXIT_BAD_INPUT))


def _same_file(a: str, b: str) -> bool:
    """Whether writing ``a`` would overwrite the file ``b`` (``/dev/null`` twice is fine)."""
    try:
        return os.path.samefile(a, b) and os.path.isfile(a)
    except OSError:  # one does not exist yet: the same file only by the same path
        return os.path.abspath(a) == os.path.abspath(b)


def _check_distinct(files: list[tuple[str, str]]) -> None:
    """Before any run: an output that is the scenario itself, or another output, would
    overwrite it (``--json s.toml`` for ``s.toml``): bad input, exit 2, nothing written."""
    for n, (flag, path) in enumerate(files):
        for earlier, other in files[:n]:
            if _same_file(path, other):
                message = f"{flag} {path!r}: is the same file as {earlier} {other!r}"
                raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))


@cli.command(name="decode")
@click.argument("vendor_name", metavar="VENDOR")
@click.argument("dump", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (every entry) instead of a table."
)
@click.option(
    "--format",
    "format_name",
    default="queue",
    show_default=True,
    metavar="NAME",
    help="The entries' format: the vendor's queue format, or another it reads "
    "(virtio-iommu: 'merged', the spec's 24-byte fault records).",
)
def decode_command(vendor_name: str, dump: str, *, as_json: bool, format_name: str) -> None:
    """Decode FILE, a raw queue dump, with VENDOR's codec.

    Each entry is decoded on its own: a page request, an unhandled event (well formed but
    not a request: the driver logs it and answers nothing, listed with its kind) or a
    malformed entry (named with its offset). The table shows the first 200 of each kind
    and counts them all; --json lists every one. FILE is read up to 16 MiB (the deepest
    modelled queue). The exit status is 2 if any entry is malformed, the format is unknown
    or FILE is too large, 1 if the vendor's decoder itself fails (a plugin bug), else 0.
    """
    from ioasid_core.dump import (
        MAX_DUMP_BYTES,
        DecoderFailure,
        decode_dump,
        dump_formats,
        iter_dump,
    )
    from ioasid_core.dump_table import error_lines, print_dump, summarize
    from ioasid_core.scenario.load import InputTooLarge, read_bounded

    vendors = _vendors_named([vendor_name]).chosen
    vendor = vendors[0]
    formats = dump_formats(vendor)
    if format_name not in formats:
        known = ", ".join(formats)
        message = f"{vendor.name} has no dump format {format_name!r} (known: {known})"
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT))
    try:
        with open(dump, "rb") as file:
            data = read_bounded(file, MAX_DUMP_BYTES, "a dump")
    except InputTooLarge as exc:
        raise click.exceptions.Exit(_fail(f"{dump}: {exc}", EXIT_BAD_INPUT)) from exc
    except OSError as exc:
        message = f"{dump}: cannot read it: {exc.strerror or exc}"
        raise click.exceptions.Exit(_fail(message, EXIT_BAD_INPUT)) from exc
    fmt = formats[format_name]
    try:
        if as_json:
            report = decode_dump(fmt, vendor.name, data, source=dump)
            write_stdout(json.dumps(report.as_dict()) + "\n")
            bad = bool(report.errors)
        else:
            summary = summarize(iter_dump(fmt, vendor.name, data, source=dump))
            print_dump(_console(), vendor.name, summary)
            for line in error_lines(summary):
                click.echo(f"ioasid: {printable_lines(line)}", err=True)
            bad = bool(summary.malformed)
    except DecoderFailure as exc:
        raise click.exceptions.Exit(_fail(str(exc), EXIT_PLUGIN_FAILURE)) from exc
    if bad:
        raise click.exceptions.Exit(EXIT_BAD_INPUT)


def _add_sweep() -> None:
    from ioasid_core.sweep.cli import sweep_command

    cli.add_command(sweep_command)


_add_sweep()


def _add_logs_command() -> None:
    from ioasid_core.logs.command import logs_command

    cli.add_command(logs_command)


_add_logs_command()


def _add_new_plugin() -> None:
    from ioasid_core.skeleton import new_plugin_command

    cli.add_command(new_plugin_command)


_add_new_plugin()


def main() -> None:
    """The console-script entry point (``ioasid = "ioasid_core.cli:main"``)."""
    cli()
