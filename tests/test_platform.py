"""The platform model: units, devices, domains, bindings, and units coming and going through
the plugin hooks. Every failing call leaves the platform as it was."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ioasid_core.errors import (
    AlreadyRegisteredError,
    BusyError,
    InvalidArgumentError,
    NotFoundError,
)
from ioasid_core.platform import AddressSpace, Platform, owner_of
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.space import IoasidSpace
from ioasid_core.units import IommuUnit

# The helpers live in tests/prq_helpers.py. The workspace puts the repository root on
# sys.path, so they import as ``tests.prq_helpers``; mypy, which checks ``tests`` as a
# directory of top-level modules, knows the same file as ``prq_helpers``.
if TYPE_CHECKING:
    from prq_helpers import AllocPlugin, DriverObject, platform_state
else:
    from tests.prq_helpers import AllocPlugin, DriverObject, platform_state


def unit(name: str = "u0", bits: int = 8) -> IommuUnit:
    return IommuUnit(name=name, vendor="generic", pasid_bits=bits)


def small_platform() -> Platform:
    """Two units, a domain, two devices behind ``u0`` and one behind ``u1``."""
    p = Platform(IoasidSpace(capacity=256))
    p.probe_unit(unit("u0", 8))
    p.probe_unit(unit("u1", 5))
    p.add_domain("dom", "proc")
    p.add_device("d0", unit="u0", source_id=1, owner="proc", domain="dom")
    p.add_device("d1", unit="u0", source_id=2, owner="proc")
    p.add_device("d2", unit="u1", source_id=1, owner="vm")
    return p


def hooked_platform(plugin: AllocPlugin) -> Platform:
    host = new_plugin_manager(load_entry_points=False)
    host.pm.register(plugin, name="fake-vendor")
    return Platform(IoasidSpace(capacity=256), host.hooks)


# -- address spaces and owners


def test_address_space_is_its_own_owner() -> None:
    mm = AddressSpace("proc-a")
    assert mm.owner == "proc-a"
    assert owner_of(mm) == "proc-a"
    assert not mm.dying


def test_owner_of_answers_none_without_a_string_owner() -> None:
    assert owner_of(object()) is None
    assert owner_of(None) is None
    assert owner_of(DriverObject(owner="driver")) == "driver"

    class Odd:
        owner = 42

    assert owner_of(Odd()) is None


# -- units


def test_probe_unit_records_the_unit() -> None:
    p = Platform(IoasidSpace(capacity=16))
    u = unit("u0", 4)
    assert p.probe_unit(u) is None  # no hooks, no report
    assert p.units == {"u0": u}


def test_probe_unit_refuses_a_duplicate_name_and_changes_nothing() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(AlreadyRegisteredError, match="u0"):
        p.probe_unit(unit("u0", 3))
    assert platform_state(p) == before
    assert p.units["u0"].pasid_bits == 8


def test_remove_unit_drops_its_devices_and_only_its_devices() -> None:
    p = small_platform()
    p.bind("d0", 3, AddressSpace("proc"))
    gone = p.remove_unit("u0")
    assert sorted(d.name for d in gone) == ["d0", "d1"]
    assert "u0" not in p.units
    assert set(p.devices) == {"d2"}
    assert p.device_by_source("u0", 1) is None
    assert p.device_by_source("u1", 1) is p.devices["d2"]
    with pytest.raises(NotFoundError):
        p.device("d0")
    # The name comes back without the old bindings.
    p.probe_unit(unit("u0", 8))
    p.add_device("d0", unit="u0", source_id=1, owner="proc")
    assert p.bound("d0") == {}


def test_remove_unknown_unit_raises_not_found_and_changes_nothing() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(NotFoundError, match="nope"):
        p.remove_unit("nope")
    assert platform_state(p) == before


def test_a_removed_unit_can_be_probed_again_with_fresh_source_ids() -> None:
    p = small_platform()
    p.remove_unit("u0")
    p.probe_unit(unit("u0", 8))
    dev = p.add_device("d0", unit="u0", source_id=1, owner="proc")
    assert p.device_by_source("u0", 1) is dev


# -- units through the plugin hooks


def test_probe_unit_registers_the_plugins_allocator() -> None:
    plugin = AllocPlugin("u0")
    p = hooked_platform(plugin)
    report = p.probe_unit(unit("u0"))
    assert report is not None
    assert report.registered == (plugin.ops,)
    assert p.space.active_allocator is plugin.ops
    assert plugin.probed == ["u0"]


def test_remove_unit_withdraws_the_allocator_and_calls_unit_removed() -> None:
    plugin = AllocPlugin("u0")
    p = hooked_platform(plugin)
    p.probe_unit(unit("u0"))
    p.probe_unit(unit("u1"))
    p.add_device("d0", unit="u0", source_id=1, owner="proc")
    assert plugin.removed == []
    gone = p.remove_unit("u0")
    assert [d.name for d in gone] == ["d0"]
    assert plugin.removed == ["u0"]
    assert p.space.active_allocator is None
    assert set(p.units) == {"u1"}


def test_probe_unit_with_a_bad_plugin_offer_adds_nothing() -> None:
    p = hooked_platform(AllocPlugin("u0", junk=True))
    before = platform_state(p)
    with pytest.raises(TypeError, match="AllocatorOps"):
        p.probe_unit(unit("u0"))
    assert platform_state(p) == before
    assert p.units == {}


def test_remove_unit_whose_allocator_holds_ids_fails_and_changes_nothing() -> None:
    plugin = AllocPlugin("u0")
    p = hooked_platform(plugin)
    p.probe_unit(unit("u0"))
    p.add_device("d0", unit="u0", source_id=1, owner="proc")
    s = p.space.create_set()
    pasid = p.space.alloc(s, 1, 255, AddressSpace("proc"))
    p.bind("d0", pasid, AddressSpace("proc"))
    before = platform_state(p)
    with pytest.raises(BusyError):
        p.remove_unit("u0")
    assert platform_state(p) == before
    assert plugin.removed == []
    assert pasid in p.space
    # ... and force finishes the job.
    gone = p.remove_unit("u0", force=True)
    assert [d.name for d in gone] == ["d0"]
    assert plugin.removed == ["u0"]
    assert pasid not in p.space
    assert p.units == {}


def test_remove_unit_completes_when_the_forced_reclaim_reports_backend_errors() -> None:
    """The hooks withdraw the unit and re-raise the backend's ExceptionGroup at the end; the
    platform must follow (else the unit can never be removed: the hooks forgot it)."""
    plugin = AllocPlugin("u0", fail_free=True)
    p = hooked_platform(plugin)
    p.probe_unit(unit("u0"))
    p.add_device("d0", unit="u0", source_id=1, owner="proc")
    s = p.space.create_set()
    p.space.alloc(s, 1, 255)
    with pytest.raises(ExceptionGroup):
        p.remove_unit("u0", force=True)
    assert plugin.removed == ["u0"]
    assert "u0" not in p.units
    assert "d0" not in p.devices
    assert p.device_by_source("u0", 1) is None


# -- domains and devices


def test_add_domain_refuses_a_duplicate_name() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(AlreadyRegisteredError, match="dom"):
        p.add_domain("dom", "other")
    assert platform_state(p) == before
    assert p.domains["dom"].owner == "proc"


def test_add_device_records_ids_owner_and_domain() -> None:
    p = small_platform()
    d0 = p.devices["d0"]
    assert (d0.unit, d0.source_id, d0.owner) == ("u0", 1, "proc")
    assert d0.domain is p.domains["dom"]
    assert p.devices["d1"].domain is None
    assert p.device("d0") is d0
    assert p.device_by_source("u0", 1) is d0
    assert p.device_by_source("u0", 2) is p.devices["d1"]


def test_device_pasid_width_defaults_to_and_is_capped_at_the_units() -> None:
    p = small_platform()
    assert p.devices["d0"].pasid_bits == 8
    assert p.devices["d2"].pasid_bits == 5
    assert p.add_device("narrow", unit="u0", source_id=9, owner="x", pasid_bits=3).pasid_bits == 3
    assert p.add_device("wide", unit="u1", source_id=9, owner="x", pasid_bits=20).pasid_bits == 5


def test_add_device_refuses_a_duplicate_name_and_changes_nothing() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(AlreadyRegisteredError, match="d0"):
        p.add_device("d0", unit="u1", source_id=7, owner="other")
    assert platform_state(p) == before
    assert p.device_by_source("u1", 7) is None


def test_add_device_refuses_a_source_id_taken_behind_the_same_unit() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(AlreadyRegisteredError, match="d0"):
        p.add_device("dup", unit="u0", source_id=1, owner="other")
    assert platform_state(p) == before
    assert p.device_by_source("u0", 1) is p.devices["d0"]


def test_the_same_source_id_behind_two_units_names_two_devices() -> None:
    p = small_platform()
    assert p.device_by_source("u0", 1) is p.devices["d0"]
    assert p.device_by_source("u1", 1) is p.devices["d2"]


def test_add_device_behind_an_unknown_unit_raises_not_found() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(NotFoundError, match="nope"):
        p.add_device("x", unit="nope", source_id=5, owner="o")
    assert platform_state(p) == before


def test_add_device_in_an_unknown_domain_raises_not_found_and_changes_nothing() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(NotFoundError, match="nodom"):
        p.add_device("x", unit="u0", source_id=5, owner="o", domain="nodom")
    assert platform_state(p) == before
    assert p.device_by_source("u0", 5) is None
    # The name and the source ID are still free.
    assert p.add_device("x", unit="u0", source_id=5, owner="o").name == "x"


def test_add_device_refuses_a_negative_pasid_width_and_changes_nothing() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(InvalidArgumentError, match="negative"):
        p.add_device("x", unit="u0", source_id=5, owner="o", pasid_bits=-1)
    assert platform_state(p) == before


def test_remove_device_drops_its_bindings_and_frees_its_source_id() -> None:
    p = small_platform()
    stranger = AddressSpace("stranger")
    p.bind("d0", 4, stranger)
    removed = p.remove_device("d0")
    assert removed.name == "d0"
    assert "d0" not in p.devices
    assert p.device_by_source("u0", 1) is None
    again = p.add_device("d0", unit="u0", source_id=1, owner="proc")
    assert p.bound("d0") == {}
    assert p.binding("d0", 4) is None
    assert not p.serves(again, stranger)


def test_remove_unknown_device_raises_not_found_and_changes_nothing() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(NotFoundError, match="ghost"):
        p.remove_device("ghost")
    assert platform_state(p) == before


def test_device_by_unknown_source_is_none() -> None:
    p = small_platform()
    assert p.device_by_source("u0", 0x77) is None
    assert p.device_by_source("nope", 1) is None


# -- bindings


def test_bind_records_the_target_per_device_and_pasid() -> None:
    p = small_platform()
    mm = AddressSpace("proc")
    p.bind("d0", 5, mm)
    assert p.binding("d0", 5) is mm
    assert p.binding("d1", 5) is None
    assert p.bound("d0") == {5: mm}


def test_bind_accepts_the_widest_pasid_of_the_device() -> None:
    p = small_platform()
    p.bind("d2", (1 << 5) - 1, AddressSpace("vm"))
    p.bind("d0", 0, AddressSpace("proc"))
    assert set(p.bound("d2")) == {31}


@pytest.mark.parametrize("pasid", [1 << 5, 1 << 8, 1 << 20, -1])
def test_bind_refuses_a_pasid_beyond_the_device_width_and_changes_nothing(pasid: int) -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(InvalidArgumentError, match="width"):
        p.bind("d2", pasid, AddressSpace("vm"))
    assert platform_state(p) == before


def test_bind_on_an_unknown_device_raises_not_found() -> None:
    p = small_platform()
    before = platform_state(p)
    with pytest.raises(NotFoundError, match="ghost"):
        p.bind("ghost", 1, AddressSpace("x"))
    assert platform_state(p) == before


def test_bind_refuses_a_pasid_bound_already_and_keeps_the_first_target() -> None:
    p = small_platform()
    first = AddressSpace("proc")
    p.bind("d0", 5, first)
    before = platform_state(p)
    with pytest.raises(AlreadyRegisteredError):
        p.bind("d0", 5, AddressSpace("other"))
    assert platform_state(p) == before
    assert p.binding("d0", 5) is first


def test_unbind_returns_the_target_and_forgets_it() -> None:
    p = small_platform()
    mm = AddressSpace("x")
    p.bind("d0", 5, mm)
    assert p.unbind("d0", 5) is mm
    assert p.binding("d0", 5) is None
    assert p.bound("d0") == {}
    p.bind("d0", 5, mm)  # free to bind again
    assert p.binding("d0", 5) is mm


def test_unbind_of_an_unbound_pasid_raises_not_found_and_changes_nothing() -> None:
    p = small_platform()
    p.bind("d0", 5, AddressSpace("x"))
    before = platform_state(p)
    with pytest.raises(NotFoundError):
        p.unbind("d0", 6)
    with pytest.raises(NotFoundError):
        p.unbind("d1", 5)
    with pytest.raises(NotFoundError):
        p.unbind("ghost", 5)
    assert platform_state(p) == before


def test_bind_of_none_is_refused_or_fully_unbindable() -> None:
    """``binding()`` answers None for "not bound": a None target must not leave a binding
    that ``unbind`` can neither find nor remove cleanly."""
    p = small_platform()
    before = platform_state(p)
    try:
        p.bind("d0", 5, None)
    except InvalidArgumentError:
        assert platform_state(p) == before
        return
    assert p.unbind("d0", 5) is None
    assert platform_state(p) == before
    assert p.bound("d0") == {}


def test_bound_returns_a_copy() -> None:
    p = small_platform()
    p.bind("d0", 5, AddressSpace("x"))
    copy = p.bound("d0")
    copy.clear()
    assert set(p.bound("d0")) == {5}


def test_serves_data_of_the_devices_owner_or_bound_on_the_device() -> None:
    p = small_platform()
    d0 = p.devices["d0"]
    own = AddressSpace("proc")
    stranger = AddressSpace("stranger")
    ownerless = object()
    assert p.serves(d0, own)  # same owner, not even bound
    assert not p.serves(d0, stranger)
    assert not p.serves(d0, ownerless)
    p.bind("d0", 5, stranger)
    p.bind("d0", 6, ownerless)
    assert p.serves(d0, stranger)
    assert p.serves(d0, ownerless)
    assert not p.serves(p.devices["d1"], stranger)  # bound on d0, not on d1


def test_serves_follows_bindings_until_the_last_pasid_of_a_target_is_unbound() -> None:
    p = small_platform()
    d0 = p.devices["d0"]
    stranger = AddressSpace("stranger")
    p.bind("d0", 5, stranger)
    p.bind("d0", 6, stranger)
    p.unbind("d0", 5)
    assert p.serves(d0, stranger)
    p.unbind("d0", 6)
    assert not p.serves(d0, stranger)
