"""What every table prints is true on narrow and odd terminals: at 20, 40, 60, 80 columns,
piped, on a real terminal (a pty) with ``TERM=dumb`` and ``NO_COLOR``, every number and ID
of the data appears whole (never cut with "…", never split over two lines); a rounded
latency stays within 5 % of its value and is never 0 when the value is not; bench figures
and limits are shown as the check compared them."""

from __future__ import annotations

import fcntl
import json
import math
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.cli import bench_table, cli
from ioasid_core.prq import GenericPrq, PageRequest, Perm
from ioasid_core.report import TABLE_COLUMNS, _fit

REALDATA = Path(__file__).parent / "data" / "realdata"
WIDTHS = [20, 40, 60, 80]
IOASID = [sys.executable, "-c", "from ioasid_core.cli import main; main()"]


def invoke(*args: str, columns: int) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(cli, list(args))
    return result.exit_code, result.stdout


def tokens(text: str) -> set[str]:
    """Every run of hex digits, ``x`` and ``:``/``.`` in ``text``: a number or an ID cut or
    split over two lines is not one of them."""
    return {word.rstrip(":,.") for word in re.findall(r"[0-9A-Za-z:.,]+", text)}


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Requests with the widest values the generic codec carries (device, PASID, group,
    address): every cell at its widest."""
    codec = GenericPrq()
    requests = [
        PageRequest(0xFFFF, 0xFFFFF, True, 0x1FF, True, Perm.READ | Perm.WRITE, 0xFFFFFFFFFFFFF000),
        PageRequest(0x1, 0x2A, True, 3, False, Perm.READ, 0x1000),
        PageRequest(0x101, 0, False, 4, True, Perm.NONE, 0),
    ]
    path = tmp_path_factory.mktemp("dump") / "prq.bin"
    path.write_bytes(b"".join(codec.encode_request(r) for r in requests * 30))
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_decode_shows_every_offset_device_pasid_and_address_whole(dump: Path, width: int) -> None:
    code, as_json = invoke("decode", "generic", str(dump), "--json", columns=80)
    assert code == 0
    code, table = invoke("decode", "generic", str(dump), columns=width)
    assert code == 0 and "…" not in table
    assert all(len(line) <= width for line in table.splitlines()), table  # none wraps
    shown = tokens(table)
    for entry in json.loads(as_json)["entries"]:
        for key in ("offset", "device", "pasid", "addr"):
            if entry[key] is not None:
                assert f"{entry[key]:#x}" in shown, (width, key, entry)
        assert str(entry["grpid"]) in shown


@pytest.mark.parametrize("width", WIDTHS)
def test_decode_shows_unhandled_events_whole(tmp_path: Path, width: int) -> None:
    """SMMUv3 event records that are not page requests (their descriptions name a SID)."""
    records = []
    for n, code in enumerate((0x01, 0x03, 0x05, 0x10, 0x11, 0x12) * 5):
        record = bytearray(32)
        record[0] = code
        record[4:8] = (0x9E289761 + n).to_bytes(4, "little")  # the StreamID
        record[8:16] = (0x7CE42C8218072E8C - n).to_bytes(8, "little")
        records.append(bytes(record))
    path = tmp_path / "evtq.bin"
    path.write_bytes(b"".join(records))
    code, as_json = invoke("decode", "smmuv3", str(path), "--json", columns=80)
    unhandled = json.loads(as_json)["unhandled"]
    assert len(unhandled) == len(records)
    code, table = invoke("decode", "smmuv3", str(path), columns=width)
    assert "…" not in table
    assert all(len(line) <= width for line in table.splitlines()), table
    shown = tokens(table)
    for event in unhandled:
        assert f"{event['offset']:#x}" in shown
        for number in re.findall(r"0x[0-9a-f]+", event["description"]):
            assert number in shown, (width, number, event)


@pytest.mark.parametrize("width", [*WIDTHS, 120, 160, 200])
def test_logs_show_every_line_number_and_address_whole(tmp_path: Path, width: int) -> None:
    # Lines not understood, numbered past 1000: at 20 columns the table folded "1002" into
    # "100" over "2". Now a terminal too narrow for the table gets one line a paragraph.
    text = "".join(p.read_text() for p in sorted(REALDATA.glob("*.txt")))
    odd = "[  1.000000] AMD-Vi: Event logged [IO_PAGE_FAULT domain=0xZZ address=0x1000]\n"
    path = tmp_path / "log.txt"
    path.write_text(text + "filler\n" * 1000 + odd * 3)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["logs", "--json", str(path)])
    report = json.loads(result.stdout)
    code, table = invoke("logs", str(path), columns=width)
    assert code == 0 and "…" not in table
    shown = tokens(table)
    assert len(report["unrecognised"]) >= 3
    for item in report["unrecognised"]:
        assert str(item["line"]) in shown, (width, item)
    for record in report["records"]:
        assert str(record["line"]) in shown
        for key in ("source_id", "pasid", "address"):
            if record[key] is not None:
                assert f"{record[key]:#x}" in shown, (width, key, record)


def in_a_terminal(args: list[str], columns: int, env: dict[str, str]) -> bytes:
    """What ``ioasid ARGS`` writes to a real terminal ``columns`` wide (no $COLUMNS)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    with subprocess.Popen(
        [*IOASID, *args], stdin=follower, stdout=follower, stderr=follower, env={**environ, **env}
    ) as process:
        os.close(follower)
        out = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            out += chunk
        assert process.wait(timeout=120) == 0
    os.close(leader)
    return out


@pytest.mark.parametrize(
    "env", [{"TERM": "dumb"}, {"NO_COLOR": "1", "TERM": "xterm"}], ids=["dumb", "no-color"]
)
def test_a_narrow_real_terminal_gets_every_count_whole_and_dumb_gets_no_escapes(
    env: dict[str, str],
) -> None:
    args = ["compare", "null-set-search", "--vendors", "vtd,smmuv3", "--policies", "native"]
    result = CliRunner().invoke(cli, [*args, "--json", "-"])
    runs = json.loads(result.stdout)["results"]
    shown = in_a_terminal(args, 20, env).decode()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r", "")
    cells: dict[str, dict[str, str]] = {}  # vendor -> label -> cell, over every table or list
    if env.get("TERM") == "dumb":
        # rich lays a dumb terminal out at 80 columns whatever its size: tables, no escapes.
        assert "\x1b[" not in shown.split("scenario:", 1)[1]  # no colour, no bold
        headers: list[str] = []
        for line in plain.splitlines():
            words = line.split()
            if words[:2] == ["vendor", "policy"]:
                headers = words
            elif headers and words[:1] in (["vtd"], ["smmuv3"]) and len(words) == len(headers):
                cells.setdefault(words[0], {}).update(zip(headers, words, strict=True))
    else:
        # 20 columns are too few for a table of one metric: one metric a line, and no line
        # the terminal would wrap (in the middle of a number).
        report = plain[plain.index("scenario:") :]  # the progress bar before it is gone
        assert all(len(line) <= 20 for line in report.splitlines()), report
        vendor = ""
        for line in plain.splitlines():
            words = line.split()
            if words[:1] in (["vtd"], ["smmuv3"]):
                vendor = words[0]
            elif vendor and line.startswith("  ") and len(words) == 2:
                cells.setdefault(vendor, {})[words[0]] = words[1]
    assert set(cells) == {"vtd", "smmuv3"}, plain
    for run in runs:
        metrics, row = run["metrics"], cells[run["vendor"]]
        assert row["req"] == str(metrics["page_requests"])
        assert row["inval"] == str(metrics["responses"]["invalid"])
        assert row["cross"] == str(metrics["cross_owner_hits"])
        assert row["type"] == str(metrics["type_confusions"])


@given(st.floats(min_value=0, max_value=1e16, allow_nan=False))
def test_a_latency_is_shown_in_four_characters_within_5_percent_never_0_when_not_0(
    value: float,
) -> None:
    shown = _fit(value)
    assert len(shown) <= 4, shown
    if value == 0:
        assert shown == "0"
        return
    if value < 0.01:
        assert shown == "<.01"
        return
    match = re.fullmatch(r"(\d*\.?\d+)([kMGTP]?)", shown)
    assert match, shown
    back = float(match[1]) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}[match[2]]
    assert abs(back - value) <= 0.05 * value, (value, shown)


def test_the_latencies_that_were_shown_untrue() -> None:
    assert _fit(0.0004) == "<.01"  # was "0"
    assert _fit(4504.8) == "4.5k"  # was "5k", 11 % off
    assert _fit(0.14) == ".14"  # was "0.1", 29 % off
    assert _fit(349.6) == "350" and _fit(12_345) == "12k" and _fit(0) == "0"
    assert _fit(999.6e12) == "1P" and _fit(1e15) == "1P"  # was "1.0e+15", 7 characters
    # The caption says what every suffix a cell can carry stands for (it said k and M only).
    [p99] = [column for column in TABLE_COLUMNS if column.label == "p99"]
    for value, suffix in ((2e3, "k"), (2e6, "M"), (2e9, "G"), (2e12, "T"), (2e15, "P")):
        assert _fit(value) == "2" + suffix and f"{suffix}: 10^" in p99.what


def test_bench_lines_say_what_the_check_compared() -> None:
    figures = {"tiny_ratio": 0.0004, "plugin_ratio": 1.2504, "broken_ratio": math.nan}
    limits = {"tiny_ratio": 1.0, "plugin_ratio": 1.25, "broken_ratio": 2.0}
    over = [name for name in figures if not figures[name] <= limits[name]]
    lines = dict(line.split(maxsplit=1) for line in bench_table(figures, limits, over).splitlines())
    assert lines["tiny_ratio"].split() == ["0.0004", "limit", "1.0", "ok"]  # not 0.000
    assert lines["plugin_ratio"].split() == ["1.250", "limit", "1.25", "OVER"]  # not limit 1.2
    assert lines["broken_ratio"].split() == ["nan", "limit", "2.0", "OVER"]  # a nan is not ok


def test_bench_calls_a_nan_figure_over_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "ioasid_core.bench.run_bench", lambda **kw: ({"acme_ratio": math.nan}, {"acme_ratio": 2.0})
    )
    result = CliRunner().invoke(cli, ["bench", "--quick", "--check"])
    assert result.exit_code == 1
    assert result.stdout.split()[:5] == ["acme_ratio", "nan", "limit", "2.0", "OVER"]
    result = CliRunner().invoke(cli, ["bench", "--quick", "--json"])
    assert json.loads(result.stdout)["acme_ratio"] is None  # JSON has no nan


def test_a_plugins_figure_that_raises_or_is_not_a_number_is_named_and_the_rest_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ioasid_core import cli as cli_module
    from ioasid_core.figures import BenchmarkFigure
    from ioasid_core.markers import hookimpl
    from ioasid_core.plugins import PluginHost, new_plugin_manager

    def boom(quick: bool) -> float:
        raise RuntimeError("\x1b[31mboom")

    class FigurePlugin:
        @hookimpl
        def ioasid_benchmarks(self) -> list[BenchmarkFigure]:
            return [
                BenchmarkFigure("raises_ratio", 2.0, boom),
                BenchmarkFigure("word_ratio", 2.0, lambda quick: "fast"),  # type: ignore[arg-type,return-value]
                BenchmarkFigure("limitless_ratio", "x", lambda quick: 1.0),  # type: ignore[arg-type]
                BenchmarkFigure("fine_ratio", 2.0, lambda quick: 1.5),
            ]

    def host(**kwargs: object) -> PluginHost:
        made = new_plugin_manager(load_entry_points=False)
        made.pm.register(FigurePlugin(), name="acme")
        return made

    def plugins_only(**kwargs: object) -> tuple[dict[str, float], dict[str, float]]:
        extra = kwargs["extra"]
        assert isinstance(extra, list)
        return {f.name: round(f.run(True), 3) for f in extra}, {f.name: f.limit for f in extra}

    monkeypatch.setattr(cli_module, "new_plugin_manager", host)
    monkeypatch.setattr("ioasid_core.bench.run_bench", plugins_only)
    result = CliRunner().invoke(cli, ["bench", "--quick"])
    assert result.exit_code == 1  # a plugin failed: not a traceback, not 0
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert lines["fine_ratio"] == ["1.500", "limit", "2.0", "ok"]
    assert lines["raises_ratio"][-1] == lines["word_ratio"][-1] == "OVER"
    assert "benchmark figure 'raises_ratio' failed: RuntimeError: \\x1b[31mboom" in result.stderr
    assert "benchmark figure 'word_ratio' returned 'fast', not a number" in result.stderr
    assert "benchmark figure 'limitless_ratio': its limit 'x' is not a number" in result.stderr


@pytest.mark.parametrize("columns", [20, 40, 100])
def test_the_sweep_progress_left_on_screen_keeps_its_count_whole(
    tmp_path: Path, columns: int
) -> None:
    # At 20 columns the progress bar that stays on the screen read "sweep tiny-sweep… …":
    # its count cut to nothing.
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(
        'name = "tiny-sweep-with-a-rather-long-name"\nbase = "null-set-search"\n'
        'vendors = ["generic"]\npolicies = ["native"]\nseeds = [1]\n'
        '[axes.depth]\nvalues = [64, 128]\nset."platform.units[0].queue_entries" = [64, 128]\n'
    )
    args = ["sweep", str(sweep), "--out", str(tmp_path / "out"), "--jobs", "1"]
    shown = in_a_terminal(args, columns, {"TERM": "xterm"}).decode()
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    assert "…" not in plain
    assert "2/2" in plain and "0/2" in plain
    took = re.search(r"2 run now on this process in (\S+) s;", plain.replace("\r\n", " "))
    assert took and float(took[1]) > 0, plain  # a short sweep read "in 0.0 s"


def test_plugins_on_a_narrow_terminal_are_listed_one_a_block_with_every_version_whole() -> None:
    # The table (about 110 columns) was printed as is: the terminal wrapped it anywhere.
    table = CliRunner().invoke(cli, ["plugins"]).stdout.splitlines()  # a pipe: the table
    assert table[0].split()[:3] == ["NAME", "DISTRIBUTION", "VERSION"]
    rows = [line.split()[:3] for line in table[1:] if line and not line.startswith(" ")]
    shown = in_a_terminal(["plugins"], 40, {"TERM": "xterm"}).decode().replace("\r", "")
    lines = shown.splitlines()
    for name, distribution, version in rows:
        block = lines[lines.index(name) : lines.index(name) + 5]
        assert block[1].split() == ["distribution", distribution], block
        assert block[2].split() == ["version", version], block
    assert all(len(line) <= 40 for line in lines if not line.startswith("  description")), shown


def test_the_demo_on_a_narrow_terminal_breaks_lines_only_between_words() -> None:
    piped = CliRunner().invoke(cli, ["demo"]).stdout  # a pipe: one step a line, as before
    shown = in_a_terminal(["demo"], 40, {"TERM": "xterm"}).decode().replace("\r", "")
    assert all(len(line) <= 40 for line in shown.splitlines()), shown
    assert sorted(piped.split()) == sorted(shown.split())  # every word whole, none lost


def test_bench_lines_wider_than_the_terminal_become_two_lines() -> None:
    figures, limits = (
        {"pair_ratio_1m_vs_1k_scattered": 1.512},
        {"pair_ratio_1m_vs_1k_scattered": 1.5},
    )
    wide = bench_table(figures, limits, ["pair_ratio_1m_vs_1k_scattered"])
    assert wide.split() == ["pair_ratio_1m_vs_1k_scattered", "1.512", "limit", "1.5", "OVER"]
    narrow = bench_table(figures, limits, ["pair_ratio_1m_vs_1k_scattered"], width=40)
    assert narrow.splitlines() == ["pair_ratio_1m_vs_1k_scattered", "  1.512  limit 1.5  OVER"]


def test_without_colour_the_caption_still_says_which_columns_are_the_red_ones() -> None:
    code, shown = invoke("run", "null-set-search", columns=200)  # a pipe: no colour
    assert code == 0 and "\x1b[" not in shown
    assert "(cross, type not 0, in red: the handler was handed what it must not touch)" in (
        " ".join(shown.split())
    )
