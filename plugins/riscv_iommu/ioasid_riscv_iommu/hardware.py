"""How RISC-V IOMMU hardware shapes a scenario's units (the ``unit_model`` of
``riscv-iommu``).

``[vendor.riscv-iommu]`` options (vendors-amd-riscv.md §3.4, landscape.md):

- ``pq_log2size``: the page-request queue holds ``2 ** pq_log2size`` records (the ``pqb``
  register's LOG2SZ-1 field holds one less), 1..19 (the model's bound, as for SMMUv3's
  queues: 2^19 records of 16 bytes). Replaces every unit's ``queue_entries``.
- ``pd``: the process-context width the capabilities register advertises, PD8, PD17 or
  PD20: 8, 17 or 20 PASID bits. Replaces every unit's ``pasid_bits``.
- ``pri_disabled``: device IDs (DIDs) whose device context has ``EN_PRI`` clear (at most
  4096): the IOMMU answers their page requests INVALID itself.

What the hardware does before software sees a request (the reference model's
``handle_page_request``, §3.4), as :class:`~ioasid_core.plugin.HardwareRules`:

- no device context for the DID (no device with that source ID behind the unit): the IOMMU
  answers FAILURE (cause 258, "DDT entry not valid");
- ``EN_PRI`` clear: INVALID (cause 260, "transaction type disallowed");
- ``pqof`` set, or the queue full (which sets it): SUCCESS, and every request is discarded
  until software clears ``pqof`` (the RFC driver does once it has drained the queue);
- in each case only a request needing an answer gets one: L=0 requests and stop markers
  are discarded silently.

Not modelled: IOMMU mode Off or Bare, a DID too wide for the DDT mode, a disabled queue and
memory faults on it (``pqmf``); ``PRPR`` (whether an auto-response carries the PASID) does
not matter, as auto-responses are counted, not encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ioasid_core.plugin import (
    HardwareRules,
    OptionProblem,
    Platform,
    RequestRow,
    ResponseCode,
    UnitShape,
    int_problems,
)

__all__ = [
    "MAX_DID_LIST",
    "MAX_PQ_LOG2",
    "PD_WIDTHS",
    "SECTION",
    "RiscvUnits",
    "riscv_hardware",
]

SECTION: Final = "riscv-iommu"
MAX_PQ_LOG2: Final = 19
PD_WIDTHS: Final = (8, 17, 20)
"""PD8, PD17, PD20."""
MAX_DID_LIST: Final = 4096
_DID_LIMIT: Final = 1 << 24


class RiscvUnits:
    """The RISC-V IOMMU's :class:`~ioasid_core.plugin.UnitModel`."""

    option_keys: frozenset[str] = frozenset({"pq_log2size", "pd", "pri_disabled"})
    max_queue_entries: int = 1 << MAX_PQ_LOG2
    """No page-request queue is longer (the core refuses a deeper unit for these vendors)."""

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        problems = int_problems(options, "pq_log2size", 1, MAX_PQ_LOG2)
        pd = options.get("pd", PD_WIDTHS[-1])
        if isinstance(pd, bool) or pd not in PD_WIDTHS:
            problems.append(("pd", f"expected 8, 17 or 20 (PD8, PD17, PD20), got {pd!r}"))
        problems += _did_list_problems(options, "pri_disabled")
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


def _did_list_problems(options: Mapping[str, object], key: str) -> list[OptionProblem]:
    if key not in options:
        return []
    value = options[key]
    if not isinstance(value, list | tuple) or len(value) > MAX_DID_LIST:
        return [(key, f"expected a list of at most {MAX_DID_LIST} device IDs, got {value!r}")]
    for index, did in enumerate(value):
        if isinstance(did, bool) or not isinstance(did, int) or not 0 <= did < _DID_LIMIT:
            return [(f"{key}[{index}]", f"expected a 24-bit device ID, got {did!r}")]
    return []


def riscv_hardware(platform: Platform, unit: str, options: Mapping[str, object]) -> HardwareRules:
    """The reference model's rules for ``unit``: device context, ``EN_PRI``, sticky ``pqof``
    with auto SUCCESS."""
    contexts = platform.sources(unit)  # live: a device plugged in later has a context
    listed = options.get("pri_disabled", ())
    disabled = frozenset(listed) if isinstance(listed, list | tuple) else frozenset()
    failure, invalid = ResponseCode.FAILURE, ResponseCode.INVALID

    def admit(row: RequestRow) -> ResponseCode | None:
        did = row[0]
        if did not in contexts:
            return failure
        if did in disabled:
            return invalid
        return None

    return HardwareRules(overflow_response=ResponseCode.SUCCESS, sticky_overflow=True, admit=admit)
