"""The page-request rules and the PASID allocation of today's kernel."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    Buffer,
    CheckResult,
    DecodeError,
    Device,
    InvalidArgumentError,
    IoasidSet,
    IoasidSpace,
    LookupPolicy,
    PageRequest,
    PageResponse,
    Perm,
    RequestRow,
    ResponseRow,
    byte_view,
)
from ioasid_upstream_now.fault import (
    CODES,
    DEV_ID_BITS,
    FAULT,
    FAULT_SIZE,
    GRPID_BITS,
    decode_fault,
    encode_fault,
    encode_response,
)

__all__ = ["UpstreamNowPrq", "alloc_global_pasid"]

IOMMU_FIRST_GLOBAL_PASID = 1
"""PASID 0 is ``IOMMU_NO_PASID``: DMA without a PASID."""


def alloc_global_pasid(space: IoasidSpace, global_set: IoasidSet, device: Device) -> int:
    """``iommu_alloc_global_pasid(dev)``: the lowest free PASID the device can carry.

    One set stands for the kernel's single global IDA; a device with no PASID support gets
    none (the kernel returns ``IOMMU_PASID_INVALID``; here that is an error naming it).
    """
    if device.pasid_bits == 0:
        raise InvalidArgumentError(f"device {device.name!r} supports no PASID")
    top = min(device.pasid_limit, space.capacity) - 1
    return space.alloc(global_set, IOMMU_FIRST_GLOBAL_PASID, top)


_FAULT: Final = struct.Struct("<IIIIIIQII")
"""``iommu_hwpt_pgfault`` field by field (the layout in ``fault.py``, word by word)."""
_RESPONSE: Final = struct.Struct("<II")
_PERMS: Final = tuple(Perm(bits) for bits in range(16))
_GRPID_MASK: Final = (1 << GRPID_BITS) - 1


class UpstreamNowPrq:
    """Vendor "upstream-now": page requests as iommufd hands them to user space, resolved
    by (device, PASID).

    Since v6.2 the IOPF core looks up the domain attached to (device, PASID) (kernel-facts
    §4, §6), which is the ``DEVICE`` lookup policy. A request without a PASID would go to the
    device's default domain; this model has none, so the core's resolver answers it
    ``NO_PASID`` (INVALID).

    The codec is written twice: the object methods through the declared layout
    (``fault.py``), the row methods with one ``struct`` each way, which is what the pipeline
    calls per batch. ``row_check = None``: no checks of its own before the lookup (the
    kernel hands every request to the IOPF core), so the pipeline makes no call per request.
    """

    name = "upstream-now"
    entry_size = FAULT_SIZE
    default_policy = LookupPolicy.DEVICE
    expected: type | tuple[type, ...] = AddressSpace
    source_id_bits = DEV_ID_BITS
    """Device IDs that leave room for the PRG index in the model's cookie."""
    row_check = None

    # -- the object form (clear, checked field by field)

    def encode_request(self, request: PageRequest) -> bytes:
        return encode_fault(request)

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        data = byte_view(data)  # a ring mapped as words still counts in bytes here
        _whole_entries(data)
        return [decode_fault(data, offset) for offset in range(0, len(data), FAULT_SIZE)]

    def check(self, request: PageRequest) -> CheckResult:
        return None

    def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
        return b"".join(encode_response(r) for r in responses)

    # -- the row form (the pipeline's fast path: the same bytes)

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        pack = _FAULT.pack
        out: list[bytes] = []
        for row in rows:
            device, pasid, valid, grpid, last, perm, addr, _needs, _private = row
            if device >> DEV_ID_BITS or grpid >> GRPID_BITS or perm >> 4:
                return encode_fault(PageRequest(*row))  # raises, naming the field
            try:
                out.append(
                    pack(
                        valid | last << 1,
                        device,
                        pasid if valid else 0,
                        grpid,
                        perm,
                        0,
                        addr,
                        0,
                        device << GRPID_BITS | grpid,
                    )
                )
            except struct.error:
                encode_fault(PageRequest(*row))  # raises, naming the field
                raise
        return b"".join(out)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        data = byte_view(data)
        _whole_entries(data)
        perms = _PERMS
        unpack = _FAULT.iter_unpack
        rows: list[RequestRow] = [
            (
                device,
                pasid if (valid := flags & 1 == 1) else INVALID_IOASID,
                valid,
                grpid,
                flags & 2 == 2,
                perms[perm],
                addr,
                False,
                None,
            )
            for flags, device, pasid, grpid, perm, reserved, addr, _, _ in unpack(data)
            if not (flags >> 2 or perm >> 4 or reserved or (pasid and not flags & 1))
        ]
        if len(rows) * FAULT_SIZE != len(data):
            self.decode_batch(data)  # raises, naming the first bad entry and field
        return rows

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        pack = _RESPONSE.pack
        out: list[bytes] = []
        for device, grpid, code, _pasid, _valid, _private, _last in rows:
            value = CODES.get(code)
            if value is None or device >> DEV_ID_BITS or grpid >> GRPID_BITS:
                return self.encode_responses([PageResponse(device, grpid, code)])  # raises
            out.append(pack(device << GRPID_BITS | grpid, value))
        return b"".join(out)


def _whole_entries(data: Buffer) -> None:
    if len(data) % FAULT_SIZE:
        raise DecodeError(
            FAULT.name, f"{len(data)} bytes is not a whole number of {FAULT_SIZE}-byte records"
        )
