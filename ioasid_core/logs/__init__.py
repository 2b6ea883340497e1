"""``ioasid logs``: IOMMU fault and page-request records read out of real kernel logs.

The core normalises lines (prefixes, timestamps, wrapping), drives the vendors' parsers over
a stream in constant memory, and prints, summarises and replays what they read. Each vendor
plugin contributes its printer formats through the ``ioasid_log_formats`` hook (a
:class:`LogFormat`); see ``docs/writing-a-plugin.md``. What the kernel's generic IOMMU layer
prints (the ``io_page_fault`` tracepoint) the core reads itself, in every run
(:mod:`ioasid_core.logs.core_formats`).
"""

from ioasid_core.logs.format import (
    MAX_JOINS,
    MORE,
    LogFormat,
    LogItem,
    LogParser,
    More,
    ParseResult,
)
from ioasid_core.logs.normalise import LogLine, normalise
from ioasid_core.logs.reader import LogReader, LogStats, ParserFailure
from ioasid_core.logs.record import KINDS, LogRecord, Unrecognised, access_letters, pci_device

__all__ = [
    "KINDS",
    "MAX_JOINS",
    "MORE",
    "LogFormat",
    "LogItem",
    "LogLine",
    "LogParser",
    "LogReader",
    "LogRecord",
    "LogStats",
    "More",
    "ParseResult",
    "ParserFailure",
    "Unrecognised",
    "access_letters",
    "normalise",
    "pci_device",
]
