"""``ioasid logs`` on real logs it was not written against (tests/realdata_heldout, each
sample quoted from a public post named in its README and in the sample's ``# source`` lines).

Every expected value was read off the log text by hand: PCI source IDs as ``bus << 8 | dev <<
3 | fn``; VT-d reasons in decimal before v5.14 (``[fault reason 12]`` is 12) and hex after;
AMD-Vi ``access`` from the RW flag 0x020 and ``code`` from the event name (IO_PAGE_FAULT 2,
IOTLB_INV_TIMEOUT 7, INVALID_DEVICE_REQUEST 8); SMMUv3 fields from the event record layout
(ID dw0[7:0], SID dw0[63:32], STAG dw1[15:0], STALL dw1[31], PnU dw1[33], RnW dw1[35], S2
dw1[39], input address dw2) and ``raw`` the four dwords written out as little-endian bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from ioasid_core.logs import normalise
from ioasid_core.logs.scenario_out import ScenarioWriter
from ioasid_core.logs.source import iter_lines

if TYPE_CHECKING:
    from logs_helpers import HELDOUT, read, rec, records, samples, unrecognised
else:
    from tests.logs_helpers import HELDOUT, read, rec, records, samples, unrecognised

ZERO = "0" * 16
F_TRANSLATION = {"code": 0x10, "reason": "F_TRANSLATION"}


SAMPLES = {
    name: lines
    for path in sorted(HELDOUT.glob("*.txt"))
    for name, lines in samples(path.name, HELDOUT).items()
}


def _vtd(
    line: int, stamp: str | None, bdf: tuple[int, int, int], **fields: object
) -> dict[str, object]:
    bus, dev, fn = bdf
    return rec(
        "vtd",
        str(fields.pop("kind", "fault")),
        line,
        timestamp=stamp,
        device=f"0000:{bus:02x}:{dev:02x}.{fn}",
        source_id=bus << 8 | dev << 3 | fn,
        **fields,
    )


PTE_READ = {"access": "r", "code": 6, "reason": "PTE Read access is not set"}
PTE_WRITE = {"access": "w", "code": 5, "reason": "PTE Write access is not set"}
COMPLETION_WAIT = {"reason": "Completion-Wait loop timed out"}
IOTLB_TIMEOUT = {"code": 7, "reason": "IOTLB_INV_TIMEOUT"}
ILLEGAL_DTE = {"code": 1, "reason": "ILLEGAL_DEV_TABLE_ENTRY"}  # pasid=0x00000, GN clear: none


def _hns(line: int, stamp: str, stag: int, addr: int, *, dw1: str, dw2: str) -> dict[str, object]:
    return rec(
        "smmuv3",
        "page_request",
        line,
        timestamp=stamp,
        unit="arm-smmu-v3.2.auto",
        source_id=0x3501,
        address=addr,
        access="r",
        stall=True,
        tag=stag,
        raw="1000000001350000" + dw1 + dw2 + ZERO,
        **F_TRANSLATION,
    )


def _vsmmu(line: int, stamp: str) -> dict[str, object]:
    return rec(
        "smmuv3",
        "fault",
        line,
        timestamp=stamp,
        unit="9050000.smmuv3",
        source_id=0x200,
        address=0,
        access="w",
        stall=False,
        tag=0,
        raw="1000000000020000" + "0000000000020000" + ZERO * 2,
        **F_TRANSLATION,
    )


R8169 = rec(
    "smmuv3",
    "fault",
    1,
    unit="490d0000.iommu",
    device="0000:01:00.0",
    source_id=0x11,
    address=0x9B0CC000,
    access="rp",
    stall=False,
    tag=0,
    raw="1000000011000000" + "000000000a020000" + "00c00c9b00000000" + ZERO,
    **F_TRANSLATION,
)

# name: (records, unrecognised line numbers, records lost to rate limiting)
EXPECTED: dict[str, tuple[list[dict[str, object]], list[int], int]] = {
    "h-vtd-01-onl-fault-addr-0-decimal-reason": (
        [
            _vtd(n, stamp, (0, 0x12, 0), address=0, **PTE_WRITE)
            for n, stamp in ((1, "10672.868940"), (3, "10672.869188"), (5, "10672.869448"))
        ],
        [],
        2474,
    ),
    "h-vtd-02-i915ovmf-pasid-ffffffff-storm": (
        [
            _vtd(n, stamp, (0, 2, 0), address=0x9C000000, **PTE_READ)
            for n, stamp in ((4, "144.480641"), (6, "144.497303"), (8, "144.513969"))
        ],
        [],
        2 * 893,
    ),
    "h-vtd-03-i915ovmf-skylake-context-entry-vfio": (
        [
            _vtd(
                2,
                "228.845965",
                (0, 2, 0),
                address=0,
                access="w",
                code=2,
                reason="Present bit in context entry is clear",
            ),
            _vtd(4, "228.857105", (0, 2, 0), address=0xB4000000, **PTE_READ),
            _vtd(6, "228.857720", (0, 2, 0), address=0xB403D000, **PTE_READ),
        ],
        [],
        0,
    ),
    "h-vtd-04-dasharo-root-entry": (
        [
            _vtd(
                n,
                stamp,
                (0, 2, 0),
                address=addr,
                access="r",
                code=1,
                reason="Present bit in root entry is clear",
            )
            for n, stamp, addr in ((1, "0.361089", 0x7CD80000), (3, "0.361102", 0x7CD87000))
        ],
        [],
        0,
    ),
    "h-vtd-05-sof-journal-0x-bdf": (
        [
            _vtd(
                1,
                "0.938401",
                (0, 2, 0),
                address=0x70AD5000,
                access="r",
                code=7,
                reason="Next page table ptr is invalid",
            ),
            _vtd(2, "0.960486", (0, 2, 0), address=0x7C346000, **PTE_READ),
        ],
        [],
        0,
    ),
    "h-vtd-06-sof-kernel-prefix-old-format": (
        [_vtd(2, "0.929877", (0, 2, 0), address=0x70E67000, **PTE_READ)],
        [],
        0,
    ),
    "h-vtd-07-tenstorrent-first-level-sm": (
        [
            _vtd(
                2,
                "6611.206544",
                (3, 0, 0),
                address=0x100000,
                access="r",
                code=0x71,
                reason="SM: Present bit in first-level paging entry is clear",
            )
        ],
        [],
        0,
    ),
    "h-vtd-08-lkml-2013-two-part-dmar-prefix": (
        [
            _vtd(
                1,
                "1692.021403",
                (0, 2, 0),
                address=0x1A45AA9000,
                access="r",
                code=12,
                reason="non-zero reserved fields in PTE",
            )
        ],
        [],
        0,
    ),
    "h-vtd-09-xen-eve-markdown-fenced": (
        [_vtd(1, None, (0, 2, 0), address=0x8E43C000, access="r")],
        [],
        0,
    ),
    "h-vtd-10-ithc-intr-remap-index": (
        [
            _vtd(
                2,
                None,
                (1, 5, 0),
                kind="event",
                code=0x26,
                reason="Blocked an interrupt request due to source-id verification failure",
            )
        ],
        [],
        0,
    ),
    "h-vtd-11-mgbench-redacted-two-part": ([], [1, 2], 0),
    "h-vtd-12-lake-dmesg-x-T-not-faults": ([], [], 0),
    "h-vtd-13-ubuntu-4.2-intr-remap-double-bracket": (
        [
            _vtd(
                4,
                "0.057770",
                (0xF0, 0x1F, 0),
                kind="event",
                code=37,
                reason="Blocked a compatibility format interrupt request",
            )
        ],
        [],
        0,
    ),
    "h-vtd-14-xen-4.12-wrapped-printk-suppressed": (
        [
            _vtd(n, None, (0, 2, 0), address=addr, access="r")
            for n, addr in ((2, 0x8E43C000), (5, 0x8E2C6000))
        ],
        [],
        0,  # Xen's "printk: N messages suppressed." is no IOMMU printer's count
    ),
    "h-vtd-15-xen-4.12-dma-and-intr-remap-reasons": (
        [
            _vtd(2, None, (0, 2, 0), address=0x8E480000, **PTE_READ),
            _vtd(
                4,
                None,
                (0xF0, 0x1F, 0),
                kind="event",
                code=0x22,  # Xen: "%02x"
                reason="Present field in the IRTE entry is clear",
            ),
        ],
        [],
        0,
    ),
    "h-vtd-16-xen-syslog-hypervisor-wrapped": (
        [
            _vtd(n, stamp, (0, 2, 0), address=addr, **PTE_READ)
            for n, stamp, addr in (
                (5, "Oct 14 18:41:49.056589", 0x39B5845000),
                (14, "Oct 14 18:41:49.056885", 0x4238D0A000),
            )
        ],
        [],
        0,
    ),
    "h-vtd-17-xen-s3-quoted-printable-timestamped": (
        [
            _vtd(
                n,
                stamp,
                (0, 0x1E, 6),
                address=0,
                access="w",
                code=2,
                reason="Present bit in context entry is clear",
            )
            for n, stamp in ((2, "37.201160"), (6, "37.202332"))
        ],
        [],
        0,
    ),
    "h-vtd-18-xen-boss-s1-quoted-printable-address": (
        [
            _vtd(n, None, (0x65, 0, 0), address=addr, **PTE_WRITE)
            for n, addr in (
                (2, 0x1200000000),
                (5, 0x1200001000),
                (8, 0x1200006000),
                (11, 0x1200008000),
            )
        ],
        [],
        0,
    ),
    "h-vtd-19-vmd-invalidation-queue-errors": (
        [
            rec("vtd", "message", 2, code=0xF, reason="Invalidation Queue Error"),
            rec("vtd", "message", 3, source_id=0xFFFF, reason="Invalidation Time-out Error"),
            rec("vtd", "message", 4, source_id=0xFFFF, reason="Invalidation Completion Error"),
        ],
        [],
        0,
    ),
    "h-vtd-20-rk3588-endpoint-ats-intel-host": (
        [rec("vtd", "message", 1, source_id=0, reason="Invalidation Time-out Error")],
        [],
        0,
    ),
    "h-vtd-21-launchpad-qemu-redacted-3.12": ([], [2, 3], 0),
    "h-vtd-22-firmware-bug-rmrr-boot-syslog": ([], [], 0),
    "h-vtd-23-firmware-bug-rmrr-indented-continuation": ([], [], 0),
    "h-amd-01-apu2-split-printk-kernel-prefix": (
        [
            rec(
                "amd-vi",
                "event",
                n,
                timestamp=stamp,
                device="0000:00:00.1",
                source_id=1,
                address=0xFDF8000020,
                access="r",
                code=8,
                reason="INVALID_DEVICE_REQUEST",
            )
            for n, stamp in ((1, "13.134460"), (3, "11.773399"))
        ]
        + [
            rec(
                "amd-vi",
                "fault",
                n,
                timestamp=stamp,
                device="0000:05:00.0",
                source_id=0x500,
                address=addr,
                access="w",
                code=2,
                reason="IO_PAGE_FAULT",
            )
            for n, stamp, addr in ((5, "221.562629", 0xFF6101B0), (7, "221.565938", 0xFF6101C0))
        ],
        [],
        0,
    ),
    "h-amd-02-popos-nvme-per-device-suppressed": (
        [
            rec(
                "amd-vi",
                "fault",
                n,
                timestamp=stamp,
                device="0000:01:00.0",
                source_id=0x100,
                address=addr,
                access="r",
                code=2,
                reason="IO_PAGE_FAULT",
            )
            for n, stamp, addr in (
                (3, "10.919607", 0xFC189000),
                (4, "10.920579", 0xFBEAF000),
                (5, "12.131977", 0xFFED5000),
            )
        ],
        [],
        96,
    ),
    "h-amd-03-endless-syslog-iotlb-timeout": (
        [
            rec("amd-vi", "message", 1, timestamp="Apr 09 11:28:59", **COMPLETION_WAIT),
            rec(
                "amd-vi",
                "event",
                2,
                timestamp="Apr 09 11:28:59",
                device="0000:01:00.0",
                source_id=0x100,
                address=0x216D8E620,
                **IOTLB_TIMEOUT,
            ),
        ],
        [],
        0,
    ),
    "h-amd-04-vendor-reset-hostless-syslog-segment": (
        [
            rec(
                "amd-vi",
                "event",
                n,
                timestamp=stamp,
                device="0000:0b:00.0",
                source_id=0xB00,
                address=addr,
                **IOTLB_TIMEOUT,
            )
            for n, stamp, addr in (
                (1, "Jun 15 11:58:56", 0x100215BA0),
                (2, "Jun 15 11:58:56", 0x100215BC0),
            )
        ]
        + [
            rec("amd-vi", "message", n, timestamp="Jun 15 11:58:56", **COMPLETION_WAIT)
            for n in (5, 6)
        ]
        + [
            rec(
                "amd-vi",
                "event",
                7,
                timestamp="Jun 15 11:58:57",
                device="0000:0b:00.0",
                source_id=0xB00,
                address=0x100215C30,
                **IOTLB_TIMEOUT,
            )
        ],
        [],
        0,
    ),
    "h-amd-05-rhkb-completion-wait-softlockup": (
        [
            rec("amd-vi", "message", n, timestamp="Dec 8 10:02:17", **COMPLETION_WAIT)
            for n in (1, 2)
        ],
        [],
        0,
    ),
    "h-amd-06-xen-4.14-xl-dmesg-page-faults": (
        [
            rec(
                "amd-vi",
                "fault",
                n,
                device="0000:00:14.0",
                source_id=0x14 << 3,
                address=addr,
                access="r",
                code=2,
                reason="IO_PAGE_FAULT",
            )
            for n, addr in ((3, 0xFDF8000140), (4, 0xFDF80F0160), (5, 0xFDF8100160))
        ],
        [],
        0,
    ),
    "h-amd-07-xen-redacted-device-debug-walk": ([], [1], 0),
    "h-amd-08-rk3588-endpoint-ats-amd-host": (
        [
            rec(
                "amd-vi",
                "event",
                1,
                device="0000:63:00.0",
                source_id=0x6300,
                address=0x42B5B01A0,
                **IOTLB_TIMEOUT,
            )
        ],
        [],
        0,
    ),
    "h-amd-09-bnxt-illegal-dte-control-reg": (
        [
            rec(
                "amd-vi",
                "event",
                n,
                device="0000:43:00.0",
                source_id=0x4300,
                address=0x3737B01000,
                access="w",
                **ILLEGAL_DTE,
            )
            for n in (1, 8)
        ],
        [],
        0,
    ),
    "h-amd-10-thinkbook-resume-illegal-dte-syslog": (
        [
            rec(
                "amd-vi",
                "event",
                1,
                timestamp="Nov 14 11:52:19",
                device="0000:06:00.0",
                source_id=0x600,
                address=0x135300000,
                access="r",
                **ILLEGAL_DTE,
            )
        ],
        [],
        0,
    ),
    "h-amd-11-bugzilla-218900-quoted-printable-wrapped": (
        [
            rec(
                "amd-vi",
                "event",
                1,
                timestamp="May 27 14:24:22",
                device="0000:00:01.0",
                source_id=0x1 << 3,
                address=0x102E89980,
                access="r",
                **ILLEGAL_DTE,
            )
        ],
        [],
        0,
    ),
    "h-smmu-01-hns-roce-storm-interleaved-cut": (
        [
            _hns(
                1, "382663.191495", 0x3F, 0xA50E0800, dw1="3f00008008020000", dw2="00080ea500000000"
            ),
            _hns(
                6,
                "382663.385557",
                0x43E,
                0xA50A0800,
                dw1="3e04008008020000",
                dw2="00080aa500000000",
            ),
            _hns(
                11,
                "382663.565023",
                0x436,
                0xA50A0880,
                dw1="3604008008020000",
                dw2="80080aa500000000",
            ),
            _hns(
                16,
                "382663.942132",
                0x43A,
                0xA50E0840,
                dw1="3a04008008020000",
                dw2="40080ea500000000",
            ),
        ],
        [23],  # a header and one dword, then the paste ends
        0,
    ),
    "h-smmu-02-hns3-page-pool-footnote-quoted": (
        [
            rec(
                "smmuv3",
                "fault",
                1,
                unit="arm-smmu-v3.6.auto",
                source_id=0xBD00,
                address=0xFF905800,
                access="w",
                stall=False,
                tag=0x7C,
                raw="1000000000bd0000"
                + "7c00000000120000"
                + "005890ff00000000"
                + "005090ff00000000",
                **F_TRANSLATION,
            )
        ],
        [],
        0,
    ),
    "h-smmu-03-qemu-vsmmu-interleaved-boot": (
        [_vsmmu(1, "1.966934"), _vsmmu(11, "1.970902"), _vsmmu(16, "1.971606")],
        [],
        0,
    ),
    "h-smmu-04-atl2-decoded-segment-0001": (
        [
            rec(
                "smmuv3",
                "fault",
                1,
                timestamp="70.355743",
                unit="arm-smmu-v3.5.auto",
                device="0001:06:00.0",
                source_id=0x20600,
                address=0xFF9BC000,
                access="w",
                stall=False,
                tag=0,
                raw="1000000000060200" + "0000000000020000" + "00c09bff00000000" + ZERO,
                **F_TRANSLATION,
            )
        ],
        [],
        0,
    ),
    "h-smmu-05-r8169-decoded-glued-deep-quote": ([R8169], [], 0),
    "h-smmu-06-r8169-quoted-printable-soft-breaks": ([R8169], [], 0),
    "h-smmu-07-xen-smmuv3-qemu-and-smmuv2": (
        [
            rec(
                "smmuv3",
                "fault",
                1,
                unit="/smmuv3@9050000",
                source_id=0x8,
                address=0x08090040,
                access="w",
                stall=False,
                tag=0,
                raw="1000000008000000" + "0000000080000000" + "4000090800000000" + ZERO,
                **F_TRANSLATION,
            )
        ],
        [6],  # Xen's SMMUv2 context fault
        0,
    ),
    "h-smmu-08-cmdq-error-skipped-command": ([], [], 0),
    "h-smmu2-01-mt76-ls1028-context-fault": ([], [2], 0),
    "h-smmu2-02-sm7150-qcom-decoded-fsr": ([], [1], 0),
}


def test_every_held_out_sample_has_its_expected_fields() -> None:
    assert set(SAMPLES) == set(EXPECTED)
    assert len(SAMPLES) == 44


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_held_out_log_is_read_field_by_field(name: str) -> None:
    expected, unread, lost = EXPECTED[name]
    reader, items = read(SAMPLES[name])
    assert [r.as_dict() for r in records(items)] == expected
    assert [u.line for u in unrecognised(items)] == unread
    assert reader.stats.suppressed == lost
    assert reader.stats.failures == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_held_out_log_saved_with_windows_line_endings_reads_the_same(name: str) -> None:
    lines = SAMPLES[name]
    crlf = [line + "\r\n" for line in lines]
    _, plain = read(lines)
    _, windows = read(crlf)
    assert [r.as_dict() for r in records(windows)] == [r.as_dict() for r in records(plain)]
    assert [u.line for u in unrecognised(windows)] == [u.line for u in unrecognised(plain)]


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: b"\xff\xfe" + text.encode("utf-16-le"),  # PowerShell 5's ">"
        lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
        lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),  # Notepad's UTF-8
    ],
    ids=["utf-16-le", "utf-16-be", "utf-8-bom"],
)
@pytest.mark.parametrize(
    "name",
    [
        "h-vtd-05-sof-journal-0x-bdf",
        "h-smmu-04-atl2-decoded-segment-0001",
        "h-amd-03-endless-syslog-iotlb-timeout",  # the mark before a syslog date
    ],
)
def test_a_held_out_log_saved_by_windows_tools_reads_the_same(
    name: str, encode: Callable[[str], bytes]
) -> None:
    lines = SAMPLES[name]
    data = encode("".join(line + "\r\n" for line in lines))
    _, plain = read(lines)
    _, saved = read(iter_lines(io.BytesIO(data), "log.txt"))
    assert [r.as_dict() for r in records(saved)] == [r.as_dict() for r in records(plain)]


def test_dmesg_x_T_keeps_the_two_spaces_of_a_day_below_10() -> None:
    for number, text in enumerate(SAMPLES["h-vtd-12-lake-dmesg-x-T-not-faults"], 1):
        line = normalise(number, text)
        assert line.timestamp == "Fri Apr  7 00:04:33 2023"
        assert line.body.startswith("DMAR: ")


def test_an_interrupt_remapping_fault_is_not_replayed_as_a_dma_request() -> None:
    writer = ScenarioWriter("heldout", ["vtd.txt"])
    for item in read(SAMPLES["h-vtd-13-ubuntu-4.2-intr-remap-double-bracket"])[1]:
        writer.add(item)
    assert writer.steps == []
