"""``ioasid decode``: a raw queue dump decoded with a vendor's codec."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.prq import GenericPrq, PageRequest, Perm


def _dump(tmp_path: Path, *, corrupt: bool = False) -> Path:
    codec = GenericPrq()
    entries = [
        codec.encode_request(PageRequest(0x100, 0x2A, True, 3, False, Perm.READ, 0x1000)),
        codec.encode_request(PageRequest(0x100, 0x2A, True, 3, True, Perm.READ, 0x2000)),
        codec.encode_request(PageRequest(0x101, 0, False, 4, True, Perm.NONE, 0)),
    ]
    if corrupt:
        bad = bytearray(entries[1])
        bad[12] = 1  # the reserved word
        entries[1] = bytes(bad)
    path = tmp_path / "prq.bin"
    path.write_bytes(b"".join(entries))
    return path


def test_decode_json_lists_every_entry_with_its_offset(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["decode", "generic", str(_dump(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["format"], report["errors"], report["unhandled"]) == ("queue", [], [])
    assert [(e["offset"], e["pasid"], e["last"], e["stop_marker"]) for e in report["entries"]] == [
        (0, 0x2A, False, False),
        (24, 0x2A, True, False),
        (48, None, True, True),
    ]


def test_decode_table_shows_the_entries(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["decode", "generic", str(_dump(tmp_path))])
    assert result.exit_code == 0
    assert "3 page request(s)" in result.stdout and "stop marker" in result.stdout


def test_a_malformed_entry_is_named_the_rest_decoded_and_the_exit_status_is_2(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        cli, ["decode", "generic", str(_dump(tmp_path, corrupt=True)), "--json"]
    )
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert [e["offset"] for e in report["entries"]] == [0, 48]
    [error] = report["errors"]
    # One offset, the file's (not the entry's own "at byte offset 0x0" as well).
    assert "generic page request at byte 0x18: reserved bits set" in error
    assert error.count("0x18") == 1 and "offset 0x0" not in error


def test_a_format_the_vendor_does_not_read_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["decode", "generic", str(_dump(tmp_path)), "-h"])
    assert "--format NAME" in result.stdout and "merged" in result.stdout
    result = CliRunner().invoke(
        cli, ["decode", "generic", str(_dump(tmp_path)), "--format", "merged"]
    )
    assert result.exit_code == 2
    assert "generic has no dump format 'merged' (known: queue)" in result.stderr


def test_an_unknown_vendor_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["decode", "acme", str(_dump(tmp_path))])
    assert result.exit_code == 2
    assert "no vendor named 'acme'" in result.stderr


def test_a_terminal_narrower_than_the_table_gets_every_cell_whole(tmp_path: Path) -> None:
    """rich squeezed the table to the terminal: 0x100 showed as "0…", headers vanished.
    Printed wider than the terminal, the terminal wrapped its lines through numbers: a
    narrow terminal gets one entry a paragraph, no line wider than it."""
    for columns in ("20", "40"):
        result = CliRunner(env={"COLUMNS": columns}).invoke(
            cli, ["decode", "generic", str(_dump(tmp_path))]
        )
        assert result.exit_code == 0
        assert "…" not in result.stdout
        assert all(len(line) <= int(columns) for line in result.stdout.splitlines())
        text = " ".join(result.stdout.split())
        assert (
            "generic: 3 page request(s) "
            "0x0: device 0x100, pasid 0x2a, grpid 3, perm r---, addr 0x1000 "
            "0x18: device 0x100, pasid 0x2a, grpid 3, last yes, perm r---, addr 0x2000 "
            "0x30: device 0x101, pasid -, grpid 4, last yes, perm stop, addr 0x0 "
            "perm: r read,"
        ) in text, result.stdout
    wide = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["decode", "generic", str(_dump(tmp_path))])
    lines = wide.stdout.splitlines()
    assert lines[2].split() == ["offset", "device", "pasid", "grpid", "last", "perm", "addr"]
    assert [line.split() for line in lines[4:7]] == [
        ["0x0", "0x100", "0x2a", "3", "r---", "0x1000"],
        ["0x18", "0x100", "0x2a", "3", "yes", "r---", "0x2000"],
        ["0x30", "0x101", "-", "4", "yes", "stop", "0x0"],
    ], wide.stdout
