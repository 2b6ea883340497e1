"""The ``demo`` and ``bench`` commands."""

from __future__ import annotations

import json

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
    assert set(figures) == set(LIMITS)
    assert all(isinstance(v, float) and v > 0 for v in figures.values())
