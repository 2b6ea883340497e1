"""A mutex whose uncontended path is one ``list.pop`` and one ``list.append``.

``threading.Lock.acquire`` parses keyword arguments on every call, which makes it several
times dearer than the dict operations it protects on the allocation hot path. Here the lock
is a single token in a list: taking it is ``pop()`` (atomic: one C call, which raises
``IndexError`` when another thread holds the token) and giving it back is ``append()``.

A thread that finds the token gone retries after a short sleep, doubling it up to a
millisecond: the space holds the token for microseconds (a subscriber or custom allocator
may take longer, and then the waiter sleeps instead of spinning). Releasing therefore never
has to wake anyone, so it stays one ``append``. Not re-entrant: the space refuses re-entry
before it gets here.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Final

__all__ = ["TokenMutex"]

_FIRST_SLEEP: Final = 1e-6
_LONGEST_SLEEP: Final = 1e-3


class TokenMutex:
    """A non-reentrant mutex. Hot paths may call ``take``/``give`` directly:

    ``try: take() except IndexError: mutex.wait()`` acquires, ``give(True)`` releases.
    """

    __slots__ = ("_token", "give", "take")

    def __init__(self) -> None:
        self._token: list[bool] = [True]
        self.take = self._token.pop
        self.give = self._token.append

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

    def wait(self) -> None:
        """Block until the token is taken by this thread (the slow path of acquire)."""
        delay = 0.0  # the first retry only yields the GIL
        while True:
            try:
                self.take()
                return
            except IndexError:
                time.sleep(delay)
                delay = min(delay * 2 or _FIRST_SLEEP, _LONGEST_SLEEP)

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
