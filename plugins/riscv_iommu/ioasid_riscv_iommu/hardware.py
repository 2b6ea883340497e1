"""How RISC-V IOMMU hardware shapes a scenario's units (the ``unit_model`` of
``riscv-iommu``).

``[vendor.riscv-iommu]`` options (vendors-amd-riscv.md §3.4, landscape.md):

- ``pq_log2size``: the page-request queue holds ``2 ** pq_log2size`` records (the ``pqb``
  register's LOG2SZ-1 field holds one less), 1..19 (the model's bound, as for SMMUv3's
  queues: 2^19 records of 16 bytes). Replaces every unit's ``queue_entries``.
- ``pd``: the process-context width the capabilities register advertises, PD8, PD17 or
  PD20: 8, 17 or 20 PASID bits. Replaces every unit's ``pasid_bits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ioasid_core.guest import OptionProblem
from ioasid_core.vendor_options import UnitShape, int_problems

__all__ = ["MAX_PQ_LOG2", "PD_WIDTHS", "SECTION", "RiscvUnits"]

SECTION: Final = "riscv-iommu"
MAX_PQ_LOG2: Final = 19
PD_WIDTHS: Final = (8, 17, 20)
"""PD8, PD17, PD20."""


class RiscvUnits:
    """The RISC-V IOMMU's :class:`~ioasid_core.vendor_options.UnitModel`."""

    option_keys: frozenset[str] = frozenset({"pq_log2size", "pd"})

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        problems = int_problems(options, "pq_log2size", 1, MAX_PQ_LOG2)
        pd = options.get("pd", PD_WIDTHS[-1])
        if isinstance(pd, bool) or pd not in PD_WIDTHS:
            problems.append(("pd", f"expected 8, 17 or 20 (PD8, PD17, PD20), got {pd!r}"))
        return problems

    def shape(
        self, pasid_bits: int, queue_entries: int, options: Mapping[str, object]
    ) -> UnitShape:
        log2size = options.get("pq_log2size")
        pd = options.get("pd")
        return UnitShape(
            pasid_bits=pd if isinstance(pd, int) else pasid_bits,
            queue_entries=1 << log2size if isinstance(log2size, int) else queue_entries,
        )
