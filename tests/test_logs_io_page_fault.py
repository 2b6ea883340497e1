"""``ioasid logs`` reads the IOMMU layer's ``io_page_fault`` tracepoint, the core's own format.

Every line below is written by hand from the tracepoint's format, ``"IOMMU:%s %s
iova=0x%016llx flags=0x%04x"`` (driver string, device name; include/trace/events/iommu.h)
and the ftrace / trace-cmd line prefixes; every expected value is worked out by hand: a PCI
name ``SSSS:BB:DD.F`` gives the requester ID ``bus << 8 | device << 3 | function``, flags
0x0 is ``IOMMU_FAULT_READ`` and 0x1 ``IOMMU_FAULT_WRITE`` (include/linux/iommu.h).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.logs import LogFormat
from ioasid_core.logs.core_formats import CORE_LOG_FORMATS, with_core_formats
from ioasid_core.logs.io_page_fault import IO_PAGE_FAULT_FORMAT, IoPageFaultParser
from ioasid_core.scenario import load_scenario

if TYPE_CHECKING:
    from logs_helpers import installed_formats, read, rec, records, samples, unrecognised
else:
    from tests.logs_helpers import installed_formats, read, rec, records, samples, unrecognised

V = "iommu-core"
FTRACE = (
    "          <idle>-0       [003] d.h1.  1234.567890: io_page_fault: "
    "IOMMU:nvme 0000:01:00.0 iova=0x00000000fffff000 flags=0x0001"
)
"""A ``trace`` file line (``task-pid [cpu] flags seconds:``): a write fault of 01:00.0."""
NVME_WRITE = rec(
    V, "fault", 1, timestamp="1234.567890", device="0000:01:00.0", source_id=0x100,
    address=0xFFFFF000, access="w", code=1, reason="io_page_fault (nvme)",
)  # fmt: skip


def _read_dicts(lines: list[str]) -> list[dict[str, object]]:
    _, items = read(lines)
    assert not [u for u in unrecognised(items) if "io_page_fault" in u.text]
    return [r.as_dict() for r in records(items) if r.vendor == V]


def test_the_core_reads_it_in_every_run() -> None:
    assert CORE_LOG_FORMATS == (IO_PAGE_FAULT_FORMAT,)
    formats = installed_formats()
    assert formats[0] is IO_PAGE_FAULT_FORMAT
    assert [f.vendor for f in formats].count(V) == 1
    # no plugin at all: still read
    assert with_core_formats([])[0] == [IO_PAGE_FAULT_FORMAT]


def test_a_plugin_taking_the_core_vendor_name_is_left_out_and_said() -> None:
    impostor = LogFormat(vendor=V, triggers=("io_page_fault:",), new_parser=IoPageFaultParser)
    formats, problems = with_core_formats([impostor])
    assert formats == [IO_PAGE_FAULT_FORMAT]
    assert len(problems) == 1 and repr(V) in problems[0]


def test_a_plain_ftrace_line() -> None:
    assert _read_dicts([FTRACE]) == [NVME_WRITE]


def test_trace_pipe_with_the_tgid_column() -> None:
    line = (
        "   kworker/u16:3-517     (    517) [001] ....  88.000001: io_page_fault: "
        "IOMMU:nvme 0000:01:00.0 iova=0x00000000fffff000 flags=0x0001"
    )
    assert _read_dicts([line]) == [{**NVME_WRITE, "timestamp": "88.000001"}]


def test_a_trace_cmd_report_line_read_fault() -> None:
    # trace-cmd pads the event name; the IRQ thread's name holds another vendor's word
    line = (
        "    irq/35-AMD-Vi-142   [002]  5123.000042: io_page_fault:        "
        "IOMMU:xhci_hcd 0000:0c:00.3 iova=0x00000000dead0000 flags=0x0000"
    )
    assert _read_dicts(["cpus=4", line]) == [
        rec(
            V, "fault", 2, timestamp="5123.000042", device="0000:0c:00.3", source_id=0xC03,
            address=0xDEAD0000, access="r", code=0, reason="io_page_fault (xhci_hcd)",
        )
    ]  # fmt: skip


def test_a_platform_device_name_is_kept_without_a_source_id() -> None:
    line = (
        "  panfrost-job-211  [000] d.h..  73.250000: io_page_fault: "
        "IOMMU:panfrost e0000000.gpu iova=0x0000000000800040 flags=0x0001"
    )
    assert _read_dicts([line]) == [
        rec(
            V, "fault", 1, timestamp="73.250000", device="e0000000.gpu", address=0x800040,
            access="w", code=1, reason="io_page_fault (panfrost)",
        )
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "access", "code"),
    [("0x0000", "r", 0x0), ("0x0001", "w", 0x1), ("0x0005", None, 0x5)],
)
def test_access_from_the_flags(flags: str, access: str | None, code: int) -> None:
    # 0x5 is no IOMMU_FAULT_* value (a driver's own status word): no access is claimed
    line = (
        "  <idle>-0  [000] d.h1.  1.000000: io_page_fault: IOMMU:rk_iommu ff8f3f00.iommu "
        f"iova=0x0000000000001000 flags={flags}"
    )
    [record] = _read_dicts([line])
    assert (record["access"], record["code"], record["address"]) == (access, code, 0x1000)


def test_an_unbound_device_a_negative_flags_word_and_a_wide_pci_domain() -> None:
    lines = [
        # dev_driver_string() of a device with no driver and no bus: "", so "IOMMU: <name>"
        "io_page_fault: IOMMU: 0000:00:14.0 iova=0x0000000000000000 flags=0x0000",
        # %04x of a negative int: eight digits
        "io_page_fault: IOMMU:pci 0000:00:02.0 iova=0xffffffffffffe000 flags=0xffffffff",
        # a VMD domain (0x10000 and up) prints five digits: kept as printed, RID 0xe1 << 8
        "io_page_fault: IOMMU:nvme 10000:e1:00.0 iova=0x0000000000002000 flags=0x0001",
    ]
    assert _read_dicts(lines) == [
        rec(V, "fault", 1, device="0000:00:14.0", source_id=0xA0, address=0, access="r",
            code=0, reason="io_page_fault"),
        rec(V, "fault", 2, device="0000:00:02.0", source_id=0x10, address=0xFFFFFFFFFFFFE000,
            code=0xFFFFFFFF, reason="io_page_fault (pci)"),
        rec(V, "fault", 3, device="10000:e1:00.0", source_id=0xE100, address=0x2000,
            access="w", code=1, reason="io_page_fault (nvme)"),
    ]  # fmt: skip


def test_cut_redacted_and_foreign_lines_are_unrecognised_with_their_numbers() -> None:
    lines = [
        "          <idle>-0       [003] d.h1.  1.000001: io_page_fault: "
        "IOMMU:nvme 0000:01:00.0 iova=0x... flags=0x0001",  # redacted
        FTRACE,
        "[   12.000000] io_page_fault: IOMMU:nvme 0000:01:00.0 iova=0x00000000fff",  # cut
        "[   12.000001] usb 1-1: new high-speed USB device number 2 using xhci_hcd",
        "io_page_fault: something else entirely",
        "io_page_fault: IOMMU:nvme 0000:01:00.0 iova=0x00000000fffff000 flags=0x00",  # at EOF
    ]
    reader, items = read(lines)
    assert [r.as_dict() for r in records(items)] == [{**NVME_WRITE, "line": 2}]
    assert [(u.line, u.text) for u in unrecognised(items)] == [
        (1, lines[0]),
        (3, lines[2]),
        (5, lines[4]),
        (6, lines[5]),
    ]
    assert all(u.why for u in unrecognised(items)) and reader.stats.failures == []


def test_an_unreadable_line_takes_no_following_line_with_it() -> None:
    # only a record cut at its end waits for a wrapped rest: a redacted or over-long field
    # is decided at once, so the header-less line after it is not swallowed into it
    lines = [
        "io_page_fault: IOMMU:nvme 0000:01:00.0 iova=0x... flags=0x0001",
        "continuation-looking text without a header",
        "io_page_fault: IOMMU:nvme 0000:01:00.0 iova=0x100000000fffff000 flags=0x0001",
        "more text without a header",
        "io_page_fault: IOMMU:nvme 0000:01:00.0 iova=0x00000000fffff000 flags=0x000000001",
        "and more",
    ]
    _, items = read(lines)
    assert not records(items)
    assert [(u.line, u.text) for u in unrecognised(items)] == [
        (1, lines[0]),
        (3, lines[2]),  # 17 digits: wider than the u64 the tracepoint prints
        (5, lines[4]),  # 9 digits: wider than the int flags
    ]


def test_a_wrapped_mail_quoted_line_is_joined() -> None:
    lines = [
        "> [  478.907684] io_page_fault: IOMMU:nvme 0000:01:00.0",
        "> iova=0x00000000fffff000 flags=0x0001",
        "> [  478.907690] nvme nvme0: I/O 192 (Read) QID 8 timeout, aborting",
    ]
    assert _read_dicts(lines) == [{**NVME_WRITE, "timestamp": "478.907684"}]


def test_perf_script_names_the_event_with_its_system() -> None:
    line = (
        "   swapper     0 [002]  1234.567890: iommu:io_page_fault: "
        "IOMMU:nvme 0000:01:00.0 iova=0x00000000fffff000 flags=0x0001"
    )
    [record] = _read_dicts([line])
    assert (record["device"], record["address"], record["access"], record["timestamp"]) == (
        "0000:01:00.0",
        0xFFFFF000,
        "w",
        "1234.567890",
    )


def test_in_the_middle_of_a_real_amd_log() -> None:
    # amd-01 (ROCm issue 2642): report_iommu_fault() runs before the driver prints each
    # IO_PAGE_FAULT, so a trace taken meanwhile holds one io_page_fault per event logged
    real = samples("amd-vi-events.txt")["amd-01-rocm-matrixtranspose"]
    trace = (
        "     irq/25-AMD-Vi-120     [004] d.h1.   262.094620: io_page_fault: "
        "IOMMU:amdgpu 0000:03:00.0 iova=0x0000000064a7f000 flags=0x0000"
    )
    lines = [*real[:1], trace, *real[1:], trace.replace("flags=0x0000", "flags=0x0001")]
    _, alone = read(real)
    _, items = read(lines)
    amd = [r.as_dict() for r in records(items) if r.vendor == "amd-vi"]
    shifted = [{**r.as_dict(), "line": r.line + 1} for r in records(alone)]
    assert amd == shifted and len(amd) == 3  # the real records read as before, one line on
    assert not unrecognised(items)
    address = 0x64A7F000
    assert [r.as_dict() for r in records(items) if r.vendor == V] == [
        rec(V, "fault", 2, timestamp="262.094620", device="0000:03:00.0", source_id=0x300,
            address=address, access="r", code=0, reason="io_page_fault (amdgpu)"),
        rec(V, "fault", len(lines), timestamp="262.094620", device="0000:03:00.0",
            source_id=0x300, address=address, access="w", code=1,
            reason="io_page_fault (amdgpu)"),
    ]  # fmt: skip
    # the same device and address the driver printed
    assert {r["device"] for r in amd} == {"0000:03:00.0"}


def test_around_the_real_prq_report_trace() -> None:
    # trace-01's author stripped the ftrace prefixes and quoted with "| ": the same done here
    real = samples("iommu-traces.txt")["trace-01-intel-prq_report-sample"]
    mine = "| io_page_fault: IOMMU:idxd 0000:6a:01.0 iova=0x0000559ef6f97000 flags=0x0000"
    _, items = read([mine, *real, mine])
    found = records(items)
    assert [r.vendor for r in found] == [V] + ["vtd"] * len(real) + [V]
    # 6a:01.0: bus 0x6a << 8 | device 1 << 3 | function 0
    assert [(r.line, r.device, r.source_id, r.access, r.pasid) for r in found if r.vendor == V] == [
        (1, "0000:6a:01.0", 0x6A08, "r", None),
        (len(real) + 2, "0000:6a:01.0", 0x6A08, "r", None),
    ]
    assert {r.kind for r in found if r.vendor == "vtd"} == {"page_request"}
    assert not unrecognised(items)


# -- the command


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "trace.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_json_of_one_record(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, [FTRACE])), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    assert data == {
        "records": [
            {
                "vendor": "iommu-core",
                "kind": "fault",
                "line": 1,
                "timestamp": "1234.567890",
                "unit": None,
                "device": "0000:01:00.0",
                "source_id": 256,
                "pasid": None,
                "address": 4294963200,
                "access": "w",
                "code": 1,
                "reason": "io_page_fault (nvme)",
                "stall": None,
                "tag": None,
                "raw": None,
            }
        ],
        "unrecognised": [],
        "suppressed": 0,
    }


def test_the_vendor_option_names_it(tmp_path: Path) -> None:
    amd = (
        "amdgpu 0000:03:00.0: AMD-Vi: Event logged "
        "[IO_PAGE_FAULT domain=0x0010 address=0x1000 flags=0x0000]"
    )
    path = _write(tmp_path, [FTRACE, amd])
    result = CliRunner().invoke(cli, ["logs", str(path), "--vendor", V, "--json"])
    assert result.exit_code == 0, result.output
    assert [r["vendor"] for r in json.loads(result.stdout)["records"]] == [V]
    result = CliRunner().invoke(cli, ["logs", str(path), "--vendor", "nope"])
    assert result.exit_code == 2 and V in result.stderr


def test_the_table_shows_device_flags_and_driver(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["logs", str(_write(tmp_path, [FTRACE]))], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "0000:01:00.0" in result.stdout and "0x1 io_page_fault (nvme)" in result.stdout
    assert "iommu-core fault 1" in result.stdout


def test_scenario_replays_it_as_the_other_vendors_faults(tmp_path: Path) -> None:
    lines = [
        FTRACE,
        "          <idle>-0       [003] d.h1.  1234.567990: io_page_fault: "
        "IOMMU:panfrost e0000000.gpu iova=0x0000000000800040 flags=0x0001",
        "          <idle>-0       [003] d.h1.  1234.568890: io_page_fault: "
        "IOMMU:nvme 0000:01:00.0 iova=0x00000000fffff000 flags=0x0000",
    ]
    out = tmp_path / "out.toml"
    result = CliRunner().invoke(cli, ["logs", str(_write(tmp_path, lines)), "--scenario", str(out)])
    assert result.exit_code == 0, result.output
    scenario = load_scenario(out)
    [device] = scenario.platform.devices
    # no unit printed: behind one guessed unit, as any vendor's records that name none
    assert (device.name, device.unit, device.source_id) == (
        "0000:01:00.0",
        "iommu-core-unit",
        0x100,
    )
    steps = [s for s in scenario.steps if s.op == "page_requests"]
    # a fault without a PASID: a request without one; 1234.568890 - 1234.567890 = 1000 µs
    assert [(s.at, s.perm, s.pasid) for s in steps] == [
        (0.0, ("write",), None),
        (pytest.approx(1000.0), ("read",), None),
    ]
    text = out.read_text()
    assert "# - 1 records without a source ID" in text  # the platform device's
    assert "fault, log line 1" in text and "fault, log line 3" in text
    result = CliRunner().invoke(cli, ["compare", str(out), "--policies", "device"])
    assert result.exit_code == 0, result.output
