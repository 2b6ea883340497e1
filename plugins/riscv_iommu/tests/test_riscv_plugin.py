"""The plugin as users meet it: found through the entry point, run by compare."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ioasid_core.plugin import AddressSpace, LookupPolicy, RowCodec, VendorPrq, new_plugin_manager
from ioasid_core.testing import cli
from ioasid_riscv_iommu.handlers import RiscvPrq

ROOT = Path(__file__).resolve().parents[3]


def test_discovered_through_the_entry_point() -> None:
    vendor = new_plugin_manager().hooks.prq_vendors()["riscv-iommu"]
    assert isinstance(vendor, RiscvPrq)
    assert isinstance(vendor, VendorPrq) and isinstance(vendor, RowCodec)
    assert vendor.entry_size == 16
    assert vendor.default_policy is LookupPolicy.DEVICE
    assert vendor.expected is AddressSpace


def test_compare_runs_it() -> None:
    example = str(ROOT / "examples" / "null-set-search.toml")
    result = CliRunner().invoke(cli, ["compare", example, "--vendors", "riscv-iommu"])
    assert result.exit_code == 0, result.output
    assert "riscv-iommu" in result.output
