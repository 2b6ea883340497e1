"""The ``demo`` and ``bench`` commands."""

from __future__ import annotations

import json
import platform
import sysconfig

import pytest
from click.testing import CliRunner

from ioasid_core.bench import LIMITS
from ioasid_core.cli import cli
from ioasid_core.demo import run_demo


def test_demo_shows_the_global_search_handing_out_another_owners_object() -> None:
    steps = {step.action: step.outcome for step in run_demo()}
    global_hit = next(v for k, v in steps.items() if "global search" in k)
    set_hit = next(v for k, v in steps.items() if "SVA-set search for 0x2" in k)
    assert "DriverContext(driver='idxd')" in global_hit
    assert set_hit.startswith("AccessDeniedError")
    assert "None  (found, but dying)" in steps["the same after the process starts exiting"]
    freed = next(v for k, v in steps.items() if k.startswith("free 0x1"))
    assert "kvm:FREE, iommu:FREE, device:FREE" in freed
    vm_lines = [v for k, v in steps.items() if "binds guest PASID 101" in k]
    assert len(vm_lines) == 2 and vm_lines[0] != vm_lines[1]


def test_demo_command_prints_every_step() -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == len(run_demo())


def test_bench_json_prints_one_object_with_every_figure() -> None:
    result = CliRunner().invoke(cli, ["bench", "--json", "--quick"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    build = figures.pop("interpreter")
    assert set(LIMITS) <= set(figures)  # plugins may add their own
    assert all(isinstance(v, float) and v > 0 for v in figures.values())
    # Every installed vendor's replay figure, the worst of them as the figure.
    per_vendor = [v for k, v in figures.items() if k.startswith("replay_events_per_s_ratio_")]
    assert "replay_events_per_s_ratio_generic" in figures
    assert figures["replay_events_per_s_ratio"] == max(per_vendor)
    assert build["python"] == platform.python_version() and build["pgo"] in ("yes", "no")
    assert build["config_args"] == str(sysconfig.get_config_var("CONFIG_ARGS") or "")


def test_bench_includes_a_plugins_figure_with_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from ioasid_core import cli as cli_module
    from ioasid_core.figures import BenchmarkFigure
    from ioasid_core.markers import hookimpl
    from ioasid_core.plugins import PluginHost, new_plugin_manager

    class FigurePlugin:
        @hookimpl
        def ioasid_benchmarks(self) -> list[BenchmarkFigure]:
            return [
                BenchmarkFigure("acme_ratio", 2.0, lambda quick: 3.5 if quick else 1.0),
                BenchmarkFigure("acme_a_figure_named_longer_than_the_column", 9.0, lambda q: 1.0),
            ]

    def host(**kwargs: object) -> PluginHost:
        made = new_plugin_manager(load_entry_points=False)
        made.pm.register(FigurePlugin(), name="acme")
        return made

    monkeypatch.setattr(cli_module, "new_plugin_manager", host)
    result = CliRunner().invoke(cli, ["bench", "--quick", "--check"])
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith("acme_ratio"))
    assert "3.500" in line and "limit     2.0" in line and line.endswith("OVER")
    # A name longer than the others widens the name column: the columns stay aligned.
    figures = [x for x in result.output.splitlines() if " limit " in x]
    assert len({x.index(" limit ") for x in figures}) == 1, figures
