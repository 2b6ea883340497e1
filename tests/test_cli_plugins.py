"""``ioasid plugins``: the listing of installed vendor plugins, as a table and as JSON."""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ioasid_core.cli import cli
from ioasid_core.markers import ENTRY_POINT_GROUP
from ioasid_core.plugins import BLOCK_ENV

VENDORS = {
    "amd_vi": ("ioasid-amd-vi", "amd-vi", "AMD-Vi (AMD IOMMU)"),
    "riscv_iommu": ("ioasid-riscv-iommu", "riscv-iommu", "RISC-V IOMMU"),
    "smmuv3": ("ioasid-smmuv3", "smmuv3", "Arm SMMUv3"),
    "virtio_iommu": ("ioasid-virtio-iommu", "virtio-iommu", "virtio-iommu"),
    # The workspace's example third-party plugin (examples/plugins/upstream_now).
    "upstream_now": (
        "ioasid-upstream-now",
        "upstream-now",
        "Linux v6.6+: global PASIDs, per-device attach",
    ),
    "vtd": ("ioasid-vtd", "vtd", "Intel VT-d"),
}
"""The bundled plugins; others may be installed too (an out-of-tree one, in CI)."""
OFFERED = {
    "amd_vi": ["amd-vi", "amd-vi-iopf"],
    "riscv_iommu": ["riscv-iommu"],
    "smmuv3": ["smmuv3", "smmuv3-pri", "smmuv3-pri-iopf"],
    "virtio_iommu": ["virtio-iommu"],
    "upstream_now": ["upstream-now"],
    "vtd": ["vtd", "vtd-iopf"],
}
"""The page-request vendors each bundled plugin offers."""


def installed() -> dict[str, str]:
    """Every installed entry point of the group: name -> distribution."""
    return {
        ep.name: ep.dist.name if ep.dist is not None else "?"
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }


@pytest.fixture(autouse=True)
def _no_env_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)


@pytest.fixture
def broken_plugin(install: Callable[..., None]) -> None:
    """Add an entry point whose module does not exist to the real ones."""
    install(
        importlib.metadata.EntryPoint(
            name="broken", value="ioasid_no_such_vendor.plugin", group=ENTRY_POINT_GROUP
        )
    )


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["plugins", *args], env=env)


def as_json(result: Result) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_table_lists_the_vendor_plugins() -> None:
    result = run()
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "VENDORS", "DESCRIPTION"]
    for name, (dist, _vendor, description) in VENDORS.items():
        version = importlib.metadata.version(dist)
        row = next(line for line in lines if line.startswith(f"{name} "))
        offered = ",".join(OFFERED[name])
        assert row.split(maxsplit=4) == [name, dist, version, offered, description]
    assert "failed to load" not in result.stdout


def test_json_shape() -> None:
    result = run("--json")
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert set(report) == {"plugins", "failures", "vendor_problems", "blocked"}
    assert report["failures"] == [] and report["blocked"] == []
    assert report["vendor_problems"] == []
    assert [p["name"] for p in report["plugins"]] == sorted(installed())
    assert set(VENDORS) <= set(installed())
    for plugin in report["plugins"]:
        assert plugin["distribution"] == installed()[plugin["name"]]
        if plugin["name"] not in VENDORS:
            continue
        dist, vendor, description = VENDORS[plugin["name"]]
        assert plugin == {
            "name": plugin["name"],
            "distribution": dist,
            "version": importlib.metadata.version(dist),
            "vendor": {"name": vendor, "description": description},
            "vendors": OFFERED[plugin["name"]],
        }


def test_block_is_repeatable_and_adds_to_the_environment() -> None:
    names = sorted(installed())
    blocks = [arg for name in names if name != "virtio_iommu" for arg in ("--block", name)]
    result = run("--json", *blocks, env={BLOCK_ENV: "virtio_iommu"})
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert report["plugins"] == []
    assert report["blocked"] == names


def test_failures_are_listed_with_their_reason(
    broken_plugin: None, caplog: pytest.LogCaptureFixture
) -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert "failed to load:" in result.stdout
    assert (
        "broken (?, ioasid_no_such_vendor.plugin): ModuleNotFoundError: "
        "No module named 'ioasid_no_such_vendor'"
    ) in result.stdout
    assert "vtd " in result.stdout  # the others still load
    assert not caplog.records  # said once, in the listing, not again as a logged warning
    assert logging.getLogger("ioasid_core.plugins").level == logging.NOTSET  # restored


def test_json_failures(broken_plugin: None) -> None:
    report = as_json(run("--json"))
    assert report["failures"] == [
        {
            "name": "broken",
            "distribution": "?",
            "entry_point": "ioasid_no_such_vendor.plugin",
            "error": "ModuleNotFoundError: No module named 'ioasid_no_such_vendor'",
        }
    ]
    # Every other installed plugin still loads (the fixture added "broken" to them).
    assert [p["name"] for p in report["plugins"]] == sorted(set(installed()) - {"broken"})


def test_strict_exits_1_on_failures_after_listing_them(broken_plugin: None) -> None:
    result = run("--strict")
    assert result.exit_code == 1
    assert "broken" in result.stdout and "Intel VT-d" in result.stdout


def test_strict_exits_0_when_every_plugin_loads() -> None:
    assert run("--strict").exit_code == 0


def test_blocking_the_broken_plugin_satisfies_strict(broken_plugin: None) -> None:
    assert run("--strict", "--block", "broken").exit_code == 0


def test_the_group_lists_the_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "plugins" in result.stdout
