"""A scenario's ``[vendor.<section>]`` options: who reads them, and how they are checked.

A scenario is vendor-neutral where it can be; where it cannot (queue depth, PASID width,
register layout) a vendor section says what that vendor's hardware is like. Two capabilities
of a vendor read options, both optional attributes of the :class:`VendorPrq` a plugin hands
over:

- ``unit_model`` (:class:`UnitModel`): how the vendor's hardware shapes the scenario's units:
  the queue depth (VT-d ``PQA`` order, SMMUv3 ``log2size``), the PASID width (VT-d
  ``ECAP.PSS``, SMMUv3 ``IDR1.SSIDSIZE``, virtio-iommu ``PASID_SIZE``), a cap on every
  device's width (SMMUv3 linear context-descriptor tables);
- ``guest_pasids`` (:class:`~ioasid_core.guest.GuestPasidPath`): how guests get PASIDs.

Each declares the keys it reads and checks their values. A key no capability of the vendor
reads is an error naming ``vendor.<section>.<key>``, and so is a section that no installed
vendor reads (a typo would otherwise be ignored in silence). Related vendors may share one
section (``option_section``: the three SMMUv3 vendors read ``[vendor.smmuv3]``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Final, Protocol, runtime_checkable

import attrs

from ioasid_core.guest import OptionProblem, guest_path

__all__ = [
    "NEUTRAL_UNITS",
    "NeutralUnits",
    "UnitModel",
    "UnitShape",
    "bool_problems",
    "int_problems",
    "option_problems",
    "option_section",
    "options_for",
    "unit_model",
    "unread_sections",
]


@attrs.frozen(kw_only=True)
class UnitShape:
    """One unit as a vendor's hardware has it, in one run."""

    pasid_bits: int
    """The unit's PASID width."""
    queue_entries: int
    """Entries of its page-request queue."""
    device_pasid_bits: int | None = None
    """A cap on the width of every device behind the unit (None: the device's own)."""


@runtime_checkable
class UnitModel(Protocol):
    """How a vendor's hardware shapes a scenario's vendor-neutral units."""

    option_keys: frozenset[str]
    """The keys of the vendor's section this model reads."""

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        """What is wrong with the values of this model's keys (others are not its business)."""

    def shape(
        self, pasid_bits: int, queue_entries: int, options: Mapping[str, object]
    ) -> UnitShape:
        """A unit the scenario declares with ``pasid_bits`` and ``queue_entries``, as this
        vendor's hardware has it under ``options`` (checked already)."""


class NeutralUnits:
    """The default: the units are what the scenario says."""

    option_keys: frozenset[str] = frozenset()

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return []

    def shape(
        self, pasid_bits: int, queue_entries: int, options: Mapping[str, object]
    ) -> UnitShape:
        return UnitShape(pasid_bits=pasid_bits, queue_entries=queue_entries)


NEUTRAL_UNITS: Final = NeutralUnits()


def unit_model(vendor: object) -> UnitModel:
    """``vendor.unit_model`` if it offers one, else :data:`NEUTRAL_UNITS`; ``TypeError``
    naming what is missing if it offers something that is not a :class:`UnitModel`."""
    from ioasid_core.profile import profile_of  # (it imports this module)

    return profile_of(vendor).unit_model


def option_section(vendor: object) -> str:
    """The ``[vendor.<section>]`` a vendor reads: its ``option_section``, else its name."""
    from ioasid_core.profile import profile_of  # (it imports this module)

    return profile_of(vendor).option_section


def options_for(
    sections: Iterable[tuple[str, Iterable[tuple[str, object]]]], vendor: object
) -> dict[str, object]:
    """The options of ``vendor``'s section (empty if the scenario has none)."""
    wanted = option_section(vendor)
    return next((dict(items) for name, items in sections if name == wanted), {})


def option_problems(vendor: object, options: Mapping[str, object]) -> list[OptionProblem]:
    """Everything wrong with ``vendor``'s section: keys none of its capabilities reads, then
    each capability's own checks."""
    readers = (unit_model(vendor), guest_path(vendor))
    known = frozenset().union(*(reader.option_keys for reader in readers))
    if known:
        allowed = f"this vendor reads {', '.join(sorted(known))}"
    else:
        allowed = "this vendor reads no options"
    problems: list[OptionProblem] = [
        (key, f"unknown key ({allowed})") for key in options if key not in known
    ]
    for reader in readers:
        mine = {key: value for key, value in options.items() if key in reader.option_keys}
        problems += reader.option_problems(mine)
    return problems


def unread_sections(
    sections: Iterable[str], installed: Collection[object]
) -> list[tuple[str, str]]:
    """``(section, why)`` for each section no installed vendor reads."""
    readable = sorted({option_section(vendor) for vendor in installed})
    why = (
        f"no installed vendor reads this section (vendors read: {', '.join(readable)})"
        if readable
        else "no vendor is installed to read it"
    )
    return [(name, why) for name in sections if name not in readable]


def int_problems(
    options: Mapping[str, object], key: str, low: int, high: int, *, power_of_two: bool = False
) -> list[OptionProblem]:
    """A problem if ``options[key]`` is given and is not an integer in ``low..high`` (and a
    power of two, if asked); for a unit model's ``option_problems``."""
    if key not in options:
        return []
    value = options[key]
    kind = "a power of two" if power_of_two else "an integer"
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not low <= value <= high
        or (power_of_two and value & (value - 1))
    ):
        return [(key, f"expected {kind} in {low}..{high}, got {value!r}")]
    return []


def bool_problems(options: Mapping[str, object], key: str) -> list[OptionProblem]:
    """A problem if ``options[key]`` is given and is not a boolean."""
    if key in options and not isinstance(options[key], bool):
        return [(key, f"expected true or false, got {options[key]!r}")]
    return []
