"""The ``ioasid logs`` command: exit codes, JSON shape, the table, standard input, broken
plugins, and ``--scenario`` round trips through ``ioasid compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.logs import LogFormat, LogLine, LogRecord
from ioasid_core.markers import hookimpl
from ioasid_core.scenario import load_scenario

# The helpers live in tests/logs_helpers.py: ``tests.logs_helpers`` at run time, known to
# mypy (which checks ``tests`` as top-level modules) as ``logs_helpers``.
if TYPE_CHECKING:
    from logs_helpers import REALDATA, samples
else:
    from tests.logs_helpers import REALDATA, samples

RECORD_KEYS = [
    "vendor", "kind", "line", "timestamp", "unit", "device", "source_id", "pasid", "address",
    "access", "code", "reason", "stall", "tag", "raw",
]  # fmt: skip


def _write(tmp_path: Path, lines: list[str], name: str = "log.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _json(args: list[str], stdin: str | None = None) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["logs", *args, "--json"], input=stdin)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one object: nothing before or after it
    assert isinstance(data, dict)
    return data


def test_json_is_one_object_with_every_key_of_every_record(tmp_path: Path) -> None:
    path = _write(tmp_path, samples("smmuv3-events.txt")["smmu-09-tegra-thor-evtq-overflow"])
    data = _json([str(path)])
    assert list(data) == ["records", "unrecognised", "suppressed"]
    assert data["suppressed"] == 25830
    records = data["records"]
    assert isinstance(records, list) and len(records) == 2
    assert all(list(r) == RECORD_KEYS for r in records)


def test_unrecognised_lines_are_listed_with_their_line_number(tmp_path: Path) -> None:
    lines = samples("smmuv3-events.txt")["smmu-18-bad-cd-softlockup"]
    data = _json([str(_write(tmp_path, lines))])
    assert data["unrecognised"] == [{"line": 1, "text": lines[0]}]


def test_standard_input_is_read_with_a_dash() -> None:
    lines = samples("iommu-traces.txt")["trace-01-intel-prq_report-sample"]
    data = _json(["-"], stdin="\n".join(lines) + "\n")
    assert [r["line"] for r in data["records"]] == list(range(1, 9))


def test_several_files_are_numbered_through_as_cat_would(tmp_path: Path) -> None:
    one = _write(tmp_path, ["nothing", "here"], "a.txt")
    two = _write(tmp_path, samples("smmuv3-events.txt")["smmu-15-ampereone-sidbits-bad-streamid"])
    data = _json([str(one), str(two)])
    assert [r["line"] for r in data["records"]] == [3]


def test_nothing_recognised_exits_0(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, ["just text"]))])
    assert result.exit_code == 0
    assert "0 record(s); 0 line(s) not understood; 0 record(s) lost to rate limiting" in (
        result.stdout
    )


def test_an_empty_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert _json([str(path)]) == {"records": [], "unrecognised": [], "suppressed": 0}


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_input_exits_2_naming_it(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.log"
    if kind == "directory":
        path.mkdir()
    ok = _write(tmp_path, ["x"])
    result = CliRunner().invoke(cli, ["logs", str(ok), str(path), "--json"])
    assert result.exit_code == 2
    assert str(path) in result.stderr and result.stdout == ""


def test_binary_and_overlong_input_is_read_without_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.log"
    path.write_bytes(b"\xff\xfe\x00garbage\n" + b"x" * 200_000 + b"\n" + b"DMAR: [DMA\n")
    data = _json([str(path)])
    assert data["records"] == [] and len(data["unrecognised"]) == 1


def test_table_prints_log_text_literally_never_as_markup(tmp_path: Path) -> None:
    unit = "[red]evil[/red]"
    lines = [
        line.replace("fc900000.iommu", unit)
        for line in samples("smmuv3-events.txt")["smmu-11-rk3588-epf-doorbell-sid0"]
    ]
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, lines))], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert unit in result.stdout
    assert "0xffffff90f040" in result.stdout  # whole numbers, never cut


def test_narrow_terminal_never_cuts_a_number(tmp_path: Path) -> None:
    lines = samples("smmuv3-events.txt")["smmu-24-sva-stall-ssid1-iommufd"]
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, lines))], env={"COLUMNS": "60"})
    assert result.exit_code == 0
    assert "…" not in result.stdout
    # the table does not fit: one record a paragraph, every number whole
    assert "address 0xaaaada7af000" in result.stdout and "source 0x7501" in result.stdout


def test_unknown_vendor_exits_2_with_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, ["x"])), "--vendor", "vdt"])
    assert result.exit_code == 2 and "'vdt'" in result.stderr and "vtd" in result.stderr


def test_vendor_option_reads_only_that_vendor(tmp_path: Path) -> None:
    lines = [
        *samples("smmuv3-events.txt")["smmu-15-ampereone-sidbits-bad-streamid"],
        *samples("vtd-faults.txt")["vtd-10-thinkpad-x201-calpella"],
    ]
    data = _json([str(_write(tmp_path, lines)), "--vendor", "vtd"])
    assert {r["vendor"] for r in data["records"]} == {"vtd"}


class _Broken:
    """A plugin whose parser raises on every line it is given."""

    @hookimpl
    def ioasid_log_formats(self) -> list[LogFormat]:
        class Parser:
            held_from: int | None = None

            def parse(self, line: LogLine, final: bool) -> list[LogRecord]:
                raise RuntimeError("boom")

            def expire(self, before: int) -> list[LogRecord]:
                return []

            def close(self) -> list[LogRecord]:
                return []

        return [LogFormat(vendor="broken", triggers=("DMAR",), new_parser=Parser)]


class _Raising:
    @hookimpl
    def ioasid_log_formats(self) -> list[LogFormat]:
        raise ValueError("no formats today")


@pytest.mark.parametrize("plugin", [_Broken(), _Raising()])
def test_a_broken_plugin_does_not_take_the_others_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugin: object
) -> None:
    from ioasid_core import plugins

    real = plugins.new_plugin_manager

    def with_broken(**kwargs: Any) -> plugins.PluginHost:
        host = real(**kwargs)
        host.pm.register(plugin, name="broken")
        return host

    monkeypatch.setattr(plugins, "new_plugin_manager", with_broken)
    lines = samples("vtd-faults.txt")["vtd-10-thinkpad-x201-calpella"]
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, lines)), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [r["vendor"] for r in data["records"]] == ["vtd"]
    assert "broken" in result.stderr and ("boom" in result.stderr or "no formats" in result.stderr)


# -- --scenario


def _scenario(tmp_path: Path, lines: list[str]) -> Path:
    out = tmp_path / "out.toml"
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, lines)), "--scenario", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_scenario_of_prq_report_loads_and_compare_shows_its_page_requests(tmp_path: Path) -> None:
    out = _scenario(tmp_path, samples("iommu-traces.txt")["trace-01-intel-prq_report-sample"])
    scenario = load_scenario(out)
    [device] = scenario.platform.devices
    assert (device.name, device.unit, device.source_id) == ("0000:00:0a.0", "dmar0", 0x50)
    requests = [s for s in scenario.steps if s.op == "page_requests"]
    assert len(requests) == 8 and {s.pasid for s in requests} == {"0000:00:0a.0 pasid 0x2"}
    assert [s.perm for s in requests[:2]] == [("read",), ("read", "write")]
    text = out.read_text()
    assert "# What was guessed:" in text and "PASID 0x2 in the log" in text
    json_out = tmp_path / "cmp.json"
    result = CliRunner().invoke(
        cli,
        ["compare", str(out), "--vendors", "vtd", "--policies", "global", "--json", str(json_out)],
    )
    assert result.exit_code == 0, result.output
    [run] = json.loads(json_out.read_text())["results"]
    assert run["metrics"]["page_requests"] == 8


def test_scenario_timing_follows_the_timestamps(tmp_path: Path) -> None:
    out = _scenario(tmp_path, samples("smmuv3-events.txt")["smmu-19-ssid-events-pasid-num-bits"])
    scenario = load_scenario(out)
    requests = [s for s in scenario.steps if s.op == "page_requests"]
    # two stalls 130.837807 s and 130.874834 s apart by 37027 µs; events are not replayed
    assert [s.at for s in requests] == [0.0, pytest.approx(37027.0)]
    assert "event records (not replayed" in out.read_text()


def test_scenario_with_wide_source_ids_is_renumbered_and_still_runs(tmp_path: Path) -> None:
    lines = [
        "arm-smmu-v3 u0: event 0x10 received:",
        "arm-smmu-v3 u0: 0x0012345600000010",
        "arm-smmu-v3 u0: 0x0000020000000000",
        "arm-smmu-v3 u0: 0x0000000000001000",
        "arm-smmu-v3 u0: 0x0000000000000000",
    ]
    out = _scenario(tmp_path, lines)
    [device] = load_scenario(out).platform.devices
    assert device.source_id == 1 and "0x123456 in the log" in out.read_text()
    result = CliRunner().invoke(cli, ["compare", str(out), "--policies", "device"])
    assert result.exit_code == 0, result.output


def test_scenario_with_unprintable_names_still_loads(tmp_path: Path) -> None:
    # A bell stays in a line after the reader's escape clean-up, so a unit's name can hold
    # one, and so can the output file's name: the scenario names them escaped (the loader
    # refuses names that are not printable), and compare reads the file.
    lines = [
        "arm-smmu-v3 u\x070: event 0x10 received:",
        "arm-smmu-v3 u\x070: 0x0000010000000010",
        "arm-smmu-v3 u\x070: 0x0000000000000000",
        "arm-smmu-v3 u\x070: 0x0000000000001000",
        "arm-smmu-v3 u\x070: 0x0000000000000000",
    ]
    out = tmp_path / "odd\x1b[31m.toml"
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, lines)), "--scenario", str(out)])
    assert result.exit_code == 0, result.output
    scenario = load_scenario(out)
    assert scenario.name == "odd\\x1b[31m"
    assert [u.name for u in scenario.platform.units] == ["u\\x070"]
    result = CliRunner().invoke(cli, ["compare", str(out), "--policies", "device"])
    assert result.exit_code == 0, result.output


def test_scenario_to_a_missing_folder_exits_2_before_reading(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["logs", str(_write(tmp_path, ["x"])), "--scenario", str(tmp_path / "no" / "x.toml")]
    )
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_scenario_over_a_log_being_read_is_refused_and_the_log_kept(tmp_path: Path) -> None:
    log = _write(tmp_path, ["x"])
    before = log.read_bytes()
    for target in (log, tmp_path / "." / log.name):
        result = CliRunner().invoke(cli, ["logs", str(log), "--scenario", str(target)])
        assert result.exit_code == 2
        assert f"--scenario {str(target)!r}: is the same file as FILE" in result.stderr
    assert log.read_bytes() == before


@pytest.mark.parametrize("file", sorted(p.name for p in REALDATA.glob("*.txt")))
def test_every_sample_file_scenario_loads(tmp_path: Path, file: str) -> None:
    lines = [line for sample in samples(file).values() for line in sample]
    load_scenario(_scenario(tmp_path, lines))
