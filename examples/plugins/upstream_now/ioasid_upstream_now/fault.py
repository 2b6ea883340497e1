"""The record today's kernel hands a user-space fault handler: iommufd's fault queue (v6.11+).

A VMM that handles its guests' page requests reads ``struct iommu_hwpt_pgfault`` records
from an iommufd fault object and writes ``struct iommu_hwpt_page_response`` back
(``include/uapi/linux/iommufd.h``). Little-endian, as the kernel writes them on the
platforms that have PRI.

Which header: checked field by field against the uAPI header of a v6.17-era tree (it has
``IOMMU_HW_QUEUE_ALLOC``); the layout below is the same since the fault queue came (v6.11).
There the four bytes after ``perm`` were the compiler's padding before a plain ``__u64
addr``; a later fix names them ``__reserved`` (must be 0) and declares ``__aligned_u64
addr`` (QEMU's copy of the header took it with its v6.14-rc3 sync), so that 32-bit builds
agree: on 64-bit the bytes never moved. The response code FAILURE of the first version was
removed by a fix of July 2024, during v6.11's development: SUCCESS 0 and INVALID 1 are all
there is. Flag and permission bits are the header's enums, bit for bit.

    iommu_hwpt_pgfault (40 bytes)           word  bits
      u32 flags   PASID_VALID b0, LAST_PAGE b1   0   31:0  (31:2 reserved)
      u32 dev_id  the iommufd device object      0   63:32
      u32 pasid                                  1   31:0
      u32 grpid   the PRG index                  1   63:32
      u32 perm    READ b0 WRITE b1 EXEC b2 PRIV b3  2   31:0  (31:4 reserved)
      u32 __reserved (must be 0)                 2   63:32
      u64 addr                                   3   63:0
      u32 length  a prefetch hint (0: none)      4   31:0
      u32 cookie  names the group; echoed back   4   63:32

    iommu_hwpt_page_response (8 bytes)
      u32 cookie                                 0   31:0
      u32 code    SUCCESS 0, INVALID 1           0   63:32

Two forms of one codec, as a vendor plugin should write them: the layouts below, declared
as the header prints them (``BitLayout`` checks every reserved bit and names the field at
fault), serve the object methods; ``vendor.py`` packs and unpacks the same bytes with
``struct`` for the pipeline's fast row path. The conformance kit proves the two agree.

The kernel picks each group's cookie (an index in the fault object's table of groups
awaiting a response). A codec cannot keep such a table, so this model derives the cookie
from what names a group in the model, the device and its PRG index:
``dev_id << 9 | grpid`` (PRG indexes are 9 bits); the device ID then has 23 bits. Like the
kernel's, the cookie is unique among the groups awaiting a response.
"""

from __future__ import annotations

from typing import Final

from ioasid_core.plugin import (
    INVALID_IOASID,
    BitField,
    BitLayout,
    Buffer,
    DecodeError,
    EncodeError,
    PageRequest,
    PageResponse,
    Perm,
    ResponseCode,
)

__all__ = [
    "DEV_ID_BITS",
    "FAULT",
    "FAULT_SIZE",
    "GRPID_BITS",
    "RESPONSE",
    "cookie_of",
    "decode_fault",
    "encode_fault",
    "encode_response",
]

FAULT: Final = BitLayout(
    "iommufd page fault",
    40,
    [
        BitField("pasid_valid", 0, 0, 0),
        BitField("last_page", 0, 1, 1),
        BitField("dev_id", 0, 32, 63),
        BitField("pasid", 1, 0, 31),
        BitField("grpid", 1, 32, 63),
        BitField("perm", 2, 0, 3),
        BitField("addr", 3, 0, 63),
        BitField("length", 4, 0, 31),
        BitField("cookie", 4, 32, 63),
    ],
)
RESPONSE: Final = BitLayout(
    "iommufd page response", 8, [BitField("cookie", 0, 0, 31), BitField("code", 0, 32, 63)]
)
FAULT_SIZE: Final = FAULT.size
GRPID_BITS: Final = 9
"""A PCIe PRG index."""
DEV_ID_BITS: Final = 32 - GRPID_BITS
"""What is left of the 32-bit cookie for the device (see the module's note)."""
CODES: Final = {ResponseCode.SUCCESS: 0, ResponseCode.INVALID: 1}
"""The uAPI has no FAILURE ("stop all requests from the device"): user space cannot send it."""


def cookie_of(device: int, grpid: int) -> int:
    """The model's cookie for a group; ``EncodeError`` if the two do not fit it."""
    if not 0 <= device < 1 << DEV_ID_BITS:
        raise EncodeError(f"{FAULT.name}: dev_id {device:#x} does not fit {DEV_ID_BITS} bits")
    if not 0 <= grpid < 1 << GRPID_BITS:
        raise EncodeError(f"{FAULT.name}: grpid {grpid:#x} does not fit {GRPID_BITS} bits")
    return device << GRPID_BITS | grpid


def encode_fault(request: PageRequest) -> bytes:
    """The record the kernel writes for ``request`` (``needs_pasid`` and private data stay
    in the kernel: the record has no field for them)."""
    return FAULT.encode(
        {
            "pasid_valid": int(request.pasid_valid),
            "last_page": int(request.last),
            "dev_id": request.device,
            "pasid": request.pasid if request.pasid_valid else 0,
            "grpid": request.grpid,
            "perm": int(request.perm),
            "addr": request.addr,
            "cookie": cookie_of(request.device, request.grpid),
        }
    )


def decode_fault(data: Buffer, offset: int = 0) -> PageRequest:
    """The request in the record at ``offset``; ``DecodeError`` naming the field at fault."""
    fields = FAULT.decode(data, offset)
    valid = fields["pasid_valid"] == 1
    if fields["pasid"] and not valid:
        raise DecodeError(
            FAULT.name, f"PASID {fields['pasid']:#x} without PASID_VALID", offset=offset
        )
    return PageRequest(
        device=fields["dev_id"],
        pasid=fields["pasid"] if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=fields["grpid"],
        last=fields["last_page"] == 1,
        perm=Perm(fields["perm"]),
        addr=fields["addr"],
    )


def encode_response(response: PageResponse) -> bytes:
    """What the handler writes back for ``response``'s group."""
    code = CODES.get(response.code)
    if code is None:
        raise EncodeError(f"{RESPONSE.name}: the uAPI has no code for {response.code.name}")
    return RESPONSE.encode({"cookie": cookie_of(response.device, response.grpid), "code": code})
