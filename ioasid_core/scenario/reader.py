"""Reading a scenario's TOML: the file in, key paths, every problem collected at once.

Nothing here knows what a unit or a step is: :class:`Reader` reads typed values out of
tables and records each problem at its key path (``steps[3].device``), so that the platform,
the steps, the sections and the generators report in one voice and all at once. One
:class:`ScenarioError` lists each problem on its own line as ``<file>: <key path>: <what was
expected>``, so a user fixes a file in one pass.
"""

from __future__ import annotations

import datetime
import heapq
import math
import os
import re
import stat
import tomllib
from collections.abc import Collection, Mapping, Sequence
from typing import BinaryIO, Final, NamedTuple, TypeVar, get_args

from ioasid_core.errors import InvalidArgumentError
from ioasid_core.printable import printable
from ioasid_core.scenario.bounds import MAX_SCENARIO_BYTES, MAX_TIME_US
from ioasid_core.scenario.schema import PermName

__all__ = [
    "InputTooLarge",
    "Reader",
    "ScenarioError",
    "ScenarioProblem",
    "choose",
    "describe",
    "fail",
    "join",
    "known",
    "location",
    "num",
    "read_bounded",
    "read_toml",
    "toml_problem",
]

_T = TypeVar("_T")

PERMS: Final[tuple[PermName, ...]] = get_args(PermName)

_TOML_LOCATION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_AT_END = re.compile(r"^(?P<msg>.*) \(at end of document\)$")


class ScenarioProblem(NamedTuple):
    """One problem in a scenario file: where it is and what was expected there."""

    key_path: str
    """``steps[3].device``, ``platform.units[0].pasid_bits``; empty for the file as a whole."""
    expected: str


class ScenarioError(InvalidArgumentError):
    """A scenario file that cannot be replayed; the message has one line per problem.

    ``key_path`` and ``expected`` describe the first problem (in file order), ``problems``
    all of them, so that a caller can show one or all.
    """

    def __init__(self, source: str, problems: Sequence[ScenarioProblem]) -> None:
        if not problems:
            raise ValueError("a ScenarioError needs at least one problem")
        self.source = source
        self.problems = tuple(problems)
        self.key_path = self.problems[0].key_path
        self.expected = self.problems[0].expected
        # One line per problem, each escaped: a key or a file name may hold a newline or an
        # escape sequence, and the message reaches a terminal.
        super().__init__("\n".join(printable(_line(source, p)) for p in self.problems))

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, tuple[ScenarioProblem, ...]]]:
        # Exceptions pickle as cls(*args); ours takes (source, problems), not the message.
        return (type(self), (self.source, self.problems))


def _line(source: str, problem: ScenarioProblem) -> str:
    if problem.key_path:
        return f"{source}: {problem.key_path}: {problem.expected}"
    return f"{source}: {problem.expected}"


def read_toml(path: str | os.PathLike[str]) -> Mapping[str, object]:
    """The TOML document at ``path``; :class:`ScenarioError` naming the file (and the line and
    column) if it cannot be read, is not UTF-8 or is not TOML."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = read_bounded(file, MAX_SCENARIO_BYTES, "a scenario file")
    except InputTooLarge as exc:
        raise fail(source, str(exc)) from None
    except FileNotFoundError:
        raise fail(source, "no such file") from None
    except IsADirectoryError:
        raise fail(source, "is a directory, expected a scenario file (TOML)") from None
    except OSError as exc:
        raise fail(source, f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = location(raw[: exc.start].decode("utf-8", errors="replace"))
        raise fail(source, f"{where}: expected UTF-8 text (TOML files are UTF-8)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(source, toml_problem(str(exc), text)) from None
    except RecursionError:
        # tomllib recurses once per level of nested arrays or inline tables.
        raise fail(source, "invalid TOML: arrays or tables nested too deeply") from None
    return data


class InputTooLarge(ValueError):
    """A file bigger than a command reads (its message says how big, or that it goes on)."""


def read_bounded(file: BinaryIO, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of ``file``: a regular file's size is checked before reading,
    anything else (a device, a pipe: ``/dev/zero`` never ends) is read up to ``limit + 1``
    bytes. ``InputTooLarge`` past the limit, saying so of ``what`` ("a scenario file")."""
    try:
        size = os.fstat(file.fileno()).st_size
        regular = stat.S_ISREG(os.fstat(file.fileno()).st_mode)
    except (OSError, ValueError):  # not a real file: read it bounded
        size, regular = 0, False
    if regular and size > limit:
        raise InputTooLarge(f"{size:,} bytes, more than the {limit:,} {what} may have")
    data = file.read(limit + 1)
    if len(data) > limit:
        kind = "" if regular else "not a regular file, and "
        raise InputTooLarge(f"{kind}more than the {limit:,} bytes {what} may have")
    return data


def fail(source: str, text: str) -> ScenarioError:
    return ScenarioError(source, [ScenarioProblem("", text)])


def location(before: str) -> str:
    """``line L, column C`` of the character that follows ``before``."""
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f"line {line}, column {column}"


def toml_problem(message: str, text: str) -> str:
    """Restate tomllib's message as ``line L, column C: invalid TOML: <what>``.

    tomllib says "at end of document" rather than a position there; the end has a position
    too, and an editor wants one.
    """
    found = _TOML_LOCATION.match(message)
    if found:
        return (
            f"line {found['line']}, column {found['col']}: invalid TOML: "
            f"{found['msg'][:1].lower()}{found['msg'][1:]}"
        )
    found = _TOML_AT_END.match(message)
    if found:
        return (
            f"{location(text)} (end of file): invalid TOML: "
            f"{found['msg'][:1].lower()}{found['msg'][1:]}"
        )
    return f"invalid TOML: {message}"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: object) -> str:
    """What a TOML value is, in TOML's words, for "expected X, got Y"."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime.date | datetime.time):
        return "a date/time"
    return f"a {type(value).__name__}"


def num(value: int) -> str:
    """Large bounds read better in hex (they are bit widths: 0xffffffff, 0x4000000)."""
    return f"{value:#x}" if value >= 0x10000 else str(value)


def typed(value: int) -> str:
    """A value the file gave, as the user may have typed it: in decimal, and in hex too when
    large (TOML keeps no trace of which; ``count = 400000`` read as 0x61a80 alone puzzles)."""
    return f"{value} ({value:#x})" if abs(value) >= 0x10000 else str(value)


def _span(low: int, high: int | None) -> str:
    """An integer's allowed range, for a message (built only when one is shown: an eager
    one per checked key cost more than the check, millions of times on a big scenario)."""
    return f"in {num(low)}..{num(high)}" if high is not None else f">= {num(low)}"


def known(names: Collection[str], shown: int = 20) -> str:
    """The names, sorted; at most ``shown`` of them (a churn's processes may be millions:
    picked as they come, none copied)."""
    total = len(names)
    if not total:
        return "none declared"
    more = f", ... ({total - shown} more)" if total > shown else ""
    return ", ".join(heapq.nsmallest(shown, names)) + more


def choose(value: str, choices: tuple[_T, ...]) -> _T | None:
    """``value`` as the Literal it spells, or None; keeps the Literal types for mypy."""
    for choice in choices:
        if choice == value:
            return choice
    return None


class Reader:
    """Reads typed values out of a parsed document, collecting every problem it meets.

    A bad value is recorded and read as None, and reading goes on, so that one file shows
    all its problems at once.
    """

    def __init__(self) -> None:
        self.problems: list[ScenarioProblem] = []

    def bad(self, path: str, text: str) -> None:
        self.problems.append(ScenarioProblem(path, text))

    def table(self, value: object, path: str) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.bad(path, f"expected a table, got {describe(value)}")
            return None
        result: dict[str, object] = {}
        for key, item in value.items():
            if isinstance(key, str):
                result[key] = item
            else:
                self.bad(path, f"expected string keys, got {key!r}")
        return result

    def unknown_keys(
        self, table: Mapping[str, object], path: str, allowed: Collection[str]
    ) -> None:
        for key in table:
            if key not in allowed:
                self.bad(join(path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def missing(self, path: str, key: str, what: str) -> None:
        self.bad(join(path, key), f"required key is missing (expected {what})")

    def string(
        self, table: Mapping[str, object], path: str, key: str, *, required: bool = False
    ) -> str | None:
        if key not in table:
            if required:
                self.missing(path, key, "a string")
            return None
        value = table[key]
        if not isinstance(value, str):
            self.bad(join(path, key), f"expected a string, got {describe(value)}")
            return None
        return value

    def name(
        self, table: Mapping[str, object], path: str, key: str, *, required: bool = False
    ) -> str | None:
        """A string that names something: it may not be empty."""
        if key not in table:
            if required:
                self.missing(path, key, "a non-empty string")
            return None
        value = table[key]
        if not isinstance(value, str) or not value:
            self.bad(join(path, key), f"expected a non-empty string, got {describe(value)}")
            return None
        if not value.isprintable():
            # Names reach the terminal: an escape or carriage return would rewrite the screen.
            self.bad(join(path, key), f"expected printable characters only, got {describe(value)}")
            return None
        return value

    def integer(
        self,
        table: Mapping[str, object],
        path: str,
        key: str,
        low: int,
        high: int | None = None,
        *,
        required: bool = False,
    ) -> int | None:
        if key not in table:
            if required:
                self.missing(path, key, f"an integer {_span(low, high)}")
            return None
        value = table[key]
        # bool is an int in Python, never in TOML: `true` where a number belongs is a slip.
        if not isinstance(value, int) or isinstance(value, bool):
            self.bad(
                join(path, key), f"expected an integer {_span(low, high)}, got {describe(value)}"
            )
            return None
        if value < low or (high is not None and value > high):
            self.bad(join(path, key), f"expected an integer {_span(low, high)}, got {typed(value)}")
            return None
        return value

    def boolean(self, table: Mapping[str, object], path: str, key: str) -> bool | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, bool):
            self.bad(join(path, key), f"expected a boolean, got {describe(value)}")
            return None
        return value

    def array(self, table: Mapping[str, object], path: str, key: str) -> list[object]:
        if key not in table:
            return []
        value = table[key]
        if not isinstance(value, list | tuple):
            self.bad(join(path, key), f"expected an array, got {describe(value)}")
            return []
        return list(value)

    def tables(
        self, table: Mapping[str, object], path: str, key: str
    ) -> list[tuple[str, Mapping[str, object]]]:
        """An array of tables (``[[platform.units]]``), each with its key path."""
        found = []
        for index, item in enumerate(self.array(table, path, key)):
            where = f"{join(path, key)}[{index}]"
            entry = self.table(item, where)
            if entry is not None:
                found.append((where, entry))
        return found

    def names(self, table: Mapping[str, object], path: str, key: str) -> list[tuple[str, str]]:
        """An array of names, each with its key path; a repeated name is a problem."""
        found: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for index, item in enumerate(self.array(table, path, key)):
            where = f"{join(path, key)}[{index}]"
            if not isinstance(item, str) or not item:
                self.bad(where, f"expected a non-empty string, got {describe(item)}")
            elif item in seen:
                self.bad(where, f"{item!r} is listed twice (first at {seen[item]})")
            else:
                seen[item] = where
                found.append((where, item))
        return found

    def declare(
        self, registry: dict[str, str], kind: str, name: str | None, path: str
    ) -> str | None:
        if name is None:
            return None
        first = registry.get(name)
        if first is not None:
            self.bad(join(path, "name"), f"duplicate {kind} name {name!r} (first at {first})")
            return None
        registry[name] = path
        return name

    def refer(self, registry: Collection[str], kind: str, name: str | None, path: str) -> bool:
        """Whether ``name`` (already type-checked, None if absent or bad) names a ``kind``."""
        if name is None:
            return False
        if name not in registry:
            self.bad(path, f"no {kind} named {name!r} (known: {known(registry)})")
            return False
        return True

    def choice(
        self, table: Mapping[str, object], path: str, key: str, choices: tuple[_T, ...]
    ) -> _T | None:
        """A string that must be one of ``choices``; None if absent or bad (reported)."""
        value = self.string(table, path, key)
        if value is None:
            return None
        chosen = choose(value, choices)
        if chosen is None:
            listed = ", ".join(str(c) for c in choices)
            self.bad(join(path, key), f"expected one of {listed}, got {value!r}")
        return chosen

    def number(
        self, table: Mapping[str, object], path: str, key: str, *, positive: bool
    ) -> float | None:
        """Microseconds: ``at`` and ``delay`` may be 0 (default), an ``interval`` may not."""
        if key not in table:
            return None if positive else 0.0
        value = table[key]
        span = "> 0" if positive else ">= 0"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.bad(
                join(path, key),
                f"expected a number of microseconds {span}, got {describe(value)}",
            )
            return None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            self.bad(join(path, key), f"expected a finite number {span}, got {value}")
            return None
        if value > MAX_TIME_US:
            self.bad(join(path, key), f"expected at most {MAX_TIME_US:g} µs, got {value:g}")
            return None
        return float(value)

    def perm(self, path: str, table: Mapping[str, object]) -> tuple[PermName, ...] | None:
        if "perm" not in table:
            return None
        value = table["perm"]
        if not isinstance(value, list | tuple):
            self.bad(join(path, "perm"), f"expected an array of strings, got {describe(value)}")
            return None
        if not value:
            # Neither read nor write is what a stop marker looks like: ask for those by name.
            self.bad(
                join(path, "perm"),
                f"expected at least one of {', '.join(PERMS)} (use stop_markers for stop markers)",
            )
            return None
        perms: list[PermName] = []
        ok = True
        for index, item in enumerate(value):
            where = f"{path}.perm[{index}]"
            chosen = choose(item, PERMS) if isinstance(item, str) else None
            if chosen is None:
                shown = repr(item) if isinstance(item, str) else describe(item)
                self.bad(where, f"expected one of {', '.join(PERMS)}, got {shown}")
                ok = False
            elif chosen in perms:
                self.bad(where, f"{chosen!r} is listed twice")
                ok = False
            else:
                perms.append(chosen)
        return tuple(perms) if ok else None
