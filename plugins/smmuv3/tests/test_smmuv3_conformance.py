"""The three SMMUv3 page-request vendors through the core's conformance kit."""

from __future__ import annotations

import pytest

from ioasid_core.plugin import INVALID_IOASID, PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.testing import GoldenRequest, assert_conforms
from ioasid_smmuv3.handlers import PriPrq, StallPrq

# The PRI queue vectors of test_smmuv3_priq.py (derived bit by bit there): SID 0x1234,
# SSID 0xFABCD, last in group 0x1A5, read+write of 0x7F00_DEAD_B000; and SID 0xFFFF_FFFF
# without SSID, privileged read+exec of the top page, not last.
PRI_GOLDEN = [
    GoldenRequest(
        PageRequest(
            device=0x1234,
            pasid=0xFABCD,
            pasid_valid=True,
            grpid=0x1A5,
            last=True,
            perm=Perm.READ | Perm.WRITE,
            addr=0x7F00DEADB000,
        ),
        "34120000cdab0ff0 a5b1adde007f0000",
    ),
    GoldenRequest(
        PageRequest(
            device=0xFFFFFFFF,
            pasid=INVALID_IOASID,
            grpid=0,
            last=False,
            perm=Perm.READ | Perm.EXEC | Perm.PRIV,
            addr=0xFFFFFFFFFFFFF000,
        ),
        "ffffffff0000001c 00f0ffffffffffff",
    ),
]
PRI_SAMPLES = [
    PageRequest(device=3, pasid=5, pasid_valid=True, grpid=2, perm=Perm.READ, addr=0x1000),
    PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
    PageRequest(device=7, grpid=9, last=True, perm=Perm.NONE, addr=0),  # a stop marker
    *(vector.request for vector in PRI_GOLDEN),
]
# A stall record carries a read or a write (RnW), never both, and no group: one per fault.
STALL_SAMPLES = [
    PageRequest(device=3, pasid=5, pasid_valid=True, grpid=2, perm=Perm.READ, addr=0x1000),
    PageRequest(device=7, grpid=9, perm=Perm.READ | Perm.EXEC | Perm.PRIV, addr=0x3000),
]
RESPONSES = [
    PageResponse(device=3, grpid=2, code=ResponseCode.SUCCESS, pasid=5, pasid_valid=True),
    PageResponse(device=7, grpid=9, code=ResponseCode.INVALID),
]


@pytest.mark.parametrize("iopf", [False, True], ids=["smmuv3-pri", "smmuv3-pri-iopf"])
def test_pri_vendors_conform(iopf: bool) -> None:
    assert_conforms(PriPrq(iopf=iopf), requests=PRI_SAMPLES, responses=RESPONSES, golden=PRI_GOLDEN)


def test_stall_vendor_conforms() -> None:
    assert_conforms(StallPrq(), requests=STALL_SAMPLES, responses=RESPONSES)
