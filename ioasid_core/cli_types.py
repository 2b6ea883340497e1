"""The command line's number options, checked before any work starts.

click's own ranges take what Python's ``int()`` takes (full-width digits, ``1_000``), echo a
5,000-digit value whole, say "is not a valid integer range" without the range, and let a
float ``nan`` through every bound (a comparison with ``nan`` is false). These say what was
expected, with the bounds, and show what was typed (shortened, escaped).
"""

from __future__ import annotations

import math
import re
from typing import Final

import click

from ioasid_core.printable import printable

__all__ = ["MAX_SEED", "BoundedFloat", "BoundedInt"]

MAX_SEED: Final = (1 << 63) - 1
"""The largest seed: what a TOML integer (a scenario's or a sweep's ``seed``) can hold."""

_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL: Final = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SHOWN: Final = 40
"""The most characters of a refused value echoed back."""


def _typed(text: str) -> str:
    """What the user typed, for a message: escaped, and shortened if long."""
    if len(text) > _SHOWN:
        text = f"{text[: _SHOWN - 3]}... ({len(text)} characters)"
    return repr(printable(text))


class BoundedInt(click.ParamType[int]):
    """A whole number in ``low..high``, written in ASCII decimal digits."""

    name = "integer"

    def __init__(self, low: int, high: int, metavar: str = "INTEGER") -> None:
        self.low = low
        self.high = high
        self.metavar = metavar

    @property
    def span(self) -> str:
        return f"{self.low}..{self.high}"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        expected = f"expected a whole number in {self.span}"
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            if not _INTEGER.fullmatch(text):
                self.fail(f"{expected}, got {_typed(str(value))}", param, ctx)
            significant = text.lstrip("+-").lstrip("0")
            digits = len(significant)
            if digits > len(str(self.high)) + 1:  # int() of 5,000 digits would refuse it
                self.fail(f"{expected}, got a number of {digits} digits", param, ctx)
            # Without the leading zeros: int() counts them against its 4,300-digit limit.
            number = int(significant or "0") * (-1 if text.startswith("-") else 1)
        if not self.low <= number <= self.high:
            self.fail(f"{expected}, got {number}", param, ctx)
        return number

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return self.metavar

    def __repr__(self) -> str:
        return f"BoundedInt({self.low}, {self.high})"


class BoundedFloat(click.ParamType[float]):
    """A number in ``low..high``: never ``nan``, which every range check lets through."""

    name = "number"

    def __init__(self, low: float, high: float, metavar: str = "NUMBER") -> None:
        self.low = low
        self.high = high
        self.metavar = metavar

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        expected = f"expected a number in {self.low:g}..{self.high:g}"
        if isinstance(value, float):
            number = value
        else:
            text = str(value).strip()
            if not _DECIMAL.fullmatch(text):  # "nan", "inf", "1_0", full-width digits
                self.fail(f"{expected}, got {_typed(str(value))}", param, ctx)
            number = float(text)
        if math.isnan(number) or not self.low <= number <= self.high:
            self.fail(f"{expected}, got {number:g}", param, ctx)
        return number

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return self.metavar

    def __repr__(self) -> str:
        return f"BoundedFloat({self.low}, {self.high})"
