"""SVA binds: one PASID per address space, shared by its devices and reference-counted per
bind, freed with its last reference (kernel-facts §1.9, §3)."""

from __future__ import annotations

from typing import Any

import pytest

from ioasid_core.metrics import Metrics
from ioasid_core.prq import GenericPrq, LookupPolicy
from ioasid_core.replay import replay
from ioasid_core.scenario import ScenarioError, parse_scenario

PLATFORM: dict[str, Any] = {
    "capacity": 64,
    "units": [{"name": "u0"}, {"name": "u1"}],
    "address_spaces": [{"name": "p"}, {"name": "q"}],
    "sets": [{"name": "sva", "sva": True}, {"name": "other"}],
    "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
    "devices": [
        {"name": "a", "unit": "u0", "source_id": 1, "owner": "p", "domain": "d"},
        {"name": "b", "unit": "u1", "source_id": 2, "owner": "p", "domain": "d"},
        {"name": "narrow", "unit": "u1", "source_id": 3, "owner": "p", "pasid_bits": 1},
    ],
}


def bind(device: str, name: str, space: str = "p") -> dict[str, Any]:
    return {"op": "bind", "device": device, "set": "sva", "address_space": space, "name": name}


def unbind(device: str, name: str) -> dict[str, Any]:
    return {"op": "unbind", "device": device, "pasid": name}


def requests(device: str, pasid: str | int) -> dict[str, Any]:
    return {"op": "page_requests", "device": device, "pasid": pasid}


def doc(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    timed = [{"at": n, **step} for n, step in enumerate(steps)]
    return {"name": "sva", "platform": PLATFORM, "steps": timed, **extra}


def run(*steps: dict[str, Any], policy: LookupPolicy = LookupPolicy.DEVICE) -> Metrics:
    return replay(parse_scenario(doc(*steps), "t.toml"), GenericPrq(), policy).metrics


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(document, "t.toml")
    return [f"{p.key_path}: {p.expected}" for p in caught.value.problems]


def test_two_devices_bound_to_one_address_space_share_its_pasid_until_the_last_unbind() -> None:
    m = run(
        bind("a", "x"),
        bind("b", "y"),
        requests("b", "x"),  # x and y are one PASID, bound on b too
        unbind("a", "x"),
        requests("b", "y"),  # still bound on b
        requests("a", "y"),  # but no longer on a
        unbind("b", "y"),
        requests("b", 1),  # freed with the last bind
    )
    assert m.step_errors == []
    assert (m.allocations, m.sva_binds, m.frees, m.peak_live_ioasids) == (1, 2, 1, 1)
    assert m.outcomes == {"resolved": 2, "not_bound": 2}  # DEVICE: a device's bindings only


def test_binding_one_device_again_takes_a_reference_not_a_pasid() -> None:
    m = run(
        bind("a", "x"),
        bind("a", "y"),
        unbind("a", "y"),
        requests("a", "x"),  # one reference left: still bound
        unbind("a", "x"),
        bind("a", "z"),  # the address space's next PASID, allocated afresh
    )
    assert m.step_errors == [] and m.outcomes == {"resolved": 1}
    assert (m.allocations, m.sva_binds, m.frees, m.pasid_reuses) == (2, 3, 1, 1)


def test_a_pasid_beyond_the_new_devices_width_fails_the_bind_and_changes_nothing() -> None:
    m = run(
        bind("a", "x"),
        bind("b", "w", space="q"),  # q gets PASID 2
        bind("narrow", "n", space="q"),  # narrow carries PASID 1 only
        requests("narrow", "n"),
        requests("b", "w"),
        bind("narrow", "m"),  # p's PASID 1 fits
    )
    assert m.allocation_failures == {"pasid_too_wide": 1}
    assert m.allocations == 2 and m.sva_binds == 3
    assert m.step_errors == [
        "steps[3]: PASID 'n' was never allocated (its allocation or bind failed)"
    ]
    assert m.outcomes == {"resolved": 1}


def test_a_binding_gone_with_its_unit_keeps_the_shared_pasid_until_it_is_freed() -> None:
    steps = [bind("a", "x"), bind("b", "y"), {"op": "unplug", "unit": "u0"}, unbind("b", "y")]
    orphan = run(*steps)
    # a's reference went with u0: b's unbind is not the last, so the PASID stays, orphaned.
    assert (orphan.frees, orphan.orphaned_ids, orphan.step_errors) == (0, 1, [])
    cleaned = run(*steps, {"op": "free", "pasid": "x"})
    assert (cleaned.frees, cleaned.orphaned_ids, cleaned.step_errors) == (1, 0, [])


def test_freeing_a_bound_name_frees_the_address_spaces_pasid_and_every_binding_of_it() -> None:
    m = run(
        bind("a", "x"),
        bind("b", "y"),
        {"op": "free", "pasid": "x"},
        requests("b", 1),
        bind("b", "z"),  # a fresh PASID, bound again without a stale binding in the way
        requests("b", "z"),
    )
    assert m.step_errors == [] and m.frees == 1 and m.allocations == 2
    assert m.outcomes == {"not_bound": 1, "resolved": 1}


def test_a_forced_unregister_takes_the_address_spaces_pasid_and_its_bindings() -> None:
    m = run(
        {"op": "register_allocator", "allocator": "r", "kind": "lowest"},
        bind("a", "x"),
        {"op": "unregister_allocator", "allocator": "r", "force": True},
        bind("a", "z"),  # the default allocator's PASID 1: a's old binding of 1 is gone
        requests("a", "z"),
    )
    assert m.step_errors == [] and m.forced_reclaims == 1
    assert m.allocations == 2 and m.outcomes == {"resolved": 1}


# ---------------------------------------------------------------- the loader


def test_names_of_one_address_space_are_separate_references() -> None:
    parse_scenario(doc(bind("a", "x"), bind("b", "y"), unbind("a", "x"), unbind("b", "y")), "t")
    assert problems(doc(bind("a", "x"), bind("a", "y"), unbind("a", "x"), unbind("a", "x"))) == [
        "steps[3].pasid: PASID 'x' was unbound at steps[2]; it is no longer live"
    ]


def test_freeing_one_name_ends_the_others_of_its_address_space() -> None:
    free = {"op": "free", "pasid": "x"}
    assert problems(doc(bind("a", "x"), bind("b", "y"), free, unbind("b", "y"))) == [
        "steps[3].pasid: PASID 'y' was freed at steps[2] (with 'x', the same PASID); it is no "
        "longer live"
    ]


def test_a_second_bind_of_an_address_space_names_the_set_its_pasid_is_in() -> None:
    other = bind("b", "y") | {"set": "other"}
    assert problems(doc(bind("a", "x"), other)) == [
        "steps[1].set: address space 'p' already has its PASID in set 'sva' ('x', bound at "
        "steps[0]): a second bind shares that PASID, so it names that set"
    ]
    parse_scenario(doc(bind("a", "x"), unbind("a", "x"), other), "t")  # a new PASID: any set
