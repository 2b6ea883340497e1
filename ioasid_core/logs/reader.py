"""The streaming driver of ``ioasid logs``: lines in, records out, in constant memory.

One compiled search per line picks the lines any vendor cares about (its ``triggers``) and
the ``callbacks suppressed`` lines; every other line costs only that search. A picked line is
normalised and handed to the parser of the vendor whose trigger matched first (then to the
others whose triggers match, if that one says it is not its line). Records come out in line
order: one a parser still holds (waiting for the rest of it) holds back the later ones; it is
given up when a picked line comes :data:`HOLD_LINES` lines after it (or at the end). A parser
that raises is reported and switched off; the others go on.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from heapq import heappop
from typing import Final, TypeAlias

import attrs

from ioasid_core.logs.format import MAX_JOINS, MORE, LogFormat, LogItem, LogParser, ParseResult
from ioasid_core.logs.normalise import LogLine, normalise
from ioasid_core.logs.record import KINDS, LogRecord, Unrecognised

__all__ = ["HOLD_LINES", "LogReader", "LogStats", "ParserFailure"]

HOLD_LINES: Final = 64
"""How long (in lines) a parser may hold a record waiting for the rest of it."""
_MAX_JOINED: Final = 4096
"""No joined record grows past this many characters (a wrapped record is a few lines)."""
_SUPPRESSED: Final = "callbacks suppressed"
_PARSER_METHODS: Final = ("parse", "expire", "close")
"""Checked by name: ``isinstance`` on a runtime protocol costs more than a short stream."""
_WIDE: Final = 1 << 64
"""No field of a record is this wide (an address, an ID): a run of digits in a paste is not a
value, and ``--json`` could not even print one past 4300 digits."""
_TEXTS: Final = 256  # a power of two past HOLD_LINES + MAX_JOINS: a held record's first line
_RATELIMIT: Final = re.compile(r"\b(\w+): (\d{1,18}) callbacks suppressed")


@attrs.frozen
class ParserFailure:
    """A vendor's parser raised at ``line``; it read nothing after that."""

    vendor: str
    line: int
    error: str


@attrs.define
class LogStats:
    """What one read saw, for the summary line."""

    lines: int = 0
    records: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    unrecognised: int = 0
    suppressed: int = 0
    suppressed_by_vendor: Counter[str] = attrs.field(factory=Counter)
    failures: list[ParserFailure] = attrs.field(factory=list)


class LogReader:
    """Reads log lines with the given vendors' formats; ``stats`` fills in as it reads.

    ``ValueError`` naming the vendor when a format's trigger is not a valid expression.
    """

    def __init__(self, formats: Sequence[LogFormat]) -> None:
        self.formats = tuple(formats)
        self.stats = LogStats()
        self._ratelimited: dict[str, str] = {}
        owners: dict[str, list[int]] = {}  # trigger -> the formats that name it, in order
        self._own: list[frozenset[str]] = []
        for index, fmt in enumerate(self.formats):
            triggers = tuple(fmt.triggers)
            if not triggers or not all(isinstance(t, str) and t for t in triggers):
                raise ValueError(
                    f"log format of vendor {fmt.vendor!r}: triggers must be non-empty strings, "
                    f"got {triggers!r}"
                )
            self._own.append(frozenset(triggers))
            for trigger in triggers:
                owners.setdefault(trigger, []).append(index)
            for function in fmt.ratelimited:
                self._ratelimited.setdefault(function, fmt.vendor)
        # One alternation of literals, shaped as a trie: at each position of a line the
        # engine follows one branch per character, however many words there are.
        self._trigger = re.compile(trie_pattern({*owners, _SUPPRESSED}))
        self._owners = {word: tuple(found) for word, found in owners.items()}
        self._owner = {word: found[0] for word, found in owners.items()}

    def read(self, lines: Iterable[str], *, first_line: int = 1) -> Iterator[LogItem]:
        """Every record and unrecognised line of ``lines``, in line order (lazily)."""
        return _Run(self, first_line).run(lines)


class _Run:
    """One pass over one stream: fresh parsers, the reorder heap, the wrapped line pending."""

    def __init__(self, reader: LogReader, first_line: int) -> None:
        self.reader = reader
        self.stats = reader.stats
        self.formats = reader.formats
        self.parsers: list[LogParser | None] = []
        for fmt in self.formats:
            try:
                parser = fmt.new_parser()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self.stats.failures.append(ParserFailure(fmt.vendor, first_line, error))
                self.parsers.append(None)
                continue
            if not all(hasattr(parser, m) for m in _PARSER_METHODS):
                error = f"new_parser returned {parser!r}, not a LogParser"
                self.stats.failures.append(ParserFailure(fmt.vendor, first_line, error))
                self.parsers.append(None)
                continue
            self.parsers.append(parser)
        self.held_by: list[int | None] = [None] * len(self.parsers)
        self.held: int | None = None
        self.heap: list[tuple[int, int, LogItem]] = []
        self.seq = 0
        self.first_line = first_line
        self.texts: list[tuple[int, str]] = [(0, "")] * _TEXTS  # recent picked lines, by number

    # -- calling parsers safely

    def _guard(self, index: int, number: int, call: Callable[[], object]) -> object:
        try:
            return call()
        except Exception as exc:
            vendor = self.formats[index].vendor
            self.stats.failures.append(
                ParserFailure(vendor, number, f"{type(exc).__name__}: {exc}")
            )
            if index < len(self.parsers):
                self.parsers[index] = None
                self._set_held(index, None)
            return None

    def _parse(self, index: int, line: LogLine, final: bool) -> ParseResult:
        parser = self.parsers[index]
        if parser is None:
            return None
        try:
            result = parser.parse(line, final)
        except Exception as exc:
            self._fail(index, line.number, f"{type(exc).__name__}: {exc}")
            return None
        if result is MORE:
            return None if final else result  # a parser that cannot decide: not its line
        if result is not None and type(result) is not list and not isinstance(result, Sequence):
            self._fail(index, line.number, f"parse returned {result!r}")
            return None
        held = parser.held_from
        if held != self.held_by[index]:
            self._set_held(index, held if isinstance(held, int) else None)
        return result

    def _fail(self, index: int, number: int, error: str) -> None:
        vendor = self.formats[index].vendor
        self.stats.failures.append(ParserFailure(vendor, number, error))
        self.parsers[index] = None
        self._set_held(index, None)

    def _note_held(self, index: int, parser: LogParser) -> None:
        held = getattr(parser, "held_from", None)
        if held != self.held_by[index]:
            self._set_held(index, held if isinstance(held, int) else None)

    def _set_held(self, index: int, held: int | None) -> None:
        self.held_by[index] = held
        self.held = min((h for h in self.held_by if h is not None), default=None)

    def _collect(self, index: int, number: int, call: Callable[[LogParser], object]) -> None:
        """Push what ``call(parser)`` returns (``expire``, ``close``)."""
        parser = self.parsers[index]
        if parser is None:
            return
        items = self._guard(index, number, lambda: call(parser))
        if self.parsers[index] is None:
            return
        if not isinstance(items, Sequence):
            self._fail(index, number, f"returned {items!r}, not a sequence of records")
            return
        self._note_held(index, parser)
        self._push(index, number, items)

    # -- output in line order

    def _push(self, index: int, number: int, items: Sequence[LogItem]) -> None:
        stats = self.stats
        heap = self.heap
        for given in items:
            item = given
            if isinstance(item, LogRecord):
                if item.kind not in KINDS:
                    self._fail(index, number, f"record kind {item.kind!r} is not one of {KINDS}")
                    return
                if not _fits(item):
                    item = self._too_wide(item)
                    stats.unrecognised += 1
                else:
                    stats.records[item.vendor, item.kind] += 1
            elif isinstance(item, Unrecognised):
                stats.unrecognised += 1
            else:
                self._fail(index, number, f"returned {item!r}, not a LogRecord or Unrecognised")
                return
            self.seq += 1
            heapq.heappush(heap, (item.line, self.seq, item))

    def _too_wide(self, record: LogRecord) -> Unrecognised:
        """``record``'s first line as unrecognised (its text if still known)."""
        number, text = self.texts[record.line & (_TEXTS - 1)]
        return Unrecognised(
            record.line, text if number == record.line else "", "a number wider than 64 bits"
        )

    def _release(self) -> Iterator[LogItem]:
        heap = self.heap
        held = self.held
        while heap and (held is None or heap[0][0] < held):
            yield heapq.heappop(heap)[2]

    # -- the pass

    def run(self, lines: Iterable[str]) -> Iterator[LogItem]:
        stats = self.stats
        search = self.reader._trigger.search
        owner = self.reader._owner
        pending: tuple[int, LogLine, int] | None = None
        number = self.first_line - 1
        for number, text in enumerate(lines, self.first_line):
            match = search(text)
            if pending is not None:
                pending, consumed = self._continue(pending, number, text, match is not None)
                if self.heap:
                    yield from self._release()
                if consumed:
                    continue
            if match is None:
                continue  # a held record is given up at the next picked line, or at the end
            if self.held is not None and number - self.held > HOLD_LINES:
                cutoff = number - HOLD_LINES
                for index in range(len(self.parsers)):
                    self._collect(index, number, partial(_expire, before=cutoff))
                yield from self._release()
            word = match.group()
            if word == _SUPPRESSED:
                self._suppressed(text)
                continue
            line = normalise(number, text)
            self.texts[number & (_TEXTS - 1)] = (number, line.text)  # as normalised: no escapes
            index = owner[word]
            result = self._parse(index, line, False)
            if result is None:
                index, result = self._others(index, line, text, match.end())
                if result is None and _SUPPRESSED in text:  # a vendor's word came first
                    self._suppressed(text)
            if result is MORE:
                pending = (index, line, 0)
            elif result:
                if self.held is None and not self.heap and len(result) == 1:  # type: ignore[arg-type]
                    item = result[0]  # type: ignore[index]
                    if isinstance(item, LogRecord) and item.kind in KINDS and _fits(item):
                        stats.records[item.vendor, item.kind] += 1
                        yield item
                        continue
                self._push(index, number, result)  # type: ignore[arg-type]
            heap = self.heap
            if heap:  # the release loop, inline: this is the hot path
                held = self.held
                while heap and (held is None or heap[0][0] < held):
                    yield heappop(heap)[2]
        stats.lines = max(stats.lines, number)
        if pending is not None:
            self._finish(pending)
        for index in range(len(self.parsers)):
            self._collect(index, number, lambda p: p.close())
        self.held = None
        yield from self._release()

    def _continue(
        self, pending: tuple[int, LogLine, int], number: int, text: str, triggered: bool
    ) -> tuple[tuple[int, LogLine, int] | None, bool]:
        """Join ``text`` to the pending cut record if it continues it (then it is consumed);
        else decide the pending record (``final``) and leave ``text`` to be read on its own.
        A line holding a trigger is never a continuation: it starts something of its own."""
        index, line, joins = pending
        nxt = None if triggered or joins >= MAX_JOINS else normalise(number, text)
        if (
            nxt is not None
            and not nxt.header
            and nxt.body
            and len(line.body) + len(nxt.body) < _MAX_JOINED
        ):
            joined = line.joined(nxt)
            result = self._parse(index, joined, False)
            if result is MORE:
                return (index, joined, joins + 1), True
            if result is not None:
                if result:
                    self._push(index, number, result)  # type: ignore[arg-type]
                return None, True
        self._finish(pending)
        return None, False

    def _finish(self, pending: tuple[int, LogLine, int]) -> None:
        index, line, _ = pending
        result = self._parse(index, line, True)
        if result is None:
            index, result = self._others(index, line, line.text)
            if result is MORE:
                result = None
        if result and result is not MORE:
            self._push(index, line.number, result)  # type: ignore[arg-type]

    def _others(
        self, tried: int, line: LogLine, text: str, after: int = 0
    ) -> tuple[int, ParseResult]:
        """Another vendor whose trigger is in ``text`` and reads ``line``: a line may carry
        several vendors' words. Past ``after`` (the first match) first, then anywhere."""
        search = self.reader._trigger.search
        owners = self.reader._owners
        seen = {tried}
        for start in (after, 0):
            match = search(text, start)
            while match is not None:
                for index in owners.get(match.group(), ()):
                    if index not in seen:
                        seen.add(index)
                        result = self._parse(index, line, False)
                        if result is not None:
                            return index, result
                match = search(text, match.end())
        return tried, None

    def _suppressed(self, text: str) -> None:
        for match in _RATELIMIT.finditer(text):
            vendor = self.reader._ratelimited.get(match.group(1))
            if vendor is not None:
                count = int(match.group(2))
                self.stats.suppressed += count
                self.stats.suppressed_by_vendor[vendor] += count


_Trie: TypeAlias = dict[str, "_Trie"]


def trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words`` (literals), as a trie: ``DMAR|DMA``
    becomes ``DMA(?:R)?``. Where one word is a prefix of another, the longer is tried first,
    so a match is always a whole word of the set."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # end of a word

    def build(node: _Trie) -> str:
        ends = "" in node
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return f"(?:{body})?"
        return body

    return build(trie)


def _fits(record: LogRecord) -> bool:
    """Whether every number of ``record`` is one a register or queue field can hold."""
    for value in (record.source_id, record.pasid, record.address, record.code, record.tag):
        if type(value) is int and not 0 <= value < _WIDE:
            return False
    return True


def _expire(parser: LogParser, before: int) -> Sequence[LogItem]:
    return parser.expire(before)
