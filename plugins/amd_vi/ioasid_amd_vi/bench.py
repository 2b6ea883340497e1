"""``amd_vi_ppr_ratio``: the AMD-Vi page-request path per PPR log entry, against a floor.

Measured: a 512-entry PPR log (the driver's size) of requests from four devices for the
PASIDs bound on them, each closing its group, serviced 128 entries at a time through the
same codec and ``PrqPipeline.process_rows`` the replay uses: decode, resolve under the
vendor's ``DEVICE`` policy, answer, encode the COMPLETE_PPR_REQUESTs. Baseline:
``struct.iter_unpack`` of the entries (what the decoders use) plus one ``dict.get`` of each
one's PASID, in the same process
(:func:`ioasid_core.plugin.chunked_ratio`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from ioasid_amd_vi.handlers import AmdViPrq
from ioasid_amd_vi.hardware import PPR_LOG_DEFAULT_ENTRIES
from ioasid_amd_vi.ppr import PPR_ENTRY_SIZE
from ioasid_core.plugin import (
    AddressSpace,
    BenchmarkFigure,
    IoasidSpace,
    IommuUnit,
    Perm,
    Platform,
    PrqPipeline,
    RequestRow,
    ResponseCode,
    SetType,
    chunked_ratio,
    service_chunks,
)

__all__ = ["FIGURES", "LIMIT", "amd_vi_ppr_ratio", "ppr_workload"]

LIMIT: Final = 10.0
UNIT: Final = "amd-iommu0"
CHUNK: Final = 128
_DEVICES: Final = 4
_PASIDS_PER_DEVICE: Final = 16


def ppr_workload(vendor: AmdViPrq | None = None) -> tuple[PrqPipeline, bytes]:
    """Four processes with one device each, bound to 16 PASIDs, and a full PPR log of
    requests from those devices for their own PASIDs, each closing its group."""
    vendor = vendor if vendor is not None else AmdViPrq()
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name=UNIT, vendor=vendor.name, pasid_bits=16))
    sva = space.create_set()
    own: list[tuple[int, list[int]]] = []
    for index in range(_DEVICES):
        proc = AddressSpace(f"proc-{index}")
        mm_set = space.create_set(proc, type=SetType.MM)
        platform.add_domain(f"sva-{index}", proc.name, [sva, mm_set])
        devid = 0x0200 + index
        device = platform.add_device(
            f"gpu-{index}", unit=UNIT, source_id=devid, owner=proc.name, domain=f"sva-{index}"
        )
        pasids = []
        for _ in range(_PASIDS_PER_DEVICE):
            pasid = space.alloc(sva, 1, 0xFFFF, proc)
            platform.bind(device.name, pasid, proc)
            pasids.append(pasid)
        own.append((devid, pasids))
    pipeline = PrqPipeline(platform, UNIT, vendor, ring_entries=PPR_LOG_DEFAULT_ENTRIES)
    rows: list[RequestRow] = []
    for i in range(PPR_LOG_DEFAULT_ENTRIES):
        devid, pasids = own[i % _DEVICES]
        pasid = pasids[i // _DEVICES % _PASIDS_PER_DEVICE]
        rw = Perm.READ | Perm.WRITE
        rows.append(
            (devid, pasid, True, i & 0x1FF, True, rw, 0x7F00_0000_0000 + i * 0x1000, False, None)
        )
    return pipeline, vendor.encode_request_rows(rows)


def _baseline(pipeline: PrqPipeline, log: bytes) -> Callable[[], int]:
    """``iter_unpack`` of the whole log and one ``dict.get`` of the PASID per entry."""
    iter_unpack = struct.Struct("<QQ").iter_unpack
    table = dict(pipeline.platform.space.records_view())
    count = len(log) // PPR_ENTRY_SIZE

    def run() -> int:
        get = table.get
        for raw0, _raw1 in iter_unpack(log):
            get(raw0 >> 16 & 0xFFFF)
        return count

    return run


def amd_vi_ppr_ratio(quick: bool = False) -> float:
    """The figure: ns per entry of decode+resolve+respond over the baseline's."""
    pipeline, log = ppr_workload()
    first = pipeline.process(pipeline.vendor.decode_batch(log[:PPR_ENTRY_SIZE]))
    assert [r.code for r in first] == [ResponseCode.SUCCESS]  # the workload resolves
    rounds = 10 if quick else 300
    return chunked_ratio(service_chunks(pipeline, log, CHUNK), _baseline(pipeline, log), rounds)


FIGURES: Final = (BenchmarkFigure("amd_vi_ppr_ratio", LIMIT, amd_vi_ppr_ratio),)
