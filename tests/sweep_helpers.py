"""Small sweeps the sweep tests share: a base with seeded generators, so seeds matter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ioasid_core.bits import Buffer
from ioasid_core.compare import available_vendors
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq, PageRequest
from ioasid_core.prq.vendor import VendorPrq

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VENDORS: dict[str, VendorPrq] = available_vendors(new_plugin_manager().hooks)

SMALL = f"""
name = "small"
base = "{EXAMPLES / "churn-and-stream.toml"}"
vendors = ["generic", "vtd"]
policies = ["native", "device"]
seeds = [1, 2]
plot = ["responses.success"]

[axes]
"generators[1].count" = [10, 30]
"""
"""2 points x 2 seeds x 2 vendors x 2 policies (native is global for both): 16 runs."""


def write_sweep(folder: Path, text: str = SMALL, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their timings (the only columns that differ between executors)."""
    return [{k: v for k, v in row.items() if k not in ("run_time_s", "run_cpu_s")} for row in rows]


class Exploding(GenericPrq):
    """A vendor whose decoder always raises: each of its runs fails."""

    name = "exploding"

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        raise RuntimeError("decoder exploded")


WITH_EXPLODING: dict[str, VendorPrq] = {**VENDORS, "exploding": Exploding()}
