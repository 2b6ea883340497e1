"""Reading sweep files: TOML in, a checked :class:`SweepSpec` out.

A sweep names a base scenario, the axes that change it (dotted key paths into its TOML, each
with a list of values or a range), the vendors, the lookup policies (``native``: each
vendor's own rule) and the seeds. Every problem is collected and reported at once, with the
sweep file and the key path, through the scenario loader's :class:`ScenarioError`, before
anything runs; :mod:`ioasid_core.sweep.plan` then loads every expanded point.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import Final

import attrs

from ioasid_core.printable import printable
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.scenario.reader import (
    Reader,
    ScenarioError,
    ScenarioProblem,
    describe,
    location,
    toml_problem,
)
from ioasid_core.sweep.paths import KeyPath, PathError, base_value, parse_path, resolve_problem

__all__ = [
    "MAX_AXIS_VALUES",
    "MAX_FILE_BYTES",
    "MAX_POINTS",
    "MAX_SEEDS",
    "NATIVE",
    "Axis",
    "Point",
    "SweepSpec",
    "bundled_examples",
    "load_sweep",
    "parse_sweep",
]

NATIVE: Final = "native"
"""The policy name that stands for each vendor's own rule (its ``default_policy``)."""
MAX_AXIS_VALUES: Final = 10_000
"""The most values one axis may have (a range's ``points`` too)."""
MAX_POINTS: Final = 100_000
"""The most points (combinations of axis values) a sweep may have: each is loaded and
checked before the first run, so a typo of a few zeros should fail at once."""
MAX_SEEDS: Final = 10_000
"""The most seeds (replicas) of each point."""
MAX_FILE_BYTES: Final = 16 << 20
"""The largest sweep or base scenario file read (both are hand-written text)."""
MAX_SEED: Final = (1 << 63) - 1
"""Seeds are stored as 64-bit integers in ``results.parquet``."""

_TOP_KEYS: Final = frozenset(
    {"name", "description", "base", "axes", "vendors", "policies", "seeds", "plot"}
)
_RANGE_KINDS: Final = ("linear", "log")
_POLICY_NAMES: Final = (*(p.value for p in LookupPolicy), NATIVE)
_EXAMPLE_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")

Scalar = int | float | str | bool


@attrs.frozen
class Axis:
    """One axis: its values, and what each value sets in the base scenario.

    A plain axis (``"platform.units[0].queue_entries" = [64, 256]``) sets its own path to its
    value; a linked one (``devices = { values = [1, 2], set = { ... } }``) sets each path
    of ``set`` to that path's entry at the same position.
    """

    name: str
    """The column in the results: the key path of a plain axis, the table key of a linked one."""
    values: tuple[Scalar, ...]
    sets: tuple[tuple[KeyPath, tuple[object, ...]], ...]
    """Per key path, one value for each of ``values``."""


@attrs.frozen
class Point:
    """One combination of axis values, and the changes it makes to the base scenario."""

    index: int
    values: tuple[Scalar, ...]
    """In axis order."""
    changes: tuple[tuple[KeyPath, object], ...]

    def label(self, axes: tuple[Axis, ...]) -> str:
        """``point 3 (queue_entries=64, devices=2)``: how messages name it."""
        shown = ", ".join(f"{a.name}={v!r}" for a, v in zip(axes, self.values, strict=True))
        return f"point {self.index} ({shown})" if shown else f"point {self.index}"


@attrs.frozen
class SweepSpec:
    """A checked sweep file (the points are not loaded yet: see ``plan_sweep``)."""

    name: str
    description: str
    source: str
    digest: str
    """SHA-256 of the sweep file's bytes."""
    base_source: str
    base_digest: str
    base: Mapping[str, object] = attrs.field(repr=False)
    """The base scenario's TOML document."""
    axes: tuple[Axis, ...]
    vendors: tuple[str, ...] | None
    """None: every installed vendor."""
    policies: tuple[str, ...]
    """Policy names, ``native`` among them possibly."""
    seeds: tuple[int, ...]
    plot: tuple[str, ...]

    def points(self) -> list[Point]:
        """Every combination of axis values, the last axis changing fastest."""
        out = []
        choices = [range(len(axis.values)) for axis in self.axes]
        for index, picks in enumerate(product(*choices)):
            values = tuple(axis.values[i] for axis, i in zip(self.axes, picks, strict=True))
            changes = tuple(
                (path, column[i])
                for axis, i in zip(self.axes, picks, strict=True)
                for path, column in axis.sets
            )
            out.append(Point(index, values, changes))
        return out

    @property
    def point_count(self) -> int:
        return math.prod(len(axis.values) for axis in self.axes)


def bundled_examples() -> dict[str, Path]:
    """The example scenarios shipped with ioasid, by name (``null-set-search``): the
    package's ``ioasid_core/examples``."""
    from ioasid_core.scenario.bundled import bundled_scenarios

    return bundled_scenarios()


def _read(path: Path, what: str, shown: str) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``; ``ScenarioError`` else."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _fail(shown, "no such file") from None
    except OSError as exc:
        raise _fail(shown, f"cannot read it: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise _fail(shown, f"is a directory, expected a {what} (TOML)")
    if not stat.S_ISREG(info.st_mode):
        raise _fail(shown, f"is not a regular file, expected a {what} (TOML)")
    if info.st_size > MAX_FILE_BYTES:
        raise _fail(shown, f"is {info.st_size} bytes; a {what} is at most {MAX_FILE_BYTES}")
    try:
        return path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise _fail(shown, f"cannot read it: {exc.strerror or exc}") from None


def _fail(source: str, text: str) -> ScenarioError:
    return ScenarioError(source, [ScenarioProblem("", text)])


def _toml(raw: bytes, source: str) -> dict[str, object]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = location(raw[: exc.start].decode("utf-8", errors="replace"))
        raise _fail(source, f"{where}: expected UTF-8 text (TOML files are UTF-8)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, toml_problem(str(exc), text)) from None
    except RecursionError:
        raise _fail(source, "invalid TOML: nested too deeply") from None


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check the sweep file at ``path`` and its base scenario's document."""
    source = os.fspath(path)
    raw = _read(Path(path), "sweep file", source)
    return parse_sweep(_toml(raw, source), source, hashlib.sha256(raw).hexdigest())


def parse_sweep(data: Mapping[str, object], source: str, digest: str = "") -> SweepSpec:
    """Check ``data`` (a parsed sweep file) and read its base scenario's document.

    Relative base paths are relative to the folder of ``source``.
    """
    checker = _Checker(source)
    spec = checker.sweep(data, digest)
    if checker.problems or spec is None:
        raise ScenarioError(source, checker.problems or [ScenarioProblem("", "not a sweep")])
    return spec


class _Checker:
    """Walks a sweep document, collecting every problem (the scenario parser's primitives)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parser = Reader()
        self.problems = self.parser.problems

    def bad(self, path: str, text: str) -> None:
        self.parser.bad(path, text)

    def sweep(self, data: Mapping[str, object], digest: str) -> SweepSpec | None:
        p = self.parser
        top = p.table(data, "")
        if top is None:
            return None
        p.unknown_keys(top, "", _TOP_KEYS)
        # A file's name is no checked name: escaped, as a ``name`` key with ESC is refused.
        name = p.name(top, "", "name") or printable(Path(self.source).stem)
        description = p.string(top, "", "description") or ""
        base = self.base(top)
        vendors = self.vendors(top)
        policies = self.policies(top)
        seeds = self.seeds(top, base)
        plot = tuple(n for _, n in p.names(top, "", "plot"))
        if base is None:
            return None
        base_source, base_digest, document = base
        axes = self.axes(top, document)
        if self.problems:
            return None
        spec = SweepSpec(
            name=name,
            description=description,
            source=self.source,
            digest=digest,
            base_source=base_source,
            base_digest=base_digest,
            base=document,
            axes=axes,
            vendors=vendors,
            policies=policies,
            seeds=seeds,
            plot=plot,
        )
        if spec.point_count > MAX_POINTS:
            self.bad("axes", f"at most {MAX_POINTS} points, got {spec.point_count}")
        return spec

    def base(self, top: Mapping[str, object]) -> tuple[str, str, dict[str, object]] | None:
        value = self.parser.name(top, "", "base", required=True)
        if value is None:
            return None
        examples = bundled_examples()
        if _EXAMPLE_NAME.fullmatch(value):
            if value not in examples:
                known = ", ".join(examples) or "none installed"
                self.bad("base", f"no bundled example named {value!r} (known: {known})")
                return None
            path = examples[value]
        else:
            path = Path(self.source).parent / value
        try:
            raw = _read(path, "scenario file", str(path))
            document = _toml(raw, str(path))
        except ScenarioError as exc:
            self.bad("base", f"the base scenario cannot be read: {exc}")
            return None
        return str(path), hashlib.sha256(raw).hexdigest(), document

    def vendors(self, top: Mapping[str, object]) -> tuple[str, ...] | None:
        if "vendors" not in top:
            return None
        names = self.parser.names(top, "", "vendors")
        if not names and isinstance(top["vendors"], list):
            self.bad("vendors", "expected at least one vendor name (leave it out for all)")
        return tuple(n for _, n in names)

    def policies(self, top: Mapping[str, object]) -> tuple[str, ...]:
        if "policies" not in top:
            return (NATIVE,)
        out = []
        for where, name in self.parser.names(top, "", "policies"):
            if name not in _POLICY_NAMES:
                self.bad(where, f"expected a policy ({', '.join(_POLICY_NAMES)}), got {name!r}")
            else:
                out.append(name)
        if not out and not self.problems:
            self.bad("policies", f"expected at least one of {', '.join(_POLICY_NAMES)}")
        return tuple(out)

    def seeds(
        self, top: Mapping[str, object], base: tuple[str, str, dict[str, object]] | None
    ) -> tuple[int, ...]:
        value = top.get("seeds")
        if value is None:
            seed = base[2].get("seed", 0) if base else 0
            return (seed,) if isinstance(seed, int) and not isinstance(seed, bool) else (0,)
        if isinstance(value, Mapping):
            table = self.parser.table(value, "seeds")
            assert table is not None
            self.parser.unknown_keys(table, "seeds", ("first", "count"))
            first = self.parser.integer(table, "seeds", "first", 0, MAX_SEED) or 0
            count = self.parser.integer(table, "seeds", "count", 1, MAX_SEEDS, required=True)
            if count is None:
                return ()
            if first + count - 1 > MAX_SEED:
                self.bad("seeds", f"the last seed is above {MAX_SEED}")
                return ()
            return tuple(range(first, first + count))
        if not isinstance(value, list):
            self.bad(
                "seeds",
                f"expected an array of integers or {{ first, count }}, got {describe(value)}",
            )
            return ()
        if not value:
            self.bad("seeds", "expected at least one seed")
        if len(value) > MAX_SEEDS:
            self.bad("seeds", f"at most {MAX_SEEDS} seeds, got {len(value)}")
            return ()
        out: list[int] = []
        for index, item in enumerate(value):
            where = f"seeds[{index}]"
            if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= MAX_SEED:
                self.bad(where, f"expected an integer in 0..{MAX_SEED}, got {describe(item)}")
            elif item in out:
                self.bad(where, f"seed {item} is listed twice")
            else:
                out.append(item)
        return tuple(out)

    # ------------------------------------------------------------------ axes

    def axes(self, top: Mapping[str, object], document: Mapping[str, object]) -> tuple[Axis, ...]:
        if "axes" not in top:
            return ()
        table = self.parser.table(top["axes"], "axes")
        if table is None:
            return ()
        axes: list[Axis] = []
        targets: dict[KeyPath, str] = {}
        for key, value in table.items():
            where = f'axes."{key}"'
            if isinstance(value, Mapping) and ("values" in value or "set" in value):
                axis = self.linked(key, value, where, document, targets)
            else:
                axis = self.plain(key, value, where, document, targets)
            if axis is not None:
                axes.append(axis)
        return tuple(axes)

    def target(
        self, text: str, where: str, document: Mapping[str, object], targets: dict[KeyPath, str]
    ) -> KeyPath | None:
        try:
            path = parse_path(text)
        except PathError as exc:
            self.bad(where, str(exc))
            return None
        problem = resolve_problem(document, path)
        if problem is not None:
            self.bad(where, problem)
            return None
        if path in targets:
            self.bad(where, f"{text} is changed by another axis too ({targets[path]})")
            return None
        if path == ("seed",):
            self.bad(where, "the scenario's seed is set by `seeds`, not by an axis")
            return None
        targets[path] = where
        return path

    def plain(
        self,
        key: str,
        value: object,
        where: str,
        document: Mapping[str, object],
        targets: dict[KeyPath, str],
    ) -> Axis | None:
        path = self.target(key, where, document, targets)
        values = self.values(value, where, base_value(document, path) if path else None)
        if path is None or values is None:
            return None
        return Axis(key, values, ((path, values),))

    def linked(
        self,
        key: str,
        value: Mapping[str, object],
        where: str,
        document: Mapping[str, object],
        targets: dict[KeyPath, str],
    ) -> Axis | None:
        table = self.parser.table(value, where)
        assert table is not None
        self.parser.unknown_keys(table, where, ("values", "set"))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            self.bad(where, "a linked axis is named by a plain word (its column in the results)")
        values = None
        if "values" not in table:
            self.parser.missing(where, "values", "an array: the axis's values, one per point")
        else:
            values = self.values(table["values"], f"{where}.values", None)
        sets = self.parser.table(table.get("set", {}), f"{where}.set")
        if not sets:
            self.bad(f"{where}.set", "expected a table of key path = [one value per axis value]")
            return None
        columns: list[tuple[KeyPath, tuple[object, ...]]] = []
        for text, column in sets.items():
            at = f'{where}.set."{text}"'
            path = self.target(text, at, document, targets)
            if not isinstance(column, list):
                self.bad(
                    at, f"expected an array (one value per axis value), got {describe(column)}"
                )
                continue
            if values is not None and len(column) != len(values):
                self.bad(
                    at, f"expected {len(values)} values (one per axis value), got {len(column)}"
                )
                continue
            if path is not None:
                columns.append((path, tuple(column)))
        if values is None or len(columns) != len(sets):
            return None
        return Axis(key, values, tuple(columns))

    def values(self, value: object, where: str, base: object) -> tuple[Scalar, ...] | None:
        """An axis's values: a non-empty array of scalars, or a range table."""
        if isinstance(value, Mapping):
            return self.range(value, where, base)
        if not isinstance(value, list):
            self.bad(
                where,
                f"expected an array of values or a range table "
                f"({{ linear = [a, b], points = n }} or {{ log = ... }}), got "
                f"{describe(value)}",
            )
            return None
        if not value:
            self.bad(where, "expected at least one value (an empty axis has no points)")
            return None
        if len(value) > MAX_AXIS_VALUES:
            self.bad(where, f"at most {MAX_AXIS_VALUES} values, got {len(value)}")
            return None
        out: list[Scalar] = []
        for index, item in enumerate(value):
            at = f"{where}[{index}]"
            if not isinstance(item, int | float | str | bool):
                self.bad(at, f"expected a number, string or boolean, got {describe(item)}")
            elif isinstance(item, float) and not math.isfinite(item):
                self.bad(at, f"expected a finite number, got {item}")
            elif any(type(item) is type(o) and item == o for o in out):
                self.bad(at, f"{item!r} is listed twice")
            else:
                out.append(item)
        kinds = {
            "a number"
            if isinstance(v, int | float) and not isinstance(v, bool)
            else describe(v).split(" (")[0]
            for v in out
        }
        if len(kinds) > 1:
            self.bad(where, f"expected values of one kind, got {' and '.join(sorted(kinds))}")
            return None
        return tuple(out) if len(out) == len(value) else None

    def range(
        self, value: Mapping[str, object], where: str, base: object
    ) -> tuple[Scalar, ...] | None:
        table = self.parser.table(value, where)
        assert table is not None
        self.parser.unknown_keys(table, where, (*_RANGE_KINDS, "points"))
        kinds = [k for k in _RANGE_KINDS if k in table]
        points = self.parser.integer(table, where, "points", 1, MAX_AXIS_VALUES, required=True)
        if len(kinds) != 1:
            self.bad(where, "expected exactly one of linear = [a, b] or log = [a, b]")
            return None
        kind = kinds[0]
        bounds = table[kind]
        at = f"{where}.{kind}"
        if not (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            and all(math.isfinite(b) for b in bounds)
        ):
            self.bad(at, f"expected [low, high], two finite numbers, got {describe(bounds)}")
            return None
        low, high = float(bounds[0]), float(bounds[1])
        if kind == "log" and (low <= 0 or high <= 0):
            self.bad(at, f"a log range needs positive bounds, got [{bounds[0]}, {bounds[1]}]")
            return None
        if points is None:
            return None
        # Integers when the bounds are (``[64, 4096]``), or when the base has an integer
        # there and the bounds are whole (``[1e3, 1e6]`` for a count).
        whole = all(isinstance(b, int) for b in bounds) or (
            isinstance(base, int)
            and not isinstance(base, bool)
            and all(float(b).is_integer() for b in bounds)
        )
        return _spread(kind, low, high, points, whole=whole)


def _spread(kind: str, low: float, high: float, points: int, *, whole: bool) -> tuple[Scalar, ...]:
    """``points`` values from ``low`` to ``high``, evenly (``linear``) or by a constant ratio
    (``log``); both ends exact. ``whole``: rounded to integers, repeats dropped."""
    raw: list[float] = []
    for i in range(points):
        t = i / (points - 1) if points > 1 else 0.0
        value = low * (high / low) ** t if kind == "log" else low + (high - low) * t
        raw.append(float(f"{value:.12g}"))
    if points > 1:
        raw[-1] = high
    if not whole:
        return tuple(dict.fromkeys(raw))
    return tuple(dict.fromkeys(round(v) for v in raw))
