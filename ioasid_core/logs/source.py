"""Where log text comes from: files and standard input, read line by line in bounded memory.

A line longer than :data:`MAX_LINE` bytes (a binary file, a log without newlines) is cut
there and the rest of it skipped: it still counts as one line, and memory stays bounded
whatever the input. Bytes that are not UTF-8 become U+FFFD, never an error. A stream that
starts with a UTF-16 byte order mark (and text) is read as UTF-16: Windows PowerShell 5 writes
redirected output so.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import BinaryIO, Final

from ioasid_core.logs.normalise import WEB_SPACES

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


_UTF16: Final = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
"""Byte order marks of UTF-16 text: what Windows PowerShell 5's ``>`` writes (``ssh host
dmesg > log.txt``). A UTF-8 mark (Notepad's) is taken off by the normaliser."""


def _utf16(start: bytes) -> str | None:
    """The UTF-16 encoding ``start`` is in, if it begins with a byte order mark and then an
    ASCII character in that encoding (a log begins with text: binary data that happens to
    begin with ``FF FE`` stays bytes)."""
    encoding = _UTF16.get(start[:2])
    if encoding is None or len(start) < 4:
        return None
    low, high = (start[2], start[3]) if encoding == "utf-16-le" else (start[3], start[2])
    return encoding if high == 0 and 0 < low < 0x80 else None


def iter_lines(stream: BinaryIO, name: str, limit: int = MAX_LINE) -> Iterator[str]:
    """Every line of ``stream``, newline and all, at most ``limit`` bytes each (see above).
    UTF-8, or UTF-16 when the stream starts with its byte order mark. ``InputError`` naming
    ``name`` if reading fails part way."""
    readline = stream.readline
    encoding = "utf-8"
    first = True
    try:
        while True:
            raw = readline(limit)
            if not raw:
                return
            chunk = raw
            if first:
                first = False
                encoding = _utf16(raw) or encoding
                if encoding != "utf-8":
                    chunk = raw[2:]
            if encoding == "utf-16-le" and raw.endswith(b"\n"):
                chunk += stream.read(1)  # the newline's second byte: b"\n\x00"
            if len(raw) == limit and not raw.endswith(b"\n"):
                rest = raw
                while rest and not rest.endswith(b"\n"):  # skip the rest of the long line
                    rest = readline(limit)
                if encoding == "utf-16-le" and rest:
                    stream.read(1)
            line = chunk.decode(encoding, "replace")
            if "\xa0" in line or "\u202f" in line:  # before any search: "fault\xa0from\xa0EP"
                line = line.translate(WEB_SPACES)
            yield line
    except OSError as exc:
        raise InputError(f"cannot read {name!r}: {exc.strerror or exc}") from exc
