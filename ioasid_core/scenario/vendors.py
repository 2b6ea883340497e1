"""``[vendor.<name>]`` sections, source IDs and queue depths: everything of a scenario that
depends on which vendors replay it, read and checked here, once per command.

The loader reads the sections (plain values only: each vendor checks its own keys). Before
anything runs, :func:`check_vendors` checks them against the chosen vendors (and, given the
installed ones, that every section is read by one), every source ID against each chosen
vendor's queue format, and every unit's queue against the depth its hardware can have. It
returns the scenario marked as checked for those vendors (a :class:`CheckedScenario`), so
that :func:`ioasid_core.compare.compare` and each replay do not check again what the command
checked. A scenario not marked (an API caller's own) is still checked by each of them:
nothing runs on a section its vendor cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from ioasid_core.scenario.bounds import MAX_OPTION_ITEMS
from ioasid_core.scenario.reader import (
    Reader,
    ScenarioError,
    ScenarioProblem,
    describe,
    join,
    typed,
)
from ioasid_core.scenario.schema import OptionValue, Scenario
from ioasid_core.scenario.stream import written_steps
from ioasid_core.vendor_options import (
    option_problems,
    option_section,
    options_for,
    unread_sections,
)

if TYPE_CHECKING:
    from ioasid_core.prq.vendor import VendorPrq

__all__ = [
    "CheckedScenario",
    "check_queue_sizes",
    "check_source_ids",
    "check_vendor_sections",
    "check_vendors",
    "checked_options",
    "read_vendor_sections",
]


@attrs.frozen(kw_only=True)
class CheckedScenario(Scenario):
    """A scenario whose vendor sections and source IDs :func:`check_vendors` found good for
    the vendors named in ``checked_for``; it travels to worker processes with the mark."""

    checked_for: frozenset[str] = frozenset()


def _checked_for(scenario: Scenario) -> frozenset[str]:
    return scenario.checked_for if isinstance(scenario, CheckedScenario) else frozenset()


def read_vendor_sections(
    r: Reader, top: Mapping[str, object]
) -> tuple[tuple[str, tuple[tuple[str, OptionValue], ...]], ...]:
    """``[vendor.<name>]`` tables of plain values, or arrays of them (at most
    ``MAX_OPTION_ITEMS``, kept as tuples); each vendor checks its own keys."""
    if "vendor" not in top:
        return ()
    sections = r.table(top["vendor"], "vendor")
    if sections is None:
        return ()
    found = []
    for vendor, value in sections.items():
        where = join("vendor", vendor)
        options = r.table(value, where)
        if options is None:
            continue
        plain: list[tuple[str, OptionValue]] = []
        for key, item in options.items():
            if isinstance(item, str | int | float | bool):
                plain.append((key, item))
            elif isinstance(item, list) and len(item) > MAX_OPTION_ITEMS:
                r.bad(
                    join(where, key),
                    f"an array of {len(item)} items; at most {MAX_OPTION_ITEMS}",
                )
            elif isinstance(item, list) and all(
                isinstance(one, str | int | float | bool) for one in item
            ):
                plain.append((key, tuple(item)))
            else:
                r.bad(
                    join(where, key),
                    "expected a string, number or boolean, or an array of them, "
                    f"got {describe(item)}",
                )
        found.append((vendor, tuple(plain)))
    return tuple(found)


def check_vendor_sections(
    scenario: Scenario, vendors: Sequence[VendorPrq], installed: Sequence[VendorPrq] = ()
) -> None:
    """``ScenarioError`` listing every problem of the ``vendors``' sections, and (given the
    ``installed`` vendors) every section none of them reads."""
    problems: list[ScenarioProblem] = []
    seen: set[str] = set()
    for vendor in vendors:
        section = option_section(vendor)
        options = options_for(scenario.vendor_options, vendor)
        for key, what in option_problems(vendor, options):
            where = f"vendor.{section}.{key}"
            if where not in seen:  # vendors sharing a section share its problems
                seen.add(where)
                problems.append(ScenarioProblem(where, what))
    if installed:
        names = [name for name, _ in scenario.vendor_options]
        for name, what in unread_sections(names, installed):
            problems.append(ScenarioProblem(f"vendor.{name}", what))
    if problems:
        raise ScenarioError(scenario.source, problems)


def check_source_ids(scenario: Scenario, vendors: Sequence[VendorPrq]) -> None:
    """``ScenarioError`` naming each device whose source ID a chosen vendor's queue format
    cannot carry (a vendor's ``source_id_bits``: VT-d requester IDs are 16 bits; 32 if it
    does not say), before anything runs."""
    from ioasid_core.profile import profile_of  # (it imports the vendor options)

    problems: list[ScenarioProblem] = []
    given = [
        (f"platform.devices[{index}].source_id", device.source_id)
        for index, device in enumerate(scenario.platform.devices)
    ]
    given += [
        (f"{step.where}.source_id", step.source_id)
        for step in written_steps(scenario.steps)  # a generator gives no source_id
        if step.source_id is not None
    ]
    for where, source_id in given:
        for vendor in vendors:
            bits = profile_of(vendor).source_id_bits
            if source_id >> bits:
                problems.append(
                    ScenarioProblem(
                        where,
                        f"vendor {vendor.name!r} carries {bits}-bit source IDs "
                        f"(at most {(1 << bits) - 1:#x}), got {typed(source_id)}",
                    )
                )
    if problems:
        raise ScenarioError(scenario.source, problems)


def check_queue_sizes(scenario: Scenario, vendors: Sequence[VendorPrq]) -> None:
    """``ScenarioError`` naming each unit whose queue, as a chosen vendor shapes it, is
    deeper than that vendor's hardware can have (its profile's ``max_queue_entries``, from
    its unit model, checked when the vendor was collected:
    VT-d 16384, SMMUv3 2^19, virtio-iommu 32768 buffers), before anything runs."""
    from ioasid_core.profile import profile_of  # (it imports the vendor options)

    problems: list[ScenarioProblem] = []
    for vendor in vendors:
        profile = profile_of(vendor)
        most, model = profile.max_queue_entries, profile.unit_model
        if most is None:
            continue
        options = options_for(scenario.vendor_options, vendor)
        for index, unit in enumerate(scenario.platform.units):
            entries = model.shape(unit.pasid_bits, unit.queue_entries, options).queue_entries
            if entries > most:
                problems.append(
                    ScenarioProblem(
                        f"platform.units[{index}].queue_entries",
                        f"vendor {vendor.name!r} hardware queues hold at most {most} entries, "
                        f"got {entries} (a [vendor.{option_section(vendor)}] section can "
                        "size its queue)",
                    )
                )
    if problems:
        raise ScenarioError(scenario.source, problems)


def check_vendors(
    scenario: Scenario,
    vendors: Sequence[VendorPrq],
    *,
    sections_of: Sequence[VendorPrq] | None = None,
    installed: Sequence[VendorPrq] = (),
) -> Scenario:
    """Check ``scenario`` for ``vendors``: the sections (of ``sections_of``, by default the
    ``vendors`` themselves; given ``installed``, also that each section has a reader), then
    the source IDs, then the queue depths; ``ScenarioError`` for the first that finds any.

    Returns the scenario marked as checked for ``vendors`` (the same object when it was
    already, and nothing else is asked): a marked vendor is not checked again.
    """
    done = _checked_for(scenario)
    todo = [vendor for vendor in vendors if vendor.name not in done]
    if not todo and sections_of is None and not installed:
        return scenario
    check_vendor_sections(scenario, todo if sections_of is None else sections_of, installed)
    check_source_ids(scenario, todo)
    check_queue_sizes(scenario, todo)
    if not todo:
        return scenario
    fields = {field.name: getattr(scenario, field.name) for field in attrs.fields(Scenario)}
    return CheckedScenario(**fields, checked_for=done | {vendor.name for vendor in todo})


def checked_options(scenario: Scenario, vendor: VendorPrq) -> dict[str, object]:
    """The vendor's section of the scenario, checked unless :func:`check_vendors` did
    (``ScenarioError`` naming each bad key)."""
    options = options_for(scenario.vendor_options, vendor)
    if vendor.name in _checked_for(scenario):
        return options
    problems = option_problems(vendor, options)
    if problems:
        section = option_section(vendor)
        raise ScenarioError(
            scenario.source,
            [ScenarioProblem(f"vendor.{section}.{key}", what) for key, what in problems],
        )
    return options
