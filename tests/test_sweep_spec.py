"""Sweep files: checked before anything runs, each problem named with file and key path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.scenario import ScenarioError
from ioasid_core.sweep import load_sweep, plan_sweep
from ioasid_core.sweep.paths import PathError, parse_path
from ioasid_core.sweep.spec import MAX_POINTS

# tests/sweep_helpers.py: ``tests.sweep_helpers`` at run time, ``sweep_helpers`` to mypy
# (see test_iopf.py).
if TYPE_CHECKING:
    from sweep_helpers import EXAMPLES, SMALL, VENDORS, write_sweep
else:
    from tests.sweep_helpers import EXAMPLES, SMALL, VENDORS, write_sweep


def _problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = write_sweep(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        plan_sweep(load_sweep(path), VENDORS)
    assert caught.value.source == str(path)
    return [(p.key_path, p.expected) for p in caught.value.problems]


def test_key_paths_parse_into_keys_and_indices() -> None:
    assert parse_path("platform.units[0].queue_entries") == (
        "platform",
        "units",
        0,
        "queue_entries",
    )
    assert parse_path("generators[1].count") == ("generators", 1, "count")
    for bad in ("", "a..b", "a[x]", "a.b[0]", "a b"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_the_small_sweep_expands_to_every_point_seed_vendor_and_policy(tmp_path: Path) -> None:
    plan = plan_sweep(load_sweep(write_sweep(tmp_path)), VENDORS)
    assert len(plan.points) == 2 and len(plan.runs) == 16
    first = plan.runs[0]
    assert (first.point, first.seed, first.vendor, first.policy, first.native) == (
        0,
        1,
        "generic",
        LookupPolicy.GLOBAL,
        True,
    )
    # native (global for both vendors) and device: each vendor runs two policies.
    assert [(r.vendor, r.policy.value, r.native) for r in plan.runs[:4]] == [
        ("generic", "global", True),
        ("generic", "device", False),
        ("vtd", "global", True),
        ("vtd", "device", False),
    ]
    assert [r.index for r in plan.runs] == list(range(16))


def test_a_name_taken_from_the_file_name_is_printable(tmp_path: Path) -> None:
    # Without a `name` key the file's stem names the sweep (progress bar, summary, plot
    # titles): an escape sequence in it is shown escaped, never sent to the terminal.
    text = SMALL.replace('name = "small"\n', "")
    spec = load_sweep(write_sweep(tmp_path, text, name="evil\x1b[31mred\r.toml"))
    assert spec.name == "evil\\x1b[31mred\\r"
    assert load_sweep(write_sweep(tmp_path, text, name="plain.toml")).name == "plain"


def test_native_is_each_vendors_own_rule(tmp_path: Path) -> None:
    text = SMALL.replace('["generic", "vtd"]', '["smmuv3", "virtio-iommu"]').replace(
        '["native", "device"]', '["native"]'
    )
    plan = plan_sweep(load_sweep(write_sweep(tmp_path, text)), VENDORS)
    got = {(r.vendor, r.policy) for r in plan.runs}
    assert got == {
        ("smmuv3", VENDORS["smmuv3"].default_policy),
        ("virtio-iommu", VENDORS["virtio-iommu"].default_policy),
    }
    assert all(r.native for r in plan.runs)


def test_a_bundled_example_is_named_without_a_path(tmp_path: Path) -> None:
    text = 'base = "queue-depths"\n[axes]\n"generators[0].groups" = [4, 8]\n'
    spec = load_sweep(write_sweep(tmp_path, text))
    assert Path(spec.base_source).resolve() == (EXAMPLES / "queue-depths.toml").resolve()
    assert spec.seeds == (3,)  # the base's seed when the sweep names none


def test_ranges_spread_values_and_follow_the_bases_type(tmp_path: Path) -> None:
    text = (
        'base = "queue-depths"\n[axes]\n'
        '"generators[0].groups" = { log = [1, 1000], points = 4 }\n'
        '"generators[0].delay" = { linear = [0.5, 2], points = 4 }\n'
    )
    spec = load_sweep(write_sweep(tmp_path, text))
    assert spec.axes[0].values == (1, 10, 100, 1000)  # groups is an integer in the base
    assert spec.axes[1].values == (0.5, 1.0, 1.5, 2.0)
    assert spec.point_count == 16


def test_unknown_key_paths_are_named_with_what_the_base_has(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        'base = "queue-depths"\n[axes]\n"platfrom.units[0].queue_entries" = [64]\n'
        '"platform.units[3].queue_entries" = [64]\n',
    )
    assert problems[0][0] == 'axes."platfrom.units[0].queue_entries"'
    assert "no such key in the base scenario" in problems[0][1] and "platform" in problems[0][1]
    assert problems[1][0] == 'axes."platform.units[3].queue_entries"'
    assert "has 1 element(s)" in problems[1][1]


def test_a_misspelt_last_key_is_named_by_the_scenario_loader_with_the_point(
    tmp_path: Path,
) -> None:
    problems = _problems(
        tmp_path, 'base = "queue-depths"\n[axes]\n"platform.units[0].queue_entrys" = [64, 128]\n'
    )
    assert problems[0][0] == "axes"
    assert "point 0 (platform.units[0].queue_entrys=64) does not load" in problems[0][1]
    assert "platform.units[0].queue_entrys: unknown key" in problems[0][1]


def test_empty_axes_and_bad_values_are_refused(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        'base = "queue-depths"\nseeds = []\npolicies = ["gobal"]\n'
        '[axes]\n"generators[0].groups" = []\n"generators[0].delay" = [1, "x"]\n'
        '"generators[0].unit" = { log = [0, 10], points = 3 }\n',
    )
    where = dict(problems)
    assert "expected at least one seed" in where["seeds"]
    assert "got 'gobal'" in where["policies[0]"]
    assert "at least one value" in where['axes."generators[0].groups"']
    assert "one kind" in where['axes."generators[0].delay"']
    assert "positive bounds" in where['axes."generators[0].unit".log']


def test_axes_that_make_invalid_scenarios_name_each_point(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path, 'base = "queue-depths"\n[axes]\n"platform.units[0].queue_entries" = [1, 64, 0]\n'
    )
    assert [p[0] for p in problems] == ["axes", "axes"]
    assert "point 0 (platform.units[0].queue_entries=1)" in problems[0][1]
    assert "point 2 (platform.units[0].queue_entries=0)" in problems[1][1]


def test_unknown_vendors_are_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, 'base = "queue-depths"\nvendors = ["vtd", "nope"]\n')
    assert problems[0][0] == "vendors[1]" and "no vendor named 'nope'" in problems[0][1]


def test_a_linked_axis_needs_one_value_per_axis_value(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        'base = "queue-depths"\n[axes.devices]\nvalues = [1, 2]\n'
        'set."generators[0].devices" = [["acc0"]]\n',
    )
    assert problems == [
        (
            'axes."devices".set."generators[0].devices"',
            "expected 2 values (one per axis value), got 1",
        )
    ]


def test_sizes_are_bounded_before_any_point_loads(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        'base = "queue-depths"\n[axes]\n"generators[0].groups" = { linear = [1, 9999], '
        'points = 9999 }\n"generators[0].delay" = { linear = [1, 9999], points = 9999 }\n',
    )
    assert problems == [("axes", f"at most {MAX_POINTS} points, got {9999 * 9999}")]


def test_files_that_are_not_sweeps_are_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_sweep(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_sweep("/dev/zero")
    with pytest.raises(ScenarioError, match=r"line 1, column \d+: invalid TOML"):
        load_sweep(write_sweep(tmp_path, "base = \n"))
    assert _problems(tmp_path, 'base = "nope"\n')[0][0] == "base"
    assert _problems(tmp_path, 'base = "queue-depths"\nbogus = 1\n')[0][0] == "bogus"


def test_unknown_plot_metrics_are_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, 'base = "queue-depths"\nplot = ["droped_total"]\n')
    assert problems[0][0] == "plot[0]" and "no metric named 'droped_total'" in problems[0][1]


def test_a_point_with_many_problems_shows_the_first_few(tmp_path: Path) -> None:
    # Steps 1,000 µs apart run past the binds' end: each of 40 stream steps is a problem.
    problems = _problems(
        tmp_path,
        f'base = "{EXAMPLES / "churn-and-stream.toml"}"\n'
        '[axes]\n"generators[1].interval" = [1000]\n',
    )
    assert len(problems) == 4
    assert all(
        p[1].startswith("point 0 (generators[1].interval=1000) does not load: ")
        for p in problems[:3]
    )
    assert problems[3][1].startswith("point 0 (generators[1].interval=1000): ... and ")


def test_a_linked_axis_needs_values_and_a_name_no_column_has(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        'base = "queue-depths"\n[axes.devices]\nset."generators[0].groups" = [1]\n',
    )
    assert problems == [
        (
            'axes."devices".values',
            "required key is missing (expected an array: the axis's values, one per point)",
        )
    ]
    problems = _problems(
        tmp_path,
        'base = "queue-depths"\n[axes.vendor]\nvalues = [1]\nset."generators[0].groups" = [1]\n',
    )
    assert problems[0][0] == 'axes."vendor"' and "a column of the results" in problems[0][1]
