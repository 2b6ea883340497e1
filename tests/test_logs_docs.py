"""The log-format plugin shown in docs/writing-a-plugin.md works as printed: a reader copies
it first, it must not rot."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pluggy

from ioasid_core import hookspecs
from ioasid_core.logs import LogFormat, LogReader, LogRecord
from ioasid_core.markers import PROJECT
from ioasid_core.plugins import Hooks

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"


def _block(marker: str) -> str:
    blocks: list[str] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    [code] = [block for block in blocks if marker in block]
    return code


def _example() -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "acme_logs"}
    exec(compile(_block("ACME_LOG_FORMAT = LogFormat("), str(DOC), "exec"), namespace)
    return namespace


def test_the_documented_log_format_reads_its_example_and_a_paste() -> None:
    namespace = _example()
    fmt = namespace["ACME_LOG_FORMAT"]
    assert isinstance(fmt, LogFormat)
    reader = LogReader([fmt])
    lines = [
        *fmt.examples,
        "> Nov 14 11:52:19 host kernel: acme-iommu acme1: fault sid 0x7 pasid 0x1 addr 0x2000 "
        "(read)",
        "acme_fault_thread: 4 callbacks suppressed",
        "acme-iommu acme1: fault sid 0x",
    ]
    items = list(reader.read(lines))
    assert items[:2] == [
        LogRecord("acme", "fault", 1, "12.5", "acme0", None, 0x12, 3, 0x1000, "w"),
        LogRecord("acme", "fault", 2, "Nov 14 11:52:19", "acme1", None, 0x7, 1, 0x2000, "r"),
    ]
    assert [item.line for item in items[2:]] == [4]  # the cut one, unrecognised
    assert reader.stats.suppressed == 4


def test_the_documented_hook_is_collected_by_the_facade() -> None:
    namespace = _example()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)

    plugin = types.SimpleNamespace(ioasid_log_formats=namespace["ioasid_log_formats"])
    pm.register(plugin, name="acme")
    formats, problems = Hooks(pm).log_formats()
    assert problems == [] and [f.vendor for f in formats] == ["acme"]


def test_the_documented_test_of_the_log_format_passes() -> None:
    namespace = _example()  # the test below uses the example's ACME_LOG_FORMAT
    exec(compile(_block("def test_a_dmesg_paste"), str(DOC), "exec"), namespace)
    test = namespace["test_a_dmesg_paste"]
    assert callable(test)
    test()
