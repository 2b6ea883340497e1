"""``ioasid logs`` on synthetic variants of every trap of real pastes (real-world-formats.md,
"Traps seen in real pastes"): each test builds lines the way a mailer, forum, terminal or
another kernel era would have printed them, with expectations worked out by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ioasid_core.logs import normalise

# The helpers live in tests/logs_helpers.py: ``tests.logs_helpers`` at run time, known to
# mypy (which checks ``tests`` as top-level modules) as ``logs_helpers``.
if TYPE_CHECKING:
    from logs_helpers import read, records, unrecognised
else:
    from tests.logs_helpers import read, records, unrecognised

FAULT = (
    "DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0xb97ff000 "
    "[fault reason 0x05] PTE Write access is not set"
)
SMMU = [
    "arm-smmu-v3 arm-smmu-v3.3.auto: event 0x10 received:",
    "arm-smmu-v3 arm-smmu-v3.3.auto:  0x0000750100001810",
    "arm-smmu-v3 arm-smmu-v3.3.auto:  0x0000120080000176",
    "arm-smmu-v3 arm-smmu-v3.3.auto:  0x0000aaaada7af000",
    "arm-smmu-v3 arm-smmu-v3.3.auto:  0x0000aaaada7af000",
]
DECODED = [
    "arm-smmu-v3 arm-smmu-v3.3.auto: event: F_TRANSLATION client: 0000:75:00.1 sid: 0x7501 "
    "ssid: 0x1 iova: 0xaaaada7af000 ipa: 0xaaaada7af000",
    'arm-smmu-v3 arm-smmu-v3.3.auto: unpriv data write s1 "Input address caused fault" stall '
    "stag: 0x176",
]


def _fault_fields(lines: list[str]) -> list[tuple[object, ...]]:
    _, items = read(lines)
    return [(r.line, r.device, r.address, r.access, r.code, r.reason) for r in records(items)]


EXPECTED_FAULT = (1, "0000:00:02.0", 0xB97FF000, "w", 5, "PTE Write access is not set")

# -- quote prefixes and timestamps


@pytest.mark.parametrize("prefix", ["", "> ", ">> ", "> >>> ", "| ", "\t", "    ", ">|> "])
def test_quote_prefixes_are_stripped(prefix: str) -> None:
    assert _fault_fields([prefix + FAULT]) == [EXPECTED_FAULT]


@pytest.mark.parametrize(
    ("header", "stamp"),
    [
        ("[  478.907684] ", "478.907684"),
        ("[    0.000000] ", "0.000000"),
        ("[  +0.000006] ", "+0.000006"),
        ("[Tue May 26 08:41:57 2026] ", "Tue May 26 08:41:57 2026"),
        ("[Thu Jan  4 23:12:54 2024] ", "Thu Jan  4 23:12:54 2024"),
        ("[Aug 4 09:48] ", "Aug 4 09:48"),
        ("Nov 14 11:52:19 host kernel: ", "Nov 14 11:52:19"),
        ("Nov 14 11:52:19 host kernel: [   12.345678] ", "12.345678"),
        ("2026-05-26T08:41:57.123456+00:00 host kernel: ", "2026-05-26T08:41:57.123456+00:00"),
        ("2026-05-26T08:41:57,123456+00:00 ", "2026-05-26T08:41:57,123456+00:00"),
        ("kernel: ", None),
        ("<3>[   12.5] ", "12.5"),
        ("[   12.5] [  T123] ", "12.5"),
        ("kern  :err   : [   12.345] ", "12.345"),
        ("(XEN) [2020-02-03 10:11:12.123] ", "2020-02-03 10:11:12.123"),
        ("  kworker/0:1-123   [002] d..1  1234.567890: ", "1234.567890"),
        ("            perf  4123 [002]  1234.567890: ", "1234.567890"),  # perf script
        ("     kworker/0:1 12/12 [000]    56.000001: ", "56.000001"),  # perf script -F +tid
        ("", None),
    ],
)
def test_every_timestamp_style_is_kept_as_printed(header: str, stamp: str | None) -> None:
    _, items = read([header + FAULT])
    [record] = records(items)
    assert (record.timestamp, record.address, record.code) == (stamp, 0xB97FF000, 5)


def test_a_line_with_a_header_never_continues_the_one_before() -> None:
    assert normalise(1, "[  1.0] text").header
    assert normalise(1, "Nov 14 11:52:19 host kernel: text").header
    assert not normalise(1, "> fault addr 0x1000").header


# -- wrapping


@pytest.mark.parametrize("cut", range(1, len(FAULT.split())))
def test_a_fault_wrapped_at_any_word_is_read_whole(cut: int) -> None:
    words = FAULT.split()
    lines = [" ".join(words[:cut]), " ".join(words[cut:])]
    assert _fault_fields(lines) == [EXPECTED_FAULT]


@pytest.mark.parametrize("cut", range(1, len(DECODED[0].split()) - 2))
def test_decoded_smmu_lines_wrapped_anywhere_merge_with_their_raw_record(cut: int) -> None:
    words = DECODED[0].split()
    head = " ".join(words[: cut + 2])  # keep the "arm-smmu-v3 <unit>:" prefix on line 1
    lines = [*SMMU, head, " ".join(words[cut + 2 :]), DECODED[1]]
    _, items = read(lines)
    [record] = records(items)
    assert (record.line, record.device, record.raw is not None, record.pasid) == (
        1,
        "0000:75:00.1",
        True,
        1,
    )
    assert unrecognised(items) == []


def test_a_wrapped_dword_is_joined() -> None:
    lines = [*SMMU[:2], "arm-smmu-v3 arm-smmu-v3.3.auto:  0x00001200", "80000176", *SMMU[3:]]
    _, items = read(lines)
    [record] = records(items)
    assert (record.tag, record.stall) == (0x176, True)


def test_old_two_part_vtd_fault_with_its_reason_on_a_timestamped_line() -> None:
    lines = [
        "[    5.1] DMAR:[DMA Read] Request device [00:1f.2] fault addr 7ff000 ",
        "[    5.1] DMAR:[fault reason 06] PTE Read access is not set",
    ]
    _, items = read(lines)
    [record] = records(items)
    assert (record.line, record.source_id, record.address, record.code, record.reason) == (
        1,
        0xFA,
        0x7FF000,
        6,
        "PTE Read access is not set",
    )


def test_a_two_part_fault_whose_reason_never_comes_is_kept_without_it() -> None:
    lines = ["[ 5.1] DMAR:[DMA Read] Request device [00:1f.2] fault addr 7ff000", "[ 5.2] other"]
    [record] = records(read(lines)[1])
    assert (record.code, record.reason, record.address) == (None, None, 0x7FF000)


# -- eras of the VT-d fault line

_DEV = "Request device [00:02.0]"
_DEV0X = "Request device [0x00:0x02.0]"  # v5.14 only
_R12 = "[fault reason 0x12]"


@pytest.mark.parametrize(
    ("line", "pasid", "code"),
    [
        (
            "DMAR:[DMA Read] Request device [00:02.0] fault addr 7000 \n"
            "DMAR:[fault reason 12] non-zero reserved fields in PTE",
            None,
            12,
        ),
        (
            "DMAR: [DMA Read] Request device [00:02.0] fault addr 7000 [fault reason 12] x",
            None,
            12,
        ),
        (f"DMAR: [DMA Read] {_DEV} PASID 5 fault addr 7000 [fault reason 12] x", 5, 12),
        (f"DMAR: [DMA Read] {_DEV} PASID ffffffff fault addr 7000 [fault reason 12] x", None, 12),
        (f"DMAR: [DMA Read PASID 0x2a] {_DEV0X} fault addr 0x7000 {_R12} x", 0x2A, 0x12),
        (f"DMAR: [DMA Read NO_PASID] {_DEV0X} fault addr 0x7000 {_R12} x", None, 0x12),
        (f"DMAR: [DMA Read NO_PASID] {_DEV} fault addr 0x7000 {_R12} x", None, 0x12),
    ],
)  # fmt: skip
def test_every_era_of_the_vtd_fault_line(line: str, pasid: int | None, code: int) -> None:
    [record] = records(read(line.split("\n"))[1])
    assert (record.source_id, record.pasid, record.address, record.access, record.code) == (
        0x10,
        pasid,
        0x7000,
        "r",
        code,
    )


def test_xen_vtd_fault_and_its_reason_line() -> None:
    lines = [
        "(XEN) [VT-D]DMAR:[DMA Write] Request device [0001:04:00.4] fault addr 7cd2000, "
        "iommu reg = ffff82c000a0c000",
        "(XEN) [VT-D]DMAR: reason 0c - non-zero reserved fields in PTE",
    ]
    [record] = records(read(lines)[1])
    assert (record.device, record.source_id, record.address, record.access) == (
        "0001:04:00.4",
        0x4 << 8 | 4,
        0x7CD2000,
        "w",
    )
    assert (record.code, record.reason) == (0x0C, "non-zero reserved fields in PTE")


@pytest.mark.parametrize(("iova", "unit"), [("0xb97ff000", "dmar1"), ("0x1000", None)])
def test_the_pte_dump_after_a_fault_names_its_unit_when_the_iova_is_the_fault_s(
    iova: str, unit: str | None
) -> None:
    lines = [f"[ 1.0] {FAULT}", f"[ 1.0] DMAR: Dump dmar1 table entries for IOVA {iova}"]
    [record] = records(read(lines)[1])
    assert (record.unit, record.address) == (unit, 0xB97FF000)


def test_interrupt_remapping_fault_has_no_address() -> None:
    # an event, not a fault: no DMA was translated, so --scenario must not replay it as one
    line = (
        "DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x8000 [fault reason 0x25] "
        "Blocked a compatibility format interrupt request"
    )
    [record] = records(read([line])[1])
    assert (record.kind, record.address, record.access, record.code) == ("event", None, None, 0x25)


def test_a_redacted_address_is_not_understood_and_names_its_line() -> None:
    lines = ["foo", FAULT.replace("0xb97ff000", "0x...")]
    _, items = read(lines)
    assert records(items) == []
    assert [(u.line, u.text) for u in unrecognised(items)] == [(2, lines[1])]


# -- SMMUv3 traps


def test_foreign_lines_between_header_and_dwords_and_two_units_interleaved() -> None:
    other = [line.replace("arm-smmu-v3.3.auto", "arm-smmu-v3.9.auto") for line in SMMU]
    lines = [SMMU[0], "hisi_zip 0000:31:00.0: qm_axi_rresp", other[0], SMMU[1], other[1]]
    lines += ["random console garbage \x1b[0m", SMMU[2], other[2], other[3], SMMU[3], SMMU[4]]
    lines += [other[4]]
    _, items = read(lines)
    assert [(r.line, r.unit, r.source_id) for r in records(items)] == [
        (1, "arm-smmu-v3.3.auto", 0x7501),
        (3, "arm-smmu-v3.9.auto", 0x7501),
    ]


def test_a_dword_split_by_a_space_is_one_dword() -> None:
    lines = [*SMMU[:2], "arm-smmu-v3 arm-smmu-v3.3.auto:  0x00001200 80000176", *SMMU[3:]]
    [record] = records(read(lines)[1])
    assert record.raw == "1018000001750000" + "7601008000120000" + "00f07adaaaaa0000" * 2


def test_a_record_cut_by_the_next_header_is_not_understood_and_the_next_is_read() -> None:
    lines = [*SMMU[:3], *SMMU]
    _, items = read(lines)
    assert [(u.line, u.why) for u in unrecognised(items)] == [
        (1, "a record cut after 2 of 4 dwords")
    ]
    assert [r.line for r in records(items)] == [4]


def test_decoded_line_glued_to_the_next_message_and_that_message_is_read_too() -> None:
    glued = DECODED[1] + "arm-smmu-v3 arm-smmu-v3.3.auto: event 0x10 received:"
    lines = [*SMMU, DECODED[0], glued, *SMMU[1:]]
    _, items = read(lines)
    assert [(r.line, r.device, r.tag) for r in records(items)] == [
        (1, "0000:75:00.1", 0x176),
        (7, None, 0x176),
    ]


def test_decoded_line_glued_to_foreign_text_keeps_its_stag() -> None:
    lines = [DECODED[0], DECODED[1] + "[ 12.3] hisi_zip: done"]
    [record] = records(read(lines)[1])
    assert (record.raw, record.tag, record.stall, record.kind) == (
        None,
        0x176,
        True,
        "page_request",
    )


def test_decoded_lines_that_do_not_match_the_raw_record_are_another_record() -> None:
    lines = [*SMMU, DECODED[0].replace("sid: 0x7501", "sid: 0x7502"), DECODED[1]]
    assert [(r.line, r.source_id, r.raw is None) for r in records(read(lines)[1])] == [
        (1, 0x7501, False),
        (6, 0x7502, True),
    ]


def test_dwords_whose_header_was_cut_off_are_still_read() -> None:
    [record] = records(read(SMMU[1:])[1])
    assert (record.line, record.code, record.source_id) == (1, 0x10, 0x7501)


def test_xen_smmu_prefix() -> None:
    lines = [
        line.replace("arm-smmu-v3 arm-smmu-v3.3.auto:", "(XEN) SMMUv3: /smmu@4f000000:")
        for line in SMMU
    ]
    [record] = records(read(lines)[1])
    assert (record.unit, record.source_id) == ("/smmu@4f000000", 0x7501)


def test_pri_request_line() -> None:
    lines = [
        "arm-smmu-v3 fc900000.iommu: unexpected PRI request received:",
        "arm-smmu-v3 fc900000.iommu: \tsid 0x00000010.0x00002: [7*] unprivileged RW access "
        "at iova 0x0000000000401000",
    ]
    [record] = records(read(lines)[1])
    assert (
        record.kind,
        record.source_id,
        record.pasid,
        record.tag,
        record.access,
        record.address,
    ) == (
        "page_request",
        0x10,
        2,
        7,
        "rw",
        0x401000,
    )


# -- rate limiting


def test_only_iommu_printers_count_as_suppressed_records() -> None:
    lines = [
        "[ 1.0] arm_smmu_evtq_thread: 7 callbacks suppressed",
        "[ 1.0] dmar_fault: 5 callbacks suppressed",
        "[ 1.0] amd_iommu_report_page_fault: 113 callbacks suppressed  ",
        "[ 1.0] viommu_fault_handler: 2 callbacks suppressed",
        "[ 1.0] nvme_timeout: 1000 callbacks suppressed",
        "[ 1.0] dmar_fault: 3 callbacks suppressed, and that is odd",
    ]
    reader, items = read(lines)
    assert items == []
    # amd_iommu_report_page_fault counts only when an AMD-Vi format is installed
    amd = "amd_iommu_report_page_fault" in {f for fmt in reader.formats for f in fmt.ratelimited}
    assert reader.stats.suppressed == 7 + 5 + 2 + 3 + (113 if amd else 0)


def test_a_suppressed_line_behind_a_vendors_word_is_counted() -> None:
    reader, items = read(["arm-smmu-v3 u0: arm_smmu_evtq_thread: 9 callbacks suppressed"])
    assert items == [] and reader.stats.suppressed == 9


def test_nothing_recognised_is_not_an_error() -> None:
    reader, items = read(["hello", "", "[ 1.0] usb 1-1: new device"])
    assert items == [] and reader.stats.lines == 3


# -- AMD-Vi and RISC-V IOMMU eras


def test_amd_old_event_printed_in_two_printks_is_joined() -> None:
    lines = [
        "[    0.9] AMD-Vi: Event logged [",
        "[    0.9] IO_PAGE_FAULT device=00:14.0 domain=0x0000 address=0x00000000fdf9f000 "
        "flags=0x0020]",
    ]
    [record] = records(read(lines)[1])
    assert (record.line, record.device, record.source_id, record.address, record.access) == (
        1,
        "0000:00:14.0",
        0x14 << 3,
        0xFDF9F000,
        "w",
    )


def test_amd_global_format_with_segment_and_other_events() -> None:
    event = "AMD-Vi: Event logged "
    lines = [
        event + "[IO_PAGE_FAULT device=0001:02:00.3 domain=0x0000 address=0x1000 flags=0x0000]",
        event + "[ILLEGAL_DEV_TABLE_ENTRY device=0000:00:00.2 pasid=0x00000 address=0x0 "
        "flags=0x0080]",
        "AMD-Vi: DTE[0]: 7000000000000003",
        event + "[INVALID_PPR_REQUEST device=0000:05:00.0 pasid=0x00012 address=0x2000 "
        "flags=0x0001]",
    ]
    got = [(r.kind, r.device, r.code, r.reason, r.pasid) for r in records(read(lines)[1])]
    assert got == [
        ("fault", "0001:02:00.3", 2, "IO_PAGE_FAULT", None),
        ("event", "0000:00:00.2", 1, "ILLEGAL_DEV_TABLE_ENTRY", None),  # GN clear
        ("event", "0000:05:00.0", 9, "INVALID_PPR_REQUEST", 0x12),  # GN set
    ]


def test_amd_ppr_debug_line_is_a_page_request() -> None:
    line = (
        "AMD-Vi: PPR logged [Request ignored due to GN=0 (device=0000:03:00.0 pasid=0x00005 "
        "address=0x7f0000001000 flags=0x0024 tag=0x205)]"
    )
    [record] = records(read([line])[1])
    assert (record.kind, record.pasid, record.access, record.tag, record.reason) == (
        "page_request",
        None,  # GN (0x100) clear
        "rwp",  # READ 0x004, WRITE 0x020, US clear
        0x5,  # PRG index: the tag without its last-in-group bit 0x200
        "Request ignored due to GN=0",
    )


def test_amd_redacted_address_is_not_understood() -> None:
    line = (
        "amdgpu 0000:03:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0010 address=0x... "
        "flags=0x0]"
    )
    _, items = read([line])
    assert records(items) == [] and [u.line for u in unrecognised(items)] == [1]


RISCV_LINES = [
    (
        "riscv-iommu 10000000.iommu: Fault 13 devid: 0x1f iotval: 1000 iotval2: 0",
        ("10000000.iommu", 0x1F, 13, "fault", 0x1000),
    ),
    ("Fault 21 devid: 31 iotval: 1000 iotval2: 0", (None, 31, 21, "fault", 0x1000)),  # RFC
    ("Fault 258 devid: 0x2 iotval: 0 iotval2: 0", (None, 2, 258, "event", None)),
    ("Fault 12 ttyp 1 devid: 0x2 iotval: 0x4000 iotval2: 0", (None, 2, 12, "fault", 0x4000)),
]


@pytest.mark.parametrize(("line", "expected"), RISCV_LINES)
def test_riscv_fault_line_variants(line: str, expected: tuple[object, ...]) -> None:
    [record] = records(read([line])[1])
    assert (record.unit, record.source_id, record.code, record.kind, record.address) == expected
