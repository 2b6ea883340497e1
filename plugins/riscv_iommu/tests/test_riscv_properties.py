"""The pipeline with the RISC-V rules against a reference written from the reference model's
``handle_page_request`` (vendors-amd-riscv.md §3.4), on random request streams."""

from __future__ import annotations

from collections import Counter

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ioasid_core.plugin import (
    IoasidSpace,
    IommuUnit,
    PageRequest,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
)
from ioasid_riscv_iommu.handlers import RiscvPrq

KNOWN, DISABLED, STRANGER = 0x10, 0x20, 0x30
ENTRIES = 3  # a head/tail ring: 2 usable slots, so overflows come often


def reference(
    stream: list[tuple[str, PageRequest]],
) -> tuple[Counter[ResponseCode], int, int]:
    """(auto responses by code, requests queued, requests kept by the hardware) per the
    reference model: device context, then EN_PRI, then pqof / a full queue; L=0 and stop
    markers never answered; software drains everything at each "service", one request at
    each "service one"."""
    auto: Counter[ResponseCode] = Counter()
    queued = kept = held = 0
    pqof = False
    for action, request in stream:
        if action == "service":
            held = 0
            pqof = False  # drained: the driver clears pqof
            continue
        if action == "service one":
            held = max(held - 1, 0)
            pqof = pqof and held > 0  # room again, but pqof stays until the queue is empty
            continue
        needs_answer = request.last and bool(request.perm & (Perm.READ | Perm.WRITE))
        code: ResponseCode | None = None
        if request.device == STRANGER:
            code, kept = ResponseCode.FAILURE, kept + 1
        elif request.device == DISABLED:
            code, kept = ResponseCode.INVALID, kept + 1
        elif pqof or held == ENTRIES - 1:
            pqof = True
            code = ResponseCode.SUCCESS
        else:
            held += 1
            queued += 1
        if code is not None and needs_answer:
            auto[code] += 1
    return auto, queued, kept


requests = st.builds(
    PageRequest,
    device=st.sampled_from([KNOWN, KNOWN, KNOWN, DISABLED, STRANGER]),
    pasid=st.just(1),
    pasid_valid=st.just(True),
    grpid=st.integers(0, 3),
    last=st.booleans(),
    perm=st.sampled_from([Perm.NONE, Perm.READ, Perm.WRITE, Perm.READ | Perm.WRITE]),
    addr=st.just(0x1000),
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), requests),
        st.just(("service", None)),
        st.just(("service one", None)),
    ),
    max_size=40,
)


_FILL = ("submit", PageRequest(KNOWN, 1, True, 0, True, Perm.READ, 0x1000))


@settings(max_examples=150)
@given(actions)
# Overflow, then room again while pqof is still set: the next request is still dropped.
@example([_FILL, _FILL, _FILL, ("service one", None), _FILL])
def test_the_pipeline_follows_the_reference_model(
    stream: list[tuple[str, PageRequest | None]],
) -> None:
    platform = Platform(IoasidSpace())
    platform.probe_unit(IommuUnit(name="u", vendor="riscv-iommu", pasid_bits=20))
    for name, did in (("known", KNOWN), ("disabled", DISABLED)):
        platform.add_device(name, unit="u", source_id=did, owner="p")
    vendor = RiscvPrq()
    rules = vendor.hardware_rules(platform, "u", {"pri_disabled": [DISABLED]})
    pl = PrqPipeline(platform, "u", vendor, ring_entries=ENTRIES, hardware=rules)
    queued = 0
    for action, request in stream:
        if action == "service":
            pl.service()
        elif action == "service one":
            pl.service(limit=1)
        else:
            assert request is not None
            queued += pl.submit(request)
    typed = [(a, r if r is not None else PageRequest(0)) for a, r in stream]
    auto, expected_queued, kept = reference(typed)
    assert pl.counters.auto_responses == auto
    assert queued == expected_queued
    assert pl.counters.hardware_rejected == kept
