"""The AMD-Vi page-request vendors through the core's conformance kit."""

from __future__ import annotations

import pytest

from ioasid_amd_vi.handlers import AmdViPrq
from ioasid_core.plugin import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.testing import assert_conforms

# needs_pasid is the device's (the driver's pri_tlp): a PPR log entry cannot carry it.
SAMPLES = [
    PageRequest(device=3, pasid=5, pasid_valid=True, grpid=2, perm=Perm.READ, addr=0x1000),
    PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
    PageRequest(device=7, grpid=9, perm=Perm.READ | Perm.EXEC | Perm.PRIV, addr=0x3000),
    PageRequest(device=7, grpid=9, perm=Perm.NONE),  # a stop marker
]
RESPONSES = [
    PageResponse(device=3, grpid=2, code=ResponseCode.SUCCESS, pasid=5, pasid_valid=True),
    PageResponse(device=7, grpid=9, code=ResponseCode.INVALID),
]


@pytest.mark.parametrize("iopf", [False, True], ids=["amd-vi", "amd-vi-iopf"])
def test_amd_vendors_conform(iopf: bool) -> None:
    assert_conforms(AmdViPrq(iopf=iopf), requests=SAMPLES, responses=RESPONSES)
