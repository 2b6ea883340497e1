"""The RISC-V IOMMU page-request vendor through the core's conformance kit."""

from __future__ import annotations

from ioasid_core.plugin import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.testing import assert_conforms
from ioasid_riscv_iommu.handlers import RiscvPrq

# needs_pasid is the device's (PCI PRI capability): a record cannot carry it. Execute and
# privileged are only carried with a PASID.
SAMPLES = [
    PageRequest(device=3, pasid=5, pasid_valid=True, grpid=2, perm=Perm.READ, addr=0x1000),
    PageRequest(
        device=7,
        pasid=0xABCDE,
        pasid_valid=True,
        grpid=0x1A5,
        perm=Perm.READ | Perm.EXEC | Perm.PRIV,
        addr=0x7FFF0000F000,
    ),
    PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
    PageRequest(device=7, grpid=9, perm=Perm.NONE),  # a stop marker
]
RESPONSES = [
    PageResponse(device=3, grpid=2, code=ResponseCode.SUCCESS, pasid=5, pasid_valid=True),
    PageResponse(device=7, grpid=9, code=ResponseCode.INVALID),
]


def test_riscv_conforms() -> None:
    assert_conforms(RiscvPrq(), requests=SAMPLES, responses=RESPONSES)
