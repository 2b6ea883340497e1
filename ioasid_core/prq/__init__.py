"""The page-request pipeline: vendor-neutral requests and responses, lookup policies, IOPF
grouping, bounded rings, and the per-unit pipeline that vendor plugins plug into."""

from ioasid_core.prq.discipline import CheckResult, Discipline, Verdict, discipline_of
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.iopf import IopfCounters, IopfQueue, response_for
from ioasid_core.prq.pipeline import PrqCounters, PrqPipeline
from ioasid_core.prq.policy import (
    FAILED,
    RESOLVED,
    LookupPolicy,
    Outcome,
    Resolution,
    make_resolver,
)
from ioasid_core.prq.ring import Ring
from ioasid_core.prq.types import (
    PageRequest,
    PageResponse,
    Perm,
    RequestRow,
    ResponseCode,
    ResponseRow,
    request_row,
    response_row,
)
from ioasid_core.prq.unhandled import UNHANDLED_KINDS, UnhandledEvent, UnhandledKind
from ioasid_core.prq.vendor import RowCodec, RowVendorMixin, UnhandledLog, VendorPrq, row_codec

__all__ = [
    "FAILED",
    "RESOLVED",
    "UNHANDLED_KINDS",
    "CheckResult",
    "Discipline",
    "GenericPrq",
    "IopfCounters",
    "IopfQueue",
    "LookupPolicy",
    "Outcome",
    "PageRequest",
    "PageResponse",
    "Perm",
    "PrqCounters",
    "PrqPipeline",
    "RequestRow",
    "Resolution",
    "ResponseCode",
    "ResponseRow",
    "Ring",
    "RowCodec",
    "RowVendorMixin",
    "UnhandledEvent",
    "UnhandledKind",
    "UnhandledLog",
    "VendorPrq",
    "Verdict",
    "discipline_of",
    "make_resolver",
    "request_row",
    "response_for",
    "response_row",
    "row_codec",
]
