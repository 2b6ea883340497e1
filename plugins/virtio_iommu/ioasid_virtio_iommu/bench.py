"""``virtio_prq_ratio``: the virtio-iommu page-request path, per event, over a plain baseline.

Measured: a chunk of 48-byte page-request events goes through what the driver does when it
services its event queue (``VirtioPrq.decode_batch``, then ``PrqPipeline.process``: IOPF
grouping, vendor check, ENDPOINT resolution, one response per group; then
``VirtioPrq.encode_responses``). Baseline: the same events, each read with one
``struct.iter_unpack`` of the whole records (what the decoders use) plus one ``dict.get``
keyed by each one's PASID. Both
sides run in ~0.5 ms chunks through :func:`ioasid_core.plugin.chunked_ratio`.

The ring itself is left out: it is the device side, and a memcpy.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Final

from ioasid_core.plugin import (
    AddressSpace,
    BenchmarkFigure,
    IoasidSpace,
    IommuUnit,
    LookupPolicy,
    PageRequest,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
    SetType,
    chunked_ratio,
    service_chunks,
)
from ioasid_virtio_iommu.faults import EXTENDED_SIZE
from ioasid_virtio_iommu.handler import VirtioPrq
from ioasid_virtio_iommu.probe import VENDOR

__all__ = ["FIGURES", "LIMIT", "bench_setup", "virtio_prq_ratio"]

LIMIT: Final = 10.0
UNIT: Final = "viommu0"
MEASURED_CHUNK: Final = 128
"""Events per measured chunk (~0.5 ms)."""
BASELINE_CHUNK: Final = 4096
"""Events per baseline chunk (~0.5 ms: the baseline is some 30 times cheaper per event)."""
_RECORD = struct.Struct("<BBHIIIQHHIQQ")


def bench_setup(
    events: int, *, endpoints: int = 8, pasids: int = 16, seed: int = 2021
) -> tuple[PrqPipeline, VirtioPrq, bytes, list[int]]:
    """A guest with ``endpoints`` endpoints, each in its own domain owning its own PASID set
    (``pasids`` PASIDs bound to the endpoint's process), and ``events`` encoded page requests
    (single-request groups, random endpoint, one of its own PASIDs: every one resolves).

    Returns the pipeline (ENDPOINT policy), the vendor, the events and their PASIDs.
    """
    rnd = random.Random(seed)
    space = IoasidSpace(1 << 20)
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name=UNIT, vendor=VENDOR, pasid_bits=20))
    own: list[list[int]] = []
    for ep in range(endpoints):
        proc = AddressSpace(f"proc-{ep}")
        table = space.create_set(proc, type=SetType.MM)
        platform.add_domain(f"dom-{ep}", proc.name, [table])
        platform.add_device(
            f"ep-{ep}", unit=UNIT, source_id=ep + 1, owner=proc.name, domain=f"dom-{ep}"
        )
        mine = []
        for _ in range(pasids):
            pasid = space.alloc(table, 1, (1 << 20) - 1, proc)
            platform.bind(f"ep-{ep}", pasid, proc)
            mine.append(pasid)
        own.append(mine)
    vendor = VirtioPrq()
    pipeline = PrqPipeline(platform, UNIT, vendor, policy=LookupPolicy.ENDPOINT)
    raw = bytearray()
    keys = []
    for i in range(events):
        ep = rnd.randrange(endpoints)
        pasid = rnd.choice(own[ep])
        keys.append(pasid)
        raw += vendor.encode_request(
            PageRequest(ep + 1, pasid, True, i & 0x1FF, True, Perm.READ, 0x1000 * (i + 1))
        )
    return pipeline, vendor, bytes(raw), keys


def _baseline(raw: bytes, keys: list[int]) -> Callable[[], int]:
    """``struct.iter_unpack`` of whole records plus one ``dict.get``, a chunk at a time."""
    table = {k: k for k in keys}
    step = BASELINE_CHUNK * EXTENDED_SIZE
    chunks = [raw[i : i + step] for i in range(0, len(raw), step)]
    turn = [0]

    def run() -> int:
        chunk = chunks[turn[0] % len(chunks)]
        turn[0] += 1
        get = table.get
        for record in _RECORD.iter_unpack(chunk):
            get(record[5])
        return len(chunk) // EXTENDED_SIZE

    return run


def virtio_prq_ratio(quick: bool = False) -> float:
    """Per event: decode + resolve + respond, over unpack + ``dict.get``."""
    events = 4096 if quick else 16_384
    pipeline, _, raw, keys = bench_setup(events)
    rounds = 10 if quick else 300
    ratio = chunked_ratio(
        service_chunks(pipeline, raw, MEASURED_CHUNK), _baseline(raw, keys), rounds
    )
    # The workload must be what it claims: every event answered SUCCESS.
    if set(pipeline.counters.responses) - {ResponseCode.SUCCESS}:
        raise AssertionError(f"benchmark events did not all resolve: {pipeline.counters}")
    return ratio


FIGURES: Final = (BenchmarkFigure("virtio_prq_ratio", LIMIT, virtio_prq_ratio),)
