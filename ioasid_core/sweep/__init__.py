"""Sweeps: one base scenario replayed over axes of values, vendors, policies and seeds, on a
local process pool or a Dask cluster (``ioasid sweep``, docs/sweeps.md)."""

from ioasid_core.sweep.dask_engine import DaskEngine
from ioasid_core.sweep.engines import (
    Engine,
    EngineError,
    PoolEngine,
    SerialEngine,
    make_engine,
)
from ioasid_core.sweep.plan import RunKey, SweepPlan, plan_sweep
from ioasid_core.sweep.runner import SweepReport, run_sweep
from ioasid_core.sweep.spec import Axis, Point, SweepSpec, load_sweep, parse_sweep
from ioasid_core.sweep.store import StoreError, SweepStore, read_results

__all__ = [
    "Axis",
    "DaskEngine",
    "Engine",
    "EngineError",
    "Point",
    "PoolEngine",
    "RunKey",
    "SerialEngine",
    "StoreError",
    "SweepPlan",
    "SweepReport",
    "SweepSpec",
    "SweepStore",
    "load_sweep",
    "make_engine",
    "parse_sweep",
    "plan_sweep",
    "read_results",
    "run_sweep",
]
