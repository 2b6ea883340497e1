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

__all__ = ["StepStream", "written_steps"]

_AT: Final = operator.attrgetter("at")


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


def written_steps(steps: Sequence[Step]) -> Sequence[Step]:
    """The steps a file wrote out, without expanding any generator (a generated step never
    carries what only a written one may: a ``source_id``, for instance)."""
    return steps.written if isinstance(steps, StepStream) else steps
