"""One unit's page-request path: ring, decode, group, resolve, respond, encode.

Devices ``submit`` requests (encoded by the vendor codec into the unit's shared ring); the
driver ``service``s the ring: it drains it, decodes the batch, groups requests per device
(IOPF rules), resolves each request of a closed group under the lookup policy with sticky
errors (the first failure answers the whole group), and encodes one response per group.
All per-request work is plain calls on objects bound once: no pluggy call on this path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import attrs

from ioasid_core.bits import Buffer, DecodeError
from ioasid_core.errors import NotFoundError
from ioasid_core.platform import Platform
from ioasid_core.prq.iopf import IopfQueue, response_for
from ioasid_core.prq.policy import LookupPolicy, Outcome, Resolution, Resolver, make_resolver
from ioasid_core.prq.ring import Ring
from ioasid_core.prq.types import (
    READS_OR_WRITES,
    PageRequest,
    PageResponse,
    RequestRow,
    ResponseCode,
    ResponseRow,
    request_row,
    response_row,
)
from ioasid_core.prq.unhandled import UnhandledEvent, UnhandledKind
from ioasid_core.prq.vendor import RowCheck, UnhandledLog, VendorPrq, row_codec
from ioasid_core.sets import IoasidSet
from ioasid_core.types import INVALID_IOASID

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
    """Ring entries the codec refused (bad bytes)."""
    unhandled_events: Counter[UnhandledKind] = attrs.field(factory=Counter)
    """Well-formed entries that are not page requests (the driver logs them, answers
    nothing), by kind; neither in ``page_requests`` nor in ``malformed``."""
    lost_on_removal: int = 0
    """Requests still in the ring when the unit went away (``discard_queue``)."""
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
        self._codec = row_codec(vendor)
        self._log_unhandled = vendor.log_unhandled if isinstance(vendor, UnhandledLog) else None
        self._resolve = make_resolver(
            platform, unit, self.policy, sva_set=sva_set, expected=vendor.expected
        )

    # ------------------------------------------------------------------ the device side

    def submit(self, request: PageRequest) -> bool:
        """A device sends one request into the unit's ring; False if the ring was full."""
        if self.ring.push(self.vendor.encode_request(request)):
            return True
        self._overflowed(request.last and READS_OR_WRITES[request.perm])
        return False

    def submit_rows(self, rows: Sequence[RequestRow]) -> int:
        """Devices send a burst of requests, in order; how many fit in the ring (the rest
        were dropped on overflow, as ``submit`` drops them one by one)."""
        if not rows:
            return 0
        taken = self.ring.push_many(self._codec.encode_request_rows(rows))
        if taken < len(rows):
            reads_or_writes = READS_OR_WRITES
            for row in rows[taken:]:
                self._overflowed(row[4] and reads_or_writes[row[5]])
        return taken

    def _overflowed(self, answered: bool) -> None:
        self.counters.overflow_dropped += 1
        if answered:  # a LAST request that is not a stop marker: the hardware answers it
            self.counters.auto_responses[self.overflow_response] += 1

    # ------------------------------------------------------------------ the driver side

    def service(self, limit: int | None = None) -> list[PageResponse]:
        """Drain the ring and answer every group it closes."""
        return [PageResponse(*row) for row in self.service_rows(limit)]

    def service_rows(self, limit: int | None = None) -> list[ResponseRow]:
        """``service``, with the responses as rows (nothing built per request)."""
        raw = self.ring.drain(limit)
        responses = self.process_rows(self._decode(raw))
        if self.ring.overflow and not len(self.ring):
            # As the drivers do: once the ring is empty, partial groups cannot complete.
            self.iopf.discard_partial()
            self.ring.clear_overflow()
        return responses

    def service_raw(self, limit: int | None = None) -> bytes:
        """``service``, with the responses encoded in the vendor's format."""
        return self._codec.encode_response_rows(self.service_rows(limit))

    def _decode(self, raw: Buffer) -> list[RequestRow]:
        """The batch's page requests. A batch of requests only takes one call; otherwise it
        is decoded again entry by entry, so each entry that is not a request is counted once:
        as an unhandled event (well formed) or as malformed (reported)."""
        decode = self._codec.decode_rows
        try:
            return decode(raw)
        except DecodeError:
            pass
        size = self.vendor.entry_size
        good: list[RequestRow] = []
        view = memoryview(raw)
        for start in range(0, len(raw), size):
            try:
                good.extend(decode(view[start : start + size]))
            except UnhandledEvent as event:
                self.counters.unhandled_events[event.kind] += 1
                if self._log_unhandled is not None:
                    self._log_unhandled(event)
            except DecodeError as exc:
                self.counters.malformed += 1
                self._note(f"{exc.layout}: ring entry at byte {start:#x} of the batch: {exc.what}")
        return good

    def _note(self, message: str) -> None:
        errors = self.counters.errors
        errors.append(message)
        del errors[:-_KEEP_ERRORS]

    def process(self, requests: Sequence[PageRequest]) -> list[PageResponse]:
        """Group, resolve and answer decoded requests (objects in, objects out)."""
        rows = self.process_rows([request_row(r) for r in requests])
        return [PageResponse(*row) for row in rows]

    def process_rows(self, rows: Sequence[RequestRow]) -> list[ResponseRow]:
        """Group, resolve and answer decoded requests: the per-request hot loop.

        A LAST request with nothing held for its device is a group of one, answered directly
        (the IOPF rules give the same answer; most groups are such, and a stall always is);
        anything else goes through the grouping layer, as objects. Resolutions are collected
        and counted once at the end (``Counter`` counts in C).
        """
        iopf = self.iopf
        held = iopf.partial_by_device  # device -> partial requests (read only here)
        check = self._codec.row_check
        resolve = self._resolve
        success = ResponseCode.SUCCESS
        invalid = ResponseCode.INVALID
        reads_or_writes = READS_OR_WRITES
        no_pasid = INVALID_IOASID
        resolutions: list[Resolution] = []
        seen = resolutions.append
        rejects = stops = singles = 0
        out: list[ResponseRow] = []
        append = out.append
        for row in rows:
            device, pasid, valid, grpid, last, perm, _addr, needs, private = row
            if last and not (held and held.get(device)):
                if not reads_or_writes[perm]:
                    stops += 1  # a stop marker: discarded, never answered
                    continue
                singles += 1
                code = None if check is None else check(row)
                if code is None:
                    resolution = resolve(device, valid, pasid)
                    seen(resolution)
                    code = success if resolution.ok else invalid
                else:
                    rejects += 1
                if valid and needs:
                    append((device, grpid, code, pasid, True, private))
                else:
                    append((device, grpid, code, no_pasid, False, private))
                continue
            code, rejected = self._group(row, check, resolve, seen)
            if code is not None:
                rejects += rejected
                append(response_row(response_for(PageRequest(*row), code)))
        counters = self.counters
        counters.page_requests += len(rows)
        counters.vendor_rejects += rejects
        iopf.counters.stop_markers += stops
        iopf.counters.groups += singles
        outcomes = counters.outcomes
        for resolution, count in Counter(resolutions).items():
            outcomes[resolution.outcome] += count
            if resolution.cross_owner:
                counters.cross_owner_hits += count
            if resolution.type_confusion:
                counters.type_confusions += count
        counters.responses.update(row[2] for row in out)
        return out

    def _group(
        self,
        row: RequestRow,
        check: RowCheck | None,
        resolve: Resolver,
        seen: Callable[[Resolution], None],
    ) -> tuple[ResponseCode | None, int]:
        """A request that is part of a larger group: held, or closing the group. Returns the
        group's code (None while it stays open) and how many vendor rejects it had."""
        group = self.iopf.close(row[0], PageRequest(*row))
        if group is None:
            return None, 0
        for member in group:
            verdict = None if check is None else check(request_row(member))
            if verdict is not None:
                return verdict, 1
            resolution = resolve(member.device, member.pasid_valid, member.pasid)
            seen(resolution)
            if not resolution.ok:
                return ResponseCode.INVALID, 0
        return ResponseCode.SUCCESS, 0

    def deliver(self, response: PageResponse) -> bool:
        """A response from elsewhere (a guest, a user-space handler): passed on only if it
        matches a pending group, otherwise dropped and counted."""
        if self.iopf.respond(response.device, response):
            self.counters.responses[response.code] += 1
            return True
        return False

    def discard_queue(self) -> int:
        """The unit goes away with requests still in its ring: they are thrown away unread
        (counted in ``page_requests`` and ``lost_on_removal``); returns how many."""
        lost = len(self.ring)
        self.ring.drain()
        self.counters.page_requests += lost
        self.counters.lost_on_removal += lost
        return lost

    def remove_device(self, source_id: int) -> list[PageResponse]:
        """A device behind this unit goes away: its pending groups are answered INVALID."""
        answered = self.iopf.remove_device(source_id)
        for response in answered:
            self.counters.responses[response.code] += 1
        return answered
