"""Answer disciplines: when a driver answers a page request, and with whose result.

Vendors did not only look PASIDs up differently, they answered differently. A vendor
declares its driver's discipline (``VendorPrq.discipline``, optional: ``IOPF`` if absent) and
the pipeline runs one service loop per discipline, chosen once when it is built:

- ``IOPF``: the IOPF framework (``io-pgfault.c``, v5.13+): a group is collected until its
  last request, handled together, the first failure answers it ("sticky"), one response.
- ``PER_REQUEST``: VT-d's own handler (``prq_event_thread``, svm.c v5.5-v5.12): each
  request is handled as it arrives and only the request closing its group is answered, with
  its own result (earlier failures in the group are not remembered); nothing is dropped
  before the lookup, stop markers included.
- ``DEVICE_TABLES``: AMD's ``amd_iommu_v2.c`` (v5.x, until v6.7): a request from an unknown
  device gets no response at all; an unknown PASID on a known device is answered INVALID at
  once, for that request alone; otherwise each request is handled on arrival and the group,
  keyed by (device, PASID, group index), is answered once, when its last request is done,
  with the last failure any of its requests met (SUCCESS if none).

A vendor's own checks (``check`` / ``row_check``) return a :data:`CheckResult`: None (go on
to the lookup), a ``ResponseCode`` (the request's result, no lookup; under ``IOPF`` it
answers the whole group), or a :class:`Verdict`, which says what a plain code cannot:

- ``Verdict.SILENT``: never answer this request; if it closes a group, that group is never
  answered (the device waits: ``unanswered_groups``);
- ``Verdict.now(code)``: answer this request at once with ``code``, before its group closes
  if it is not the last (``premature_responses``), without a lookup;
- ``Verdict.EARLY``: look it up as usual and answer it at once with its own result, before
  its group closes (VT-d: a request carrying private data, VT-d spec 3.0 §7.7).

Every discipline honours every verdict; see docs/writing-a-plugin.md.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from ioasid_core.prq.types import ResponseCode

__all__ = ["CheckResult", "Discipline", "Verdict", "discipline_of"]


class Discipline(enum.StrEnum):
    """How a vendor's driver answered page requests (see the module docstring)."""

    IOPF = "iopf"
    PER_REQUEST = "per-request"
    DEVICE_TABLES = "device-tables"


class Verdict(enum.Enum):
    """What a vendor's check may say besides a response code (see the module docstring)."""

    # Compared by identity on the per-request path; the C-level hash keeps that cheap.
    __hash__ = object.__hash__

    SILENT = "silent"
    EARLY = "early"
    NOW_SUCCESS = "now_success"
    NOW_INVALID = "now_invalid"
    NOW_FAILURE = "now_failure"

    @classmethod
    def now(cls, code: ResponseCode) -> Verdict:
        """Answer this request at once with ``code``."""
        return _NOW[ResponseCode(code)]

    @property
    def code(self) -> ResponseCode | None:
        """The code a ``now`` verdict answers with; None for ``SILENT`` and ``EARLY``."""
        return _CODE_OF.get(self)


_NOW = {
    ResponseCode.SUCCESS: Verdict.NOW_SUCCESS,
    ResponseCode.INVALID: Verdict.NOW_INVALID,
    ResponseCode.FAILURE: Verdict.NOW_FAILURE,
}
_CODE_OF = {verdict: code for code, verdict in _NOW.items()}

CheckResult: TypeAlias = ResponseCode | Verdict | None
"""What a vendor's check returns for one request."""


def discipline_of(vendor: object) -> Discipline:
    """The vendor's declared ``discipline`` (``IOPF`` when it declares none); ``TypeError``
    naming the vendor when it declares something that is not a :class:`Discipline`."""
    declared = getattr(vendor, "discipline", Discipline.IOPF)
    if isinstance(declared, Discipline):
        return declared
    try:
        return Discipline(declared)
    except ValueError:
        known = ", ".join(d.value for d in Discipline)
        name = getattr(vendor, "name", type(vendor).__name__)
        raise TypeError(
            f"vendor {name!r}: discipline {declared!r} is not an answer discipline (known: {known})"
        ) from None
