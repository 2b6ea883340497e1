"""The IOPF grouping rules (``drivers/iommu/io-pgfault.c``), per device.

- A request without LAST is held on the device's partial list.
- A LAST request closes its group: the partial requests with the same group index are taken
  (in arrival order) and the group is handled together; one response per group, carrying the
  last request's PASID and group index. The grouping key is the group index only.
- Every closed group is recorded as pending; a response is passed on only if it matches a
  pending group (same group index, and same PASID when the request needed the PASID in its
  response); otherwise it is dropped and counted.
- Stop markers (LAST with neither read nor write) are discarded, never answered.
- On queue overflow the partial groups are discarded; when a device goes away, every pending
  group is answered INVALID and its partial requests are discarded.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable

import attrs

from ioasid_core.prq.types import READS_OR_WRITES, PageRequest, PageResponse, ResponseCode
from ioasid_core.types import INVALID_IOASID

__all__ = ["IopfCounters", "IopfQueue", "response_for"]


@attrs.define
class IopfCounters:
    """What the grouping layer dropped or answered by itself."""

    groups: int = 0
    stop_markers: int = 0
    unmatched_responses: int = 0
    discarded_partial: int = 0
    """Partial requests thrown away on overflow or device removal."""
    answered_on_removal: int = 0


def response_for(
    last: PageRequest, code: ResponseCode, required: Collection[Hashable] = ()
) -> PageResponse:
    """The response to the group that ``last`` closed (PASID only if it must be carried:
    the request says so, or its device is one of the ``required`` source IDs)."""
    with_pasid = last.pasid_valid and (last.needs_pasid or last.device in required)
    return PageResponse(
        last.device,
        last.grpid,
        code,
        last.pasid if with_pasid else INVALID_IOASID,
        with_pasid,
        last.private_data,
    )


class IopfQueue:
    """Partial and pending page request groups, per device (any hashable key)."""

    def __init__(self) -> None:
        self.counters = IopfCounters()
        self._partial: dict[Hashable, list[PageRequest]] = {}
        self._pending: dict[Hashable, list[PageRequest]] = {}

    @property
    def partial_by_device(self) -> dict[Hashable, list[PageRequest]]:
        """The live map of held partial requests, for a caller's fast check "does this
        device hold any?" (read it, never change it; an emptied list may stay)."""
        return self._partial

    def report(self, device: Hashable, request: PageRequest) -> list[PageRequest] | None:
        """Take one request; return the whole group when this request closes one (the group
        is then pending until ``respond``)."""
        group = self.close(device, request)
        if group is not None:
            self._pending.setdefault(device, []).append(request)
        return group

    def close(self, device: Hashable, request: PageRequest) -> list[PageRequest] | None:
        """``report`` for a caller that answers the closed group at once, itself: the group
        is never pending (nothing could answer it in between)."""
        last = request.last
        if last and not READS_OR_WRITES[request.perm]:  # a stop marker (inlined: hot)
            self.counters.stop_markers += 1
            return None
        if not last:
            self._partial.setdefault(device, []).append(request)
            return None
        group = [request]
        held = self._partial.get(device)
        if held:
            grpid = request.grpid
            mine = [r for r in held if r.grpid == grpid]
            if mine:
                held[:] = [r for r in held if r.grpid != grpid]
                group = [*mine, request]
        self.counters.groups += 1
        return group

    def respond(self, device: Hashable, response: PageResponse) -> bool:
        """Retire the pending group a response answers; False (and counted) if none does."""
        pending = self._pending.get(device)
        if pending:
            for index, last in enumerate(pending):
                if last.grpid == response.grpid and (
                    not (last.pasid_valid and last.needs_pasid)
                    or (response.pasid_valid and last.pasid == response.pasid)
                ):
                    del pending[index]
                    return True
        self.counters.unmatched_responses += 1
        return False

    def pending(self, device: Hashable) -> list[PageRequest]:
        """The last requests of the groups awaiting a response (a copy)."""
        return list(self._pending.get(device, ()))

    def partial(self, device: Hashable) -> list[PageRequest]:
        """The requests held for groups not yet closed (a copy)."""
        return list(self._partial.get(device, ()))

    def discard_partial(self, devices: list[Hashable] | None = None) -> int:
        """Throw away the partial groups (after a queue overflow); return how many requests."""
        keys = list(self._partial) if devices is None else devices
        dropped = 0
        for key in keys:
            held = self._partial.pop(key, None)
            if held:
                dropped += len(held)
        self.counters.discarded_partial += dropped
        return dropped

    def remove_device(
        self, device: Hashable, required: Collection[Hashable] = ()
    ) -> list[PageResponse]:
        """The device is going away: answer its pending groups INVALID, drop its partials
        (``required``: source IDs whose responses carry the PASID, see ``response_for``)."""
        self.discard_partial([device])
        pending = self._pending.pop(device, [])
        self.counters.answered_on_removal += len(pending)
        return [response_for(last, ResponseCode.INVALID, required) for last in pending]
