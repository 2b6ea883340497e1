"""``smmuv3_evtq_ratio``: the stall path per record, over reading a record and one dict lookup.

Measured: a chunk of 128 stall records (raw event queue bytes) is decoded, each stall is
grouped, resolved under the ``SET`` policy and answered, and the CMD_RESUMEs are encoded,
through the same ``PrqPipeline.process`` the replay uses. Baseline: ``struct.iter_unpack`` of
the records' four words (what the decoders use) plus one ``dict.get`` each, in chunks long
enough to last as long.
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
    PageRequest,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
    SetType,
    chunked_ratio,
    service_chunks,
)
from ioasid_smmuv3.events import EVENT_RECORD_SIZE
from ioasid_smmuv3.handlers import StallPrq

__all__ = ["EVTQ_LIMIT", "FIGURES", "evtq_setup", "smmuv3_evtq_ratio"]

EVTQ_LIMIT: Final = 10.0
_MEASURED_CHUNK: Final = 128
_BASELINE_CHUNK: Final = 4096
_PROCESSES: Final = 8
_PASIDS_PER_PROCESS: Final = 32


def evtq_setup(records: int, seed: int = 2019) -> tuple[PrqPipeline, StallPrq, bytes]:
    """A small platform (processes with one master each, bound to SVA PASIDs of the SVA set),
    its ``smmuv3`` pipeline under ``SET``, and ``records`` stall records that all resolve."""
    rnd = random.Random(seed)
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="smmu0", vendor="smmuv3", pasid_bits=20))
    sva = space.create_set()
    own: list[list[int]] = []
    for index in range(_PROCESSES):
        proc = AddressSpace(f"proc-{index}")
        mm_set = space.create_set(proc, type=SetType.MM)
        platform.add_domain(f"sva-{index}", proc.name, [sva, mm_set])
        master = platform.add_device(
            f"master-{index}",
            unit="smmu0",
            source_id=0x100 + index,
            owner=proc.name,
            domain=f"sva-{index}",
        )
        pasids = []
        for _ in range(_PASIDS_PER_PROCESS):
            pasid = space.alloc(sva, 1, 0xFFFFF, proc)
            platform.bind(master.name, pasid, proc)
            pasids.append(pasid)
        own.append(pasids)
    vendor = StallPrq()
    pipeline = PrqPipeline(platform, "smmu0", vendor, sva_set=sva)
    raw = bytearray()
    for i in range(records):
        index = rnd.randrange(_PROCESSES)
        perm = rnd.choice((Perm.READ, Perm.WRITE, Perm.READ | Perm.PRIV))
        request = PageRequest(
            0x100 + index, rnd.choice(own[index]), True, i & 0xFFFF, True, perm, i << 12
        )
        raw += vendor.encode_request(request)
    return pipeline, vendor, bytes(raw)


def _chunks(raw: bytes, records: int) -> list[bytes]:
    step = records * EVENT_RECORD_SIZE
    return [raw[i : i + step] for i in range(0, len(raw), step)]


def _baseline(raw: bytes) -> Callable[[], int]:
    chunks = _chunks(raw, _BASELINE_CHUNK)
    iter_unpack = struct.Struct("<4Q").iter_unpack
    table = {(0x100 + i) << 32: i for i in range(_PROCESSES)}
    turn = [0]

    def run() -> int:
        chunk = chunks[turn[0] % len(chunks)]
        turn[0] += 1
        get = table.get
        for w0, _w1, _w2, _w3 in iter_unpack(chunk):
            get(w0)
        return len(chunk) // EVENT_RECORD_SIZE

    return run


def smmuv3_evtq_ratio(quick: bool = False) -> float:
    """Per stall record: decode + group + resolve (``SET``) + RESUME, over the baseline."""
    records = 8192 if quick else 65536
    pipeline, vendor, raw = evtq_setup(records)
    first = pipeline.process(vendor.decode_batch(raw[:EVENT_RECORD_SIZE]))
    assert [r.code for r in first] == [ResponseCode.SUCCESS]  # the workload resolves
    rounds = 10 if quick else 400
    return chunked_ratio(service_chunks(pipeline, raw, _MEASURED_CHUNK), _baseline(raw), rounds)


FIGURES: Final = (BenchmarkFigure("smmuv3_evtq_ratio", EVTQ_LIMIT, smmuv3_evtq_ratio),)
