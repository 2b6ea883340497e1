"""``ioasid decode riscv-iommu FILE``: a page-request queue dump, record by record."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ioasid_core.testing import cli

# Record 0: hdr = PID 0xFABCD << 12 | PV | PRIV | DID 0x01_0203 << 40 = 0x0102_0303_FABC_D000
#           payload = R | L | PRGI 0x1A5 << 3 | 0x7F00_DEAD_B000 = 0x0000_7F00_DEAD_BD2D
# Record 1: a stop marker: hdr = DID 0x42 << 40 = 0x0000_4200_0000_0000, payload = L = 0x4
# Record 2: PRIV without PV: hdr = 1 << 33 = 0x0000_0002_0000_0000, payload = R | L = 0x5
DUMP = bytes.fromhex(
    "00d0bcfa03030201"
    "2dbdadde007f0000"
    "0000000000420000"
    "0400000000000000"
    "0000000002000000"
    "0500000000000000"
)


def test_decode_lists_records_and_names_the_malformed_one(tmp_path: Path) -> None:
    path = tmp_path / "pq.bin"
    path.write_bytes(DUMP)
    result = CliRunner().invoke(cli, ["decode", "riscv-iommu", str(path), "--json"])
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert [(e["offset"], e["device"], e["stop_marker"]) for e in report["entries"]] == [
        (0, 0x010203, False),
        (16, 0x42, True),
    ]
    assert report["entries"][0]["pasid"] == 0xFABCD
    [error] = report["errors"]
    assert "record at byte 0x20: PRIV or EXEC set without PV" in error
