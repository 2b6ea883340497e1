"""``ioasid decode amd-vi FILE``: a PPR log dump, entry by entry."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ioasid_core.testing import cli

# Entry 0: raw0 = DEVID 0x0210 | PASID 0x8002 << 16 | TAG (0x1A5 | last) << 32
#               | FLAGS (READ | WRITE | US | GN = 0x164) << 48 | TYPE 1 << 60
#               = 0x1164_03A5_8002_0210; raw1 = 0x7F00_DEAD_B000
# Entry 1: TYPE 2 << 60 | DEVID 0x0042 = 0x2000_0000_0000_0042: not a request
# Entry 2: TYPE 1 with reserved bit 47 set: 0x1000_8000_0000_0000
DUMP = bytes.fromhex(
    "10020280a5036411"
    "00b0adde007f0000"
    "4200000000000020"
    "0000000000000000"
    "0000000000800010"
    "0000000000000000"
)


def test_decode_names_requests_unhandled_entries_and_malformed_ones(tmp_path: Path) -> None:
    path = tmp_path / "ppr.bin"
    path.write_bytes(DUMP)
    for vendor in ("amd-vi", "amd-vi-iopf"):
        result = CliRunner().invoke(cli, ["decode", vendor, str(path), "--json"])
        assert result.exit_code == 2, result.output  # a malformed entry
        report = json.loads(result.stdout)
        [entry] = report["entries"]
        assert (entry["offset"], entry["device"], entry["pasid"]) == (0, 0x0210, 0x8002)
        [unhandled] = report["unhandled"]
        assert unhandled["offset"] == 16 and unhandled["kind"] == "event"
        assert "TYPE 2 from DEVID 0x0042" in unhandled["description"]
        [error] = report["errors"]
        assert "AMD PPR log entry at byte 0x20: reserved bit 47 of word 0" in error
