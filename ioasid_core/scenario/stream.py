"""A scenario's steps without holding them all: the written steps, and the generators,
which expand again, lazily, each time the steps are walked.

A generated workload of 10^6 steps held as ``Step`` objects cost hundreds of bytes per step
for as long as the scenario lived (and was pickled to every worker of a comparison). The
loader checks every step once, keeps the written ones and the generators' specs, and a
replay walks a :class:`StepStream`: the generated steps come out exactly as the loader
checked them (the same seeded draws, merged the same way), so a replay's peak memory is its
live state, not its length, and the scenario pickles as its specs.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Iterator, Sequence
from typing import Final, overload

from ioasid_core.scenario.generators import GeneratorSpec, stream_all
from ioasid_core.scenario.schema import Step

__all__ = [
    "HOLD_LIMIT_BYTES",
    "STEP_BYTES",
    "HeldSteps",
    "StepStream",
    "hold_steps",
    "hold_steps_limit",
    "written_steps",
]

_AT: Final = operator.attrgetter("at")

HOLD_LIMIT_BYTES: Final = 64 << 20
"""The most memory a process spends holding a stream's steps made once for several runs
(:func:`hold_steps`): 64 MiB, about 200,000 steps. A comparison's process holds them for its
runs (a worker, or the one process of a serial comparison), so holding adds at most this
much per process, whatever the scenario's length: 167,772 steps (55 MB measured, at 331
bytes a step). Above it each run walks the stream again (4 to 7 microseconds per generated
step per run) and memory stays live state only."""

STEP_BYTES: Final = 400
"""Bytes one held step costs, rounded up: 331 measured (tracemalloc) on the mixed workload
(a ``Step`` of 24 slots, its ``where`` text and time, the tuple's pointer); the bundled
examples' generators measure within it (``tests/test_held_steps.py`` checks both)."""


class StepStream(Sequence[Step]):
    """The written steps and the generators' steps, merged by time, walked lazily.

    ``len`` (steps) and ``work`` (events: steps and page requests) are known from loading;
    indexing or slicing walks the stream up to the index (for tests and small files: a
    replay only iterates). Two are equal when they hold the same written steps, specs and
    seed (so they give the same steps); compare ``tuple(steps)`` to compare with others."""

    __slots__ = ("generators", "seed", "size", "work", "written")

    def __init__(
        self,
        written: tuple[Step, ...],
        generators: tuple[tuple[str, GeneratorSpec], ...],
        seed: int,
        size: int,
        work: int,
    ) -> None:
        self.written = written
        """The file's own ``[[steps]]``, checked: in time order."""
        self.generators = generators
        """Each valid ``[[generators]]`` entry's key path and spec, in file order."""
        self.seed = seed
        """The scenario's seed, which a generator without its own draws from."""
        self.size = size
        self.work = work

    def __iter__(self) -> Iterator[Step]:
        generated = stream_all(self.generators, self.seed)
        if not self.written:
            return generated
        # As the loader's merge: a written step goes before generated ones at its time
        # (the written iterable comes first, and ties keep the order of the iterables).
        return heapq.merge(self.written, generated, key=_AT)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> Step: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Step, ...]: ...
    def __getitem__(self, index: int | slice) -> Step | tuple[Step, ...]:
        if isinstance(index, int) and 0 <= index < self.size:
            for n, step in enumerate(self):
                if n == index:
                    return step
        return tuple(self)[index]

    def __reversed__(self) -> Iterator[Step]:
        return reversed(tuple(self))  # (Sequence's would walk the stream once per step)

    def index(self, value: object, start: int = 0, stop: int | None = None) -> int:
        whole = tuple(self)
        return whole.index(value, start, len(whole) if stop is None else stop)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StepStream):
            return NotImplemented
        return (self.written, self.generators, self.seed) == (
            other.written,
            other.generators,
            other.seed,
        )

    def __hash__(self) -> int:
        return hash((self.written, self.generators, self.seed))

    def __reduce__(self) -> tuple[object, ...]:
        return (StepStream, (self.written, self.generators, self.seed, self.size, self.work))

    def __repr__(self) -> str:
        return (
            f"StepStream({len(self.written)} written, {len(self.generators)} generators, "
            f"{self.size} steps)"
        )


class HeldSteps(StepStream):
    """A stream's steps made once and held (a tuple), for a process that replays them
    several times: equal to, and pickled as, the stream it came from (its specs only), so
    holding never crosses a process boundary."""

    __slots__ = ("held",)

    def __init__(self, stream: StepStream) -> None:
        super().__init__(stream.written, stream.generators, stream.seed, stream.size, stream.work)
        self.held: tuple[Step, ...] = tuple(stream)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.held)

    @overload
    def __getitem__(self, index: int) -> Step: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Step, ...]: ...
    def __getitem__(self, index: int | slice) -> Step | tuple[Step, ...]:
        return self.held[index]

    def __reversed__(self) -> Iterator[Step]:
        return reversed(self.held)


def hold_steps_limit() -> int:
    """The most steps :func:`hold_steps` holds: :data:`HOLD_LIMIT_BYTES` over
    :data:`STEP_BYTES`."""
    return HOLD_LIMIT_BYTES // STEP_BYTES


def hold_steps(steps: Sequence[Step], limit: int | None = None) -> Sequence[Step]:
    """``steps`` made once and held (:class:`HeldSteps`) when they are a stream of at most
    ``limit`` steps (default :func:`hold_steps_limit`), for several runs in one process to
    share the generators' work; anything else as it is (above the limit, each run walks
    the stream: memory stays bounded by live state)."""
    if not isinstance(steps, StepStream) or isinstance(steps, HeldSteps):
        return steps
    if len(steps) > (hold_steps_limit() if limit is None else limit):
        return steps
    return HeldSteps(steps)


def written_steps(steps: Sequence[Step]) -> Sequence[Step]:
    """The steps a file wrote out, without expanding any generator (a generated step never
    carries what only a written one may: a ``source_id``, for instance)."""
    return steps.written if isinstance(steps, StepStream) else steps
