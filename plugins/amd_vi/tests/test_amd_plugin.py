"""The plugin as users meet it: found through the entry point, run by compare."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ioasid_amd_vi.handlers import AmdViPrq
from ioasid_core.plugin import AddressSpace, LookupPolicy, RowCodec, VendorPrq, new_plugin_manager
from ioasid_core.testing import cli

ROOT = Path(__file__).resolve().parents[3]


def test_discovered_through_the_entry_point() -> None:
    vendors = new_plugin_manager().hooks.prq_vendors()
    v2, iopf = vendors["amd-vi"], vendors["amd-vi-iopf"]
    assert isinstance(v2, AmdViPrq) and isinstance(iopf, AmdViPrq)
    for vendor in (v2, iopf):
        assert isinstance(vendor, VendorPrq) and isinstance(vendor, RowCodec)
        assert vendor.entry_size == 16
        assert vendor.default_policy is LookupPolicy.DEVICE
        assert vendor.expected is AddressSpace
    assert (v2.iopf, iopf.iopf) == (False, True)


def test_compare_runs_both_vendors() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            str(ROOT / "examples" / "null-set-search.toml"),
            "--vendors",
            "amd-vi,amd-vi-iopf",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "amd-vi-iopf" in result.output
