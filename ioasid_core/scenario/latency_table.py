"""``[latency]``: the modelled operations that take time, each with its distribution."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from ioasid_core.latency import DISTRIBUTIONS, LATENCY_OPS, Distribution, LatencyOp
from ioasid_core.scenario.bounds import MAX_SIGMA, MAX_TIME_US
from ioasid_core.scenario.reader import Reader, describe, join

__all__ = ["read_latency"]

_ALL_PARAMS: Final = frozenset(k for _, keys in DISTRIBUTIONS.values() for k in keys)


def read_latency(
    r: Reader, top: Mapping[str, object]
) -> tuple[tuple[LatencyOp, Distribution], ...]:
    """``[latency]``: each modelled operation's distribution, e.g.
    ``alloc = { dist = "uniform", low_us = 1, high_us = 4 }``."""
    if "latency" not in top:
        return ()
    table = r.table(top["latency"], "latency")
    if table is None:
        return ()
    r.unknown_keys(table, "latency", LATENCY_OPS)
    found: list[tuple[LatencyOp, Distribution]] = []
    for op in LATENCY_OPS:
        if op in table:
            dist = distribution(r, table[op], f"latency.{op}")
            if dist is not None:
                found.append((op, dist))
    return tuple(found)


def distribution(r: Reader, value: object, path: str) -> Distribution | None:
    entry = r.table(value, path)
    if entry is None:
        return None
    name = r.string(entry, path, "dist", required=True)
    if name is not None and name not in DISTRIBUTIONS:
        r.bad(join(path, "dist"), f"expected one of {', '.join(DISTRIBUTIONS)}, got {name!r}")
    if name is None or name not in DISTRIBUTIONS:
        r.unknown_keys(entry, path, {"dist", *_ALL_PARAMS})
        return None
    build, keys = DISTRIBUTIONS[name]
    r.unknown_keys(entry, path, {"dist", *keys})
    params: list[float] = []
    for key in keys:
        what = (
            "a number >= 0 (the spread of log(time))"
            if key == "sigma"
            else ("a number of microseconds >= 0")
        )
        if key not in entry:
            r.missing(path, key, f"{what}: dist {name!r} needs it")
            continue
        number = entry[key]
        limit = MAX_SIGMA if key == "sigma" else MAX_TIME_US
        if isinstance(number, int | float) and math.isfinite(number) and number > limit:
            r.bad(join(path, key), f"expected at most {limit:g}, got {number:g}")
            continue
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not math.isfinite(number)
            or number < 0
        ):
            numeric = isinstance(number, int | float) and not isinstance(number, bool)
            shown = number if numeric else describe(number)
            r.bad(join(path, key), f"expected {what}, got {shown}")
            continue
        params.append(float(number))
    if len(params) != len(keys):
        return None
    if name == "uniform" and params[0] > params[1]:
        r.bad(
            join(path, "high_us"),
            f"expected high_us >= low_us ({params[0]:g}), got {params[1]:g}",
        )
        return None
    return build(*params)
