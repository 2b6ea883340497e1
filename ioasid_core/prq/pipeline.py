"""One unit's page-request path: ring, decode, resolve, answer, encode.

Devices ``submit`` requests (encoded by the vendor codec into the unit's shared ring); the
driver ``service``s the ring: it drains it, decodes the batch, resolves the requests under
the lookup policy and answers them under the vendor's answer discipline
(:mod:`ioasid_core.prq.discipline`: IOPF groups with sticky errors, VT-d's per-request
answers, AMD's per-device tables), and encodes the responses. The discipline's loop is
chosen once, when the pipeline is built. A response carries the PASID when the request had
one and its device requires it (the request's ``needs_pasid``, or the platform device's
``prg_response_pasid_required``). All per-request work is plain calls on objects bound
once: no pluggy call on this path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ioasid_core.bits import Buffer, DecodeError
from ioasid_core.errors import NotFoundError
from ioasid_core.platform import Platform
from ioasid_core.prq.discipline import Discipline, Verdict, discipline_of
from ioasid_core.prq.hardware import HardwareRules
from ioasid_core.prq.iopf import IopfQueue, response_for
from ioasid_core.prq.policy import (
    RESOLVED,
    LookupPolicy,
    Outcome,
    Resolution,
    Resolver,
    make_resolver,
)
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
from ioasid_core.prq.vendor import RowCheck, VendorPrq
from ioasid_core.sets import IoasidSet
from ioasid_core.types import INVALID_IOASID

__all__ = ["PrqCounters", "PrqPipeline"]


@attrs.frozen
class _Declared:
    """A discipline given to the pipeline, checked as a vendor's would be."""

    discipline: object
    name: str = "(given to the pipeline)"


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
    hardware_rejected: int = 0
    """Requests the hardware kept from software before the queue (its own checks, or a
    sticky overflow flag); those that needed an answer are in ``auto_responses``."""
    lost_on_removal: int = 0
    """Requests still in the ring when the unit went away (``discard_queue``)."""
    unanswered_groups: int = 0
    """Groups whose last request the driver read and decided never to answer (a verdict's
    silence, an unknown device under per-device tables): the device waits until it times
    out."""
    premature_responses: int = 0
    """Responses sent for a request that did not close its group (before the group's last
    request): a device following PCIe takes the group as answered."""
    errors: list[str] = attrs.field(factory=list)
    """The last few decode errors, for a report."""


_KEEP_ERRORS = 20
_SMALL_BATCH = 16
"""Up to this many, a batch's resolutions and responses are counted one by one."""
_FINE = RESOLVED[False, False]
"""The usual resolution: the serving loops count it in a local, not in the list."""
# Members read once, as globals: ``Enum.MEMBER`` on Python 3.11 costs some 60 ns more than a
# global, paid by every batch, and a replay step's batch holds one group (1-4 requests).
_SUCCESS = ResponseCode.SUCCESS
_INVALID = ResponseCode.INVALID
_EARLY = Verdict.EARLY
_SILENT = Verdict.SILENT
_RESOLVED = Outcome.RESOLVED
_UNKNOWN_DEVICE = Outcome.UNKNOWN_DEVICE
_DYING = Outcome.DYING


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
        overflow_response: ResponseCode | None = ResponseCode.SUCCESS,
        hardware: HardwareRules | None = None,
        discipline: Discipline | None = None,
    ) -> None:
        """``overflow_response`` is what the hardware answers for a LAST request it had to
        drop because the ring was full (None: nothing); ``hardware``, when given, says that
        and the rest of what the vendor's hardware does before software sees a request.
        ``discipline``: the vendor's own (``VendorPrq.discipline``, IOPF if it declares
        none) unless given."""
        if unit not in platform.units:
            raise NotFoundError(f"no IOMMU unit named {unit!r} on this platform")
        self.platform = platform
        self.unit = unit
        self.vendor = vendor
        self.policy = policy if policy is not None else vendor.default_policy
        self.ring = Ring(ring_entries, vendor.entry_size)
        self.iopf = IopfQueue()
        self.counters = PrqCounters()
        if hardware is None:
            hardware = HardwareRules(overflow_response=overflow_response)
        self.hardware = hardware
        self.overflow_response = hardware.overflow_response
        self._admit = hardware.admit
        self._sticky = hardware.sticky_overflow
        from ioasid_core.profile import profile_of  # (it imports the prq package)

        profile = profile_of(vendor)  # checked once; NonConformingVendor names what is wrong
        self._codec = profile.rows
        self._check: RowCheck | None = (
            profile.row_check_for(platform, unit)
            if profile.row_check_for is not None
            else self._codec.row_check
        )
        self._log_unhandled = profile.log_unhandled
        self._resolve = make_resolver(
            platform, unit, self.policy, sva_set=sva_set, expected=vendor.expected
        )
        self.discipline = (
            profile.discipline if discipline is None else discipline_of(_Declared(discipline))
        )
        self._required = platform.pasid_required(unit)
        self._held_codes: dict[int, tuple[PageRequest, ResponseCode]] = {}
        """``id(request)`` -> (request, its check's code), for held partial requests the
        vendor's check refused (the request is kept alive, so its id cannot be reused)."""
        self._tables: dict[tuple[int, int, int], list[Any]] = {}
        """Per-device tables: (device, PASID, group index) -> [status, requests so far]."""
        self._serve: Callable[[Sequence[RequestRow]], list[ResponseRow]] = {
            Discipline.IOPF: self._serve_iopf,
            Discipline.PER_REQUEST: self._serve_per_request,
            Discipline.DEVICE_TABLES: self._serve_device_tables,
        }[self.discipline]

    # ------------------------------------------------------------------ the device side

    def submit(self, request: PageRequest) -> bool:
        """A device sends one request into the unit's ring; False if it did not get there
        (the ring was full, or the hardware kept it: ``HardwareRules``)."""
        if self._admit is not None:
            row = request_row(request)
            return self._submit_checked(row, self._admit(row))
        if self._sticky and self.ring.overflow:
            self._overflowed(request.last and READS_OR_WRITES[request.perm])
            return False
        if self.ring.push(self.vendor.encode_request(request)):
            return True
        self._overflowed(request.last and READS_OR_WRITES[request.perm])
        return False

    def submit_rows(self, rows: Sequence[RequestRow]) -> int:
        """Devices send a burst of requests, in order; how many reached the ring (the rest
        were dropped on overflow or kept by the hardware, as ``submit`` does one by one)."""
        if not rows:
            return 0
        if self._admit is not None:
            return self._submit_admitted(rows)
        # A sticky flag drops what a full ring would: only a flag already set differs.
        taken = (
            0
            if self._sticky and self.ring.overflow
            else self.ring.push_many(self._codec.encode_request_rows(rows))
        )
        if taken < len(rows):
            reads_or_writes = READS_OR_WRITES
            for row in rows[taken:]:
                self._overflowed(row[4] and reads_or_writes[row[5]])
        return taken

    def _submit_admitted(self, rows: Sequence[RequestRow]) -> int:
        """A burst through the hardware's own checks (``admit``, each request in order). When
        all it lets through fits in the ring, they go in as one burst and its refusals are
        counted in order; otherwise request by request, as ``submit`` does."""
        admit = self._admit
        assert admit is not None
        codes = [admit(row) for row in rows]
        queued = [row for row, code in zip(rows, codes, strict=True) if code is None]
        ring = self.ring
        if (self._sticky and ring.overflow) or len(queued) > ring.free_slots:
            return sum(
                self._submit_checked(row, code) for row, code in zip(rows, codes, strict=True)
            )
        if queued:
            ring.push_many(self._codec.encode_request_rows(queued))
        if len(queued) < len(rows):
            counters = self.counters
            for row, code in zip(rows, codes, strict=True):
                if code is not None:
                    counters.hardware_rejected += 1
                    if row[4] and READS_OR_WRITES[row[5]]:
                        counters.auto_responses[code] += 1
        return len(queued)

    def _submit_checked(self, row: RequestRow, code: ResponseCode | None) -> bool:
        """One request through the hardware's own rules, in the reference model's order:
        its checks (``code``: what ``admit`` said), then a sticky overflow flag, then a full
        ring."""
        answered = row[4] and READS_OR_WRITES[row[5]]
        if code is not None:
            self.counters.hardware_rejected += 1
            if answered:
                self.counters.auto_responses[code] += 1
            return False
        if self._sticky and self.ring.overflow:
            self._overflowed(answered)
            return False
        if self.ring.push(self._codec.encode_request_rows([row])):
            return True
        self._overflowed(answered)
        return False

    def _overflowed(self, answered: bool) -> None:
        self.counters.overflow_dropped += 1
        # A LAST request that is not a stop marker: the hardware answers it, if it answers.
        if answered and self.overflow_response is not None:
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
            self._held_codes.clear()
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
        size = self.vendor.entry_size
        try:
            rows = decode(raw)
        except DecodeError:
            pass
        else:
            if len(rows) * size < len(raw):  # entries in against rows out
                self._short(len(raw) // size - len(rows), f"{len(raw) // size} entries")
            return rows
        good: list[RequestRow] = []
        view = memoryview(raw)
        for start in range(0, len(raw), size):
            try:
                entry = decode(view[start : start + size])
                if not entry:
                    self._short(1, f"the ring entry at byte {start:#x}")
                good.extend(entry)
            except UnhandledEvent as event:
                self.counters.unhandled_events[event.kind] += 1
                if self._log_unhandled is not None:
                    self._log_unhandled(event)
            except DecodeError as exc:
                self.counters.malformed += 1
                self._note(f"{exc.layout}: ring entry at byte {start:#x} of the batch: {exc.what}")
        return good

    def _short(self, missing: int, what: str) -> None:
        """A codec that returned fewer requests than it was given entries, without an error:
        the missing ones are counted as malformed, not lost from every counter."""
        self.counters.malformed += missing
        self._note(
            f"vendor {self.vendor.name!r}: its codec returned no request for {missing} of "
            f"{what} (counted as malformed)"
        )

    def _note(self, message: str) -> None:
        errors = self.counters.errors
        errors.append(message)
        del errors[:-_KEEP_ERRORS]

    def process(self, requests: Sequence[PageRequest]) -> list[PageResponse]:
        """Group, resolve and answer decoded requests (objects in, objects out)."""
        rows = self.process_rows([request_row(r) for r in requests])
        return [PageResponse(*row) for row in rows]

    def process_rows(self, rows: Sequence[RequestRow]) -> list[ResponseRow]:
        """Resolve and answer decoded requests under the vendor's answer discipline (the
        per-request hot loop, chosen once when the pipeline was built)."""
        return self._serve(rows)

    def _count(
        self,
        rows: int,
        resolutions: list[Resolution],
        fine: int,
        out: list[ResponseRow],
        oks: int,
    ) -> None:
        """Count a batch once, at its end: the serving loop counted the usual cases in
        locals (``fine`` more of the usual resolution beside ``resolutions``; ``oks`` of
        ``out`` answered SUCCESS, all of it when it equals ``len(out)``, else ``out`` is
        counted whole). A big batch is counted by ``Counter`` (in C); a small one, what a
        replay step services, by a loop (building a ``Counter`` costs more than counting a
        few)."""
        counters = self.counters
        counters.page_requests += rows
        outcomes = counters.outcomes
        if fine:
            outcomes[_RESOLVED] += fine
        if len(resolutions) > _SMALL_BATCH:
            for resolution, count in Counter(resolutions).items():
                outcomes[resolution.outcome] += count
                if resolution.cross_owner:
                    counters.cross_owner_hits += count
                if resolution.type_confusion:
                    counters.type_confusions += count
        else:
            for resolution in resolutions:
                outcomes[resolution.outcome] += 1
                if resolution.cross_owner:
                    counters.cross_owner_hits += 1
                if resolution.type_confusion:
                    counters.type_confusions += 1
        responses = counters.responses
        if oks == len(out):
            if oks:
                responses[_SUCCESS] += oks
        elif len(out) > _SMALL_BATCH:
            responses.update([row[2] for row in out])
        else:
            for row in out:
                responses[row[2]] += 1

    def _answer(self, row: RequestRow, code: ResponseCode, out: list[ResponseRow]) -> None:
        """Answer one request at once, alone (a verdict's answer): before its group closes
        when it is not the last of it."""
        device, pasid, valid, grpid, last, _perm, _addr, needs, private = row
        required = self._required
        if valid and (needs or (required and device in required)):
            out.append((device, grpid, code, pasid, True, private, last))
        else:
            out.append((device, grpid, code, INVALID_IOASID, False, private, last))
        if not last:
            self.counters.premature_responses += 1

    # ------------------------------------------------------------------ IOPF

    def _serve_iopf(self, rows: Sequence[RequestRow]) -> list[ResponseRow]:
        """The IOPF discipline. A LAST request with nothing held for its device is a group
        of one, answered directly (the IOPF rules give the same answer; most groups are
        such, and a stall always is). A partial request is checked on arrival, so a verdict
        can answer it now; the others are held until their group closes: as rows while the
        batch lasts when nothing was held for their device before it (a group that closes
        in its own batch, as most do, builds no object), else in the grouping layer, as
        objects; what a batch leaves open goes there at its end."""
        iopf = self.iopf
        held = iopf.partial_by_device  # device -> partial requests (read only here)
        check = self._check
        fine = _FINE
        fines = oks = 0
        resolve = self._resolve
        required = self._required
        success = _SUCCESS
        invalid = _INVALID
        reads_or_writes = READS_OR_WRITES
        no_pasid = INVALID_IOASID
        resolutions: list[Resolution] = []
        seen = resolutions.append
        rejects = stops = singles = 0
        out: list[ResponseRow] = []
        append = out.append
        # device -> its partial requests of this batch, with their checks' codes
        local: dict[int, list[tuple[RequestRow, ResponseCode | None]]] = {}
        try:
            for row in rows:
                device, pasid, valid, grpid, last, perm, _addr, needs, private = row
                if not last:
                    said = None if check is None else check(row)
                    if isinstance(said, Verdict):
                        self._partial_verdict(row, said, seen, out)
                        continue
                    mine = local.get(device) if local else None
                    if mine is not None:
                        mine.append((row, said))
                    elif held and held.get(device):
                        self._hold(row, said)
                    else:
                        local[device] = [(row, said)]
                    continue
                mine = local.get(device) if local else None
                if not mine and not (held and held.get(device)):
                    if not reads_or_writes[perm]:
                        stops += 1  # a stop marker: discarded, never answered
                        continue
                    singles += 1
                    said = None if check is None else check(row)
                    if said is None:
                        resolution = resolve(device, valid, pasid)
                        if resolution is fine:
                            fines += 1
                            code = success
                        else:
                            seen(resolution)
                            code = success if resolution.ok else invalid
                    elif isinstance(said, Verdict):
                        answer = self._single_verdict(row, said, seen)
                        if answer is None:
                            continue
                        code = answer
                    else:
                        code = said
                        rejects += 1
                elif mine:
                    if not reads_or_writes[perm]:
                        stops += 1  # a stop marker: the partial requests stay held
                        continue
                    singles += 1  # a group closed (the grouping layer counts these)
                    closing, rejected = self._close_rows(row, mine, check, resolve, seen)
                    rejects += rejected
                    if closing is None:
                        continue
                    code = closing
                else:
                    closing, rejected = self._close(row, check, resolve, seen)
                    rejects += rejected
                    if closing is not None:
                        append(response_row(response_for(PageRequest(*row), closing, required)))
                    continue
                if code is success:
                    oks += 1
                if valid and (needs or (required and device in required)):
                    append((device, grpid, code, pasid, True, private, True))
                else:
                    append((device, grpid, code, no_pasid, False, private, True))
        finally:
            for pending in local.values():
                for row, said in pending:
                    self._hold(row, said)
        self.counters.vendor_rejects += rejects
        iopf.counters.stop_markers += stops
        iopf.counters.groups += singles
        self._count(len(rows), resolutions, fines, out, oks)
        return out

    def _close_rows(
        self,
        row: RequestRow,
        mine: list[tuple[RequestRow, ResponseCode | None]],
        check: RowCheck | None,
        resolve: Resolver,
        seen: Callable[[Resolution], None],
    ) -> tuple[ResponseCode | None, int]:
        """``_close`` for a group whose partial requests are all rows of this batch
        (``mine``, in arrival order: the group's are taken out of it), by the same rules."""
        grpid = row[3]
        group = [entry for entry in mine if entry[0][3] == grpid]
        if len(group) == len(mine):  # the device's only open group (the usual case)
            mine.clear()
        elif group:
            mine[:] = [entry for entry in mine if entry[0][3] != grpid]
        said = None if check is None else check(row)
        if isinstance(said, Verdict):
            if said is Verdict.SILENT:
                self.counters.unanswered_groups += 1
                return None, 1
            if said is not Verdict.EARLY:
                return said.code, 1
            said = None
        group.append((row, said))
        for member, code in group:
            if code is not None:
                return code, 1
            resolution = resolve(member[0], member[2], member[1])
            seen(resolution)
            if not resolution.ok:
                return ResponseCode.INVALID, 0
        return ResponseCode.SUCCESS, 0

    def _single_verdict(
        self, row: RequestRow, verdict: Verdict, seen: Callable[[Resolution], None]
    ) -> ResponseCode | None:
        """A verdict on a LAST request that closes a group of one: its code, or None for
        silence (the group is never answered)."""
        if verdict is Verdict.EARLY:  # the group closes now anyway: as usual
            resolution = self._resolve(row[0], row[2], row[1])
            seen(resolution)
            return ResponseCode.SUCCESS if resolution.ok else ResponseCode.INVALID
        self.counters.vendor_rejects += 1
        if verdict is Verdict.SILENT:
            self.counters.unanswered_groups += 1
            return None
        return verdict.code

    def _partial_verdict(
        self,
        row: RequestRow,
        verdict: Verdict,
        seen: Callable[[Resolution], None],
        out: list[ResponseRow],
    ) -> None:
        """A verdict on a request that does not close its group: it is not held; silence
        drops it, the others answer it at once."""
        if verdict is Verdict.EARLY:
            resolution = self._resolve(row[0], row[2], row[1])
            seen(resolution)
            self._answer(row, ResponseCode.SUCCESS if resolution.ok else ResponseCode.INVALID, out)
            return
        self.counters.vendor_rejects += 1
        code = verdict.code
        if code is not None:
            self._answer(row, code, out)

    def _hold(self, row: RequestRow, said: ResponseCode | None) -> None:
        """Hold a partial request until its group closes, with its check's code if any (the
        check runs once, on arrival, as the driver's thread ran it)."""
        request = PageRequest(*row)
        self.iopf.close(row[0], request)
        if said is not None:
            self._held_codes[id(request)] = (request, said)

    def _close(
        self,
        row: RequestRow,
        check: RowCheck | None,
        resolve: Resolver,
        seen: Callable[[Resolution], None],
    ) -> tuple[ResponseCode | None, int]:
        """A LAST request closing a group with held partial requests (or a stop marker).
        Returns the group's code (None for a stop marker, or when a verdict silences it) and
        how many vendor rejects it had: the members' codes and lookups in order, the first
        failure answering the group; a verdict on the LAST request wins over them."""
        request = PageRequest(*row)
        group = self.iopf.close(row[0], request)
        if group is None:
            return None, 0  # a stop marker (counted by the grouping layer)
        held = self._held_codes
        codes = [held.pop(id(m), (m, None))[1] if held else None for m in group[:-1]]
        said = None if check is None else check(row)
        if isinstance(said, Verdict):
            if said is Verdict.SILENT:
                self.counters.unanswered_groups += 1
                return None, 1
            if said is not Verdict.EARLY:
                return said.code, 1
            said = None
        codes.append(said)
        for member, code in zip(group, codes, strict=True):
            if code is not None:
                return code, 1
            resolution = resolve(member.device, member.pasid_valid, member.pasid)
            seen(resolution)
            if not resolution.ok:
                return ResponseCode.INVALID, 0
        return ResponseCode.SUCCESS, 0

    # ------------------------------------------------------------------ per request

    def _serve_per_request(self, rows: Sequence[RequestRow]) -> list[ResponseRow]:
        """The per-request discipline (VT-d's 2019 handler): every request is looked up as
        it arrives, stop markers included; the one closing its group (or one a verdict
        answers) is answered with its own result."""
        check = self._check
        fine = _FINE
        fines = oks = 0
        resolve = self._resolve
        required = self._required
        success = _SUCCESS
        invalid = _INVALID
        early = _EARLY
        no_pasid = INVALID_IOASID
        resolutions: list[Resolution] = []
        seen = resolutions.append
        rejects = unanswered = premature = 0
        out: list[ResponseRow] = []
        append = out.append
        for row in rows:
            device, pasid, valid, grpid, last, _perm, _addr, needs, private = row
            said = None if check is None else check(row)
            code: ResponseCode | None
            if said is None:
                resolution = resolve(device, valid, pasid)
                if resolution is fine:
                    fines += 1
                    if not last:
                        continue
                    code = success
                else:
                    seen(resolution)
                    if not last:
                        continue
                    code = success if resolution.ok else invalid
            elif isinstance(said, Verdict):
                if said is early:
                    resolution = resolve(device, valid, pasid)
                    seen(resolution)
                    code = success if resolution.ok else invalid
                else:
                    rejects += 1
                    code = said.code
                    if code is None:  # silence
                        unanswered += last
                        continue
                premature += not last
            else:
                rejects += 1
                if not last:
                    continue
                code = said
            if code is success:
                oks += 1
            if valid and (needs or (required and device in required)):
                append((device, grpid, code, pasid, True, private, last))
            else:
                append((device, grpid, code, no_pasid, False, private, last))
        counters = self.counters
        counters.vendor_rejects += rejects
        counters.unanswered_groups += unanswered
        counters.premature_responses += premature
        # Every LAST request closed a group: answered (all answers but the premature ones)
        # or silenced (unanswered); counted here, not per request.
        self.iopf.counters.groups += len(out) - premature + unanswered
        self._count(len(rows), resolutions, fines, out, oks)
        return out

    # ------------------------------------------------------------------ device tables

    def _serve_device_tables(self, rows: Sequence[RequestRow]) -> list[ResponseRow]:
        """The per-device-tables discipline (AMD's ``amd_iommu_v2.c``): an unknown device is
        never answered, a PASID not in the device's table is answered INVALID at once, and a
        group, keyed by (device, PASID, group index), is answered when its last request is
        done, with the last failure any of its requests met (a PASID in the table whose
        fault fails: its address space exiting, or an object the handler cannot service)."""
        check = self._check
        fine = _FINE
        fines = oks = 0
        resolve = self._resolve
        tables = self._tables
        success = _SUCCESS
        invalid = _INVALID
        unknown_device = _UNKNOWN_DEVICE
        resolved = _RESOLVED  # found, but of a type the handler cannot service
        dying = _DYING
        reads_or_writes = READS_OR_WRITES
        resolutions: list[Resolution] = []
        seen = resolutions.append
        counters = self.counters
        required = self._required
        no_pasid = INVALID_IOASID
        stops = groups = 0
        out: list[ResponseRow] = []
        append = out.append
        for row in rows:
            device, pasid, valid, grpid, last, perm, _addr, needs, private = row
            if last and not reads_or_writes[perm]:
                stops += 1  # a stop marker: discarded, never answered
                continue
            code = None if check is None else check(row)
            now = False
            if code is _EARLY:
                code, now = None, not last
            if code is None:
                resolution = resolve(device, valid, pasid)
                if resolution is fine:
                    fines += 1
                    code = success
                else:
                    seen(resolution)
                    outcome = resolution.outcome
                    if resolution.ok:
                        code = success
                    elif outcome is unknown_device:
                        counters.unanswered_groups += last  # nobody knows the device: silence
                        continue
                    elif outcome is resolved or outcome is dying:
                        code = invalid  # in the table, but the fault failed: the group's status
                    else:
                        code, now = invalid, True  # not in the table: INVALID at once, alone
            elif isinstance(code, Verdict):
                counters.vendor_rejects += 1
                if code is _SILENT:
                    counters.unanswered_groups += last
                    continue
                code, now = code.code, True
            else:
                counters.vendor_rejects += 1
            assert code is not None
            if now:
                self._answer(row, code, out)
                continue
            if not last:
                key = (device, pasid if valid else no_pasid, grpid)
                entry = tables.get(key)
                if entry is None:
                    tables[key] = [code, 1]
                else:
                    entry[1] += 1
                    if code is not success:  # the last writer of a failure wins
                        entry[0] = code
                continue
            # The group's last request (most groups have no earlier ones: no table entry).
            if tables:
                entry = tables.pop((device, pasid if valid else no_pasid, grpid), None)
                if code is success and entry is not None:
                    code = entry[0]
            groups += 1
            if code is success:
                oks += 1
            if valid and (needs or (required and device in required)):
                append((device, grpid, code, pasid, True, private, True))
            else:
                append((device, grpid, code, no_pasid, False, private, True))
        self.iopf.counters.groups += groups
        self.iopf.counters.stop_markers += stops
        self._count(len(rows), resolutions, fines, out, oks)
        return out

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
        """A device behind this unit goes away: its pending groups are answered INVALID, its
        open groups (partial requests, per-device tables) are discarded."""
        open_groups = [key for key in self._tables if key[0] == source_id]
        for key in open_groups:
            self.iopf.counters.discarded_partial += self._tables.pop(key)[1]
        for ident, (request, _code) in list(self._held_codes.items()):
            if request.device == source_id:
                del self._held_codes[ident]
        answered = self.iopf.remove_device(source_id, self._required)
        for response in answered:
            self.counters.responses[response.code] += 1
        return answered
