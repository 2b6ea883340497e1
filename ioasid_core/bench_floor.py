"""The floor of ``replay_events_per_s_ratio``: what one average event of the mixed workload
must cost, in the figure's own baseline (dict pairs): replaying it whatever the design
(``floor_replay``), and with the ``Step`` that loading builds per event (``floor``).

Each part is timed alone in a tight loop (best of several rounds) on what one real run of
the workload does: the bursts its devices send, the lookups its answers need, its binds and
unbinds. Nothing else is counted (no ring, no dispatch, no answer written, no counters, no
checking of the file), so a replay can only cost more. ``python -m ioasid_core.bench_floor``
prints the table of docs/scale.md ("The floor of an event").
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from collections.abc import Callable, Sequence
from typing import Final

from ioasid_core.bench_scale import _dict_pair_ns, load_mixed
from ioasid_core.bits import DecodeError
from ioasid_core.profile import profile_of
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import Resolution
from ioasid_core.prq.types import RequestRow
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.quantiles import Quantiles
from ioasid_core.scenario.schema import Step
from ioasid_core.scenario.stream import hold_steps
from ioasid_core.space import IoasidSpace
from ioasid_core.workload import mixed_workload_toml

__all__ = ["COMMON_PARTS", "event_floor"]

COMMON_PARTS: Final = ("step", "random_draw", "alloc_free", "lookups", "latency_sample")
"""The parts every vendor pays (the vendor's own are ``encode`` and ``decode``)."""


def _best_ns(work: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    clock = time.process_time_ns
    for _ in range(rounds):
        gc.collect()
        start = clock()
        work()
        best = min(best, clock() - start)
    return best


def _record(
    pipeline: PrqPipeline, bursts: list[list[RequestRow]], lookups: list[tuple[int, bool, int]]
) -> None:
    """Make ``pipeline`` note each burst its devices send and each lookup it makes."""
    submit, resolve = pipeline.submit_rows, pipeline._resolve

    def noted_submit(rows: Sequence[RequestRow]) -> int:
        bursts.append(list(rows))
        return submit(rows)

    def noted_resolve(source: int, valid: bool, pasid: int) -> Resolution:
        lookups.append((source, valid, pasid))
        return resolve(source, valid, pasid)

    pipeline.submit_rows = noted_submit  # type: ignore[method-assign]
    pipeline._resolve = noted_resolve


def _codec_ns(
    vendor: VendorPrq, bursts: list[list[RequestRow]], rounds: int
) -> tuple[float, float]:
    """CPU ns to encode every burst with ``vendor``'s row codec, and to decode them all (an
    entry that is not a request makes its burst decode entry by entry, as the pipeline
    does)."""
    codec = profile_of(vendor).rows
    encode, decode = codec.encode_request_rows, codec.decode_rows
    raws = [encode(burst) for burst in bursts]
    size = vendor.entry_size

    def encoding() -> None:
        for burst in bursts:
            encode(burst)

    def decoding() -> None:
        for raw in raws:
            try:
                decode(raw)
            except DecodeError:
                for start in range(0, len(raw), size):
                    with contextlib.suppress(DecodeError):
                        decode(raw[start : start + size])

    return _best_ns(encoding, rounds), _best_ns(decoding, rounds)


def event_floor(
    vendors: Sequence[VendorPrq], *, events: int = 20_000, rounds: int = 5
) -> dict[str, dict[str, float]]:
    """Per event of the mixed workload of ``events`` steps, in dict pairs: ``"common"`` has
    the parts every vendor pays (:data:`COMMON_PARTS`), each vendor its ``encode`` and
    ``decode`` and its ``floor`` (with a ``Step`` per event) and ``floor_replay`` (without:
    what replaying alone must cost)."""
    from ioasid_core.prq.generic import GenericPrq
    from ioasid_core.replay import _Run

    scenario = load_mixed(mixed_workload_toml(events))
    steps = hold_steps(scenario.steps)  # walked three times below: made once
    n = len(steps)
    binds = sum(step.op == "bind" for step in steps) / n
    pair = min(_dict_pair_ns(100) for _ in range(3))

    # One generic run, recording its bursts and lookups.
    generic = GenericPrq()
    run = _Run(scenario, generic, generic.default_policy, None, scenario.seed)
    bursts: list[list[RequestRow]] = []
    lookups: list[tuple[int, bool, int]] = []
    (pipeline,) = run.pipelines.values()  # the workload has one unit
    resolve = pipeline._resolve
    _record(pipeline, bursts, lookups)
    run.run(steps)
    groups = len(bursts)

    samples = [
        {
            "op": s.op,
            "at": s.at,
            "device": s.device,
            "set": s.set,
            "address_space": s.address_space,
            "name": s.name,
            "pasid": s.pasid,
            "groups": s.groups,
            "group_size": s.group_size,
            "perm": s.perm,
            "stop_markers": s.stop_markers,
            "service": s.service,
            "where": s.where,
        }
        for s in steps[:5000]
    ]

    def build() -> None:
        for fields in samples:
            Step(**fields)  # type: ignore[arg-type]

    rng = random.Random(scenario.seed)

    def draws() -> None:
        draw = rng.random
        for _ in range(20_000):
            draw()

    space = IoasidSpace(1 << 20)
    owner = space.create_set()
    top = space.capacity - 1
    for _ in range(1000):
        space.alloc(owner, 1, top)

    def core() -> None:
        alloc, free = space.alloc, space.free
        for _ in range(5000):
            free(owner, alloc(owner, 1, top))

    def look() -> None:
        for device, valid, pasid in lookups:
            resolve(device, valid, pasid)

    quantiles = Quantiles()
    values = [float(i % 977) for i in range(20_000)]

    def sample() -> None:
        add = quantiles.add
        for value in values:
            add(value)

    common = {
        "step": _best_ns(build, rounds) / len(samples) / pair,
        "random_draw": _best_ns(draws, rounds) / 20_000 / pair,
        "alloc_free": _best_ns(core, rounds) / 5000 * binds / pair,
        "lookups": _best_ns(look, rounds) / n / pair,
        "latency_sample": _best_ns(sample, rounds) / 20_000 * groups / n / pair,
    }
    out: dict[str, dict[str, float]] = {"common": common}
    shared = sum(common.values())
    for vendor in vendors:
        encode_ns, decode_ns = _codec_ns(vendor, bursts, rounds)
        own = {"encode": encode_ns / n / pair, "decode": decode_ns / n / pair}
        replaying = shared - common["step"] - common["random_draw"] + own["encode"] + own["decode"]
        out[vendor.name] = {
            **own,
            "floor_replay": replaying,
            "floor": shared + own["encode"] + own["decode"],
        }
    out["baseline"] = {"dict_pair_ns": pair, "events": float(n)}
    return out


def _main() -> None:
    from ioasid_core.compare import available_vendors
    from ioasid_core.plugins import new_plugin_manager

    floor = event_floor(list(available_vendors(new_plugin_manager().hooks).values()))
    base = floor.pop("baseline")
    print(f"dict pair {base['dict_pair_ns']:.1f} ns, {base['events']:.0f} events")
    for part, pairs in floor.pop("common").items():
        print(f"  {part:16} {pairs:6.1f}")
    for name, parts in floor.items():
        print(
            f"  {name:16} encode {parts['encode']:5.1f}  decode {parts['decode']:5.1f}  "
            f"floor {parts['floor']:6.1f}  without loading {parts['floor_replay']:6.1f}"
        )


if __name__ == "__main__":
    _main()
