"""One pasted log line made plain: quote prefixes, console and syslog headers, timestamps.

Users paste what machines print through mail clients and forums, so before any vendor looks at
a line the core takes off, in this order (each optional):

- terminal escape sequences (``dmesg --color``; a stray ESC becomes U+FFFD): log text is
  shown on a terminal and must not drive it;
- quoted-printable encoding (a line holding ``=3D``, how such mails write ``=``);
- what web pages and mail archives did to it: HTML entities (``&gt;``, ``&quot;``) and
  no-break spaces;
- quote prefixes and indentation: whitespace, ``>`` and ``|`` (``> ``, ``>> ``, ``> >>>``,
  ``| ``, tabs);
- a printk level ``<3>`` (``dmesg -r``) and Xen's ``(XEN)`` console prefix;
- a syslog or journal header: ``Nov 14 11:52:19 host kernel:``, the same with an ISO time
  (``2026-05-26T08:41:57.123456+00:00 host kernel:``) or a Unix time (``journalctl -o
  short-unix``: ``1717070000.123456 host kernel:``) or without the host (pastes remove
  it: ``Jun 15 11:58:56   kernel:``), Xen's console forwarded the same way (``Oct 14
  18:41:49.056589 VM hypervisor: (XEN) ...``), or ``kernel:`` alone;
- an ISO time alone (``dmesg --time-format iso``);
- an ftrace ``trace`` prefix: ``task-pid [cpu] flags 123.456789:``, or ``perf script``'s
  ``comm pid [cpu] 123.456789:`` (``pid/tid`` with ``-F +tid``);
- ``dmesg -x``'s ``kern  :err   :`` before a bracketed time;
- a bracketed time: ``[  478.907684]``, ``[  +0.000006]`` (``dmesg -d``/``--human``),
  ``[Tue May 26 08:41:57 2026]`` and ``[Thu Jan  4 23:12:54 2024]`` (``-T``: ``%a %b %e``),
  ``[Aug 4 09:48]`` and ``[Oct14 06:51]`` (``--human``: ``%b%e %H:%M``), Xen's
  ``[2020-02-03 10:11:12.123]``, ``[ 1.2 < 0.3>]`` (``-d`` on old util-linux);
- a printk caller id ``[T123]`` / ``[C1]``.

The timestamp is kept as printed (no brackets, no padding around it; ``-T``'s two spaces
before a day below 10 kept): a kernel time over a syslog one,
the more precise. ``header`` says whether the line had any such header: a line without one
may continue the line before it (a wrapped record), one with one never does.
"""

from __future__ import annotations

import html
import re
from typing import Final

__all__ = ["WEB_SPACES", "LogLine", "normalise"]


class LogLine:
    """A line as vendors see it: ``body`` is the text after every prefix, ``text`` the line
    as read (for messages), ``number`` 1-based. ``joins``: where in ``body`` each wrapped
    continuation line joined to it begins (empty for a line read alone); ``last``: the length
    of its last physical line once one is joined."""

    __slots__ = ("body", "header", "joins", "last", "number", "text", "timestamp")

    def __init__(
        self,
        number: int,
        text: str,
        body: str,
        timestamp: str | None,
        header: bool,
        *,
        joins: tuple[int, ...] = (),
        last: int | None = None,
    ) -> None:
        self.number = number
        self.text = text
        self.body = body
        self.timestamp = timestamp
        self.header = header
        self.joins = joins
        self.last = last  # None: the line is one physical line, ``text``

    def joined(self, other: LogLine) -> LogLine:
        """This line with ``other`` (its wrapped continuation) appended: one logical line.

        A wrap is a space. A quoted-printable soft break (an ``=`` ending an encoded line of
        at most :data:`QP_LINE` characters, RFC 2045) is nothing: the ``=`` goes and the next
        line follows as it is, its leading spaces included (mail archives keep such mails
        encoded, and the encoder cuts anywhere, mid-word too)."""
        body = self.body.rstrip()
        if _soft_break(body, len(self.text) if self.last is None else self.last):
            head = body[:-1]
            text = f"{self.text.rstrip()[:-1]}{other.text}"
            tail = other.text.rstrip()
        else:
            head = body + " "
            text = f"{self.text} {other.text.strip()}"
            tail = other.body
        return LogLine(
            self.number,
            text,
            head + tail,
            self.timestamp,
            self.header,
            joins=(*self.joins, len(head)),
            last=len(other.text),
        )

    def __repr__(self) -> str:
        return f"LogLine({self.number}, {self.body!r}, timestamp={self.timestamp!r})"


QP_LINE: Final = 76
"""The longest line a quoted-printable encoder writes, its soft-break ``=`` included."""


def _soft_break(body: str, length: int) -> bool:
    return length <= QP_LINE and body.endswith("=") and body[-2:-1] not in ("=", " ", "")


_MONTH: Final = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DAY: Final = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_ISO: Final = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_BRACKET_TIME: Final = (
    r"\d+\.\d+(?:\s*<\s*[\d.]+>)?"  # kernel seconds (with dmesg -d's delta)
    r"|[+-]\s*\d+\.\d+"  # dmesg -d / --human: relative
    rf"|{_DAY}\s+{_MONTH}\s+\d{{1,2}}\s+\d\d:\d\d:\d\d\s+\d{{4}}"  # dmesg -T
    rf"|{_MONTH}\s*\d{{1,2}}\s+\d\d:\d\d(?::\d\d)?"  # --human: "%b%e %H:%M", so "Oct14 06:51"
    rf"|{_ISO}"  # Xen's console time, dmesg iso in brackets
)

_PREFIX: Final = re.compile(
    r"[\s>|\ufffd\ufeff\x00]*"
    r"(?P<level><\d{1,2}>)?"
    r"(?P<xen>\(XEN\)\s*)?"
    r"(?:"
    rf"(?P<sys>{_MONTH}\s+\d{{1,2}}\s+\d\d:\d\d:\d\d(?:\.\d+)?|{_ISO}|\d{{9,11}}\.\d{{1,9}})"
    r"\s+(?:\S+\s+)?(?:kernel|hypervisor):\s*"
    r"|(?P<kernel>kernel:\s*)"
    rf"|(?P<iso>{_ISO})\s+"
    r"|\S.{0,24}?-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:\S{4,5}\s+)?(?P<ftrace>\d+\.\d+):\s+"
    r"|\S.{0,24}?\s\d+(?:/\d+)?\s+\[\d+\]\s+(?P<perf>\d+\.\d+):\s+"
    r")?"
    r"(?:[a-z]+\s*:\s*[a-z]+\s*:\s*(?=\[))?"
    rf"(?:\[\s*(?P<ts>{_BRACKET_TIME})\s*\]\s*)?"
    r"(?:\[\s*[TC]\d+\s*\]\s*)?"
)


# quote prefixes, and serial-console garbage (NUL, bad bytes), and a UTF-8 byte order mark
_QUOTES: Final = re.compile(r"[\s>|\ufffd\ufeff\x00]*")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def _may_have_header(text: str, start: int) -> bool:
    """Whether a header can begin at ``start``: else the full expression need not run."""
    first = text[start : start + 1]
    return (
        first in "[<(" or first.isdigit()
        or text.startswith(_MONTHS, start) or text.startswith("kernel:", start)
        or _digit_bracket(text, start)  # ftrace's "[002] ", dmesg -x's "[  1.2] "
    )  # fmt: skip


def _digit_bracket(text: str, start: int) -> bool:
    at = text.find("] ", start, start + 64)
    return at > start and text[at - 1].isdigit()


_ESCAPE: Final = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: dmesg --color's "\x1b[32m[    3.7]\x1b[0m"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (a terminal title, a link)
    r"|[\x1b\x9b]"  # whatever else would start a terminal sequence
)


def _terminal_free(text: str) -> str:
    """``text`` without terminal escape sequences: colour codes go, a stray ESC or C1 CSI
    becomes U+FFFD. Log text is shown on a terminal: it must not drive it."""
    return _ESCAPE.sub(lambda m: "" if len(m.group()) > 1 else "\ufffd", text)


WEB_SPACES: Final = str.maketrans({"\xa0": " ", "\u202f": " "})
"""No-break spaces a web page or a mail client put where the kernel printed spaces (the source
turns them back before the readers' words are searched: ``fault\xa0from\xa0EP``)."""


def _from_the_web(text: str) -> str:
    """``text`` as the kernel printed it, before a web page or a mail archive escaped it:
    HTML entities (``&gt; &gt; [ 1.0] ...``, ``&quot;Input address caused fault&quot;``) and
    no-break spaces."""
    if "&" in text and ";" in text:
        text = html.unescape(text)
    return text.translate(WEB_SPACES)


_QP_ESCAPES: Final = re.compile(r"(?:=[0-9A-F]{2})+")


def _quoted_printable(text: str) -> str:
    """A quoted-printable mail line decoded (``device=3D0000:00:01.0``, ``=C2=A0``); its
    soft break (a last ``=``) is left for the join."""
    return _QP_ESCAPES.sub(
        lambda m: bytes.fromhex(m.group().replace("=", "")).decode("utf-8", "replace"), text
    )


def normalise(number: int, text: str) -> LogLine:
    """``text`` (line ``number``, its newline already gone or not) without its prefixes."""
    if "=3D" in text:  # every "=" of a quoted-printable line is "=3D": the line is encoded
        text = _quoted_printable(text)
    # isascii() reads a flag Python keeps: no scan for the non-ASCII characters
    if "&" in text or not text.isascii():
        text = _from_the_web(text)
    if "\x1b" in text or (not text.isascii() and "\x9b" in text):  # after: "&#27;" is one
        text = _terminal_free(text)
    text = text.rstrip()
    if text[:1] == "[":  # the common case, "[  478.907684] message", without a regex
        close = text.find("]", 2, 32)
        if close > 0:
            stamp = text[1:close].strip()
            whole, dot, frac = stamp.partition(".")
            if dot and whole.isdigit() and frac.isdigit() and whole.isascii():
                body = text[close + 1 :].lstrip()
                if body[:1] != "[":  # else a caller id "[T123]" or another bracket follows
                    return LogLine(number, text, body, stamp, True)
    start = _QUOTES.match(text).end()  # type: ignore[union-attr]
    if not _may_have_header(text, start):
        return LogLine(number, text, text[start:], None, False)
    match = _PREFIX.match(text)
    assert match is not None  # every part is optional
    ts, sys, iso, ftrace, perf, kernel, xen, level = match.group(
        "ts", "sys", "iso", "ftrace", "perf", "kernel", "xen", "level"
    )
    stamp = ts or ftrace or perf or sys or iso
    header = stamp is not None or kernel is not None or xen is not None or level is not None
    if stamp is not None and ts is not None:
        stamp = ts.strip()  # as printed: "Thu Jan  4 ..." keeps dmesg -T's two spaces
    return LogLine(number, text, text[match.end() :], stamp, header)
