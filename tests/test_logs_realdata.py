"""``ioasid logs`` on every real sample (tests/data/realdata, copied from shared/realdata).

Every expected value below was worked out by hand from the formats (real-world-formats.md)
and, for raw entries, from the record layouts: the SMMUv3 event record (ID dw0[7:0], SSV
dw0[11], SSID dw0[31:12], SID dw0[63:32], STAG dw1[15:0], STALL dw1[31], PnU dw1[33], InD
dw1[34], RnW dw1[35], S2 dw1[39], input address dw2), its ``raw`` the four dwords as
little-endian bytes. Line numbers count from the sample's first line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

# The helpers live in tests/logs_helpers.py: ``tests.logs_helpers`` at run time, known to
# mypy (which checks ``tests`` as top-level modules) as ``logs_helpers``.
if TYPE_CHECKING:
    from logs_helpers import read, rec, records, samples, unrecognised
else:
    from tests.logs_helpers import read, rec, records, samples, unrecognised

F_TRANSLATION = "F_TRANSLATION"
ZERO_DWORD = "0000000000000000"


def _check(lines: list[str], expected: list[dict[str, object]]) -> None:
    _, items = read(lines)
    assert [r.as_dict() for r in records(items)] == expected


VTD = samples("vtd-faults.txt")
SMMU = samples("smmuv3-events.txt")


def test_every_sample_file_has_its_samples() -> None:
    assert len(VTD) == 9 and len(SMMU) == 9
    assert set(samples("iommu-traces.txt")) == {"trace-01-intel-prq_report-sample"}


# -- VT-d


def test_vtd_01_journal_prefix_quoted_two_faults_no_pasid() -> None:
    fault = {
        "device": "0000:00:1e.3",
        "source_id": 0x1E << 3 | 3,
        "address": 0xFFFFA000,
        "access": "r",
        "code": 0x06,
        "reason": "PTE Read access is not set",
    }
    _check(
        VTD["vtd-01-applespi-macbookpro"],
        [rec("vtd", "fault", 4, **fault), rec("vtd", "fault", 6, **fault)],
    )


def test_vtd_04_folded_subject_pre_5_10_format_decimal_reason_pasid_ffffffff() -> None:
    _check(
        VTD["vtd-04-bugzilla-209321-old-format"],
        [
            rec(
                "vtd",
                "fault",
                1,
                device="0000:03:00.0",
                source_id=0x300,
                address=0xFFFD3000,
                access="r",
                code=6,
                reason="PTE Read access is not set",
            )
        ],
    )


def test_vtd_07_wrapped_quoted_cut_reason_text_unit_from_the_pte_dump() -> None:
    # v5.16+: "Dump dmar5 table entries for IOVA 0xffffd000" follows the fault at that IOVA
    _check(
        VTD["vtd-07-kdump-scalable-dump-truncated"],
        [
            rec(
                "vtd",
                "fault",
                2,
                timestamp="13.396478",
                unit="dmar5",
                device="0000:81:00.0",
                source_id=0x8100,
                address=0xFFFFD000,
                access="r",
                code=0x59,
                reason="SM: Present bit in PA$",
            )
        ],
    )


def test_vtd_10_reason_wrapped_onto_the_next_line() -> None:
    _check(
        VTD["vtd-10-thinkpad-x201-calpella"],
        [
            rec(
                "vtd",
                "fault",
                2,
                device="0000:00:02.0",
                source_id=0x10,
                address=0xB97FF000,
                access="w",
                code=5,
                reason="PTE Write access is not set",
            )
        ],
    )


def test_vtd_13_dmesg_T_wrapped_three_lines_with_elision() -> None:
    reason = "SM: Present bit in Root Entry is clear"
    _check(
        VTD["vtd-13-kdump-root-entry-2026"],
        [
            rec(
                "vtd",
                "fault",
                1,
                timestamp="Tue May 26 08:41:57 2026",
                device="0000:80:1f.6",
                source_id=0x80 << 8 | 0x1F << 3 | 6,
                address=0x106F1C000,
                access="w",
                code=0x39,
                reason=reason,
            ),
            rec(
                "vtd",
                "fault",
                8,
                timestamp="Tue May 26 08:42:02 2026",
                device="0000:80:14.0",
                source_id=0x80 << 8 | 0x14 << 3,
                address=0x1075140000,
                access="r",
                code=0x39,
                reason=reason,
            ),
        ],
    )


def test_vtd_16_deep_quote_prefix_and_a_debug_line_that_is_no_record() -> None:
    _check(
        VTD["vtd-16-i915-old-format-qp-decoded"],
        [
            rec(
                "vtd",
                "fault",
                2,
                device="0000:00:02.0",
                source_id=0x10,
                address=0x7FA8A78000,
                access="w",
                code=5,
                reason="PTE Write access is not set",
            )
        ],
    )


def test_vtd_20_both_eras_in_one_log_decimal_07_and_hex_bdf_prefix() -> None:
    common = {"device": "0000:00:02.0", "source_id": 0x10, "access": "r"}
    _check(
        VTD["vtd-20-sof-ignore-list-old-format"],
        [
            rec(
                "vtd",
                "fault",
                2,
                address=0x70AD5000,
                code=7,
                reason="Next page table ptr is invalid",
                **common,
            ),
            rec(
                "vtd",
                "fault",
                3,
                address=0x7C592000,
                code=6,
                reason="PTE Read access is not set",
                **common,
            ),
        ],
    )


def test_vtd_prq_02_privilege_mode_messages() -> None:
    stamps = ["180.187556", "180.187565", "180.279933", "180.279937"]
    _check(
        VTD["vtd-prq-02-unexpected-privilege-mode-pasid-reuse"],
        [
            rec(
                "vtd",
                "message",
                n,
                timestamp=stamp,
                reason="Unexpected page request in Privilege Mode",
            )
            for n, stamp in enumerate(stamps, 1)
        ],
    )


def test_vtd_prq_03_no_pasid_message_and_an_elided_descriptor_is_not_understood() -> None:
    lines = VTD["vtd-prq-03-dsa-page-request-without-pasid"]
    _, items = read(lines)
    assert [r.as_dict() for r in records(items)] == [
        rec("vtd", "message", 1, unit="dmar12", reason="Page request without PASID")
    ]
    assert [(u.line, u.text) for u in unrecognised(items)] == [
        (2, "dmar12: Invalid page request: [...]")
    ]


def test_prq_report_trace_addr_is_a_page_number() -> None:
    pages = [0x559EF6F97, 0x559EF6F9C, 0x559EF6F98, 0x559EF6F9D]
    pages += [0x559EF6F99, 0x559EF6F9E, 0x559EF6F9A, 0x559EF6F9F]
    _check(
        samples("iommu-traces.txt")["trace-01-intel-prq_report-sample"],
        [
            rec(
                "vtd",
                "page_request",
                n,
                unit="dmar0",
                device="0000:00:0a.0",
                source_id=0x50,
                pasid=2,
                address=page << 12,
                access="r" if n % 2 else "rw",
                tag=1,
            )
            for n, page in enumerate(pages, 1)
        ],
    )


# -- SMMUv3


def test_smmu_01_stalled_read_is_a_page_request() -> None:
    # dw0 0x0000310200000010: ID 0x10, SSV 0, SID 0x3102. dw1 0x000002088000007f: STAG 0x7f,
    # STALL 1, RnW 1 (bit 35), S2 0.
    _check(
        SMMU["smmu-01-hisi-acc-migration"],
        [
            rec(
                "smmuv3",
                "page_request",
                1,
                timestamp="478.907684",
                unit="arm-smmu-v3.2.auto",
                source_id=0x3102,
                address=0,
                access="r",
                code=0x10,
                reason=F_TRANSLATION,
                stall=True,
                tag=0x7F,
                raw="1000000002310000" + "7f00008008020000" + ZERO_DWORD * 2,
            )
        ],
    )


def test_smmu_04_not_stalled_is_a_fault() -> None:
    _check(
        SMMU["smmu-04-hns-roce-qpc"],
        [
            rec(
                "smmuv3",
                "fault",
                1,
                timestamp="173.183547",
                unit="arm-smmu-v3.1.auto",
                source_id=0x7D00,
                address=0xF47CF000,
                access="r",
                code=0x10,
                reason=F_TRANSLATION,
                stall=False,
                tag=0x80,
                raw="10000000007d0000" + "8000000009020000" + "00f07cf400000000" * 2,
            )
        ],
    )


def test_smmu_09_overflow_message_suppressed_count_and_tab_dwords() -> None:
    reader, items = read(SMMU["smmu-09-tegra-thor-evtq-overflow"])
    assert [r.as_dict() for r in records(items)] == [
        rec(
            "smmuv3",
            "message",
            8,
            timestamp="3265.542672",
            unit="8806000000.iommu",
            reason="EVTQ overflow detected -- events lost",
        ),
        rec(
            "smmuv3",
            "fault",
            10,
            timestamp="3265.550001",
            unit="8806000000.iommu",
            source_id=0x900,
            address=0x7FFD105A00,
            access="r",
            code=0x10,
            reason=F_TRANSLATION,
            stall=False,
            tag=0,
            raw="1000000000090000" + "0000000008020000" + "005a10fd7f000000" + ZERO_DWORD,
        ),
    ]
    assert reader.stats.suppressed == 25830


def test_smmu_18_record_cut_after_three_dwords_is_not_understood() -> None:
    lines = SMMU["smmu-18-bad-cd-softlockup"]
    _, items = read(lines)
    assert records(items) == []
    assert [(u.line, u.text) for u in unrecognised(items)] == [(1, lines[0])]


def test_smmu_24_raw_then_wrapped_decoded_lines_are_one_record_with_the_client() -> None:
    # dw0 0x0000750100001810: SSV 1, SSID 1, SID 0x7501; dw1 0x0000120080000176: STALL,
    # STAG 0x176, RnW 0 (write), S2 0: a page request.
    _check(
        SMMU["smmu-24-sva-stall-ssid1-iommufd"],
        [
            rec(
                "smmuv3",
                "page_request",
                32,
                timestamp="1016.546403",
                unit="arm-smmu-v3.3.auto",
                device="0000:75:00.1",
                source_id=0x7501,
                pasid=1,
                address=0xAAAADA7AF000,
                access="w",
                code=0x10,
                reason=F_TRANSLATION,
                stall=True,
                tag=0x176,
                raw="1018000001750000" + "7601008000120000" + "00f07adaaaaa0000" * 2,
            )
        ],
    )


def test_smmu_11_wide_indent_sid_zero() -> None:
    _check(
        SMMU["smmu-11-rk3588-epf-doorbell-sid0"],
        [
            rec(
                "smmuv3",
                "fault",
                2,
                timestamp="118.912433",
                unit="fc900000.iommu",
                source_id=0,
                address=0xFFFFFF90F040,
                access="w",
                code=0x10,
                reason=F_TRANSLATION,
                stall=False,
                tag=0,
                raw="1000000000000000" + "0000000000020000" + "40f090ffffff0000" + ZERO_DWORD,
            )
        ],
    )


def test_smmu_15_pipe_quoted_bad_streamid_is_an_event_without_address() -> None:
    _check(
        SMMU["smmu-15-ampereone-sidbits-bad-streamid"],
        [
            rec(
                "smmuv3",
                "event",
                1,
                unit="arm-smmu-v3.5.auto",
                source_id=0xC900,
                code=0x02,
                reason="C_BAD_STREAMID",
                raw="0200000000c90000" + ZERO_DWORD * 3,
            )
        ],
    )


def test_smmu_19_ssid_stalls_and_configuration_events() -> None:
    unit = "1000000.smmu"

    def stall(line: int, stamp: str, stag: int, addr: int, *dws: str) -> dict[str, object]:
        return rec(
            "smmuv3",
            "page_request",
            line,
            timestamp=stamp,
            unit=unit,
            source_id=1,
            pasid=2,
            address=addr,
            access="r",
            code=0x10,
            reason=F_TRANSLATION,
            stall=True,
            tag=stag,
            raw="1028000001000000" + "".join(dws) + ZERO_DWORD,
        )

    def event(line: int, stamp: str, code: int, name: str) -> dict[str, object]:
        dw0 = f"{code:02x}00000001000000"
        return rec(
            "smmuv3",
            "event",
            line,
            timestamp=stamp,
            unit=unit,
            source_id=1,
            code=code,
            reason=name,
            raw=dw0 + ZERO_DWORD * 3,
        )

    _check(
        SMMU["smmu-19-ssid-events-pasid-num-bits"],
        [
            stall(1, "130.837807", 0xB17, 0x9F44A0300, "170b008008020000", "00034af409000000"),
            stall(6, "130.874834", 0xB18, 0x9F44A0380, "180b008008020000", "80034af409000000"),
            event(11, "27.960983", 0x06, "F_STREAM_DISABLED"),
            event(16, "27.999578", 0x06, "F_STREAM_DISABLED"),
            event(21, "42.463517", 0x08, "C_BAD_SUBSTREAMID"),
            event(26, "42.502219", 0x08, "C_BAD_SUBSTREAMID"),
        ],
    )


def test_smmu_25_decoded_lines_of_an_earlier_record_then_a_raw_one() -> None:
    common = {
        "unit": "arm-smmu-v3.4.auto",
        "source_id": 0x8700,
        "access": "w",
        "code": 0x10,
        "reason": F_TRANSLATION,
        "stall": False,
        "tag": 0,
    }
    _check(
        SMMU["smmu-25-megaraid-decoded-first"],
        [
            rec(
                "smmuv3",
                "fault",
                1,
                timestamp="420.979049",
                device="0000:87:00.0",
                address=0x272F7900,
                **common,
            ),
            rec(
                "smmuv3",
                "fault",
                3,
                timestamp="421.241596",
                address=0x272F7800,
                raw="1000000000870000"
                + "0000000000020000"
                + "00782f2700000000"
                + "00702f2700000000",
                **common,
            ),
        ],
    )


# -- virtio-iommu


def test_virtio_01_faults_with_empty_flags_and_suppressed() -> None:
    reader, items = read(samples("virtio-iommu-faults.txt")["virtio-01-qemu-injected-faults"])
    expected = [
        (3, "32.951225", 0x103231000, 0, "unknown"),
        (4, "32.951702", 0x103231000, 2, "page"),
        (5, "32.951949", 0x103231000, 0, "unknown"),
        (6, "32.952212", 0x103231000, 2, "page"),
        (7, "32.952460", 0x1032271C0, 0, "unknown"),
    ]
    assert [r.as_dict() for r in records(items)] == [
        rec(
            "virtio-iommu",
            "fault",
            line,
            timestamp=stamp,
            unit="virtio0",
            source_id=32,
            address=addr,
            access="",
            code=code,
            reason=word,
        )
        for line, stamp, addr, code, word in expected
    ]
    assert reader.stats.suppressed == 1330


@pytest.mark.parametrize("name", sorted(samples("smmuv3-queue-sizes.txt")))
def test_queue_size_boot_lines_are_no_records(name: str) -> None:
    _, items = read(samples("smmuv3-queue-sizes.txt")[name])
    assert items == []


# -- AMD-Vi (flags: RW 0x020 = write; PPR flags: WRITE 0x020, US 0x040 clear = privileged)

AMD = samples("amd-vi-events.txt")
IO_PAGE_FAULT = {"code": 0x2, "reason": "IO_PAGE_FAULT"}


def test_amd_01_per_device_lines_among_amdgpu_lines_read_and_write() -> None:
    dev = {"device": "0000:03:00.0", "source_id": 0x03 << 8, "address": 0x64A7F000}
    _check(
        AMD["amd-01-rocm-matrixtranspose"],
        [
            rec("amd-vi", "fault", 2, timestamp="262.094625", access="r", **dev, **IO_PAGE_FAULT),
            rec("amd-vi", "fault", 11, timestamp="262.094688", access="w", **dev, **IO_PAGE_FAULT),
            rec("amd-vi", "fault", 12, timestamp="262.230974", access="w", **dev, **IO_PAGE_FAULT),
        ],
    )


def test_amd_04_dmesg_T_with_padded_day() -> None:
    stamp = "Thu Jan  4 23:12:54 2024"  # as printed: dmesg -T pads the day (%e)
    dev = {"device": "0000:28:00.0", "source_id": 0x28 << 8, "access": "r", "timestamp": stamp}
    _check(
        AMD["amd-04-ahci-asmedia-wrx80"],
        [
            rec("amd-vi", "fault", n, address=addr, **dev, **IO_PAGE_FAULT)
            for n, addr in ((2, 0x7FFFFF00000), (3, 0x7FFFFF00300), (4, 0x7FFFFF00380))
        ],
    )


def test_amd_07_human_timestamps_first_absolute_then_relative() -> None:
    dev = {"device": "0000:47:00.1", "source_id": 0x47 << 8 | 1, "access": "r"}
    _check(
        AMD["amd-07-xhci-gregkh-relative-ts"],
        [
            rec("amd-vi", "fault", n, timestamp=stamp, address=addr, **dev, **IO_PAGE_FAULT)
            for n, stamp, addr in (
                (1, "Aug 4 09:48", 0xFFFFFFF00000),
                (2, "+0.000012", 0xFFFFFFF00F80),
                (3, "+0.000006", 0xFFFFFFF01000),
            )
        ],
    )


def test_amd_10_old_global_format_device_without_segment() -> None:
    dev = {"device": "0000:01:00.0", "source_id": 0x100, "address": 0xBEA106C0, "access": "r"}
    _check(
        AMD["amd-10-usb3-forum-2014"],
        [
            rec("amd-vi", "fault", 1, timestamp="1.473381", **dev, **IO_PAGE_FAULT),
            rec("amd-vi", "fault", 2, timestamp="1.473382", **dev, **IO_PAGE_FAULT),
        ],
    )


def test_amd_13_suppressed_line_with_trailing_spaces() -> None:
    reader, items = read(AMD["amd-13-vfio-callbacks-suppressed"])
    assert [r.as_dict() for r in records(items)] == [
        rec(
            "amd-vi",
            "fault",
            2,
            timestamp="1065.485086",
            device="0000:06:00.0",
            source_id=0x600,
            address=0x342230000,
            access="r",
            **IO_PAGE_FAULT,
        )
    ]
    assert reader.stats.suppressed == 113


def test_amd_16_kfd_invalid_ppr_is_a_page_request() -> None:
    ppr = {
        "timestamp": "Sep 22 15:32:35",
        "device": "0000:00:01.0",
        "source_id": 1 << 3,
        "pasid": 1,
        "access": "wp",  # 0x120: GN | WRITE, US clear
        "reason": "Invalid PPR (amdkfd could not resolve it)",
    }
    _check(
        AMD["amd-16-kfd-invalid-ppr-pasid-1"],
        [
            rec("amd-vi", "page_request", 1, address=0x745000, **ppr),
            rec("amd-vi", "page_request", 3, address=0x741000, **ppr),
            rec("amd-vi", "page_request", 5, address=0x745000, **ppr),
        ],
    )


def test_amd_19_flags_0x70_is_a_write() -> None:
    _check(
        AMD["amd-19-ath10k-apu2"],
        [
            rec(
                "amd-vi",
                "fault",
                1,
                timestamp="57.392307",
                device="0000:01:00.0",
                source_id=0x100,
                address=0xCFD51AD0,
                access="w",
                **IO_PAGE_FAULT,
            )
        ],
    )


# -- RISC-V IOMMU


def test_riscv_01_fault_15_with_appended_fields_is_a_write_page_fault() -> None:
    _check(
        samples("riscv-iommu-faults.txt")["riscv-01-cove-io-modified-kernel"],
        [
            rec(
                "riscv-iommu",
                "fault",
                1,
                source_id=0x10,
                address=0x82D00000,
                access="w",
                code=15,
                reason="WR_FAULT_S",
            )
        ],
    )
