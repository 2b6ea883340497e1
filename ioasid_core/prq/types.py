"""Vendor-neutral page requests and responses, as the kernel's IOPF framework has them.

A vendor codec decodes its raw queue entry into a :class:`PageRequest` and encodes a
:class:`PageResponse` into its own response format. Both are plain slotted value objects
(cheap to build per queue entry); treat them as immutable.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

import attrs

from ioasid_core.types import INVALID_IOASID

__all__ = [
    "READS_OR_WRITES",
    "PageRequest",
    "PageResponse",
    "Perm",
    "RequestRow",
    "ResponseCode",
    "ResponseRow",
    "request_row",
    "response_row",
]


class Perm(enum.IntFlag):
    """Access the device asks for (IOPF ``perm`` bits)."""

    NONE = 0
    READ = 1
    WRITE = 2
    EXEC = 4
    PRIV = 8


class ResponseCode(enum.IntEnum):
    """The IOPF response codes (each vendor maps them to its own encoding)."""

    SUCCESS = 0
    """Retry the access: the page is there now."""
    INVALID = 1
    """Don't retry: the request could not be satisfied."""
    FAILURE = 2
    """Stop all further requests from the device."""


READS_OR_WRITES: tuple[bool, ...] = tuple(
    bool(bits & (Perm.READ | Perm.WRITE)) for bits in range(16)
)
"""``READS_OR_WRITES[perm]``: the request reads or writes (not a stop marker). A table lookup:
on the per-request path, ``IntFlag`` arithmetic (and even ``int(perm)``) costs several times
more."""


@attrs.define(slots=True)
class PageRequest:
    """One page request (a partial or the last of a page request group).

    ``device`` is the vendor's source ID: the requester ID (VT-d), stream ID (SMMUv3) or
    endpoint ID (virtio-iommu).
    """

    device: int
    pasid: int = INVALID_IOASID
    pasid_valid: bool = False
    grpid: int = 0
    last: bool = True
    perm: Perm = Perm.NONE
    addr: int = 0
    needs_pasid: bool = False
    """The response must carry the PASID (PCIe PRG response PASID required)."""
    private_data: tuple[int, int] | None = None

    @property
    def stop_marker(self) -> bool:
        """PCIe stop marker: last in group, neither read nor write. PCIe: discarded, never
        answered (VT-d's 2019 handler answered them all the same: the per-request
        discipline)."""
        return self.last and not READS_OR_WRITES[self.perm]


@attrs.define(slots=True)
class PageResponse:
    """A response to a page request group: normally the one sent when the group closes.

    ``last`` is False for a response sent before the group's last request (an answer
    discipline that answers a request at once, e.g. VT-d's private data present): VT-d
    writes it as the descriptor's LPIG bit; formats without such a bit ignore it.
    """

    device: int
    grpid: int
    code: ResponseCode
    pasid: int = INVALID_IOASID
    pasid_valid: bool = False
    private_data: tuple[int, int] | None = None
    last: bool = True


RequestRow: TypeAlias = tuple[int, int, bool, int, bool, Perm, int, bool, tuple[int, int] | None]
"""A :class:`PageRequest` as a plain tuple, fields in the same order (``PageRequest(*row)``).

The pipeline's per-request path works on rows: a tuple costs a third of an attrs object to
build, and a vendor codec can produce one straight from ``struct.iter_unpack``. Objects are
built only where a caller keeps them (``service``, ``process``, the grouping layer)."""

ResponseRow: TypeAlias = tuple[int, int, ResponseCode, int, bool, tuple[int, int] | None, bool]
"""A :class:`PageResponse` as a plain tuple, fields in the same order (``PageResponse(*row)``):
``(device, grpid, code, pasid, pasid_valid, private_data, last)``."""


def request_row(r: PageRequest) -> RequestRow:
    """``r`` as a row."""
    return (
        r.device,
        r.pasid,
        r.pasid_valid,
        r.grpid,
        r.last,
        r.perm,
        r.addr,
        r.needs_pasid,
        r.private_data,
    )


def response_row(r: PageResponse) -> ResponseRow:
    """``r`` as a row."""
    return (r.device, r.grpid, r.code, r.pasid, r.pasid_valid, r.private_data, r.last)
