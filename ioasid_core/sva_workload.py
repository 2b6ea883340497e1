"""The page-request workload the vendors' speed figures share: processes each with one
device bound to its own PASIDs, and a full queue of requests from those devices for their
own PASIDs, each closing its group.

One builder, so that every vendor's figure measures the same work: only the queue format,
its size, the unit's PASID width and the source IDs differ between vendors."""

from __future__ import annotations

from collections.abc import Sequence

from ioasid_core.platform import AddressSpace, Platform
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.types import Perm, RequestRow
from ioasid_core.prq.vendor import VendorPrq, row_codec
from ioasid_core.space import IoasidSpace
from ioasid_core.types import SetType
from ioasid_core.units import IommuUnit

__all__ = ["sva_queue_workload"]

_PASIDS_PER_DEVICE = 16


def sva_queue_workload(
    vendor: VendorPrq,
    *,
    unit: str,
    pasid_bits: int,
    source_ids: Sequence[int],
    entries: int,
    device_prefix: str = "dev",
) -> tuple[PrqPipeline, bytes]:
    """A pipeline on one ``unit`` of ``vendor`` and ``entries`` encoded requests: one process
    and device per source ID, 16 PASIDs bound to each, the requests taking devices in turn
    and each device's PASIDs in turn, every request closing its group (index ``i & 0x1FF``)."""
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name=unit, vendor=vendor.name, pasid_bits=pasid_bits))
    sva = space.create_set()
    own: list[tuple[int, list[int]]] = []
    for index, source_id in enumerate(source_ids):
        proc = AddressSpace(f"proc-{index}")
        mm_set = space.create_set(proc, type=SetType.MM)
        platform.add_domain(f"sva-{index}", proc.name, [sva, mm_set])
        device = platform.add_device(
            f"{device_prefix}-{index}",
            unit=unit,
            source_id=source_id,
            owner=proc.name,
            domain=f"sva-{index}",
        )
        pasids = []
        for _ in range(_PASIDS_PER_DEVICE):
            pasid = space.alloc(sva, 1, (1 << pasid_bits) - 1, proc)
            platform.bind(device.name, pasid, proc)
            pasids.append(pasid)
        own.append((source_id, pasids))
    pipeline = PrqPipeline(platform, unit, vendor, ring_entries=entries)
    devices = len(own)
    rw = Perm.READ | Perm.WRITE
    rows: list[RequestRow] = []
    for i in range(entries):
        source_id, pasids = own[i % devices]
        pasid = pasids[i // devices % _PASIDS_PER_DEVICE]
        rows.append(
            (
                source_id,
                pasid,
                True,
                i & 0x1FF,
                True,
                rw,
                0x7F00_0000_0000 + i * 0x1000,
                False,
                None,
            )
        )
    return pipeline, row_codec(pipeline.vendor).encode_request_rows(rows)
