"""What the VT-d driver (and Xen's) prints about DMA faults and page requests, read back.

Formats, era by era (real-world-formats §2.2-2.4), all read by the expressions below:

- DMAR fault: ``DMAR: [DMA Read NO_PASID] Request device [00:1e.3] fault addr 0xffffa000
  [fault reason 0x06] PTE Read access is not set``. Before v5.14 ``[DMA Read]``, a ``PASID
  %x`` before ``fault addr`` (``ffffffff`` = none), no ``0x`` on the address and the reason
  in *decimal* (``[fault reason 06]``); v5.14 printed ``[0x00:0x02.0]``; 2.6/3.x printed the
  reason as a second line ``DMAR:[fault reason 06] ...``; Xen prints ``(XEN) [VT-D]DMAR:[DMA
  Write] Request device [0000:04:00.4] fault addr 7cd2000, iommu reg = ...`` then
  ``[VT-D]DMAR: reason 05 - PTE Write access is not set`` (hex; its interrupt-remapping
  fault ``[VT-D]INTR-REMAP: Request device [...] fault index 0, iommu reg = ...`` then
  ``[VT-D]INTR-REMAP: reason 22 - ...``). A reason line may wrap too: the next line is its
  text when it is words. A reason line whose fault line is missing or unreadable is
  unrecognised.
- ``[INTR-REMAP] ... fault index 0x2f [fault reason 0x26] ...`` is the interrupt-remapping
  fault: an ``event`` (no DMA, no address; the index is not a field of the record). Before
  it had brackets (3.x-4.x) it read ``INTR-REMAP: Request device [[f0:1f.0] fault index 0``
  (the driver's ``[[``) then ``INTR-REMAP:[fault reason 37] ...`` (decimal), on a line of
  its own or dmesg's indented continuation.
- ``VT-d detected Invalidation Time-out Error: SID ffff`` (and ``Invalidation Queue Error:
  Reason f``, ``Invalidation Completion Error: SID ..``): the invalidation queue failed; a
  ``message`` with the SID or the reason code.
- ``prq_report`` trace events: ``addr=`` is a page number (the record holds the byte address).
- PRQ handler messages (``Page request without PASID``, ``PRQ overflow detected``, ...), and
  ``Invalid page request: dw0 dw1``: the descriptor's first 16 bytes, decoded with the same
  decoder as ``ioasid decode vtd`` (the private-data words are not printed: zero).
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Sequence
from typing import Final

from ioasid_core.plugin import (
    MORE,
    DecodeError,
    LogFormat,
    LogItem,
    LogLine,
    LogRecord,
    ParseResult,
    Perm,
    Unrecognised,
    access_letters,
    pci_device,
)
from ioasid_vtd.descriptors import decode_descriptor_rows

__all__ = ["VTD_LOG_FORMAT", "VtdLogParser"]

VENDOR: Final = "vtd"

_FAULT: Final = re.compile(
    r"(?:DMAR:\s*\[(?P<type>DMA Read|DMA Write|INTR-REMAP|[A-Za-z][A-Za-z -]*?)"
    r"(?:\s+(?P<nopasid>NO_PASID)|\s+PASID\s+(?P<pasid_new>(?:0x)?[0-9a-fA-F]+))?\]"
    r"|(?P<ir>INTR-REMAP):)\s*"  # 3.x-4.x: "INTR-REMAP: Request device [[%02x:%02x.%d]"
    r"Request device\s*\[\[?(?P<bdf>[^\]]*)\]\s*"
    r"(?:PASID\s+(?P<pasid_old>[0-9a-fA-F]+)\s+)?"
    r"fault (?P<what>addr|index)\s+(?P<addr>[^\s,\[]+)"
)
"""Up to the address: every era. The reason follows (or comes on a line of its own)."""
_FAULT_START: Final = re.compile(
    r"DMAR:\s*(?:\[(?:DMA|INTR)|\[[A-Za-z][A-Za-z _-]*\]\s*Request|$)|INTR-REMAP:\s*(?:Request|$)"
)
"""A fault line cut short. Not any bracket after ``DMAR:``: ``DMAR: [Firmware Bug]: ...``
is a boot message, and common."""
_REASON: Final = re.compile(
    r"\s*\[fault reason\s+(?P<code>(?:0x)?[0-9a-fA-F]{1,20})\]\s*(?P<text>.*)"
)
_REASON_LINE: Final = re.compile(
    r"(?:DMAR|INTR-REMAP):\s*"
    r"(?:\[fault reason\s+(?P<code>(?:0x)?[0-9a-fA-F]{1,20})\]\s*(?P<text>.*)"
    r"|reason\s+(?P<xcode>[0-9a-fA-F]{1,20})\s*-\s*(?P<xtext>.*))"
)
_BDF: Final = re.compile(
    r"(?:(?P<seg>[0-9a-fA-F]{4}):)?(?:0x)?(?P<bus>[0-9a-fA-F]{1,2}):(?:0x)?"
    r"(?P<dev>[0-9a-fA-F]{1,2})\.(?P<fn>[0-7])"
)
_HEX: Final = re.compile(r"(?:0x)?([0-9a-fA-F]+)")
_PRQ_REPORT: Final = re.compile(
    r"prq_report:\s+(?P<unit>[^/\s]+)/(?P<dev>\S+)\s+seq#\s*\d+:\s+rid=0x(?P<rid>[0-9a-fA-F]+)"
    r"\s+addr=0x(?P<addr>[0-9a-fA-F]+)\s+(?P<flags>[r-][w-][x-][p-][l-])"
    r"\s+pasid=0x(?P<pasid>[0-9a-fA-F]+)\s+index=0x(?P<index>[0-9a-fA-F]+)"
)
_INVALID_PRQ: Final = "Invalid page request:"
_DWORDS: Final = re.compile(r"([0-9a-fA-F]{1,16})\s+([0-9a-fA-F]{1,16})\s*$")
_REJECTED: Final = re.compile(
    r"(?P<why>Page request without PASID|Page request for invalid PASID \d{1,10}):\s*"
    r"(?=[0-9a-fA-F]{1,16}\s+[0-9a-fA-F]{1,16}\s*$)"
)
"""svm.c before v5.16 (``%s: Page request without PASID: %08llx %08llx``, ``... for invalid
PASID %d: ...``): a request the driver refused, printed whole, as ``Invalid page request``."""
_MESSAGE: Final = re.compile(
    r"Unexpected page request in Privilege Mode|Page request without PASID"
    r"|Address is not canonical|Page request in Privilege Mode|Execution request not supported"
    r"|PRQ overflow detected|PRQ overflow cleared"
)
_QI_ERROR: Final = re.compile(
    r"VT-d detected (?P<what>Invalidation (?:Queue|Time-out|Completion) Error): "
    r"(?:SID (?P<sid>[0-9a-fA-F]{1,4})|Reason (?P<code>[0-9a-fA-F]{1,16}))(?![0-9a-zA-Z])"
)
"""qi_check_fault(): the invalidation queue failed (``Reason`` the IQE code, ``SID`` the device
whose invalidation timed out or completed in error). A ``message``: the queue, not a DMA."""
_PAGE_SHIFT: Final = 12
_ACCESS: Final = {
    f"{r}{w}{x}{p}": access_letters(read=r == "r", write=w == "w", execute=x == "x", priv=p == "p")
    for r in "r-"
    for w in "w-"
    for x in "x-"
    for p in "p-"
}
"""prq_report's flags (``rw--``) as ``access`` letters."""
_MAX_WRAPPED: Final = 120
"""A physical line longer than this was not wrapped by a mailer or forum: its record ends
on it (so a fault's reason text is not looked for on the next line)."""
_DUMP: Final = re.compile(
    r"Dump (?P<unit>\S+) table entries for IOVA (?P<iova>(?:0x)?[0-9a-fA-F]+)"
)
_WORDS: Final = re.compile(r"[A-Za-z][A-Za-z ]*\.?\s*")
"""What a fault reason's wrapped tail looks like (the kernel's reason texts are words)."""


def _unit_before(body: str, at: int) -> str | None:
    """The unit name printed as ``dmar3: `` right before ``at`` (``IOMMU: dmar3: ...``)."""
    head = body[:at].rstrip()
    if not head.endswith(":"):
        return None
    word = head[:-1].split()[-1:] or [""]
    unit = word[0]
    return unit if unit and unit != "IOMMU" and ":" not in unit else None


def _pci_name(text: str) -> str | None:
    """``SSSS:BB:DD.F`` for a PCI address as printed (``00:1e.3``, ``0x00:0x02.0``, with or
    without a segment), None for anything else."""
    found = _pci(text)
    return None if found is None else found[0]


@functools.lru_cache(maxsize=1024)
def _pci(text: str) -> tuple[str, int] | None:
    """:func:`_pci_name` and the requester ID. Cached: a storm repeats its devices."""
    pci = _BDF.fullmatch(text.strip())
    if pci is None:
        return None
    seg = pci.group("seg")
    try:
        return pci_device(
            None if seg is None else int(seg, 16),
            int(pci.group("bus"), 16),
            int(pci.group("dev"), 16),
            int(pci.group("fn")),
        )
    except ValueError:  # "[00:20.0]": two hex digits, but no PCI device number
        return None


def _int(text: str) -> int | None:
    """A hex number as printed, with or without ``0x``; None for anything else."""
    if "_" in text or text[:1] in "+- ":
        return None  # int() would take these
    try:
        return int(text, 16)
    except ValueError:
        return None


def _dma_access(kind: str) -> str:
    return access_letters(read="Read" in kind, write="Write" in kind)


_PERM_ACCESS: Final = tuple(
    access_letters(
        read=bool(p & Perm.READ),
        write=bool(p & Perm.WRITE),
        execute=bool(p & Perm.EXEC),
        priv=bool(p & Perm.PRIV),
    )
    for p in range(16)
)
"""A request's ``Perm`` bits (READ 1, WRITE 2, EXEC 4, PRIV 8) as ``access`` letters."""

_DMA_ACCESS: Final = {kind: _dma_access(kind) for kind in ("DMA Read", "DMA Write")}
"""The kernel's two DMA kinds; another kind's access is read from its words (``Read``,
``Write``), and is unknown (None) when it has neither, not "no access"."""
_PASID_MAX: Final = 0xFFFFF
"""The widest PASID a fault record holds (20 bits); pre-5.14 ``ffffffff`` means none."""
_CODE_MAX: Final = 0xFF
"""The fault reason field (FR) is 8 bits."""


def _reason_code(text: str, *, hex_always: bool = False) -> int:
    """``0x06`` is hex (v5.14+); ``06`` is decimal (``%02d`` before), unless it has a hex
    letter or the printer is Xen's (``%02x``)."""
    if text[:2].lower() == "0x":
        return int(text[2:], 16)
    if hex_always or not text.isdigit():
        return int(text, 16)
    return int(text, 10)


class VtdLogParser:
    """One stream's VT-d parser. Holds at most one fault line waiting for its reason line
    (the two-part formats)."""

    def __init__(self) -> None:
        self.held_from: int | None = None
        self._waiting: LogRecord | None = None  # a fault waiting for its next line
        self._waiting_for = ""  # "reason" (the two-part formats) or "dump" (its unit)
        self._extended: int | None = None  # the fault line whose reason text may wrap
        self._cached: tuple[LogLine, LogRecord] | None = None  # what that line read

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        cached = self._cached
        if cached is not None:
            self._cached = None
            if cached[0] is line:  # the line we asked to extend, and nothing came
                self._extended = None
                released = self._release()
                self._wait(cached[1], "dump")
                return released
        body = line.body
        waiting = self._waiting
        if waiting is not None and self._waiting_for == "dump" and "Dump " in body:
            dump = _DUMP.search(body)
            if dump is not None and _int(dump.group("iova")) == waiting.address:
                self._waiting = self.held_from = None
                return [waiting._replace(unit=dump.group("unit"))]
        if "DMAR" in body or "INTR-REMAP" in body:
            result = self._dmar(line, final)
            if result is not None:
                return result
        if "prq_report" in body:
            return self._prq_report(line, final)
        if "Invalid page request" in body:
            return self._invalid_request(line)
        rejected = _REJECTED.search(body)
        if rejected is not None:
            return self._invalid_request(line, rejected.start(), rejected.end(), rejected["why"])
        if "VT-d detected" in body:
            qi = _QI_ERROR.search(body)
            if qi is not None:
                sid, code = qi.group("sid", "code")
                return [
                    *self._release(),
                    LogRecord(
                        VENDOR,
                        "message",
                        line.number,
                        line.timestamp,
                        source_id=None if sid is None else int(sid, 16),
                        code=None if code is None else int(code, 16),
                        reason=qi.group("what"),
                    ),
                ]
        match = _MESSAGE.search(body)
        if match is not None:
            return [
                *self._release(),
                LogRecord(
                    vendor=VENDOR,
                    kind="message",
                    line=line.number,
                    timestamp=line.timestamp,
                    unit=_unit_before(body, match.start()),
                    reason=match.group(),
                ),
            ]
        return None

    # -- DMAR faults

    def _dmar(self, line: LogLine, final: bool) -> ParseResult:
        body = line.body
        at = body.find("DMAR:")
        if at < 0:
            at = body.find("INTR-REMAP:")  # 3.x: "dmar: INTR-REMAP: Request device [[..."
        # searched, not matched at the first "DMAR:": a prefix may come twice (pr_fmt's
        # "DMAR: " before the driver's own "DMAR:[DMA Read]", or "DMAR: INTR-REMAP:")
        match = _FAULT.search(body, at) if at >= 0 else None
        if match is None:
            reason = _REASON_LINE.search(body)
            if reason is not None:
                if self._waiting is not None and self._waiting_for == "reason":
                    if not final and not line.joins and len(line.text) <= _MAX_WRAPPED:
                        return MORE  # its text may wrap onto the next line
                    return self._second_part(reason, line)
                why = "a fault reason whose fault line is missing or unreadable"
                return [*self._release(), Unrecognised(line.number, line.text, why)]
            if _FAULT_START.search(body):
                if not final:
                    return MORE
                return [*self._release(), Unrecognised(line.number, line.text, "a cut DMAR fault")]
            return None
        kind_text, _nopasid, pasid_new, remap, bdf, pasid_old, what, addr = match.groups()
        kind_text = kind_text or remap
        device = _pci(bdf)
        address = _int(addr)
        if device is None or address is None:  # a redacted or garbled value
            if not final and match.end() >= len(body.rstrip()):
                return MORE  # or one cut at the end of the line ("fault addr 12000=")
            return [
                *self._release(),
                Unrecognised(line.number, line.text, "a DMAR fault with an unreadable value"),
            ]
        reason = _REASON.match(body, match.end()) or _REASON.search(body, match.end())
        if reason is None and not final:
            return MORE  # wrapped: the reason may be on the next line
        tail = line.text if not line.joins else body[line.joins[-1] :]
        extend = (
            reason is not None
            and not final
            and self._extended != line.number
            and len(tail) <= _MAX_WRAPPED
        )
        extended = self._extended == line.number
        self._extended = None
        name, source_id = device
        pasid_text = pasid_new or pasid_old
        pasid = None if pasid_text is None else _int(pasid_text)
        if pasid == 0xFFFFFFFF:
            pasid = None  # the pre-5.14 "PASID ffffffff": no PASID
        is_dma = what == "addr"
        xen = "[VT-D]" in body
        code = None if reason is None else _reason_code(reason.group("code"), hex_always=xen)
        if (pasid is not None and pasid > _PASID_MAX) or (code is not None and code > _CODE_MAX):
            # No kernel prints these (a 20-bit PASID, an 8-bit reason): an edited or garbled
            # line, shown as such rather than read into a record with a wrong field.
            return [
                *self._release(),
                Unrecognised(line.number, line.text, "a DMAR fault with an out-of-range value"),
            ]
        text = None
        if reason is not None:
            text = reason.group("text")
            last = line.joins[-1] if extended and line.joins else -1
            if last > reason.start("text") and not _WORDS.fullmatch(body[last:]):
                text = body[reason.start("text") : last]  # the line joined on is not its text
            text = text.strip() or None
        record = LogRecord(
            VENDOR,
            "fault" if is_dma else "event",  # an interrupt-remapping fault: no DMA, no address
            line.number,
            line.timestamp,
            None,
            name,
            source_id,
            pasid,
            address if is_dma else None,
            _DMA_ACCESS.get(kind_text) or _dma_access(kind_text) or None if is_dma else None,
            code,
            text,
        )
        if extend:  # its text may wrap onto one more line: ask for it, keep what we read
            self._extended = line.number
            self._cached = (line, record)
            return MORE
        released = self._release()
        # The two-part formats: the reason comes on a line of its own. Else v5.16+ may name
        # the unit in the page-table dump that follows ("Dump dmar5 table entries for IOVA").
        self._wait(record, "reason" if reason is None else "dump")
        return released

    def _second_part(self, reason: re.Match[str], line: LogLine) -> list[LogItem]:
        waiting = self._waiting
        assert waiting is not None
        self._waiting = self.held_from = None
        xen = reason.group("xcode") is not None
        group = "xtext" if xen else "text"
        code_text = reason.group("xcode") if xen else reason.group("code")
        text = reason.group(group)
        last = line.joins[-1] if line.joins else -1
        if last > reason.start(group) and not _WORDS.fullmatch(line.body[last:]):
            text = line.body[reason.start(group) : last]  # the line joined on is not its text
        code = _reason_code(code_text, hex_always=xen or "[VT-D]" in reason.string)
        if code > _CODE_MAX:  # an 8-bit field: the fault without it, the line shown
            why = "a fault reason wider than 8 bits"
            return [waiting, Unrecognised(line.number, line.text, why)]
        return [waiting._replace(code=code, reason=text.strip() or None)]

    def _wait(self, record: LogRecord, what: str) -> None:
        self._waiting = record
        self._waiting_for = what
        self.held_from = record.line

    def _release(self) -> list[LogItem]:
        waiting = self._waiting
        if waiting is None:
            return []
        self._waiting = self.held_from = None
        return [waiting]

    # -- page requests

    def _prq_report(self, line: LogLine, final: bool) -> ParseResult:
        match = _PRQ_REPORT.search(line.body)
        if match is None:
            if not final:
                return MORE
            return [*self._release(), Unrecognised(line.number, line.text, "a cut prq_report")]
        unit, device, rid, addr, flags, pasid, index = match.groups()
        record = LogRecord(
            VENDOR,
            "page_request",
            line.number,
            line.timestamp,
            unit,
            _pci_name(device) or device,
            int(rid, 16),
            int(pasid, 16),
            int(addr, 16) << _PAGE_SHIFT,
            _ACCESS[flags[:4]],
            tag=int(index, 16),
        )
        return [*self._release(), record] if self._waiting is not None else [record]

    def _invalid_request(
        self, line: LogLine, at: int = -1, after: int = 0, why: str | None = None
    ) -> ParseResult:
        """A page request descriptor printed whole (dw0, dw1), from ``after`` in the body;
        ``why`` the driver's words when it refused it for a reason of its own."""
        body = line.body
        if why is None:
            at = body.find(_INVALID_PRQ)
            if at < 0:
                return None
            after = at + len(_INVALID_PRQ)
        unit = _unit_before(body, at)
        words = _DWORDS.match(body[after:].strip())
        if words is None:
            return [
                *self._release(),
                Unrecognised(line.number, line.text, "an invalid page request without its words"),
            ]
        dw0, dw1 = int(words.group(1), 16), int(words.group(2), 16)
        raw = struct.pack("<QQ", dw0, dw1)
        try:  # the decoder ``ioasid decode vtd`` uses; the private-data words are not printed
            [row] = decode_descriptor_rows(raw + bytes(16))
        except DecodeError as exc:
            record = LogRecord(
                VENDOR,
                "page_request",
                line.number,
                line.timestamp,
                unit,
                reason=f"not a valid descriptor: {exc.what}",
                raw=raw.hex(),
            )
        else:
            device, pasid, pasid_valid, grpid, _last, perm, addr, _needs, _private = row
            record = LogRecord(
                VENDOR,
                "page_request",
                line.number,
                line.timestamp,
                unit,
                pci_device(None, device >> 8, device >> 3 & 0x1F, device & 7)[0],
                device,
                pasid if pasid_valid else None,
                addr,
                _PERM_ACCESS[int(perm) & 0xF],
                reason=why,
                tag=grpid,
                raw=raw.hex(),
            )
        return [*self._release(), record]

    # -- the stream's end

    def expire(self, before: int) -> Sequence[LogItem]:
        waiting = self._waiting
        if waiting is not None and waiting.line < before:
            return self._release()
        return []

    def close(self) -> Sequence[LogItem]:
        return self._release()


VTD_LOG_FORMAT: Final = LogFormat(
    vendor=VENDOR,
    triggers=("DMAR", "INTR-REMAP", "prq_report", "Page request", "page request", "PRQ overflow"),
    new_parser=VtdLogParser,
    ratelimited=("dmar_fault",),
    examples=(
        "[  173.1] DMAR: [DMA Read NO_PASID] Request device [00:1e.3] fault addr 0xffffa000 "
        "[fault reason 0x06] PTE Read access is not set",
        "DMAR: [DMA Write] Request device [00:02.0] PASID ffffffff fault addr 7fa8a78000 "
        "[fault reason 05] PTE Write access is not set",
        "prq_report: dmar0/0000:00:0a.0 seq# 2: rid=0x50 addr=0x559ef6f9c rw--l pasid=0x2 "
        "index=0x1",
        "dmar1: Invalid page request: 0000000500500101 0000000012345005",
    ),
    description="Intel VT-d DMAR faults, prq_report trace events and PRQ messages",
)
