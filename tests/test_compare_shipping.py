"""``compare --jobs``: each worker receives the scenario once, runs carry only their key."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ioasid_core.compare import available_vendors, compare, scenario_pool
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.scenario import Scenario, load_scenario

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_runs_in_a_scenario_pool_carry_no_scenario_and_match_the_serial_results() -> None:
    scenario = load_scenario(EXAMPLES / "churn-and-stream.toml")
    vendors = list(available_vendors(new_plugin_manager().hooks).values())
    serial = compare(scenario, vendors)
    sent: list[tuple[Any, ...]] = []
    with scenario_pool(scenario, 2) as pool:
        submit = pool.submit

        def spy(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            sent.append(args)
            return submit(fn, *args, **kwargs)

        pool.submit = spy  # type: ignore[method-assign]
        parallel = compare(scenario, vendors, executor=pool)
    assert [r.as_dict() for r in parallel] == [r.as_dict() for r in serial]
    assert len(sent) == len(serial)
    assert not any(isinstance(arg, Scenario) for args in sent for arg in args)
    whole = len(pickle.dumps(scenario))
    assert all(len(pickle.dumps(args)) < whole for args in sent)


def test_another_executor_still_gets_the_scenario_with_each_run() -> None:
    scenario = load_scenario(EXAMPLES / "null-set-search.toml")
    other = load_scenario(EXAMPLES / "null-set-search.toml")
    vendors = list(available_vendors(None).values())
    with scenario_pool(other, 1) as pool:  # holds another scenario: this one travels
        results = compare(scenario, vendors, executor=pool)
    assert [r.as_dict() for r in results] == [r.as_dict() for r in compare(scenario, vendors)]
