"""What a plugin says, made safe for a terminal: its text reaches the user's screen."""

from __future__ import annotations

__all__ = ["MESSAGE_LINES", "describe", "first_lines", "printable", "printable_lines"]


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped (``\\x1b``, ``\\n``):
    what a plugin says cannot move the cursor or fake another line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe(exc: BaseException) -> str:
    """``Type: message`` of a plugin's exception, whatever it does: a ``__str__`` that
    raises is said so; control characters (an escape sequence, a newline) are escaped."""
    try:
        message = str(exc)
    except Exception as inner:  # the plugin's __str__ is broken too
        message = f"<str() raised {type(inner).__name__}>"
    return printable(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def printable_lines(text: str) -> str:
    """``text`` made printable line by line: a message of several lines keeps its lines,
    and nothing else in it can move the cursor or colour the terminal."""
    return "\n".join(printable(line) for line in text.split("\n"))


MESSAGE_LINES = 20
"""The most lines of one message shown (a scenario can have a problem in every one of
65,536 generated steps: the first ones say what to fix)."""


def first_lines(text: str, most: int = MESSAGE_LINES) -> str:
    """``text``'s first ``most`` lines, then how many more there were."""
    lines = text.split("\n")
    if len(lines) <= most:
        return text
    return "\n".join([*lines[:most], f"... and {len(lines) - most} more line(s) like these"])
