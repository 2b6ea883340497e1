"""The plugin side of ``ioasid logs``: how a vendor says what its driver prints.

A vendor plugin implements the ``ioasid_log_formats`` hook and returns :class:`LogFormat`
objects. The core reads every line once; a line none of a format's ``triggers`` match is never
shown to that format's parser, so a parser costs nothing on foreign lines. A parser is made
per stream (``new_parser``) and may keep state between lines (an SMMUv3 event header waiting
for its four dwords, a raw record waiting for the decoded lines of the same record).

What the core does before a parser sees a line (see :mod:`ioasid_core.logs.normalise`):
prefixes and timestamps are stripped (``LogLine.body``, ``LogLine.timestamp``), and a record
cut by line wrapping is joined: a parser that answers :data:`MORE` is called again with the
line joined to the next one, as long as that one has no header of its own and holds no
format's trigger (at most :data:`MAX_JOINS` times); then once more with ``final=True``, when it must
decide. ``N callbacks suppressed`` lines of the functions in ``ratelimited`` are counted by
the core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol, TypeAlias, runtime_checkable

import attrs

from ioasid_core.logs.normalise import LogLine
from ioasid_core.logs.record import LogRecord, Unrecognised

__all__ = [
    "MAX_JOINS",
    "MORE",
    "LogFormat",
    "LogItem",
    "LogParser",
    "More",
    "ParseResult",
]

MAX_JOINS: Final = 4
"""How many wrapped continuation lines one record may have."""


class More:
    """The type of :data:`MORE`."""

    _instance: More | None = None

    def __new__(cls) -> More:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MORE"


MORE: Final = More()
"""A parser's answer for a line that starts one of its records but is cut short: the core
gives it back joined with the next line (a wrapped paste)."""

LogItem: TypeAlias = LogRecord | Unrecognised
ParseResult: TypeAlias = Sequence[LogItem] | More | None
"""``None``: not this vendor's line. A sequence (maybe empty: the line was taken into the
parser's state): what the line completes. :data:`MORE`: see above."""


@runtime_checkable
class LogParser(Protocol):
    """One stream's parser for one vendor. It never raises on odd text: what looks like its
    record but cannot be read whole is an :class:`Unrecognised`, anything else ``None``."""

    held_from: int | None
    """The first line of the oldest record it still holds (waiting for more lines), or None:
    the core holds back later records until then, so the output stays in line order."""

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        """Read ``line``; with ``final`` a cut record must be decided (no :data:`MORE`)."""

    def expire(self, before: int) -> Sequence[LogItem]:
        """Give up what it holds that began before line ``before``: the rest never came."""

    def close(self) -> Sequence[LogItem]:
        """The stream ended: whatever it still holds."""


@attrs.frozen(kw_only=True)
class LogFormat:
    """What one vendor's driver prints, and a parser for it.

    ``triggers`` are literal strings (case-sensitive), one of which is in every line the
    parser needs to see: the driver's own words (``DMAR``, ``arm-smmu-v3``), never a bare
    ``fault``: they are searched as one alternation of literals, the cheapest search there
    is. ``ratelimited`` names the functions whose ``<function>: N callbacks suppressed``
    lines are this vendor's lost records. ``examples`` are lines it reads: the docs show
    them, the tests feed them, and ``ioasid bench`` mixes them into its log.
    """

    vendor: str
    triggers: tuple[str, ...]
    new_parser: Callable[[], LogParser]
    ratelimited: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    description: str = ""
