"""The sweep files shown in docs/sweeps.md and examples/sweeps/ load, and every point of
them too (a reader copies them first; they must not rot)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ioasid_core.sweep import load_sweep, parse_sweep, plan_sweep
from ioasid_core.sweep.spec import bundled_examples

# tests/sweep_helpers.py: ``tests.sweep_helpers`` at run time, ``sweep_helpers`` to mypy.
if TYPE_CHECKING:
    from sweep_helpers import EXAMPLES, VENDORS
else:
    from tests.sweep_helpers import EXAMPLES, VENDORS

DOC = Path(__file__).resolve().parents[1] / "docs" / "sweeps.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_shows_a_file_per_feature() -> None:
    text = "\n".join(BLOCKS)
    for feature in ("policies", "seeds", "log =", "linear =", "set.", "plot"):
        assert feature in text
    assert all(block.lstrip().startswith(("name =", "base =")) for block in BLOCKS)


@pytest.mark.parametrize("text", BLOCKS)
def test_each_file_on_the_page_plans_with_every_point_loaded(text: str) -> None:
    plan = plan_sweep(parse_sweep(tomllib.loads(text), str(DOC)), VENDORS)
    assert plan.runs


@pytest.mark.parametrize("path", sorted((EXAMPLES / "sweeps").glob("*.toml")), ids=str)
def test_each_example_sweep_plans(path: Path) -> None:
    plan = plan_sweep(load_sweep(path), VENDORS)
    assert len(plan.runs) == len(plan.points) * len(plan.spec.seeds) * len(plan.vendors)


def test_every_example_scenario_is_bundled_in_the_package() -> None:
    # examples/*.toml are links to the package's own files, which the wheel ships.
    package = EXAMPLES.parent / "ioasid_core" / "examples"
    for path in EXAMPLES.glob("*.toml"):
        assert path.resolve() == (package / path.name).resolve()
    assert set(bundled_examples()) == {p.stem for p in EXAMPLES.glob("*.toml")}


def test_the_queue_depth_example_shows_each_vendors_own_queue(tmp_path: Path) -> None:
    from ioasid_core.sweep import SerialEngine, SweepStore, read_results, run_sweep

    plan = plan_sweep(load_sweep(EXAMPLES / "sweeps" / "queue-depth.toml"), VENDORS)
    store = SweepStore(tmp_path / "out")
    store.check(plan, resume=False)
    assert not run_sweep(plan, store, SerialEngine()).failed
    rows = read_results(tmp_path / "out")
    assert all(r["native"] for r in rows)

    def dropped(vendor: str, scale: int, devices: int, groups: int) -> object:
        (value,) = {
            r["dropped_total"]
            for r in rows
            if (r["vendor"], r["queue_scale"], r["devices"], r["generators[0].groups"])
            == (vendor, scale, devices, groups)
        }
        return value

    # 4 devices x 40 single-request groups = 160 requests before the driver runs.
    assert dropped("vtd", 1, 4, 40) == 160 - 127  # one PRQ page, a ring keeps a slot empty
    assert dropped("vtd", 2, 4, 40) == 0  # two pages: 255 slots
    assert dropped("virtio-iommu", 1, 4, 40) == 160 - 64  # every buffer holds an event
    assert dropped("smmuv3", 1, 4, 40) == 0  # 256 event records
    assert dropped("smmuv3", 1, 4, 160) == 640 - 255
    # Each dropped request was its group's last: the hardware answered it, except AMD's and
    # VT-d's (PRO), which answer nothing they dropped (the device waits).
    silent = {r["vendor"] for r in rows if str(r["vendor"]).startswith(("amd-vi", "vtd"))}
    assert "vtd" in silent
    assert all(
        r["auto_responses"] == r["dropped.overflow"] for r in rows if r["vendor"] not in silent
    )
    assert all(r["auto_responses"] == 0 for r in rows if r["vendor"] in silent)
    assert any(r["dropped.overflow"] for r in rows if r["vendor"] == "vtd")
    assert all(r["unanswered_groups"] == 0 for r in rows)
