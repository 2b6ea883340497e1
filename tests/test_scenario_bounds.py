"""Rules a second review found missing: every modelled time stays finite (strict JSON),
unbind names the bind it undoes, and one SVA PASID carries at most one SPID however many
bind names stand for it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ioasid_core.prq import GenericPrq
from ioasid_core.replay import replay
from ioasid_core.report import to_json
from ioasid_core.scenario import ScenarioError, parse_scenario


def doc(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "bounds",
        "platform": {
            "units": [{"name": "u"}],
            "address_spaces": [{"name": "p"}, {"name": "q"}],
            "sets": [{"name": "sva", "sva": True}],
            "devices": [
                {"name": "d0", "unit": "u", "source_id": 1, "owner": "p"},
                {"name": "d1", "unit": "u", "source_id": 2, "owner": "p"},
            ],
        },
        "steps": list(steps),
    }
    out.update(extra)
    return out


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(document, "t.toml")
    return [f"{p.key_path}: {p.expected}" for p in caught.value.problems]


BIND_P = {"op": "bind", "device": "d0", "set": "sva", "address_space": "p", "name": "p0"}
BIND_P1 = {"op": "bind", "device": "d1", "set": "sva", "address_space": "p", "name": "p1"}


def test_unbind_names_the_bind_it_undoes_not_a_number() -> None:
    assert problems(doc(BIND_P, {"op": "unbind", "device": "d0", "pasid": 1})) == [
        "steps[1].pasid: expected the name of the bind to undo, got the number 1"
    ]


def test_two_bind_names_of_one_address_space_are_one_pasid_with_one_spid() -> None:
    attach = [
        {"op": "attach_spid", "pasid": "p0", "spid": 5},
        {"op": "attach_spid", "pasid": "p1", "spid": 6},
    ]
    assert problems(doc(BIND_P, BIND_P1, *attach)) == [
        "steps[3].pasid: PASID 'p1' already has SPID 5: detach it first"
    ]
    other = {"op": "bind", "device": "d1", "set": "sva", "address_space": "q", "name": "q0"}
    spid_q = {"op": "attach_spid", "pasid": "q0", "spid": 6}
    parse_scenario(doc(BIND_P, other, attach[0], spid_q), "t.toml")  # another PASID: fine


def test_times_and_latencies_are_bounded_so_every_sum_stays_finite() -> None:
    late = {"op": "service", "unit": "u", "at": 1e300}
    assert problems(doc(late)) == ["steps[0].at: expected at most 1e+15 µs, got 1e+300"]
    churn = {
        "kind": "churn",
        "device": "d0",
        "set": "sva",
        "address_space": "p",
        "count": 3,
        "live": 1,
        "interval": 1e308,
    }
    assert problems(doc(generators=[churn])) == [
        "generators[0].interval: expected at most 1e+15 µs, got 1e+308"
    ]
    slow = {
        "alloc": {"dist": "fixed", "us": 1e308},
        "bind": {"dist": "lognormal", "median_us": 1, "sigma": 50},
    }
    assert problems(doc(latency=slow)) == [
        "latency.alloc.us: expected at most 1e+15, got 1e+308",
        "latency.bind.sigma: expected at most 10, got 50",
    ]


def test_a_long_tailed_draw_is_capped_and_the_json_stays_strict() -> None:
    wild = {"bind": {"dist": "lognormal", "median_us": 1e15, "sigma": 10}}
    steps: list[dict[str, Any]] = [
        BIND_P,
        {"op": "page_requests", "device": "d0", "pasid": "p0", "at": 1},
    ]
    scenario = parse_scenario(doc(*steps, latency=wild), "t.toml")
    result = replay(scenario, GenericPrq())
    assert result.metrics.latency_us["bind"].max <= 1e12  # MAX_SAMPLE_US
    json.loads(to_json("bounds", [result]))  # no NaN or Infinity: strict JSON
