"""How VT-d hardware shapes a scenario's units (the ``unit_model`` of :class:`VtdPrq`), and
what it does with a page request the queue cannot take (:data:`VTD_HARDWARE`).

``[vendor.vtd]`` options (kernel-facts §3.2, §7):

- ``prq_order``: the PQA queue size field, 0..7: the page request queue holds ``128 << order``
  descriptors (the driver's ``PRQ_ORDER`` was 0, then 2, now 4: 2048). Replaces every unit's
  ``queue_entries``.
- ``pss``: ECAP.PSS, 0..31: the unit supports ``2 << pss`` PASIDs, so ``pss + 1`` bits, and the
  driver never goes beyond 20 bits (``PASID_MAX``). Replaces every unit's ``pasid_bits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ioasid_core.plugin import (
    MAX_PASID_BITS,
    HardwareRules,
    InvalidArgumentError,
    OptionProblem,
    UnitShape,
    int_problems,
)
from ioasid_vtd.descriptors import DESCRIPTOR_SIZE

__all__ = [
    "PRQ_DEFAULT_ENTRIES",
    "PRQ_DEFAULT_ORDER",
    "PRQ_MAX_ORDER",
    "PSS_MAX",
    "VTD_HARDWARE",
    "VtdUnits",
    "prq_entries",
]

PRQ_MAX_ORDER: Final = 7
"""PQA's queue size field is 3 bits: 2^n pages of 4 KiB, n = 0..7."""
PRQ_DEFAULT_ORDER: Final = 4
"""The driver's current ``PRQ_ORDER`` (64 KiB); it was 0 and then 2 in older kernels."""
_PAGE_SIZE: Final = 4096


def prq_entries(order: int) -> int:
    """Descriptors in a PRQ whose PQA size field is ``order`` (0 → 128 … 7 → 16384).

    The ring is ``4 KiB << order`` bytes of 32-byte descriptors; the same depth is what the
    driver gives PCI PRI as the outstanding-request allocation.
    """
    if type(order) is not int or not 0 <= order <= PRQ_MAX_ORDER:
        raise InvalidArgumentError(
            f"PQA queue size {order!r} is not a 3-bit value (0..{PRQ_MAX_ORDER}: "
            f"{_PAGE_SIZE // DESCRIPTOR_SIZE} to "
            f"{(_PAGE_SIZE << PRQ_MAX_ORDER) // DESCRIPTOR_SIZE} descriptors)"
        )
    return (_PAGE_SIZE << order) // DESCRIPTOR_SIZE


PRQ_DEFAULT_ENTRIES: Final = prq_entries(PRQ_DEFAULT_ORDER)

PSS_MAX: Final = 31
"""ECAP.PSS is 5 bits (39:35)."""


VTD_HARDWARE: Final = HardwareRules(overflow_response=None, sticky_overflow=True)
"""A full PRQ sets PRO (Page Request Overflow) and the request is dropped, with no answer:
"unlike VT-d, where PRO just drops" (vendors-amd-riscv.md §3.4, beside the RISC-V IOMMU's
auto SUCCESS). PRO stays set, and requests keep being dropped, until software clears it; the
driver clears it only once it has drained the queue (head == tail) and discarded the partial
groups (kernel-facts §3.2 "Overflow", and its drain on PASID teardown, which retries
"while PRO is set"; kernel commit 973b546). A dropped LPIG request leaves its device
waiting for an answer that never comes (a PRI timeout on real hardware). The same hardware
under both drivers (``vtd`` and ``vtd-iopf``)."""


class VtdUnits:
    """VT-d's :class:`~ioasid_core.plugin.UnitModel`."""

    option_keys: frozenset[str] = frozenset({"prq_order", "pss"})
    max_queue_entries: int = prq_entries(PRQ_MAX_ORDER)
    """A unit's PRQ holds at most 16384 descriptors (PQA order 7: 128 pages)."""

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return [
            *int_problems(options, "prq_order", 0, PRQ_MAX_ORDER),
            *int_problems(options, "pss", 0, PSS_MAX),
        ]

    def shape(
        self, pasid_bits: int, queue_entries: int, options: Mapping[str, object]
    ) -> UnitShape:
        order = options.get("prq_order")
        pss = options.get("pss")
        return UnitShape(
            pasid_bits=pasid_bits if not isinstance(pss, int) else min(pss + 1, MAX_PASID_BITS),
            queue_entries=queue_entries if not isinstance(order, int) else prq_entries(order),
        )
