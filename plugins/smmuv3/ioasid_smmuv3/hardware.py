"""How SMMUv3 hardware shapes a scenario's units (the ``unit_model`` of the three vendors).

The ``smmuv3``, ``smmuv3-pri`` and ``smmuv3-pri-iopf`` vendors read one section,
``[vendor.smmuv3]`` (kernel-facts §4, §7):

- ``ssidsize``: IDR1.SSIDSIZE, 0..20: the SMMU's SSID width. Replaces every unit's
  ``pasid_bits``.
- ``two_level_cd``: whether masters get two-level context-descriptor tables (default true).
  Without them a master's SSID width is capped at ``CTXDESC_LINEAR_CDMAX`` (10 bits), whatever
  the device and the SMMU could do: SVA PASIDs beyond 1023 fail to bind.
- ``evtq_log2size`` (the stall vendor) and ``priq_log2size`` (the PRI vendors), 1..19: the
  queue holds ``2 ** log2size`` entries (IDR1.EVTQS / PRIQS are 5-bit maxima). Replaces every
  unit's ``queue_entries``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from ioasid_core.plugin import OptionProblem, UnitShape, bool_problems, int_problems
from ioasid_smmuv3.model import CTXDESC_LINEAR_CDMAX, MAX_SSID_BITS

__all__ = ["MAX_QUEUE_LOG2", "SECTION", "SmmuUnits"]

SECTION: Final = "smmuv3"
MAX_QUEUE_LOG2: Final = 19
"""The largest queue the model accepts: 2^19 entries (IDR1's queue size fields are 5 bits;
Linux caps its queues well below)."""

QueueKey = Literal["evtq_log2size", "priq_log2size"]


class SmmuUnits:
    """SMMUv3's :class:`~ioasid_core.plugin.UnitModel`; ``queue`` is the queue the
    vendor's page requests arrive on."""

    option_keys: frozenset[str] = frozenset(
        {"ssidsize", "two_level_cd", "evtq_log2size", "priq_log2size"}
    )

    max_queue_entries: int = 1 << MAX_QUEUE_LOG2
    """A queue holds at most 2^19 entries (``log2size`` <= 19)."""

    def __init__(self, queue: QueueKey) -> None:
        self.queue: QueueKey = queue

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return [
            *int_problems(options, "ssidsize", 0, MAX_SSID_BITS),
            *bool_problems(options, "two_level_cd"),
            *int_problems(options, "evtq_log2size", 1, MAX_QUEUE_LOG2),
            *int_problems(options, "priq_log2size", 1, MAX_QUEUE_LOG2),
        ]

    def shape(
        self, pasid_bits: int, queue_entries: int, options: Mapping[str, object]
    ) -> UnitShape:
        ssidsize = options.get("ssidsize")
        log2size = options.get(self.queue)
        return UnitShape(
            pasid_bits=ssidsize if isinstance(ssidsize, int) else pasid_bits,
            queue_entries=1 << log2size if isinstance(log2size, int) else queue_entries,
            device_pasid_bits=None if options.get("two_level_cd", True) else CTXDESC_LINEAR_CDMAX,
        )
