"""Writing the standard output so that a reader that went away is always noticed.

CPython loses a closed pipe on one large write: the kernel takes what fits in the pipe
(64 KiB), the reader exits (``| head -c 10``), and ``sys.stdout.write`` returns as if all
was written; the command then exits 0 having printed a tenth of its output. Writing the
bytes with ``os.write`` until all are taken makes the next write fail with ``EPIPE``, which
the command line turns into status 141. Text the terminal's encoding cannot hold (``µ``
under ``PYTHONIOENCODING=ascii``) is shown as ``\\xb5``, never a traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import IO, cast

from rich.console import Console

__all__ = ["PipeConsole", "StdoutFile", "stdout_console", "write_stdout"]


def _closed() -> OSError:
    """The standard output was closed before the command started (``>&-``): Python has no
    ``sys.stdout`` then, and what is written would vanish without a word."""
    return OSError(errno.EBADF, "it is closed")


def write_stdout(text: str) -> None:
    """Write ``text`` to the standard output, all of it or ``BrokenPipeError``."""
    out = sys.stdout
    if out is None:
        raise _closed()
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        out.write(text)
        out.flush()
        return
    out.flush()  # what was written before goes first
    data = memoryview(text.encode(out.encoding or "utf-8", "backslashreplace"))
    while data:
        data = data[os.write(fd, data) :]


class StdoutFile:
    """The standard output as rich's console writes it: each write whole or an error."""

    def write(self, text: str) -> int:
        write_stdout(text)
        return len(text)

    def flush(self) -> None:
        if sys.stdout is not None:
            sys.stdout.flush()

    def isatty(self) -> bool:
        return sys.stdout is not None and sys.stdout.isatty()

    def fileno(self) -> int:
        if sys.stdout is None:
            raise _closed()
        return sys.stdout.fileno()

    @property
    def encoding(self) -> str:
        return (sys.stdout.encoding if sys.stdout is not None else None) or "utf-8"


class PipeConsole(Console):
    """rich's console, except that a closed pipe is raised (rich's own handling exits with
    status 1, which means a plugin failed here)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def stdout_console() -> Console:
    """A console on the standard output that never loses a closed pipe."""
    return PipeConsole(file=cast(IO[str], StdoutFile()))
