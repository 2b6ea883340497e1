"""What one replay of a scenario counts (see docs/metrics.md).

Everything here is deterministic: the same scenario, vendor, policy and seed give the same
metrics. Latencies are modelled time (the scenario's ``at`` clock), not wall-clock time.
"""

from __future__ import annotations

from collections import Counter

import attrs

__all__ = ["Metrics", "percentile"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats going astray
    return float(ordered[int(rank) - 1])


@attrs.define
class Metrics:
    """The counters of one (scenario, vendor, policy) run."""

    allocations: int = 0
    allocation_failures: Counter[str] = attrs.field(factory=Counter)
    """By reason: ``quota``, ``no_space``, ``allocator``, ``invalid``."""
    frees: int = 0
    peak_live_ioasids: int = 0
    page_requests: int = 0
    responses: Counter[str] = attrs.field(factory=Counter)
    """By code: ``success``, ``invalid``, ``failure``."""
    dropped: Counter[str] = attrs.field(factory=Counter)
    """``stop_markers``, ``overflow``, ``unmatched``, ``discarded_partial``, ``malformed``."""
    outcomes: Counter[str] = attrs.field(factory=Counter)
    """Lookup outcomes of the requests that were resolved."""
    cross_owner_hits: int = 0
    type_confusions: int = 0
    vendor_rejects: int = 0
    auto_responses: int = 0
    allocator_switches: int = 0
    orphaned_ids: int = 0
    step_errors: list[str] = attrs.field(factory=list)
    """Steps that could not run (e.g. a PASID whose allocation failed), with the reason."""
    request_latency_us: list[float] = attrs.field(factory=list)
    guest_allocations: int = 0
    guest_allocation_failures: Counter[str] = attrs.field(factory=Counter)
    """By reason: ``quota``, ``no_space``, ``allocator``, ``invalid``, ``scalable_mode_off``."""
    guest_frees: int = 0
    host_pasids_peak: int = 0
    """The most host PASIDs held for guests at once (in the VMs' host sets)."""
    scalable_mode_off: int = 0
    vcmd_commands: int = 0
    vm_exits: int = 0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (latencies as percentiles)."""
        lat = self.request_latency_us
        return {
            "allocations": self.allocations,
            "allocation_failures": dict(sorted(self.allocation_failures.items())),
            "frees": self.frees,
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
                )
            },
            "outcomes": dict(sorted(self.outcomes.items())),
            "cross_owner_hits": self.cross_owner_hits,
            "type_confusions": self.type_confusions,
            "vendor_rejects": self.vendor_rejects,
            "auto_responses": self.auto_responses,
            "allocator_switches": self.allocator_switches,
            "orphaned_ids": self.orphaned_ids,
            "step_errors": list(self.step_errors),
            "request_latency_us": {
                "p50": percentile(lat, 50),
                "p90": percentile(lat, 90),
                "p99": percentile(lat, 99),
                "max": max(lat, default=0.0),
            },
            "guest_allocations": self.guest_allocations,
            "guest_allocation_failures": dict(sorted(self.guest_allocation_failures.items())),
            "guest_frees": self.guest_frees,
            "host_pasids_peak": self.host_pasids_peak,
            "scalable_mode_off": self.scalable_mode_off,
            "vcmd_commands": self.vcmd_commands,
            "vm_exits": self.vm_exits,
        }
