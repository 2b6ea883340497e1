"""Shared by the ``ioasid logs`` tests (imported as ``tests.logs_helpers``): the real samples
of ``tests/data/realdata`` (copied verbatim from ``shared/realdata``), split into samples, and
the installed vendors' log formats."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ioasid_core.logs import LogFormat, LogItem, LogReader, LogRecord, Unrecognised
from ioasid_core.logs.core_formats import read_formats
from ioasid_core.plugins import new_plugin_manager

REALDATA = Path(__file__).parent / "data" / "realdata"
HELDOUT = Path(__file__).parent / "realdata_heldout"
"""Real logs the reader was not written against (see its README)."""


def samples(file: str, folder: Path = REALDATA) -> dict[str, list[str]]:
    """``{name: lines}``: each sample's raw text, without the file's ``#`` comment lines."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (folder / file).read_text(encoding="utf-8").splitlines():
        if line.startswith("#### sample: "):
            current = found.setdefault(line.removeprefix("#### sample: ").strip(), [])
        elif line.startswith("#"):
            continue
        elif current is not None:
            if not line.strip():
                current = None
            else:
                current.append(line)
    return found


def installed_formats() -> list[LogFormat]:
    """What ``ioasid logs`` reads: the core's formats and every installed plugin's."""
    formats, problems = read_formats(new_plugin_manager().hooks)
    assert not problems, problems
    return formats


def read(
    lines: Iterable[str], formats: list[LogFormat] | None = None
) -> tuple[LogReader, list[LogItem]]:
    reader = LogReader(installed_formats() if formats is None else formats)
    return reader, list(reader.read(lines))


def records(items: list[LogItem]) -> list[LogRecord]:
    return [item for item in items if isinstance(item, LogRecord)]


def unrecognised(items: list[LogItem]) -> list[Unrecognised]:
    return [item for item in items if isinstance(item, Unrecognised)]


def rec(vendor: str, kind: str, line: int, **fields: object) -> dict[str, object]:
    """A full expected record: every key, None where not given."""
    keys = (
        "timestamp", "unit", "device", "source_id", "pasid", "address", "access", "code",
        "reason", "stall", "tag", "raw",
    )  # fmt: skip
    unknown = set(fields) - set(keys)
    assert not unknown, unknown
    return {"vendor": vendor, "kind": kind, "line": line, **{k: fields.get(k) for k in keys}}
