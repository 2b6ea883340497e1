"""A sweep on a real Dask ``LocalCluster`` (2 worker processes) gives the serial rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from ioasid_core.sweep import (
    DaskEngine,
    SerialEngine,
    SweepStore,
    load_sweep,
    plan_sweep,
    run_sweep,
)

# tests/sweep_helpers.py: ``tests.sweep_helpers`` at run time, ``sweep_helpers`` to mypy
# (see test_iopf.py).
if TYPE_CHECKING:
    from sweep_helpers import VENDORS, comparable, write_sweep
else:
    from tests.sweep_helpers import VENDORS, comparable, write_sweep


def test_a_dask_local_cluster_gives_the_serial_rows_row_for_row(tmp_path: Path) -> None:
    plan = plan_sweep(load_sweep(write_sweep(tmp_path)), VENDORS)
    serial_store = SweepStore(tmp_path / "serial")
    serial_store.check(plan, resume=False)
    run_sweep(plan, serial_store, SerialEngine())
    engine = DaskEngine(None, 2, timeout=30)
    try:
        assert engine.workers == 2
        store = SweepStore(tmp_path / "dask")
        store.check(plan, resume=False)
        report = run_sweep(plan, store, engine, batch=3)
    finally:
        engine.close()
    assert report.failed == () and report.ran == 16
    serial = pq.read_table(tmp_path / "serial" / "results.parquet").to_pylist()
    dask = pq.read_table(tmp_path / "dask" / "results.parquet").to_pylist()
    assert len(dask) == 16
    assert comparable(dask) == comparable(serial)
