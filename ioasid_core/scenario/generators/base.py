"""What every generator kind is made of, and the parts several kinds share.

A kind is a :class:`GeneratorKind`: the spec it reads an entry into, its required and
optional keys (besides ``kind``, ``at`` and ``seed``), ``parse`` (an entry's table to a spec,
every problem reported through the :class:`Context`'s reader), ``expand`` (a spec and its
seeded ``random.Random`` to its steps, lazily and in time order) and ``work`` (the events
they stand for, counted without keeping them: the loader bounds a file's work before any).

A generated step is a :class:`~ioasid_core.scenario.schema.Step` built straight from the
spec, whose values were checked once when the entry was read: the loader checks per step
only what can differ from step to step (see ``StepChecker.generated``), and the replay walks
the expansion again instead of holding every step.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, Protocol, TypeVar

import attrs

from ioasid_core.scenario.bounds import MAX_BURST, WIRE_PASID_LIMIT
from ioasid_core.scenario.platform import Declared
from ioasid_core.scenario.reader import Reader, describe, join, num
from ioasid_core.scenario.schema import Step

__all__ = [
    "Context",
    "GeneratorKind",
    "GeneratorSpec",
    "Paced",
    "RawStep",
    "Windowed",
    "device_list",
    "draw_size",
    "fraction",
    "gap",
    "numbered",
    "pasid_refs",
    "size_range",
    "step_work",
    "streamed_work",
    "window",
]

RawStep = dict[str, object]
"""A step table as a file would spell it (``op``, ``at``, ...), before the step checks."""


class GeneratorSpec(Protocol):
    """What the expansion reads of every kind's spec."""

    @property
    def at(self) -> float: ...

    @property
    def seed(self) -> int | None: ...

    @property
    def where(self) -> str: ...


class Paced(Protocol):
    """A kind whose gaps are ``interval`` plus a seeded 0..``jitter`` µs."""

    @property
    def interval(self) -> float: ...

    @property
    def jitter(self) -> int: ...


class Windowed(Paced, Protocol):
    """A kind that holds at most ``live`` of its ``count`` names at once."""

    @property
    def at(self) -> float: ...

    @property
    def count(self) -> int: ...

    @property
    def live(self) -> int: ...

    @property
    def prefix(self) -> str: ...


_S = TypeVar("_S")


@attrs.frozen(kw_only=True)
class Context:
    """What a kind's ``parse`` reads through: the reader (values, problems) and the names the
    platform declared (a churn adds its processes)."""

    reader: Reader
    declared: Declared


@attrs.frozen(kw_only=True)
class GeneratorKind(Generic[_S]):
    """One kind of ``[[generators]]`` entry."""

    name: str
    """Its ``kind = "..."``."""
    spec: type[_S]
    required: frozenset[str]
    optional: frozenset[str]
    parse: Callable[[Context, str, Mapping[str, object], float | None, int | None], _S | None]
    """``(context, key path, table, at, seed)``: the spec, or None (problems reported)."""
    expand: Callable[[_S, random.Random], Iterator[Step]]
    """The spec's steps, one at a time, in time order (``at``, then the order made): the
    merge of several generators relies on it. Each step's ``where`` is
    ``<spec.where>/<n>``, ``n`` counting the steps as the kind makes them."""
    work: Callable[[_S, random.Random], int]
    """The events (:func:`step_work`) of ``expand``'s steps, with the same draws: from the
    spec alone where it can say, else counted as they come (:func:`streamed_work`)."""


def size_range(ctx: Context, table: Mapping[str, object], path: str, key: str) -> tuple[int, int]:
    """An integer >= 1, or ``[min, max]`` with 1 <= min <= max; (1, 1) when absent."""
    r = ctx.reader
    value = table.get(key, 1)
    where = join(path, key)
    expected = "an integer >= 1 or [min, max]"
    if isinstance(value, list | tuple):
        ok = len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_BURST for v in value
        )
        if ok and value[0] <= value[1]:
            return (int(value[0]), int(value[1]))
        r.bad(
            where,
            f"expected {expected} with 1 <= min <= max <= {num(MAX_BURST)}, got {list(value)!r}",
        )
        return (1, 1)
    size = r.integer(table, path, key, 1, MAX_BURST)
    return (1, 1) if size is None else (size, size)


def device_list(ctx: Context, table: Mapping[str, object], path: str) -> tuple[str, ...]:
    r, d = ctx.reader, ctx.declared
    found = r.names(table, path, "devices")
    if "devices" in table and isinstance(table["devices"], list | tuple) and not found:
        r.bad(join(path, "devices"), "expected at least one device name")
    return tuple(name for where, name in found if r.refer(d.devices, "device", name, where))


def pasid_refs(ctx: Context, value: object, where: str) -> tuple[str | int, ...]:
    """An array of PASID names or numbers (names are checked where they are used)."""
    r = ctx.reader
    if not isinstance(value, list | tuple) or not value:
        r.bad(
            where,
            f"expected a non-empty array of PASID names or numbers, got "
            f"{describe(value) if not isinstance(value, list | tuple) else 'an empty array'}",
        )
        return ()
    refs: list[str | int] = []
    for index, item in enumerate(value):
        is_name = isinstance(item, str) and item != ""
        is_number = (
            isinstance(item, int) and not isinstance(item, bool) and 0 <= item < WIRE_PASID_LIMIT
        )
        if isinstance(item, str | int) and (is_name or is_number):
            refs.append(item)
        else:
            r.bad(
                f"{where}[{index}]",
                f"expected a PASID name or a number in 0..{num(WIRE_PASID_LIMIT - 1)}, "
                f"got {describe(item)}",
            )
    return tuple(refs)


def fraction(ctx: Context, table: Mapping[str, object], path: str, key: str) -> float | None:
    """A probability in 0..1 (default 0.5)."""
    r = ctx.reader
    value = table.get(key, 0.5)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        shown = (
            describe(value)
            if isinstance(value, bool) or not isinstance(value, int | float)
            else value
        )
        r.bad(join(path, key), f"expected a number in 0..1, got {shown}")
        return None
    return float(value)


def gap(spec: Paced, rng: random.Random) -> float:
    return spec.interval + (rng.randint(0, spec.jitter) if spec.jitter else 0)


def window(
    spec: Windowed,
    rng: random.Random,
    opening: Callable[[str, int, float], Iterable[Step]],
    closing: Callable[[str, float], Step],
) -> Iterator[Step]:
    """``count`` names opened in turn, at most ``live`` open at once: the oldest is closed to
    make room, the rest at the end, oldest first; every gap drawn from the seed. Time only
    grows (each gap is at least ``interval`` > 0), so the steps come in time order."""
    held: deque[str] = deque()  # oldest first
    now = spec.at
    for n in range(spec.count):
        if len(held) == spec.live:
            yield closing(held.popleft(), now)
            now += gap(spec, rng)
        name = f"{spec.prefix}{n}"
        yield from opening(name, n, now)
        held.append(name)
        now += gap(spec, rng)
    while held:
        yield closing(held.popleft(), now)
        now += gap(spec, rng)


def numbered(where: str) -> Iterator[str]:
    """The key paths of a generator's steps, in the order it makes them:
    ``<where>/0``, ``<where>/1``, ..."""
    return (f"{where}/{n}" for n in itertools.count())


def step_work(step: Step) -> int:
    """The events a step stands for: itself, and each page request it sends (as the
    replay counts them: ``ioasid_core.replay.step_work``, which a test holds equal)."""
    if step.op == "page_requests":
        return 1 + step.groups * step.group_size + step.stop_markers
    return 1


def streamed_work(
    expand: Callable[[_S, random.Random], Iterator[Step]],
) -> Callable[[_S, random.Random], int]:
    """A kind's ``work`` that counts its steps as ``expand`` makes them, keeping none: for
    kinds whose work depends on their draws (sizes, frees)."""

    def work(spec: _S, rng: random.Random) -> int:
        return sum(map(step_work, expand(spec, rng)))

    return work


def draw_size(bounds: tuple[int, int], rng: random.Random) -> int:
    low, high = bounds
    return low if low == high else rng.randint(low, high)
