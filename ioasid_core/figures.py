"""What a benchmark figure is, and how one is timed: a ratio against a same-process baseline.

Kept apart from ``bench.py`` (the core's own figures, which build spaces, platforms and
scenarios) so that the plugin manager and plugins can name a figure without importing the
simulator. Machines here are noisy, so no figure is an absolute time: both sides run in many
short chunks (about half a millisecond each), interleaved, and each keeps its best time per
operation.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from ioasid_core.prq.vendor import row_codec

if TYPE_CHECKING:
    from ioasid_core.bits import Buffer
    from ioasid_core.prq.pipeline import PrqPipeline

__all__ = ["BenchmarkFigure", "best_per_op", "chunked_ratio", "service_chunks"]


@attrs.frozen
class BenchmarkFigure:
    """A figure a plugin adds to ``ioasid bench`` (through the ``ioasid_benchmarks`` hook).

    ``run(quick)`` returns the ratio; ``quick`` asks for a short smoke run.
    """

    name: str
    limit: float
    run: Callable[[bool], float]


def best_per_op(
    fn: Callable[[], int], rounds: int, clock: Callable[[], int] = time.perf_counter_ns
) -> float:
    """Best ns per operation over ``rounds`` runs of ``fn`` (which returns its op count)."""
    best = float("inf")
    for _ in range(rounds):
        start = clock()
        ops = fn()
        best = min(best, (clock() - start) / ops)
    return best


def chunked_ratio(measured: Callable[[], int], baseline: Callable[[], int], rounds: int) -> float:
    """Best time per operation of ``measured`` over that of ``baseline``, chunk by chunk.

    Each callable runs one short chunk (about half a millisecond) and returns how many
    operations it did; the two alternate ``rounds`` times. Plugins use this for their figures.
    """
    best_m = best_b = float("inf")
    gc.collect()
    for _ in range(rounds):
        best_b = min(best_b, best_per_op(baseline, 1))
        best_m = min(best_m, best_per_op(measured, 1))
    return best_m / best_b


def service_chunks(pipeline: PrqPipeline, raw: Buffer, entries: int) -> Callable[[], int]:
    """The measured side of a vendor's "decode, resolve and respond" figure: each call runs
    the pipeline's codec and ``process_rows`` over the next ``entries`` raw queue entries of
    ``raw`` (round robin), as a driver servicing its queue would (``service_raw`` without
    the ring copy)."""
    vendor = pipeline.vendor
    codec = row_codec(vendor)
    view = memoryview(raw)
    step = entries * vendor.entry_size
    chunks = [view[i : i + step] for i in range(0, len(view), step)]
    size = vendor.entry_size
    decode = codec.decode_rows
    process = pipeline.process_rows
    encode = codec.encode_response_rows
    turn = [0]

    def run() -> int:
        chunk = chunks[turn[0] % len(chunks)]
        turn[0] += 1
        encode(process(decode(chunk)))
        return len(chunk) // size

    return run
