"""The lookup policies: what each may resolve, and what a resolution reports.

GLOBAL searches every set (the NULL set), SET only the vendor's SVA set (refusing dying
address spaces), ENDPOINT only the sets of the requesting endpoint's domain, DEVICE only the
PASIDs bound on the requesting device. ``cross_owner``: the data is not the requesting
device's owner's (nor bound on it); ``type_confusion``: the data is not of the type the
handler expects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ioasid_core.errors import NotFoundError
from ioasid_core.platform import AddressSpace
from ioasid_core.prq.policy import (
    FAILED,
    LookupPolicy,
    Outcome,
    Resolution,
    Resolver,
    make_resolver,
)

# The helpers live in tests/prq_helpers.py. The workspace puts the repository root on
# sys.path, so they import as ``tests.prq_helpers``; mypy, which checks ``tests`` as a
# directory of top-level modules, knows the same file as ``prq_helpers``.
if TYPE_CHECKING:
    from prq_helpers import (
        SRC_A,
        SRC_NARROW,
        SRC_UNKNOWN,
        SRC_VM1,
        UNIT,
        DriverObject,
        World,
        build_world,
        lookup,
    )
else:
    from tests.prq_helpers import (
        SRC_A,
        SRC_NARROW,
        SRC_UNKNOWN,
        SRC_VM1,
        UNIT,
        DriverObject,
        World,
        build_world,
        lookup,
    )

ALL = list(LookupPolicy)


def resolver(
    world: World, policy: LookupPolicy, expected: type | tuple[type, ...] = AddressSpace
) -> Resolver:
    return make_resolver(world.platform, UNIT, policy, sva_set=world.sva_set, expected=expected)


def resolve(world: World, policy: LookupPolicy, source: int, pasid: int | None) -> Resolution:
    return resolver(world, policy)(*lookup(source, pasid))


def found(*, cross: bool = False, confused: bool = False) -> tuple[Outcome, bool, bool]:
    return (Outcome.RESOLVED, cross, confused)


def seen(r: Resolution) -> tuple[Outcome, bool, bool]:
    return (r.outcome, r.cross_owner, r.type_confusion)


# -- the requesting device's own PASID resolves cleanly under every policy


@pytest.mark.parametrize("policy", ALL)
def test_own_bound_process_pasid_resolves_without_flags_under_every_policy(
    policy: LookupPolicy,
) -> None:
    w = build_world()
    r = resolve(w, policy, SRC_A, w.pasid_a)
    assert seen(r) == found()
    assert r.ok


@pytest.mark.parametrize("policy", [LookupPolicy.ENDPOINT, LookupPolicy.DEVICE])
def test_vm_device_resolves_its_own_vm_pasid(policy: LookupPolicy) -> None:
    w = build_world()
    assert seen(resolve(w, policy, SRC_VM1, w.pasid_vm1)) == found()


# -- the null-set case: a process's device asks for a driver-private PASID


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (LookupPolicy.GLOBAL, found(cross=True, confused=True)),
        (LookupPolicy.SET, (Outcome.FOREIGN, False, False)),
        (LookupPolicy.ENDPOINT, (Outcome.FOREIGN, False, False)),
        (LookupPolicy.DEVICE, (Outcome.NOT_BOUND, False, False)),
    ],
    ids=lambda v: v.name if isinstance(v, LookupPolicy) else None,
)
def test_driver_private_pasid_from_a_process_device(
    policy: LookupPolicy, expected: tuple[Outcome, bool, bool]
) -> None:
    """GLOBAL hands the process's device the driver's own object (another owner's, and not an
    address space); the scoped policies never reach it."""
    w = build_world()
    r = resolve(w, policy, SRC_A, w.pasid_drv)
    assert seen(r) == expected
    assert not r.ok


# -- another process's PASID: the dangerous case


def test_global_resolves_another_process_pasid_as_cross_owner_without_type_confusion() -> None:
    """The data is an address space (the expected type), so the handler would service it: the
    device faults pages into a process it does not belong to."""
    w = build_world()
    r = resolve(w, LookupPolicy.GLOBAL, SRC_A, w.pasid_b)
    assert seen(r) == found(cross=True)
    assert r.ok


def test_set_resolves_another_process_pasid_in_the_shared_sva_set_as_cross_owner() -> None:
    """The SVA set holds every process's PASID: SET (like ``iommu_sva_find``) does not check
    which device asks."""
    w = build_world()
    assert seen(resolve(w, LookupPolicy.SET, SRC_A, w.pasid_b)) == found(cross=True)


def test_device_refuses_another_process_pasid_as_not_bound() -> None:
    w = build_world()
    r = resolve(w, LookupPolicy.DEVICE, SRC_A, w.pasid_b)
    assert r.outcome is Outcome.NOT_BOUND
    assert not r.ok


@pytest.mark.parametrize("policy", ALL)
def test_own_dying_address_space_is_dying_under_every_policy(policy: LookupPolicy) -> None:
    """The SVA getter (``mmget_not_zero``) for SET and ENDPOINT, the handler's own mm check
    for GLOBAL (VT-d) and DEVICE: an exiting process is never serviced."""
    w = build_world()
    w.proc_a.dying = True
    r = resolve(w, policy, SRC_A, w.pasid_a)
    assert r.outcome is Outcome.DYING
    assert not r.ok


# -- SET: only the vendor's SVA set, and a getter refusing dying address spaces


def test_set_refuses_a_dying_address_space_as_dying() -> None:
    w = build_world()
    w.proc_a.dying = True
    r = resolve(w, LookupPolicy.SET, SRC_A, w.pasid_a)
    assert r.outcome is Outcome.DYING
    assert not r.ok


def test_set_resolves_the_address_space_again_once_it_is_not_dying() -> None:
    w = build_world()
    res = resolver(w, LookupPolicy.SET)
    w.proc_a.dying = True
    assert res(*lookup(SRC_A, w.pasid_a)).outcome is Outcome.DYING
    w.proc_a.dying = False
    assert res(*lookup(SRC_A, w.pasid_a)).outcome is Outcome.RESOLVED


@pytest.mark.parametrize("pasid_name", ["pasid_drv", "pasid_vm1", "pasid_vm2"])
def test_set_refuses_a_pasid_of_any_other_set_as_foreign(pasid_name: str) -> None:
    w = build_world()
    pasid = getattr(w, pasid_name)
    assert resolve(w, LookupPolicy.SET, SRC_VM1, pasid).outcome is Outcome.FOREIGN


def test_set_policy_needs_the_sva_set() -> None:
    w = build_world()
    with pytest.raises(ValueError, match="SVA set"):
        make_resolver(w.platform, UNIT, LookupPolicy.SET)


def test_set_with_no_private_data_is_type_confusion() -> None:
    w = build_world()
    pasid = w.space.alloc(w.sva_set, 4, 255)  # private data None
    assert seen(resolve(w, LookupPolicy.SET, SRC_A, pasid)) == found(cross=True, confused=True)


# -- ENDPOINT: only the sets of the requesting endpoint's domain


def test_endpoint_refuses_another_vms_pasid_as_foreign() -> None:
    w = build_world()
    r = resolve(w, LookupPolicy.ENDPOINT, SRC_VM1, w.pasid_vm2)
    assert r.outcome is Outcome.FOREIGN
    assert not r.ok


def test_global_resolves_another_vms_pasid_as_cross_owner() -> None:
    w = build_world()
    assert seen(resolve(w, LookupPolicy.GLOBAL, SRC_VM1, w.pasid_vm2)) == found(cross=True)


def test_endpoint_refuses_everything_for_a_device_without_a_domain() -> None:
    w = build_world()
    w.platform.add_device("loose", unit=UNIT, source_id=0x55, owner="proc-a")
    w.platform.bind("loose", w.pasid_a, w.proc_a)
    assert resolve(w, LookupPolicy.ENDPOINT, 0x55, w.pasid_a).outcome is Outcome.FOREIGN


def test_endpoint_refuses_a_dying_address_space_as_dying() -> None:
    w = build_world()
    w.vm1.dying = True
    assert resolve(w, LookupPolicy.ENDPOINT, SRC_VM1, w.pasid_vm1).outcome is Outcome.DYING


def test_endpoint_follows_the_sets_a_domain_gains() -> None:
    w = build_world()
    res = resolver(w, LookupPolicy.ENDPOINT)
    assert res(*lookup(SRC_VM1, w.pasid_vm2)).outcome is Outcome.FOREIGN
    w.platform.add_domain_set("dom-vm1", w.vm2_set)
    assert seen(res(*lookup(SRC_VM1, w.pasid_vm2))) == found(cross=True)


# -- DEVICE: only the PASIDs bound on the requesting device


def test_device_refuses_a_bound_target_that_is_dying() -> None:
    w = build_world()
    w.proc_a.dying = True
    assert resolve(w, LookupPolicy.DEVICE, SRC_A, w.pasid_a).outcome is Outcome.DYING


def test_device_follows_bind_and_unbind_after_the_resolver_is_made() -> None:
    w = build_world()
    res = resolver(w, LookupPolicy.DEVICE)
    assert res(*lookup(SRC_A, w.pasid_b)).outcome is Outcome.NOT_BOUND
    w.platform.bind("dev-a", w.pasid_b, w.proc_b)
    # Bound here: the device serves it, so it is not cross-owner any more.
    assert seen(res(*lookup(SRC_A, w.pasid_b))) == found()
    w.platform.unbind("dev-a", w.pasid_b)
    assert res(*lookup(SRC_A, w.pasid_b)).outcome is Outcome.NOT_BOUND


def test_device_bound_to_a_driver_object_is_type_confusion_but_not_cross_owner() -> None:
    w = build_world()
    w.platform.bind("dev-a", w.pasid_drv, w.drv)
    r = resolve(w, LookupPolicy.DEVICE, SRC_A, w.pasid_drv)
    assert seen(r) == found(confused=True)
    assert not r.ok


# -- cross_owner follows the bindings under every searching policy


def test_binding_another_process_on_the_device_clears_cross_owner_under_global() -> None:
    w = build_world()
    res = resolver(w, LookupPolicy.GLOBAL)
    assert res(*lookup(SRC_A, w.pasid_b)).cross_owner
    w.platform.bind("dev-a", w.pasid_b, w.proc_b)
    assert not res(*lookup(SRC_A, w.pasid_b)).cross_owner
    w.platform.unbind("dev-a", w.pasid_b)
    assert res(*lookup(SRC_A, w.pasid_b)).cross_owner


def test_data_owned_by_the_devices_owner_is_not_cross_owner_even_unbound() -> None:
    w = build_world()
    w.platform.unbind("dev-a", w.pasid_a)
    assert seen(resolve(w, LookupPolicy.GLOBAL, SRC_A, w.pasid_a)) == found()


# -- the expected type is the handler's


class Svm(DriverObject):
    """A driver object a handler does service: it carries ``owner`` and ``dying``."""

    dying = False


def test_expected_type_decides_type_confusion() -> None:
    w = build_world()
    svm = Svm(owner="driver")
    pasid_svm = w.space.alloc(w.driver_set, 4, 255, svm)
    svm_handler = resolver(w, LookupPolicy.GLOBAL, expected=Svm)
    assert seen(svm_handler(*lookup(SRC_A, pasid_svm))) == found(cross=True)
    assert seen(svm_handler(*lookup(SRC_A, w.pasid_a))) == found(confused=True)
    both = resolver(w, LookupPolicy.GLOBAL, expected=(AddressSpace, Svm))
    assert not both(*lookup(SRC_A, pasid_svm)).type_confusion
    assert not both(*lookup(SRC_A, w.pasid_a)).type_confusion
    assert both(*lookup(SRC_A, w.pasid_drv)).type_confusion


class Bare:
    """A type a handler expects that carries neither ``owner`` nor ``dying``."""


@pytest.mark.parametrize("policy", ALL)
def test_an_expected_type_without_owner_or_dying_resolves_by_its_binding(
    policy: LookupPolicy,
) -> None:
    # Every policy's resolver takes the general path for it: never dying, not confused,
    # cross-owner unless bound on the device.
    w = build_world()
    bare = Bare()
    pasid = w.space.alloc(w.sva_set, 4, 255, bare)  # in dom-a's set: every policy may search
    handler = resolver(w, policy, expected=Bare)
    if policy is not LookupPolicy.DEVICE:
        assert seen(handler(*lookup(SRC_A, pasid))) == found(cross=True)
    w.platform.bind("dev-a", pasid, bare)
    assert seen(handler(*lookup(SRC_A, pasid))) == found()
    assert handler(*lookup(SRC_A, pasid)).ok
    assert seen(handler(*lookup(SRC_A, w.pasid_a))) == found(confused=True)


# -- checks common to every policy, in order


@pytest.mark.parametrize("policy", ALL)
def test_unknown_device_is_reported_before_anything_else(policy: LookupPolicy) -> None:
    w = build_world()
    assert resolve(w, policy, SRC_UNKNOWN, w.pasid_a).outcome is Outcome.UNKNOWN_DEVICE
    assert resolve(w, policy, SRC_UNKNOWN, None).outcome is Outcome.UNKNOWN_DEVICE
    assert resolve(w, policy, SRC_UNKNOWN, 1 << 30).outcome is Outcome.UNKNOWN_DEVICE


@pytest.mark.parametrize("policy", ALL)
def test_a_source_id_of_another_unit_is_an_unknown_device(policy: LookupPolicy) -> None:
    from ioasid_core.units import IommuUnit

    w = build_world()
    w.platform.probe_unit(IommuUnit(name="other", vendor="generic", pasid_bits=8))
    w.platform.add_device("far", unit="other", source_id=0x77, owner="proc-a", domain="dom-a")
    w.platform.bind("far", w.pasid_a, w.proc_a)
    assert resolve(w, policy, 0x77, w.pasid_a).outcome is Outcome.UNKNOWN_DEVICE


@pytest.mark.parametrize("policy", ALL)
def test_a_request_without_pasid_is_no_pasid(policy: LookupPolicy) -> None:
    w = build_world()
    r = resolver(w, policy)(*lookup(SRC_A, None))
    assert r.outcome is Outcome.NO_PASID
    # A PASID value without PASID_VALID is not looked at.
    assert resolver(w, policy)(SRC_A, False, w.pasid_a).outcome is Outcome.NO_PASID


@pytest.mark.parametrize("policy", ALL)
def test_a_pasid_beyond_the_device_width_is_too_wide_even_if_allocated(
    policy: LookupPolicy,
) -> None:
    w = build_world()
    assert w.pasid_a >= 4  # the narrow device carries 2 bits
    r = resolve(w, policy, SRC_NARROW, w.pasid_a)
    assert r.outcome is Outcome.PASID_TOO_WIDE
    assert resolve(w, policy, SRC_A, 1 << 8).outcome is Outcome.PASID_TOO_WIDE
    assert resolve(w, policy, SRC_A, 0xFFFFFFFF).outcome is Outcome.PASID_TOO_WIDE


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [
        (LookupPolicy.GLOBAL, Outcome.UNKNOWN_PASID),
        (LookupPolicy.SET, Outcome.UNKNOWN_PASID),
        (LookupPolicy.ENDPOINT, Outcome.UNKNOWN_PASID),
        (LookupPolicy.DEVICE, Outcome.NOT_BOUND),
    ],
)
def test_an_unallocated_pasid_is_unknown(policy: LookupPolicy, outcome: Outcome) -> None:
    w = build_world()
    assert resolve(w, policy, SRC_A, w.free_pasid).outcome is outcome


@pytest.mark.parametrize("policy", [LookupPolicy.GLOBAL, LookupPolicy.SET])
def test_a_freed_pasid_is_unknown_to_the_searching_policies(policy: LookupPolicy) -> None:
    w = build_world()
    res = resolver(w, policy)
    w.space.free(w.sva_set, w.pasid_b)
    assert res(*lookup(SRC_A, w.pasid_b)).outcome is Outcome.UNKNOWN_PASID


@pytest.mark.parametrize("policy", ALL)
def test_resolver_sees_devices_added_and_removed_after_it_was_made(policy: LookupPolicy) -> None:
    w = build_world()
    res = resolver(w, policy)
    w.platform.add_device("late", unit=UNIT, source_id=0x66, owner="proc-a", domain="dom-a")
    w.platform.bind("late", w.pasid_a, w.proc_a)
    assert seen(res(*lookup(0x66, w.pasid_a))) == found()
    w.platform.remove_device("late")
    assert res(*lookup(0x66, w.pasid_a)).outcome is Outcome.UNKNOWN_DEVICE


def test_resolving_changes_nothing() -> None:
    w = build_world()
    before = {i: (w.space.find(None, i), w.space.refs(i)) for i in range(256) if i in w.space}
    bound = {n: w.platform.bound(n) for n in w.platform.devices}
    for policy in ALL:
        res = resolver(w, policy)
        for source in (SRC_A, SRC_VM1, SRC_NARROW, SRC_UNKNOWN):
            for pasid in (None, w.pasid_a, w.pasid_b, w.pasid_drv, w.pasid_vm2, w.free_pasid):
                res(*lookup(source, pasid))
    after = {i: (w.space.find(None, i), w.space.refs(i)) for i in range(256) if i in w.space}
    assert after == before
    assert {n: w.platform.bound(n) for n in w.platform.devices} == bound


def test_make_resolver_for_an_unknown_unit_is_refused() -> None:
    w = build_world()
    with pytest.raises(NotFoundError, match="ghost"):
        make_resolver(w.platform, "ghost", LookupPolicy.GLOBAL)


# -- Resolution


def test_resolution_ok_only_when_resolved_to_the_expected_type() -> None:
    assert Resolution(Outcome.RESOLVED).ok
    assert Resolution(Outcome.RESOLVED, cross_owner=True).ok  # the dangerous case is "ok"
    assert not Resolution(Outcome.RESOLVED, type_confusion=True).ok
    for failure in FAILED.values():
        assert not failure.ok


def test_every_failure_outcome_has_one_shared_resolution_without_flags() -> None:
    assert set(FAILED) == set(Outcome) - {Outcome.RESOLVED}
    for outcome, failure in FAILED.items():
        assert failure.outcome is outcome
        assert not failure.cross_owner
        assert not failure.type_confusion
