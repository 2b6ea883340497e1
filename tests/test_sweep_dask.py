"""End to end on a real Dask ``LocalCluster`` (2 worker processes, started and closed by the
command): the rows are the serial ones, row for row, read back with pyarrow."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.sweep import SerialEngine, SweepStore, load_sweep, plan_sweep, run_sweep

# tests/sweep_helpers.py: ``tests.sweep_helpers`` at run time, ``sweep_helpers`` to mypy.
if TYPE_CHECKING:
    from sweep_helpers import VENDORS, comparable, write_sweep
else:
    from tests.sweep_helpers import VENDORS, comparable, write_sweep


@pytest.fixture
def dask_default_port_taken() -> Iterator[None]:
    """Port 8787 (Dask's default HTTP port) held by someone else, as on a shared machine
    where another cluster runs: the local cluster must not warn (warnings are errors here)."""
    with socket.socket() as holder:
        try:
            holder.bind(("0.0.0.0", 8787))
            holder.listen()
        except OSError:
            pass  # already taken by another process: the same condition
        yield


@pytest.mark.usefixtures("dask_default_port_taken")
def test_a_dask_local_cluster_gives_the_serial_rows_row_for_row(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    plan = plan_sweep(load_sweep(path), VENDORS)
    serial_store = SweepStore(tmp_path / "serial")
    serial_store.check(plan, resume=False)
    run_sweep(plan, serial_store, SerialEngine())
    out = tmp_path / "dask"
    args = ["sweep", str(path), "--out", str(out), "--executor", "dask-local", "--jobs", "2"]
    result = CliRunner().invoke(cli, [*args, "--batch", "3", "--connect-timeout", "60"])
    assert result.exit_code == 0, result.output
    assert "on dask local cluster of 2" in result.stdout
    serial = pq.read_table(tmp_path / "serial" / "results.parquet").to_pylist()
    dask = pq.read_table(out / "results.parquet").to_pylist()
    assert len(dask) == 16
    assert comparable(dask) == comparable(serial)
    assert (out / "plots" / "responses.success.png").exists()
