"""Modelled operation times: seeded distributions, and the clock of the driver that pays them.

A scenario's ``[latency]`` table gives some modelled operations a duration. The replay runs
the operations one after another on one modelled driver thread: an operation starts at its
step's ``at`` or when the previous one ends, whichever is later, and takes a sampled time.
So a slow bind delays the page requests serviced after it, and their latency shows it.

Each operation draws from its own ``random.Random``, seeded by the run's seed and the
operation's name: the same file and seed give the same times, and giving one more
operation a distribution does not change the samples of the others.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Final, Literal, get_args

import attrs

from ioasid_core.quantiles import Quantiles

__all__ = [
    "DISTRIBUTIONS",
    "LATENCY_OPS",
    "Distribution",
    "DriverClock",
    "Exponential",
    "Fixed",
    "LatencyOp",
    "LogNormal",
    "Uniform",
]

LatencyOp = Literal[
    "alloc",
    "free",
    "bind",
    "unbind",
    "attach_spid",
    "detach_spid",
    "register_allocator",
    "unregister_allocator",
    "page_request_service",
]
"""The step ops that take time, and ``page_request_service``: answering one page request
group when a unit's queue is serviced."""
LATENCY_OPS: Final[tuple[LatencyOp, ...]] = get_args(LatencyOp)


@attrs.frozen
class Fixed:
    """Always ``us`` microseconds."""

    us: float

    def sample(self, rng: random.Random) -> float:
        return self.us


@attrs.frozen
class Uniform:
    """Evenly spread over ``[low_us, high_us]``."""

    low_us: float
    high_us: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low_us, self.high_us)


@attrs.frozen
class Exponential:
    """Memoryless, with mean ``mean_us``: arrivals of independent slow events."""

    mean_us: float

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean_us) if self.mean_us else 0.0


@attrs.frozen
class LogNormal:
    """Median ``median_us``, spread ``sigma`` (of the underlying normal): a long right
    tail, the usual shape of measured service times."""

    median_us: float
    sigma: float

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median_us), self.sigma) if self.median_us else 0.0


Distribution = Fixed | Uniform | Exponential | LogNormal

DISTRIBUTIONS: Final[Mapping[str, tuple[type[Distribution], tuple[str, ...]]]] = {
    # dist name: (class, parameter keys in the file)
    "fixed": (Fixed, ("us",)),
    "uniform": (Uniform, ("low_us", "high_us")),
    "exponential": (Exponential, ("mean_us",)),
    "lognormal": (LogNormal, ("median_us", "sigma")),
}


MAX_SAMPLE_US: Final = 1e12
"""The longest modelled operation (about 11.6 days): draws beyond it are capped."""


class DriverClock:
    """The modelled driver thread: when it is free again, and what each operation cost."""

    def __init__(
        self, latency: Mapping[LatencyOp, Distribution], seed: int, *, now: float = 0.0
    ) -> None:
        self.latency = dict(latency)
        self._rngs = {op: random.Random(f"{seed}/latency/{op}") for op in latency}
        self.free_at = now
        self.samples: dict[LatencyOp, Quantiles] = {op: Quantiles() for op in latency}
        """Per operation, each one's time from its step's ``at`` to its end (µs), summarised."""

    def start(self, at: float) -> float:
        """When a step due at ``at`` starts: the driver may still be busy."""
        return max(at, self.free_at)

    def spend(self, op: LatencyOp, start: float, due: float) -> float:
        """Run ``op`` from ``start``; return its end and record its latency from ``due``.
        An operation without a distribution takes no time."""
        dist = self.latency.get(op)
        if dist is None:
            return start
        # A long-tailed draw is capped, so modelled time stays a finite number whatever the
        # parameters (JSON has no infinity); MAX_SAMPLE_US is beyond any real operation.
        end = start + min(dist.sample(self._rngs[op]), MAX_SAMPLE_US)
        self.samples[op].add(end - due)
        self.free_at = end
        return end
