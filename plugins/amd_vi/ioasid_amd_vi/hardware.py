"""How AMD-Vi hardware shapes a scenario's units (the ``unit_model`` of the AMD vendors).

Both AMD vendors read ``[vendor.amd-vi]`` (vendors-amd-riscv.md §3.1, kernel-facts §7,
landscape.md "Queue sizes"):

- ``ppr_log_entries``: the PPR log's length, a power of two in 256..32768 (the driver's
  ``PPR_LOG_ENTRIES`` is 512, 8 KiB of 16-byte entries; 32768 is the most any AMD log
  takes, ``EVTLOG_SIZE_MAX``). Replaces every unit's ``queue_entries``.
- ``pasmax``: EFR PASmax, 0..19: the IOMMU supports PASIDs up to ``2^(pasmax+1) - 1``,
  i.e. ``pasmax + 1`` bits, and the driver never goes beyond 16 bits (``PASID_MASK``
  0xFFFF: "hardware only implement upto 16-bit PASID"). Replaces every unit's
  ``pasid_bits``. Without it a unit keeps the scenario's width, capped at 16 bits all the
  same: the driver's mask applies to every AMD IOMMU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ioasid_core.plugin import OptionProblem, UnitShape, int_problems

__all__ = [
    "DRIVER_PASID_BITS",
    "PASMAX_MAX",
    "PPR_LOG_DEFAULT_ENTRIES",
    "PPR_LOG_MAX_ENTRIES",
    "PPR_LOG_MIN_ENTRIES",
    "SECTION",
    "AmdUnits",
]

SECTION: Final = "amd-vi"
PPR_LOG_DEFAULT_ENTRIES: Final = 512
PPR_LOG_MIN_ENTRIES: Final = 256
PPR_LOG_MAX_ENTRIES: Final = 32768
PASMAX_MAX: Final = 19
"""PCIe PASIDs are 20 bits: PASmax + 1 <= 20."""
DRIVER_PASID_BITS: Final = 16
"""``PASID_MASK 0xffff``: the driver's own limit, whatever PASmax says."""


class AmdUnits:
    """AMD-Vi's :class:`~ioasid_core.plugin.UnitModel`."""

    option_keys: frozenset[str] = frozenset({"ppr_log_entries", "pasmax"})
    max_queue_entries: int = PPR_LOG_MAX_ENTRIES
    """No AMD log is longer (the core refuses a deeper unit for these vendors)."""

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return [
            *int_problems(
                options,
                "ppr_log_entries",
                PPR_LOG_MIN_ENTRIES,
                PPR_LOG_MAX_ENTRIES,
                power_of_two=True,
            ),
            *int_problems(options, "pasmax", 0, PASMAX_MAX),
        ]

    def shape(
        self, pasid_bits: int, queue_entries: int, options: Mapping[str, object]
    ) -> UnitShape:
        entries = options.get("ppr_log_entries")
        pasmax = options.get("pasmax")
        bits = pasmax + 1 if isinstance(pasmax, int) else pasid_bits
        return UnitShape(
            pasid_bits=min(bits, DRIVER_PASID_BITS),
            queue_entries=entries if isinstance(entries, int) else queue_entries,
        )
