"""Printing a table whole on a terminal too narrow for it.

rich squeezes a table to the console's width: below the table's narrowest layout it cuts
cells ("131070" as "1310", "0x10" as "0…") and drops whole columns. What the terminal shows
must be true, so such a table is printed at its narrowest width instead, in lines longer
than the terminal (which wraps them).
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

__all__ = ["narrowest", "print_whole"]

_WIDE = Console(width=1 << 16, file=io.StringIO())
"""Measures tables unbounded (a measurement is clamped to its console's width)."""


def narrowest(table: Table) -> int:
    """The fewest columns ``table`` can be printed in without cutting a cell."""
    return Measurement.get(_WIDE, _WIDE.options, table).minimum


def print_whole(console: Console, table: Table) -> None:
    """``console.print(table)``, at the table's narrowest width if the console is narrower."""
    least = narrowest(table)
    if least <= console.width:
        console.print(table)
        return
    width, console.width = console.width, least
    try:
        console.print(table)
    finally:
        console.width = width
