"""The ``ioasid`` command line.

``cli`` is the click group; each command is a function decorated with ``@cli.command()`` in this
module, or defined elsewhere and added with ``cli.add_command(...)`` here. Commands build their
own plugin manager with ``new_plugin_manager`` so each run sees the installed plugins afresh.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
import click

from ioasid_core.plugins import PluginHost, new_plugin_manager

__all__ = ["cli", "main"]


@click.group(name="ioasid", context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--strict", is_flag=True, help="Exit with status 1 if any plugin failed to load.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool, block: Sequence[str], strict: bool) -> None:
    """List the installed vendor plugins, and those that failed to load."""
    with _loader_quiet():  # the listing reports the failures itself
        host = new_plugin_manager(blocked=block)
    if as_json:
        click.echo(json.dumps(plugins_report(host), indent=2))
    else:
        click.echo(plugins_table(host))
    if strict and host.failures:
        ctx.exit(1)


def plugins_report(host: PluginHost) -> dict[str, object]:
    """The ``--json`` shape: ``plugins``, ``failures`` (lists of objects), ``blocked`` (names)."""
    return {
        "plugins": [attrs.asdict(plugin) for plugin in host.loaded],
        "failures": [attrs.asdict(failure) for failure in host.failures],
        "blocked": sorted(host.blocked),
    }


def plugins_table(host: PluginHost) -> str:
    """The plain-text listing: a table of plugins, then failures and blocked names if any."""
    lines: list[str] = []
    if host.loaded:
        rows = [("NAME", "DISTRIBUTION", "VERSION", "VENDOR", "DESCRIPTION")]
        rows += [
            (
                p.name,
                p.distribution,
                p.version,
                p.vendor.name if p.vendor else "-",
                p.vendor.description if p.vendor else "-",
            )
            for p in host.loaded
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
    else:
        lines.append("no ioasid plugins loaded")
    if host.failures:
        lines += ["", "failed to load:"]
        lines += [
            f"  {f.name} ({f.distribution}, {f.entry_point}): {f.error}" for f in host.failures
        ]
    if host.blocked:
        lines += ["", f"blocked: {', '.join(sorted(host.blocked))}"]
    return "\n".join(lines)


@contextmanager
def _loader_quiet() -> Iterator[None]:
    """Hold back the loader's "skipping plugin" warnings (not other modules' logs)."""
    logger = logging.getLogger("ioasid_core.plugins")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@cli.command(name="demo")
def demo_command() -> None:
    """A short tour of the core: what global and set-scoped lookups hand back."""
    from ioasid_core.demo import run_demo

    steps = run_demo()
    width = max(len(step.action) for step in steps)
    for step in steps:
        click.echo(f"{step.action.ljust(width)}  {step.outcome}")


@cli.command(name="bench")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quick", is_flag=True, help="Short loops: a smoke run, not numbers to trust.")
@click.option("--check", is_flag=True, help="Exit with status 1 if a figure is over its limit.")
@click.pass_context
def bench_command(ctx: click.Context, as_json: bool, quick: bool, check: bool) -> None:
    """Speed and memory figures, each a ratio against a baseline run in the same process."""
    from ioasid_core.bench import LIMITS, run_bench

    figures = run_bench(quick=quick)
    over = [name for name, value in figures.items() if value > LIMITS.get(name, float("inf"))]
    if as_json:
        click.echo(json.dumps(figures))
    else:
        for name, value in figures.items():
            mark = "OVER" if name in over else "ok"
            click.echo(f"{name:<24} {value:>10.3f}   limit {LIMITS[name]:>7.1f}   {mark}")
    if check and over:
        ctx.exit(1)


def main() -> None:
    """The console-script entry point (``ioasid = "ioasid_core.cli:main"``)."""
    cli()
