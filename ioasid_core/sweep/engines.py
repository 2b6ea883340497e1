"""Where a sweep's batches run: in this process, a local process pool, or a Dask cluster
(``dask_engine.py``).

Each engine gives the cargo to its workers once (a pool's initializer; a Dask broadcast of a
scattered object, which stays in each worker's memory), and yields each batch's outcomes as
it completes. Dask is an optional extra (``ioasid-core[dask]``): its executor is a
``concurrent.futures.Executor``, so the sweep uses the engine, not a scheduler of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from typing import Final

from ioasid_core.compare import VendorFailure
from ioasid_core.plugins import Hooks
from ioasid_core.shipping import CargoPool
from ioasid_core.sweep.plan import RunKey
from ioasid_core.sweep.worker import Cargo, HeldCargo, Outcome, forget, run_batch

__all__ = [
    "DASK_INSTALL_HINT",
    "Engine",
    "EngineError",
    "PoolEngine",
    "SerialEngine",
    "make_engine",
]

DASK_INSTALL_HINT: Final = "install the Dask extra: pip install 'ioasid-core[dask]'"

Batch = Sequence[RunKey]
Done = tuple[Batch, list[Outcome] | BaseException]
"""A batch and its outcomes, or what stopped the whole task (a worker lost, say)."""


_IN_FLIGHT: Final = 2
"""Batches per worker sent ahead: enough to keep each busy, few to lose with a dead one."""


class EngineError(Exception):
    """An engine that cannot start: an address nobody answers, Dask not installed."""


class Engine:
    """Runs batches of one sweep; ``describe`` names it in the manifest."""

    workers: int = 1
    describe: str = "this process"
    _key: str | None = None
    """The cargo key of the sweep started (None: none yet, or let go at close)."""

    def start(self, cargo: Cargo, hooks: Hooks | None = None) -> None:
        """Give the workers ``cargo``. ``hooks``: the command's plugins, for runs in its own
        process (a worker process makes its own manager when ``cargo.plugins``)."""
        self._cargo = cargo
        self._hooks = hooks
        self._key = cargo.key

    def run(self, batches: Sequence[Batch]) -> Iterator[Done]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop what the engine started (idempotent)."""


class SerialEngine(Engine):
    """Every batch in this process, one after another."""

    def run(self, batches: Sequence[Batch]) -> Iterator[Done]:
        for batch in batches:
            yield batch, run_batch(self._cargo, batch, self._hooks)

    def close(self) -> None:
        if self._key is not None:
            forget(self._key)  # this process lives on: let go of the held steps
            self._key = None


class PoolEngine(Engine):
    """A local process pool; each worker receives the cargo once, when it starts."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.describe = f"local pool of {workers} processes"
        self.executor: ProcessPoolExecutor | None = None

    def start(self, cargo: Cargo, hooks: Hooks | None = None) -> None:
        super().start(cargo, hooks)
        self.executor = CargoPool(self.workers, cargo.key, cargo)

    def run(self, batches: Sequence[Batch]) -> Iterator[Done]:
        """The batches, a few per worker in flight at a time. A worker that dies (a
        plugin's ``os._exit``, a crash in native code) breaks the pool and takes the
        batches in flight along: those run again one run at a time in a fresh one-worker
        pool, so only the run that kills it again is recorded as failed (naming how its
        worker died), and the batches not yet sent go on in a fresh pool."""
        waiting = deque(batches)
        arg = HeldCargo(self._cargo.key)
        while waiting:
            if self.executor is None:
                self.executor = CargoPool(self.workers, self._cargo.key, self._cargo)
            lost: list[Batch] = []
            flying: dict[Future[list[Outcome]], Batch] = {}
            try:
                while (waiting and not lost) or flying:
                    while waiting and not lost and len(flying) < _IN_FLIGHT * self.workers:
                        batch = waiting.popleft()
                        flying[self.executor.submit(run_batch, arg, batch)] = batch
                    done, _ = wait(flying, return_when=FIRST_COMPLETED)
                    for future in done:
                        batch = flying.pop(future)
                        error = future.exception()
                        if isinstance(error, BrokenExecutor):
                            lost.append(batch)
                        else:
                            yield batch, (future.result() if error is None else error)
            finally:
                for future in flying:
                    future.cancel()
            if lost:
                self.close()  # broken: the batches not yet sent go to a fresh pool
                yield from _one_run_at_a_time(self._cargo, lost)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None


def _one_run_at_a_time(cargo: Cargo, batches: Sequence[Batch]) -> Iterator[Done]:
    """Each run of ``batches`` alone in a one-worker pool: a run that kills the worker is
    a failed run naming how it died (and a fresh pool takes the next run)."""
    alone: CargoPool | None = None
    try:
        for run in (run for batch in batches for run in batch):
            if alone is None:
                alone = CargoPool(1, cargo.key, cargo)
            future = alone.submit(run_batch, HeldCargo(cargo.key), [run])
            error = future.exception()
            if not isinstance(error, BrokenExecutor):
                yield (run,), (future.result() if error is None else error)
                continue
            how = ", ".join(alone.deaths()) or "it ended abruptly"
            alone.shutdown()
            alone = None
            died = VendorFailure(
                run.vendor, run.policy, f"the worker process running it died ({how})"
            )
            yield (run,), [Outcome(run.index, None, None, str(died), 0.0, 0.0)]
    finally:
        if alone is not None:
            alone.shutdown()


def make_engine(executor: str, jobs: int, timeout: float = 10.0) -> Engine:
    """``local`` (``jobs`` processes; 1: in this process), ``dask-local`` (a local cluster of
    ``jobs`` workers) or ``dask://HOST:PORT``; ``EngineError`` if it cannot start."""
    if executor == "local":
        return SerialEngine() if jobs <= 1 else PoolEngine(jobs)
    from ioasid_core.sweep.dask_engine import DaskEngine

    if executor == "dask-local":
        return DaskEngine(None, jobs, timeout)
    if executor.startswith("dask://"):
        where = executor.removeprefix("dask://")
        if not where or "/" in where:
            raise EngineError(f"expected dask://HOST:PORT, got {executor!r}")
        return DaskEngine(f"tcp://{where}", jobs, timeout)
    raise EngineError(f"no executor {executor!r} (known: local, dask-local, dask://HOST:PORT)")
