"""Small sweeps the sweep tests share (a base with seeded generators, so seeds matter), and
plugins and vendors that also work in a Dask worker process: it imports this module
(``tests.sweep_helpers``, the repository's root on its path) to unpickle them."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from ioasid_core.allocators import AllocatorOps
from ioasid_core.bits import Buffer
from ioasid_core.compare import available_vendors
from ioasid_core.events import Event
from ioasid_core.markers import ENTRY_POINT_GROUP, hookimpl
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq, PageRequest
from ioasid_core.prq.types import RequestRow
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.scenario.schema import Step
from ioasid_core.scenario.stream import StepStream
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.types import EventKind
from ioasid_core.units import IommuUnit

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VENDORS: dict[str, VendorPrq] = available_vendors(new_plugin_manager().hooks)

SMALL = f"""
name = "small"
base = "{EXAMPLES / "churn-and-stream.toml"}"
vendors = ["generic", "vtd"]
policies = ["native", "device"]
seeds = [1, 2]
plot = ["responses.success"]

[axes]
"generators[1].count" = [10, 30]
"""
"""2 points x 2 seeds x 2 vendors x 2 policies (native is global for both): 16 runs."""


def write_sweep(folder: Path, text: str = SMALL, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their timings (the only columns that differ between executors)."""
    return [{k: v for k, v in row.items() if k not in ("run_time_s", "run_cpu_s")} for row in rows]


class Exploding(GenericPrq):
    """A vendor whose decoder always raises: each of its runs fails."""

    name = "exploding"

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        raise RuntimeError("decoder exploded")


WITH_EXPLODING: dict[str, VendorPrq] = {**VENDORS, "exploding": Exploding()}


@attrs.define(eq=False)  # a plugin must hash: by identity
class FileTracer:
    """Writes what a run's space does to ``log``, one line each, from whichever process:
    ``probe VENDOR``, ``set``, ``alloc PASID``."""

    log: Path

    def _write(self, line: str) -> None:
        with self.log.open("a") as out:
            out.write(f"{line}\n")

    @hookimpl
    def ioasid_allocators_for_unit(
        self, unit: IommuUnit, space: IoasidSpace
    ) -> Sequence[AllocatorOps[Any]]:
        self._write(f"probe {unit.vendor}")
        return []

    @hookimpl
    def ioasid_set_created(self, space: IoasidSpace, set: IoasidSet) -> None:
        self._write("set")

    @hookimpl
    def ioasid_event(self, space: IoasidSpace, event: Event) -> None:
        if event.kind is EventKind.ALLOC:
            self._write(f"alloc {event.ioasid}")


class Killer(GenericPrq):
    """A vendor whose decoder ends its worker process (``os._exit(3)``), as native code
    that crashes would; never the process that made it (the test's)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.parent = os.getpid()

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        if os.getpid() == self.parent:
            raise RuntimeError("Killer runs in worker processes only")
        os._exit(3)


def count_walks(log: Path) -> None:
    """From now on, in this process, each walk of a stream's generators (not of held steps)
    writes ``walk PID SEED STEPS`` to ``log`` (which scenario, in which process)."""
    walk = StepStream.__iter__

    def counted(self: StepStream) -> Iterator[Step]:
        with log.open("a") as out:
            out.write(f"walk {os.getpid()} {self.seed} {self.size}\n")
        return walk(self)

    StepStream.__iter__ = counted  # type: ignore[method-assign]


class _TracerEntryPoint:
    name = "tracer"
    value = "tests.sweep_helpers:FileTracer"
    group = ENTRY_POINT_GROUP
    dist = None

    def __init__(self, log: Path) -> None:
        self.log = log

    def load(self) -> object:
        return FileTracer(self.log)


def install_in_worker(log: str) -> None:
    """In a Dask worker process: a ``FileTracer`` installed (an entry point added to the
    real ones) and the stream walks counted, both into ``log``."""
    real = importlib.metadata.entry_points

    def entry_points(*, group: str) -> list[object]:
        found: list[object] = list(real(group=group))
        return [*found, _TracerEntryPoint(Path(log))] if group == ENTRY_POINT_GROUP else found

    importlib.metadata.entry_points = entry_points  # type: ignore[assignment]
    count_walks(Path(log))
