"""Unrecoverable faults as unhandled events: in the ring, in merged dumps, in ``ioasid decode``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import (
    DecodeError,
    IoasidSpace,
    IommuUnit,
    PageRequest,
    Perm,
    Platform,
    PrqPipeline,
    UnhandledEvent,
    UnhandledKind,
)
from ioasid_core.testing import cli, decode_dump, dump_formats
from ioasid_virtio_iommu.faults import (
    MERGED_SIZE,
    FaultReason,
    UnrecoverableFault,
    decode_merged_run,
    encode_fault,
)
from ioasid_virtio_iommu.handler import VirtioPrq
from ioasid_virtio_iommu.probe import VENDOR

# A merged record (the spec's 24 bytes), worked out by hand: reason MAPPING (2), 3 reserved,
# flags WRITE | ADDRESS = 0x102, endpoint 7, 4 reserved, address 0x9000.
MERGED_WRITE = bytes.fromhex("020000000201000007000000000000000090000000000000")
MERGED_WRITE_FAULT = UnrecoverableFault(7, FaultReason.MAPPING, Perm.WRITE, 0x9000)
# reason DOMAIN (1), flags READ = 0x1, endpoint 3, no address.
MERGED_DOMAIN = bytes.fromhex("010000000100000003000000000000000000000000000000")
# An extended (48-byte) unrecoverable fault: reason DOMAIN, flags READ | PASID = 0x201,
# endpoint 1, pasid 0x2A, no address, group_id 0, nothing else.
EXTENDED_DOMAIN = bytes.fromhex("0100000001020000010000002a000000") + bytes(32)
EXTENDED_DOMAIN_FAULT = UnrecoverableFault(1, FaultReason.DOMAIN, Perm.READ, None, 0x2A)


def test_golden_records_are_what_the_encoder_writes() -> None:
    assert encode_fault(MERGED_WRITE_FAULT) == MERGED_WRITE
    assert encode_fault(UnrecoverableFault(3, FaultReason.DOMAIN, Perm.READ)) == MERGED_DOMAIN
    assert encode_fault(EXTENDED_DOMAIN_FAULT, extended=True) == EXTENDED_DOMAIN


def test_a_fault_in_the_queue_is_an_unhandled_event_with_its_record() -> None:
    vendor = VirtioPrq()
    request = vendor.encode_request(PageRequest(1, 5, True, 2, True, Perm.READ, 0x1000))
    with pytest.raises(UnhandledEvent) as info:
        vendor.decode_rows(request + EXTENDED_DOMAIN)
    assert (info.value.kind, info.value.offset) == (UnhandledKind.FAULT, 48)
    assert info.value.record == EXTENDED_DOMAIN_FAULT
    assert "DOMAIN fault from endpoint 1 PASID 0x2a" in info.value.what
    assert vendor.faults.total == 0  # the decoder logs nothing; the pipeline does


def test_the_pipeline_counts_each_fault_once_and_logs_it_once() -> None:
    space = IoasidSpace(1 << 10)
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="viommu0", vendor=VENDOR, pasid_bits=8))
    vendor = VirtioPrq()
    pipe = PrqPipeline(platform, "viommu0", vendor)
    bad = bytearray(EXTENDED_DOMAIN)
    bad[2] = 1  # a reserved byte: malformed
    for raw in (EXTENDED_DOMAIN, bytes(bad), EXTENDED_DOMAIN):
        assert pipe.ring.push(raw)
    assert pipe.service() == []
    assert pipe.counters.unhandled_events == {UnhandledKind.FAULT: 2}
    assert pipe.counters.malformed == 1
    assert pipe.counters.page_requests == 0
    assert vendor.faults.total == 2 and vendor.faults.by_endpoint == {1: 2}


faults = st.builds(
    UnrecoverableFault,
    endpoint=st.integers(0, 0xFFFFFFFF),
    reason=st.sampled_from(FaultReason),
    perm=st.sampled_from([Perm(p) for p in range(8)]),
    address=st.none() | st.integers(0, (1 << 64) - 1),
)


@given(st.lists(faults, max_size=6))
def test_a_merged_dump_lists_every_record_as_a_fault(records: list[UnrecoverableFault]) -> None:
    data = b"".join(encode_fault(f) for f in records)
    fmt = dump_formats(VirtioPrq())["merged"]
    report = decode_dump(fmt, "virtio-iommu", data, source="dump")
    assert report.entries == [] and report.errors == []
    assert [u["offset"] for u in report.unhandled] == [i * MERGED_SIZE for i in range(len(records))]
    assert {u["kind"] for u in report.unhandled} <= {"fault"}
    assert [u["description"] for u in report.unhandled] == [
        f"{f}: unrecoverable, logged, never answered" for f in records
    ]


def test_merged_runs_are_whole_records() -> None:
    assert decode_merged_run(b"") == []
    with pytest.raises(DecodeError, match="1 bytes are left over"):
        decode_merged_run(MERGED_WRITE + b"\0")
    with pytest.raises(UnhandledEvent) as info:
        decode_merged_run(MERGED_WRITE)
    assert info.value.record == MERGED_WRITE_FAULT


def _decode(tmp_path: Path, data: bytes, *args: str) -> tuple[int, dict[str, Any], str]:
    dump = tmp_path / "eventq.bin"
    dump.write_bytes(data)
    result = CliRunner().invoke(cli, ["decode", "virtio-iommu", str(dump), "--json", *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def test_cli_decodes_a_merged_dump_and_exits_0(tmp_path: Path) -> None:
    code, report, stderr = _decode(tmp_path, MERGED_WRITE + MERGED_DOMAIN, "--format", "merged")
    assert code == 0, stderr
    assert report["format"] == "merged" and report["entries"] == [] and report["errors"] == []
    assert report["unhandled"] == [
        {
            "offset": 0,
            "kind": "fault",
            "description": "MAPPING fault from endpoint 7 [-w-] at 0x9000: unrecoverable, "
            "logged, never answered",
        },
        {
            "offset": 24,
            "kind": "fault",
            "description": "DOMAIN fault from endpoint 3 [r--]: unrecoverable, logged, "
            "never answered",
        },
    ]
    assert "virtio-iommu" not in stderr  # no log warnings: the faults are in the output


def test_cli_table_of_a_merged_dump_lists_the_faults_only(tmp_path: Path) -> None:
    dump = tmp_path / "eventq.bin"
    dump.write_bytes(MERGED_WRITE)
    args = ["decode", "virtio-iommu", str(dump), "--format", "merged"]
    result = CliRunner().invoke(cli, args, terminal_width=200)
    assert result.exit_code == 0
    assert "1 unhandled event(s)" in result.stdout and "page request(s)" not in result.stdout
    assert "MAPPING fault from endpoint 7" in result.stdout


def test_cli_merged_dump_with_a_malformed_record_exits_2_naming_it(tmp_path: Path) -> None:
    bad = bytearray(MERGED_DOMAIN)
    bad[0] = 9  # no such reason
    code, report, _ = _decode(tmp_path, MERGED_WRITE + bytes(bad), "--format", "merged")
    assert code == 2
    assert [u["offset"] for u in report["unhandled"]] == [0]
    [error] = report["errors"]
    assert "at byte 0x18: " in error and "unknown reason 9" in error
    assert "offset 0x0" not in error  # one offset: the file's


def test_cli_queue_dump_with_a_fault_exits_0(tmp_path: Path) -> None:
    request = VirtioPrq().encode_request(PageRequest(2, 5, True, 3, True, Perm.READ, 0x1000))
    code, report, _ = _decode(tmp_path, EXTENDED_DOMAIN + request)
    assert code == 0
    assert [(e["offset"], e["device"]) for e in report["entries"]] == [(48, 2)]
    assert [(u["offset"], u["kind"]) for u in report["unhandled"]] == [(0, "fault")]


def test_cli_unknown_format_exits_2(tmp_path: Path) -> None:
    code, _, stderr = _decode(tmp_path, MERGED_WRITE, "--format", "vivek")
    assert code == 2
    assert "virtio-iommu has no dump format 'vivek' (known: queue, merged)" in stderr
