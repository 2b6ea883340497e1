"""A sweep's output folder: results streamed as they arrive, the tables written at the end.

``runs.jsonl`` gets one line per finished run, flushed as each batch completes, so an
interrupted sweep loses at most the batches in flight and ``--resume`` re-runs only what the
folder does not hold (a failed run is run again). ``results.parquet``, ``results.csv`` and
``manifest.json`` are written to a temporary name and renamed, so none is ever half-written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ioasid_core.sweep.plan import RunKey, SweepPlan
from ioasid_core.sweep.rows import FIXED_COLUMNS, TIMING_COLUMNS
from ioasid_core.sweep.worker import Outcome

__all__ = [
    "MANIFEST",
    "PARQUET_INSTALL_HINT",
    "RESULTS_CSV",
    "RESULTS_PARQUET",
    "RUNS",
    "StoreError",
    "SweepStore",
    "read_results",
    "result_columns",
    "result_names",
    "write_atomic",
]

RUNS: Final = "runs.jsonl"
RESULTS_PARQUET: Final = "results.parquet"
RESULTS_CSV: Final = "results.csv"
MANIFEST: Final = "manifest.json"
PARQUET_INSTALL_HINT: Final = "install the sweep extra: pip install 'ioasid-core[sweep]'"


class StoreError(Exception):
    """An output folder the sweep cannot use (not empty, another sweep's, unwritable)."""


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` at ``path``, never half-written: a temporary file in the folder, renamed."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(handle, 0o666 & ~umask)  # what open() would give, not mkstemp's 0600
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _identity(plan: SweepPlan) -> dict[str, object]:
    """What must match for ``--resume``: the same files, runs and metric columns (the lines
    of ``runs.jsonl`` hold values in column order)."""
    spec = plan.spec
    return {
        "sweep_sha256": spec.digest,
        "base_sha256": spec.base_digest,
        "runs": len(plan.runs),
        "metrics": list(plan.columns),
    }


class SweepStore:
    """The output folder of one sweep."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def check(self, plan: SweepPlan, *, resume: bool) -> None:
        """Before anything is written: can the sweep use the folder? ``StoreError`` if not."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise StoreError(f"--out {str(out)!r} is not a folder")
        if not out.exists():
            if not out.parent.is_dir():
                raise StoreError(
                    f"--out {str(out)!r}: its folder {str(out.parent)!r} does not exist"
                )
            if not os.access(out.parent, os.W_OK):
                raise StoreError(f"--out {str(out)!r}: its folder is not writable")
            return
        if not os.access(out, os.W_OK):
            raise StoreError(f"--out {str(out)!r} is not writable")
        if not resume:
            if any(out.iterdir()):
                raise StoreError(
                    f"--out {str(out)!r} is not empty: --resume continues the sweep in it, "
                    "or choose another folder"
                )
            return
        manifest = out / MANIFEST
        try:
            saved = json.loads(manifest.read_text())
            identity = {key: saved.get(key) for key in _identity(plan)}
        except (OSError, ValueError, AttributeError):
            raise StoreError(f"--resume: {str(manifest)!r} is missing or unreadable") from None
        if identity != _identity(plan):
            raise StoreError(
                f"--resume: {str(out)!r} holds another sweep (the sweep file, its base "
                "scenario, the number of runs or the metrics of this ioasid version differ)"
            )

    def begin(self, manifest: Mapping[str, object]) -> dict[int, Outcome]:
        """Create the folder, write the first manifest, and read back the runs it holds."""
        self.out.mkdir(exist_ok=True)
        self.write_manifest(manifest)
        done = self._read_runs()
        self._runs = (self.out / RUNS).open("a", encoding="utf-8")
        return done

    def _read_runs(self) -> dict[int, Outcome]:
        path = self.out / RUNS
        if not path.exists():
            return {}
        data = path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]  # a line cut by a crash is dropped
        if len(whole) != len(data):
            with path.open("r+b") as file:
                file.truncate(len(whole))
        done: dict[int, Outcome] = {}
        for line in whole.decode("utf-8").splitlines():
            item = json.loads(line)
            if item["error"] is None:
                values = tuple(item["values"])
                done[item["run"]] = Outcome(
                    item["run"], values, item["extra"], None, item["wall_s"], item["cpu_s"]
                )
        return done

    def append(self, runs: Sequence[RunKey], outcomes: Iterable[Outcome]) -> None:
        keys = {run.index: run for run in runs}
        for outcome in outcomes:
            key = keys[outcome.index]
            line = {
                "run": outcome.index,
                "vendor": key.vendor,
                "policy": key.policy.value,
                "seed": key.seed,
                "values": outcome.values,
                "extra": outcome.extra,
                "error": outcome.error,
                "wall_s": outcome.wall_s,
                "cpu_s": outcome.cpu_s,
            }
            self._runs.write(json.dumps(line, allow_nan=False) + "\n")
        self._runs.flush()

    def close(self) -> None:
        runs = getattr(self, "_runs", None)
        if runs is not None:
            runs.close()

    def write_manifest(self, manifest: Mapping[str, object]) -> None:
        write_atomic(self.out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    def write_results(self, columns: Sequence[str], data: Sequence[Sequence[object]]) -> None:
        """The tables, from ``data`` (one list per column, in run order)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = [pa.array(list(values), type=_kind(values)) for values in data]
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), sink)
        write_atomic(self.out / RESULTS_PARQUET, sink.getvalue().to_pybytes())
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*data, strict=True))
        write_atomic(self.out / RESULTS_CSV, text.getvalue().encode())


def _kind(values: Sequence[object]) -> Any:
    """A column's type from its values: bool, int64, double (ints and floats mixed, or a
    percentile that is None in some runs) or string; an all-None column is a double."""
    import pyarrow as pa

    kinds = {type(v) for v in values} - {type(None)}
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def result_columns(
    plan: SweepPlan, outcomes: Mapping[int, Outcome]
) -> tuple[list[str], list[list[object]]]:
    """The columns (the run's key, its axis values, every metric, its timings and its error)
    and their values, one list per column in run order; a failed run's metrics are empty."""
    axes = [axis.name for axis in plan.spec.axes]
    metrics = list(plan.columns)
    extras: list[str] = []
    for index in sorted(outcomes):  # a point whose axis changed its [latency] ops
        extras += [k for k in outcomes[index].extra or () if k not in extras]
    columns = [*FIXED_COLUMNS, *axes, *metrics, *extras, *TIMING_COLUMNS]
    data: list[list[object]] = [[] for _ in columns]
    blank = (None,) * len(metrics)
    for run in plan.runs:
        outcome = outcomes.get(run.index)
        point = plan.points[run.point]
        values = outcome.values if outcome is not None and outcome.values is not None else blank
        extra = (outcome.extra if outcome is not None else None) or {}
        timings = (
            (outcome.wall_s, outcome.cpu_s, outcome.error) if outcome else (None, None, "not run")
        )
        row = (
            run.index,
            run.point,
            run.vendor,
            run.policy.value,
            run.native,
            run.seed,
            *point.values,
            *values,
            *(extra.get(k) for k in extras),
            *timings,
        )
        for column, value in zip(data, row, strict=True):
            column.append(value)
    return columns, data


def result_names(out: Path) -> list[str]:
    """The columns of ``out/results.parquet``."""
    import pyarrow.parquet as pq

    names: list[str] = pq.read_schema(out / RESULTS_PARQUET).names
    return names


def read_results(out: Path, columns: Sequence[str] | None = None) -> list[dict[str, object]]:
    """The rows of ``out/results.parquet`` (only ``columns``, if given)."""
    import pyarrow.parquet as pq

    table = pq.read_table(out / RESULTS_PARQUET, columns=None if columns is None else list(columns))
    rows: list[dict[str, object]] = table.to_pylist()
    return rows
