"""Sweeps replay with the plugins, as ``run`` and ``compare`` do: units are probed through
the plugin manager (a plugin's allocator offer takes), set and event hooks fire, in this
process (--jobs 1) and in each pool worker (its own manager of the installed plugins). A
plugin that raises in a hook fails the runs it raised in, named as ``compare`` names it;
the other runs go on and the command exits 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ioasid_core.allocators import AllocatorOps
from ioasid_core.backends import IdBackend, backend_ops
from ioasid_core.markers import hookimpl
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.sweep import read_results
from ioasid_core.testing import invoke_cli
from ioasid_core.units import IommuUnit

if TYPE_CHECKING:
    from plugin_fakes import FakeEntryPoint
    from sweep_helpers import FileTracer, write_sweep
else:
    from tests.plugin_fakes import FakeEntryPoint
    from tests.sweep_helpers import FileTracer, write_sweep

RUNS = 16
"""SMALL's runs: 8 of generic, 8 of vtd."""


class TopDown:
    """Offers every unit a top-down allocator: the highest free PASID first."""

    @hookimpl
    def ioasid_allocators_for_unit(
        self, unit: IommuUnit, space: IoasidSpace
    ) -> Sequence[AllocatorOps[Any]]:
        return [backend_ops(IdBackend("top_down", space.capacity))]


class NoVtd:
    """Raises when a vtd unit is probed: every vtd run fails, the generic ones do not."""

    @hookimpl
    def ioasid_allocators_for_unit(
        self, unit: IommuUnit, space: IoasidSpace
    ) -> Sequence[AllocatorOps[Any]]:
        if unit.vendor == "vtd":
            raise RuntimeError("no vtd here \x1b[2J")
        return []


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_sweeps_runs_reach_the_installed_plugins(
    install: Callable[..., None], tmp_path: Path, jobs: str
) -> None:
    log = tmp_path / "trace"
    install(FakeEntryPoint("tracer", FileTracer(log)), FakeEntryPoint("topdown", TopDown()))
    out = tmp_path / "out"
    result = invoke_cli("sweep", str(write_sweep(tmp_path)), "--out", str(out), "--jobs", jobs)
    assert result.exit_code == 0, result.stderr
    lines = _lines(log)
    probes = [line.split()[1] for line in lines if line.startswith("probe ")]
    assert sorted(probes) == ["generic"] * 8 + ["vtd"] * 8  # one unit per run, each run
    assert lines.count("set") >= RUNS
    allocated = [int(line.split()[1]) for line in lines if line.startswith("alloc ")]
    capacity = 0x100000  # churn-and-stream's: the top-down allocator's PASIDs are high
    assert allocated and all(pasid >= capacity // 2 for pasid in allocated)
    rows = read_results(out)
    assert len(rows) == RUNS and all(row["error"] is None for row in rows)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_plugin_raising_in_a_hook_fails_its_runs_named_as_compare_names_it(
    install: Callable[..., None], tmp_path: Path, jobs: str
) -> None:
    log = tmp_path / "trace"
    install(FakeEntryPoint("tracer", FileTracer(log)), FakeEntryPoint("novtd", NoVtd()))
    said = (
        "RuntimeError: no vtd here \\x1b[2J (raised by ioasid plugin 'novtd' in hook "
        "'ioasid_allocators_for_unit')"
    )
    compared = invoke_cli("compare", "null-set-search", "--vendors", "generic,vtd", "--jobs", jobs)
    assert compared.exit_code == 1
    assert f"failed under policy 'global': {said}\n" in compared.stderr
    assert "generic" in compared.stdout  # the others' table
    out = tmp_path / "out"
    result = invoke_cli("sweep", str(write_sweep(tmp_path)), "--out", str(out), "--jobs", jobs)
    assert result.exit_code == 1
    assert "8 failed" in result.stdout
    assert f"vendor 'vtd' failed under policy 'global': {said}\n" in result.stderr
    assert "\x1b" not in result.stderr
    rows = read_results(out)
    assert all(r["error"] is None and r["page_requests"] for r in rows if r["vendor"] == "generic")
    assert all(said in str(r["error"]) for r in rows if r["vendor"] == "vtd")
    probes = [line for line in _lines(log) if line == "probe generic"]
    assert len(probes) >= 8 + 4  # the other plugin saw every run of the others (and compare's)


class SetBreaker:
    """Raises when a set is made: the space does it, then raises its callbacks' group."""

    @hookimpl
    def ioasid_set_created(self, space: IoasidSpace, set: IoasidSet) -> None:
        raise RuntimeError("tracer broke")


def test_a_set_hook_that_raises_is_named_inside_the_spaces_group(
    install: Callable[..., None],
) -> None:
    install(FakeEntryPoint("breaker", SetBreaker()))
    result = invoke_cli("compare", "null-set-search", "--vendors", "generic", "--policies", "set")
    assert result.exit_code == 1
    assert (
        "ioasid: left out: vendor 'generic' failed under policy 'set': ExceptionGroup: 1 "
        "callback(s) failed after creating set 0 (null) (the operation itself is done) (1 "
        "sub-exception): RuntimeError: tracer broke (raised by ioasid plugin 'breaker' in hook "
        "'ioasid_set_created')\n"
    ) in result.stderr
