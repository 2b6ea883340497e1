"""The ioasid vendor plugin for virtio-iommu: its records, requests and probe properties.

Its hook implementations are in ``ioasid_virtio_iommu.plugin``, registered by the entry point.
Section numbers below are those of ``reference/kernel-facts.md``.

**In the merged spec** (Linux ``include/uapi/linux/virtio_iommu.h``, §5), so what a mainline
driver and device do:

- the 24-byte fault record of the event virtqueue (u8 reason, 3 reserved, le32 flags, le32
  endpoint, 4 reserved, le64 address): :func:`~ioasid_virtio_iommu.faults.decode_merged`;
- its reasons UNKNOWN 0, DOMAIN 1, MAPPING 2 and its flags READ bit 0, WRITE bit 1, EXEC bit 2,
  ADDRESS bit 8. Such faults are unrecoverable: only logged, never answered, and there is no
  page request and no PASID (:class:`~ioasid_virtio_iommu.faults.FaultLog`). A dump of them
  is read by ``ioasid decode virtio-iommu FILE --format merged``, each listed as an unhandled
  ``fault`` (:func:`~ioasid_virtio_iommu.faults.decode_merged_run`);
- request types ATTACH 1, DETACH 2, MAP 3, UNMAP 4, PROBE 5 and the tail statuses OK 0, IOERR 1,
  UNSUPP 2, DEVERR 3, INVAL 4, RANGE 5, NOENT 6, FAULT 7
  (:mod:`ioasid_virtio_iommu.requests`);
- the probe property head (le16 type, le16 length) with types NONE 0 and RESV_MEM 1; the facts
  file does not list these, they appear as unchanged context in the RFC patch.

**Unmerged proposals** (Vivek Gautam's vSVA RFC of April 2021 and Jean-Philippe Brucker's
review of September 2021, §5; open question 6: nothing of this reached the UAPI header):

- the page-request extension of the fault record, in the reviewer's layout that keeps the
  merged record as its prefix: the flags PRIVILEGED bit 3, LAST bit 4, PAGE_REQ bit 5, PASID
  bit 9, GROUP_ID bit 10, PRIV_DATA bit 11 and the fields pasid, group_id, private_data
  (:func:`~ioasid_virtio_iommu.faults.decode_extended`), converted to the IOPF framework's
  page request (§6);
- the PAGE_RESP request (type 8) (:func:`~ioasid_virtio_iommu.requests.encode_page_resp`);
- the ATTACH_TABLE (6) and INVALIDATE (7) request types; ATTACH_TABLE only as a model of
  PASID ownership (:class:`~ioasid_virtio_iommu.probe.GuestPasidTable`), not as bytes;
- the probe properties PAGE_SIZE_MASK 2, INPUT_RANGE 3, OUTPUT_SIZE 4, PASID_SIZE 5,
  PAGE_TABLE_FMT 6, PASID_TABLE_FMT 7, of which PASID_SIZE is decoded
  (:mod:`ioasid_virtio_iommu.probe`).

Where the proposals leave a choice (how a reader tells the records apart, which flag
combinations are contradictory, the PAGE_RESP padding and its domain field) each module's
docstring says what this model chose and why.
"""

from ioasid_virtio_iommu.faults import (
    EXTENDED_SIZE,
    MERGED_SIZE,
    FaultFlag,
    FaultLog,
    FaultReason,
    UnrecoverableFault,
    decode_event,
    decode_extended,
    decode_merged,
    decode_merged_run,
    decode_page_request,
    decode_page_requests,
    encode_fault,
    encode_page_request,
)
from ioasid_virtio_iommu.probe import (
    VENDOR,
    GuestPasidTable,
    PasidSize,
    ProbeProperty,
    PropertyType,
    RawProperty,
    decode_properties,
    encode_properties,
    pasid_size,
    virtio_iommu_unit,
)
from ioasid_virtio_iommu.requests import (
    RequestType,
    Status,
    decode_page_resp,
    encode_page_resp,
)

__all__ = [
    "EXTENDED_SIZE",
    "MERGED_SIZE",
    "VENDOR",
    "FaultFlag",
    "FaultLog",
    "FaultReason",
    "GuestPasidTable",
    "PasidSize",
    "ProbeProperty",
    "PropertyType",
    "RawProperty",
    "RequestType",
    "Status",
    "UnrecoverableFault",
    "decode_event",
    "decode_extended",
    "decode_merged",
    "decode_merged_run",
    "decode_page_request",
    "decode_page_requests",
    "decode_page_resp",
    "decode_properties",
    "encode_fault",
    "encode_page_request",
    "encode_page_resp",
    "encode_properties",
    "pasid_size",
    "virtio_iommu_unit",
]
