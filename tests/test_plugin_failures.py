"""Plugin wiring that recovers (issue 19): a failed probe rolls back completely, hot-unplug
always completes, and a failure inside a plugin is blamed on the plugin (exit 1, named),
never on the scenario."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ioasid_core import cli as cli_module
from ioasid_core.allocators import AllocatorOps
from ioasid_core.bits import EncodeError
from ioasid_core.cli import cli
from ioasid_core.errors import AlreadyRegisteredError, IoasidError, NotFoundError
from ioasid_core.markers import hookimpl
from ioasid_core.platform import Platform
from ioasid_core.plugins import LoadFailure, PluginHost, new_plugin_manager
from ioasid_core.prq import GenericPrq
from ioasid_core.prq.types import RequestRow
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.space import IoasidSpace
from ioasid_core.units import IommuUnit

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "null-set-search.toml")
UNIT = IommuUnit(name="dmar0", vendor="vtd", pasid_bits=20)


class Backend:
    def __init__(self) -> None:
        self.used: set[int] = set()

    def alloc(self, lo: int, hi: int, pdata: object) -> int:
        n = next(i for i in range(lo, hi + 1) if i not in self.used)
        self.used.add(n)
        return n

    def free(self, ioasid: int, pdata: object) -> None:
        self.used.remove(ioasid)


class Offers:
    """Offers ``ops`` for every unit; optionally fails on a refusal or on removal."""

    def __init__(
        self, ops: Sequence[AllocatorOps[Any]], *, refuse_fails: bool = False, removed_fails: bool
    ) -> None:
        self.ops = list(ops)
        self.refuse_fails = refuse_fails
        self.removed_fails = removed_fails
        self.removed: list[str] = []

    @hookimpl
    def ioasid_allocators_for_unit(self, unit: IommuUnit) -> Sequence[AllocatorOps[Any]]:
        return self.ops

    @hookimpl
    def ioasid_allocator_refused(
        self, unit: IommuUnit, ops: AllocatorOps[Any], error: IoasidError
    ) -> None:
        if self.refuse_fails:
            raise RuntimeError("no fallback for a refused allocator")

    @hookimpl
    def ioasid_unit_removed(self, unit: IommuUnit) -> None:
        self.removed.append(unit.name)
        if self.removed_fails:
            raise RuntimeError("teardown exploded")


def platform_with(plugin: object) -> tuple[Platform, IoasidSpace, PluginHost]:
    host = new_plugin_manager(load_entry_points=False)
    host.pm.register(plugin, name="flaky")
    space = IoasidSpace(64)
    return Platform(space, hooks=host.hooks), space, host


def test_a_failed_probe_rolls_back_and_the_unit_can_be_probed_again() -> None:
    ops = AllocatorOps(Backend().alloc, Backend().free)
    plugin = Offers([ops, ops], refuse_fails=True, removed_fails=False)  # 2nd: a duplicate
    platform, space, host = platform_with(plugin)
    with pytest.raises(RuntimeError, match="no fallback") as info:
        platform.probe_unit(UNIT)
    assert any("'flaky'" in note for note in info.value.__notes__)
    assert space.active_allocator is None  # the one it registered is withdrawn
    assert "dmar0" not in platform.units
    with pytest.raises(NotFoundError):
        host.hooks.remove_unit(UNIT, space)
    plugin.ops = [ops]
    report = platform.probe_unit(UNIT)  # not "already probed, remove it first"
    assert report is not None and report.registered == (ops,)
    assert space.active_allocator is ops


def test_a_failing_unit_removed_hook_still_completes_the_hot_unplug() -> None:
    backend = Backend()
    ops = AllocatorOps(backend.alloc, backend.free)
    plugin = Offers([ops], removed_fails=True)
    platform, space, _ = platform_with(plugin)
    platform.probe_unit(UNIT)
    platform.add_device("dev0", unit="dmar0", source_id=0x10, owner="p")
    with pytest.raises(ExceptionGroup, match="ioasid_unit_removed failed") as info:
        platform.remove_unit("dmar0")
    (cause,) = info.value.exceptions
    assert isinstance(cause, RuntimeError) and "teardown exploded" in str(cause)
    assert any("'flaky'" in note for note in cause.__notes__)
    assert "dmar0" not in platform.units and "dev0" not in platform.devices
    assert space.active_allocator is None
    with pytest.raises(NotFoundError):
        platform.remove_unit("dmar0")
    plugin.removed_fails = False
    platform.probe_unit(UNIT)  # not AlreadyRegisteredError
    assert space.active_allocator is ops
    with pytest.raises(AlreadyRegisteredError):
        platform.probe_unit(UNIT)


class _RaisesInVendors:
    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq]:
        raise LookupError("vendor table missing")


class _ReturnsGarbage:
    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq]:
        return ["not a vendor"]  # type: ignore[list-item]


class _Fine:
    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq]:
        return []


@pytest.mark.parametrize("plugin", [_RaisesInVendors(), _ReturnsGarbage()])
def test_prq_vendors_names_the_plugin_that_raised_or_returned_garbage(plugin: object) -> None:
    host = new_plugin_manager(load_entry_points=False)
    host.pm.register(_Fine(), name="fine")
    host.pm.register(plugin, name="culprit")
    with pytest.raises(Exception) as info:
        host.hooks.prq_vendors()
    assert "raised by ioasid plugin 'culprit' in hook 'ioasid_prq_vendors'" in (
        info.value.__notes__
    )


def _invoke(monkeypatch: pytest.MonkeyPatch, plugin: object, *args: str) -> tuple[int, str]:
    def host_with(**kwargs: object) -> PluginHost:
        host = new_plugin_manager(load_entry_points=False)
        host.pm.register(plugin, name="culprit")
        host.failures.append(
            LoadFailure(name="gone", distribution="ioasid-gone", entry_point="x:y", error="E: f")
        )
        return host

    monkeypatch.setattr(cli_module, "new_plugin_manager", host_with)
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


def test_a_plugin_raising_in_prq_vendors_exits_1_naming_it_and_loader_warnings_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, stderr = _invoke(monkeypatch, _RaisesInVendors(), "compare", EXAMPLE)
    assert code == 1
    assert "vendor table missing" in stderr and "'culprit'" in stderr
    assert "left out: plugin 'gone' (ioasid-gone, entry point x:y) failed to load: E: f" in stderr


class _EncodeFails(GenericPrq):
    name = "encfail"

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        raise EncodeError("PASID field is 20 bits wide")


class _EncodeFailsPlugin:
    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq]:
        return [_EncodeFails()]


@pytest.mark.parametrize("command", ["compare", "run"])
def test_an_ioasid_error_from_a_vendors_codec_is_the_vendors_failure_not_bad_input(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    flag = "--vendors" if command == "compare" else "--vendor"
    extra = [] if command == "compare" else ["--policy", "global"]
    code, stderr = _invoke(
        monkeypatch, _EncodeFailsPlugin(), command, EXAMPLE, flag, "encfail", *extra
    )
    assert code == 1
    assert "vendor 'encfail' (plugin 'culprit') failed under policy 'global'" in stderr
    assert "EncodeError" in stderr
    assert "20 bits" in stderr and not stderr.startswith(f"ioasid: {EXAMPLE}")
