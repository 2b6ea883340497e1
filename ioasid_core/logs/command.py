"""The ``ioasid logs`` command: read kernel logs, show the IOMMU records in them.

Exit status: 0 when it ran (even if nothing was recognised), 2 for input it cannot read
(named) or a bad option, 1 when a vendor's log parser failed (the others still read).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import click
from rich.console import Console
from rich.text import Text

from ioasid_core.logs.core_formats import read_formats
from ioasid_core.logs.format import LogFormat
from ioasid_core.logs.reader import LogReader
from ioasid_core.logs.render import JsonWriter, TableWriter
from ioasid_core.logs.scenario_out import ScenarioWriter
from ioasid_core.logs.source import STDIN, InputError, iter_lines, open_input
from ioasid_core.printable import first_lines, printable, printable_lines
from ioasid_core.stdout import stdout_console

__all__ = ["logs_command"]

EXIT_BAD_INPUT = 2
EXIT_PLUGIN_FAILURE = 1


def _fail(message: str, code: int) -> click.exceptions.Exit:
    # Paths and plugins' errors escaped; at most 20 lines.
    click.echo(f"ioasid: {first_lines(printable_lines(message))}", err=True)
    return click.exceptions.Exit(code)


def _formats(vendors: Sequence[str]) -> tuple[list[LogFormat], list[str]]:
    from ioasid_core.plugins import new_plugin_manager

    host = new_plugin_manager()  # a plugin that fails to load is warned about, and left out
    formats, problems = read_formats(host.hooks)  # the core's own first: read in every run
    if vendors:
        known = sorted({f.vendor for f in formats})
        unknown = [v for v in vendors if v not in known]
        if unknown:
            raise _fail(
                f"no log format for vendor {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(known)})",
                EXIT_BAD_INPUT,
            )
        formats = [f for f in formats if f.vendor in vendors]
    return formats, problems


def _check_writable(path: Path) -> None:
    folder = path.parent
    if path.is_dir():
        why = "is a directory"
    elif not folder.is_dir():
        why = f"its folder {str(folder)!r} does not exist"
    elif not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        why = "is not writable"
    else:
        return
    raise _fail(f"--scenario {str(path)!r}: {why}", EXIT_BAD_INPUT)


def _same_file(a: str, b: str) -> bool:
    """Writing the scenario over a log being read would lose the log."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist: the same file only by the same path
        return os.path.abspath(a) == os.path.abspath(b)


@click.command(name="logs")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--vendor",
    "vendor_names",
    multiple=True,
    metavar="NAME",
    help="Read only this vendor's records (repeatable, or comma-separated).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="OUT.toml",
    help="Write a scenario replaying the page requests and faults read (ioasid compare).",
)
def logs_command(
    files: Sequence[str], *, vendor_names: Sequence[str], as_json: bool, scenario_path: str | None
) -> None:
    """Read IOMMU fault and page-request records out of kernel logs.

    FILE is dmesg (any timestamp style), journalctl, syslog, ftrace output or a mail-quoted or
    forum-wrapped paste; '-' reads standard input. Several files are read as one, lines
    numbered through them as `cat` would. Every installed vendor's printer formats are read.
    """
    vendors = [v.strip() for name in vendor_names for v in name.split(",") if v.strip()]
    if vendor_names and not vendors:  # `--vendor "$V"` with V empty: not "every vendor"
        raise _fail(
            f"--vendor {vendor_names[0]!r}: no name given (leave it out for all)", EXIT_BAD_INPUT
        )
    formats, problems = _formats(vendors)
    if scenario_path is not None:
        _check_writable(Path(scenario_path))
        for path in files:
            if path != STDIN and _same_file(path, scenario_path):
                message = f"--scenario {scenario_path!r}: is the same file as FILE {path!r}"
                raise _fail(message, EXIT_BAD_INPUT)
    if list(files).count(STDIN) > 1:
        raise _fail("standard input ('-') can be read only once", EXIT_BAD_INPUT)
    try:
        reader = LogReader(formats)
    except ValueError as exc:
        problems.append(str(exc))
        formats = []
        reader = LogReader([])
    streams: list[tuple[str, BinaryIO]] = []
    try:
        for path in files:
            if path != STDIN and Path(path).is_dir():
                raise _fail(f"cannot read {path!r}: is a directory", EXIT_BAD_INPUT)
            try:
                streams.append((path, open_input(path)))
            except InputError as exc:
                raise _fail(str(exc), EXIT_BAD_INPUT) from exc
        _run(reader, streams, as_json, scenario_path, [str(p) for p in files])
    finally:
        for path, stream in streams:
            if path != STDIN:
                stream.close()
    failures = [
        f"{f.vendor} parser failed at line {f.line}: {f.error}" for f in reader.stats.failures
    ]
    for problem in problems + failures:
        click.echo(f"ioasid: {printable_lines(problem)}", err=True)
    if reader.stats.failures or problems:
        raise click.exceptions.Exit(EXIT_PLUGIN_FAILURE)


def _run(
    reader: LogReader,
    streams: list[tuple[str, BinaryIO]],
    as_json: bool,
    scenario_path: str | None,
    sources: list[str],
) -> None:
    out = sys.stdout
    if out is None:  # closed before the command started (`>&-`): said, status 2
        raise _fail("cannot write the standard output: it is closed", EXIT_BAD_INPUT)
    json_writer = JsonWriter(out) if as_json else None
    table = None if as_json else TableWriter()
    scenario = None
    if scenario_path is not None:
        scenario = ScenarioWriter(Path(scenario_path).stem or "logs", sources)
    writers: list[JsonWriter | TableWriter | ScenarioWriter] = [
        w for w in (json_writer, table, scenario) if w is not None
    ]
    first = 1
    try:
        for path, stream in streams:
            lines = iter_lines(stream, "standard input" if path == STDIN else path)
            for item in reader.read(lines, first_line=first):
                for writer in writers:
                    writer.add(item)
            first = reader.stats.lines + 1
    except InputError as exc:
        if json_writer is not None:
            json_writer.close()
            out.write("\n")
        raise _fail(str(exc), EXIT_BAD_INPUT) from exc
    if json_writer is not None:
        json_writer.finish(reader.stats.suppressed)
        out.flush()  # a reader gone away is found here (status 141), not at exit
    if table is not None:
        table.print(stdout_console(), reader.stats)  # never loses a closed pipe
    if scenario is not None and scenario_path is not None:
        try:
            scenario.write(Path(scenario_path))
        except OSError as exc:
            raise _fail(f"cannot write {scenario_path!r}: {exc.strerror}", EXIT_BAD_INPUT) from exc
        if not as_json:
            Console(stderr=True).print(Text(f"scenario written to {printable(scenario_path)}"))
