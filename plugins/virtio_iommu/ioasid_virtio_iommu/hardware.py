"""How a virtio-iommu device shapes a scenario's units (the ``unit_model`` of
:class:`~ioasid_virtio_iommu.handler.VirtioPrq`).

``[vendor.virtio-iommu]`` options (kernel-facts §5):

- ``pasid_size``: the PROBE ``PASID_SIZE`` property the device reports (RFC), in bits. The
  protocol's PASID fields are 32 bits wide; the model's page requests carry at most 20 (the
  PCIe PASID), so 0..20. Replaces every unit's ``pasid_bits``.
- ``event_queue_size``: the event virtqueue's size, a power of two up to 32768 (a split
  virtqueue's limit): each fault or page request takes one buffer the driver posted, and all
  of them can be in use (a virtqueue has no "one slot kept empty" rule). The model's ring
  keeps one slot empty to tell full from empty, so the unit gets one slot more: it holds
  exactly ``event_queue_size`` requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ioasid_core.plugin import MAX_PASID_BITS, OptionProblem, UnitShape, int_problems

__all__ = ["MAX_VIRTQUEUE_SIZE", "VirtioUnits"]

MAX_VIRTQUEUE_SIZE: Final = 32768


class VirtioUnits:
    """virtio-iommu's :class:`~ioasid_core.plugin.UnitModel`."""

    option_keys: frozenset[str] = frozenset({"pasid_size", "event_queue_size"})
    max_queue_entries: int = MAX_VIRTQUEUE_SIZE + 1
    """A split virtqueue has at most 32768 buffers (the model's ring: one more, never used)."""

    def option_problems(self, options: Mapping[str, object]) -> list[OptionProblem]:
        return [
            *int_problems(options, "pasid_size", 0, MAX_PASID_BITS),
            *int_problems(options, "event_queue_size", 2, MAX_VIRTQUEUE_SIZE, power_of_two=True),
        ]

    def shape(
        self, pasid_bits: int, queue_entries: int, options: Mapping[str, object]
    ) -> UnitShape:
        size = options.get("pasid_size")
        entries = options.get("event_queue_size")
        return UnitShape(
            pasid_bits=size if isinstance(size, int) else pasid_bits,
            # + 1: the ring's empty slot; the virtqueue's N buffers all hold an event.
            queue_entries=entries + 1 if isinstance(entries, int) else queue_entries,
        )
