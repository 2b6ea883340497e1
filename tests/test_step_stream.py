"""Generated steps stream (issue 18): the loader checks each one as it is made and keeps
none; the scenario's ``StepStream`` makes them again, the same, each time it is walked.

- the walk gives exactly the steps the loader checked, in its order, every time;
- each kind yields in time order (the merge relies on it), and its ``work`` is what its
  steps stand for;
- checking a generated step only for what can differ gives the problems, at the key paths,
  that checking it as a written table does;
- ``MAX_WORK`` is enforced before any step is checked; a scenario pickles as its specs.
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle
import random
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.prq.generic import GenericPrq
from ioasid_core.replay import replay, scenario_work, step_work
from ioasid_core.scenario import ScenarioError, Step, load_scenario, parse_scenario
from ioasid_core.scenario import generators as generators_module
from ioasid_core.scenario.generators import GENERATORS, expand, generator_rng, stream_all
from ioasid_core.scenario.generators.base import step_work as kind_step_work
from ioasid_core.scenario.generators.guest_allocations import GuestAllocationsSpec
from ioasid_core.scenario.generators.page_request_stream import PageRequestStreamSpec
from ioasid_core.scenario.schema import Scenario
from ioasid_core.scenario.steps import OP_KEYS, StepChecker
from ioasid_core.scenario.stream import StepStream, written_steps
from ioasid_core.workload import mixed_workload_toml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ALL_KINDS = ROOT / "tests" / "data" / "expansions" / "all-kinds.toml"
WITH_GENERATORS = [
    *sorted(p for p in EXAMPLES.glob("*.toml") if "[[generators]]" in p.read_text()),
    ALL_KINDS,
]


def _checked(monkeypatch: pytest.MonkeyPatch, load: Any) -> tuple[Scenario, list[Step]]:
    """The scenario, and every step the loader checked, in the order it checked them."""
    seen: list[Step] = []
    run, step, generated = StepChecker.run, StepChecker.step, StepChecker.generated

    def record_step(self: StepChecker, path: str, table: Mapping[str, object]) -> Step | None:
        made = step(self, path, table)
        if made is not None:
            seen.append(made)
        return made

    def record_generated(self: StepChecker, made: Step) -> None:
        generated(self, made)
        seen.append(made)

    monkeypatch.setattr(StepChecker, "step", record_step)
    monkeypatch.setattr(StepChecker, "generated", record_generated)
    assert StepChecker.run is run
    scenario = load()
    monkeypatch.undo()
    assert isinstance(scenario, Scenario)
    return scenario, seen


@pytest.mark.parametrize("path", WITH_GENERATORS, ids=lambda p: p.stem)
def test_an_example_streams_the_steps_its_loading_checked(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, seen = _checked(monkeypatch, lambda: load_scenario(path))
    assert isinstance(scenario.steps, StepStream)
    walked = tuple(scenario.steps)
    assert walked == tuple(seen) and len(scenario.steps) == len(seen)
    assert tuple(scenario.steps) == walked  # walked again: the same
    assert scenario_work(scenario) == sum(map(step_work, walked))
    # The loader's count of a step's events is the replay's.
    assert all(kind_step_work(step) == step_work(step) for step in walked)
    assert all(a.at <= b.at for a, b in itertools.pairwise(walked))


def test_the_mixed_workload_streams_the_steps_its_loading_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = mixed_workload_toml(3000)
    scenario, seen = _checked(monkeypatch, lambda: parse_scenario(tomllib.loads(text), "<m>"))
    steps = tuple(scenario.steps)
    assert steps == tuple(seen) and len(steps) == len(scenario.steps) == 3000 + 4
    assert isinstance(scenario.steps, StepStream)
    # Written steps only are kept; the rest are the generators' to make again.
    assert [s.where for s in written_steps(scenario.steps)] == [f"steps[{i}]" for i in range(4)]
    assert scenario.steps.work == sum(map(step_work, steps)) > len(steps)
    assert scenario.steps[3] == steps[3] and scenario.steps[-2:] == steps[-2:]
    assert scenario.steps[-1] == steps[-1] and tuple(reversed(scenario.steps)) == steps[::-1]
    assert scenario.steps.index(steps[7]) == 7 and steps[9] in scenario.steps


def test_a_stream_pickles_as_its_specs() -> None:
    scenario = parse_scenario(tomllib.loads(mixed_workload_toml(20_000)), "<m>")
    shipped = pickle.dumps(scenario)
    assert len(shipped) < 20_000  # the specs, not 20,000 steps
    back = pickle.loads(shipped)
    assert back == scenario and tuple(back.steps) == tuple(scenario.steps)
    assert len(back.steps) == len(scenario.steps) and scenario_work(back) == scenario_work(scenario)
    assert replay(back, GenericPrq()).metrics == replay(scenario, GenericPrq()).metrics


def test_without_generators_the_steps_are_a_tuple() -> None:
    scenario = load_scenario(EXAMPLES / "null-set-search.toml")
    assert isinstance(scenario.steps, tuple)
    assert written_steps(scenario.steps) is scenario.steps


# ----------------------------------------------------------------- each kind, alone


def _made_order(step: Step) -> int:
    return int(step.where.rsplit("/", 1)[1])


def _kind_steps(path: Path) -> Iterator[tuple[str, Any, random.Random, random.Random]]:
    """Each generator of a file: its kind, spec and two equal random streams."""
    scenario = load_scenario(path)
    assert isinstance(scenario.steps, StepStream)
    for order, (where, spec) in enumerate(scenario.steps.generators):
        index = int(where.removeprefix("generators[").rstrip("]"))
        assert index >= order
        kind = next(k for k in GENERATORS.values() if isinstance(spec, k.spec))
        yield (
            kind.name,
            spec,
            generator_rng(spec, index, scenario.seed),
            generator_rng(spec, index, scenario.seed),
        )


@pytest.mark.parametrize("path", WITH_GENERATORS, ids=lambda p: p.stem)
def test_each_generator_yields_in_time_order_and_counts_its_work(path: Path) -> None:
    for name, spec, rng, again in _kind_steps(path):
        steps = list(expand(spec, rng))
        # In (at, n) order: what the old loader sorted each generator's steps by.
        assert steps == sorted(steps, key=lambda s: (s.at, _made_order(s))), name
        assert sorted(map(_made_order, steps)) == list(range(len(steps))), name
        assert all(s.where.startswith(f"{spec.where}/") for s in steps)
        assert GENERATORS[name].work(spec, again) == sum(map(step_work, steps)), name


_GUEST = st.builds(
    GuestAllocationsSpec,
    at=st.sampled_from([0.0, 3.0, 2.0**49, 2.0**52 - 7, 1e15 - 1, 123456789.123]),
    vm=st.just("vm"),
    count=st.integers(1, 300),
    interval=st.sampled_from([0.01, 0.02, 0.1, 0.13, 0.25, 0.75, 1.0, 6.0]),
    free=st.floats(0, 1),
    drain=st.booleans(),
    prefix=st.just("g"),
    seed=st.integers(0, 2**32),
    where=st.just("generators[0]"),
)


@settings(max_examples=150, deadline=None)
@given(_GUEST)
def test_guest_allocations_come_in_time_order_whatever_the_rounding(
    spec: GuestAllocationsSpec,
) -> None:
    """A free comes half an interval after its alloc, made before the next alloc: it must
    also be at or before it in time, down to intervals below ``at``'s precision (the merge
    of generators takes each one's order as sorted; the old loader sorted them)."""
    steps = list(expand(spec, random.Random(spec.seed)))
    assert steps == sorted(steps, key=lambda s: (s.at, _made_order(s)))
    assert sorted(map(_made_order, steps)) == list(range(len(steps)))
    frees = sum(s.op == "guest_free" for s in steps)
    assert frees == spec.count if spec.drain else frees <= spec.count
    work = GENERATORS["guest_allocations"].work(spec, random.Random(spec.seed))
    assert work == len(steps)


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 200),
    sizes=st.tuples(st.integers(1, 9), st.integers(0, 9)),
    weights=st.lists(st.integers(0, 5), min_size=4, max_size=4).filter(any),
    seed=st.integers(0, 2**32),
)
def test_a_streams_work_is_counted_from_the_same_draws(
    count: int, sizes: tuple[int, int], weights: list[int], seed: int
) -> None:
    kinds: tuple[Literal["valid", "unknown", "foreign", "stop"], ...] = (
        "valid",
        "unknown",
        "foreign",
        "stop",
    )
    spec = PageRequestStreamSpec(
        at=1.0,
        devices=("a", "b"),
        count=count,
        group_size=(sizes[0], sizes[0] + sizes[1]),
        interval=0.5,
        mix=tuple((k, float(w)) for k, w in zip(kinds, weights, strict=True) if w),
        pasids=(("a", ("x", 5)), ("b", ("y",))),
        foreign_pasids=("z", 7),
        where="generators[3]",
    )
    steps = list(expand(spec, random.Random(seed)))
    assert len(steps) == count
    assert GENERATORS["page_request_stream"].work(spec, random.Random(seed)) == sum(
        map(step_work, steps)
    )


# ----------------------------------------------- checks: the fast path and the full one


def _as_table(step: Step) -> dict[str, object]:
    """The table a file would write for a generated step: its op's keys that it sets."""
    required, optional = OP_KEYS[step.op]
    table: dict[str, object] = {"op": step.op, "at": step.at}
    for key in sorted(required | optional):
        value = getattr(step, key)
        if value is not None:
            table[key] = list(value) if key == "perm" else value
    return table


def _checked_as_written(self: StepChecker, step: Step) -> None:
    """A generated step checked as a written table (every key), outside the time-order
    rule of written steps (the merge sorted it), and counted as the loader counts it."""
    self.generated_steps += 1
    last = self.last_at, self.last_at_path
    self.last_at = -math.inf
    self.step(step.where, _as_table(step))
    self.last_at, self.last_at_path = last


def _variants() -> dict[str, dict[str, Any]]:
    """all-kinds.toml, whole and broken in the ways a generated step can be."""
    base = tomllib.loads(ALL_KINDS.read_text())
    gens = "generators"
    found: dict[str, dict[str, Any]] = {"whole": base}

    def variant(name: str, generator: int | None, change: dict[str, Any], *steps: Any) -> None:
        data = copy.deepcopy(base)
        if generator is not None:
            data[gens][generator].update(change)
        data["steps"] += list(steps)
        found[name] = data

    variant("unprintable-name-prefix", 1, {"prefix": "c\x1bb"})
    variant("unprintable-process-prefix", 0, {"prefix": "p\rq"})
    variant("unprintable-allocator-prefix", 11, {"prefix": "s\x07"})
    variant("unprintable-guest-prefix", 6, {"prefix": "g\x00"})
    variant("empty-prefix", 7, {"prefix": ""})
    variant("times-past-the-bound", 2, {"at": 9e14, "interval": 1e13})
    variant("guest-times-rounded", 5, {"at": 2.0**49, "interval": 0.02, "count": 300})
    variant("undeclared-owner", 7, {"owner": "nobody"})
    variant("stream-of-a-name-never-bound", 3, {"pasids": ["pz"]})
    variant("stream-on-an-unplugged-unit", 9, {"unit": "iommu0", "at": 30})
    variant("storm-on-an-unplugged-unit", 9, {"unit": "iommu0", "at": 399})
    out = {"at": 599, "op": "unplug", "vm": "vm-a", "unit": "viommu0"}
    variant("a-vms-last-unit-out", None, {}, out)
    variant("live-window-wider", 7, {"live": 60})
    alloc = {"at": 3, "op": "alloc", "set": "drv", "owner": "idxd", "name": "driver[7].0"}
    variant("a-written-name-collides", None, {}, alloc)
    free = {"at": 5000, "op": "free", "pasid": "driver[7].3"}
    variant("a-written-free-of-a-freed-name", None, {}, free)
    unbind = {"at": 5000, "op": "unbind", "device": "acc-b", "pasid": "cb3"}
    variant("a-written-unbind-of-an-unbound-name", None, {}, unbind)
    swap = {"at": 2010, "op": "register_allocator", "allocator": "swap[11].0", "kind": "cyclic"}
    variant("a-written-registration-twice", None, {}, swap)
    return found


_LOADS = {"whole", "empty-prefix", "guest-times-rounded", "live-window-wider"}
"""The variants that load (the others are refused, each for its reason)."""


def _outcome(data: dict[str, Any]) -> object:
    try:
        scenario = parse_scenario(copy.deepcopy(data), "v.toml")
    except ScenarioError as exc:
        return exc.problems
    return [attrs.asdict(step) for step in scenario.steps], scenario.platform


@pytest.mark.parametrize("name", sorted(_variants()))
def test_a_generated_step_is_checked_as_a_written_one_would_be(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _variants()[name]
    fast = _outcome(data)
    monkeypatch.setattr(StepChecker, "generated", _checked_as_written)
    full = _outcome(data)
    assert fast == full
    refused = isinstance(fast, tuple) and isinstance(fast[0], tuple)  # (problems...)
    assert refused == (name not in _LOADS), fast


def test_a_file_over_the_work_bound_is_stopped_before_any_step_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tomllib.loads(ALL_KINDS.read_text())
    data["generators"][2].update(count=0x10000, group_size=[1, 0x10000])
    checked: list[Step] = []
    monkeypatch.setattr(StepChecker, "generated", lambda self, step: checked.append(step))
    made: list[object] = []

    def counting(spec: Any, rng: random.Random) -> Iterator[Step]:
        made.append(spec)
        return expand(spec, rng)

    monkeypatch.setattr(generators_module, "expand", counting)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "big.toml")
    (problem,) = caught.value.problems
    assert problem.key_path == "generators[2]"
    assert problem.expected.startswith("the file asks for ") and "33,554,432" in problem.expected
    assert checked == [] and made == []  # counted from specs and draws: none made or checked
    monkeypatch.undo()
    data["generators"][2].update(count=0x100, group_size=[1, 5])
    monkeypatch.setattr(generators_module, "expand", counting)
    parse_scenario(data, "small.toml")
    assert len(made) == len(data["generators"])  # under the bound: each made once, to check


def test_stream_all_merges_like_a_stable_sort() -> None:
    scenario = load_scenario(ALL_KINDS)
    assert isinstance(scenario.steps, StepStream)
    generators = scenario.steps.generators
    merged = list(stream_all(generators, scenario.seed))
    one_by_one = [
        step
        for order, (where, spec) in enumerate(generators)
        for step in expand(
            spec, generator_rng(spec, int(where[len("generators[") : -1]), scenario.seed)
        )
    ]
    order = {where: n for n, (where, _) in enumerate(generators)}
    assert merged == sorted(one_by_one, key=lambda s: (s.at, order[s.where.split("/")[0]]))


# ------------------------------------------- names that are gone: kept only when needed


def _checkers(monkeypatch: pytest.MonkeyPatch) -> list[StepChecker]:
    made: list[StepChecker] = []
    init = StepChecker.__init__

    def record(self: StepChecker, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(StepChecker, "__init__", record)
    return made


@pytest.mark.parametrize("path", WITH_GENERATORS, ids=lambda p: p.stem)
def test_a_valid_file_is_checked_once_keeping_no_gone_name(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _checkers(monkeypatch)
    load_scenario(path)
    (checker,) = made
    assert not checker.history and checker.dead == {}
    assert not any(checker.guest_dead.values())


def test_the_mixed_workload_keeps_only_what_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _checkers(monkeypatch)
    parse_scenario(tomllib.loads(mixed_workload_toml(5000)), "<m>")
    (checker,) = made
    assert checker.dead == {} and checker.live == {} and checker.unbound == {}


@pytest.mark.parametrize("name", sorted(_variants()))
def test_naming_a_gone_pasid_is_checked_again_with_the_same_problems(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first pass keeping only what is live, then (if a step names a PASID that is not)
    one keeping what is gone: the problems of a checker that keeps everything from the
    start, in the same order."""
    data = _variants()[name]
    made = _checkers(monkeypatch)
    twice = _outcome(data)
    passes = [checker.history for checker in made]
    init = StepChecker.__init__
    monkeypatch.undo()

    def with_history(self: StepChecker, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **{**kwargs, "history": True})

    monkeypatch.setattr(StepChecker, "__init__", with_history)
    assert _outcome(data) == twice
    not_live = ("no longer live", "no PASID named", "no guest PASID named")
    gone_named = isinstance(twice, tuple) and any(
        isinstance(problem, tuple) and any(text in str(problem[1]) for text in not_live)
        for problem in twice
    )
    assert passes == ([False, True] if gone_named else [False]), passes
    if name.startswith(("a-written-free", "a-written-unbind", "stream-of-a-name")):
        assert gone_named
