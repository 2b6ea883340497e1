"""The page-request pipeline: vendor-neutral requests and responses, lookup policies, IOPF
grouping and bounded queues (issue "Core: the page-request pipeline and the platform model")."""

from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode

__all__ = ["PageRequest", "PageResponse", "Perm", "ResponseCode"]
