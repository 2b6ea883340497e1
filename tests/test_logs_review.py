"""``ioasid logs`` on review pastes no sample covers: realistic lines of other devices, units
and eras, with every expected field worked out by hand from the printers' formats."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ioasid_core.logs import LogReader, LogRecord
from ioasid_core.logs.scenario_out import ScenarioWriter, seconds
from ioasid_core.scenario import load_scenario

if TYPE_CHECKING:
    from logs_helpers import installed_formats, read, rec, records, unrecognised
else:
    from tests.logs_helpers import installed_formats, read, rec, records, unrecognised


def _fields(lines: list[str]) -> list[dict[str, object]]:
    _, items = read(lines)
    return [record._asdict() for record in records(items)]


# -- a bus:device.function whose device number is over 0x1f is no PCI address


BAD_DEVICE = [
    "[ 1.0] DMAR: [DMA Read NO_PASID] Request device [00:20.0] fault addr 0x1000 "
    "[fault reason 0x06] PTE Read access is not set",
    "[ 1.1] AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:00:20.0 domain=0x0000 "
    "address=0x1000 flags=0x0000]",
    "[ 1.2] arm-smmu-v3 arm-smmu-v3.2.auto: event: C_BAD_STE client: 0000:00:20.0 sid: 0x20 "
    "ssid: 0x0",
    '[ 1.3] arm-smmu-v3 arm-smmu-v3.2.auto: unpriv data read s1 "Bad stream table entry" stag: 0x0',
    # the same vendors' next records must still be read
    "[ 2.0] DMAR: [DMA Read NO_PASID] Request device [00:1f.0] fault addr 0x2000 "
    "[fault reason 0x06] PTE Read access is not set",
    "[ 2.1] AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:00:1f.0 domain=0x0000 "
    "address=0x3000 flags=0x0020]",
]


def test_a_device_number_over_0x1f_costs_its_line_only() -> None:
    reader, items = read(BAD_DEVICE)
    assert reader.stats.failures == []
    assert [u.line for u in unrecognised(items)] == [1, 2]
    got = [r._asdict() for r in records(items)]
    # 00:1f.0 -> 0x1f << 3 = 0xf8 = 248
    assert got == [
        rec("smmuv3", "event", 3, timestamp="1.2", unit="arm-smmu-v3.2.auto",
            device="0000:00:20.0", source_id=0x20, access="r", code=0x04,
            reason="C_BAD_STE", stall=False, tag=0),
        rec("vtd", "fault", 5, timestamp="2.0", device="0000:00:1f.0", source_id=248,
            address=0x2000, access="r", code=6, reason="PTE Read access is not set"),
        rec("amd-vi", "fault", 6, timestamp="2.1", device="0000:00:1f.0", source_id=248,
            address=0x3000, access="w", code=2, reason="IO_PAGE_FAULT"),
    ]  # fmt: skip


# -- two SMMUs' event threads printing at once (v6.14+: dwords, then decoded lines)

_J = "Dec  6 03:00:01 arm64host kernel: arm-smmu-v3 arm-smmu-v3."
INTERLEAVED = [
    _J + "0.auto: event 0x10 received:",
    _J + "2.auto: event 0x04 received:",
    _J + "0.auto: \t0x0000010000001810",
    _J + "2.auto: \t0x0000002000000004",
    _J + "0.auto: \t0x0000000000000000",
    _J + "2.auto: \t0x0000000000000000",
    "Dec  6 03:00:01 arm64host kernel: ixgbe 0000:05:00.0: Detected Tx Unit Hang",
    _J + "0.auto: \t0x00000000fe001234",
    _J + "2.auto: \t0x0000000000000000",
    _J + "0.auto: \t0x0000000000000000",
    _J + "2.auto: \t0x0000000000000000",
    _J + "0.auto: event: F_TRANSLATION client: 0000:01:00.0 sid: 0x100 ssid: 0x1 "
    "iova: 0xfe001234 ipa: 0x0",
    _J + '0.auto: unpriv data write s1 "Input address caused fault" stag: 0x0',
    _J + "2.auto: event: C_BAD_STE client: 0000:00:02.0 sid: 0x20 ssid: 0x0",
    _J + '2.auto: unpriv data read s1 "Bad stream table entry" stag: 0x0',
]


def test_interleaved_units_each_merge_their_decoded_lines_with_their_dwords() -> None:
    # unit 0: dw0 0x0000010000001810 = ID 0x10, SSV (bit 11), SSID 1 (bits 31:12), SID 0x100;
    # dw1 0 = STAG 0, no stall, RnW 0 (write), InD 0, PnU 0; dw2 = the input address.
    # unit 2: dw0 0x0000002000000004 = ID 0x04 C_BAD_STE, SID 0x20, no SSV.
    assert _fields(INTERLEAVED) == [
        rec("smmuv3", "fault", 1, timestamp="Dec  6 03:00:01", unit="arm-smmu-v3.0.auto",
            device="0000:01:00.0", source_id=0x100, pasid=1, address=0xFE001234,
            access="w", code=0x10, reason="F_TRANSLATION", stall=False, tag=0,
            raw="1018000000010000" "0000000000000000" "341200fe00000000" "0000000000000000"),
        rec("smmuv3", "event", 2, timestamp="Dec  6 03:00:01", unit="arm-smmu-v3.2.auto",
            device="0000:00:02.0", source_id=0x20, code=0x04, reason="C_BAD_STE",
            raw="0400000020000000" + "0" * 48),
    ]  # fmt: skip


def test_raw_only_records_of_interleaved_units_are_each_read_once() -> None:
    raw_only = INTERLEAVED[:11]
    assert [(r["line"], r["code"]) for r in _fields(raw_only)] == [(1, 0x10), (2, 0x04)]


# -- SMMUv3 PRI: the driver marks the last request of a group "L" ("[%u%s]", last ? "L" : "")

PRI = [
    "[  50.600000] arm-smmu-v3 arm-smmu-v3.1.auto: unexpected PRI request received:",
    "[  50.600001] arm-smmu-v3 arm-smmu-v3.1.auto: \tsid 0x00000300.0x00005: [12L] "
    "unprivileged RW access at iova 0x0000007fab120000",
    "[  50.600002] arm-smmu-v3 arm-smmu-v3.1.auto: unexpected PRI request received:",
    "[  50.600003] arm-smmu-v3 arm-smmu-v3.1.auto: \tsid 0x00000300.0x00005: [13] "
    "privileged RWX access at iova 0x0000007fab121000",
]


def test_pri_requests_last_of_group_or_not_are_read() -> None:
    unit = "arm-smmu-v3.1.auto"
    assert _fields(PRI) == [
        rec("smmuv3", "page_request", 2, timestamp="50.600001", unit=unit, source_id=0x300,
            pasid=5, address=0x7FAB120000, access="rw", tag=12),
        rec("smmuv3", "page_request", 4, timestamp="50.600003", unit=unit, source_id=0x300,
            pasid=5, address=0x7FAB121000, access="rwxp", tag=13),
    ]  # fmt: skip


# -- --scenario timing: a date without a year is not a date of 1900


def test_a_date_without_a_year_is_its_own_clock_and_feb_29_reads() -> None:
    # syslog/journal print no year: not comparable with dmesg -T's dated stamps
    assert seconds("Dec 06 03:11:42")[1] == "yearless"
    assert seconds("Sun Dec  6 03:11:43 2026")[1] == "wall"
    # read in leap year 2000: Feb 29 is a day (1900 is no leap year)
    later, clock = seconds("Feb 29 00:00:01")
    earlier, _ = seconds("Feb 28 00:00:01")
    assert (clock, later is not None and earlier is not None) == ("yearless", True)
    assert later - earlier == 86400.0  # type: ignore[operator]


MIXED_CLOCKS = [
    "Dec 06 03:11:42 fileserv kernel: DMAR: [DMA Read PASID 0x1a] Request device [00:1f.3] "
    "fault addr 0x7ffd2000 [fault reason 0x57] SM: Present bit in PASID directory entry is "
    "clear",
    "[Sun Dec  6 03:11:43 2026] DMAR: [DMA Write] Request device [05:00.0] PASID 1a fault "
    "addr ffe00000 [fault reason 05] PTE Write access is not set",
    "(XEN) [VT-D]DMAR:[DMA Write] Request device [0001:04:00.4] fault addr 7d000000, iommu "
    "reg = ffff82c00021d000",
    "(XEN) [VT-D]DMAR: reason 05 - PTE Write access is not set",
]


def test_a_scenario_of_mixed_clocks_and_untimed_records_loads(tmp_path: Path) -> None:
    writer = ScenarioWriter("mixed", ["paste"])
    _, items = read(MIXED_CLOCKS)
    for item in items:
        writer.add(item)
    out = tmp_path / "out.toml"
    writer.write(out)
    steps = [s for s in load_scenario(out).steps if s.op == "page_requests"]
    # the clock changes (yearless -> dated): time goes on from the record before; the
    # untimed Xen record is 1 µs after it
    assert [s.at for s in steps] == [0.0, 0.0, 1.0]


def test_the_time_bound_holds_for_untimed_records_after_a_clamp(tmp_path: Path) -> None:
    writer = ScenarioWriter("far", ["paste"])
    _, items = read(
        [
            "[  1.0] " + MIXED_CLOCKS[1].split("] ", 1)[1],
            "[  2000000000.0] " + MIXED_CLOCKS[1].split("] ", 1)[1],  # 2e9 s: past 1e15 µs
            *MIXED_CLOCKS[2:],
        ]
    )
    for item in items:
        writer.add(item)
    out = tmp_path / "out.toml"
    writer.write(out)
    steps = [s for s in load_scenario(out).steps if s.op == "page_requests"]
    assert [s.at for s in steps] == [0.0, 1e15, 1e15]


# -- a number no field can hold: unrecognised, never a record (--json could not print it)

WIDE = [
    "[ 3.0] AMD-Vi: Event logged [IO_PAGE_FAULT device=00:01.0 domain=0x0000 "
    "address=0x100000000000000000000 flags=0x0000]",
    "[ 3.1] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x100000000000000000 "
    "[fault reason 0x06] PTE Read access is not set",
    "[ 3.2] virtio_iommu virtio0: page fault from EP 18446744073709551616 at 0x1000 [R]",
    "[ 3.3] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x" + "f" * 5000
    + " [fault reason 0x06] PTE Read access is not set",
    "[ 3.4] virtio_iommu virtio0: page fault from EP 18446744073709551615 at 0x1000 [R]",
]  # fmt: skip


def test_a_number_wider_than_64_bits_makes_its_line_unrecognised() -> None:
    reader, items = read(WIDE)
    assert reader.stats.failures == []
    assert [(u.line, u.text) for u in unrecognised(items)] == [
        (n, WIDE[n - 1]) for n in (1, 2, 3, 4)
    ]
    # 2**64 - 1 still fits a 64-bit field
    assert [r._asdict() for r in records(items)] == [
        rec("virtio-iommu", "fault", 5, timestamp="3.4", unit="virtio0",
            source_id=(1 << 64) - 1, address=0x1000, access="r", code=2, reason="page"),
    ]  # fmt: skip


# -- a decimal number past Python's 4300-digit conversion limit costs its line only

_LONG = "9" * 5000
DIGITS = [
    f"[ 4.0] virtio_iommu virtio0: page fault from EP {_LONG} at 0x1000 [R]",
    f"[ 4.1] riscv-iommu 10001000.iommu: Fault {_LONG} devid: 0x18 iotval: 0 iotval2: 0",
    f"[ 4.2] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x1000 "
    f"[fault reason {_LONG}] PTE Read access is not set",
    f"[ 4.3] kfd kfd: Invalid PPR device 3:00.0 pasid {_LONG} address 0x1000 flags 0x1",
    "[ 4.4] arm-smmu-v3 arm-smmu-v3.1.auto: unexpected PRI request received:",
    f"[ 4.5] arm-smmu-v3 arm-smmu-v3.1.auto: \tsid 0x00000300.0x00005: [{_LONG}L] "
    "unprivileged R access at iova 0x0000007fab120000",
    # every vendor's parser still reads the next line
    "[ 5.0] virtio_iommu virtio0: page fault from EP 7 at 0x2000 [W]",
    "[ 5.1] riscv-iommu 10001000.iommu: Fault 7 devid: 0x18 iotval: 3000 iotval2: 0",
    "[ 5.2] DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x4000 "
    "[fault reason 0x05] PTE Write access is not set",
    "[ 5.3] kfd kfd: Invalid PPR device 3:0.0 pasid 2 address 0x5000 flags 0x1",
    "[ 5.4] arm-smmu-v3 arm-smmu-v3.1.auto: \tsid 0x00000300.0x00005: [1L] "
    "unprivileged R access at iova 0x0000000000006000",
]


def test_a_decimal_number_past_the_conversion_limit_stops_no_parser() -> None:
    reader, items = read(DIGITS)
    assert reader.stats.failures == []
    got = {(r.line, r.vendor, r.address, r.code) for r in records(items)}
    # the VT-d fault of line 3 is read up to its unreadable reason
    assert got == {
        (3, "vtd", 0x1000, None),
        (7, "virtio-iommu", 0x2000, 2),
        (8, "riscv-iommu", 0x3000, 7),
        (9, "vtd", 0x4000, 5),
        (10, "amd-vi", 0x5000, None),
        (11, "smmuv3", 0x6000, None),
    }


# -- AMD-Vi events whose address is not called "address", and the unknown event's words

AMD_OTHER = [
    "[ 20.0] AMD-Vi: Event logged [RMP_PAGE_FAULT device=0000:c1:00.0, vmg_tag=0x0001, "
    "gpa=0x1234000, flags_rmp=0x0003, flags=0x0020]",
    "[ 20.1] AMD-Vi: Event logged [RMP_HW_ERROR device=0000:c1:00.0, vmg_tag=0x0001, "
    "spa=0x88000000, flags=0x0000]",
    "[ 20.5] AMD-Vi: Event logged [UNKNOWN event[0]=0x12345678 event[1]=0xb0000000 "
    "event[2]=0x9abcdef0 event[3]=0x00000001]",
    "[ 20.6] AMD-Vi: Event logged [UNKNOWN type=0x0c event[0]=0x00000010 event[1]=0xc0000000 "
    "event[2]=0x00000000 event[3]=0x00000000]",
]


def test_rmp_addresses_and_unknown_events_raw_words() -> None:
    # c1:00.0 -> 0xc1 << 8 = 0xc100; RW flag 0x20 -> "w"
    # UNKNOWN: EventCode is bits 63:60 of the entry = bits 31:28 of event[1]: 0xb, then 0xc;
    # raw = the four dwords little-endian: 78563412 000000b0 f0debc9a 01000000
    assert _fields(AMD_OTHER) == [
        rec("amd-vi", "event", 1, timestamp="20.0", device="0000:c1:00.0", source_id=0xC100,
            address=0x1234000, access="w", code=0xD, reason="RMP_PAGE_FAULT"),
        rec("amd-vi", "event", 2, timestamp="20.1", device="0000:c1:00.0", source_id=0xC100,
            address=0x88000000, access="r", code=0xE, reason="RMP_HW_ERROR"),
        rec("amd-vi", "event", 3, timestamp="20.5", code=0xB, reason="UNKNOWN",
            raw="78563412" "000000b0" "f0debc9a" "01000000"),
        rec("amd-vi", "event", 4, timestamp="20.6", code=0xC, reason="UNKNOWN",
            raw="10000000" "000000c0" "00000000" "00000000"),
    ]  # fmt: skip


# -- SMMUv3 fetch faults: the fetch address (dw3 bits 51:3, the decoder's fetch_addr) is the
# address, whether the log carries the dwords or only the decoded line

_U = "[  60.0] arm-smmu-v3 arm-smmu-v3.1.auto: "
FETCH = [
    _U + "event 0x09 received:",
    _U + "\t0x0000030000000009",
    _U + "\t0x0000000000000000",
    _U + "\t0x0000000000000000",
    _U + "\t0xfff00000008a0047",  # bits 63:52 and 2:0 are not the address
    _U + "event: F_CD_FETCH client: 0000:03:00.0 sid: 0x300 ssid: 0x0 fetch_addr: 0x8a0040",
    _U + "event: F_STE_FETCH client: (unassigned sid) sid: 0x302 ssid: 0x0 fetch_addr: 0x8a1000",
]


def test_fetch_faults_carry_their_fetch_address_raw_or_decoded() -> None:
    unit = "arm-smmu-v3.1.auto"
    assert _fields(FETCH) == [
        rec("smmuv3", "event", 1, timestamp="60.0", unit=unit, device="0000:03:00.0",
            source_id=0x300, address=0x8A0040, code=0x09, reason="F_CD_FETCH",
            raw="0900000000030000" + "0" * 32 + "47008a000000f0ff"),
        rec("smmuv3", "event", 7, timestamp="60.0", unit=unit, source_id=0x302,
            address=0x8A1000, code=0x03, reason="F_STE_FETCH"),
    ]  # fmt: skip


# -- AMD-Vi PPR debug lines as ppr.c prints them (dev_dbg on the IOMMU: no "AMD-Vi:" prefix;
# the "(" before the fields is never closed)

PPR_DEBUG = [
    "[  30.0] iommu ivhd0: PPR logged [Request ignored due to GN=0 (device=0000:c1:00.0 "
    "pasid=0x00003 address=0x7f0000002000 flags=0x0024 tag=0x205]",
    "[  30.1] iommu ivhd0: PPR logged [Invalid request format (device=0000:c1:00.0 "
    "pasid=0x00003 address=0x7f0000003000 flags=0x0122 tag=0x006]",
]


def test_ppr_debug_lines_as_the_driver_prints_them() -> None:
    # flags 0x0024: READ 0x004 + WRITE 0x020, US 0x040 clear -> "rwp"; GN 0x100 clear: no PASID
    # flags 0x0122: EXEC 0x002 + WRITE 0x020 + GN 0x100 -> "wxp", PASID 3; tag 0x205 -> PRG 5
    assert _fields(PPR_DEBUG) == [
        rec("amd-vi", "page_request", 1, timestamp="30.0", device="0000:c1:00.0",
            source_id=0xC100, address=0x7F0000002000, access="rwp", tag=5,
            reason="Request ignored due to GN=0"),
        rec("amd-vi", "page_request", 2, timestamp="30.1", device="0000:c1:00.0",
            source_id=0xC100, pasid=3, address=0x7F0000003000, access="wxp", tag=6,
            reason="Invalid request format"),
    ]  # fmt: skip


# -- serial-console garbage (NULs, bytes that are not UTF-8) before the timestamp

GARBAGE = [
    "\ufffd\ufffd[    5.0] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr "
    "0x2000 [fault reason 0x06] PTE Read access is not set",
    "\x00\x00\x00[    5.1] virtio_iommu virtio0: page fault from EP 8 at 0x3000 [W]",
]


def test_console_garbage_before_the_timestamp_keeps_the_timestamp() -> None:
    assert [(r["line"], r["timestamp"], r["address"]) for r in _fields(GARBAGE)] == [
        (1, "5.0", 0x2000),
        (2, "5.1", 0x3000),
    ]


# -- VT-d svm.c (v4.x-v5.15) printed the descriptors it refused whole

SVM = [
    "[  40.0] DMAR: dmar1: Page request without PASID: 0000000000200001 00007f5a3c2d1003",
    "[  40.1] DMAR: dmar1: Page request for invalid PASID 5: 0000000500200101 00007f5a3c2d2001",
    "[  40.2] DMAR: IOMMU: dmar1: Page request without PASID",  # newer: no words, a message
]


def test_refused_page_requests_printed_whole_are_page_requests() -> None:
    # dw0 0x200001: type 1, PASID present (bit 8) clear, requester ID (31:16) 0x20 = 00:04.0
    # dw0 0x500200101: PASID present, PASID (51:32) 5; dw1: R bit 0, W bit 1, PRG index 11:3,
    # address 63:12
    assert _fields(SVM) == [
        rec("vtd", "page_request", 1, timestamp="40.0", unit="dmar1", device="0000:00:04.0",
            source_id=0x20, address=0x7F5A3C2D1000, access="rw",
            reason="Page request without PASID", tag=0,
            raw="0100200000000000" "03102d3c5a7f0000"),
        rec("vtd", "page_request", 2, timestamp="40.1", unit="dmar1", device="0000:00:04.0",
            source_id=0x20, pasid=5, address=0x7F5A3C2D2000, access="r",
            reason="Page request for invalid PASID 5", tag=0,
            raw="0101200005000000" "01202d3c5a7f0000"),
        rec("vtd", "message", 3, timestamp="40.2", unit="dmar1",
            reason="Page request without PASID"),
    ]  # fmt: skip


def test_a_unit_whose_decoded_lines_come_after_another_units_whole_record() -> None:
    a, b = INTERLEAVED[0:1], INTERLEAVED[1:2]
    a_words = [INTERLEAVED[i] for i in (2, 4, 7, 9)]
    b_words = [INTERLEAVED[i] for i in (3, 5, 8, 10)]
    lines = [*a, *b, *a_words, *b_words, *INTERLEAVED[13:15], *INTERLEAVED[11:13]]
    got = [(r["line"], r["device"], r["raw"] is not None) for r in _fields(lines)]
    assert got == [(1, "0000:01:00.0", True), (2, "0000:00:02.0", True)]


def test_a_raw_record_is_given_up_at_another_units_lone_decoded_lines() -> None:
    # unit 2 prints decoded lines with no dwords of its own before: unit 0's are not coming
    lines = [*INTERLEAVED[0:1], *[INTERLEAVED[i] for i in (2, 4, 7, 9)], *INTERLEAVED[13:15]]
    reader = LogReader(installed_formats())
    first = next(iter(reader.read(lines)))
    # released before the stream ends: the reader did not hold it to the end
    assert isinstance(first, LogRecord) and first.line == 1 and first.device is None
