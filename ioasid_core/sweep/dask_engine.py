"""A sweep's batches on a Dask cluster: one running at an address, or a ``LocalCluster``
started here. Dask is an optional extra (``ioasid-core[dask]``), imported only here.

A worker killed outright (a plugin's ``os._exit``, a crash in native code) is Dask's to
notice: its nanny starts a fresh one, and the scheduler fails the tasks the dead worker was
running with ``KilledWorker`` once more workers died running them than the cluster allows
(``distributed.scheduler.allowed-failures``; a local cluster started here allows none, since
the sweep retries itself). As the pool engine does, the runs of such a batch run again one
at a time, so that only a run that kills its worker again is recorded as failed, named with
how its worker ended (its nanny's log), and every other run keeps its result.

A worker of a cluster that lives on keeps the sweep's last scenarios (their held steps
within the 64 MiB cap) and its plugin manager until its next sweep's first run drops them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, Future, as_completed
from typing import Any, Final

from ioasid_core.compare import VendorFailure
from ioasid_core.plugins import Hooks
from ioasid_core.shipping import death
from ioasid_core.sweep.engines import DASK_INSTALL_HINT, Batch, Done, Engine, EngineError
from ioasid_core.sweep.plan import RunKey
from ioasid_core.sweep.worker import Cargo, Outcome, run_batch

__all__ = ["DaskEngine"]

_DEATH_LOGGED_WITHIN: Final = 5.0
"""Seconds to wait for a dead worker's nanny to log how it ended (it may learn of the end
after the scheduler does)."""

_NANNY_ANSWERS_WITHIN: Final = 2.0
"""Seconds a nanny has to answer for its log."""

_DEATH_LINE: Final = re.compile(
    r"Worker process (?P<pid>\d+) (?:exited with status (?P<status>-?\d+)"
    r"|was killed by signal (?P<signal>\d+)|was killed by (?P<unknown>unknown) signal)"
)
"""How a nanny logs its worker's end (``distributed.nanny``)."""


class DaskEngine(Engine):
    """A Dask cluster: one at ``address`` (``tcp://host:port``), or a ``LocalCluster`` of
    ``workers`` processes started here (``address`` None) and closed with the engine."""

    def __init__(self, address: str | None, workers: int, timeout: float) -> None:
        try:
            from distributed import Client, LocalCluster
            from distributed.scheduler import KilledWorker
        except ImportError:
            raise EngineError(f"the Dask executor needs distributed: {DASK_INSTALL_HINT}") from None
        self._killed: type[Exception] = KilledWorker
        self._cluster: Any = None
        self._client: Any = None
        self._scattered: Any = None
        self.executor: Any = None
        try:
            if address is None:
                self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    scheduler_kwargs={
                        # No dashboard, but the scheduler still serves HTTP (health,
                        # metrics), on 8787 unless told: a port any free one, so a second
                        # cluster on the machine (or a user's own) is no "Port 8787 is
                        # already in use" warning.
                        "dashboard_address": "127.0.0.1:0",
                        # A task whose worker dies fails at once (Dask would try it on
                        # three more workers, each killed in turn): the sweep runs its
                        # runs again itself, one at a time.
                        "allowed_failures": 0,
                    },
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

    def run(self, batches: Sequence[Batch]) -> Iterator[Done]:
        """Each batch's outcomes as it completes; the batches whose worker died (or whose
        cargo was lost with the workers that held it) then again, one run at a time."""
        assert self.executor is not None
        futures: dict[Future[list[Outcome]], Batch] = {
            self.executor.submit(run_batch, self._scattered, batch): batch for batch in batches
        }
        lost: list[Batch] = []
        try:
            for future in as_completed(futures):
                error = _error(future)
                if isinstance(error, (self._killed, CancelledError)):
                    lost.append(futures[future])
                    continue
                yield futures[future], (future.result() if error is None else error)
        finally:
            for future in futures:
                future.cancel()
        yield from self._one_run_at_a_time(lost)

    def _one_run_at_a_time(self, batches: Sequence[Batch]) -> Iterator[Done]:
        """Each run of ``batches`` as a task of its own, one after another (the cargo sent
        with it: the scattered copy may have died with its workers, and Dask then cancels
        the tasks that need it). A run whose worker dies again is a failed run naming how
        it died; the cluster's nannies start a fresh worker."""
        assert self.executor is not None
        for run in (run for batch in batches for run in batch):
            future = self.executor.submit(run_batch, self._cargo, [run])
            error = _error(future)
            if isinstance(error, self._killed):
                yield (run,), [self._dead(run, error)]
            else:
                yield (run,), (future.result() if error is None else error)

    def _dead(self, run: RunKey, error: BaseException) -> Outcome:
        """The run whose worker died again, named as the pool engine names it."""
        worker = getattr(error, "last_worker", None)
        address = getattr(worker, "address", None) or "an unknown address"
        tried = getattr(error, "allowed_failures", 0) + 1
        said = f"Dask's KilledWorker: {tried} worker(s) died running it, the last at {address}"
        text = f"the worker process running it died ({self._how_it_ended(worker)}; {said})"
        return Outcome(
            run.index, None, None, str(VendorFailure(run.vendor, run.policy, text)), 0.0, 0.0
        )

    def _how_it_ended(self, worker: object) -> str:
        """The dead worker's end as its nanny logged it ("exit status 3", "killed by
        SIGSEGV"), waiting a little for the log; said so when it cannot be told."""
        pid, nanny = getattr(worker, "pid", None), getattr(worker, "nanny", None)
        if not isinstance(pid, int) or not isinstance(nanny, str):
            return "how it ended is not known: it had no nanny"
        deadline = time.monotonic() + _DEATH_LOGGED_WITHIN
        while True:
            found = self._death_logged(pid, nanny)
            if found is not None or time.monotonic() >= deadline:
                return found or f"how process {pid} ended is not in its nanny's log"
            time.sleep(0.05)

    def _death_logged(self, pid: int, nanny: str) -> str | None:
        """How process ``pid`` ended, from the log of ``nanny`` (asked directly: the
        scheduler reaches a nanny only once its fresh worker has joined)."""
        try:
            lines = self._client.sync(_nanny_log, nanny, self._client.connection_args)
        except Exception:  # a nanny that does not answer: the end stays untold
            return None
        for line in lines:  # (level, message) pairs, newest first
            found = _DEATH_LINE.search(str(line))
            if found is None or int(found["pid"]) != pid:
                continue
            if found["status"] is not None:
                return death(int(found["status"]))
            if found["signal"] is not None:
                return death(-int(found["signal"]))
            return "killed by a signal Dask could not tell"
        return None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _error(future: Future[list[Outcome]]) -> BaseException | None:
    """The task's exception (None: it succeeded); a cancelled task's ``CancelledError``."""
    try:
        return future.exception()
    except CancelledError as cancelled:
        return cancelled


async def _nanny_log(address: str, connection_args: dict[str, object]) -> list[object]:
    """The log lines a nanny keeps (``get_logs``)."""
    from distributed.core import rpc

    async with rpc(
        address, timeout=_NANNY_ANSWERS_WITHIN, connection_args=connection_args
    ) as nanny:  # type: ignore[no-untyped-call]
        lines: list[object] = await nanny.get_logs()
    return lines
