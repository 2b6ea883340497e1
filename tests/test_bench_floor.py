"""The floor of ``replay_events_per_s_ratio`` (``bench_floor``) times what a real run does:
every burst its devices sent and every lookup its answers made, and adds its parts up."""

from __future__ import annotations

import pytest

from ioasid_core.bench_floor import COMMON_PARTS, _record, event_floor
from ioasid_core.bench_scale import load_mixed
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.types import RequestRow
from ioasid_core.replay import _Run
from ioasid_core.workload import mixed_workload_toml


def test_the_recorded_run_is_the_replay_s_own() -> None:
    scenario = load_mixed(mixed_workload_toml(600))
    vendor = GenericPrq()
    run = _Run(scenario, vendor, vendor.default_policy, None, scenario.seed)
    bursts: list[list[RequestRow]] = []
    lookups: list[tuple[int, bool, int]] = []
    (pipeline,) = run.pipelines.values()
    _record(pipeline, bursts, lookups)
    run.run(scenario.steps)
    sent = [s for s in scenario.steps if s.op == "page_requests"]
    assert len(bursts) == len(sent)
    assert [len(b) for b in bursts] == [s.groups * s.group_size + s.stop_markers for s in sent]
    assert len(lookups) == sum(pipeline.counters.outcomes.values()) > 0
    # Recording changes nothing the run counts.
    plain = _Run(scenario, vendor, vendor.default_policy, None, scenario.seed)
    assert plain.run(scenario.steps).as_dict() == run.metrics.as_dict()


def test_the_floor_adds_its_parts_up() -> None:
    floor = event_floor([GenericPrq()], events=600, rounds=1)
    common = floor["common"]
    assert set(common) == set(COMMON_PARTS)
    assert all(pairs > 0 for pairs in common.values())
    own = floor["generic"]
    assert own["encode"] > 0 and own["decode"] > 0
    assert own["floor"] == pytest.approx(sum(common.values()) + own["encode"] + own["decode"])
    loading = common["step"] + common["random_draw"]
    assert own["floor_replay"] == pytest.approx(own["floor"] - loading)
    assert floor["baseline"]["events"] == len(load_mixed(mixed_workload_toml(600)).steps)
