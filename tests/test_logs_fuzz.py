"""``ioasid logs`` never raises on any text (hypothesis), reads in constant memory, and reads
raw entries exactly as ``ioasid decode`` does."""

from __future__ import annotations

import io
import itertools
import json
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioasid_core.cli import cli
from ioasid_core.logs import KINDS, LogRecord, Unrecognised

# The helpers live in tests/logs_helpers.py: ``tests.logs_helpers`` at run time, known to
# mypy (which checks ``tests`` as top-level modules) as ``logs_helpers``.
if TYPE_CHECKING:
    from logs_helpers import HELDOUT, REALDATA, installed_formats, read, records, samples
else:
    from tests.logs_helpers import HELDOUT, REALDATA, installed_formats, read, records, samples

REAL_LINES = [
    line
    for folder in (REALDATA, HELDOUT)
    for file in sorted(folder.glob("*.txt"))
    for s in samples(file.name, folder).values()
    for line in s
]
FORMATS = installed_formats()
# Every format's own example lines too: a third-party vendor's are fuzzed the same way.
SEEDS = REAL_LINES + [line for fmt in FORMATS for line in fmt.examples]


@st.composite
def mutated_line(draw: st.DrawFn) -> str:
    line = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(line)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        piece = draw(st.text(alphabet='0123456789abcdefx:[]>| \t.-_"*=NOPASIDdmar', max_size=6))
        if op == "insert":
            line = line[:at] + piece + line[at:]
        elif op == "delete":
            line = line[:at] + line[at + len(piece) :]
        elif op == "replace":
            line = line[:at] + piece + line[at + len(piece) :]
        else:
            line = line[:at]
    return line


def _check(lines: list[str]) -> None:
    reader, items = read(lines, FORMATS)
    assert not reader.stats.failures, reader.stats.failures
    numbers = [item.line for item in items]
    assert numbers == sorted(numbers)  # line order
    for item in items:
        assert 1 <= item.line <= len(lines)
        if isinstance(item, LogRecord):
            assert item.kind in KINDS
            json.dumps(item.as_dict())
        else:
            assert isinstance(item, Unrecognised)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_line(), max_size=40))
def test_mutated_real_lines_never_raise(lines: list[str]) -> None:
    _check(lines)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=30))
def test_random_text_never_raises(lines: list[str]) -> None:
    _check(["".join(ch for ch in line if ch not in "\r\n") for line in lines])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(SEEDS), max_size=60))
def test_shuffled_and_interleaved_real_lines_never_raise(lines: list[str]) -> None:
    _check(lines)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_the_command_reads_any_bytes(data: bytes) -> None:
    result = CliRunner().invoke(cli, ["logs", "-", "--json"], input=data)
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"records", "unrecognised", "suppressed"}


# -- constant memory


def _stream(lines: int) -> Iterator[str]:
    """A mixed real-style log, generated lazily: every real sample line, over and over."""
    return itertools.islice(itertools.cycle([*REAL_LINES, "[ 1.0] usb 1-1: new device"]), lines)


def _peak(lines: int) -> tuple[int, int]:
    """Peak traced memory reading ``lines`` lines the command's way: records written out as
    they come (``JsonWriter`` to a sink that keeps nothing), unrecognised lines spooled."""
    from ioasid_core.logs import LogReader
    from ioasid_core.logs.render import JsonWriter

    reader = LogReader(FORMATS)
    tracemalloc.start()
    try:
        writer = JsonWriter(_Sink())
        count = 0
        for item in reader.read(_stream(lines)):
            writer.add(item)
            count += 1
        writer.finish(reader.stats.suppressed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, count


def _fill_free_lists() -> None:
    """CPython keeps up to 2,000 freed tuples of each small size for reuse, and records are
    15-tuples: a long stream slowly fills that list, which tracemalloc counts as live memory.
    Filling it first (bounded, and not the reader's) leaves only the reader's own memory."""
    kept = [tuple(range(size)) for size in range(1, 20) for _ in range(2_000)]
    del kept


def test_reading_streams_in_constant_memory() -> None:
    _peak(5_000)  # the parsers' caches (devices seen)
    _fill_free_lists()
    small, small_count = _peak(5_000)
    large, large_count = _peak(60_000)
    assert large_count > 11 * small_count  # twelve times the records went through
    # the same working set whatever the length: no list of records or lines kept
    assert large < small * 1.5 + 64 * 1024, (small, large)
    assert large < 4 * 1024 * 1024


class _Sink(io.StringIO):
    """A text stream that keeps nothing (stands for a terminal or pipe)."""

    def write(self, text: str) -> int:
        return len(text)


# -- the log path and `ioasid decode` agree


def _decode(vendor: str, raw: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "entry.bin"
    path.write_bytes(raw)
    result = CliRunner().invoke(cli, ["decode", vendor, str(path), "--json"])
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_every_raw_smmu_record_reads_as_ioasid_decode_reads_it(tmp_path: Path) -> None:
    lines = [line for s in samples("smmuv3-events.txt").values() for line in s]
    raw_records = [r for r in records(read(lines)[1]) if r.raw is not None]
    assert len(raw_records) >= 12
    for record in raw_records:
        assert record.raw is not None
        report = _decode("smmuv3", bytes.fromhex(record.raw), tmp_path)
        if record.kind == "page_request":
            [entry] = report["entries"]
            assert (entry["device"], entry["pasid"], entry["grpid"], entry["addr"]) == (
                record.source_id,
                record.pasid,
                record.tag,
                record.address,
            )
        else:
            [event] = report["unhandled"]
            assert event["kind"] == record.kind  # "fault" or "event", as decode names them


def test_a_vtd_invalid_page_request_reads_as_ioasid_decode_reads_it(tmp_path: Path) -> None:
    # qw0: type 1, PASID present (bit 8), RID 0x0150 (bits 31:16), PASID 0x2a (51:32), PRIV
    # (bit 53); qw1: read (bit 0), LPIG (bit 2), PRG index 5 (11:3), page 0x12345 (63:12).
    qw0 = 0x0020_002A_0150_0101
    qw1 = 0x0000_0000_1234_502D
    line = f"dmar3: Invalid page request: {qw0:016x} {qw1:x}"
    [record] = records(read([line])[1])
    assert record.raw == struct.pack("<QQ", qw0, qw1).hex()
    assert (record.unit, record.device, record.source_id, record.pasid) == (
        "dmar3",
        "0000:01:0a.0",
        0x150,
        0x2A,
    )
    assert (record.address, record.access, record.tag) == (0x12345000, "rp", 5)
    [entry] = _decode("vtd", bytes.fromhex(record.raw) + bytes(16), tmp_path)["entries"]
    assert (entry["device"], entry["pasid"], entry["grpid"], entry["addr"]) == (
        0x150,
        0x2A,
        5,
        0x12345000,
    )


def test_a_vtd_descriptor_with_reserved_bits_says_so_as_decode_does(tmp_path: Path) -> None:
    qw0 = 0x0000_0000_0150_0401  # bit 10: reserved
    [record] = records(read([f"dmar0: Invalid page request: {qw0:x} 0"])[1])
    assert record.reason is not None and "reserved" in record.reason
    assert record.source_id is None
    report = _decode("vtd", bytes.fromhex(record.raw or "") + bytes(16), tmp_path)
    assert report["entries"] == [] and report["errors"]
