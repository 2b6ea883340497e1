"""``riscv_prq_ratio``: the RISC-V IOMMU page-request path per queue record, against a floor.

Measured: a 512-record page-request queue of requests from four devices for the PASIDs
bound on them, each closing its group, serviced 128 records at a time through the same
codec and ``PrqPipeline.process_rows`` the replay uses: decode, resolve under the vendor's
``DEVICE`` policy, answer, encode the ATS.PRGR commands. Baseline: ``struct.iter_unpack`` of
the records (what the decoders use) plus one ``dict.get`` of each one's PASID, in the same
process
(:func:`ioasid_core.plugin.chunked_ratio`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from ioasid_core.plugin import (
    BenchmarkFigure,
    PrqPipeline,
    ResponseCode,
    chunked_ratio,
    service_chunks,
    sva_queue_workload,
)
from ioasid_riscv_iommu.handlers import RiscvPrq
from ioasid_riscv_iommu.pq import PQ_RECORD_SIZE

__all__ = ["FIGURES", "LIMIT", "prq_workload", "riscv_prq_ratio"]

LIMIT: Final = 10.0
UNIT: Final = "riscv-iommu0"
CHUNK: Final = 128
QUEUE: Final = 512
_DEVICES: Final = 4
_PASIDS_PER_DEVICE: Final = 16


def prq_workload() -> tuple[PrqPipeline, bytes]:
    """Four processes with one device each (DIDs in segment 1), bound to 16 PASIDs, and a
    full queue of requests from those devices for their own PASIDs, each closing its group."""
    return sva_queue_workload(
        RiscvPrq(),
        unit=UNIT,
        pasid_bits=20,
        source_ids=[0x01_0100 + index for index in range(_DEVICES)],
        entries=QUEUE,
        device_prefix="acc",
    )


def _baseline(pipeline: PrqPipeline, queue: bytes) -> Callable[[], int]:
    """``iter_unpack`` of the whole queue and one ``dict.get`` of the PASID per record."""
    iter_unpack = struct.Struct("<QQ").iter_unpack
    table = dict(pipeline.platform.space.records_view())
    count = len(queue) // PQ_RECORD_SIZE

    def run() -> int:
        get = table.get
        for hdr, _payload in iter_unpack(queue):
            get(hdr >> 12 & 0xFFFFF)
        return count

    return run


def riscv_prq_ratio(quick: bool = False) -> float:
    """The figure: ns per record of decode+resolve+respond over the baseline's."""
    pipeline, queue = prq_workload()
    first = pipeline.process(pipeline.vendor.decode_batch(queue[:PQ_RECORD_SIZE]))
    assert [r.code for r in first] == [ResponseCode.SUCCESS]  # the workload resolves
    rounds = 10 if quick else 300
    return chunked_ratio(service_chunks(pipeline, queue, CHUNK), _baseline(pipeline, queue), rounds)


FIGURES: Final = (BenchmarkFigure("riscv_prq_ratio", LIMIT, riscv_prq_ratio),)
