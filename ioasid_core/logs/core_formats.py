"""The log formats the core reads in every run, whatever plugins are installed.

A format whose printer is the kernel's generic IOMMU layer rather than one vendor's driver
belongs to no plugin: it must be read when none is installed and whichever vendor's IOMMU
printed it (as the core's ``generic`` page-request vendor is always there). Plugins' formats
come after it; one that takes a core format's vendor name is left out and said why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from ioasid_core.logs.format import LogFormat
from ioasid_core.logs.io_page_fault import IO_PAGE_FAULT_FORMAT

if TYPE_CHECKING:
    from ioasid_core.plugins import Hooks

__all__ = ["CORE_LOG_FORMATS", "read_formats", "with_core_formats"]

CORE_LOG_FORMATS: Final[tuple[LogFormat, ...]] = (IO_PAGE_FAULT_FORMAT,)


def with_core_formats(offered: Sequence[LogFormat]) -> tuple[list[LogFormat], list[str]]:
    """The core's formats, then the plugins' ``offered`` ones; the problems (a plugin's format
    reusing a core vendor name, which ``--vendor`` could not tell apart)."""
    reserved = {fmt.vendor for fmt in CORE_LOG_FORMATS}
    formats = list(CORE_LOG_FORMATS)
    problems: list[str] = []
    for fmt in offered:
        if fmt.vendor in reserved:
            problems.append(
                f"log format of vendor {fmt.vendor!r} left out: the core reads that vendor's "
                "format itself"
            )
            continue
        formats.append(fmt)
    return formats, problems


def read_formats(hooks: Hooks) -> tuple[list[LogFormat], list[str]]:
    """What ``ioasid logs`` reads: the core's formats, then every plugin's; the problems of
    both (a plugin's hook that failed, a format that reused a core vendor name)."""
    offered, problems = hooks.log_formats()
    formats, reused = with_core_formats(offered)
    return formats, problems + reused
