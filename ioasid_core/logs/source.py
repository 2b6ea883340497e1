"""Where log text comes from: files and standard input, read line by line in bounded memory.

A line longer than :data:`MAX_LINE` bytes (a binary file, a log without newlines) is cut
there and the rest of it skipped: it still counts as one line, and memory stays bounded
whatever the input. Bytes that are not UTF-8 become U+FFFD, never an error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import BinaryIO, Final

__all__ = ["MAX_LINE", "STDIN", "InputError", "iter_lines", "open_input"]

MAX_LINE: Final = 64 * 1024
STDIN: Final = "-"


class InputError(Exception):
    """An input that cannot be read; the message names it."""


def open_input(path: str) -> BinaryIO:
    """The file (or standard input for ``-``), opened for reading; ``InputError`` naming it."""
    if path == STDIN:
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror or exc}") from exc


def iter_lines(stream: BinaryIO, name: str, limit: int = MAX_LINE) -> Iterator[str]:
    """Every line of ``stream``, newline and all, at most ``limit`` bytes each (see above).
    ``InputError`` naming ``name`` if reading fails part way."""
    readline = stream.readline
    try:
        while True:
            chunk = readline(limit)
            if not chunk:
                return
            if len(chunk) == limit and not chunk.endswith(b"\n"):
                rest = chunk
                while rest and not rest.endswith(b"\n"):  # skip the rest of the long line
                    rest = readline(limit)
            yield chunk.decode("utf-8", "replace")
    except OSError as exc:
        raise InputError(f"cannot read {name!r}: {exc.strerror or exc}") from exc
