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
    BenchmarkFigure,
    PrqPipeline,
    ResponseCode,
    chunked_ratio,
    service_chunks,
    sva_queue_workload,
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
    return sva_queue_workload(
        vendor if vendor is not None else AmdViPrq(),
        unit=UNIT,
        pasid_bits=16,
        source_ids=[0x0200 + index for index in range(_DEVICES)],
        entries=PPR_LOG_DEFAULT_ENTRIES,
        device_prefix="gpu",
    )


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
