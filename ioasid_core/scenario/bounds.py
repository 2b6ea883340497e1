"""The bounds of what a scenario file may ask for: checked at load time, before any work,
so a typo of a few zeros fails at once instead of filling memory for minutes."""

from __future__ import annotations

from typing import Final

from ioasid_core.units import MAX_PASID_BITS

__all__ = [
    "MAX_BURST",
    "MAX_CAPACITY",
    "MAX_GENERATED",
    "MAX_OPTION_ITEMS",
    "MAX_QUEUE_ENTRIES",
    "MAX_SCENARIO_BYTES",
    "MAX_SIGMA",
    "MAX_SOURCE_ID",
    "MAX_TIME_US",
    "MAX_WORK",
    "MIN_QUEUE_ENTRIES",
    "WIRE_PASID_LIMIT",
]

MAX_CAPACITY: Final = 1 << 24
"""The largest host space a scenario may ask for: 16 times ``PCI_PASID_MAX`` (no IOMMU has
PASIDs wider than 20 bits). A space's memory follows the highest ID handed out, about 9 bytes
an ID up to it (a list slot for the record and a byte of the map), so one allocation near the
top of this space costs 144 MiB; the core's own bound, 2^26, would cost 576 MiB."""
MAX_SOURCE_ID: Final = (1 << 32) - 1
"""Source IDs are at most 32 bits wide (SMMUv3 stream IDs, virtio-iommu endpoint IDs)."""
MIN_QUEUE_ENTRIES: Final = 2
"""A ring keeps one slot empty to tell full from empty, so it needs at least two."""
MAX_QUEUE_ENTRIES: Final = 1 << 19
"""The deepest queue any modelled hardware has: an SMMUv3 queue of ``2^19`` entries (VT-d's
PRQ holds at most 16384 descriptors, a split virtqueue 32768 buffers, AMD-Vi's PPR log 512
entries by the issue's facts). Each vendor may hold a unit to less (``max_queue_entries``)."""
MAX_SCENARIO_BYTES: Final = 32 << 20
"""The largest scenario file read (32 MiB): a hand-written or generated file is far smaller
(a 131k-step one is about 10 MiB); ``/dev/zero`` or a runaway generator script is not."""
MAX_WORK: Final = 1 << 25
"""The most events (steps plus page requests) one run of a file may ask for, generators
expanded: room for 10^7 steps of a realistic workload in one file (the mixed one of
docs/scale.md is 2.3 events a step: 2.3 x 10^7; a run of it took 3.6 minutes of CPU),
while a typo of a few zeros still fails at load. It bounds time, not memory: generated
steps stream and a run holds only what is live. See docs/scenarios.md."""
WIRE_PASID_LIMIT: Final = 1 << MAX_PASID_BITS
"""A page request carries at most a 20-bit PASID (the PCIe PASID prefix)."""
MAX_OPTION_ITEMS: Final = 4096
"""The longest array a ``[vendor.<name>]`` option may hold (e.g. device IDs)."""
MAX_TIME_US: Final = 1e15
"""The latest modelled time a scenario may name (about 31 years, in µs), and the longest
interval or latency parameter: far beyond any workload, and sums of them stay finite."""
MAX_SIGMA: Final = 10.0
"""The widest lognormal spread (sigma of log(time)): wider is not a latency model."""
MAX_BURST: Final = 1 << 16
"""The most page requests one step may send (groups x group_size + stop markers): a typo of
a few zeros should fail at load time, not fill memory for minutes."""
MAX_GENERATED: Final = 1 << 16
"""The most steps (binds, groups) one generator may stand for: a typo of a few zeros
should fail at load time, not fill memory."""
