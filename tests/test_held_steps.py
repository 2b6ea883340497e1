"""A comparison makes a generated scenario's steps once per process (a worker, or the one
process of a serial comparison) and holds them for its runs, up to ``HOLD_LIMIT_BYTES``;
above it every run streams. Held or streamed, the steps and the results are the same."""

from __future__ import annotations

import gc
import pickle
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ioasid_core import compare as compare_module
from ioasid_core import shipping
from ioasid_core.cli import cli
from ioasid_core.compare import available_vendors, compare, scenario_pool
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.replay import replay
from ioasid_core.scenario import Scenario, load_scenario
from ioasid_core.scenario import stream as stream_module
from ioasid_core.scenario.schema import Step
from ioasid_core.scenario.stream import (
    STEP_BYTES,
    HeldSteps,
    StepStream,
    hold_steps,
    hold_steps_limit,
)
from ioasid_core.shipping import hold
from ioasid_core.workload import mixed_workload_toml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VENDORS = available_vendors(new_plugin_manager().hooks)
GENERATED = sorted(
    path.name
    for path in EXAMPLES.glob("*.toml")
    if isinstance(load_scenario(path).steps, StepStream)
)


def _mixed(events: int, tmp_path: Path) -> Path:
    path = tmp_path / f"mixed-{events}.toml"
    path.write_text(mixed_workload_toml(events))
    return path


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the walks of a stream's generators (a held stream's own walks are not)."""
    count = [0]
    walk = StepStream.__iter__

    def counted(self: StepStream) -> Iterator[Step]:
        count[0] += 1
        return walk(self)

    monkeypatch.setattr(StepStream, "__iter__", counted)
    return count


def _limit_below(monkeypatch: pytest.MonkeyPatch, steps: int) -> None:
    """Sets the byte limit so that ``steps`` steps are one too many to hold."""
    monkeypatch.setattr(stream_module, "HOLD_LIMIT_BYTES", (steps - 1) * STEP_BYTES)
    assert hold_steps_limit() == steps - 1


def test_the_generated_examples_are_found() -> None:
    assert {"churn-and-stream.toml", "allocator-swap.toml"} <= set(GENERATED)


@pytest.mark.parametrize("name", ["<mixed>", *GENERATED])
def test_a_held_step_costs_at_most_step_bytes(name: str, tmp_path: Path) -> None:
    path = _mixed(10_000, tmp_path) if name == "<mixed>" else EXAMPLES / name
    steps = load_scenario(path).steps
    assert isinstance(steps, StepStream)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        held = HeldSteps(steps)
        cost = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(held.held) == len(steps)
    assert cost <= STEP_BYTES * len(steps), (cost / len(steps), STEP_BYTES)


def test_held_steps_are_the_streamed_ones_and_pickle_as_the_stream(tmp_path: Path) -> None:
    stream = load_scenario(_mixed(2_000, tmp_path)).steps
    assert isinstance(stream, StepStream)
    held = hold_steps(stream)
    assert isinstance(held, HeldSteps)
    assert tuple(held) == tuple(stream) and len(held) == len(stream)
    assert held[5] == stream[5] and held[3:9] == stream[3:9]
    assert list(reversed(held)) == list(reversed(stream))
    assert held == stream and hash(held) == hash(stream)
    assert hold_steps(held) is held  # not made twice
    again = pickle.loads(pickle.dumps(held))
    assert type(again) is StepStream and again == stream  # its specs travel, not its steps
    assert len(pickle.dumps(held)) == len(pickle.dumps(stream))


def test_above_the_limit_nothing_is_held(tmp_path: Path) -> None:
    stream = load_scenario(_mixed(2_000, tmp_path)).steps
    assert hold_steps(stream, len(stream)) is not stream
    assert hold_steps(stream, len(stream) - 1) is stream
    written = (Step(op="service", unit="u"),)
    assert hold_steps(written) is written  # a file's own steps are held already


def test_the_held_and_streamed_runs_give_the_same_results(tmp_path: Path) -> None:
    scenario = load_scenario(_mixed(2_000, tmp_path))
    held = compare_module._held(scenario)
    assert isinstance(held.steps, HeldSteps)
    for vendor in VENDORS.values():
        streamed = replay(scenario, vendor).as_dict()
        assert replay(held, vendor).as_dict() == streamed
        assert replay(held, vendor).as_dict() == streamed  # and again, from the same steps


def test_a_serial_comparison_walks_the_generators_once(
    tmp_path: Path, walks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(_mixed(1_000, tmp_path))
    vendors = [VENDORS["generic"], VENDORS["vtd"]]
    held = compare(scenario, vendors)
    assert len(held) == 8 and walks[0] == 1
    walks[0] = 0
    _limit_below(monkeypatch, len(scenario.steps))  # one step too many: every run streams
    streamed = compare(scenario, vendors)
    assert walks[0] == len(streamed) == 8
    assert [r.as_dict() for r in held] == [r.as_dict() for r in streamed]


def test_a_single_run_in_a_comparison_streams(tmp_path: Path, walks: list[int]) -> None:
    scenario = load_scenario(_mixed(1_000, tmp_path))
    (result,) = compare(scenario, [VENDORS["generic"]], ["native"])
    assert walks[0] == 1 and result.metrics.page_requests > 0


def test_a_worker_makes_the_steps_once_and_streams_above_the_limit(
    tmp_path: Path, walks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a pool's worker does with its cargo, here in this process."""
    scenario = load_scenario(_mixed(1_000, tmp_path))
    vendor = VENDORS["smmuv3"]
    policies = compare_module.vendor_policies(vendor)
    monkeypatch.setattr(compare_module, "_WORKER_SCENARIOS", {})
    monkeypatch.setattr(shipping, "_HELD", {})
    hold("held-test", scenario)
    held = [compare_module._run_held("held-test", vendor, p, 7) for p in policies]
    assert walks[0] == 1
    walks[0] = 0
    _limit_below(monkeypatch, len(scenario.steps))
    hold("streamed-test", scenario)
    streamed = [compare_module._run_held("streamed-test", vendor, p, 7) for p in policies]
    assert walks[0] == len(policies) == 4
    assert [r.as_dict() for r in held] == [r.as_dict() for r in streamed]
    held_there = compare_module._WORKER_SCENARIOS["held-test"][1]
    assert isinstance(held_there.steps, HeldSteps)
    assert type(compare_module._WORKER_SCENARIOS["streamed-test"][1].steps) is StepStream
    other = load_scenario(EXAMPLES / "allocator-swap.toml")
    hold("held-test", other)  # another scenario under the same key: its own steps run
    again = compare_module._run_held("held-test", VENDORS["generic"], policies[0], 7)
    assert again.as_dict() == replay(other, VENDORS["generic"], policies[0], seed=7).as_dict()


@pytest.mark.parametrize("hold_limit", ["default", "below"])
def test_a_pool_of_two_gives_the_serial_streamed_results(
    tmp_path: Path, hold_limit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario: Scenario = load_scenario(_mixed(1_000, tmp_path))
    vendors = list(VENDORS.values())
    _limit_below(monkeypatch, 2)  # the serial reference streams every run
    streamed = [r.as_dict() for r in compare(scenario, vendors)]
    if hold_limit == "default":
        monkeypatch.undo()
    with scenario_pool(scenario, 2) as pool:
        pooled = [r.as_dict() for r in compare(scenario, vendors, executor=pool)]
    assert pooled == streamed


def test_compare_jobs_1_and_2_give_the_same_json_on_a_generated_file(tmp_path: Path) -> None:
    path = _mixed(1_000, tmp_path)
    outputs: list[str] = []
    for jobs in ("1", "2"):
        out = tmp_path / f"{jobs}.json"
        result = CliRunner().invoke(cli, ["compare", str(path), "--jobs", jobs, "--json", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]


def _compare_peak_per_step(scenario: Scenario) -> float:
    """Peak traced bytes of a serial comparison of two runs, per step."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        runs = compare(scenario, [VENDORS["generic"]], [LookupPolicy.DEVICE, LookupPolicy.SET])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(runs) == 2
    return (peak - base) / len(scenario.steps)


def test_a_comparison_above_the_limit_holds_no_step_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(_mixed(30_000, tmp_path))
    held = _compare_peak_per_step(scenario)
    assert held >= 300, held  # the steps held (331 B each) and live state: 403 measured
    _limit_below(monkeypatch, len(scenario.steps))
    streamed = _compare_peak_per_step(scenario)
    assert streamed <= 150, streamed  # live state only


@pytest.mark.parametrize(
    ("command", "walked"),
    [(["run"], 1), (["compare", "--vendors", "generic,vtd"], 1), (["compare", "--json", "-"], 1)],
)
def test_the_commands_walk_the_generators_once(
    command: list[str], walked: int, tmp_path: Path, walks: list[int]
) -> None:
    """Nothing around the runs (vendor sections, progress, counts, reports) walks the
    stream: one run walks it once, a serial comparison makes the steps once for its runs."""
    path = _mixed(1_000, tmp_path)
    result = CliRunner().invoke(cli, [command[0], str(path), *command[1:]])
    assert result.exit_code == 0, result.output
    assert walks[0] == walked
