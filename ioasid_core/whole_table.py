"""How narrow a table can be printed without cutting a cell.

rich squeezes a table to the console's width: below the table's narrowest layout it cuts
cells ("131070" as "1310", "0x10" as "0…") and drops whole columns. Printed wider than the
terminal instead, its lines are wrapped by the terminal anywhere, through a number. What
the terminal shows must be true, so a command asks how narrow each table can be and, on a
terminal narrower than that, shows the rows another way (lists, paragraphs).
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

__all__ = ["narrowest"]

_WIDE = Console(width=1 << 16, file=io.StringIO())
"""Measures tables unbounded (a measurement is clamped to its console's width)."""


def narrowest(table: Table) -> int:
    """The fewest columns ``table`` can be printed in without cutting a cell."""
    return Measurement.get(_WIDE, _WIDE.options, table).minimum
