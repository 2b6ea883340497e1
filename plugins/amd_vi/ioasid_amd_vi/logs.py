"""What the AMD IOMMU driver (and amdkfd) prints about events and page requests, read back.

Formats (real-world-formats §2.6):

- ``Event logged [NAME key=value ...]``, per device (``<driver> SSSS:BB:DD.F: AMD-Vi: Event
  logged [IO_PAGE_FAULT domain=0x0010 address=0x64a7f000 flags=0x0000]``) or global
  (``AMD-Vi: Event logged [IO_PAGE_FAULT device=01:00.0 domain=...]``, the segment printed
  from about v6.0). The fields are read by name, so every event and era reads the same way.
  Before 4.19-stable the driver printed ``AMD-Vi: Event logged [`` alone and the body with a
  printk of its own: the two are joined (4.x printed both with ``dev_err``, so the body line
  has the IOMMU's prefix too: ``iommu ivhd0: ILLEGAL_DEV_TABLE_ENTRY device=...``). Only a
  page fault is printed on the faulting device; another event's prefix names the IOMMU, so
  it never gives the record's device.
- ``Event logged [UNKNOWN event[0]=0x%08x ... event[3]=0x%08x``: an event type the driver
  cannot name, printed raw (and without a closing ``]``: a wrapped one is joined).
- Xen's own prints (``xl dmesg``): from 4.14 ``(XEN) AMD-Vi: IO_PAGE_FAULT: 0000:00:14.0 d0
  addr 000000fdf8010140 flags 0x8 I`` (``%pp d%u addr %016llx flags %#x`` and the flags'
  names), before ``AMD-Vi: IO_PAGE_FAULT: domain = 0, device id = 0xa0, fault address =
  0xfdf8010140, flags = 0x8``; Xen names some events its own way (``XEN_EVENT_TYPES``).
- ``AMD-Vi: Completion-Wait loop timed out``: the command queue stalled (invalidations and
  page responses wait on it): a ``message``.
- ``PPR logged [Request ignored due to GN=0 (device=... pasid=... address=... flags=...
  tag=...)]`` (ppr.c, dev_dbg), ``Invalid PASID : 0x%x, device : 0x%x``, ``Unknown PPR
  request received``; amdkfd's ``Invalid PPR device %x:%x.%x pasid %d address 0x%lX flags
  0x%X`` (a real page request the driver could not resolve).

Event flags: RW 0x020 (set: a write), GN 0x001 (the PASID is valid). PPR flags (the PPR log
entry's, as in :mod:`ioasid_amd_vi.ppr`): EXEC 0x002, READ 0x004, WRITE 0x020, US 0x040 (the
driver grants PRIV when it is clear), GN 0x100.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Sequence
from typing import Final

from ioasid_core.plugin import (
    MORE,
    LogFormat,
    LogItem,
    LogLine,
    LogRecord,
    ParseResult,
    Unrecognised,
    access_letters,
    pci_device,
)

__all__ = ["AMD_VI_LOG_FORMAT", "EVENT_TYPES", "XEN_EVENT_TYPES", "AmdViLogParser"]

VENDOR: Final = "amd-vi"

EVENT_TYPES: Final = {
    "ILLEGAL_DEV_TABLE_ENTRY": 0x1,
    "IO_PAGE_FAULT": 0x2,
    "DEV_TAB_HARDWARE_ERROR": 0x3,
    "PAGE_TAB_HARDWARE_ERROR": 0x4,
    "ILLEGAL_COMMAND_ERROR": 0x5,
    "COMMAND_HARDWARE_ERROR": 0x6,
    "IOTLB_INV_TIMEOUT": 0x7,
    "INVALID_DEVICE_REQUEST": 0x8,
    "INVALID_PPR_REQUEST": 0x9,
    "RMP_PAGE_FAULT": 0xD,
    "RMP_HW_ERROR": 0xE,
}
"""The event names the driver prints and their ``EVENT_TYPE_*`` codes (amd_iommu_types.h)."""

_EVENT_RW: Final = 0x020
_EVENT_GN: Final = 0x001
_PPR_EXEC, _PPR_READ, _PPR_WRITE, _PPR_US, _PPR_GN = 0x002, 0x004, 0x020, 0x040, 0x100
_TAG_INDEX: Final = 0x1FF  # PRG index; bit 9 is "last in group"

_OPEN: Final = "Event logged ["
_OPEN_WRAPPED: Final = "AMD-Vi: Event logged"
_EVENT: Final = re.compile(r"(?P<name>[A-Z][A-Z0-9_]+)(?P<fields>[^\]]*)\]")
_BODY: Final = re.compile(rf"(?<![A-Za-z_])(?:{'|'.join(EVENT_TYPES)}|UNKNOWN)\b")
"""An event's name in the second printk of the split format, wherever its prefix ends: 4.x
printed it with ``dev_err`` (``iommu ivhd0: ILLEGAL_DEV_TABLE_ENTRY device=...``), and
``UNKNOWN`` with a ``KERN_ERR`` inside the text (a stray level digit may stand before it)."""
_PER_DEVICE: Final = frozenset({"IO_PAGE_FAULT", "RMP_PAGE_FAULT", "RMP_HW_ERROR"})
"""The events printed on the faulting device itself (``<driver> SSSS:BB:DD.F: AMD-Vi: Event
logged [IO_PAGE_FAULT domain=...``): for the others a prefix names the IOMMU, not the
requester."""
_COMPLETION_WAIT: Final = "Completion-Wait loop timed out"
_FIELD: Final = re.compile(r"(\w+)=([^\s,)\]]+)")
_UNKNOWN_WORD: Final = re.compile(r"event\[(?P<index>[0-3])\]=0x(?P<word>[0-9a-fA-F]{8})\b")
"""``UNKNOWN event[0]=0x%08x ... event[3]=0x%08x``: the whole 16-byte entry, printed raw."""
_EVENT_ADDRESS: Final = ("address", "gpa", "spa")  # RMP_PAGE_FAULT's gpa, RMP_HW_ERROR's spa
# ppr.c opens a "(" before the fields and never closes it: "... tag=0x%03llx]"
_PPR: Final = re.compile(r"PPR logged \[(?P<why>[^(\]]*?)\s*\((?P<fields>[^)\]]*)\)?\s*\]")
_KFD: Final = re.compile(
    r"Invalid PPR device (?P<bus>[0-9a-fA-F]+):(?P<dev>[0-9a-fA-F]+)\.(?P<fn>[0-7])"
    r" pasid (?P<pasid>\d{1,20}) address 0x(?P<addr>[0-9a-fA-F]+) flags 0x(?P<flags>[0-9a-fA-F]+)"
)
_INVALID_PASID: Final = re.compile(
    r"Invalid PASID\s*:\s*0x(?P<pasid>[0-9a-fA-F]+),\s*device\s*:\s*0x(?P<dev>[0-9a-fA-F]+)"
)
XEN_EVENT_TYPES: Final = {
    "ILLEGAL_DEV_TABLE_ENTRY": 0x1,
    "IO_PAGE_FAULT": 0x2,
    "DEV_TABLE_HW_ERROR": 0x3,
    "PAGE_TABLE_HW_ERROR": 0x4,
    "ILLEGAL_COMMAND_ERROR": 0x5,
    "COMMAND_HW_ERROR": 0x6,
    "IOTLB_INV_TIMEOUT": 0x7,
    "INVALID_DEV_REQUEST": 0x8,
}
"""Xen's names of the same event types (its ``event_str``, in code order)."""
_XEN_START: Final = re.compile(rf"AMD-Vi: (?P<name>{'|'.join(XEN_EVENT_TYPES)}): ")
_XEN_EVENT: Final = re.compile(
    r"(?P<dev>[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]) d\d{1,5} "
    r"addr (?P<addr>[0-9a-fA-F]{1,16}) flags (?P<flags>0x[0-9a-fA-F]{1,4}|0)(?![0-9a-zA-Z])"
    r"|domain = \d{1,5}, device id = (?P<devid>0x[0-9a-fA-F]{1,4}|0), "
    r"fault address = (?P<oaddr>0x[0-9a-fA-F]{1,16}|0), flags = (?P<oflags>0x[0-9a-fA-F]{1,4}|0)"
    r"(?![0-9a-zA-Z])"
)
"""What Xen prints after the event's name: 4.14 on ``"%pp d%u addr %016llx flags %#x"`` (then
the flags' letters), before ``"domain = %d, device id = %#x, fault address = %#llx, flags =
%#x"``; the device ID is the requester's BDF."""
_PCI: Final = re.compile(
    r"(?:(?P<seg>[0-9a-fA-F]{4}):)?(?P<bus>[0-9a-fA-F]{1,2}):(?P<dev>[0-9a-fA-F]{1,2})"
    r"\.(?P<fn>[0-7])"
)


def _int(text: str | None) -> int | None:
    """A hex number as printed, with or without ``0x``; None for anything else."""
    if text is None or "_" in text or text[:1] in "+- ":
        return None  # int() would take these
    try:
        return int(text, 16)
    except ValueError:
        return None


def _pci(text: str | None) -> tuple[str, int] | None:
    return None if text is None else _pci_text(text.rstrip(":"))


@functools.lru_cache(maxsize=1024)
def _pci_text(text: str) -> tuple[str, int] | None:
    """``(SSSS:BB:DD.F, source ID)`` of a PCI address as printed. Cached: a storm repeats
    its devices."""
    match = _PCI.fullmatch(text)
    if match is None:
        return None
    seg = match.group("seg")
    try:
        return pci_device(
            None if seg is None else int(seg, 16),
            int(match.group("bus"), 16),
            int(match.group("dev"), 16),
            int(match.group("fn")),
        )
    except ValueError:  # "00:20.0": two hex digits, but no PCI device number
        return None


@functools.lru_cache(maxsize=256)
def _ppr_access(flags: int) -> str:
    return access_letters(
        read=bool(flags & _PPR_READ),
        write=bool(flags & _PPR_WRITE),
        execute=bool(flags & _PPR_EXEC),
        priv=not flags & _PPR_US,
    )


class AmdViLogParser:
    """One stream's AMD-Vi parser; holds an ``Event logged [`` printed alone until its body."""

    def __init__(self) -> None:
        self.held_from: int | None = None
        self._open: LogLine | None = None

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        body = line.body
        at = body.find(_OPEN)
        if at >= 0:
            return self._event(line, body, at, final)
        if body.endswith(_OPEN_WRAPPED):  # wrapped before its "[": the body comes next
            return self._hold(line)
        opened = self._open
        if opened is not None:
            named = _BODY.search(body)
            match = None if named is None else _EVENT.match(body, named.start())
            if match is not None:
                at = opened.body.find("Event logged")  # with or without its "["
                result = self._record(opened, at, match, final)
                if result is not MORE:
                    self._open = self.held_from = None
                return result
            if named is not None and not final:
                return MORE  # the body itself is wrapped: its "]" comes later
        if _COMPLETION_WAIT in body:  # the command queue stalled: no record, a message
            return [
                *self._release(),
                LogRecord(VENDOR, "message", line.number, line.timestamp, reason=_COMPLETION_WAIT),
            ]
        if "AMD-Vi: " in body:
            xen = _XEN_START.search(body)
            if xen is not None:
                return self._xen(line, xen, final)
        if "PPR" in body:
            return self._ppr(line, body, final)
        match = _INVALID_PASID.search(body)
        if match is not None:
            return [
                *self._release(),
                LogRecord(
                    VENDOR,
                    "message",
                    line.number,
                    line.timestamp,
                    source_id=int(match.group("dev"), 16),
                    pasid=int(match.group("pasid"), 16),
                    reason="Invalid PASID",
                ),
            ]
        return None

    def _event(self, line: LogLine, body: str, at: int, final: bool) -> ParseResult:
        rest = body[at + len(_OPEN) :]
        match = _EVENT.match(rest.strip())
        if match is None:
            if rest.strip() and "]" not in rest and not final:
                return MORE  # wrapped
            if not rest.strip():  # the old driver's first printk: the body comes next
                return self._hold(line)
            return [*self._release(), Unrecognised(line.number, line.text, "a cut AMD-Vi event")]
        result = self._record(line, at, match, final)
        if not isinstance(result, list):
            return result  # MORE: an unknown event's words go on on the next line
        return [*self._release(), *result]

    def _record(self, line: LogLine, at: int, match: re.Match[str], final: bool) -> ParseResult:
        """The record of one event; ``line`` the one that says ``Event logged [``."""
        name = match.group("name")
        if name == "UNKNOWN":
            # "event[0]=" holds a "]" itself: read the words to the end of the matched text
            return self._unknown(line, match.string[match.start("fields") :], final)
        fields = dict(_FIELD.findall(match.group("fields")))
        device = _pci(fields.get("device"))
        if device is None and name in _PER_DEVICE:  # "<driver> SSSS:BB:DD.F: AMD-Vi: Event"
            words = line.body[:at].replace("AMD-Vi:", " ").split()
            device = _pci(words[-1]) if words else None
        if "device" in fields and device is None:
            return [
                Unrecognised(line.number, line.text, "an AMD-Vi event with an unreadable device")
            ]
        values = {key: _int(value) for key, value in fields.items() if key != "device"}
        if any(value is None for value in values.values()):
            return [
                Unrecognised(line.number, line.text, "an AMD-Vi event with an unreadable value")
            ]
        flags = values.get("flags")
        pasid = values.get("pasid")
        if pasid is not None and flags is not None and not flags & _EVENT_GN:
            pasid = None  # GN clear: the PASID field is not valid
        tag = values.get("tag")
        code = EVENT_TYPES.get(name, values.get("type"))
        name_, source_id = (None, None) if device is None else device
        return [
            LogRecord(
                VENDOR,
                "fault" if name == "IO_PAGE_FAULT" else "event",
                line.number,
                line.timestamp,
                None,
                name_,
                source_id,
                pasid,
                next((values[k] for k in _EVENT_ADDRESS if k in values), None),
                None if flags is None else ("w" if flags & _EVENT_RW else "r"),
                code,
                name,
                None,
                None if tag is None else tag & _TAG_INDEX,
            )
        ]

    @staticmethod
    def _unknown(line: LogLine, fields: str, final: bool) -> ParseResult:
        """An event type the driver has no name for: it prints the entry's four dwords, so the
        raw entry is known, and its type is bits 31:28 of the second (EventCode, bits 63:60).
        The line has no closing ``]`` to say it is whole: a wrapped one asks for the rest."""
        words = {
            int(m.group("index")): int(m.group("word"), 16) for m in _UNKNOWN_WORD.finditer(fields)
        }
        if sorted(words) != [0, 1, 2, 3]:
            if not final and not fields.rstrip().endswith("]"):
                return MORE
            why = "an unknown AMD-Vi event without its words"
            return [Unrecognised(line.number, line.text, why)]
        return [
            LogRecord(
                VENDOR,
                "event",
                line.number,
                line.timestamp,
                code=words[1] >> 28,
                reason="UNKNOWN",
                raw=struct.pack("<4I", *(words[i] for i in range(4))).hex(),
            )
        ]

    def _xen(self, line: LogLine, start: re.Match[str], final: bool) -> ParseResult:
        """Xen's own print of an event (``(XEN) AMD-Vi: IO_PAGE_FAULT: 0000:00:14.0 d0 addr
        000000fdf8010140 flags 0x8 I``)."""
        match = _XEN_EVENT.match(start.string, start.end())
        device = None
        if match is not None:
            devid = match.group("devid")
            if devid is None:
                device = _pci(match.group("dev"))
            elif (number := int(devid, 16)) <= 0xFFFF:
                device = _pci(f"{number >> 8:x}:{number >> 3 & 0x1F:x}.{number & 7}")
        if match is None or device is None:
            if match is None and not final:
                return MORE  # wrapped
            why = "a Xen AMD-Vi event with an unreadable value"
            return [*self._release(), Unrecognised(line.number, line.text, why)]
        name = start.group("name")
        flags = int(match.group("flags") or match.group("oflags"), 16)
        return [
            *self._release(),
            LogRecord(
                VENDOR,
                "fault" if name == "IO_PAGE_FAULT" else "event",
                line.number,
                line.timestamp,
                device=device[0],
                source_id=device[1],
                address=int(match.group("addr") or match.group("oaddr"), 16),
                access="w" if flags & _EVENT_RW else "r",
                code=XEN_EVENT_TYPES[name],
                reason=name,
            ),
        ]

    def _ppr(self, line: LogLine, body: str, final: bool) -> ParseResult:
        kfd = _KFD.search(body)
        if kfd is not None:
            try:
                name, source_id = pci_device(
                    None, int(kfd.group("bus"), 16), int(kfd.group("dev"), 16), int(kfd.group("fn"))
                )
            except ValueError:  # no PCI device number: not a record to trust
                return [*self._release(), Unrecognised(line.number, line.text, "not a PCI device")]
            flags = int(kfd.group("flags"), 16)
            return [
                *self._release(),
                LogRecord(
                    VENDOR,
                    "page_request",
                    line.number,
                    line.timestamp,
                    device=name,
                    source_id=source_id,
                    pasid=int(kfd.group("pasid")),
                    address=int(kfd.group("addr"), 16),
                    access=_ppr_access(flags),
                    reason="Invalid PPR (amdkfd could not resolve it)",
                ),
            ]
        ppr = _PPR.search(body)
        if ppr is not None:
            fields = dict(_FIELD.findall(ppr.group("fields")))
            device = _pci(fields.get("device"))
            values = {key: _int(value) for key, value in fields.items() if key != "device"}
            if device is None or any(v is None for v in values.values()):
                return [*self._release(), Unrecognised(line.number, line.text, "a cut PPR line")]
            flags = values.get("flags") or 0
            tag = values.get("tag")
            return [
                *self._release(),
                LogRecord(
                    VENDOR,
                    "page_request",
                    line.number,
                    line.timestamp,
                    None,
                    device[0],
                    device[1],
                    values.get("pasid") if flags & _PPR_GN else None,
                    values.get("address"),
                    _ppr_access(flags) if "flags" in values else None,
                    None,
                    ppr.group("why").strip() or None,
                    tag=None if tag is None else tag & _TAG_INDEX,
                ),
            ]
        if "PPR logged [" in body or "Invalid PPR device" in body:
            if not final:
                return MORE
            return [*self._release(), Unrecognised(line.number, line.text, "a cut PPR line")]
        if "Unknown PPR request received" in body:
            return [
                *self._release(),
                LogRecord(
                    VENDOR, "message", line.number, line.timestamp, reason="Unknown PPR request"
                ),
            ]
        return None

    def _hold(self, line: LogLine) -> list[LogItem]:
        """Keep ``line``, an ``Event logged [`` whose body comes on a later line."""
        released = self._release()
        self._open = line
        self.held_from = line.number
        return released

    def _release(self) -> list[LogItem]:
        opened = self._open
        if opened is None:
            return []
        self._open = self.held_from = None
        return [Unrecognised(opened.number, opened.text, "an AMD-Vi event whose body never came")]

    def expire(self, before: int) -> Sequence[LogItem]:
        if self._open is not None and self._open.number < before:
            return self._release()
        return []

    def close(self) -> Sequence[LogItem]:
        return self._release()


AMD_VI_LOG_FORMAT: Final = LogFormat(
    vendor=VENDOR,
    triggers=(
        "AMD-Vi",
        "PPR logged",
        "Invalid PPR",
        "Unknown PPR",
        "Invalid PASID",
        "UNKNOWN event[",
        *EVENT_TYPES,
    ),
    new_parser=AmdViLogParser,
    ratelimited=("amd_iommu_report_page_fault",),
    examples=(
        "[  262.094625] amdgpu 0000:03:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0010 "
        "address=0x64a7f000 flags=0x0020]",
        "[    1.473381] AMD-Vi: Event logged [IO_PAGE_FAULT device=01:00.0 domain=0x0012 "
        "address=0x00000000bea106c0 flags=0x0010]",
        "Sep 22 15:32:35 kaveri kernel: kfd kfd: Invalid PPR device 0:1.0 pasid 1 address "
        "0x745000 flags 0x120",
    ),
    description="AMD-Vi event log lines, PPR messages and amdkfd's invalid PPRs",
)
