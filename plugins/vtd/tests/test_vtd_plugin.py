"""The VT-d plugin through the core's hooks: guests allocating host PASIDs over VCMD."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import attrs
import pytest

import ioasid_vtd.plugin
from ioasid_core import (
    AllocatorBusyError,
    AllocatorError,
    AllocatorNoSpaceError,
    AllocatorOps,
    AlreadyRegisteredError,
    BusyError,
    Event,
    EventKind,
    IoasidSet,
    IoasidSpace,
    NoSpaceError,
    NotFoundError,
    SetType,
)
from ioasid_core.plugin import Hooks, IommuUnit, new_plugin_manager
from ioasid_vtd.registers import (
    GUEST_VIOMMU,
    LAYOUT_3_1,
    LAYOUT_3_3,
    VcmdCommand,
    VcmdLayout,
    VtdCapabilities,
    vtd_unit,
)
from ioasid_vtd.state import REGISTRY, attach_guest_unit
from ioasid_vtd.vcmd import IoasidInUseError, VcmdEmulator, vcmd_alloc, vcmd_free

LAYOUTS = pytest.mark.parametrize("layout", [LAYOUT_3_1, LAYOUT_3_3], ids=["3.1", "3.3"])
TOP = 0xFFFFF  # a guest's highest PASID with 20-bit vIOMMUs


@attrs.define(eq=False)
class VM:
    name: str


@attrs.define(eq=False)
class Guest:
    """One VM: its set in the host, its own space, and its vIOMMU units' emulators."""

    vm_set: IoasidSet
    space: IoasidSpace
    emulators: dict[str, VcmdEmulator] = attrs.field(factory=dict)
    units: dict[str, IommuUnit] = attrs.field(factory=dict)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    host = new_plugin_manager(load_entry_points=False)
    host.pm.register(ioasid_vtd.plugin, name="vtd")
    yield host.hooks
    REGISTRY.clear()


@pytest.fixture
def host() -> IoasidSpace:
    return IoasidSpace()


def make_guest(
    host: IoasidSpace,
    name: str,
    *,
    quota: int,
    units: int = 1,
    layout: VcmdLayout = LAYOUT_3_3,
    guest_layout: VcmdLayout | None = None,
) -> Guest:
    """A VM with ``units`` vIOMMUs, each wired to its own emulator of the VM's one host set."""
    guest = Guest(host.create_set(VM(name), quota=quota, type=SetType.MM), IoasidSpace())
    for index in range(units):
        unit_name = f"dmar{index}"
        emu = VcmdEmulator(host, guest.vm_set, layout=layout)
        guest.emulators[unit_name] = emu
        guest.units[unit_name] = attach_guest_unit(
            unit_name, guest.space, emu, layout=guest_layout or layout
        )
    return guest


def probe_all(hooks: Hooks, guest: Guest) -> None:
    for unit in guest.units.values():
        report = hooks.probe_unit(unit, guest.space)
        assert len(report.registered) == 1 and not report.refused


def commands(emu: VcmdEmulator) -> list[int]:
    return [completion.command for completion in emu.history]


def test_the_entry_point_loads_the_plugin() -> None:
    host = new_plugin_manager(only=["vtd"], strict=True)
    assert [p.name for p in host.loaded] == ["vtd"]
    assert host.pm.get_plugin("vtd") is ioasid_vtd.plugin
    assert host.hooks.vendor_info_of("vtd") is not None


@LAYOUTS
def test_two_guests_get_distinct_host_pasids_in_their_own_sets(
    hooks: Hooks, host: IoasidSpace, layout: VcmdLayout
) -> None:
    one = make_guest(host, "vm1", quota=4, layout=layout)
    two = make_guest(host, "vm2", quota=4, layout=layout)
    probe_all(hooks, one)
    probe_all(hooks, two)
    one_set, two_set = one.space.create_set(), two.space.create_set()
    got_one = [one.space.alloc(one_set, 1, TOP) for _ in range(3)]
    got_two = [two.space.alloc(two_set, 1, TOP) for _ in range(3)]
    assert got_one == [1, 2, 3] and got_two == [4, 5, 6]  # the host's lowest free IDs
    assert one.vm_set.ioasids() == got_one and two.vm_set.ioasids() == got_two
    assert one_set.ioasids() == got_one and two_set.ioasids() == got_two
    assert commands(one.emulators["dmar0"]) == [VcmdCommand.ALLOC] * 3


@LAYOUTS
def test_a_guest_over_its_quota_gets_no_pasid_and_an_error(
    hooks: Hooks, host: IoasidSpace, layout: VcmdLayout
) -> None:
    guest = make_guest(host, "vm1", quota=2, layout=layout)
    probe_all(hooks, guest)
    guest_set = guest.space.create_set()
    guest.space.alloc(guest_set, 1, TOP)
    guest.space.alloc(guest_set, 1, TOP)
    before = (len(guest.space), guest_set.ioasids(), guest.vm_set.ioasids())
    with pytest.raises(AllocatorNoSpaceError, match="no PASID for this guest") as caught:
        guest.space.alloc(guest_set, 1, TOP)
    assert isinstance(caught.value, NoSpaceError)  # the kernel's -ENOSPC
    assert (len(guest.space), guest_set.ioasids(), guest.vm_set.ioasids()) == before
    emu = guest.emulators["dmar0"]
    assert emu.history[-1].status == layout.status_no_pasid
    pdata = REGISTRY.unit(guest.space, "dmar0")
    assert pdata is not None and pdata.last_status == layout.status_no_pasid


def test_the_guest_free_goes_through_the_registers(hooks: Hooks, host: IoasidSpace) -> None:
    guest = make_guest(host, "vm1", quota=2)
    probe_all(hooks, guest)
    guest_set = guest.space.create_set()
    pasid = guest.space.alloc(guest_set, 1, TOP)
    guest.space.free(guest_set, pasid)
    assert pasid not in guest.space and guest.vm_set.count == 0
    assert commands(guest.emulators["dmar0"]) == [VcmdCommand.ALLOC, VcmdCommand.FREE]


def test_the_guest_free_of_an_id_with_private_data_is_refused(
    hooks: Hooks, host: IoasidSpace, caplog: pytest.LogCaptureFixture
) -> None:
    guest = make_guest(host, "vm1", quota=2)
    probe_all(hooks, guest)
    guest_set = guest.space.create_set()
    pasid = guest.space.alloc(guest_set, 1, TOP, private="svm-bond")
    with pytest.raises(AllocatorError, match="still has private data") as info:
        guest.space.free(guest_set, pasid)
    assert isinstance(info.value.__cause__, IoasidInUseError)
    assert "cannot free active IOASID 0x1" in caplog.text
    assert guest.space.find(guest_set, pasid) == "svm-bond"  # kept in the guest...
    assert guest.vm_set.ioasids() == [pasid]  # ...and at the host
    guest.space.detach_data(pasid)  # the SVM unbind
    guest.space.free(guest_set, pasid)
    assert pasid not in guest.space and guest.vm_set.count == 0


@pytest.mark.parametrize(
    ("vmm", "driver"), [(LAYOUT_3_3, LAYOUT_3_1), (LAYOUT_3_1, LAYOUT_3_3)], ids=["new", "old"]
)
def test_a_layout_mismatch_looks_like_no_pas(
    hooks: Hooks, host: IoasidSpace, vmm: VcmdLayout, driver: VcmdLayout
) -> None:
    # An old driver on a 3.3 vIOMMU reads "VCCAP" at 0xE00, the 3.3 VCMD (0: nothing written);
    # a new driver on a 3.1 vIOMMU reads 0xE30, undefined there (0). Either way PAS is clear,
    # so the unit offers nothing and the guest keeps allocating on its own.
    guest = make_guest(host, "vm1", quota=2, layout=vmm, guest_layout=driver)
    assert guest.units["dmar0"].caps["vccap"] == 0
    report = hooks.probe_unit(guest.units["dmar0"], guest.space)
    assert report.registered == () and guest.space.active_allocator is None
    guest.space.alloc(guest.space.create_set(), 1, TOP)
    assert guest.vm_set.count == 0 and not guest.emulators["dmar0"].history


def test_units_that_are_not_vcmd_allocators_offer_nothing(hooks: Hooks) -> None:
    space = IoasidSpace()
    bare_metal = VtdCapabilities.build(pasid=True, pss=19, vcs=True, pas=True)
    no_pas = VtdCapabilities.build(caching_mode=True, pasid=True, pss=19, vcs=True)
    no_pasid = VtdCapabilities.build(caching_mode=True, pss=19, vcs=True, pas=True)
    for name, caps in (("metal", bare_metal), ("nopas", no_pas), ("nopasid", no_pasid)):
        report = hooks.probe_unit(vtd_unit(name, caps), space)
        assert report.registered == () and report.refused == ()
    report = hooks.probe_unit(IommuUnit(name="smmu0", vendor="smmuv3", pasid_bits=16), space)
    assert report.registered == ()
    # A VT-d unit known only by name and width (as a replayed scenario builds it): bare metal.
    report = hooks.probe_unit(IommuUnit(name="dmar5", vendor="vtd", pasid_bits=20), space)
    assert report.registered == ()
    assert space.active_allocator is None


def test_a_vcmd_unit_without_registers_is_an_error(hooks: Hooks) -> None:
    with pytest.raises(NotFoundError, match="call attach_guest_unit first") as info:
        hooks.probe_unit(vtd_unit("dmar9", GUEST_VIOMMU), IoasidSpace())
    assert "raised by ioasid plugin 'vtd'" in "".join(info.value.__notes__)


def test_units_of_one_guest_join_one_group(hooks: Hooks, host: IoasidSpace) -> None:
    guest = make_guest(host, "vm1", quota=4, units=2)
    probe_all(hooks, guest)
    active = guest.space.active_allocator
    assert active is not None and active.alloc is vcmd_alloc and active.free is vcmd_free
    assert active.pdata is REGISTRY.unit(guest.space, "dmar0")


def test_busy_default_allocator_disables_scalable_mode(
    hooks: Hooks, host: IoasidSpace, caplog: pytest.LogCaptureFixture
) -> None:
    guest = make_guest(host, "vm1", quota=4, units=2)
    early = guest.space.alloc(guest.space.create_set(), 1, 10)  # from the default allocator
    assert REGISTRY.scalable_mode(guest.space)
    report = hooks.probe_unit(guest.units["dmar0"], guest.space)
    assert report.registered == ()
    assert [type(r.error) for r in report.refused] == [AllocatorBusyError]
    assert not REGISTRY.scalable_mode(guest.space)
    state = REGISTRY.guest(guest.space)
    assert state is not None and state.scalable_off is not None
    assert state.scalable_off.unit == "dmar0"
    assert isinstance(state.scalable_off.error, AllocatorBusyError)
    assert "scalable mode disabled for this guest" in caplog.text
    # The next unit does not even offer its allocator; the guest keeps the default one.
    report = hooks.probe_unit(guest.units["dmar1"], guest.space)
    assert report.registered == () and report.refused == ()
    assert guest.space.active_allocator is None and early in guest.space
    # Other guests are not affected.
    other = make_guest(host, "vm2", quota=1)
    probe_all(hooks, other)
    assert REGISTRY.scalable_mode(other.space)
    # Removing the units keeps the record: scalable mode stays off for this guest.
    for unit in guest.units.values():
        hooks.remove_unit(unit, guest.space)
    assert not REGISTRY.scalable_mode(guest.space)


def test_other_refusals_are_only_logged(
    hooks: Hooks, host: IoasidSpace, caplog: pytest.LogCaptureFixture
) -> None:
    guest = make_guest(host, "vm1", quota=1)
    pdata = REGISTRY.unit(guest.space, "dmar0")
    assert pdata is not None
    unit = guest.units["dmar0"]
    ours = AllocatorOps(vcmd_alloc, vcmd_free, pdata)
    ioasid_vtd.plugin.ioasid_allocator_refused(
        unit, guest.space, ours, AlreadyRegisteredError("registered twice")
    )
    assert REGISTRY.scalable_mode(guest.space)
    assert "VCMD allocator refused: registered twice" in caplog.text
    # Another vendor's refused allocator is none of our business, whatever the error.
    theirs: AllocatorOps[None] = AllocatorOps(lambda lo, hi, p: lo, lambda i, p: None)
    ioasid_vtd.plugin.ioasid_allocator_refused(
        unit, guest.space, theirs, AllocatorBusyError("busy")
    )
    assert REGISTRY.scalable_mode(guest.space)


def test_unplugging_one_of_several_units_keeps_the_ids(hooks: Hooks, host: IoasidSpace) -> None:
    guest = make_guest(host, "vm1", quota=8, units=3)
    probe_all(hooks, guest)
    guest_set = guest.space.create_set()
    ids = [guest.space.alloc(guest_set, 1, TOP) for _ in range(3)]
    first, second = guest.emulators["dmar0"], guest.emulators["dmar1"]
    assert commands(first) == [VcmdCommand.ALLOC] * 3 and not second.history

    hooks.remove_unit(guest.units["dmar0"], guest.space)
    assert guest_set.ioasids() == ids and guest.vm_set.ioasids() == ids
    assert REGISTRY.unit(guest.space, "dmar0") is None
    active = guest.space.active_allocator
    assert active is not None and active.pdata is REGISTRY.unit(guest.space, "dmar1")

    # The group now goes through dmar1's registers, for new IDs and for old ones.
    new = guest.space.alloc(guest_set, 1, TOP)
    guest.space.free(guest_set, ids[0])
    assert commands(second) == [VcmdCommand.ALLOC, VcmdCommand.FREE]
    assert len(first.history) == 3
    assert guest.vm_set.ioasids() == sorted([*ids[1:], new])


def test_unplugging_the_last_unit_falls_back_to_the_default_allocator(
    hooks: Hooks, host: IoasidSpace
) -> None:
    guest = make_guest(host, "vm1", quota=8, units=2)
    probe_all(hooks, guest)
    guest_set = guest.space.create_set()
    ids = [guest.space.alloc(guest_set, 1, TOP) for _ in range(2)]
    events: list[Event] = []
    guest.space.subscribe(events.append)
    hooks.remove_unit(guest.units["dmar0"], guest.space)
    last = guest.units["dmar1"]

    with pytest.raises(BusyError, match="still holds 2 IOASID"):
        hooks.remove_unit(last, guest.space)
    assert guest_set.ioasids() == ids and guest.vm_set.ioasids() == ids
    assert REGISTRY.unit(guest.space, "dmar1") is not None  # not removed: retry with force

    hooks.remove_unit(last, guest.space, force=True)
    # The forced reclaim went through dmar1's registers: the host got its PASIDs back.
    assert guest.vm_set.count == 0
    assert commands(guest.emulators["dmar1"]) == [VcmdCommand.FREE] * 2
    assert [(e.kind, e.ioasid) for e in events] == [(EventKind.FREE, i) for i in ids]
    assert guest_set.count == 0 and guest.space.active_allocator is None
    assert REGISTRY.guest(guest.space) is None

    # The default allocator now serves the guest; no register traffic.
    done = [len(emu.history) for emu in guest.emulators.values()]
    assert guest.space.alloc(guest_set, 1, TOP) == 1
    assert [len(emu.history) for emu in guest.emulators.values()] == done


def test_an_unused_last_unit_unplugs_without_force(hooks: Hooks, host: IoasidSpace) -> None:
    guest = make_guest(host, "vm1", quota=2)
    probe_all(hooks, guest)
    assert len(hooks.remove_unit(guest.units["dmar0"], guest.space)) == 1
    assert guest.space.active_allocator is None


def test_a_unit_name_is_attached_once_per_guest(host: IoasidSpace) -> None:
    guest = make_guest(host, "vm1", quota=2)
    with pytest.raises(AlreadyRegisteredError, match="'dmar0' is attached"):
        attach_guest_unit("dmar0", guest.space, guest.emulators["dmar0"])
    other = IoasidSpace()
    attach_guest_unit("dmar0", other, guest.emulators["dmar0"])  # another guest: fine
    REGISTRY.clear()


def test_forget_of_an_unknown_guest_is_harmless(hooks: Hooks) -> None:
    ioasid_vtd.plugin.ioasid_unit_removed(vtd_unit("x", GUEST_VIOMMU), IoasidSpace())


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ioasid_vtd")
