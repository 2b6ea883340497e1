"""A reader that goes away (``| head -1``, ``| head -c 10``) ends every command that writes
to it with status 141, as a tool killed by SIGPIPE, quietly: no traceback, no "Exception
ignored" on standard error, and never 0 as if the whole output had been read.

CPython loses the broken pipe of one large write (the kernel takes 64 KiB, the reader
leaves, the write returns as if done): these tests read a little of an output far larger
than a pipe holds, then close, in real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ioasid_core.prq import GenericPrq, PageRequest, Perm

ROOT = Path(__file__).parent.parent
REALDATA = Path(__file__).parent / "data" / "realdata"
IOASID = [sys.executable, "-c", "from ioasid_core.cli import main; main()"]
CLOSED_PIPE = 141


def read_then_close(args: list[str], *, line: bool, env: dict[str, str] | None = None) -> int:
    """Run ``ioasid ARGS``, read one line (or 4 KiB of an output with no early newline),
    close the pipe, and give back the exit status; standard error must stay empty."""
    with subprocess.Popen(
        [*IOASID, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline() if line else process.stdout.read(4096)
        assert first, "the command printed nothing"
        process.stdout.close()
        stderr = process.stderr.read()
        status = process.wait(timeout=300)
    assert stderr == b"", stderr.decode(errors="replace")  # no traceback, no message
    return status


def closed_before_reading(args: list[str]) -> int:
    """Run ``ioasid ARGS`` with a standard output whose reader is gone before it starts
    (``| head -0``); standard error must stay empty."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*IOASID, *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "80"},
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == b"", done.stderr.decode(errors="replace")
    return done.returncode


@pytest.fixture(scope="module")
def big_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 generic page requests: its JSON is a single line of about 3 MB."""
    codec = GenericPrq()
    entry = codec.encode_request(PageRequest(0x100, 0x2A, True, 3, True, Perm.READ, 0x1000))
    path = tmp_path_factory.mktemp("dump") / "prq.bin"
    path.write_bytes(entry * 20_000)
    return path


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every real log sample, 40 times over: a table of 1,000 records and a long JSON."""
    text = "".join(p.read_text() for p in sorted(REALDATA.glob("*.txt")))
    path = tmp_path_factory.mktemp("log") / "big.log"
    path.write_text(text * 40)
    return path


def test_decode_json_read_in_part_is_a_closed_pipe_not_success(big_dump: Path) -> None:
    # The output is one line of ~3 MB written at once: it used to exit 0 (`| head -c 10`).
    assert read_then_close(["decode", "generic", str(big_dump), "--json"], line=False) == 141


def test_compare_json_to_stdout_read_one_line_is_a_closed_pipe() -> None:
    # 170 kB of JSON written at once (`compare --json - | head -1`): it used to exit 0.
    args = ["compare", "null-set-search", "--json", "-"]
    assert read_then_close(args, line=True) == CLOSED_PIPE


@pytest.mark.parametrize("json", [False, True], ids=["table", "json"])
def test_logs_read_one_line_is_a_closed_pipe(big_log: Path, json: bool) -> None:
    # The table was rich's own handling: status 1, which means a plugin failed here. The
    # JSON is one line: 4 KiB of it are read.
    args = ["logs", str(big_log), *(["--json"] if json else [])]
    assert read_then_close(args, line=not json) == CLOSED_PIPE


@pytest.mark.parametrize(
    "args",
    [
        ["run", "null-set-search"],
        ["run", "null-set-search", "--json"],
        ["compare", "null-set-search", "--vendors", "generic"],
        ["compare", "null-set-search", "--vendors", "generic", "--csv", "-"],
        ["compare", "null-set-search", "--vendors", "generic", "--json", "-"],
        ["compare", "null-set-search", "--vendors", "generic", "--json", "/dev/stdout"],
        ["decode", "generic", "DUMP"],
        ["decode", "generic", "DUMP", "--json"],
        ["logs", "LOG"],
        ["logs", "LOG", "--json"],
        ["plugins"],
        ["plugins", "--json"],
        ["demo"],
        ["--help"],
        ["--version"],
        ["run", "--help"],
    ],
    ids=" ".join,
)
def test_every_command_with_its_reader_gone_exits_141_quietly(
    args: list[str], big_dump: Path, big_log: Path
) -> None:
    paths = {"DUMP": str(big_dump), "LOG": str(REALDATA / "vtd-faults.txt")}
    assert closed_before_reading([paths.get(arg, arg) for arg in args]) == CLOSED_PIPE


def test_a_reader_that_reads_everything_is_success(big_dump: Path) -> None:
    done = subprocess.run(
        [*IOASID, "decode", "generic", str(big_dump), "--json"],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout.endswith(b"]}\n") and done.stdout.count(b'"offset"') == 20_000


def test_a_terminal_that_cannot_encode_a_character_shows_it_escaped() -> None:
    # The table's caption says "µs": an ASCII-only output used to end in a traceback
    # (status 1, which means a plugin failed).
    done = subprocess.run(
        [*IOASID, "run", "null-set-search"],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii", "COLUMNS": "80"},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stderr == b""
    assert b"modelled \\xb5s" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["run", "null-set-search"],
        ["run", "null-set-search", "--json"],
        ["compare", "null-set-search", "--vendors", "generic", "--csv", "-"],
        ["decode", "generic", "DUMP", "--json"],
        ["logs", "LOG"],
        ["logs", "LOG", "--json"],
        ["plugins"],
        ["demo"],
    ],
    ids=" ".join,
)
def test_a_standard_output_closed_before_the_start_is_said_with_status_2(
    args: list[str], big_dump: Path
) -> None:
    # `ioasid ... >&-`: Python has no sys.stdout. rich and click wrote nowhere and said
    # nothing (status 0); the first version of the pipe handling raised a traceback.
    paths = {"DUMP": str(big_dump), "LOG": str(REALDATA / "vtd-faults.txt")}
    done = subprocess.run(
        [*IOASID, *(paths.get(arg, arg) for arg in args)],
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),  # the child's own standard output, before exec
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr.decode(errors="replace")
    assert done.stderr == b"ioasid: cannot write the standard output: it is closed\n"
