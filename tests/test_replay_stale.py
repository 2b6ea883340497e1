"""``stale_pasid_hits``: a request queued before its PASID was freed, answered "success" after
the PASID went to someone else (the hazard VT-d's drain on unbind exists for), and the other
counters the example stories need (``deferred_frees``, ``spid_requests``)."""

from __future__ import annotations

from typing import Any

import pytest

from ioasid_core.metrics import Metrics
from ioasid_core.prq import GenericPrq, LookupPolicy
from ioasid_core.replay import replay
from ioasid_core.scenario import parse_scenario

PLATFORM: dict[str, Any] = {
    "units": [{"name": "u0"}],
    "address_spaces": [{"name": "p"}, {"name": "q"}],
    "sets": [{"name": "sva", "sva": True}, {"name": "vms"}],
    "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
    "devices": [{"name": "a", "unit": "u0", "source_id": 1, "owner": "p", "domain": "d"}],
}


def bind(space: str, name: str) -> dict[str, Any]:
    return {"op": "bind", "device": "a", "set": "sva", "address_space": space, "name": name}


def run(*steps: dict[str, Any], policy: LookupPolicy = LookupPolicy.DEVICE) -> Metrics:
    timed = [{"at": n, **step} for n, step in enumerate(steps)]
    scenario = parse_scenario({"name": "s", "platform": PLATFORM, "steps": timed}, "t.toml")
    return replay(scenario, GenericPrq(), policy).metrics


QUEUED = {"op": "page_requests", "device": "a", "pasid": "x", "groups": 3, "service": False}
SERVICE = {"op": "service", "unit": "u0"}


@pytest.mark.parametrize("policy", list(LookupPolicy))
def test_a_request_queued_before_an_unbind_and_answered_for_the_next_owner_is_a_stale_hit(
    policy: LookupPolicy,
) -> None:
    m = run(
        bind("p", "x"),
        QUEUED,
        {"op": "unbind", "device": "a", "pasid": "x"},
        bind("q", "y"),  # first fit: q gets p's PASID back, bound on the same device
        SERVICE,
        policy=policy,
    )
    assert m.pasid_reuses == 1 and m.responses["success"] == 3
    assert m.stale_pasid_hits == 3  # each of the three groups, under every policy


def test_serviced_before_the_unbind_or_never_reallocated_is_no_stale_hit() -> None:
    served_first = run(
        bind("p", "x"),
        {**QUEUED, "service": True},
        {"op": "unbind", "device": "a", "pasid": "x"},
        bind("q", "y"),
    )
    assert served_first.responses["success"] == 3 and served_first.stale_pasid_hits == 0
    # Freed and not allocated again: the lookup finds nothing, nothing is served.
    freed = run(bind("p", "x"), QUEUED, {"op": "unbind", "device": "a", "pasid": "x"}, SERVICE)
    assert freed.responses["invalid"] == 3 and freed.stale_pasid_hits == 0
    # Still the same allocation: a late answer, not a stale one.
    late = run(bind("p", "x"), QUEUED, bind("q", "y"), SERVICE)
    assert late.responses["success"] == 3 and late.stale_pasid_hits == 0


def test_a_free_held_by_an_spid_is_deferred_and_requests_by_spid_are_counted() -> None:
    m = run(
        {"op": "alloc", "set": "vms", "address_space": "q", "name": "v"},
        {"op": "attach_spid", "pasid": "v", "spid": 101},
        {"op": "page_requests", "device": "a", "set": "vms", "spid": 101, "groups": 2},
        {"op": "free", "pasid": "v"},
        {"op": "detach_spid", "set": "vms", "spid": 101},
    )
    assert m.spid_requests == 2 and m.deferred_frees == 1 and m.pending_frees == 0
    assert m.frees == 1 and not m.step_errors
