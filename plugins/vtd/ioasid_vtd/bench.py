"""``vtd_prq_ratio``: the VT-d page-request path per descriptor, against a plain-Python floor.

Measured side: a full 2048-descriptor PRQ (the driver's default order 4), serviced 128
descriptors at a time: decode (:meth:`VtdPrq.decode_batch`), check and resolve under the
vendor's GLOBAL policy and its per-request answer discipline (:meth:`PrqPipeline.process`),
and encode the page group responses (:meth:`VtdPrq.encode_responses`). Every descriptor is
the LPIG of its own group, so every one is resolved and answered.

Baseline: ``struct.iter_unpack`` of the descriptors (what the decoders use) plus one
``dict.get`` of each one's PASID, over
the same ring, in the same process; the least a handler in Python could do per descriptor.
Both sides go through :func:`ioasid_core.plugin.chunked_ratio` (chunks of ~0.5 ms, interleaved).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from ioasid_core.plugin import (
    AddressSpace,
    BenchmarkFigure,
    IoasidSpace,
    IommuUnit,
    IopfQueue,
    PageRequest,
    Perm,
    Platform,
    PrqPipeline,
    SetType,
    chunked_ratio,
    make_resolver,
    service_chunks,
)
from ioasid_vtd.descriptors import DESCRIPTOR_SIZE
from ioasid_vtd.prq import PRQ_DEFAULT_ENTRIES, VtdPrq

__all__ = ["LIMIT", "figure", "vtd_prq_breakdown", "vtd_prq_ratio", "vtd_prq_workload"]

LIMIT = 10.0
UNIT = "vtd0"
CHUNK = 128
"""Descriptors per measured chunk (about half a millisecond)."""
_PROCESSES = 4
_PASIDS_PER_DEVICE = 16


def vtd_prq_workload() -> tuple[PrqPipeline, bytes]:
    """A small platform (four processes, one device each bound to 16 SVA PASIDs) and a full
    ring of descriptors from those devices for their own PASIDs, each closing its group."""
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name=UNIT, vendor="vtd", pasid_bits=20))
    sva = space.create_set()
    own: list[tuple[int, list[int]]] = []
    for index in range(_PROCESSES):
        proc = AddressSpace(f"proc-{index}")
        mm_set = space.create_set(proc, type=SetType.MM)
        platform.add_domain(f"sva-{index}", proc.name, [sva, mm_set])
        rid = 0x100 + index
        device = platform.add_device(
            f"dev-{index}", unit=UNIT, source_id=rid, owner=proc.name, domain=f"sva-{index}"
        )
        pasids = []
        for _ in range(_PASIDS_PER_DEVICE):
            pasid = space.alloc(sva, 1, 0xFFFFF, proc)
            platform.bind(device.name, pasid, proc)
            pasids.append(pasid)
        own.append((rid, pasids))
    vendor = VtdPrq()
    pipeline = PrqPipeline(platform, UNIT, vendor, ring_entries=PRQ_DEFAULT_ENTRIES)
    ring = b"".join(
        vendor.encode_request(
            PageRequest(
                own[i % _PROCESSES][0],
                own[i % _PROCESSES][1][i // _PROCESSES % _PASIDS_PER_DEVICE],
                True,
                i & 0x1FF,
                True,
                Perm.READ | Perm.WRITE,
                0x7F00_0000_0000 + i * 0x1000,
                True,
            )
        )
        for i in range(PRQ_DEFAULT_ENTRIES)
    )
    return pipeline, ring


def _baseline(pipeline: PrqPipeline, ring: bytes) -> Callable[[], int]:
    """``iter_unpack`` of the whole ring and one ``dict.get`` of the PASID per descriptor."""
    iter_unpack = struct.Struct("<4Q").iter_unpack
    table = dict(pipeline.platform.space.records_view())
    count = len(ring) // DESCRIPTOR_SIZE

    def run() -> int:
        get = table.get
        for q0, _q1, _q2, _q3 in iter_unpack(ring):
            get(q0 >> 32 & 0xFFFFF)
        return count

    return run


def vtd_prq_ratio(quick: bool = False) -> float:
    """The figure: ns per descriptor of decode+resolve+respond over the baseline's."""
    pipeline, ring = vtd_prq_workload()
    rounds = 10 if quick else 300  # 300 chunks of 128: the whole ring ~19 times
    ratio = chunked_ratio(service_chunks(pipeline, ring, CHUNK), _baseline(pipeline, ring), rounds)
    # Every descriptor resolves and is answered SUCCESS: the figure measures the real path.
    assert not pipeline.counters.vendor_rejects and not pipeline.counters.malformed
    return ratio


def _best_ns(fn: Callable[[], object], count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - start) / count)
    return best


def vtd_prq_breakdown(rounds: int = 50) -> dict[str, float]:
    """Best ns per descriptor of each stage over the whole ring (where the time goes), and
    the baseline's. Not a figure: the stages are timed apart, so they don't add up exactly."""
    pipeline, ring = vtd_prq_workload()
    vendor = pipeline.vendor
    n = len(ring) // DESCRIPTOR_SIZE
    requests = vendor.decode_batch(ring)
    fields = [
        (r.device, r.pasid, r.pasid_valid, r.grpid, r.last, r.perm, r.addr, r.needs_pasid, None)
        for r in requests
    ]
    resolve = make_resolver(pipeline.platform, UNIT, pipeline.policy, expected=vendor.expected)
    check = vendor.check
    responses = pipeline.process(requests)

    def construct() -> None:
        for f in fields:
            PageRequest(*f)

    def grouping() -> None:
        queue = IopfQueue()
        report, respond = queue.report, queue.respond
        for request, response in zip(requests, responses, strict=True):
            report(request.device, request)
            respond(request.device, response)

    out = {
        "baseline": _best_ns(_baseline(pipeline, ring), n, rounds),
        "construct_page_request": _best_ns(construct, n, rounds),
        "decode": _best_ns(lambda: vendor.decode_batch(ring), n, rounds),
        "check": _best_ns(lambda: [check(r) for r in requests], n, rounds),
        "resolve": _best_ns(
            lambda: [resolve(r.device, r.pasid_valid, r.pasid) for r in requests], n, rounds
        ),
        "grouping": _best_ns(grouping, n, rounds),
        "process": _best_ns(lambda: pipeline.process(requests), n, rounds),
        "encode_responses": _best_ns(lambda: vendor.encode_responses(responses), n, rounds),
    }
    return {k: round(v, 1) for k, v in out.items()}


def figure() -> BenchmarkFigure:
    """The figure the plugin adds to ``ioasid bench``."""
    return BenchmarkFigure("vtd_prq_ratio", LIMIT, vtd_prq_ratio)
