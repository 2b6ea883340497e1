"""User text reaches the terminal as written and harmless, through every entry point: rich
markup (``[bold]``, ``[/]``, ``[link=...]``) shown literally, and control characters (an
escape sequence, a hyperlink, a newline, a bidi override) shown escaped (``\\x1b``), never
sent raw to a terminal that would run them.

click strips escape sequences from what it echoes when the output is not a terminal, which
would hide the fault in a test: every invocation here passes ``color=True``, as on a
terminal.
"""

from __future__ import annotations

import importlib.metadata
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from rich.console import Console

from ioasid_core.cli import cli
from ioasid_core.dump_table import DumpSummary, print_dump
from ioasid_core.markers import ENTRY_POINT_GROUP
from ioasid_core.metrics import Metrics
from ioasid_core.prq import GenericPrq, LookupPolicy, PageRequest, Perm
from ioasid_core.replay import RunResult
from ioasid_core.report import render_table

# tests/plugin_fakes.py: ``tests.plugin_fakes`` at run time, ``plugin_fakes`` to mypy.
if TYPE_CHECKING:
    from plugin_fakes import FakeEntryPoint, VendorEntryPoint
else:
    from tests.plugin_fakes import FakeEntryPoint, VendorEntryPoint

EXAMPLE = Path(__file__).parent.parent / "examples" / "null-set-search.toml"
REALDATA = Path(__file__).parent / "data" / "realdata"

ESC = "\x1b[31m"
SHOWN = "\\x1b[31m"
OSC_LINK = "\x1b]8;;http://example.com\x1b\\"
MARKUP = "[bold]x[/] [link=http://example.com]y[/link]"
OSC_LOG = "\x1b]8;;http://osc.example\x1b\\"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "100"}).invoke(cli, list(args), color=True)
    return result.exit_code, result.stdout, result.stderr


def harmless(text: str) -> bool:
    """No escape character, no other control character but newlines, no bidi override."""
    return all(c == "\n" or c.isprintable() for c in text)


def test_a_scenario_key_with_an_escape_sequence_is_named_escaped(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(EXAMPLE.read_text() + '\n"\\u001b[31mred\\nfake line" = 1\n')
    code, stdout, stderr = invoke("run", str(path))
    assert code == 2 and stdout == ""
    assert harmless(stderr), repr(stderr)
    assert f"{SHOWN}red\\nfake line: unknown key" in stderr
    assert len(stderr.splitlines()) == 1  # the key's newline does not fake a second line


@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_scenario_path_with_an_escape_sequence_is_named_escaped(
    command: str, tmp_path: Path
) -> None:
    path = tmp_path / f"no{ESC}such.toml"
    code, _, stderr = invoke(command, str(path))
    assert code == 2 and harmless(stderr), repr(stderr)
    assert f"no{SHOWN}such.toml: no such file" in stderr


def test_a_dump_path_with_an_escape_sequence_is_named_escaped(tmp_path: Path) -> None:
    codec = GenericPrq()
    path = tmp_path / f"odd{ESC}.bin"
    entry = codec.encode_request(PageRequest(0x100, 0x2A, True, 3, True, Perm.READ, 0x1000))
    path.write_bytes(entry + b"\x00")  # a byte over: malformed, named with the file
    code, stdout, stderr = invoke("decode", "generic", str(path))
    assert code == 2 and harmless(stderr) and harmless(stdout), repr(stderr)
    assert f"odd{SHOWN}.bin: {len(entry) + 1} bytes is not a whole number" in stderr


def hostile_log(tmp_path: Path) -> Path:
    """A real AMD-Vi fault, then the same with an escape sequence, markup and a hyperlink in
    it (not understood: shown as written), then a record whose device field is markup."""
    real = "[  262.094625] amdgpu 0000:03:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0010 address=0x64a7f000 flags=0x0000]"  # noqa: E501
    odd = real.replace("domain=0x0010", f"domain=0xZZ{ESC} {MARKUP} {OSC_LOG}\x07\x0e\x1b")
    path = tmp_path / "hostile.log"
    path.write_text(f"{real}\n{odd}\n")
    return path


@pytest.mark.parametrize("columns", ["100", "300"])
def test_log_lines_are_shown_as_written_and_escaped(tmp_path: Path, columns: str) -> None:
    result = CliRunner(env={"COLUMNS": columns}).invoke(
        cli, ["logs", str(hostile_log(tmp_path))], color=True
    )
    assert result.exit_code == 0, result.output
    stdout = result.stdout
    assert harmless(stdout), repr(stdout)
    flat = "".join(line.strip(" │┃") for line in stdout.splitlines())  # table cells joined
    assert MARKUP.replace(" ", "") in flat.replace(" ", "")
    # The reader takes whole escape sequences off (CSI colours, OSC 8 hyperlinks) and a
    # lone ESC; what it leaves is escaped here: a bell (rich drops it), a shift-out (it
    # switches the terminal's charset). Nothing reaches the terminal raw.
    assert "osc.example" not in flat or "\\x1b]8;;http://osc.example" in flat
    assert "\\x07\\x0e" in flat.replace(" ", "")


def test_logs_scenario_path_is_named_escaped(tmp_path: Path) -> None:
    out = tmp_path / f"s{ESC}.toml"
    code, _, stderr = invoke("logs", str(REALDATA / "vtd-faults.txt"), "--scenario", str(out))
    assert code == 0 and out.exists()
    assert harmless(stderr) and f"s{SHOWN}.toml" in stderr.replace("\n", "")


def run_result(vendor: str, errors: list[str]) -> RunResult:
    metrics = Metrics(page_requests=3, step_errors=errors)
    return RunResult("s", vendor, LookupPolicy.GLOBAL, 1, metrics, native=True)


def test_report_tables_show_vendor_names_and_step_errors_as_written_and_escaped() -> None:
    vendor = f"{MARKUP}{ESC}"
    error = f"steps[3].device: no device named '{ESC}dsa0'\nsteps[4]: a fake line"
    shown = render_table(f"n{ESC}[x]", [run_result(vendor, [error])], width=200)
    assert harmless(shown), repr(shown)
    assert f"scenario: n{SHOWN}[x]" in shown
    assert f"{MARKUP}{SHOWN}" in shown.replace("\n", "")
    assert f"no device named '{SHOWN}dsa0'\\nsteps[4]: a fake line" in shown


def test_a_decoders_unhandled_event_is_shown_as_written_and_escaped() -> None:
    summary = DumpSummary(unhandled=1)
    summary.first_unhandled.append(
        {"offset": 0x40, "kind": f"{MARKUP}", "description": f"bad {ESC}event{OSC_LINK}"}
    )
    out = io.StringIO()
    print_dump(Console(file=out, width=200), f"v{ESC}", summary)
    shown = out.getvalue()
    assert harmless(shown), repr(shown)
    assert MARKUP in shown and f"bad {SHOWN}event\\x1b]8;;http://example.com" in shown
    assert f"v{SHOWN}: 1 unhandled event(s)" in shown


def test_plugins_listing_shows_what_a_plugin_says_escaped(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IOASID_BLOCK_PLUGINS", raising=False)
    install(
        importlib.metadata.EntryPoint(
            name=f"evil{ESC}", value="ioasid_no_such_vendor_x.plugin", group=ENTRY_POINT_GROUP
        )
    )
    code, stdout, stderr = invoke("plugins")
    assert code == 0, stderr
    assert harmless(stdout), repr(stdout)
    assert f"evil{SHOWN}" in stdout and "failed to load:" in stdout


def test_bench_shows_a_plugins_figure_name_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    from ioasid_core import cli as cli_module
    from ioasid_core.figures import BenchmarkFigure
    from ioasid_core.markers import hookimpl
    from ioasid_core.plugins import PluginHost, new_plugin_manager

    class FigurePlugin:
        @hookimpl
        def ioasid_benchmarks(self) -> list[BenchmarkFigure]:
            return [BenchmarkFigure(f"acme{ESC}", 2.0, lambda quick: 1.0)]

    def host(**kwargs: object) -> PluginHost:
        made = new_plugin_manager(load_entry_points=False)
        made.pm.register(FigurePlugin(), name="acme")
        return made

    monkeypatch.setattr(cli_module, "new_plugin_manager", host)
    monkeypatch.setattr("ioasid_core.bench.run_bench", lambda **kw: _bench_only(kw))
    code, stdout, _ = invoke("bench", "--quick")
    assert code == 0 and harmless(stdout), repr(stdout)
    assert f"acme{SHOWN}" in stdout


def _bench_only(kwargs: dict[str, object]) -> tuple[dict[str, float], dict[str, float]]:
    """The plugins' figures alone (the core's take a minute)."""
    extra = kwargs["extra"]
    assert isinstance(extra, list)
    return {f.name: f.run(True) for f in extra}, {f.name: f.limit for f in extra}


def test_new_plugin_names_its_folder_escaped(tmp_path: Path) -> None:
    folder = tmp_path / f"p{ESC} dir"
    code, stdout, stderr = invoke("new-plugin", "acme", "--dir", str(folder))
    assert code == 0, stderr
    assert harmless(stdout), repr(stdout)
    assert f"wrote {tmp_path}/p{SHOWN} dir/" in stdout
    # The install line is quoted for the shell: the space does not split the path.
    assert f"uv pip install -e '{tmp_path.resolve()}/p{SHOWN} dir'" in stdout
    code, _, stderr = invoke("new-plugin", "acme", "--dir", str(folder))
    assert code == 2 and harmless(stderr) and f"p{SHOWN} dir: exists already" in stderr


def test_a_sweep_path_is_named_escaped(tmp_path: Path) -> None:
    code, _, stderr = invoke("sweep", str(tmp_path / f"s{ESC}.toml"), "--out", str(tmp_path / "o"))
    assert code == 2 and harmless(stderr), repr(stderr)
    assert f"s{SHOWN}.toml: no such file" in stderr


@pytest.mark.parametrize(
    "args",
    [
        ["logs", str(REALDATA / "vtd-faults.txt")],
        ["compare", str(EXAMPLE), "--vendors", "generic"],
        ["plugins"],
    ],
    ids=lambda args: args[0],
)
def test_a_plugin_that_fails_to_load_is_named_escaped_on_one_line(
    args: list[str], install: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    install(FakeEntryPoint("evil", RuntimeError(f"boom {ESC}red\nfake line")))
    code, stdout, stderr = invoke(*args)
    assert code in (0, 1), stderr
    # The loader's warning ("skipping ioasid plugin ...": the only word of it under `logs`,
    # through logging's last-resort handler) carried the exception raw.
    said = [stdout, stderr, *caplog.messages]
    assert all(harmless(text) for text in said), said
    shown = f"RuntimeError: boom {SHOWN}red\\nfake line"
    assert any(shown in line for text in said for line in text.splitlines()), said


def test_a_vendor_named_with_control_characters_is_left_out_and_named_escaped(
    install: Callable[..., None],
) -> None:
    # Its name would reach the terminal raw in CSV (`compare --csv -`), which is data and
    # is not escaped: the name is refused where the vendor is checked, with the others run.
    class Evil(GenericPrq):
        name = f"evil{ESC}"

    install(VendorEntryPoint("evil", Evil()))
    code, stdout, stderr = invoke("compare", str(EXAMPLE), "--policies", "native", "--csv", "-")
    assert code == 1  # a plugin's problem: the others ran
    assert harmless(stdout) and harmless(stderr), repr(stderr)
    assert "evil" not in stdout and "generic,global,True" in stdout
    assert f"name 'evil{SHOWN}' has characters that are not printable" in stderr
