"""The command line's edges: outputs that cannot be written, a reader that goes away, empty
lists, plot names checked before any run. Run as a real process where the edge is one."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "null-set-search.toml")
IOASID = [sys.executable, "-c", "from ioasid_core.cli import main; main()"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_closed_pipe_is_status_141_not_a_plugin_failure_and_no_traceback(
    tmp_path: Path,
) -> None:
    out = tmp_path / "r.json"
    # The reader is gone before the first line (`| head -0`): its end is closed before the
    # command starts, not raced against the command's first write.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*IOASID, "compare", EXAMPLE, "--json", str(out)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == b""  # no traceback, no message
    assert out.read_text().startswith("{")  # the files were written before the table


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_standard_output_that_cannot_be_written_is_a_message_and_status_2() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*IOASID, "compare", EXAMPLE, "--vendors", "generic"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr == "ioasid: cannot write the standard output: No space left on device\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("flag", ["--json", "--csv", "--plot"])
def test_an_output_file_that_cannot_be_written_is_named_with_status_2(flag: str) -> None:
    path = "/dev/full"
    if flag == "--plot":
        pytest.skip("/dev/full has no suffix: refused before any run (tested below)")
    code, _, stderr = invoke("compare", EXAMPLE, "--vendors", "generic", flag, path)
    assert code == 2
    assert stderr == "ioasid: cannot write '/dev/full': No space left on device\n"


def test_a_plot_that_cannot_be_written_names_its_path(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        target = tmp_path / "full"
        target.symlink_to("/dev/full")
        path = f"{target}.png"
        Path(path).symlink_to("/dev/full")
    else:  # pragma: no cover - the same check, where /dev/full cannot be linked
        pytest.skip("needs a path that fails on write")
    code, _, stderr = invoke("compare", EXAMPLE, "--vendors", "generic", "--plot", path)
    assert code == 2
    assert stderr.startswith(f"ioasid: cannot write {path!r}: ")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--vendors", ""), "ioasid: --vendors '': no name given (leave the option out for all)"),
        (("--vendors", " , "), "ioasid: --vendors ' , ': no name given"),
        (("--policies", ""), "ioasid: no lookup policy given (known: global, set, endpoint"),
    ],
)
def test_an_empty_vendor_or_policy_list_is_bad_input_alike(
    args: tuple[str, str], says: str
) -> None:
    code, stdout, stderr = invoke("compare", EXAMPLE, *args)
    assert code == 2 and stdout == ""
    assert stderr.startswith(says)


@pytest.mark.parametrize("flag", ["--json", "--csv", "--plot"])
def test_an_empty_output_path_is_bad_input_not_silence(
    flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--json "$OUT"` with OUT unset: nothing was written and the status was 0.
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = invoke("compare", EXAMPLE, flag, "")
    assert code == 2 and stdout == ""
    assert stderr == f"ioasid: {flag} '': no path given ('-' is the standard output)\n"
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_into_an_empty_folder_name_is_bad_input_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = Path(EXAMPLE).parent / "sweeps" / "queue-depth.toml"
    code, stdout, stderr = invoke("sweep", str(sweep), "--out", "")
    assert code == 2 and stdout == "" and stderr == "ioasid: --out '': no folder given\n"
    assert list(tmp_path.iterdir()) == []  # it wrote its results here


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("x", "has no file suffix to name its format (one of: "),
        ("x.xyz", "'xyz' is not a format the plot can be written in (one of: "),
    ],
)
def test_a_plot_name_without_a_known_format_is_refused_before_any_run(
    tmp_path: Path, name: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ioasid_core.cli as cli_module

    def no_runs(*_: object, **__: object) -> None:
        raise AssertionError("a run started")

    monkeypatch.setattr(cli_module, "_compare", no_runs)
    path = tmp_path / name
    code, stdout, stderr = invoke("compare", EXAMPLE, "--plot", str(path))
    assert code == 2 and stdout == ""
    assert stderr.startswith(f"ioasid: --plot {str(path)!r}: {says}")
    assert "png" in stderr and "svg" in stderr
    assert not path.exists() and not Path(f"{path}.png").exists()
    # Any format matplotlib writes is fine.
    monkeypatch.undo()
    code, _, _ = invoke("compare", EXAMPLE, "--vendors", "generic", "--plot", f"{path}.svg")
    assert code == 0 and Path(f"{path}.svg").read_text().lstrip().startswith("<?xml")


def test_the_progress_bar_shows_a_scenario_name_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    import ioasid_core.cli as cli_module

    shown = io.StringIO()

    class Terminal(cli_module.PipeConsole):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(file=shown, force_terminal=True, width=80)

    monkeypatch.setattr(cli_module, "PipeConsole", Terminal)
    path = tmp_path / "s.toml"
    path.write_text('name = "base[/] [bold]x"\n[platform]\nunits = [{ name = "u" }]\n')
    code, _, stderr = invoke("compare", str(path), "--vendors", "generic")
    assert code == 0, stderr
    assert "replaying base[/] [bold]x" in shown.getvalue()


def test_an_output_that_is_the_scenario_or_another_output_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(Path(EXAMPLE).read_text())
    before = scenario.read_text()
    for flag in ("--json", "--csv"):
        code, stdout, stderr = invoke("compare", str(scenario), flag, str(scenario))
        assert code == 2 and stdout == ""
        assert f"{flag} {str(scenario)!r}: is the same file as SCENARIO" in stderr
    (tmp_path / "link.toml").symlink_to(scenario)
    code, _, stderr = invoke("compare", str(scenario), "--json", str(tmp_path / "link.toml"))
    assert code == 2 and "is the same file as SCENARIO" in stderr
    assert scenario.read_text() == before  # the scenario was not overwritten
    out = tmp_path / "out.txt"
    code, _, stderr = invoke("compare", str(scenario), "--json", str(out), "--csv", str(out))
    assert code == 2 and f"--csv {str(out)!r}: is the same file as --json" in stderr
    assert not out.exists()
    if Path("/dev/null").exists():  # not a file anything is lost from: written twice, fine
        code, _, stderr = invoke(
            "compare", str(scenario), "--json", "/dev/null", "--csv", "/dev/null"
        )
        assert code == 0, stderr


def test_a_scenario_with_thousands_of_problems_says_the_first_twenty_and_how_many_more(
    tmp_path: Path,
) -> None:
    # A generator whose every step names a PASID gone (65,536 steps) printed one line per
    # step: 117,000 lines on standard error. Here 3,000 steps of an unknown op.
    path = tmp_path / "s.toml"
    path.write_text(Path(EXAMPLE).read_text() + '\n[[steps]]\nat = 100\nop = "nope"\n' * 3000)
    code, stdout, stderr = invoke("compare", str(path))
    assert code == 2 and stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 21, stderr[:2000]
    assert lines[0].startswith(f"ioasid: {path}: ")
    assert re.fullmatch(r"\.\.\. and \d+ more line\(s\) like these", lines[-1]), lines[-1]
    assert int(lines[-1].split()[2]) + 20 >= 3000


# The command as a user runs it, which tells the test what it is doing: each process writes
# "replaying VENDOR" as a run starts (the parent with --jobs 1, a worker with --jobs 2), and
# the parent "received VENDOR" as a worker's compare run comes back, "stored VENDOR" as a
# sweep's batch is written, on the descriptor in $TELL. A Ctrl-C is sent at a known point
# then, not after a guessed sleep: too early, and it lands in Python's start-up, before the
# command can say anything; too late, and the comparison is over (it took 30 s when a sleep
# of 4 s was chosen, 8 s since). $STALL names a vendor whose run stays busy (a long one)
# until it is interrupted.
TELLING = r"""
import os, signal, time
# Ctrl-C as in a terminal's foreground job, whatever this test inherited (a run started in
# the background of a shell without job control ignores SIGINT, and Python keeps that).
signal.signal(signal.SIGINT, signal.default_int_handler)
from ioasid_core import compare
from ioasid_core.cli import main
from ioasid_core.sweep import store, worker

tell, stall = int(os.environ["TELL"]), os.environ.get("STALL")
replay, received, append = compare.replay, compare._received, store.SweepStore.append

def replaying(scenario, vendor, *args, **kwargs):
    os.write(tell, f"replaying {vendor.name}\n".encode())
    if vendor.name == stall:
        time.sleep(600)
    return replay(scenario, vendor, *args, **kwargs)

def receiving(future, vendor, policy):
    os.write(tell, f"received {vendor.name}\n".encode())
    return received(future, vendor, policy)

def storing(self, runs, outcomes):
    append(self, runs, outcomes)
    for run in runs:
        os.write(tell, f"stored {run.vendor}\n".encode())

compare.replay, compare._received, worker.replay = replaying, receiving, replaying
store.SweepStore.append = storing
main()
"""


def ctrl_c_when(args: list[str], told: list[str], stall: str = "") -> tuple[int, bytes, bytes]:
    """Run ``ioasid ARGS`` (TELLING), wait until it has said every line of ``told`` (any
    order), then press Ctrl-C: SIGINT to its whole process group, workers too, as a terminal
    does. Its exit status, standard output and standard error. Waits are bounded (120 s) only
    against a command that hangs: nothing here waits for time to pass."""
    read_end, write_end = os.pipe()
    env = {**os.environ, "TELL": str(write_end), "STALL": stall}
    with subprocess.Popen(
        [sys.executable, "-c", TELLING, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        pass_fds=(write_end,),
        start_new_session=True,  # its own process group, as a terminal's foreground job
    ) as process:
        os.close(write_end)
        try:
            waiting, said = list(told), b""
            while waiting:
                readable, _, _ = select.select([read_end], [], [], 120)
                assert readable, f"the command said nothing for 120 s, still owing {waiting}"
                chunk = os.read(read_end, 4096)
                assert chunk, f"the command ended still owing {waiting}"
                *lines, said = (said + chunk).split(b"\n")
                for line in lines:
                    if line.decode() in waiting:
                        waiting.remove(line.decode())
            os.killpg(process.pid, signal.SIGINT)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            os.close(read_end)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever hangs (a stuck worker)
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_is_status_130_with_one_line_not_abort_as_a_plugin_failure(
    tmp_path: Path, jobs: str
) -> None:
    # click's own handling said "Aborted!" with status 1, which means a plugin failed here.
    # Pressed while every process replays (a run of 20,000 groups: seconds).
    storm = (Path(EXAMPLE).parent / "prq-storm.toml").read_text()
    path = tmp_path / "storm.toml"
    path.write_text(storm.replace("groups = 12\n", "groups = 20000\n"))
    args = ["compare", str(path), "--vendors", "generic,vtd", "--policies", "native"]
    told = ["replaying generic"] if jobs == "1" else ["replaying generic", "replaying vtd"]
    code, stdout, stderr = ctrl_c_when([*args, "--jobs", jobs], told)
    assert code == 130, stderr
    assert stderr == b"ioasid: interrupted\n" and stdout == b""


def test_ctrl_c_while_a_worker_waits_for_work_is_one_line_not_its_traceback() -> None:
    # A worker between runs (here: its run done, the other worker's still going, as at a
    # comparison's tail) met the Ctrl-C outside any run and printed a KeyboardInterrupt
    # traceback under the command's one line.
    args = ["compare", EXAMPLE, "--vendors", "generic,vtd", "--policies", "native"]
    told = ["replaying vtd", "received generic"]  # generic's worker has nothing left to do
    code, stdout, stderr = ctrl_c_when([*args, "--jobs", "2"], told, stall="vtd")
    assert code == 130, stderr
    assert stderr == b"ioasid: interrupted\n" and stdout == b""


def test_ctrl_c_in_a_sweep_while_a_worker_waits_for_work_keeps_the_runs_done(
    tmp_path: Path,
) -> None:
    # The sweep's pool, the same rule: generic's run is done and stored, its worker waits
    # for work, vtd's run goes on in the other worker.
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(
        'name = "tiny"\nbase = "null-set-search"\nvendors = ["generic", "vtd"]\n'
        'policies = ["native"]\nseeds = [1]\n[axes.depth]\nvalues = [64]\n'
        'set."platform.units[0].queue_entries" = [64]\n'
    )
    out = tmp_path / "out"
    args = ["sweep", str(sweep), "--out", str(out), "--jobs", "2", "--batch", "1"]
    code, stdout, stderr = ctrl_c_when(args, ["replaying vtd", "stored generic"], stall="vtd")
    assert code == 130, stderr
    said = stderr.decode()  # the progress bar's last frame, then the one line
    assert said.endswith(
        f"ioasid: interrupted: {out} keeps the runs that finished; --resume continues\n"
    ), said
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said
    assert stdout == b""
    kept = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [(run["vendor"], run["error"]) for run in kept] == [("generic", None)]


@pytest.mark.parametrize("given", ["", " , "])
def test_logs_with_an_empty_vendor_list_is_bad_input_as_compares_is(given: str) -> None:
    # It read every vendor's records, as if the option were left out.
    log = str(Path(__file__).parent / "data" / "realdata" / "vtd-faults.txt")
    code, stdout, stderr = invoke("logs", log, "--vendor", given)
    assert code == 2 and stdout == ""
    assert stderr == f"ioasid: --vendor {given!r}: no name given (leave it out for all)\n"
