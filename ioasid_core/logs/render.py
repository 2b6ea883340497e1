"""How ``ioasid logs`` shows what it read: a rich table, a summary line, or one JSON object.

Everything shown from the log is user text: table cells are :class:`rich.text.Text`, never
markup. JSON is written as the records stream by (constant memory); unrecognised lines, which
come after the records in the object, are spooled to a temporary file meanwhile.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from typing import IO, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ioasid_core.logs.reader import LogStats
from ioasid_core.logs.record import LogRecord, Unrecognised
from ioasid_core.printable import printable

__all__ = ["MAX_ROWS", "JsonWriter", "TableWriter", "summary"]

MAX_ROWS: Final = 1000
"""Rows the terminal table shows; the rest are counted in the summary (``--json`` has all)."""
_COLUMNS: Final = (
    "line", "time", "vendor", "kind", "unit", "device", "source", "pasid", "address",
    "access", "reason", "stall tag",
)  # fmt: skip


_WRAPPING: Final = frozenset({"reason", "unit", "device"})


_HEADER: Final = [Text(column) for column in _COLUMNS]


def _table(title: Text, rows: list[list[Text]], widths: list[int]) -> Table:
    table = Table(title=title)
    for column, width in zip(_COLUMNS, widths, strict=True):
        # Numbers ask for their whole width; the words of a reason, a unit, a device may wrap.
        # Fold, never an ellipsis or a crop: a cut number would be a false one.
        table.add_column(
            column,
            justify="right" if column == "line" else "left",
            overflow="fold",
            min_width=None if column in _WRAPPING else width,
        )
    for row in rows:
        table.add_row(*row)
    return table


def _paragraph(row: list[Text]) -> Text:
    """One record as ``line 14, time 478.9, ...``: for terminals too narrow for the table."""
    parts = [f"{column} {cell.plain}" for column, cell in zip(_COLUMNS, row, strict=True)]
    return Text(", ".join(part for part in parts if not part.endswith(" -")))


def _hex(value: int | None) -> str:
    return "-" if value is None else f"{value:#x}"


def _row(record: LogRecord) -> list[Text]:
    stall = "" if record.stall is None else ("stall" if record.stall else "no stall")
    tag = "" if record.tag is None else f"{record.tag:#x}"
    cells = [
        str(record.line),
        record.timestamp or "-",
        record.vendor,
        record.kind,
        record.unit or "-",
        record.device or "-",
        _hex(record.source_id),
        _hex(record.pasid),
        _hex(record.address),
        "-" if record.access is None else (record.access or "none"),
        " ".join(p for p in (_hex(record.code), record.reason or "") if p != "-") or "-",
        " ".join(p for p in (stall, tag) if p) or "-",
    ]
    return [Text(printable(cell)) for cell in cells]  # an escape sequence shown, not run


class TableWriter:
    """Collects the first :data:`MAX_ROWS` records and unrecognised lines for the terminal."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self.unrecognised: list[Unrecognised] = []
        self.more_records = 0
        self.more_unrecognised = 0

    def add(self, item: LogRecord | Unrecognised) -> None:
        if isinstance(item, LogRecord):
            if len(self.records) < MAX_ROWS:
                self.records.append(item)
            else:
                self.more_records += 1
        elif len(self.unrecognised) < MAX_ROWS:
            self.unrecognised.append(item)
        else:
            self.more_unrecognised += 1

    def print(self, console: Console, stats: LogStats) -> None:
        if self.records:
            rows = [_row(record) for record in self.records]
            widths = [max(len(row[i]) for row in [_HEADER, *rows]) for i in range(len(_COLUMNS))]
            needed = sum(
                8 if column in _WRAPPING else width
                for column, width in zip(_COLUMNS, widths, strict=True)
            )
            title = Text(f"{sum(stats.records.values())} record(s)")
            if needed + 3 * len(_COLUMNS) + 1 <= console.width:
                console.print(_table(title, rows, widths))
            else:  # too narrow for the table: one record a paragraph, wrapped, never cut
                console.print(title)
                for row in rows:
                    console.print(_paragraph(row))
            if self.more_records:
                console.print(
                    Text(f"{self.more_records} more record(s) not shown (--json lists them all)")
                )
        if self.unrecognised:
            title = Text(f"{stats.unrecognised} line(s) not understood")
            digits = max(len(str(item.line)) for item in self.unrecognised)
            if digits + 2 * 8 + 10 <= console.width:
                table = Table(title=title)
                # A line number whole on one line (folded, 1002 read as 100).
                table.add_column("line", justify="right", no_wrap=True, min_width=digits)
                table.add_column("why", overflow="fold")
                table.add_column("text", overflow="fold")
                for item in self.unrecognised:
                    table.add_row(
                        Text(str(item.line)),
                        Text(printable(item.why or "-")),
                        Text(printable(item.text)),
                    )
                console.print(table)
            else:  # too narrow for the table: one line a paragraph
                console.print(title)
                for item in self.unrecognised:
                    why = printable(item.why or "-")
                    console.print(Text(f"line {item.line} ({why}): {printable(item.text)}"))
            if self.more_unrecognised:
                console.print(Text(f"{self.more_unrecognised} more line(s) not understood"))
        console.print(Text(summary(stats)), soft_wrap=True)


def summary(stats: LogStats) -> str:
    """One line: records by vendor and kind, lines not understood, records lost, lines read."""
    total = sum(stats.records.values())
    parts = ", ".join(f"{vendor} {kind} {n}" for (vendor, kind), n in sorted(stats.records.items()))
    text = f"{total} record(s)" + (f" ({parts})" if parts else "")
    text += f"; {stats.unrecognised} line(s) not understood"
    lost = ", ".join(f"{v} {n}" for v, n in sorted(stats.suppressed_by_vendor.items()))
    text += f"; {stats.suppressed} record(s) lost to rate limiting" + (f" ({lost})" if lost else "")
    return text + f"; {stats.lines} line(s) read"


class JsonWriter:
    """``{"records": [...], "unrecognised": [...], "suppressed": N}`` written as it goes."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._records = 0
        self._unrecognised = 0
        out.write('{"records": [')

    def add(self, item: LogRecord | Unrecognised) -> None:
        if isinstance(item, LogRecord):
            self._out.write((", " if self._records else "") + json.dumps(item.as_dict()))
            self._records += 1
        else:
            self._spool.write((", " if self._unrecognised else "") + json.dumps(item.as_dict()))
            self._unrecognised += 1

    def finish(self, suppressed: int) -> None:
        out = self._out
        out.write('], "unrecognised": [')
        self._spool.seek(0)
        for chunk in iter(lambda: self._spool.read(8192), ""):
            out.write(chunk)
        self._spool.close()
        out.write(f'], "suppressed": {suppressed}}}\n')

    def close(self) -> None:
        self._spool.close()


def add_all(writers: Iterable[TableWriter | JsonWriter], item: LogRecord | Unrecognised) -> None:
    for writer in writers:
        writer.add(item)
