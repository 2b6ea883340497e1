"""What one replay of a scenario counts (see docs/metrics.md).

Everything here is deterministic: the same scenario, vendor, policy and seed give the same
metrics. Latencies are modelled time (the scenario's ``at`` clock), not wall-clock time.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import attrs

from ioasid_core.latency import LATENCY_OPS
from ioasid_core.prq.policy import Outcome
from ioasid_core.prq.unhandled import UNHANDLED_KINDS
from ioasid_core.quantiles import Quantiles

__all__ = ["STEP_ERRORS_KEPT", "Metrics", "percentile", "summary"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats going astray
    return float(ordered[int(rank) - 1])


def summary(values: list[float], *, low: bool = False) -> dict[str, float | None]:
    """``p50``, ``p90``, ``p99`` (nearest rank) and ``max``; with ``low``, ``min`` first (for
    reuse, where the fastest case is the one that matters). All None for no values: nothing
    was measured (a 0.0 would read as "instant", the best or the worst case). Exact up to
    ``quantiles.EXACT_LIMIT`` distinct values, then within ``quantiles.RELATIVE_ERROR``."""
    return Quantiles(values).summary(low=low)


_FAILURES: Final = ("quota", "no_space", "allocator", "invalid")
_HOST_FAILURES: Final = (*_FAILURES, "pasid_too_wide")  # a bind's, see docs/metrics.md
_GUEST_FAILURES: Final = (*_FAILURES, "scalable_mode_off")
_OUTCOMES: Final = tuple(outcome.value for outcome in Outcome)


def _fixed(counts: Counter[str], keys: tuple[str, ...]) -> dict[str, int]:
    """Every known key, zero or not (JSON and CSV then have the same columns for every
    scenario), then any other key the counter holds, sorted."""
    out = {key: counts.get(key, 0) for key in keys}
    out.update(sorted((k, v) for k, v in counts.items() if k not in out))
    return out


STEP_ERRORS_KEPT: Final = 1000
"""The step errors a run keeps word for word (about 150 B each); the rest are counted."""


@attrs.define
class Metrics:
    """The counters of one (scenario, vendor, policy) run."""

    allocations: int = 0
    allocation_failures: Counter[str] = attrs.field(factory=Counter)
    """By reason: ``quota``, ``no_space``, ``allocator``, ``invalid``, ``pasid_too_wide``."""
    frees: int = 0
    sva_binds: int = 0
    """SVA binds that succeeded: the first of an address space allocates, later ones share."""
    peak_live_ioasids: int = 0
    page_requests: int = 0
    responses: Counter[str] = attrs.field(factory=Counter)
    """By code: ``success``, ``invalid``, ``failure``."""
    dropped: Counter[str] = attrs.field(factory=Counter)
    """``stop_markers``, ``overflow``, ``unmatched``, ``discarded_partial``, ``malformed``,
    ``unit_removed``, ``hardware``."""
    outcomes: Counter[str] = attrs.field(factory=Counter)
    """Lookup outcomes of the requests that were resolved."""
    unhandled_events: Counter[str] = attrs.field(factory=Counter)
    """Well-formed queue entries that were not page requests (logged, never answered), by
    kind: ``fault``, ``event``, ``refused_stall``. Not in ``page_requests``."""
    cross_owner_hits: int = 0
    type_confusions: int = 0
    vendor_rejects: int = 0
    unanswered_groups: int = 0
    """Groups whose last request the driver read and never answered (on hardware, the
    device times out)."""
    premature_responses: int = 0
    """Responses sent before their group's last request."""
    auto_responses: int = 0
    auto_response_codes: Counter[str] = attrs.field(factory=Counter)
    """``auto_responses`` by code: ``success``, ``invalid``, ``failure``."""
    allocator_switches: int = 0
    orphaned_ids: int = 0
    step_errors: list[str] = attrs.field(factory=list)
    """Steps that could not run (e.g. a PASID whose allocation failed), with the reason: the
    first ``STEP_ERRORS_KEPT`` of them (``add_step_error``), so a run's memory does not grow
    with its length when every step fails."""
    step_errors_total: int = 0
    """How many steps could not run, all of them (at least ``len(step_errors)``)."""
    request_latency_us: Quantiles = attrs.field(factory=Quantiles)
    """Per answered group, modelled time from its last request to its answer: a bounded
    summary, not every sample (see ``quantiles``)."""
    guest_allocations: int = 0
    guest_allocation_failures: Counter[str] = attrs.field(factory=Counter)
    """By reason: ``quota``, ``no_space``, ``allocator``, ``invalid``, ``scalable_mode_off``."""
    guest_frees: int = 0
    host_pasids_peak: int = 0
    """The most host PASIDs held for guests at once (in the VMs' host sets)."""
    scalable_mode_off: int = 0
    vcmd_commands: int = 0
    vm_exits: int = 0
    latency_us: dict[str, Quantiles] = attrs.field(factory=dict)
    """Per modelled operation with a ``[latency]`` distribution: each one's time from its
    step's ``at`` to its end (``page_request_service``: per group, its service time)."""
    allocator_refusals: Counter[str] = attrs.field(factory=Counter)
    """Swaps the space refused: ``default_busy`` (a first custom allocator registered while
    the default one holds IDs), ``holds_ids`` (an unregister without force of an allocator
    that holds IDs)."""
    forced_reclaims: int = 0
    """IDs reclaimed by a forced unregister: their owners were told, not asked."""
    pending_frees: int = 0
    """At the end, IDs freed by their owner but still referenced (an attached SPID)."""
    pasid_reuses: int = 0
    """Allocations that handed out an ID that had been reclaimed before in this run."""
    reuse_gap_us: Quantiles = attrs.field(factory=Quantiles)
    """For each reuse, the modelled time from the ID's reclaim to its new allocation."""
    reuse_distance: Quantiles = attrs.field(factory=Quantiles)
    """For each reuse, how many other allocations came between the reclaim and it."""
    stale_pasid_hits: int = 0
    """Groups queued before their PASID was freed, answered ``success`` after it was
    allocated again: the new owner's address space served a request meant for the old."""
    deferred_frees: int = 0
    """Frees that left the ID ``FREE_PENDING`` (a reference, e.g. an attached SPID, held it)."""
    spid_requests: int = 0
    """Page requests that named a guest PASID (``spid``), resolved to a host PASID by SPID."""

    def __attrs_post_init__(self) -> None:
        # Metrics made with a list of errors (tests, a plugin's report) count them.
        self.step_errors_total = max(self.step_errors_total, len(self.step_errors))

    def add_step_error(self, message: str) -> None:
        """Count a step that could not run; keep its message while fewer than
        ``STEP_ERRORS_KEPT`` are kept."""
        self.step_errors_total += 1
        if len(self.step_errors) < STEP_ERRORS_KEPT:
            self.step_errors.append(message)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (latencies as percentiles)."""
        return {
            "allocations": self.allocations,
            "allocation_failures": _fixed(self.allocation_failures, _HOST_FAILURES),
            "frees": self.frees,
            "sva_binds": self.sva_binds,
            "peak_live_ioasids": self.peak_live_ioasids,
            "page_requests": self.page_requests,
            "responses": {
                code: self.responses.get(code, 0) for code in ("success", "invalid", "failure")
            },
            "dropped": {
                why: self.dropped.get(why, 0)
                for why in (
                    "stop_markers",
                    "overflow",
                    "unmatched",
                    "discarded_partial",
                    "malformed",
                    "unit_removed",
                    "hardware",
                )
            },
            "outcomes": _fixed(self.outcomes, _OUTCOMES),
            "unhandled_events": _fixed(self.unhandled_events, UNHANDLED_KINDS),
            "cross_owner_hits": self.cross_owner_hits,
            "type_confusions": self.type_confusions,
            "vendor_rejects": self.vendor_rejects,
            "unanswered_groups": self.unanswered_groups,
            "premature_responses": self.premature_responses,
            "auto_responses": self.auto_responses,
            "auto_response_codes": {
                code: self.auto_response_codes.get(code, 0)
                for code in ("success", "invalid", "failure")
            },
            "allocator_switches": self.allocator_switches,
            "orphaned_ids": self.orphaned_ids,
            "step_errors": list(self.step_errors),
            "step_errors_total": self.step_errors_total,
            "request_latency_us": self.request_latency_us.summary(),
            # Every operation, modelled or not: the CSV has the same columns for every file.
            "latency_us": {
                op: (self.latency_us.get(op) or Quantiles()).summary() for op in LATENCY_OPS
            },
            "allocator_refusals": {
                why: self.allocator_refusals.get(why, 0) for why in ("default_busy", "holds_ids")
            },
            "guest_allocations": self.guest_allocations,
            "guest_allocation_failures": _fixed(self.guest_allocation_failures, _GUEST_FAILURES),
            "guest_frees": self.guest_frees,
            "host_pasids_peak": self.host_pasids_peak,
            "scalable_mode_off": self.scalable_mode_off,
            "vcmd_commands": self.vcmd_commands,
            "vm_exits": self.vm_exits,
            "forced_reclaims": self.forced_reclaims,
            "pending_frees": self.pending_frees,
            "pasid_reuses": self.pasid_reuses,
            "reuse_gap_us": self.reuse_gap_us.summary(low=True),
            "reuse_distance": self.reuse_distance.summary(low=True),
            "stale_pasid_hits": self.stale_pasid_hits,
            "deferred_frees": self.deferred_frees,
            "spid_requests": self.spid_requests,
        }
