"""Seeded generators: ``[[generators]]`` entries expanded into ordinary step tables.

Expansion happens at load time, before the step checks, so a generated step is checked
exactly like a written one (names live, devices plugged, ...) and the replay needs no
change. Everything is drawn from a ``random.Random`` seeded from the file, so the same
file and seed always give the same steps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from ioasid_core.scenario.schema import (
    AllocatorSwapsSpec,
    ChurnSpec,
    DriverPasidsSpec,
    GeneratorSpec,
    GuestAllocationsSpec,
    HotplugSpec,
    PageRequestStreamSpec,
    StormSpec,
)

__all__ = [
    "UNKNOWN_PASID_BASE",
    "RawStep",
    "expand",
    "expand_all",
    "generator_rng",
    "merge_steps",
]

UNKNOWN_PASID_BASE: Final = 0xFFF00
"""``unknown`` requests carry ``UNKNOWN_PASID_BASE + k % 256``: the top of the 20-bit
space, which the replay's bottom-up allocation does not reach in any example."""

RawStep = dict[str, object]
"""A step table as a file would spell it (``op``, ``at``, ...), before the step checks."""


def generator_rng(spec: GeneratorSpec, index: int, scenario_seed: int) -> random.Random:
    """The generator's own stream: its ``seed`` if given, else the scenario's mixed with
    its index, so two generators of one file do not draw the same numbers."""
    if spec.seed is not None:
        return random.Random(spec.seed)
    return random.Random(f"{scenario_seed}/generators[{index}]")


def expand(spec: GeneratorSpec, rng: random.Random) -> list[RawStep]:
    """The step tables ``spec`` stands for, in time order."""
    if isinstance(spec, ChurnSpec):
        return _churn(spec, rng)
    if isinstance(spec, PageRequestStreamSpec):
        return _stream(spec, rng)
    if isinstance(spec, GuestAllocationsSpec):
        return _guest_allocations(spec, rng)
    if isinstance(spec, DriverPasidsSpec):
        return _driver_pasids(spec, rng)
    if isinstance(spec, HotplugSpec):
        return _hotplug(spec, rng)
    if isinstance(spec, AllocatorSwapsSpec):
        return _allocator_swaps(spec, rng)
    return _storm(spec, rng)


def expand_all(
    specs: Sequence[tuple[str, GeneratorSpec]], scenario_seed: int
) -> list[tuple[str, RawStep]]:
    """Every generator's steps, each with its ``where`` (``generators[i]/<n>``), sorted by
    time; ties keep generator order, then the order within the generator."""
    found: list[tuple[float, int, int, str, RawStep]] = []
    for order, (path, spec) in enumerate(specs):
        index = _index(path, order)
        for n, table in enumerate(expand(spec, generator_rng(spec, index, scenario_seed))):
            found.append((_at(table), order, n, f"{path}/{n}", table))
    found.sort(key=lambda item: item[:3])
    return [(where, table) for _, _, _, where, table in found]


def merge_steps(
    explicit: Iterable[tuple[str, Mapping[str, object]]],
    generated: Sequence[tuple[str, Mapping[str, object]]],
) -> list[tuple[str, Mapping[str, object]]]:
    """Explicit steps in file order, generated ones slotted in by time.

    An explicit step goes before generated ones at the same ``at``. Explicit steps are
    never reordered among themselves, so an explicit ``at`` that goes back is still
    reported by the step checks; one without a usable ``at`` keeps the previous one's.
    """
    merged: list[tuple[str, Mapping[str, object]]] = []
    pending = list(generated)
    taken = 0
    last = 0.0
    for where, table in explicit:
        value = table.get("at", 0.0)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= last
        ):
            last = float(value)
        while taken < len(pending) and _at(pending[taken][1]) < last:
            merged.append(pending[taken])
            taken += 1
        merged.append((where, table))
    merged.extend(pending[taken:])
    return merged


def _index(path: str, fallback: int) -> int:
    """``i`` of ``generators[i]``: the seed mix uses the index in the file, not the order
    among the valid entries, so fixing an earlier bad entry does not reseed this one."""
    head, _, tail = path.partition("[")
    digits = tail.rstrip("]")
    return int(digits) if head == "generators" and digits.isdigit() else fallback


def _at(table: Mapping[str, object]) -> float:
    value = table["at"]
    assert isinstance(value, float)
    return value


def _gap(
    spec: ChurnSpec | DriverPasidsSpec | HotplugSpec | AllocatorSwapsSpec, rng: random.Random
) -> float:
    return spec.interval + (rng.randint(0, spec.jitter) if spec.jitter else 0)


def _window(
    spec: ChurnSpec | DriverPasidsSpec,
    rng: random.Random,
    opening: Callable[[str, int, float], list[RawStep]],
    closing: Callable[[str, float], RawStep],
) -> list[RawStep]:
    """``count`` names opened in turn, at most ``live`` open at once: the oldest is closed to
    make room, the rest at the end, oldest first; every gap drawn from the seed."""
    steps: list[RawStep] = []
    held: list[str] = []  # oldest first
    now = spec.at

    def close_oldest() -> None:
        nonlocal now
        steps.append(closing(held.pop(0), now))
        now += _gap(spec, rng)

    for n in range(spec.count):
        if len(held) == spec.live:
            close_oldest()
        name = f"{spec.prefix}{n}"
        steps += opening(name, n, now)
        held.append(name)
        now += _gap(spec, rng)
    while held:
        close_oldest()
    return steps


def _churn(spec: ChurnSpec, rng: random.Random) -> list[RawStep]:
    def bind(name: str, n: int, now: float) -> list[RawStep]:
        space = spec.address_space(n)
        return [
            {
                "op": "bind",
                "at": now,
                "device": spec.device,
                "set": spec.set,
                "address_space": space,
                "name": name,
            }
        ]

    def unbind(name: str, now: float) -> RawStep:
        return {"op": "unbind", "at": now, "device": spec.device, "pasid": name}

    return _window(spec, rng, bind, unbind)


def _driver_pasids(spec: DriverPasidsSpec, rng: random.Random) -> list[RawStep]:
    def alloc(name: str, n: int, now: float) -> list[RawStep]:
        steps: list[RawStep] = [
            {"op": "alloc", "at": now, "set": spec.set, "owner": spec.owner, "name": name}
        ]
        if spec.device is not None and spec.groups:  # an auxiliary domain, used at once
            steps.append(
                {
                    "op": "page_requests",
                    "at": now,
                    "device": spec.device,
                    "pasid": name,
                    "groups": spec.groups,
                }
            )
        return steps

    def free(name: str, now: float) -> RawStep:
        return {"op": "free", "at": now, "pasid": name}

    return _window(spec, rng, alloc, free)


def _size(bounds: tuple[int, int], rng: random.Random) -> int:
    low, high = bounds
    return low if low == high else rng.randint(low, high)


def _stream(spec: PageRequestStreamSpec, rng: random.Random) -> list[RawStep]:
    kinds = [kind for kind, _ in spec.mix]
    weights = [weight for _, weight in spec.mix]
    pools = dict(spec.pasids)
    steps: list[RawStep] = []
    for k in range(spec.count):
        device = rng.choice(spec.devices)
        (kind,) = rng.choices(kinds, weights)
        size = _size(spec.group_size, rng)
        step: RawStep = {
            "op": "page_requests",
            "at": spec.at + k * spec.interval,
            "device": device,
            "groups": 1,
            "group_size": size,
            "perm": list(spec.perm),
            "service": spec.service,
        }
        if kind == "unknown":
            step["pasid"] = UNKNOWN_PASID_BASE + k % 256
        elif kind == "foreign":
            step["pasid"] = rng.choice(spec.foreign_pasids)
        else:
            step["pasid"] = rng.choice(pools[device])
            if kind == "stop":
                # A device stopping a PASID drains its last group, then sends the marker.
                step["stop_markers"] = 1
        steps.append(step)
    return steps


def _storm(spec: StormSpec, rng: random.Random) -> list[RawStep]:
    steps: list[RawStep] = [
        {
            "op": "page_requests",
            "at": spec.at,
            "device": device,
            "pasid": pasid,
            "groups": spec.groups,
            "group_size": _size(spec.group_size, rng),
            "perm": list(spec.perm),
            "service": False,
        }
        for device, pasid in zip(spec.devices, spec.pasids, strict=True)
    ]
    steps.append({"op": "service", "at": spec.at + spec.delay, "unit": spec.unit})
    return steps


def _guest_allocations(spec: GuestAllocationsSpec, rng: random.Random) -> list[RawStep]:
    steps: list[RawStep] = []
    live: list[str] = []
    for n in range(spec.count):
        at = spec.at + n * spec.interval
        name = f"{spec.prefix}{n}"
        step: RawStep = {"op": "guest_alloc", "at": at, "vm": spec.vm, "name": name}
        if spec.owner is not None:
            step["owner"] = spec.owner
        steps.append(step)
        live.append(name)
        if rng.random() < spec.free:
            gone = live.pop(rng.randrange(len(live)))
            steps.append(
                {"op": "guest_free", "at": at + spec.interval / 2, "vm": spec.vm, "pasid": gone}
            )
    if spec.drain:
        end = spec.at + spec.count * spec.interval
        for k, name in enumerate(live):
            steps.append(
                {
                    "op": "guest_free",
                    "at": end + k * spec.interval / 2,
                    "vm": spec.vm,
                    "pasid": name,
                }
            )
    return steps


def _hotplug(spec: HotplugSpec, rng: random.Random) -> list[RawStep]:
    steps: list[RawStep] = []
    now = spec.at
    where: RawStep = {"unit": spec.unit} if spec.vm is None else {"vm": spec.vm, "unit": spec.unit}
    for _ in range(spec.count):
        for op in ("unplug", "plug"):
            steps.append({"op": op, "at": now, **where})
            now += _gap(spec, rng)
    return steps


def _allocator_swaps(spec: AllocatorSwapsSpec, rng: random.Random) -> list[RawStep]:
    steps: list[RawStep] = []
    now = spec.at
    for n in range(spec.count):
        name = f"{spec.prefix}{n}"
        kind = spec.kinds[n % len(spec.kinds)]
        steps.append({"op": "register_allocator", "at": now, "allocator": name, "kind": kind})
        now += _gap(spec, rng)
        unregister: RawStep = {"op": "unregister_allocator", "at": now, "allocator": name}
        if spec.force:
            unregister["force"] = True
        steps.append(unregister)
        now += _gap(spec, rng)
    return steps
