"""Percentiles from bounded summaries: exact while few distinct values, then within the
documented relative error of the nearest-rank percentile of every sample."""

from __future__ import annotations

import math
import pickle
import random

from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.metrics import percentile
from ioasid_core.quantiles import EXACT_LIMIT, RELATIVE_ERROR, Quantiles

QS = (0, 1, 10, 50, 90, 99, 99.9, 100)

samples = st.lists(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=300,
)


def _near(got: float, want: float) -> bool:
    return abs(got - want) <= RELATIVE_ERROR * abs(want) * (1 + 1e-9)


def test_nearest_rank_by_hand() -> None:
    q = Quantiles([5.0, 1.0, 3.0, 2.0, 4.0, 3.0])
    # sorted: 1 2 3 3 4 5; rank = ceil(6 q / 100)
    assert q.percentile(50) == 3.0 and q.percentile(90) == 5.0 and q.percentile(0) == 1.0
    assert q.percentile(34) == 3.0  # rank 3
    assert q.summary(low=True) == {"min": 1.0, "p50": 3.0, "p90": 5.0, "p99": 5.0, "max": 5.0}
    assert Quantiles().summary() == dict.fromkeys(("p50", "p90", "p99", "max"))
    assert Quantiles().percentile(50) == 0.0 and len(Quantiles()) == 0


@given(samples)
def test_exact_below_the_limit_equals_the_sorted_list(values: list[float]) -> None:
    q = Quantiles(values)
    assert q.exact and len(q) == len(values)
    for p in QS:
        assert q.percentile(p) == percentile(values, p)


@given(samples, st.integers(min_value=1, max_value=8))
def test_the_sketch_keeps_its_error_bound(values: list[float], limit: int) -> None:
    q = Quantiles(values, exact_limit=limit)
    assert q.count == len(values) and q.min == min(values) and q.max == max(values)
    for p in QS:
        assert _near(q.percentile(p), percentile(values, p)), (p, q.percentile(p))


def test_a_long_lognormal_stream_stays_small_and_within_the_bound() -> None:
    rng = random.Random(18)
    values = [rng.lognormvariate(math.log(50.0), 2.0) for _ in range(200_000)]
    q = Quantiles(values)
    assert not q.exact
    buckets = len(q._positive)  # the whole state: one counter per bucket
    assert buckets < 2200, buckets
    for p in QS:
        assert _near(q.percentile(p), percentile(values, p)), p
    assert q.summary()["max"] == max(values)


def test_switching_to_buckets_happens_past_the_limit_only() -> None:
    q = Quantiles(float(i) for i in range(EXACT_LIMIT))
    assert q.exact
    q.add(0.5)
    assert not q.exact and q.count == EXACT_LIMIT + 1


def test_nan_is_refused_and_changes_nothing() -> None:
    q = Quantiles([1.0])
    try:
        q.add(math.nan)
    except ValueError as exc:
        assert "NaN" in str(exc)
    else:
        raise AssertionError("NaN accepted")
    assert q == Quantiles([1.0])


def test_equal_samples_compare_equal_in_any_order_and_survive_pickling() -> None:
    a = Quantiles([3.0, 1.0, 2.0])
    assert a == Quantiles([1.0, 2.0, 3.0]) and a != Quantiles([1.0, 2.0])
    assert pickle.loads(pickle.dumps(a)) == a


def test_count_of_is_exact_and_zeros_stay_exact_in_buckets() -> None:
    q = Quantiles([0.0, 0.0, 1.0, 2.5])
    assert q.count_of(0.0) == 2 and q.count_of(2.5) == 1 and q.count_of(7.0) == 0
    folded = Quantiles([0.0, 0.0, 1.0, 2.5, 3.0], exact_limit=2)
    assert not folded.exact and folded.count_of(0.0) == 2
    try:
        folded.count_of(2.5)
    except ValueError as exc:
        assert "bucket" in str(exc)
    else:
        raise AssertionError("a folded value was counted")
