"""The plugin manager, its entry-point loading and the typed ``Hooks`` facade."""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import pickle
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pluggy
import pytest

from ioasid_core import hookspecs, plugins
from ioasid_core.allocators import AllocatorOps
from ioasid_core.errors import (
    AllocatorBusyError,
    AlreadyRegisteredError,
    BusyError,
    IoasidError,
    NotFoundError,
)
from ioasid_core.events import Event, Subscription
from ioasid_core.figures import BenchmarkFigure
from ioasid_core.logs import LogFormat
from ioasid_core.markers import ENTRY_POINT_GROUP, hookimpl
from ioasid_core.plugins import (
    BLOCK_ENV,
    LoadFailure,
    PluginHost,
    PluginLoadError,
    new_plugin_manager,
)
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.types import EventKind, Priority
from ioasid_core.units import IommuUnit, VendorInfo

# -- fakes


@attrs.frozen
class FakeDist:
    name: str
    version: str = "1.2.3"


class FakeEntryPoint:
    """Quacks like ``importlib.metadata.EntryPoint``; counts imports, or fails to import."""

    def __init__(self, name: str, target: object, *, dist: str | None = None) -> None:
        self.name = name
        self.value = f"fake_{name}.plugin"
        self.group = ENTRY_POINT_GROUP
        self.dist = FakeDist(dist or f"ioasid-{name}")
        self.target = target
        self.loads = 0

    def load(self) -> object:
        self.loads += 1
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


class Vendor:
    """A plugin that only says who it is."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def ioasid_vendor_info(self) -> VendorInfo:
        return VendorInfo(name=self.name, description=f"the {self.name} IOMMU")


class Backend:
    """A custom allocator's backend (think VT-d's virtual command interface)."""

    def __init__(self, *, fail_free: bool = False) -> None:
        self.used: set[int] = set()
        self.fail_free = fail_free

    def alloc(self, lo: int, hi: int, pdata: object) -> int:
        n = next(i for i in range(lo, hi + 1) if i not in self.used)
        self.used.add(n)
        return n

    def free(self, ioasid: int, pdata: object) -> None:
        if self.fail_free:
            raise OSError(f"backend lost {ioasid}")
        self.used.remove(ioasid)

    def ops(self, pdata: object) -> AllocatorOps[Any]:
        return AllocatorOps(alloc=self.alloc, free=self.free, pdata=pdata)


class AllocVendor:
    """Offers allocators for the units it knows and records what the core tells it."""

    def __init__(self, offers: Mapping[str, Sequence[object]]) -> None:
        self.offers = dict(offers)
        self.refused: list[tuple[str, AllocatorOps[Any], IoasidError]] = []
        self.removed: list[str] = []

    @hookimpl
    def ioasid_allocators_for_unit(self, unit: IommuUnit) -> Sequence[AllocatorOps[Any]] | None:
        return self.offers.get(unit.name)  # type: ignore[return-value]  # may be junk on purpose

    @hookimpl
    def ioasid_allocator_refused(
        self, unit: IommuUnit, ops: AllocatorOps[Any], error: IoasidError
    ) -> None:
        self.refused.append((unit.name, ops, error))

    @hookimpl
    def ioasid_unit_removed(self, unit: IommuUnit) -> None:
        self.removed.append(unit.name)


class Listener:
    """Records every event and set hook call, in order."""

    def __init__(self, log: list[tuple[str, object]] | None = None) -> None:
        self.log: list[tuple[str, object]] = [] if log is None else log
        self.spaces: list[IoasidSpace] = []

    @hookimpl
    def ioasid_event(self, space: IoasidSpace, event: Event) -> None:
        self.spaces.append(space)
        self.log.append(("event", event.kind))

    @hookimpl
    def ioasid_set_created(self, set: IoasidSet) -> None:
        self.log.append(("created", set))

    @hookimpl
    def ioasid_set_freed(self, set: IoasidSet) -> None:
        self.log.append(("freed", set))


Install = Callable[..., None]
"""The ``install`` fixture: ``install(*fake_entry_points)``."""

DMAR0 = IommuUnit(name="dmar0", vendor="vtd", pasid_bits=20, caps={"vcs": 1})
DMAR1 = IommuUnit(name="dmar1", vendor="vtd", pasid_bits=20)


@pytest.fixture(autouse=True)
def _no_env_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)


@pytest.fixture
def host() -> PluginHost:
    return new_plugin_manager(load_entry_points=False)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Install:
    """Make ``importlib.metadata.entry_points`` return exactly the given fakes."""

    def install(*eps: FakeEntryPoint) -> None:
        def entry_points(*, group: str) -> list[FakeEntryPoint]:
            return list(eps) if group == ENTRY_POINT_GROUP else []

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    return install


def record_hook_calls(pm: pluggy.PluginManager) -> list[str]:
    """Names of every hook called from now on (with or without implementations)."""
    calls: list[str] = []

    def before(name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        calls.append(name)

    def after(
        outcome: pluggy.Result[Any],
        name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        pass

    pm.add_hookcall_monitoring(before, after)
    return calls


# -- units


def test_unit_is_frozen_hashable_and_picklable() -> None:
    caps = {"vcs": 1}
    unit = IommuUnit(name="dmar0", vendor="vtd", pasid_bits=20, caps=caps)
    caps["vcs"] = 0  # the unit kept a copy
    assert unit.caps == {"vcs": 1}
    assert hash(unit) == hash(
        IommuUnit(name="dmar0", vendor="vtd", pasid_bits=20, caps=caps | {"vcs": 1})
    )
    assert pickle.loads(pickle.dumps(unit)) == unit
    with pytest.raises(TypeError):
        unit.caps["vcs"] = 2  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        unit.pasid_bits = 5  # type: ignore[misc]
    assert IommuUnit(name="v", vendor="virtio-iommu", pasid_bits=0).caps == {}


@pytest.mark.parametrize("bits", [-1, 21])
def test_unit_pasid_bits_are_0_to_20(bits: int) -> None:
    with pytest.raises(ValueError, match="pasid_bits"):
        IommuUnit(name="x", vendor="vtd", pasid_bits=bits)


def test_unit_caps_are_named_integers() -> None:
    with pytest.raises(TypeError, match="capability"):
        IommuUnit(name="x", vendor="vtd", pasid_bits=8, caps={"vcs": "yes"})  # type: ignore[dict-item]


# -- loading


def test_manager_without_entry_points_has_specs_and_no_plugins(
    host: PluginHost, install: Install
) -> None:
    assert host.loaded == [] and host.failures == []
    assert host.pm.get_plugins() == set()
    assert host.pm.hook.ioasid_allocators_for_unit.has_spec()
    assert host.hooks.vendor_infos() == []


def test_each_call_builds_a_fresh_manager(install: Install) -> None:
    install(FakeEntryPoint("a", Vendor("a")))
    first, second = new_plugin_manager(), new_plugin_manager()
    assert first.pm is not second.pm
    first.pm.unregister(name="a")
    assert second.pm.has_plugin("a")


def test_entry_points_load_in_name_order_with_their_distribution(
    install: Install,
) -> None:
    install(*(FakeEntryPoint(n, Vendor(n)) for n in ("zeta", "alpha", "mid")))
    host = new_plugin_manager()
    assert [(p.name, p.distribution, p.version) for p in host.loaded] == [
        ("alpha", "ioasid-alpha", "1.2.3"),
        ("mid", "ioasid-mid", "1.2.3"),
        ("zeta", "ioasid-zeta", "1.2.3"),
    ]
    assert host.loaded[0].vendor == VendorInfo(name="alpha", description="the alpha IOMMU")


def test_broken_entry_point_is_skipped_and_reported(
    install: Install, caplog: pytest.LogCaptureFixture
) -> None:
    install(FakeEntryPoint("good", Vendor("good")), FakeEntryPoint("bad", ImportError("no vcmd")))
    with caplog.at_level(logging.WARNING, logger="ioasid_core.plugins"):
        host = new_plugin_manager()
    assert [p.name for p in host.loaded] == ["good"]
    assert host.failures == [
        LoadFailure(
            name="bad",
            distribution="ioasid-bad",
            entry_point="fake_bad.plugin",
            error="ImportError: no vcmd",
        )
    ]
    assert host.pm.has_plugin("good") and not host.pm.has_plugin("bad")
    assert "bad" in caplog.text and "no vcmd" in caplog.text


def test_strict_raises_naming_every_bad_plugin(install: Install) -> None:
    install(
        FakeEntryPoint("good", Vendor("good")),
        FakeEntryPoint("bad1", ImportError("missing libfoo")),
        FakeEntryPoint("bad2", RuntimeError("crashed at import")),
    )
    with pytest.raises(PluginLoadError, match=r"bad1 .*missing libfoo.*bad2 .*crashed") as info:
        new_plugin_manager(strict=True)
    assert [f.name for f in info.value.failures] == ["bad1", "bad2"]


def test_blocked_names_are_never_imported(install: Install) -> None:
    blocked = FakeEntryPoint("noisy", AssertionError("imported a blocked plugin"))
    install(blocked, FakeEntryPoint("good", Vendor("good")))
    host = new_plugin_manager(blocked=["noisy"], strict=True)
    assert blocked.loads == 0
    assert [p.name for p in host.loaded] == ["good"]
    assert host.blocked == {"noisy"} and host.pm.is_blocked("noisy")


def test_environment_adds_to_blocked(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [FakeEntryPoint(n, Vendor(n)) for n in ("a", "b", "c", "d")]
    install(*eps)
    monkeypatch.setenv(BLOCK_ENV, " a, ,b ")
    host = new_plugin_manager(blocked=["c"])
    assert [p.name for p in host.loaded] == ["d"]
    assert host.blocked == {"a", "b", "c"}
    assert [ep.loads for ep in eps] == [0, 0, 0, 1]


def test_only_restricts_to_names_and_reports_missing_ones(
    install: Install,
) -> None:
    eps = [FakeEntryPoint(n, Vendor(n)) for n in ("a", "b")]
    install(*eps)
    host = new_plugin_manager(only=["a", "ghost"])
    assert [p.name for p in host.loaded] == ["a"]
    assert eps[1].loads == 0
    assert [(f.name, f.error) for f in host.failures] == [("ghost", "not installed")]


def test_second_entry_point_with_a_taken_name_is_reported(
    install: Install,
) -> None:
    install(
        FakeEntryPoint("vtd", Vendor("vtd"), dist="ioasid-vtd"),
        FakeEntryPoint("vtd", Vendor("vtd"), dist="ioasid-vtd-fork"),
    )
    host = new_plugin_manager()
    assert [p.distribution for p in host.loaded] == ["ioasid-vtd"]
    assert [(f.distribution, f.error) for f in host.failures] == [
        ("ioasid-vtd-fork", "the name 'vtd' is taken by ioasid-vtd")
    ]


class Misspelled:
    @hookimpl
    def ioasid_evnt(self, event: Event) -> None:
        """Meant to be ``ioasid_event``; pluggy alone would accept it and never call it."""


class WrongArgument:
    @hookimpl
    def ioasid_vendor_info(self, colour: str) -> None:
        """Asks for an argument the spec does not have."""


@pytest.mark.parametrize(
    ("plugin", "reason"),
    [
        (Misspelled(), r"unknown hook 'ioasid_evnt'.* \(did you mean 'ioasid_event'\?\)$"),
        (WrongArgument(), "hook 'ioasid_vendor_info'.*colour(?!.*did you mean)"),
    ],
)
def test_plugin_not_matching_the_specs_is_skipped(
    install: Install, plugin: object, reason: str
) -> None:
    install(FakeEntryPoint("good", Vendor("good")), FakeEntryPoint("oops", plugin))
    host = new_plugin_manager()
    assert [p.name for p in host.loaded] == ["good"]
    assert not host.pm.has_plugin("oops")
    [failure] = host.failures
    assert failure.name == "oops"
    assert failure.error.startswith("PluginValidationError")
    assert re.search(reason, failure.error, re.DOTALL)
    with pytest.raises(PluginLoadError, match="oops"):
        new_plugin_manager(strict=True)


def test_check_pending_runs_on_the_built_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[pluggy.PluginManager] = []

    def check_pending(self: pluggy.PluginManager) -> None:
        called.append(self)

    monkeypatch.setattr(pluggy.PluginManager, "check_pending", check_pending)
    host = new_plugin_manager(load_entry_points=False)
    assert called == [host.pm]


def test_vendor_info_failing_at_load_is_a_load_failure(
    install: Install,
) -> None:
    class Broken:
        @hookimpl
        def ioasid_vendor_info(self) -> VendorInfo:
            raise RuntimeError("no vendor")

    install(FakeEntryPoint("broken", Broken()))
    host = new_plugin_manager()
    assert host.loaded == []
    assert [f.error for f in host.failures] == ["RuntimeError: no vendor"]
    assert not host.pm.has_plugin("broken")


def test_real_vendor_plugins_are_discovered() -> None:
    host = new_plugin_manager(strict=True)
    found = {(p.name, p.distribution, p.vendor.name if p.vendor else None) for p in host.loaded}
    # The bundled ones; any other installed plugin (an out-of-tree one, in CI) is there too.
    assert found >= {
        ("vtd", "ioasid-vtd", "vtd"),
        ("smmuv3", "ioasid-smmuv3", "smmuv3"),
        ("virtio_iommu", "ioasid-virtio-iommu", "virtio-iommu"),
        ("upstream_now", "ioasid-upstream-now", "upstream-now"),  # examples/plugins
        ("amd_vi", "ioasid-amd-vi", "amd-vi"),
        ("riscv_iommu", "ioasid-riscv-iommu", "riscv-iommu"),
    }
    installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    assert {p.name for p in host.loaded} == {ep.name for ep in installed}
    for plugin in host.loaded:
        assert plugin.version == importlib.metadata.version(plugin.distribution)
    assert {v.description for v in host.hooks.vendor_infos()} >= {
        "Intel VT-d",
        "Arm SMMUv3",
        "virtio-iommu",
        "Linux v6.6+: global PASIDs, per-device attach",
        "AMD-Vi (AMD IOMMU)",
        "RISC-V IOMMU",
    }


# -- the facade's error handling


def test_exception_note_names_the_culprit_plugin(host: PluginHost) -> None:
    def helper() -> VendorInfo:
        raise RuntimeError("register read failed")

    class Boom:
        @hookimpl
        def ioasid_vendor_info(self) -> VendorInfo:
            return helper()  # the innermost *hookimpl* frame decides, not the helper's

    host.pm.register(Boom(), name="boom")
    host.pm.register(Vendor("good"), name="good")  # registered last: runs first (LIFO)
    with pytest.raises(RuntimeError, match="register read failed") as info:
        host.hooks.vendor_infos()
    assert info.value.__notes__ == ["raised by ioasid plugin 'boom' in hook 'ioasid_vendor_info'"]


def test_wrong_result_type_is_a_clear_error(host: PluginHost) -> None:
    class Sloppy:
        @hookimpl
        def ioasid_vendor_info(self) -> str:
            return "vtd"

    host.pm.register(Sloppy(), name="sloppy")
    with pytest.raises(TypeError, match="ioasid_vendor_info returned 'vtd', not a VendorInfo"):
        host.hooks.vendor_infos()


def test_vendor_info_of_one_plugin(host: PluginHost) -> None:
    host.pm.register(Vendor("a"), name="a")
    host.pm.register(Vendor("b"), name="b")
    assert host.hooks.vendor_info_of("a") == VendorInfo(name="a", description="the a IOMMU")
    host.pm.register(Listener(), name="quiet")
    assert host.hooks.vendor_info_of("quiet") is None
    with pytest.raises(NotFoundError, match="ghost"):
        host.hooks.vendor_info_of("ghost")


# -- the specs themselves

BRIDGED_NAMES = {
    "IoasidSpace": IoasidSpace,
    "IoasidSet": IoasidSet,
    "AllocatorOps": AllocatorOps,
    "Event": Event,
    "VendorPrq": VendorPrq,
    "BenchmarkFigure": BenchmarkFigure,
    "LogFormat": LogFormat,
}


def spec_functions() -> list[tuple[str, Callable[..., object]]]:
    return [
        (name, fn)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("ioasid_")
    ]


def test_the_expected_specs_exist() -> None:
    assert {name for name, _ in spec_functions()} >= {
        "ioasid_allocators_for_unit",
        "ioasid_allocator_refused",
        "ioasid_unit_removed",
        "ioasid_set_created",
        "ioasid_set_freed",
        "ioasid_event",
        "ioasid_vendor_info",
    }


@pytest.mark.parametrize(("name", "spec"), spec_functions())
def test_every_spec_is_typed_and_documented(name: str, spec: Callable[..., object]) -> None:
    assert getattr(spec, "ioasid_spec", None) is not None, f"{name} lacks @hookspec"
    doc = inspect.getdoc(spec)
    assert doc, f"{name} has no docstring"
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
    for param in signature.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) untyped"
        assert param.default is inspect.Parameter.empty, f"{name}({param.name}) has a default"
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert f":param {param.name}:" in doc, f"{name} does not document {param.name}"
    # The TYPE_CHECKING-only names must resolve to the real classes.
    hints = typing.get_type_hints(spec, {**vars(hookspecs), **BRIDGED_NAMES})
    assert set(hints) == {*signature.parameters, "return"}


@pytest.mark.parametrize("name", [name for name, _ in spec_functions()])
def test_every_spec_is_called_through_the_facade(name: str) -> None:
    assert f'"{name}"' in inspect.getsource(plugins.Hooks)


# -- events and sets (``space`` is the conftest's small space)


def test_attach_without_listeners_subscribes_nothing(host: PluginHost, space: IoasidSpace) -> None:
    host.pm.register(Vendor("quiet"), name="quiet")
    assert host.hooks.attach(space) is None
    calls = record_hook_calls(host.pm)
    late = Listener()
    host.pm.register(late, name="late")  # too late: nothing bridges this space
    s = space.create_set()
    space.free(s, space.alloc(s, 1, 10))
    space.free_set(s)
    assert calls == []
    assert late.log == []


def test_attach_delivers_every_event(host: PluginHost, space: IoasidSpace) -> None:
    listener = Listener()
    host.pm.register(listener, name="listener")
    sub = host.hooks.attach(space)
    assert isinstance(sub, Subscription) and sub.priority is Priority.LAST and sub.set is None
    s = space.create_set()
    ioasid = space.alloc(s, 1, 10)
    space.attach_spid(ioasid, 101)
    space.detach_spid(ioasid)
    space.free(s, ioasid)
    space.free_set(s)
    events = [what for kind, what in listener.log if kind == "event"]
    assert events == [
        EventKind.SET_ALLOC,
        EventKind.ALLOC,
        EventKind.BIND,
        EventKind.UNBIND,
        EventKind.FREE,
        EventKind.SET_FREE,
    ]
    assert ("created", s) in listener.log and ("freed", s) in listener.log
    assert all(seen is space for seen in listener.spaces)
    space.unsubscribe(sub)
    space.create_set()
    assert len(listener.log) == 8


def test_hooks_run_after_ordinary_subscribers(host: PluginHost, space: IoasidSpace) -> None:
    order: list[tuple[str, object]] = []
    host.pm.register(Listener(order), name="listener")
    host.hooks.attach(space)
    space.subscribe(lambda event: order.append(("device", event.kind)))  # subscribed later
    s = space.create_set()
    order.clear()
    space.alloc(s, 1, 10)
    assert order == [("device", EventKind.ALLOC), ("event", EventKind.ALLOC)]


def test_set_hooks_alone_cost_no_call_per_allocation(host: PluginHost, space: IoasidSpace) -> None:
    class SetWatcher:
        def __init__(self) -> None:
            self.created: list[IoasidSet] = []
            self.freed: list[IoasidSet] = []

        @hookimpl
        def ioasid_set_created(self, space: IoasidSpace, set: IoasidSet) -> None:
            self.created.append(set)

        @hookimpl
        def ioasid_set_freed(self, set: IoasidSet) -> None:
            self.freed.append(set)

    watcher = SetWatcher()
    host.pm.register(watcher, name="watcher")
    assert host.hooks.attach(space) is not None
    calls = record_hook_calls(host.pm)
    s = space.create_set()
    for _ in range(3):
        space.free(s, space.alloc(s, 1, 10))
    space.free_set(s)
    assert watcher.created == [s] and watcher.freed == [s]
    assert calls == ["ioasid_set_created", "ioasid_set_freed"]


def test_event_hook_failure_is_collected_and_names_the_plugin(
    host: PluginHost, space: IoasidSpace
) -> None:
    class Faulty:
        @hookimpl
        def ioasid_event(self, event: Event) -> None:
            if event.kind is EventKind.ALLOC:
                raise ValueError("bad event")

    host.pm.register(Faulty(), name="faulty")
    host.hooks.attach(space)
    s = space.create_set()
    with pytest.raises(ExceptionGroup) as info:
        space.alloc(s, 1, 10)
    assert s.ioasids() == [1]  # the allocation itself is done
    [error] = info.value.exceptions
    assert isinstance(error, ValueError)
    assert "raised by ioasid plugin 'faulty' in hook 'ioasid_event'" in error.__notes__


# -- allocators for units


def test_probe_unit_registers_the_offered_allocators(host: PluginHost, space: IoasidSpace) -> None:
    backend = Backend()
    ops = backend.ops("dmar0")
    vendor = AllocVendor({"dmar0": [ops]})
    host.pm.register(vendor, name="vtd")
    report = host.hooks.probe_unit(DMAR0, space)
    assert report.unit is DMAR0
    assert report.registered == (ops,) and report.refused == ()
    assert space.active_allocator is ops
    s = space.create_set()
    assert space.alloc(s, 5, 10) in backend.used
    other = host.hooks.probe_unit(IommuUnit(name="smmu0", vendor="smmuv3", pasid_bits=16), space)
    assert other.registered == () and other.refused == ()


def test_probe_refused_because_default_allocator_holds_ids(
    host: PluginHost, space: IoasidSpace
) -> None:
    ops = Backend().ops("dmar0")
    vendor = AllocVendor({"dmar0": [ops]})
    host.pm.register(vendor, name="vtd")
    s = space.create_set()
    space.alloc(s, 1, 10)
    report = host.hooks.probe_unit(DMAR0, space)
    assert report.registered == ()
    [refusal] = report.refused
    assert refusal.ops is ops and isinstance(refusal.error, AllocatorBusyError)
    assert vendor.refused == [("dmar0", ops, refusal.error)]
    assert space.active_allocator is None
    assert host.hooks.remove_unit(DMAR0, space) == ()
    assert vendor.removed == ["dmar0"]  # told even though nothing was accepted


def test_probing_a_unit_twice_needs_a_removal_between(host: PluginHost, space: IoasidSpace) -> None:
    host.pm.register(AllocVendor({"dmar0": [Backend().ops("dmar0")]}), name="vtd")
    host.hooks.probe_unit(DMAR0, space)
    with pytest.raises(AlreadyRegisteredError, match="dmar0"):
        host.hooks.probe_unit(DMAR0, space)
    host.hooks.remove_unit(DMAR0, space)
    host.hooks.probe_unit(DMAR0, space)
    host.hooks.probe_unit(DMAR0, IoasidSpace(capacity=64))  # another space: another record


def test_remove_unit_withdraws_its_allocators(host: PluginHost, space: IoasidSpace) -> None:
    backend = Backend()
    ops0, ops1 = backend.ops("dmar0"), backend.ops("dmar1")
    vendor = AllocVendor({"dmar0": [ops0], "dmar1": [ops1]})
    host.pm.register(vendor, name="vtd")
    host.hooks.probe_unit(DMAR0, space)
    host.hooks.probe_unit(DMAR1, space)
    assert host.hooks.remove_unit(DMAR0, space) == (ops0,)
    assert space.active_allocator is ops1  # the shared group lives on with dmar1
    assert vendor.removed == ["dmar0"]
    with pytest.raises(NotFoundError, match="dmar0"):
        host.hooks.remove_unit(DMAR0, space)
    host.hooks.remove_unit(DMAR1, space)
    assert space.active_allocator is None


def test_remove_unit_goes_newest_first(
    host: PluginHost, space: IoasidSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = Backend().ops("a"), Backend().ops("b")  # two groups: b waits behind a
    host.pm.register(AllocVendor({"dmar0": [first, second]}), name="vtd")
    host.hooks.probe_unit(DMAR0, space)
    order: list[AllocatorOps[Any]] = []
    unregister = space.unregister_allocator

    def spy(ops: AllocatorOps[Any], *, force: bool = False) -> None:
        order.append(ops)
        unregister(ops, force=force)

    monkeypatch.setattr(space, "unregister_allocator", spy)
    assert host.hooks.remove_unit(DMAR0, space) == (second, first)
    assert order == [second, first]


def test_busy_removal_keeps_its_record_for_a_forced_retry(
    host: PluginHost, space: IoasidSpace
) -> None:
    backend = Backend()
    first, second = backend.ops("dmar0"), Backend().ops("other")
    vendor = AllocVendor({"dmar0": [first, second]})
    host.pm.register(vendor, name="vtd")
    host.hooks.probe_unit(DMAR0, space)
    s = space.create_set()
    ioasid = space.alloc(s, 1, 60)
    with pytest.raises(BusyError):
        host.hooks.remove_unit(DMAR0, space)
    assert vendor.removed == []
    assert space.active_allocator is first  # the waiting group went, the busy one stayed
    assert host.hooks.remove_unit(DMAR0, space, force=True) == (first,)
    assert backend.used == set() and ioasid not in space
    assert space.active_allocator is None
    assert vendor.removed == ["dmar0"]


def test_forced_removal_with_failing_backend_still_completes(
    host: PluginHost, space: IoasidSpace
) -> None:
    backend = Backend(fail_free=True)
    vendor = AllocVendor({"dmar0": [backend.ops("dmar0")]})
    host.pm.register(vendor, name="vtd")
    host.hooks.probe_unit(DMAR0, space)
    s = space.create_set()
    space.alloc(s, 1, 60)
    with pytest.raises(ExceptionGroup, match="failed to free"):
        host.hooks.remove_unit(DMAR0, space, force=True)
    assert space.active_allocator is None
    assert vendor.removed == ["dmar0"]
    with pytest.raises(NotFoundError):
        host.hooks.remove_unit(DMAR0, space)


def test_bad_offer_registers_nothing(host: PluginHost, space: IoasidSpace) -> None:
    good = Backend().ops("dmar0")
    host.pm.register(AllocVendor({"dmar0": [good, "junk"]}), name="vtd")
    with pytest.raises(TypeError, match="not a sequence of AllocatorOps"):
        host.hooks.probe_unit(DMAR0, space)
    assert space.active_allocator is None
    with pytest.raises(NotFoundError):
        host.hooks.remove_unit(DMAR0, space)


def test_failing_refusal_hook_rolls_the_whole_probe_back(
    host: PluginHost, space: IoasidSpace
) -> None:
    ops = Backend().ops("dmar0")

    class Touchy(AllocVendor):
        @hookimpl
        def ioasid_allocator_refused(
            self, unit: IommuUnit, ops: AllocatorOps[Any], error: IoasidError
        ) -> None:
            raise RuntimeError("cannot fall back")

    host.pm.register(Touchy({"dmar0": [ops, ops]}), name="touchy")  # the 2nd is a duplicate
    with pytest.raises(RuntimeError, match="cannot fall back") as info:
        host.hooks.probe_unit(DMAR0, space)
    assert "raised by ioasid plugin 'touchy' in hook 'ioasid_allocator_refused'" in (
        info.value.__notes__
    )
    assert space.active_allocator is None  # the allocator it did register is withdrawn
    with pytest.raises(NotFoundError):  # and the unit forgotten
        host.hooks.remove_unit(DMAR0, space)
    host.pm.unregister(name="touchy")
    host.pm.register(AllocVendor({"dmar0": [ops]}), name="vtd")
    assert host.hooks.probe_unit(DMAR0, space).registered == (ops,)  # probing again works
    assert host.hooks.remove_unit(DMAR0, space) == (ops,)
