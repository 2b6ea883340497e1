"""Latency distributions as scenario inputs: seeded, deterministic, and felt downstream."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from typing import Any

import pytest

from ioasid_core.latency import (
    DISTRIBUTIONS,
    LATENCY_OPS,
    DriverClock,
    Exponential,
    LogNormal,
    Uniform,
)
from ioasid_core.metrics import Metrics
from ioasid_core.prq import GenericPrq, LookupPolicy
from ioasid_core.quantiles import Quantiles
from ioasid_core.replay import replay
from ioasid_core.scenario import parse_scenario

PLATFORM: dict[str, Any] = {
    "units": [{"name": "iommu0"}],
    "address_spaces": [{"name": "proc-1"}],
    "sets": [{"name": "sva", "sva": True}],
    "devices": [{"name": "dev", "unit": "iommu0", "source_id": 1, "owner": "proc-1"}],
}
STEPS: list[dict[str, Any]] = [
    {"op": "bind", "at": 0, "device": "dev", "set": "sva", "address_space": "proc-1", "name": "p"},
    {"op": "page_requests", "at": 0, "device": "dev", "pasid": "p", "groups": 3},
    {"op": "unbind", "at": 100, "device": "dev", "pasid": "p"},
]


def _run(latency: dict[str, Any] | None, seed: int | None = None) -> Metrics:
    doc: dict[str, Any] = {"name": "t", "seed": 5, "platform": PLATFORM, "steps": STEPS}
    if latency is not None:
        doc["latency"] = latency
    scenario = parse_scenario(doc, "t.toml")
    return replay(scenario, GenericPrq(), LookupPolicy.DEVICE, seed=seed).metrics


def test_without_a_latency_table_nothing_takes_time() -> None:
    m = _run(None)
    assert m.request_latency_us == Quantiles([0.0] * 3) and m.latency_us == {}
    # Every operation has its key (the CSV's columns never depend on the file): nothing measured.
    assert m.as_dict()["latency_us"] == {
        key: {"p50": None, "p90": None, "p99": None, "max": None} for key in LATENCY_OPS
    }


def test_a_slow_bind_delays_the_service_of_the_requests_behind_it() -> None:
    m = _run(
        {"bind": {"dist": "fixed", "us": 10}, "page_request_service": {"dist": "fixed", "us": 2}}
    )
    assert m.request_latency_us == Quantiles([12.0, 14.0, 16.0])
    assert m.latency_us == {
        "bind": Quantiles([10.0]),
        "page_request_service": Quantiles([2.0, 2.0, 2.0]),
    }
    shown = m.as_dict()["latency_us"]
    assert isinstance(shown, dict)
    assert shown["bind"] == {"p50": 10.0, "p90": 10.0, "p99": 10.0, "max": 10.0}
    assert shown["page_request_service"] == {"p50": 2.0, "p90": 2.0, "p99": 2.0, "max": 2.0}
    assert shown["free"] == {"p50": None, "p90": None, "p99": None, "max": None}


def test_a_step_waits_for_the_driver_and_its_latency_counts_the_wait() -> None:
    m = _run(
        {"page_request_service": {"dist": "fixed", "us": 60}, "unbind": {"dist": "fixed", "us": 1}}
    )
    # The driver answers the three groups until 180 µs; the unbind due at 100 ends at 181.
    assert m.request_latency_us == Quantiles([60.0, 120.0, 180.0])
    assert m.latency_us["unbind"] == Quantiles([81.0])


LATENCY = {
    "bind": {"dist": "lognormal", "median_us": 5, "sigma": 0.8},
    "unbind": {"dist": "uniform", "low_us": 1, "high_us": 9},
    "page_request_service": {"dist": "exponential", "mean_us": 3},
}


def test_same_file_and_seed_give_the_same_metrics_another_seed_other_latencies() -> None:
    first = _run(LATENCY).as_dict()
    assert _run(LATENCY).as_dict() == first
    assert _run(LATENCY, seed=5).as_dict() == first  # the file's seed, given explicitly
    other = _run(LATENCY, seed=6).as_dict()
    assert other["latency_us"] != first["latency_us"]
    assert other["request_latency_us"] != first["request_latency_us"]
    # Only the timing moved: what was allocated, sent and answered is the same.
    for key in ("allocations", "frees", "responses", "outcomes", "step_errors"):
        assert other[key] == first[key], key


def test_adding_one_distribution_leaves_the_others_samples_alone() -> None:
    alone = _run({"bind": LATENCY["bind"]})
    more = _run({"bind": LATENCY["bind"], "unbind": LATENCY["unbind"]})
    assert alone.latency_us["bind"] == more.latency_us["bind"]


@pytest.mark.parametrize(
    ("dist", "middle"),
    [
        (Uniform(2.0, 6.0), statistics.mean),
        (Exponential(4.0), statistics.mean),
        (LogNormal(4.0, 0.8), statistics.median),
    ],
)
def test_the_distributions_have_the_documented_parameters(
    dist: Any, middle: Callable[[list[float]], float]
) -> None:
    rng = random.Random(1)
    samples = [dist.sample(rng) for _ in range(4000)]
    assert min(samples) >= 0
    assert abs(middle(samples) - 4.0) < 0.25


def test_every_distribution_names_its_class_and_parameters() -> None:
    for build, keys in DISTRIBUTIONS.values():
        assert tuple(f.name for f in build.__attrs_attrs__) == keys


def test_the_clock_never_goes_back() -> None:
    clock = DriverClock({"alloc": Uniform(1.0, 2.0)}, seed=0)
    end = clock.spend("alloc", clock.start(0.0), 0.0)
    assert 1.0 <= end <= 2.0 and clock.start(0.5) == end and clock.start(9.0) == 9.0
    assert clock.spend("free", 9.0, 9.0) == 9.0  # no distribution: no time
