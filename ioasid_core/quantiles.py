"""Percentiles of a stream of samples in bounded memory, exact while that is cheap.

A replay may measure millions of latencies; keeping each one (as a list of floats per run)
made ``compare``'s memory grow with runs x events. ``Quantiles`` keeps a count per distinct
value instead, which is exact and small for modelled times (they repeat a lot), and once it
has seen more than ``EXACT_LIMIT`` distinct values it folds them into logarithmic buckets
(the DDSketch scheme): bucket ``i`` holds the values in ``(g^(i-1), g^i]`` with
``g = (1 + a) / (1 - a)``, and a percentile is answered by the value ``2 g^i / (g + 1)``,
within a relative error ``a = RELATIVE_ERROR`` of the exact nearest-rank value (clamped to
the exact ``min`` and ``max``, which keeps the bound). ``count``, ``min`` and ``max`` stay
exact. Buckets for samples between 1e-6 and 1e12 µs number at most about 2,100, so memory
is bounded whatever the stream's length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

__all__ = ["EXACT_LIMIT", "RELATIVE_ERROR", "Quantiles"]

EXACT_LIMIT: Final = 4096
"""Distinct values kept exactly; beyond them, the logarithmic buckets take over."""
RELATIVE_ERROR: Final = 0.01
"""The largest relative error of a percentile once the buckets took over."""

_GAMMA: Final = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA: Final = math.log(_GAMMA)


def _bucket(value: float) -> int:
    """The bucket of ``value > 0``: ``ceil(log_g(value))``."""
    return math.ceil(math.log(value) / _LOG_GAMMA)


def _middle(index: int) -> float:
    """The value a bucket answers with: within ``RELATIVE_ERROR`` of anything in it."""
    return 2 * _GAMMA**index / (_GAMMA + 1)


class Quantiles:
    """The samples of one measure: ``add`` each, then ``percentile``/``summary``."""

    __slots__ = ("_exact", "_limit", "_negative", "_positive", "_zeros", "count", "max", "min")

    def __init__(self, values: Iterable[float] = (), *, exact_limit: int = EXACT_LIMIT) -> None:
        self.count = 0
        self.min = math.inf
        self.max = -math.inf
        self._limit = exact_limit
        self._exact: dict[float, int] | None = {}
        self._positive: dict[int, int] = {}
        self._negative: dict[int, int] = {}  # by the bucket of -value
        self._zeros = 0
        for value in values:
            self.add(value)

    @property
    def exact(self) -> bool:
        """Whether percentiles are still exact (no more than the limit of distinct values)."""
        return self._exact is not None

    def add(self, value: float) -> None:
        if math.isnan(value):  # no rank
            raise ValueError("a sample may not be NaN")
        self.count += 1
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        exact = self._exact
        if exact is not None:
            exact[value] = exact.get(value, 0) + 1
            if len(exact) > self._limit:
                self._fold(exact)
            return
        self._put(value, 1)

    def _fold(self, exact: dict[float, int]) -> None:
        self._exact = None
        for value, times in exact.items():
            self._put(value, times)

    def _put(self, value: float, times: int) -> None:
        if value > 0:
            key = _bucket(value)
            self._positive[key] = self._positive.get(key, 0) + times
        elif value < 0:
            key = _bucket(-value)
            self._negative[key] = self._negative.get(key, 0) + times
        else:
            self._zeros += times

    def _ordered(self) -> Iterable[tuple[float, int]]:
        """(value, how many) from the smallest up: exact values, or bucket middles."""
        if self._exact is not None:
            return sorted(self._exact.items())
        out = [(-_middle(k), n) for k, n in sorted(self._negative.items(), reverse=True)]
        if self._zeros:
            out.append((0.0, self._zeros))
        out += [(_middle(k), n) for k, n in sorted(self._positive.items())]
        return out

    def count_of(self, value: float) -> int:
        """How many samples were exactly ``value``: exact while exact, and for 0.0 always
        (zeros keep their own counter); ``ValueError`` for another value once in buckets."""
        if self._exact is not None:
            return self._exact.get(value, 0)
        if value == 0:
            return self._zeros
        raise ValueError(f"{value!r} is folded into a bucket: only 0.0 is counted exactly")

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) by nearest rank; 0.0 for no samples."""
        if not self.count:
            return 0.0
        rank = max(1, -(-self.count * q // 100))  # ceil without floats going astray
        seen = 0
        for value, times in self._ordered():
            seen += times
            if seen >= rank:
                return float(min(max(value, self.min), self.max))
        return float(self.max)

    def summary(self, *, low: bool = False) -> dict[str, float | None]:
        """``p50``, ``p90``, ``p99`` and ``max``; with ``low``, ``min`` first. All None for no
        samples (a 0.0 would read as "instant")."""
        keys = ("min", "p50", "p90", "p99", "max") if low else ("p50", "p90", "p99", "max")
        if not self.count:
            return dict.fromkeys(keys)
        shown = {"min": self.min} if low else {}
        shown.update(
            p50=self.percentile(50),
            p90=self.percentile(90),
            p99=self.percentile(99),
            max=self.max,
        )
        return {key: float(value) for key, value in shown.items()}

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantiles):
            return NotImplemented
        return self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]

    def _state(self) -> tuple[object, ...]:
        return (
            self.count,
            self.min,
            self.max,
            self._exact,
            self._positive,
            self._negative,
            self._zeros,
        )

    def __repr__(self) -> str:
        kind = "exact" if self.exact else f"within {RELATIVE_ERROR:.0%}"
        return f"Quantiles(count={self.count}, {kind})"
