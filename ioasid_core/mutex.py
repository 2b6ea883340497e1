"""A mutex whose uncontended path is one ``list.pop`` and one ``list.append``.

``threading.Lock.acquire`` parses keyword arguments on every call, which makes it several
times dearer than the dict operations it protects on the allocation hot path. Here the lock
is a single token in a list: taking it is ``pop()`` (atomic: one C call, which raises
``IndexError`` when another thread holds the token) and giving it back is ``append()``.
Threads that find the token gone sleep on a condition variable; a releaser that sees waiters
wakes one. Not re-entrant: the space refuses re-entry before it gets here.
"""

from __future__ import annotations

import threading
from types import TracebackType

__all__ = ["TokenMutex"]


class TokenMutex:
    """A non-reentrant mutex. Hot paths may call ``take``/``give`` directly:

    ``try: take() except IndexError: mutex.wait()`` acquires, and
    ``give(True); if mutex.waiters: mutex.wake()`` releases.
    """

    __slots__ = ("_cond", "_token", "give", "take", "waiters")

    def __init__(self) -> None:
        self._token: list[bool] = [True]
        self.take = self._token.pop
        self.give = self._token.append
        self._cond = threading.Condition(threading.Lock())
        self.waiters = 0

    @property
    def locked(self) -> bool:
        return not self._token

    def acquire(self) -> None:
        try:
            self.take()
        except IndexError:
            self.wait()

    def release(self) -> None:
        if self._token:
            raise RuntimeError("release of an unheld TokenMutex")
        self.give(True)
        if self.waiters:
            self.wake()

    def wait(self) -> None:
        """Block until the token is taken by this thread (the slow path of acquire)."""
        with self._cond:
            self.waiters += 1
            try:
                while True:
                    try:
                        self.take()
                        return
                    except IndexError:
                        # The timeout only guards against a bug elsewhere: a releaser that
                        # sees a waiter always notifies under the condition's lock.
                        self._cond.wait(0.05)
            finally:
                self.waiters -= 1

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def __enter__(self) -> None:
        try:
            self.take()
        except IndexError:
            self.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.give(True)
        if self.waiters:
            self.wake()
