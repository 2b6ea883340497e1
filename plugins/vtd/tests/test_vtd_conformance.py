"""VT-d's page-request vendor through the core's conformance kit."""

from __future__ import annotations

from ioasid_core.plugin import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.testing import GoldenRequest, GoldenResponses, assert_conforms
from ioasid_vtd.prq import VtdIopfPrq, VtdPrq

# The vectors of test_vtd_descriptors.py (their bit-by-bit derivation is written there):
# a PASID request from 0a:03.0, last in group 0x1a5, privileged read+write of
# 0x7fff_dead_b000; a request without PASID, with private data; the FAILURE response.
REQUEST_1 = PageRequest(
    device=0x0A18,
    pasid=0x12345,
    pasid_valid=True,
    grpid=0x1A5,
    last=True,
    perm=Perm.READ | Perm.WRITE | Perm.PRIV,
    addr=0x7FFF_DEAD_B000,
)
REQUEST_2 = PageRequest(
    device=0x0001,
    last=False,
    perm=Perm.READ | Perm.EXEC,
    addr=0x1000,
    private_data=(0x1122_3344_5566_7788, 0x99AA_BBCC_DDEE_FF00),
)
GOLDEN = [
    GoldenRequest(REQUEST_1, "0101180a452321002fbdaddeff7f0000" + "00" * 16),
    GoldenRequest(REQUEST_2, "01020100000010000110000000000000 8877665544332211 00ffeeddccbbaa99"),
]
RESPONSE_1 = PageResponse(
    device=0x0A18, grpid=0x1A5, code=ResponseCode.FAILURE, pasid=0x12345, pasid_valid=True
)
GOLDEN_RESPONSES = [GoldenResponses((RESPONSE_1,), "19f0180a452301002c0d000000000000" + "00" * 16)]

RESPONSES = [RESPONSE_1, PageResponse(device=1, grpid=0, code=ResponseCode.SUCCESS)]
SAMPLES = [
    REQUEST_1,
    REQUEST_2,
    PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
    PageRequest(device=7, grpid=9, last=True, perm=Perm.NONE, addr=0),  # a stop marker
    PageRequest(device=0xFFFF, pasid=0xFFFFF, pasid_valid=True, grpid=0x1FF),
]


def test_vtd_conforms() -> None:
    assert_conforms(
        VtdPrq(),
        requests=SAMPLES,
        responses=RESPONSES,
        golden=GOLDEN,
        golden_responses=GOLDEN_RESPONSES,
    )


def test_vtd_iopf_conforms() -> None:
    # Reporting to the IOPF layer, the driver closes the group of a request with private
    # data (LAST_PAGE set: the kernel's workaround), so such a request that is not the last
    # does not come back as it went: the kit gets only what round-trips.
    own = [r for r in SAMPLES if r.private_data is None or r.last]
    assert_conforms(
        VtdIopfPrq(),
        requests=own,
        responses=RESPONSES,
        golden=GOLDEN[:1],
        golden_responses=GOLDEN_RESPONSES,
    )
