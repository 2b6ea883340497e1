"""TokenMutex: mutual exclusion, waking waiters, no token ever duplicated."""

from __future__ import annotations

import threading

import pytest

from ioasid_core.mutex import TokenMutex


def test_threads_never_overlap_inside_the_mutex() -> None:
    mutex = TokenMutex()
    inside = 0
    overlaps = 0
    counter = 0

    def work() -> None:
        nonlocal inside, overlaps, counter
        for _ in range(3000):
            with mutex:
                inside += 1
                if inside != 1:
                    overlaps += 1
                value = counter
                # Give the scheduler a chance to switch threads while the mutex is held.
                for _ in range(3):
                    pass
                counter = value + 1
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert overlaps == 0
    assert counter == 6 * 3000
    assert not mutex.locked


def test_a_waiter_is_woken_by_release() -> None:
    mutex = TokenMutex()
    mutex.acquire()
    got = threading.Event()

    def waiter() -> None:
        mutex.acquire()
        got.set()
        mutex.release()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not got.wait(0.2)  # blocked while held (a loaded machine only makes this surer)
    mutex.release()
    assert got.wait(60)  # bounds a failure only: a pass takes a millisecond
    thread.join(60)
    assert not mutex.locked


def test_release_of_an_unheld_mutex_is_refused_and_mints_no_token() -> None:
    mutex = TokenMutex()
    with pytest.raises(RuntimeError, match="unheld"):
        mutex.release()
    mutex.acquire()
    assert mutex.locked  # still exactly one token: taking it locks
