"""Where a sweep's batches run: in this process, a local process pool, or a Dask cluster.

Each engine gives the cargo to its workers once (a pool's initializer; a Dask broadcast of a
scattered object, which stays in each worker's memory), and yields each batch's outcomes as
it completes. Dask is an optional extra (``ioasid-core[dask]``): its executor is a
``concurrent.futures.Executor``, so the sweep uses the engine, not a scheduler of its own.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    as_completed,
    wait,
)
from typing import Any, Final

from ioasid_core.compare import VendorFailure
from ioasid_core.plugins import Hooks
from ioasid_core.shipping import CargoPool
from ioasid_core.sweep.plan import RunKey
from ioasid_core.sweep.worker import Cargo, HeldCargo, Outcome, forget, run_batch

__all__ = [
    "DASK_INSTALL_HINT",
    "DaskEngine",
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

    def start(self, cargo: Cargo, hooks: Hooks | None = None) -> None:
        """Give the workers ``cargo``. ``hooks``: the command's plugins, for runs in its own
        process (a worker process makes its own manager when ``cargo.plugins``)."""
        self._cargo = cargo
        self._hooks = hooks

    def run(self, batches: Sequence[Batch]) -> Iterator[Done]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop what the engine started (idempotent)."""


class SerialEngine(Engine):
    """Every batch in this process, one after another."""

    def run(self, batches: Sequence[Batch]) -> Iterator[Done]:
        for batch in batches:
            yield batch, run_batch(self._cargo, batch, self._hooks)

    _started: str | None = None

    def start(self, cargo: Cargo, hooks: Hooks | None = None) -> None:
        super().start(cargo, hooks)
        self._started = cargo.key

    def close(self) -> None:
        if self._started is not None:
            forget(self._started)  # this process lives on: let go of the held steps
            self._started = None


class _ExecutorEngine(Engine):
    executor: Executor | None = None

    def _arg(self) -> object:
        return self._cargo

    def run(self, batches: Sequence[Batch]) -> Iterator[Done]:
        assert self.executor is not None
        arg = self._arg()
        futures: dict[Future[list[Outcome]], Batch] = {
            self.executor.submit(run_batch, arg, batch): batch  # type: ignore[arg-type]
            for batch in batches
        }
        try:
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], (future.result() if error is None else error)
        finally:
            for future in futures:
                future.cancel()


class PoolEngine(_ExecutorEngine):
    """A local process pool; each worker receives the cargo once, when it starts."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.describe = f"local pool of {workers} processes"
        self.executor: ProcessPoolExecutor | None = None

    def start(self, cargo: Cargo, hooks: Hooks | None = None) -> None:
        super().start(cargo, hooks)
        self.executor = CargoPool(self.workers, cargo.key, cargo)

    def _arg(self) -> object:
        return HeldCargo(self._cargo.key)

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


class DaskEngine(_ExecutorEngine):
    """A Dask cluster: one at ``address`` (``tcp://host:port``), or a ``LocalCluster`` of
    ``workers`` processes started here (``address`` None) and closed with the engine."""

    def __init__(self, address: str | None, workers: int, timeout: float) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise EngineError(f"the Dask executor needs distributed: {DASK_INSTALL_HINT}") from None
        self._cluster: Any = None
        self._client: Any = None
        self._scattered: Any = None
        try:
            if address is None:
                self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    # No dashboard, but the scheduler still serves HTTP (health, metrics),
                    # on 8787 unless told: a port any free one, so a second cluster on the
                    # machine (or a user's own) is no "Port 8787 is already in use" warning.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR,
                )
                self._client = Client(self._cluster, timeout=timeout)  # type: ignore[no-untyped-call]
            else:
                self._client = Client(address, timeout=timeout)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            self.close()
            where = address or "a local cluster"
            raise EngineError(
                f"no Dask scheduler answered at {where} within {timeout:g} s ({exc})"
            ) from None
        except Exception as exc:  # e.g. a local cluster whose workers could not start
            self.close()
            raise EngineError(
                f"the Dask cluster did not start: {type(exc).__name__}: {exc}"
            ) from None
        info = self._client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info["workers"].values()))
        self.describe = f"dask at {address}" if address else f"dask local cluster of {workers}"
        self.executor = self._client.get_executor(pure=False)

    def start(self, cargo: Cargo, hooks: Hooks | None = None) -> None:
        super().start(cargo, hooks)
        # One copy per worker, kept in its memory; tasks refer to it.
        self._scattered = self._client.scatter(cargo, broadcast=True, hash=False)

    def _arg(self) -> object:
        return self._scattered

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_engine(executor: str, jobs: int, timeout: float = 10.0) -> Engine:
    """``local`` (``jobs`` processes; 1: in this process), ``dask-local`` (a local cluster of
    ``jobs`` workers) or ``dask://HOST:PORT``; ``EngineError`` if it cannot start."""
    if executor == "local":
        return SerialEngine() if jobs <= 1 else PoolEngine(jobs)
    if executor == "dask-local":
        return DaskEngine(None, jobs, timeout)
    if executor.startswith("dask://"):
        where = executor.removeprefix("dask://")
        if not where or "/" in where:
            raise EngineError(f"expected dask://HOST:PORT, got {executor!r}")
        return DaskEngine(f"tcp://{where}", jobs, timeout)
    raise EngineError(f"no executor {executor!r} (known: local, dask-local, dask://HOST:PORT)")
