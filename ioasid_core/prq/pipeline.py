"""One unit's page-request path: ring, decode, group, resolve, respond, encode.

Devices ``submit`` requests (encoded by the vendor codec into the unit's shared ring); the
driver ``service``s the ring: it drains it, decodes the batch, groups requests per device
(IOPF rules), resolves each request of a closed group under the lookup policy with sticky
errors (the first failure answers the whole group), and encodes one response per group.
All per-request work is plain calls on objects bound once: no pluggy call on this path.
"""

from __future__ import annotations

from collections import Counter

import attrs

from ioasid_core.bits import Buffer, DecodeError
from ioasid_core.errors import NotFoundError
from ioasid_core.platform import Platform
from ioasid_core.prq.iopf import IopfQueue, response_for
from ioasid_core.prq.policy import LookupPolicy, Outcome, Resolution, make_resolver
from ioasid_core.prq.ring import Ring
from ioasid_core.prq.types import READS_OR_WRITES, PageRequest, PageResponse, ResponseCode
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.sets import IoasidSet

__all__ = ["PrqCounters", "PrqPipeline"]


@attrs.define
class PrqCounters:
    """Everything the pipeline counts (the replay's metrics read these)."""

    page_requests: int = 0
    responses: Counter[ResponseCode] = attrs.field(factory=Counter)
    outcomes: Counter[Outcome] = attrs.field(factory=Counter)
    cross_owner_hits: int = 0
    type_confusions: int = 0
    vendor_rejects: int = 0
    """Requests the vendor's own checks answered before any lookup."""
    overflow_dropped: int = 0
    auto_responses: Counter[ResponseCode] = attrs.field(factory=Counter)
    """Responses the hardware generated itself for LAST requests dropped on overflow, by
    code (``overflow_response``); not in ``responses``, which the driver sent."""
    malformed: int = 0
    errors: list[str] = attrs.field(factory=list)
    """The last few decode errors, for a report."""


_KEEP_ERRORS = 20


class PrqPipeline:
    """The page-request path of one IOMMU unit, under one lookup policy."""

    def __init__(
        self,
        platform: Platform,
        unit: str,
        vendor: VendorPrq,
        *,
        policy: LookupPolicy | None = None,
        sva_set: IoasidSet | None = None,
        ring_entries: int = 2048,
        overflow_response: ResponseCode = ResponseCode.SUCCESS,
    ) -> None:
        """``overflow_response`` is what the hardware answers for a LAST request it had to
        drop because the ring was full; the vendors' specs decide it (see the plugin)."""
        if unit not in platform.units:
            raise NotFoundError(f"no IOMMU unit named {unit!r} on this platform")
        self.platform = platform
        self.unit = unit
        self.vendor = vendor
        self.policy = policy if policy is not None else vendor.default_policy
        self.ring = Ring(ring_entries, vendor.entry_size)
        self.iopf = IopfQueue()
        self.counters = PrqCounters()
        self.overflow_response = overflow_response
        self._resolve = make_resolver(
            platform, unit, self.policy, sva_set=sva_set, expected=vendor.expected
        )

    # ------------------------------------------------------------------ the device side

    def submit(self, request: PageRequest) -> bool:
        """A device sends one request into the unit's ring; False if the ring was full."""
        if self.ring.push(self.vendor.encode_request(request)):
            return True
        self.counters.overflow_dropped += 1
        if request.last and not request.stop_marker:
            self.counters.auto_responses[self.overflow_response] += 1
        return False

    # ------------------------------------------------------------------ the driver side

    def service(self, limit: int | None = None) -> list[PageResponse]:
        """Drain the ring and answer every group it closes."""
        raw = self.ring.drain(limit)
        responses = self.process(self._decode(raw))
        if self.ring.overflow and not len(self.ring):
            # As the drivers do: once the ring is empty, partial groups cannot complete.
            self.iopf.discard_partial()
            self.ring.clear_overflow()
        return responses

    def service_raw(self, limit: int | None = None) -> bytes:
        """``service``, with the responses encoded in the vendor's format."""
        return self.vendor.encode_responses(self.service(limit))

    def _decode(self, raw: Buffer) -> list[PageRequest]:
        decode = self.vendor.decode_batch
        try:
            return decode(raw)
        except DecodeError:
            pass
        # Decode entry by entry: keep the good ones, count and report the bad.
        size = self.vendor.entry_size
        good: list[PageRequest] = []
        view = memoryview(raw)
        for start in range(0, len(raw), size):
            try:
                good.extend(decode(view[start : start + size]))
            except DecodeError as exc:
                self.counters.malformed += 1
                self._note(f"{exc.layout}: ring entry at byte {start:#x} of the batch: {exc.what}")
        return good

    def _note(self, message: str) -> None:
        errors = self.counters.errors
        errors.append(message)
        del errors[:-_KEEP_ERRORS]

    def process(self, requests: list[PageRequest]) -> list[PageResponse]:
        """Group, resolve and answer decoded requests (the per-request hot loop).

        A LAST request with nothing held for its device is a group of one, answered directly
        (the IOPF rules give the same answer; most groups are such, and a stall always is);
        anything else goes through the grouping layer. Counts are kept in local dicts keyed
        by interned objects (resolutions, response codes) and added to the counters once.
        """
        iopf = self.iopf
        close = iopf.close  # answered below, at once: never pending in between
        held = iopf.partial_by_device  # device -> partial requests (read only here)
        check = self.vendor.check
        resolve = self._resolve
        success = ResponseCode.SUCCESS
        invalid = ResponseCode.INVALID
        reads_or_writes = READS_OR_WRITES
        seen: dict[Resolution, int] = {}
        codes: dict[ResponseCode, int] = {}
        rejects = stops = singles = 0
        out: list[PageResponse] = []
        append = out.append
        for request in requests:
            if request.last and not held.get(request.device):
                if not reads_or_writes[request.perm]:
                    stops += 1  # a stop marker: discarded, never answered
                    continue
                singles += 1
                code = check(request)
                if code is None:
                    resolution = resolve(request)
                    seen[resolution] = seen.get(resolution, 0) + 1
                    code = success if resolution.ok else invalid
                else:
                    rejects += 1
                append(response_for(request, code))
                codes[code] = codes.get(code, 0) + 1
                continue
            group = close(request.device, request)
            if group is None:
                continue
            code = success
            for member in group:
                verdict = check(member)
                if verdict is not None:
                    rejects += 1
                    code = verdict
                    break
                resolution = resolve(member)
                seen[resolution] = seen.get(resolution, 0) + 1
                if not resolution.ok:
                    code = invalid
                    break
            append(response_for(group[-1], code))
            codes[code] = codes.get(code, 0) + 1
        counters = self.counters
        counters.page_requests += len(requests)
        counters.vendor_rejects += rejects
        iopf.counters.stop_markers += stops
        iopf.counters.groups += singles
        for resolution, count in seen.items():
            counters.outcomes[resolution.outcome] += count
            if resolution.cross_owner:
                counters.cross_owner_hits += count
            if resolution.type_confusion:
                counters.type_confusions += count
        counters.responses.update(codes)
        return out

    def deliver(self, response: PageResponse) -> bool:
        """A response from elsewhere (a guest, a user-space handler): passed on only if it
        matches a pending group, otherwise dropped and counted."""
        if self.iopf.respond(response.device, response):
            self.counters.responses[response.code] += 1
            return True
        return False

    def remove_device(self, source_id: int) -> list[PageResponse]:
        """A device behind this unit goes away: its pending groups are answered INVALID."""
        answered = self.iopf.remove_device(source_id)
        for response in answered:
            self.counters.responses[response.code] += 1
        return answered
