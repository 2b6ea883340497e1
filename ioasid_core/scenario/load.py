"""Reading scenario files: TOML in, a fully checked :class:`Scenario` out.

A file is validated completely before anything runs, so a replay never stops half-way on a
typo or a dangling name. Every problem is collected, not just the first: one
:class:`ScenarioError` lists each on its own line as ``<file>: <key path>: <what was
expected>``, so a user fixes a file in one pass instead of one error per run.

This module only puts the parts together, in file order: the reader
(:mod:`~ioasid_core.scenario.reader`), the platform (:mod:`~ioasid_core.scenario.platform`),
the vendor sections (:mod:`~ioasid_core.scenario.vendors`), ``[latency]``
(:mod:`~ioasid_core.scenario.latency_table`), the generators
(:mod:`~ioasid_core.scenario.generators`, one module per kind) and the steps
(:mod:`~ioasid_core.scenario.steps`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from ioasid_core.scenario.bounds import (
    MAX_BURST,
    MAX_CAPACITY,
    MAX_GENERATED,
    MAX_OPTION_ITEMS,
    MAX_QUEUE_ENTRIES,
    MAX_SCENARIO_BYTES,
    MAX_SIGMA,
    MAX_SOURCE_ID,
    MAX_TIME_US,
    MAX_WORK,
    MIN_QUEUE_ENTRIES,
    WIRE_PASID_LIMIT,
)
from ioasid_core.scenario.generators import (
    Context,
    GeneratorSpec,
    generator_work,
    merge_steps,
    read_generators,
    stream_all,
)
from ioasid_core.scenario.latency_table import read_latency
from ioasid_core.scenario.platform import Declared
from ioasid_core.scenario.reader import (
    InputTooLarge,
    Reader,
    ScenarioError,
    ScenarioProblem,
    describe,
    location,
    read_bounded,
    read_toml,
    toml_problem,
)
from ioasid_core.scenario.schema import PlatformSpec, Scenario, Step
from ioasid_core.scenario.steps import OP_KEYS, STEP_KEYS, STEP_WHAT, NeedsHistory, StepChecker
from ioasid_core.scenario.stream import StepStream
from ioasid_core.scenario.vendors import read_vendor_sections

__all__ = [
    "MAX_BURST",
    "MAX_CAPACITY",
    "MAX_GENERATED",
    "MAX_OPTION_ITEMS",
    "MAX_QUEUE_ENTRIES",
    "MAX_SCENARIO_BYTES",
    "MAX_SIGMA",
    "MAX_SOURCE_ID",
    "MAX_TIME_US",
    "MAX_WORK",
    "MIN_QUEUE_ENTRIES",
    "WIRE_PASID_LIMIT",
    "InputTooLarge",
    "ScenarioError",
    "ScenarioProblem",
    "load_scenario",
    "parse_scenario",
    "read_bounded",
]

# The names this module had before it was split (issue 17), for their importers.
_OP_KEYS = OP_KEYS
_STEP_KEYS = STEP_KEYS
_STEP_WHAT = STEP_WHAT
_Parser = Reader
_describe = describe
_location = location
_toml_problem = toml_problem

_TOP_KEYS: Final = frozenset(
    {"name", "description", "seed", "platform", "steps", "generators", "vendor", "latency"}
)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check the scenario file at ``path``; raise :class:`ScenarioError` if it is bad."""
    return parse_scenario(read_toml(path), os.fspath(path))


def parse_scenario(data: Mapping[str, object], source: str) -> Scenario:
    """Check ``data`` (a parsed TOML document) and build the Scenario it describes.

    ``source`` names the file in messages and becomes ``Scenario.source``.
    """
    reader = Reader()
    scenario = _Document(reader).scenario(data, source)
    if reader.problems or scenario is None:
        raise ScenarioError(source, reader.problems)
    return scenario


class _Document:
    """One document, read in file order: each part reports through the one reader."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader
        self.declared = Declared(reader)

    def scenario(self, data: Mapping[str, object], source: str) -> Scenario | None:
        r = self.r
        top = r.table(data, "")
        if top is None:
            return None
        r.unknown_keys(top, "", _TOP_KEYS)
        name = r.name(top, "", "name", required=True)
        description = r.string(top, "", "description")
        seed = r.integer(top, "", "seed", 0)
        platform = PlatformSpec()
        if "platform" in top:
            table = r.table(top["platform"], "platform")
            if table is not None:
                platform = self.declared.read(table)
        vendor_options = read_vendor_sections(r, top)
        latency = read_latency(r, top)
        generators = read_generators(Context(reader=r, declared=self.declared), top)
        steps, owners = self.steps(top, generators, seed or 0)
        if name is None:
            return None
        processes = self.declared.processes.ranges()
        if processes:
            platform = attrs.evolve(platform, processes=processes)
        self.declared.check_owners(platform, owners)
        defaults = Scenario(name=name)
        return Scenario(
            name=name,
            description=defaults.description if description is None else description,
            seed=defaults.seed if seed is None else seed,
            platform=platform,
            vendor_options=vendor_options,
            steps=steps,
            latency=latency,
            source=source,
        )

    def steps(
        self,
        top: Mapping[str, object],
        generators: Sequence[tuple[str, GeneratorSpec]],
        seed: int,
    ) -> tuple[Sequence[Step], Sequence[tuple[str, str]]]:
        """The explicit steps merged with the generated ones, all checked in time order,
        and the owners they name (key path, owner).

        Generated steps go through the same rules as written ones, so a generated PASID
        name that collides with a live one, or a stream that uses a name before it is
        bound, is reported at ``generators[i]/<n>``. They are checked as they are made and
        not kept: with generators, the steps are a ``StepStream``, which makes them again
        when a replay walks it.
        """
        explicit = self.r.tables(top, "", "steps")
        written_work = sum(_work(t) for _, t in explicit)
        generated_work = self.bounded_work(generators, seed, written_work)
        if generated_work is None:
            generators = ()  # over the bound: none is expanded (reported)
        mark = len(self.r.problems)
        checker = StepChecker(self.r, self.declared)
        try:
            written = checker.run(merge_steps(explicit, stream_all(generators, seed)))
        except NeedsHistory:
            # A step names a PASID that is gone or never was: again, keeping the names
            # that go, so that its message says which (the first pass's problems again).
            del self.r.problems[mark:]
            checker = StepChecker(self.r, self.declared, history=True)
            written = checker.run(merge_steps(explicit, stream_all(generators, seed)))
        owners = list(checker.owners)
        if not generators or generated_work is None:
            return written, owners
        size = len(written) + checker.generated_steps
        work = written_work + generated_work
        return StepStream(written, tuple(generators), seed, size, work), owners

    def bounded_work(
        self, generators: Sequence[tuple[str, GeneratorSpec]], seed: int, work: int
    ) -> int | None:
        """The events the generators stand for (their kinds' ``work``: from the spec, or
        counted as the steps are made, none kept), one generator at a time, so that a file
        asking for more than ``MAX_WORK`` events per run (``work``: its written steps')
        is stopped at the generator that crosses the bound, before the rest is counted or
        anything is checked or run; None then (reported)."""
        if work > MAX_WORK:
            self.r.bad("steps", _too_much(work))
            return None
        generated = 0
        for order, (path, spec) in enumerate(generators):
            generated += generator_work(order, path, spec, seed)
            if work + generated > MAX_WORK:
                self.r.bad(path, _too_much(work + generated))
                return None
        return generated


def _work(table: Mapping[str, object]) -> int:
    """The events one raw step stands for: itself, plus the page requests it sends. Values
    not yet checked count as their defaults and a step as at most ``MAX_BURST`` requests:
    the step checks report those, and one typo should not read as two problems."""
    if table.get("op") != "page_requests":
        return 1

    def count(key: str, default: int) -> int:
        value = table.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_BURST:
            return value
        return default

    requests = count("groups", 1) * count("group_size", 1) + count("stop_markers", 0)
    return 1 + min(requests, MAX_BURST)


def _too_much(work: int) -> str:
    return (
        f"the file asks for {work:,} events (steps and page requests) per run by here, "
        f"more than the {MAX_WORK:,} a run may do (see docs/scenarios.md)"
    )
