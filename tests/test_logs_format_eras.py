"""Printer formats of ``ioasid logs`` that no real sample shows yet, built from the drivers'
format strings (each test names its era); expected values worked out by hand from the text."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from ioasid_core.logs import normalise
from ioasid_core.logs.scenario_out import seconds
from ioasid_core.logs.source import iter_lines

if TYPE_CHECKING:
    from logs_helpers import read, rec, records, unrecognised
else:
    from tests.logs_helpers import read, rec, records, unrecognised

# -- AMD-Vi

# 4.x before commit 1a21ee1aabf7: dev_err(dev, "AMD-Vi: Event logged [") then dev_err(dev,
# "ILLEGAL_DEV_TABLE_ENTRY device=%02x:%02x.%x address=0x%016llx flags=0x%04x]\n"): both lines
# carry the IOMMU's own prefix "iommu ivhd0: ".
ILL_DEV = [
    "[    5.104] iommu ivhd0: AMD-Vi: Event logged [",
    "[    5.104] iommu ivhd0: ILLEGAL_DEV_TABLE_ENTRY device=00:14.0 "
    "address=0x00000000fec10000 flags=0x0000]",
]
# UNKNOWN event[0..3]: EventCode is event[1] bits 31:28 (0xf here); raw the four u32 LE.
UNKNOWN_WORDS = "event[0]=0x00000010 event[1]=0xf0000000 event[2]=0x00001000 event[3]=0x00000000"
UNKNOWN_RAW = "10000000" + "000000f0" + "00100000" + "00000000"


def test_amd_split_event_printed_with_dev_err_reads_the_body_after_its_prefix() -> None:
    assert [r.as_dict() for r in records(read(ILL_DEV)[1])] == [
        rec(
            "amd-vi", "event", 1, timestamp="5.104", device="0000:00:14.0", source_id=0x14 << 3,
            address=0xFEC10000, access="r", code=1, reason="ILLEGAL_DEV_TABLE_ENTRY",
        )
    ]  # fmt: skip


@pytest.mark.parametrize("level", ["", "3"])  # dev_err(dev, KERN_ERR "UNKNOWN ..."): a stray 3
def test_amd_split_unknown_event_is_read_from_its_words(level: str) -> None:
    lines = ["[ 5.1] AMD-Vi: Event logged [", f"[ 5.1] iommu ivhd0: {level}UNKNOWN {UNKNOWN_WORDS}"]
    _, items = read(lines)
    assert [r.as_dict() for r in records(items)] == [
        rec("amd-vi", "event", 1, timestamp="5.1", code=0xF, reason="UNKNOWN", raw=UNKNOWN_RAW)
    ]
    assert unrecognised(items) == []


def test_amd_unknown_event_wrapped_over_two_lines_is_joined() -> None:
    # today's driver: "Event logged [UNKNOWN event[0]=0x%08x ... event[3]=0x%08x\n", no "]"
    words = UNKNOWN_WORDS.split()
    lines = [
        "[ 9.9] iommu ivhd0: AMD-Vi: Event logged [UNKNOWN " + " ".join(words[:2]),
        " ".join(words[2:]),
    ]
    [record] = records(read(lines)[1])
    assert (record.line, record.code, record.raw) == (1, 0xF, UNKNOWN_RAW)


def test_amd_unknown_event_cut_short_is_unrecognised() -> None:
    line = "[ 9.9] iommu ivhd0: AMD-Vi: Event logged [UNKNOWN event[0]=0x00000010"
    _, items = read([line])
    assert records(items) == [] and [u.line for u in unrecognised(items)] == [1]


def test_amd_prefix_names_the_device_only_for_page_faults() -> None:
    # ILLEGAL_COMMAND_ERROR is printed on the IOMMU's device: it is not the requester
    line = "pci 0000:00:00.2: AMD-Vi: Event logged [ILLEGAL_COMMAND_ERROR address=0x12345000]"
    [record] = records(read([line])[1])
    assert (record.device, record.source_id, record.code, record.address) == (
        None,
        None,
        5,
        0x12345000,
    )


def test_amd_completion_wait_timeout_is_a_message() -> None:
    [record] = records(read(["[  3.2] AMD-Vi: Completion-Wait loop timed out"])[1])
    assert record.as_dict() == rec(
        "amd-vi", "message", 1, timestamp="3.2", reason="Completion-Wait loop timed out"
    )


def test_xen_before_4_14_prints_the_device_id_as_a_number() -> None:
    # "AMD-Vi: %s: domain = %d, device id = %#x, fault address = %#llx, flags = %#x"
    line = (
        "(XEN) AMD-Vi: IO_PAGE_FAULT: domain = 0, device id = 0x28, "
        "fault address = 0xfdf8010140, flags = 0x20"
    )
    [record] = records(read([line])[1])
    assert record.as_dict() == rec(
        "amd-vi", "fault", 1, device="0000:00:05.0", source_id=0x28, address=0xFDF8010140,
        access="w", code=2, reason="IO_PAGE_FAULT",
    )  # fmt: skip


# -- VT-d interrupt remapping, 3.x (pr_fmt "dmar: ", the driver's "[[", decimal reason)


def test_vtd_pre_bracket_intr_remap_with_its_own_reason_line() -> None:
    lines = [
        "[    0.5] dmar: INTR-REMAP: Request device [[00:1f.0] fault index 17",
        "[    0.5] INTR-REMAP:[fault reason 34] Present field in the IRTE entry is clear",
    ]
    _, items = read(lines)
    assert [r.as_dict() for r in records(items)] == [
        rec(
            "vtd", "event", 1, timestamp="0.5", device="0000:00:1f.0", source_id=0x1F << 3,
            code=34, reason="Present field in the IRTE entry is clear",
        )
    ]  # fmt: skip
    assert unrecognised(items) == []


def test_vtd_fault_behind_a_doubled_prefix_is_read() -> None:
    # pr_fmt's "DMAR: " before the two-part era's own "DMAR:[%s] ... fault addr %llx"
    lines = [
        "[ 9.1] DMAR: DMAR:[DMA Write] Request device [00:02.0] fault addr 7fa8a78000 ",
        "[ 9.1] DMAR:[fault reason 05] PTE Write access is not set",
    ]
    [record] = records(read(lines)[1])
    assert (record.line, record.device, record.address, record.access, record.code) == (
        1,
        "0000:00:02.0",
        0x7FA8A78000,
        "w",
        5,
    )


def test_vtd_reason_line_without_its_fault_is_unrecognised() -> None:
    _, items = read(["[ 1.0] DMAR:[fault reason 06] PTE Read access is not set"])
    assert records(items) == [] and [u.line for u in unrecognised(items)] == [1]


# -- Arm SMMU v1/v2 (no vendor models it)


@pytest.mark.parametrize(
    "line",
    [
        "arm-smmu 5000000.iommu: Unhandled context fault: fsr=0x402, iova=0xff3cf000, "
        "fsynr=0x300003, cbfrsynra=0x409, cb=10",
        "[ 2.0] arm-smmu 12000000.iommu: Unexpected global fault, this could be serious",
    ],
)
def test_arm_smmu_v2_faults_are_unrecognised_not_dropped(line: str) -> None:
    reader, items = read([line])
    assert records(items) == [] and [u.line for u in unrecognised(items)] == [1]
    assert reader.stats.unrecognised == 1


# -- virtio-iommu PASID RFC ("%s fault from EP %u PASID %u at %#llx [%s%s%s]")


def test_virtio_rfc_pasid_is_read() -> None:
    line = "[ 4.0] virtio_iommu virtio0: page fault from EP 32 PASID 1 at 0x1000 [RW]"
    [record] = records(read([line])[1])
    assert (record.source_id, record.pasid, record.address, record.access, record.code) == (
        32,
        1,
        0x1000,
        "rw",
        2,
    )


def test_virtio_rfc_reason_without_a_spec_code_is_unrecognised() -> None:
    line = "[ 4.0] virtio_iommu virtio0: pte fetch fault from EP 32 PASID 1 at 0x1000 [R]"
    _, items = read([line])
    assert records(items) == [] and [u.line for u in unrecognised(items)] == [1]


# -- prefixes and timestamps


@pytest.mark.parametrize(
    ("header", "stamp"),
    [
        ("[Oct14 06:51] ", "Oct14 06:51"),  # dmesg --human: "%b%e %H:%M", day from 10 on
        ("Nov 14 11:52:19 kernel: ", "Nov 14 11:52:19"),  # syslog, host removed
        ("Jun 15 11:58:56   kernel: ", "Jun 15 11:58:56"),
        ("[Sun Dec  6 08:00:40 2026] ", "Sun Dec  6 08:00:40 2026"),  # dmesg -T, %e
        ("1717070000.123456 host kernel: ", "1717070000.123456"),  # journalctl -o short-unix
    ],
)
def test_more_timestamp_styles(header: str, stamp: str) -> None:
    line = normalise(1, header + "DMAR: DRHD: handling fault status reg 3")
    assert (line.timestamp, line.body) == (stamp, "DMAR: DRHD: handling fault status reg 3")


def test_human_timestamps_of_days_from_10_on_are_read_as_times() -> None:
    assert seconds("Oct14 06:51")[1] == "yearless"
    assert seconds("Oct14 06:51")[0] == seconds("Oct 14 06:51")[0]
    assert seconds("Sun Dec  6 08:00:40 2026") == seconds("Sun Dec 6 08:00:40 2026")


# -- quoted-printable soft breaks (RFC 2045: "=" ends an encoded line of at most 76)


def test_a_soft_break_joins_without_a_space_and_keeps_the_next_line_as_is() -> None:
    joined = normalise(1, "> x client: 0000:01:00.0=").joined(normalise(2, " sid: 0x11"))
    assert joined.body == "x client: 0000:01:00.0 sid: 0x11"
    joined = normalise(1, 'x "Input address caused f=').joined(normalise(2, 'ault" stag: 0x0'))
    assert joined.body == 'x "Input address caused fault" stag: 0x0'


def test_a_long_line_ending_in_equals_is_not_a_soft_break() -> None:
    head = "y" * 80 + " flags="
    assert normalise(1, head).joined(normalise(2, "0x0070]")).body == head + " 0x0070]"


# -- terminal escapes: dmesg --color pasted, or a line that would drive the terminal

COLOURED = (
    "\x1b[32m[    0.361089]\x1b[0m \x1b[33mDMAR\x1b[0m: [DMA Read NO_PASID] Request device "
    "[00:02.0] fault addr 0x7cd80000 [fault reason 0x01] Present bit in root entry is clear"
)


def test_dmesg_color_codes_are_not_part_of_the_record() -> None:
    [record] = records(read([COLOURED])[1])
    assert (record.timestamp, record.device, record.address, record.reason) == (
        "0.361089",
        "0000:00:02.0",
        0x7CD80000,
        "Present bit in root entry is clear",
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("DMAR: x \x1b]0;title\x07y", "DMAR: x y"),  # OSC: a terminal title
        ("DMAR: x \x1b7y", "DMAR: x \ufffd7y"),  # a stray ESC
        ("DMAR: x \x9b2Jy", "DMAR: x \ufffd2Jy"),  # C1 CSI
    ],
)
def test_no_terminal_escape_survives_normalising(raw: str, clean: str) -> None:
    line = normalise(1, raw)
    assert (line.text, line.body) == (clean, clean)


def test_an_unrecognised_line_is_shown_without_its_escapes() -> None:
    line = "[ 1.0] DMAR: [DMA Read NO_PASID] Request device [zz:02.0] fault addr 0x1 \x1b]0;x\x07"
    _, items = read([line])
    [item] = unrecognised(items)
    assert "\x1b" not in item.text and item.text.endswith("fault addr 0x1")


def test_a_record_refused_for_a_too_wide_number_is_shown_without_escapes() -> None:
    line = (
        "AMD-Vi: Event logged [IO_PAGE_FAULT device=00:14.0 domain=0x0000 "
        "address=0x1ffffffffffffffffffff flags=0x0000] \x1b]0;x\x07"
    )
    _, items = read([line])
    [item] = unrecognised(items)
    assert records(items) == [] and "\x1b" not in item.text and "address=0x1ff" in item.text


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")]
)
def test_utf16_lines_too_long_are_cut_once_and_the_next_line_is_whole(
    encoding: str, bom: bytes
) -> None:
    text = "x" * 100_000 + "\r\n" + "[ 1.0] DMAR: hello\r\n" + "z\n"
    lines = list(iter_lines(io.BytesIO(bom + text.encode(encoding)), "log", limit=64 * 1024))
    assert [line[:1] for line in lines] == ["x", "[", "z"]
    assert lines[1] == "[ 1.0] DMAR: hello\r\n"


# -- what web pages and mail archives do to a paste


def test_html_escaped_quotes_and_quote_prefixes_are_read() -> None:
    lines = [
        "&gt; &gt; [ 70.3] arm-smmu-v3 arm-smmu-v3.5.auto: event: F_TRANSLATION client: "
        "0001:06:00.0 sid: 0x20600 ssid: 0x0 iova: 0xff9bc000 ipa: 0x0",
        "&gt; &gt; [ 70.3] arm-smmu-v3 arm-smmu-v3.5.auto: unpriv data write s1 "
        "&quot;Input address caused fault&quot; stag: 0x0",
    ]
    [record] = records(read(lines)[1])
    assert (record.timestamp, record.device, record.access, record.stall, record.tag) == (
        "70.3",
        "0001:06:00.0",
        "w",
        False,
        0,
    )


def test_no_break_spaces_are_spaces() -> None:
    line = "[\xa0\xa0\xa00.36]\xa0DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault\xa0addr "
    line += "0x7cd80000 [fault\u202freason 0x01] Present bit in root entry is clear"
    [record] = records(read([line])[1])
    assert (record.timestamp, record.address, record.code) == ("0.36", 0x7CD80000, 1)


@pytest.mark.parametrize("escaped", ["&#27;]0;title&#7;", "&#155;2J"])
def test_an_escaped_escape_is_still_no_escape(escaped: str) -> None:
    text = normalise(1, f"DMAR: x {escaped} y").text
    assert "\x1b" not in text and "\x9b" not in text


def test_no_break_spaces_inside_a_vendor_s_words_are_read_from_a_file() -> None:
    text = "[ 32.9] virtio_iommu virtio0: page\xa0fault\xa0from\xa0EP 32 at 0x1000 [RW]\n"
    [record] = records(read(iter_lines(io.BytesIO(text.encode()), "log"))[1])
    assert (record.vendor, record.source_id, record.address) == ("virtio-iommu", 32, 0x1000)


def test_a_quoted_printable_line_is_decoded_but_keeps_its_soft_break() -> None:
    line = normalise(1, "x device=3D0000:00:01.0 pasid=3D0x00000 fault=C2=A0addr=3D0x=")
    assert line.body == "x device=0000:00:01.0 pasid=0x00000 fault addr=0x="


def test_amd_event_wrapped_before_its_bracket_waits_for_its_body() -> None:
    lines = [
        "[ 3.0] iommu ivhd0: AMD-Vi: Event logged",
        "[ILLEGAL_DEV_TABLE_ENTRY device=0000:00:01.0 pasid=0x00000 address=0x102e89980",
        "flags=0x0080]",
    ]
    [record] = records(read(lines)[1])
    assert (record.line, record.timestamp, record.device, record.address, record.code) == (
        1,
        "3.0",
        "0000:00:01.0",
        0x102E89980,
        1,
    )


# -- SMMUv3 command queue errors: the refused command is printed like an event's dwords

CMDQ = [
    "[ 0.3] arm-smmu-v3 arm-smmu-v3.0.auto: CMDQ error (cons 0x04000000): Illegal command",
    "[ 0.3] arm-smmu-v3 arm-smmu-v3.0.auto: skipping command in error state:",
    "[ 0.3] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000046",
    "[ 0.3] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000",
]


def test_two_refused_commands_are_no_event_record() -> None:
    _, items = read(CMDQ * 2)
    assert [(r.line, r.kind, r.reason) for r in records(items)] == [
        (1, "message", "CMDQ error: Illegal command"),
        (5, "message", "CMDQ error: Illegal command"),
    ]
    assert unrecognised(items) == []


@pytest.mark.parametrize("printed", [4, 3])  # the command's two dwords, or one (a cut paste)
def test_an_event_after_a_refused_command_is_read_whole(printed: int) -> None:
    event = [
        "[ 0.4] arm-smmu-v3 arm-smmu-v3.0.auto: event 0x10 received:",
        "[ 0.4] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000020000000010",
        "[ 0.4] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000020000000000",
        "[ 0.4] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000001000",
        "[ 0.4] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000",
    ]
    [_, record] = records(read([*CMDQ[:printed], *event])[1])
    assert (record.code, record.source_id, record.address) == (0x10, 0x200, 0x1000)


# -- boot and error messages of the same drivers that are no record: never a false one

NOT_RECORDS = [
    "[    0.1] DMAR: Host address width 39",
    "[    0.1] DMAR: DRHD base: 0x000000fed90000 flags: 0x0",
    "[    0.1] DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap 1c0000c40660462 ecap 19e2ff0505e",
    "[    0.1] DMAR: RMRR base: 0x0000003e2e0000 end: 0x0000003e2fffff",
    "[    0.1] DMAR-IR: IOAPIC id 2 under DRHD base  0xfed91000 IOMMU 1",
    "[    0.1] DMAR-IR: Enabled IRQ remapping in x2apic mode",
    "[    0.1] DMAR: ANDD device: 1 name: \\_SB.PCI0.I2C0",
    "[    0.1] DMAR: No ATSR found",
    "[    0.1] DMAR: No SATC found",
    "[    0.1] DMAR: dmar0: Using Queued invalidation",
    "[    0.1] DMAR: Intel(R) Virtualization Technology for Directed I/O",
    "[    0.1] DMAR: DRHD: handling fault status reg 3",
    "[    0.1] DMAR: Disabling IOMMU for graphics on this chipset",
    "[    0.1] DMAR: QI HEAD: UNKNOWN qw0 = 0x0, qw1 = 0x0",
    "[    0.1] DMAR: Invalidation Time-out Error (ITE) cleared",
    "[    0.1] DMAR: PTE not present at level 4",
    "[    0.1] DMAR: pasid dir entry: 0x000000010b6e0001",
    "[    0.1] DMAR: [Firmware Bug]: RMRR entry for device 06:00.0 is broken - applying workaround",
    "[    0.2] pci 0000:00:00.2: AMD-Vi: IOMMU performance counters supported",
    "[    0.2] pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40",
    "[    0.2] AMD-Vi: Extended features (0x58f77ef22294a5a, 0x0): PPR NX GT IA PC GA_vAPIC",
    "[    0.2] AMD-Vi: Interrupt remapping enabled",
    "[    0.2] AMD-Vi: Virtual APIC enabled",
    "[    0.2] AMD-Vi: [Firmware Bug]: : IOAPIC[32] not in IVRS table",
    "[    0.2] AMD-Vi: Using global IVHD EFR:0x58f77ef22294a5a, EFR2:0x0",
    "[    0.2] perf/amd_iommu: Detected AMD IOMMU #0 (2 banks, 4 counters/bank).",
    "[    0.2] AMD-Vi: AMD IOMMUv2 loaded and initialized",
    "[    0.3] arm-smmu-v3 arm-smmu-v3.0.auto: option mask 0x0",
    "[    0.3] arm-smmu-v3 arm-smmu-v3.0.auto: ias 48-bit, oas 48-bit (features 0x00001fef)",
    "[    0.3] arm-smmu-v3 arm-smmu-v3.0.auto: allocated 65536 entries for cmdq",
    "[    0.3] arm-smmu-v3 arm-smmu-v3.0.auto: msi_domain absent - falling back to wired irqs",
    "[    0.3] arm-smmu-v3 arm-smmu-v3.0.auto: unexpected global error reported (0x00000001), "
    "this could be serious",
    "[    0.3] arm-smmu 12000000.iommu: probing hardware configuration...",
    "[    0.3] arm-smmu 12000000.iommu: SMMUv2 with:",
    "[    0.3] arm-smmu 12000000.iommu: \tstage 1 translation",
    "[    0.4] riscv,iommu 10000000.iommu: using MSI interrupts",
    "[    0.4] virtio_iommu virtio0: input address: 64 bits",
]


def test_driver_messages_that_are_no_record_give_nothing() -> None:
    reader, items = read(NOT_RECORDS)
    assert items == [] and reader.stats.failures == []


# -- VT-d: values no kernel prints (a 20-bit PASID, the 8-bit FR field) are not read into a
# record with a wrong field: the line is shown unrecognised.

_V6 = (
    "[ 7.1] DMAR: [DMA {kind}] Request device [00:02.0] fault addr 0x12345000 "
    "[fault reason {code}] x"
)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("Read NO_PASID", "0x106"),  # FR is bits 7:0
        ("Write PASID 0x100000", "0x06"),  # a PASID is 20 bits
    ],
)
def test_vtd_fault_with_a_value_out_of_its_field_is_unrecognised(kind: str, code: str) -> None:
    _, items = read([_V6.format(kind=kind, code=code)])
    assert records(items) == []
    assert [(u.line, u.why) for u in unrecognised(items)] == [
        (1, "a DMAR fault with an out-of-range value")
    ]


def test_vtd_fault_at_the_top_of_its_fields_is_read() -> None:
    _, items = read([_V6.format(kind="Write PASID 0xfffff", code="0xff")])
    assert [r.as_dict() for r in records(items)] == [
        rec(
            "vtd", "fault", 1, timestamp="7.1", device="0000:00:02.0", source_id=0x10,
            pasid=0xFFFFF, address=0x12345000, access="w", code=0xFF, reason="x",
        )
    ]  # fmt: skip


def test_vtd_fault_of_a_kind_without_read_or_write_has_no_access() -> None:
    # Only "DMA Read" and "DMA Write" are printed; another kind's access is unknown, not "".
    _, items = read([_V6.format(kind="Execute NO_PASID", code="0x06")])
    assert [r.access for r in records(items)] == [None]


def test_vtd_two_part_reason_wider_than_its_field_leaves_the_fault_without_it() -> None:
    lines = [
        "[ 3.3] DMAR:[DMA Read] Request device [00:02.0] fault addr 12345000 ",
        "[ 3.3] DMAR:[fault reason 306] PTE Read access is not set",  # decimal: 306 > 255
    ]
    _, items = read(lines)
    assert [(r.line, r.code, r.reason) for r in records(items)] == [(1, None, None)]
    assert [(u.line, u.why) for u in unrecognised(items)] == [
        (2, "a fault reason wider than 8 bits")
    ]
