"""``ioasid decode``'s table: the first entries of a dump and a count of all of them.

A dump may hold half a million entries; a terminal table of them all takes minutes and
gigabytes to build and nobody reads it. The entries are decoded one at a time, every one
counted, the first ``rows`` of each kind kept for the table and the rest summed up
(``--json`` lists them all).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ioasid_core.dump import Decoded
from ioasid_core.printable import printable
from ioasid_core.whole_table import narrowest

__all__ = ["DUMP_ROWS", "DumpSummary", "print_dump", "summarize"]

DUMP_ROWS = 200
"""The most page requests (and unhandled events, and malformed entries) shown."""


@attrs.define
class DumpSummary:
    """Counts of every entry, and the first few of each kind."""

    requests: int = 0
    unhandled: int = 0
    malformed: int = 0
    first_requests: list[dict[str, object]] = attrs.field(factory=list)
    first_unhandled: list[dict[str, object]] = attrs.field(factory=list)
    first_errors: list[str] = attrs.field(factory=list)


def summarize(items: Iterable[Decoded], rows: int = DUMP_ROWS) -> DumpSummary:
    """Count ``items`` (from ``iter_dump``), keeping the first ``rows`` of each kind."""
    summary = DumpSummary()
    for kind, item in items:
        if kind == "request":
            summary.requests += 1
            if summary.requests <= rows:
                assert isinstance(item, dict)
                summary.first_requests.append(item)
        elif kind == "unhandled":
            summary.unhandled += 1
            if summary.unhandled <= rows:
                assert isinstance(item, dict)
                summary.first_unhandled.append(item)
        else:
            summary.malformed += 1
            if summary.malformed <= rows:
                summary.first_errors.append(str(item))
    return summary


def print_dump(console: Console, vendor: str, summary: DumpSummary) -> None:
    """The tables of :func:`summarize`'s first entries, each titled with the full count."""
    shown = len(summary.first_requests)
    if summary.requests or not summary.unhandled:  # a dump of events only: no empty table
        title = f"{vendor}: {summary.requests} page request(s)"
        if shown < summary.requests:
            title += f", the first {shown} shown (--json lists every entry)"
        # Narrow enough for 80 columns at the widest values (a 64-bit address, a 32-bit
        # device): every cell whole, never cut or folded (a narrower terminal gets one
        # entry a paragraph: ``_print_fitted``).
        table = Table(
            title=Text(printable(title)),
            caption=Text(PERM_CAPTION),
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for column in ("offset", "device", "pasid", "grpid", "last", "perm", "addr"):
            justify: Literal["left", "right"] = "left" if column == "perm" else "right"
            table.add_column(column, justify=justify, no_wrap=True)
        rows = [_request_cells(row) for row in summary.first_requests]
        for cells in rows:
            table.add_row(*cells)
        _print_fitted(console, table, [_paragraph(table, cells) for cells in rows])
    if summary.unhandled:
        title = f"{vendor}: {summary.unhandled} unhandled event(s), never answered"
        if len(summary.first_unhandled) < summary.unhandled:
            title += f", the first {len(summary.first_unhandled)} shown"
        events = Table(title=Text(printable(title)))
        events.add_column("offset", justify="right", no_wrap=True)
        # Folded if a word is wider than the column, never cut with an ellipsis.
        events.add_column("kind", overflow="fold")
        events.add_column("description", overflow="fold")
        # Text: a plugin's description is shown as written, never read as markup, and its
        # control characters escaped (rich passes an escape sequence through).
        rows = [
            [
                f"{event['offset']:#x}",
                printable(str(event["kind"])),
                printable(str(event["description"])),
            ]
            for event in summary.first_unhandled
        ]
        for cells in rows:
            events.add_row(*(Text(cell) for cell in cells))
        _print_fitted(console, events, [Text(f"{o} {k}: {d}") for o, k, d in rows])


def _request_cells(row: dict[str, object]) -> list[str]:
    pasid = row["pasid"]
    return [
        f"{row['offset']:#x}",
        f"{row['device']:#x}",
        "-" if pasid is None else f"{pasid:#x}",
        str(row["grpid"]),
        "yes" if row["last"] else "",
        "stop" if row["stop_marker"] else _perm_letters(str(row["perm"])),
        f"{row['addr']:#x}",
    ]


def _paragraph(table: Table, cells: list[str]) -> Text:
    """One request as ``0x40: device 0x100, pasid 0x2a, ...``, for a narrow terminal."""
    named = [f"{c.header} {cell}" for c, cell in zip(table.columns[1:], cells[1:], strict=True)]
    return Text(f"{cells[0]}: " + ", ".join(part for part in named if not part.endswith(" ")))


def _print_fitted(console: Console, table: Table, paragraphs: list[Text]) -> None:
    """``table``, or, on a terminal too narrow for it, its title, one paragraph a row and
    its caption: a table wider than the terminal has its lines wrapped by the terminal
    anywhere, in the middle of a number."""
    if narrowest(table) <= console.width:
        console.print(table)
        return
    for text in (table.title, *paragraphs, table.caption):
        if text is not None:
            console.print(text)


PERM_CAPTION = "perm: r read, w write, x exec, p privileged; stop: a stop marker"


def _perm_letters(perm: str) -> str:
    """``read,write`` as ``rw--``, as ``ls`` shows permissions."""
    named = set(perm.split(","))
    return "".join(
        letter if name in named else "-"
        for letter, name in (("r", "read"), ("w", "write"), ("x", "exec"), ("p", "priv"))
    )


def error_lines(summary: DumpSummary) -> list[str]:
    """The malformed entries' messages (the first ``DUMP_ROWS``), then how many more."""
    lines = list(summary.first_errors)
    if summary.malformed > len(lines):
        lines.append(f"... and {summary.malformed - len(lines)} more malformed entries")
    return lines
