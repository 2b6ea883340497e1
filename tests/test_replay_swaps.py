"""Replay of allocator swaps and SPID steps: what they do to the space, and what they count."""

from __future__ import annotations

from typing import Any

from ioasid_core.metrics import Metrics
from ioasid_core.prq import GenericPrq, LookupPolicy
from ioasid_core.quantiles import Quantiles
from ioasid_core.replay import replay
from ioasid_core.scenario import parse_scenario

PLATFORM: dict[str, Any] = {
    "capacity": 64,
    "owners": ["drv"],
    "units": [{"name": "iommu0"}],
    "address_spaces": [{"name": "proc-1"}, {"name": "vm-1", "kind": "vm"}],
    "sets": [{"name": "sva", "sva": True}, {"name": "vm-1", "type": "mm", "token": "vm-1"}],
    "domains": [{"name": "d", "owner": "proc-1", "sets": ["sva"]}],
    "devices": [
        {"name": "dev", "unit": "iommu0", "source_id": 1, "owner": "proc-1", "domain": "d"}
    ],
}


def _run(*steps: dict[str, Any], policy: LookupPolicy = LookupPolicy.GLOBAL) -> Metrics:
    timed = [{"at": n, **step} for n, step in enumerate(steps)]
    scenario = parse_scenario({"name": "t", "platform": PLATFORM, "steps": timed}, "t.toml")
    return replay(scenario, GenericPrq(), policy).metrics


def _register(name: str, kind: str, **extra: object) -> dict[str, Any]:
    return {"op": "register_allocator", "allocator": name, "kind": kind, **extra}


def _alloc(name: str) -> dict[str, Any]:
    return {"op": "alloc", "set": "sva", "owner": "drv", "name": name}


def _free(name: str) -> dict[str, Any]:
    return {"op": "free", "pasid": name}


def _churn(kind: str | None) -> Metrics:
    """Two live PASIDs, then free-and-allocate four times."""
    steps = [] if kind is None else [_register("b", kind)]
    steps += [_alloc("x0"), _alloc("x1")]
    for n in range(2, 6):
        steps += [_free(f"x{n - 2}"), _alloc(f"x{n}")]
    return _run(*steps)


def test_the_backend_decides_how_soon_a_freed_pasid_comes_back() -> None:
    default, lowest, cyclic = _churn(None), _churn("lowest"), _churn("cyclic")
    assert default.allocator_switches == 0 and lowest.allocator_switches == 1
    # First fit hands the freed ID straight back to the next allocation.
    for first_fit in (default, lowest):
        assert first_fit.pasid_reuses == 4
        assert first_fit.reuse_distance == Quantiles([0.0] * 4)
        assert first_fit.reuse_gap_us == Quantiles([1.0] * 4)
    # Next fit walks on: 62 IDs to go before a lap, so nothing comes back.
    assert cyclic.pasid_reuses == 0 and cyclic.as_dict()["reuse_gap_us"] == {
        "min": None,  # nothing measured, not "instant"
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }
    assert cyclic.step_errors == []


def test_registering_while_the_default_allocator_holds_ids_is_refused_and_changes_nothing() -> None:
    m = _run(_alloc("a"), _register("b", "top_down"), _alloc("c"))
    assert m.step_errors == [
        "steps[1]: the default allocator holds 1 IOASID(s) (first IOASID 0x1): a custom allocator "
        "cannot take over"
    ]
    assert m.allocator_refusals["default_busy"] == 1 and m.allocator_switches == 0
    assert m.allocations == 2 and m.allocation_failures == {}


def test_an_unregister_without_force_is_refused_while_the_backend_holds_ids() -> None:
    m = _run(
        _register("b", "top_down"),
        _alloc("a"),  # 63, from the top
        {"op": "unregister_allocator", "allocator": "b"},
        _alloc("c"),  # still top_down: 62
        _free("a"),
        _free("c"),
        {"op": "unregister_allocator", "allocator": "b"},
        _alloc("d"),  # the default again: the lowest
    )
    assert len(m.step_errors) == 1 and m.step_errors[0].startswith("steps[2]: allocator ")
    assert m.allocator_refusals == {"holds_ids": 1}
    assert m.allocator_switches == 2 and m.frees == 2 and m.forced_reclaims == 0
    # 63 and 62 came from the backend; 1 from the default, and it is no reuse.
    assert m.pasid_reuses == 0 and m.allocations == 3


def test_a_forced_unregister_reclaims_what_the_backend_held() -> None:
    m = _run(
        _register("b", "top_down"),
        _alloc("a"),
        {"op": "unregister_allocator", "allocator": "b", "force": True},
        _free("a"),
        _register("c", "top_down"),
        _alloc("d"),  # 63 again, from the new backend
    )
    assert m.forced_reclaims == 1 and m.allocator_switches == 3
    assert m.step_errors == [
        "steps[3]: PASID 'a' was reclaimed by the forced unregister at steps[2]"
    ]
    assert (
        m.pasid_reuses == 1
        and m.reuse_gap_us == Quantiles([3.0])
        and m.reuse_distance == Quantiles([0.0])
    )


def test_a_shared_registration_keeps_the_ids_when_the_first_one_goes() -> None:
    m = _run(
        _register("a", "cyclic"),
        _register("b", "cyclic", share=True),
        _alloc("x"),
        {"op": "unregister_allocator", "allocator": "a"},  # b carries on: no refusal
        _alloc("y"),
        _free("x"),
        _free("y"),
    )
    assert m.step_errors == [] and m.allocator_refusals == {}
    assert m.allocator_switches == 1 and m.frees == 2


def test_a_guest_pasid_resolves_through_its_spid_and_a_free_waits_for_the_detach() -> None:
    spid = {"set": "vm-1", "spid": 101}
    m = _run(
        {"op": "alloc", "set": "vm-1", "address_space": "vm-1", "name": "g"},
        {"op": "attach_spid", "pasid": "g", "spid": 101},
        {"op": "page_requests", "device": "dev", "groups": 2, **spid},
        _free("g"),  # the SPID mapping holds a reference: FREE_PENDING
        _alloc("h"),  # so 1 is not handed out again
        {"op": "detach_spid", **spid},  # the last reference: reclaimed now
        _alloc("k"),
    )
    assert m.step_errors == []
    assert m.outcomes == {"resolved": 2} and m.cross_owner_hits == 2  # the VM's, not proc-1's
    assert m.pending_frees == 0 and m.pasid_reuses == 1 and m.reuse_gap_us == Quantiles([1.0])


def test_an_spid_never_detached_leaves_its_pasid_free_pending() -> None:
    m = _run(_alloc("g"), {"op": "attach_spid", "pasid": "g", "spid": 7}, _free("g"))
    assert m.pending_frees == 1 and m.frees == 1 and m.pasid_reuses == 0


def test_a_forced_unregister_takes_the_spid_mapping_with_the_id() -> None:
    """The loader cannot know what a forced unregister reclaims; the replay reports the
    steps that relied on it, and the refused register before it changed nothing."""
    m = _run(
        _register("b", "lowest"),
        _alloc("g"),
        {"op": "attach_spid", "pasid": "g", "spid": 7},
        {"op": "unregister_allocator", "allocator": "b"},  # refused: b holds g
        {"op": "page_requests", "device": "dev", "set": "sva", "spid": 7},
        {"op": "unregister_allocator", "allocator": "b", "force": True},
        {"op": "page_requests", "device": "dev", "set": "sva", "spid": 7},
        {"op": "detach_spid", "set": "sva", "spid": 7},
    )
    assert m.outcomes == {"resolved": 1} and m.forced_reclaims == 1
    assert [e.split(":")[0] for e in m.step_errors] == ["steps[3]", "steps[6]", "steps[7]"]
    assert "SPID 7 is not attached" in m.step_errors[1]
    assert m.pending_frees == 0 and m.allocator_switches == 2
