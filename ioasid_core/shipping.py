"""Cargo that crosses to a worker process once, not with every task.

A process pool pickles every argument of every task. A large scenario (a generated one of
100,000 steps is tens of MB) then costs seconds per run each way, more than the run. Here a
pool is started with its cargo (each worker receives it once, through the pool's
initializer: inherited for free with ``fork``, pickled once per worker with ``spawn``), and
tasks carry only its key.

Ctrl-C belongs to the parent process. A terminal sends SIGINT to the whole foreground group,
workers too, and a worker with Python's handler turned it into a ``KeyboardInterrupt``
traceback on the shared standard error when it came between runs (idle at a comparison's
tail, or fetching its next task): after the command's own one-line "interrupted". A worker
here takes SIGINT's default action instead, ending at once and silently, and the parent, whose
handler is Python's, says it was interrupted and ends the pool.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Final, TypeVar

__all__ = ["CargoPool", "death", "held", "hold"]

_T = TypeVar("_T")

_HELD: dict[str, Any] = {}
_REAPED_WITHIN: Final = 2.0
"""Seconds to wait for a dead worker's exit status (the pool's own end terminates the rest)."""


def hold(key: str, cargo: object) -> None:
    """Keep ``cargo`` in this process under ``key`` (a pool's initializer)."""
    _HELD[key] = cargo


def held(key: str) -> Any:
    """The cargo kept under ``key``; ``LookupError`` if this process was given none."""
    try:
        return _HELD[key]
    except KeyError:
        raise LookupError(f"this worker holds no cargo {key!r} (not started by its pool)") from None


def _start_worker(key: str, cargo: object) -> None:
    """A pool worker's start: Ctrl-C ends it silently (the default action, see above), or
    is ignored if its parent ignores it (``trap '' INT``); then it holds its cargo. SIGINT
    was blocked while it was forked (``CargoPool.submit``), so none reached it before this;
    one that did is delivered now."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    hold(key, cargo)


class CargoPool(ProcessPoolExecutor):
    """A process pool whose every worker holds ``cargo`` under ``key`` from its start."""

    def __init__(self, workers: int, key: str, cargo: object) -> None:
        super().__init__(workers, initializer=_start_worker, initargs=(key, cargo))
        self.key = key
        self.cargo = cargo

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """As the pool's, with SIGINT blocked meanwhile: the workers are forked here (at the
        first task), and a child inherits the mask, so none runs Python's handler before
        ``_start_worker`` replaces it. A Ctrl-C that came meanwhile reaches this process
        when it is unblocked, as a ``KeyboardInterrupt`` right after."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def deaths(self) -> list[str]:
        """How the pool's workers that ended ended, worst first ("killed by SIGSEGV",
        "exit status 3"): what broke the pool. Empty when that cannot be told (the
        executor's process table is CPython's private state; read, never relied on)."""
        processes = getattr(self, "_processes", None) or {}
        codes: list[int] = []
        deadline = time.monotonic() + _REAPED_WITHIN
        for process in list(processes.values()):
            code = _exit_code(process, deadline)
            if code:
                codes.append(code)
        return [death(code) for code in sorted(codes)]


def _exit_code(process: Any, deadline: float) -> int | None:
    """A worker's exit code, waiting until ``deadline`` for it to be known. Its end is seen
    (the pool broke) before it is reaped, and the pool's own thread reaps it too: the one
    of the two that loses the race finds no child to wait for and must wait for the
    other's answer, not take the missing code for a worker still running."""
    while True:
        process.join(max(0.0, deadline - time.monotonic()))
        code: int | None = process.exitcode
        if code is not None or time.monotonic() >= deadline:
            return code
        time.sleep(0.005)


def death(code: int) -> str:
    """A worker's exit code in words: negative is the signal that killed it."""
    if code > 0:
        return f"exit status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"
