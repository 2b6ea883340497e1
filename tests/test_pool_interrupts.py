"""Ctrl-C and the process pools of ``compare --jobs`` and ``sweep --jobs``: it is the parent's.

A terminal sends SIGINT to every process of its foreground job. A worker with Python's own
handler met it between runs as a ``KeyboardInterrupt`` outside any task, and printed its
traceback on the standard error it shares with the command (``test_cli_edges`` has the
command's view). The workers here end at once and say nothing; the parent says it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator

import pytest

from ioasid_core.shipping import CargoPool, held

KEY = "test-pool-interrupts"


@pytest.fixture
def ctrl_c_as_in_a_terminal() -> Iterator[None]:
    """This process takes SIGINT with Python's handler (a KeyboardInterrupt), as a command in
    a terminal does, whatever it inherited: a run in the background of a shell without job
    control ignores SIGINT, and then so would the pool's workers, rightly."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _meet() -> int:
    """A task that returns only once another worker runs it too (the cargo is a barrier of
    two): two of them prove that both workers are up and have each run one."""
    held(KEY).wait(60)
    return os.getpid()


def _exitcode(worker: multiprocessing.process.BaseProcess) -> int | None:
    """The worker's exit code once it has ended. The pool's own management thread reaps its
    dead workers too: when it wins the race for the ``waitpid``, this process's ``join``
    meets ECHILD and returns before the code is recorded, and ``exitcode`` reads None for a
    moment (seen once in a full run), until the reaper records it in the same ``Popen``.
    Bounded: a worker that never ends still reads None and fails the test."""
    deadline = time.monotonic() + 30
    while worker.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return worker.exitcode


def _how_sigint_is_taken() -> tuple[object, bool]:
    return signal.getsignal(signal.SIGINT), signal.SIGINT in signal.pthread_sigmask(
        signal.SIG_BLOCK, []
    )


@pytest.mark.usefixtures("ctrl_c_as_in_a_terminal")
def test_workers_waiting_for_work_end_silently_on_ctrl_c(capfd: pytest.CaptureFixture[str]) -> None:
    barrier = multiprocessing.get_context("fork").Barrier(2)
    pool = CargoPool(2, KEY, barrier)
    try:
        first, second = pool.submit(_meet), pool.submit(_meet)
        pids = {first.result(timeout=120), second.result(timeout=120)}
        assert len(pids) == 2 and os.getpid() not in pids
        # Both runs came back: each worker is past its task, between runs (the old handler
        # raised KeyboardInterrupt there, outside the task, and printed it).
        workers = [p for p in list(pool._processes.values()) if p.pid in pids]
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        for worker in workers:
            worker.join(120)
        assert [_exitcode(w) for w in workers] == [-signal.SIGINT] * 2
    finally:
        pool.shutdown()
    assert capfd.readouterr().err == ""  # the workers' standard error is this process's


@pytest.mark.usefixtures("ctrl_c_as_in_a_terminal")
def test_a_worker_takes_ctrl_c_by_default_and_the_parent_keeps_its_handler() -> None:
    before = _how_sigint_is_taken()
    pool = CargoPool(1, KEY, None)
    try:
        in_worker = pool.submit(_how_sigint_is_taken).result(timeout=120)
    finally:
        pool.shutdown()
    assert in_worker == (signal.SIG_DFL, False)
    # The parent's handler and mask as they were (SIGINT blocked only while the pool forked).
    assert _how_sigint_is_taken() == before


def test_a_worker_ignores_ctrl_c_where_its_parent_does() -> None:
    # `trap '' INT; ioasid compare --jobs 2 ...`: the user asked for Ctrl-C to be ignored.
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = CargoPool(1, KEY, None)
        try:
            in_worker = pool.submit(_how_sigint_is_taken).result(timeout=120)
        finally:
            pool.shutdown()
    finally:
        signal.signal(signal.SIGINT, ignored)
    assert in_worker == (signal.SIG_IGN, False)
