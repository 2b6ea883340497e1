"""virtio-iommu's page-request vendor through the core's conformance kit."""

from __future__ import annotations

from ioasid_core.plugin import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.testing import assert_conforms
from ioasid_virtio_iommu.handler import VirtioPrq

# The event's flags carry no "PASID required in the response" bit: needs_pasid stays False.
SAMPLES = [
    PageRequest(device=3, pasid=5, pasid_valid=True, grpid=2, perm=Perm.READ, addr=0x1000),
    PageRequest(
        device=0x42,
        pasid=0xABCDE,
        pasid_valid=True,
        grpid=0x1A5,
        perm=Perm.READ | Perm.WRITE,
        addr=0x7FFF0000F000,
    ),
    PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
    PageRequest(device=7, grpid=9, perm=Perm.READ | Perm.EXEC | Perm.PRIV, addr=0x3000),
    PageRequest(device=7, grpid=9, perm=Perm.NONE, addr=0),  # a stop marker
]
RESPONSES = [
    PageResponse(device=3, grpid=2, code=ResponseCode.SUCCESS, pasid=5, pasid_valid=True),
    PageResponse(device=7, grpid=9, code=ResponseCode.FAILURE),
]


def test_virtio_conforms() -> None:
    assert_conforms(VirtioPrq(), requests=SAMPLES, responses=RESPONSES)
