"""``ioasid decode`` at any size: the table shows the first entries and counts them all, at
80 columns every cell whole; the file is read up to a bound; a decoder that raises (a
plugin bug, not bad bytes) is status 1 naming the vendor and its plugin."""

from __future__ import annotations

import json
import struct
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from ioasid_core import cli as cli_module
from ioasid_core.bits import Buffer
from ioasid_core.cli import cli
from ioasid_core.dump import MAX_DUMP_BYTES
from ioasid_core.markers import ENTRY_POINT_GROUP, hookimpl
from ioasid_core.plugins import PluginHost, new_plugin_manager
from ioasid_core.prq import GenericPrq, PageRequest
from ioasid_core.prq.types import RequestRow
from ioasid_core.prq.vendor import VendorPrq

# Generic entries by hand (prq/generic.py's layout): u32 device, u32 pasid, u16 group index,
# u16 flags (PASID_VALID b0, LAST b1, READ b3, WRITE b4, EXEC b5, PRIV b6), u32 zero, u64 addr.
WIDEST = struct.pack("<IIHHIQ", 0xFFFFFFFF, 0xFFFFF, 0x1FF, 0x7B, 0, 0xFFFFFFFFFFFFF000)
READ_ONLY = struct.pack("<IIHHIQ", 0x100, 0x2A, 3, 0x0B, 0, 0x1000)
BAD = struct.pack("<IIHHIQ", 0x100, 0x2A, 3, 0x0B, 1, 0x1000)  # the reserved word set


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_big_dump_shows_the_first_rows_counts_them_all_and_cuts_no_cell(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.bin"
    path.write_bytes(WIDEST * 250 + READ_ONLY)
    code, stdout, stderr = invoke("decode", "generic", str(path))
    assert code == 0 and stderr == ""
    assert "generic: 251 page request(s), the first 200" in " ".join(stdout.split())
    assert "shown (--json lists every entry)" in " ".join(stdout.split())
    rows = [line.split() for line in stdout.splitlines() if line.strip().startswith("0x")]
    assert len(rows) == 200
    assert rows[0] == ["0x0", "0xffffffff", "0xfffff", "511", "yes", "rwxp", "0xfffffffffffff000"]
    assert rows[-1][0] == f"{199 * 24:#x}"
    assert all(len(line) <= 80 for line in stdout.splitlines())
    code, stdout, _ = invoke("decode", "generic", str(path), "--json")
    assert code == 0 and len(json.loads(stdout)["entries"]) == 251


def test_many_malformed_entries_are_counted_the_first_ones_named(tmp_path: Path) -> None:
    path = tmp_path / "d.bin"
    path.write_bytes(READ_ONLY + BAD * 230)
    code, stdout, stderr = invoke("decode", "generic", str(path))
    assert code == 2
    lines = stderr.splitlines()
    assert len(lines) == 201
    assert (
        lines[0]
        == f"ioasid: {path}: generic page request at byte 0x18: " + lines[0].split("0x18: ")[1]
    )
    assert lines[-1] == "ioasid: ... and 30 more malformed entries"
    assert "1 page request(s)" in stdout


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_dump_that_never_ends_is_refused_at_the_bound() -> None:
    code, stdout, stderr = invoke("decode", "generic", "/dev/zero")
    assert code == 2 and stdout == ""
    assert stderr == (
        "ioasid: /dev/zero: not a regular file, and more than the 16,777,216 bytes a dump "
        "may have\n"
    )


def test_a_dump_over_the_bound_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with open(path, "wb") as file:
        file.truncate(MAX_DUMP_BYTES + 24)
    code, _, stderr = invoke("decode", "generic", str(path), "--json")
    assert code == 2
    assert stderr == f"ioasid: {path}: 16,777,240 bytes, more than the 16,777,216 a dump may have\n"


class _ExplodingDecoder(GenericPrq):
    name = "exploding"

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        raise RuntimeError("decoder exploded")


class _ExplodingPlugin:
    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq]:
        return [_ExplodingDecoder()]


@pytest.mark.parametrize("as_json", [False, True])
def test_a_decoder_that_raises_is_a_plugin_failure_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    def host(**kwargs: object) -> PluginHost:
        plugins = new_plugin_manager(load_entry_points=False)
        plugins.pm.register(_ExplodingPlugin(), name="exploding")
        return plugins

    monkeypatch.setattr(cli_module, "new_plugin_manager", host)
    path = tmp_path / "d.bin"
    path.write_bytes(READ_ONLY * 2)
    code, stdout, stderr = invoke("decode", "exploding", str(path), *(["--json"] * as_json))
    assert code == 1 and stdout == ""
    assert stderr == (
        "ioasid: the decoder of vendor 'exploding' (plugin 'exploding') failed at byte 0x0: "
        "RuntimeError: decoder exploded\n"
    )


class _NastyDecoder(GenericPrq):
    name = "nasty"

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        raise RuntimeError("\x1b[2Jgone\nioasid: all good")


def test_a_decoder_failure_names_the_plugin_as_every_plugin_failure_does_and_is_escaped(
    tmp_path: Path, install: Callable[..., None]
) -> None:
    class EntryPoint:
        name, value, group = "nasty", "ioasid_nasty.plugin", ENTRY_POINT_GROUP
        dist = types.SimpleNamespace(name="ioasid-nasty", version="0.1")

        def load(self) -> object:
            return _Offering(_NastyDecoder())

    install(EntryPoint())
    path = tmp_path / "d.bin"
    path.write_bytes(READ_ONLY)
    code, stdout, stderr = invoke("decode", "nasty", str(path))
    assert code == 1 and stdout == ""
    assert stderr == (
        "ioasid: the decoder of vendor 'nasty' (plugin 'nasty' (ioasid-nasty, entry point "
        "ioasid_nasty.plugin)) failed at byte 0x0: RuntimeError: "
        "\\x1b[2Jgone\\nioasid: all good\n"
    )


class _Offering:
    def __init__(self, vendor: VendorPrq) -> None:
        self.vendor = vendor

    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq]:
        return [self.vendor]


def test_an_unhandled_events_description_is_shown_as_written() -> None:
    from io import StringIO

    from rich.console import Console

    from ioasid_core.dump_table import DumpSummary, print_dump

    summary = DumpSummary(
        unhandled=1,
        first_unhandled=[{"offset": 0, "kind": "event", "description": "C_BAD_STE [bold]x[/]"}],
    )
    console = Console(width=80, file=StringIO(), record=True)
    print_dump(console, "v[/]", summary)
    text = console.export_text()
    assert "C_BAD_STE [bold]x[/]" in text and "v[/]: 1 unhandled event(s)" in text
