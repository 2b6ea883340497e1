"""What a unit's hardware does with a page request before software sees it.

By default the hardware writes every request into the queue while there is room, and a LAST
request it had to drop on overflow is answered SUCCESS by the hardware itself (the device
retries). Vendors differ (vendors-amd-riscv.md): the RISC-V IOMMU answers requests it cannot
queue with a code of its own (no device context: FAILURE; PRI disabled: INVALID) and, once its
queue overflowed, discards every request until software clears the flag (``pqof``); the AMD
driver has no auto-response at all (requests lost in an overflow are never answered); VT-d's
PRO drops without an answer and, like ``pqof``, stays set until the driver has drained the
queue (``ioasid_vtd.hardware.VTD_HARDWARE``).

A vendor says so with :class:`HardwareRules`, built per unit by its optional
``hardware_rules(platform, unit, options)`` (:class:`HardwareModel`). Whatever the reason, a
request the hardware keeps from software is answered only if it needs an answer (LAST and not
a stop marker); the others are discarded silently, as the PCIe rules (and the RISC-V
reference model) have it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Protocol, runtime_checkable

import attrs

from ioasid_core.platform import Platform
from ioasid_core.prq.types import RequestRow, ResponseCode

__all__ = ["DEFAULT_HARDWARE", "Admit", "HardwareModel", "HardwareRules", "hardware_rules"]

Admit = Callable[[RequestRow], ResponseCode | None]
"""Per request, before the queue: None to queue it, or the code the hardware answers with."""


@attrs.frozen(kw_only=True)
class HardwareRules:
    """A unit's hardware, as the page-request path sees it."""

    overflow_response: ResponseCode | None = ResponseCode.SUCCESS
    """The code the hardware answers a LAST request with that it dropped because the queue
    was full; None: no answer (the device waits for one that never comes)."""
    sticky_overflow: bool = False
    """Once the queue overflowed, every request is dropped (and answered as above) until
    software clears the flag, not only those that find the queue full."""
    admit: Admit | None = None
    """The hardware's own checks before the queue (None: it has none)."""


DEFAULT_HARDWARE: Final = HardwareRules()


@runtime_checkable
class HardwareModel(Protocol):
    """Optional: a vendor whose hardware treats requests otherwise than the default."""

    def hardware_rules(
        self, platform: Platform, unit: str, options: Mapping[str, object]
    ) -> HardwareRules:
        """The rules of ``unit`` on ``platform`` under the vendor's scenario ``options``
        (checked already by the vendor's unit model)."""


def hardware_rules(
    vendor: object, platform: Platform, unit: str, options: Mapping[str, object]
) -> HardwareRules:
    """``vendor``'s rules for ``unit``, or :data:`DEFAULT_HARDWARE`; ``TypeError`` naming the
    vendor if what it offers is not a :class:`HardwareRules`."""
    from ioasid_core.profile import profile_of  # (it imports the prq package)

    offered = profile_of(vendor).hardware_rules
    if offered is None:
        return DEFAULT_HARDWARE
    rules = offered(platform, unit, options)
    if not isinstance(rules, HardwareRules):
        name = getattr(vendor, "name", type(vendor).__name__)
        raise TypeError(f"vendor {name!r}: hardware_rules returned {rules!r}, not HardwareRules")
    return rules
