"""Input that cannot run away: file sizes, TOML nesting, queue depths and the total work a
file may ask for are bounded before anything runs, each with a clear message and status 2;
a long run reports progress from inside."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.compare import available_vendors, compare
from ioasid_core.prq import GenericPrq, LookupPolicy
from ioasid_core.replay import scenario_work
from ioasid_core.scenario import load_scenario, parse_scenario
from ioasid_core.scenario.load import MAX_SCENARIO_BYTES, MAX_WORK
from ioasid_core.workload import mixed_workload_toml

EXAMPLES = Path(__file__).parent.parent / "examples"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_scenario_that_never_ends_is_read_only_up_to_the_bound() -> None:
    code, stdout, stderr = invoke("compare", "/dev/zero")
    assert code == 2 and stdout == ""
    assert stderr == (
        "ioasid: /dev/zero: not a regular file, and more than the 33,554,432 bytes a "
        "scenario file may have\n"
    )


def test_a_scenario_file_over_the_bound_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    with open(path, "wb") as file:
        file.truncate(MAX_SCENARIO_BYTES + 1)  # sparse: no disk used
    code, _, stderr = invoke("compare", str(path))
    assert code == 2
    assert stderr == (
        f"ioasid: {path}: 33,554,433 bytes, more than the 33,554,432 a scenario file may have\n"
    )


def test_toml_nested_too_deeply_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text('name = "x"\nv = ' + "[" * 10_000 + "]" * 10_000 + "\n")
    code, _, stderr = invoke("compare", str(path))
    assert code == 2
    assert stderr == f"ioasid: {path}: invalid TOML: arrays or tables nested too deeply\n"


def unit_file(tmp_path: Path, entries: int, extra: str = "") -> str:
    path = tmp_path / "q.toml"
    path.write_text(
        f'name = "q"\n[platform]\nunits = [{{ name = "u", queue_entries = {entries:#x} }}]\n'
        + extra
    )
    return str(path)


def test_a_queue_deeper_than_any_hardware_is_a_key_path_error(tmp_path: Path) -> None:
    code, _, stderr = invoke("compare", unit_file(tmp_path, 0x80000000))
    assert code == 2
    assert stderr.endswith(
        "platform.units[0].queue_entries: expected an integer in 2..0x80000, "
        "got 2147483648 (0x80000000)\n"
    )


def test_a_queue_deeper_than_a_vendors_hardware_is_named_for_that_vendor(tmp_path: Path) -> None:
    path = unit_file(tmp_path, 0x20000)
    code, _, stderr = invoke("compare", path)
    assert code == 2
    lines = stderr.splitlines()
    assert lines[0] == (
        f"ioasid: {path}: platform.units[0].queue_entries: vendor 'vtd' hardware queues hold "
        "at most 16384 entries, got 131072 (a [vendor.vtd] section can size its queue)"
    )
    assert any("vendor 'virtio-iommu'" in line for line in lines)
    assert not any("smmuv3" in line for line in lines)  # 2^17 <= 2^19
    assert invoke("compare", path, "--vendors", "generic,smmuv3")[0] == 0
    # A vendor section sizing the queue is what the hardware has: fine.
    sized = unit_file(tmp_path, 0x20000, "[vendor.vtd]\nprq_order = 0\n")
    assert invoke("compare", sized, "--vendors", "vtd")[0] == 0


def test_a_stream_asking_for_billions_of_requests_is_stopped_at_load(tmp_path: Path) -> None:
    text = (EXAMPLES / "churn-and-stream.toml").read_text()
    text = text.replace("count = 40 ", "count = 0x10000 ").replace(
        "group_size = [1, 4]", "group_size = [1, 0x10000]"
    )
    path = tmp_path / "huge.toml"
    path.write_text(text)
    code, stdout, stderr = invoke("compare", str(path))
    assert code == 2 and stdout == ""
    assert stderr.startswith(f"ioasid: {path}: generators[1]: the file asks for ")
    assert stderr.endswith(
        "events (steps and page requests) per run by here, more than the 33,554,432 a run "
        "may do (see docs/scenarios.md)\n"
    )


def test_written_steps_over_the_bound_are_stopped_too(tmp_path: Path) -> None:
    step = '[[steps]]\nop = "page_requests"\ndevice = "a"\npasid = 1\ngroups = 0x10000\n'
    path = tmp_path / "many.toml"
    path.write_text(
        'name = "m"\n[platform]\nunits = [{ name = "u" }]\n'
        'devices = [{ name = "a", unit = "u", source_id = 1, owner = "p" }]\n'
        'address_spaces = [{ name = "p" }]\n' + step * (MAX_WORK // 0x10001 + 1)
    )
    code, _, stderr = invoke("compare", str(path))
    assert code == 2
    # 2^25 = 33,554,432 over 0x10001 = 65,537 events a step: 511.99, so 512 steps are over.
    assert f"{path}: steps: the file asks for 33,554,944 events" in stderr
    path.write_text(path.read_text().replace(step, "", 1))  # one step fewer: allowed
    assert scenario_work(load_scenario(path)) == 511 * 0x10001 <= MAX_WORK


def test_ten_million_steps_of_the_mixed_workload_fit_in_one_file() -> None:
    # docs/scale.md replays 10^7 steps in one file (measured, minutes): its events per step
    # are the same in every lane, so 10^5 steps say what 10^7 ask for.
    scenario = parse_scenario(tomllib.loads(mixed_workload_toml(100_000)), "<m>")
    per_step = scenario_work(scenario) / len(scenario.steps)
    assert 2.2 < per_step < 2.4  # 23,000,042 events for 10,000,612 steps, measured
    assert per_step * 10_000_612 < 0.75 * MAX_WORK  # room to spare: 2^25 = 33,554,432


def test_a_long_run_reports_its_progress_from_inside() -> None:
    scenario = load_scenario(EXAMPLES / "prq-storm.toml")
    told: list[int] = []
    runs: list[str] = []
    import ioasid_core.replay as replay_module

    every = 8
    original = replay_module._PROGRESS_EVERY
    replay_module._PROGRESS_EVERY = every  # type: ignore[misc]
    try:
        compare(
            scenario,
            [GenericPrq()],
            [LookupPolicy.GLOBAL, LookupPolicy.DEVICE],
            progress=lambda r: runs.append(r.policy.value),
            events=told.append,
        )
    finally:
        replay_module._PROGRESS_EVERY = original  # type: ignore[misc]
    work = scenario_work(scenario)
    assert sum(told) == 2 * work and len(runs) == 2
    assert len(told) > 2 * 2  # several times within each run, not once at its end
    assert all(n >= every for n in told[:-1] if n)


def test_every_example_is_well_within_the_bound() -> None:
    vendors = available_vendors(None)
    for path in EXAMPLES.glob("*.toml"):
        scenario = load_scenario(path)
        assert scenario_work(scenario) < MAX_WORK // 100, path
    assert vendors


def test_a_regular_file_is_checked_by_its_size_before_reading(tmp_path: Path) -> None:
    from ioasid_core.scenario.load import InputTooLarge, read_bounded

    path = tmp_path / "f"
    path.write_bytes(b"x" * 11)
    with open(path, "rb") as file, pytest.raises(InputTooLarge, match="11 bytes, more than"):
        read_bounded(file, 10, "a dump")
    with open(path, "rb") as file:
        assert read_bounded(file, 11, "a dump") == b"x" * 11
    read, write = os.pipe()
    os.write(write, b"y" * 11)
    os.close(write)
    with os.fdopen(read, "rb") as file, pytest.raises(InputTooLarge, match="not a regular file"):
        read_bounded(file, 10, "a dump")
