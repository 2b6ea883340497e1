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
    "result_rows",
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
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _identity(plan: SweepPlan) -> dict[str, object]:
    spec = plan.spec
    return {"sweep_sha256": spec.digest, "base_sha256": spec.base_digest, "runs": len(plan.runs)}


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
                "scenario or the number of runs changed)"
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
                done[item["run"]] = Outcome(
                    item["run"], item["row"], None, item["wall_s"], item["cpu_s"]
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
                "row": outcome.row,
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

    def write_results(self, rows: list[dict[str, object]], columns: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=_schema(rows, columns))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        write_atomic(self.out / RESULTS_PARQUET, sink.getvalue().to_pybytes())
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.out / RESULTS_CSV, text.getvalue().encode())


def _schema(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> Any:
    """Each column's type from its values: bool, int64, double (ints and floats mixed, or a
    percentile that is None in some runs) or string; all-None columns are doubles."""
    import pyarrow as pa

    fields = []
    for column in columns:
        kinds = {type(row.get(column)) for row in rows} - {type(None)}
        if kinds == {bool}:
            kind = pa.bool_()
        elif kinds == {int}:
            kind = pa.int64()
        elif kinds <= {int, float}:
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(column, kind))
    return pa.schema(fields)


def result_rows(
    plan: SweepPlan, outcomes: Mapping[int, Outcome]
) -> tuple[list[dict[str, object]], list[str]]:
    """One row per run, in run order, and the columns: the run's key, its axis values, every
    metric, its timings and its error (metrics empty for a failed run)."""
    axes = [axis.name for axis in plan.spec.axes]
    metrics = [*plan.metrics, "step_errors"]
    seen = set(metrics)
    for index in sorted(outcomes):  # a point whose axis changed its [latency] ops
        for key in outcomes[index].row or ():
            if key not in seen:
                seen.add(key)
                metrics.append(key)
    columns = [*FIXED_COLUMNS, *axes, *metrics, *TIMING_COLUMNS]
    rows = []
    for run in plan.runs:
        outcome = outcomes.get(run.index)
        point = plan.points[run.point]
        row: dict[str, object] = {
            "run": run.index,
            "point": run.point,
            "vendor": run.vendor,
            "policy": run.policy.value,
            "native": run.native,
            "seed": run.seed,
        }
        row.update(zip(axes, point.values, strict=True))
        values = (outcome.row if outcome is not None else None) or {}
        for metric in metrics:
            row[metric] = values.get(metric)
        row["run_time_s"] = outcome.wall_s if outcome is not None else None
        row["run_cpu_s"] = outcome.cpu_s if outcome is not None else None
        row["error"] = outcome.error if outcome is not None else "not run"
        rows.append(row)
    return rows, columns


def read_results(out: Path) -> list[dict[str, object]]:
    """The rows of ``out/results.parquet``."""
    import pyarrow.parquet as pq

    rows: list[dict[str, object]] = pq.read_table(out / RESULTS_PARQUET).to_pylist()
    return rows
