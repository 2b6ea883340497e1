"""What a vendor plugin hands the page-request pipeline: its codec and its rules.

A plugin returns one :class:`VendorPrq` per vendor from the ``ioasid_prq_vendors`` hook, once;
the pipeline then calls it directly for every batch (no pluggy call per request).

Two levels: :class:`VendorPrq` speaks :class:`PageRequest` / :class:`PageResponse` objects,
which is all a plugin needs. A vendor that also implements :class:`RowCodec` (the same codec
on plain tuples, see ``RequestRow``) lets the pipeline skip building two objects per request;
the built-in vendors do, deriving their object methods from the row ones with
:class:`RowVendorMixin`. :func:`row_codec` gives the pipeline a row codec for any vendor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from ioasid_core.bits import Buffer
from ioasid_core.platform import Platform
from ioasid_core.prq.discipline import CheckResult
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import (
    PageRequest,
    PageResponse,
    RequestRow,
    ResponseRow,
    request_row,
    response_row,
)
from ioasid_core.prq.unhandled import UnhandledEvent

__all__ = [
    "DumpFormat",
    "DumpFormats",
    "PlatformCheck",
    "RowCheck",
    "RowCodec",
    "RowVendorMixin",
    "UnhandledLog",
    "VendorPrq",
    "row_codec",
]

RowCheck = Callable[[RequestRow], CheckResult]
"""A vendor's own checks on one request row: None (look it up), a code to answer with, or a
``Verdict`` (silence, answer now, answer before the group closes; see
:mod:`ioasid_core.prq.discipline`)."""


@runtime_checkable
class VendorPrq(Protocol):
    """A vendor's page-request queue format and handler rules."""

    name: str
    """The vendor's short name (``vtd``, ``smmuv3``, ``virtio-iommu``)."""
    entry_size: int
    """Bytes per raw queue entry."""
    default_policy: LookupPolicy
    """The lookup rule the vendor's driver followed."""
    expected: type | tuple[type, ...]
    """The type of private data the handler knows how to service.

    Optional, not part of the protocol: ``discipline``, the vendor's answer discipline
    (``ioasid_core.prq.discipline.Discipline``; ``IOPF`` when absent)."""

    def encode_request(self, request: PageRequest) -> bytes:
        """The raw entry the hardware would write for ``request`` (the device side)."""

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        """Decode whole entries; raise ``DecodeError`` naming the bad entry's offset, or its
        subclass ``UnhandledEvent`` for a well-formed entry that is not a page request."""

    def check(self, request: PageRequest) -> CheckResult:
        """The vendor's own checks before any lookup: None (look it up), a code to answer
        with, or a ``Verdict``."""

    def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
        """The raw responses (descriptors, commands) the driver would write."""


@runtime_checkable
class RowCodec(Protocol):
    """The same codec and rules on rows (``RequestRow``, ``ResponseRow``): the fast path."""

    row_check: RowCheck | None
    """The vendor's own checks per row, or None when it has none (no call per request)."""

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        """The raw entries for ``rows``, back to back (a device burst)."""

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        """Decode whole entries to rows; ``DecodeError`` (or ``UnhandledEvent``) naming the
        first entry that is not a page request, by its offset."""

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        """The raw responses for ``rows``."""


@runtime_checkable
class PlatformCheck(Protocol):
    """Optional: a vendor whose own checks need the platform, as its driver's device lookup
    did (AMD ``ppr.c``: no response at all for a requester without a ``pci_dev``, FAILURE for
    a PASID beyond the device's ``max_pasids``). The pipeline calls it once, when it is built;
    what it returns replaces ``row_check`` on that unit's page-request path."""

    def row_check_for(self, platform: Platform, unit: str) -> RowCheck | None:
        """The checks for requests arriving on ``unit`` of ``platform`` (None: none)."""


@runtime_checkable
class UnhandledLog(Protocol):
    """Optional: a vendor whose driver keeps its own log of unhandled events (virtio-iommu's
    fault log). The pipeline calls it once per such entry it counts, never per decode pass."""

    def log_unhandled(self, event: UnhandledEvent) -> None:
        """Note ``event`` (raised by this vendor's decoder) in the driver's own log."""


@attrs.frozen
class DumpFormat:
    """Another entry format a vendor's queue dumps may be in (``ioasid decode --format``):
    e.g. virtio-iommu's merged 24-byte fault records, which mainline devices write and the
    page-request queue never holds. ``decode_batch`` follows ``VendorPrq.decode_batch``."""

    name: str
    entry_size: int
    decode_batch: Callable[[Buffer], list[PageRequest]]
    description: str


@runtime_checkable
class DumpFormats(Protocol):
    """Optional: a vendor whose dumps may come in formats other than its queue's own."""

    dump_formats: Sequence[DumpFormat]


class RowVendorMixin:
    """The object methods of :class:`VendorPrq`, derived from a class's :class:`RowCodec`
    methods, so a vendor writes its codec once, on rows. A class may still define any of
    them itself (a codec whose object form is simpler, or checks it cannot express per row).
    """

    row_check: RowCheck | None = None

    def encode_request(self: RowCodec, request: PageRequest) -> bytes:
        return self.encode_request_rows([request_row(request)])

    def decode_batch(self: RowCodec, data: Buffer) -> list[PageRequest]:
        return [PageRequest(*row) for row in self.decode_rows(data)]

    def check(self: RowCodec, request: PageRequest) -> CheckResult:
        check = self.row_check
        return None if check is None else check(request_row(request))

    def encode_responses(self: RowCodec, responses: Sequence[PageResponse]) -> bytes:
        return self.encode_response_rows([response_row(r) for r in responses])


class _AdaptedRows:
    """A :class:`RowCodec` for a vendor that speaks objects, wholly or in part: a
    third-party plugin that wrote no row methods, or a subclass of a row vendor that
    overrides an object method (that override must win). Rows are used where the vendor's
    own row method is authoritative, objects elsewhere (correct, at the price of the
    objects they build)."""

    def __init__(self, vendor: VendorPrq, rows: RowCodec | None, own: frozenset[str]) -> None:
        self._vendor = vendor
        if rows is not None and "check" not in own:
            self.row_check: RowCheck | None = rows.row_check
        else:
            check = vendor.check

            def row_check(row: RequestRow) -> CheckResult:
                return check(PageRequest(*row))

            self.row_check = row_check
        if rows is not None and "encode_request" not in own:
            self.encode_request_rows = rows.encode_request_rows  # type: ignore[method-assign]
        if rows is not None and "decode_batch" not in own:
            self.decode_rows = rows.decode_rows  # type: ignore[method-assign]
        if rows is not None and "encode_responses" not in own:
            self.encode_response_rows = rows.encode_response_rows  # type: ignore[method-assign]

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        encode = self._vendor.encode_request
        return b"".join(encode(PageRequest(*row)) for row in rows)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return [request_row(r) for r in self._vendor.decode_batch(data)]

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        return self._vendor.encode_responses([PageResponse(*row) for row in rows])


_OBJECT_METHODS = ("encode_request", "decode_batch", "check", "encode_responses")


def row_codec(vendor: VendorPrq) -> RowCodec:
    """A row codec for ``vendor``: the vendor itself when its rows are the whole story,
    else an adapter that goes through its object methods where they are its own."""
    if not isinstance(vendor, RowCodec):
        return _AdaptedRows(vendor, None, frozenset())
    if not isinstance(vendor, RowVendorMixin):
        return vendor  # it wrote both forms itself; rows are the fast one
    cls = type(vendor)
    own = frozenset(
        name
        for name in _OBJECT_METHODS
        if getattr(cls, name) is not getattr(RowVendorMixin, name)
        and not _defined_with_rows(cls, name)
    )
    return vendor if not own else _AdaptedRows(vendor, vendor, own)


def _defined_with_rows(cls: type, name: str) -> bool:
    """Whether ``cls``'s ``name`` comes from the same class as its row methods (one codec,
    written in both forms by one author: the rows stay authoritative)."""
    owner = next(c for c in cls.__mro__ if name in c.__dict__)
    return "decode_rows" in owner.__dict__ or "encode_response_rows" in owner.__dict__
