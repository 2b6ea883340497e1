"""What the arm-smmu-v3 driver (and Xen's port) prints about event and PRI queue entries.

Formats (real-world-formats §2.5):

- raw, v4.2 on: ``<unit>: event 0x10 received:`` then four ``<unit>: \\t0x%016llx`` lines.
  Each record goes through this plugin's own binary decoder (:func:`decode_event_batch`,
  and the stall codec for what is a page request), so ``ioasid logs`` and ``ioasid decode``
  read the same bytes the same way.
- decoded, v6.14 on, printed *after* the dwords of the same record:
  ``event: F_TRANSLATION client: 0000:75:00.1 sid: 0x7501 ssid: 0x1 iova: 0x.. ipa: 0x..``
  then ``unpriv data write s1 "Input address caused fault" stall stag: 0x176``. With its raw
  dwords they are one record (the decoded lines add the client device); alone (a paste that
  starts mid-storm) they make a record of their own.
- ``CMDQ error (cons 0x..): Illegal command`` (a ``message``) and the refused command printed
  after ``skipping command in error state:`` as two dwords that are no event's.
- ``unexpected PRI request received:`` then ``sid 0x%08x.0x%05x: [%u%s] %sprivileged %s%s%s
  access at iova 0x%016llx``; ``EVTQ``/``PRIQ overflow detected`` messages.

Arm SMMU v1/v2 faults (``arm-smmu 5000000.iommu: Unhandled context fault: fsr=0x402,
iova=...``, ``Unexpected global fault``) are not SMMUv3 records and no vendor models that
driver: they are unrecognised lines, counted and shown.

Traps handled: dwords of one unit matched to its header across interleaved lines (state per
unit), a dword split by a space (``0x00000180 00000010``), records cut short (reported as
unrecognised), a decoded line glued to the next message (read up to ``stag: 0x..``; an SMMU
message glued after it is read too), Xen's ``SMMUv3:`` prefix.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Sequence
from typing import Final

import attrs

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
from ioasid_smmuv3.events import EVENT_NAMES, HANDLED_FAULTS, decode_event_batch

__all__ = ["SMMUV3_LOG_FORMAT", "Smmuv3LogParser"]

VENDOR: Final = "smmuv3"

_PREFIX: Final = re.compile(r"(?:arm-smmu-v3|SMMUv3:?)\s+(?P<unit>\S+?):(?:\s+|$)(?P<msg>.*)")
_HEADER: Final = re.compile(r"event\s+0x(?P<id>[0-9a-fA-F]{1,2})\s+received:?")
_DWORD: Final = re.compile(r"0x([0-9a-fA-F]{16}|[0-9a-fA-F]{8}\s[0-9a-fA-F]{8})\s*")
_HALF_DWORD: Final = re.compile(r"0x[0-9a-fA-F]{1,15}\s*")
_NUM: Final = r"(?:0x[0-9a-fA-F]+|0)"
_DECODED_1: Final = re.compile(
    rf"event:\s+(?P<name>\S+)\s+client:\s+(?P<client>.+?)\s+sid:\s+(?P<sid>{_NUM})"
    rf"\s+ssid:\s+(?P<ssid>{_NUM})"
    rf"(?:\s+iova:\s+(?P<iova>{_NUM})\s+ipa:\s+(?P<ipa>{_NUM})"
    rf"|\s+fetch_addr:\s+(?P<fetch>{_NUM}))?\s*"
)
_DECODED_2_START: Final = re.compile(r"(?:un)?priv\s+(?:data|inst)\s")
_DECODED_2: Final = re.compile(
    r"(?P<priv>unpriv|priv)\s+(?P<cls>data|inst)\s+(?P<rw>read|write)\s+(?P<stage>s1|s2)\s+"
    r'"(?P<desc>[^"]*)"(?P<extra>[^"]*?)\s*stag:\s+(?P<stag>0x[0-9a-fA-F]+|0)'
)
_PRI: Final = re.compile(
    r"sid\s+0x(?P<sid>[0-9a-fA-F]+)\.0x(?P<ssid>[0-9a-fA-F]+):\s+"
    r"\[(?P<grp>\d{1,20})(?P<last>[L*]?)\]"  # the kernel marks the last of a group "L"
    r"\s+(?P<un>un)?privileged\s+(?P<r>R?)(?P<w>W?)(?P<x>X?)\s+access at iova\s+"
    r"0x(?P<iova>[0-9a-fA-F]+)"
)
_CMDQ_ERROR: Final = re.compile(r"CMDQ error \(cons 0x[0-9a-fA-F]+\): (?P<why>.+)")
_SKIPPING: Final = "skipping command in error state"
_CMDQ_ENT_DWORDS: Final = 2
"""arm_smmu_cmdq_skip_err() prints the refused command after ``skipping command in error
state:`` as two ``\t0x%016llx`` lines, the same form as an event's dwords: they are not."""
_V2_FAULT: Final = re.compile(r"Unhandled context fault|Unexpected global fault")
"""What the Arm SMMU v1/v2 drivers (``arm-smmu``, qcom's, Xen's ``smmu:``) print about a fault:
no vendor here models them, so their lines are shown as unrecognised, never dropped."""
_OVERFLOW: Final = re.compile(r"(?:EVTQ|PRIQ) overflow detected[^\n]*")
_PCI: Final = re.compile(
    r"(?:(?P<seg>[0-9a-fA-F]{4}):)?(?P<bus>[0-9a-fA-F]{2}):(?P<dev>[0-9a-fA-F]{2})\.(?P<fn>[0-7])"
)
_NAME_TO_ID: Final = {name: event_id for event_id, name in EVENT_NAMES.items()}
# Events whose dw2 is the input address and whose RnW/InD/PnU describe the access (Arm SMMUv3
# §7.3): F_UUT, F_BAD_ATS_TREQ, F_TRANSL_FORBIDDEN, F_WALK_EABT, the handled faults,
# F_TLB_CONFLICT. Stall and STAG: F_WALK_EABT and the handled faults.
_ADDRESSED: Final = frozenset({0x01, 0x05, 0x07, 0x0B, 0x20, *HANDLED_FAULTS})
# F_STE_FETCH, F_CD_FETCH, F_VMS_FETCH: dw3 bits 51:3 are the fetch address (the v6.14
# decoder prints it as ``fetch_addr``); it is their only address.
_FETCHING: Final = frozenset({0x03, 0x09, 0x25})
_FETCH_ADDR: Final = 0x000F_FFFF_FFFF_FFF8
_STALLING: Final = frozenset({0x0B, *HANDLED_FAULTS})
_WORDS: Final = struct.Struct("<4Q")
_ACCESS: Final = {
    (rnw, ind, pnu): access_letters(read=rnw, write=not rnw, execute=ind, priv=pnu)
    for rnw in (False, True)
    for ind in (False, True)
    for pnu in (False, True)
}
"""RnW, InD, PnU as ``access`` letters."""


def _num(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text, 16) if text[:2].lower() == "0x" else int(text)


@functools.lru_cache(maxsize=1024)
def _device(client: str) -> str | None:
    """The client as printed, a PCI address normalised; None for ``(unassigned sid)``.
    Cached: a storm repeats its clients."""
    if client.startswith("("):
        return None
    pci = _PCI.fullmatch(client)
    if pci is None:
        return client
    seg = pci.group("seg")
    try:
        return pci_device(
            None if seg is None else int(seg, 16),
            int(pci.group("bus"), 16),
            int(pci.group("dev"), 16),
            int(pci.group("fn")),
        )[0]
    except ValueError:  # "0000:00:20.0" has no PCI device number: a name as printed
        return client


def _kind(event_id: int, stall: bool | None, s2: bool) -> str:
    """As the stall codec classes the record (``ioasid decode smmuv3``)."""
    if event_id in HANDLED_FAULTS:
        return "page_request" if stall and not s2 else "fault"
    return "event"


def record_from_dwords(
    dwords: Sequence[int], *, line: int, timestamp: str | None, unit: str | None
) -> LogRecord:
    """The record of four event-queue dwords, read by this plugin's binary decoders."""
    raw = _WORDS.pack(*dwords)
    [event] = decode_event_batch(raw)
    # The stall codec's rule (``ioasid decode smmuv3``): a stage-1 stalled handled fault is a
    # page request; another handled fault is a fault; any other ID an event.
    kind = "page_request" if event.recoverable else "fault" if event.handled else "event"
    event_id = event.event_id
    addressed = event_id in _ADDRESSED
    stalling = event_id in _STALLING
    return LogRecord(
        VENDOR,
        kind,
        line,
        timestamp,
        unit,
        None,
        event.sid,
        event.ssid if event.ssv else None,
        event.input_addr
        if addressed
        else dwords[3] & _FETCH_ADDR
        if event_id in _FETCHING
        else None,
        _ACCESS[event.rnw, event.ind, event.pnu] if addressed else None,
        event_id,
        EVENT_NAMES.get(event_id),
        event.stall if stalling else None,
        event.stag if stalling else None,
        raw.hex(),
    )


class _Raw:
    """A unit's record being read: its header (if seen) and dwords so far."""

    __slots__ = ("broken", "dwords", "event_id", "line", "text", "timestamp")

    def __init__(self, line: int, text: str, timestamp: str | None, event_id: int | None) -> None:
        self.line = line
        self.text = text
        self.timestamp = timestamp
        self.event_id = event_id
        self.dwords: list[int] = []
        self.broken = False


@attrs.define
class _Decoded:
    """A unit's first decoded line, waiting for the second."""

    line: int
    unit: str
    timestamp: str | None
    match: dict[str, str | None]
    merged: LogRecord | None  # its raw record, when the dwords came first


class Smmuv3LogParser:
    """One stream's SMMUv3 parser: per unit, a record being read, a complete raw record
    waiting (briefly) for its decoded lines, and a first decoded line waiting for its second."""

    def __init__(self) -> None:
        self.held_from: int | None = None
        self._reading: dict[str, _Raw] = {}
        self._done: dict[str, LogRecord] = {}
        self._decoded: dict[str, _Decoded] = {}
        self._skip: dict[str, int] = {}  # per unit: command dwords still to come
        self._same = False  # the line changed nothing held: held_from stands

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        body = line.body
        if body.startswith("arm-smmu-v3 "):  # the usual prefix, read without a regex
            unit, colon, msg = body[12:].partition(":")
            if not colon or not unit or " " in unit:
                return None
            msg = msg.strip()
        else:
            match = _PREFIX.search(body)
            if match is None:
                if _V2_FAULT.search(body) is None:
                    return None
                why = "an Arm SMMU v1/v2 fault: no installed vendor reads that driver"
                return [Unrecognised(line.number, line.text, why)]
            unit, msg = match.group("unit"), match.group("msg")
        out: list[LogItem] = []
        self._same = False
        waiting = list(self._done) if self._done else None
        # This unit is itself mid-record: its lines may interleave with another unit's record.
        busy = unit in self._reading or unit in self._done or unit in self._decoded
        result = self._message(line, unit, msg, final, out)
        if result is MORE:
            return MORE
        if waiting and result is not None:
            # The decoded lines of a record come right after its dwords (v6.14+): another
            # line of the same unit means they are not coming. Another unit's lines mean so
            # too, unless that unit is printing a record of its own (two SMMUs' event threads
            # interleave: dwords, then decoded lines, of each).
            decoded = msg.startswith("event:")
            raw = busy or msg[:2] == "0x" or msg.startswith("event 0x")
            for other in waiting:
                if other in self._done and (not decoded if other == unit else not raw):
                    out.append(self._done.pop(other))
                    self._same = False
        if not self._same:
            self._note_held()
        return out if result is not None else (out or None)

    # -- one message of one unit

    def _message(
        self, line: LogLine, unit: str, msg: str, final: bool, out: list[LogItem]
    ) -> ParseResult:
        if not msg:
            return MORE if not final else None
        if len(msg) == 18 and msg[:2] == "0x" and "_" not in msg:  # the usual dword, no regex
            try:
                self._dword(line, unit, int(msg, 16), out)
            except ValueError:
                pass
            else:
                return out
        dword = _DWORD.fullmatch(msg)
        if dword is not None:
            self._dword(line, unit, int(dword.group(1).replace(" ", "").replace("\t", ""), 16), out)
            return out
        if msg.startswith("event"):
            header = _HEADER.fullmatch(msg)
            if header is not None:
                self._skip.pop(unit, None)  # a new event: no command dump goes on
                self._flush(unit, out)
                self._reading[unit] = _Raw(
                    line.number, line.text, line.timestamp, int(header.group("id"), 16)
                )
                return out
            if msg.startswith("event:"):
                return self._decoded_1(line, unit, msg, final, out)
        if _DECODED_2_START.match(msg):
            return self._decoded_2(line, unit, msg, final, out)
        if _HALF_DWORD.fullmatch(msg):  # a dword cut by wrapping, or cut short
            if not final:
                return MORE
            reading = self._reading.get(unit)
            if reading is not None:
                reading.broken = True
            return out
        pri = _PRI.search(msg)
        if pri is not None:
            out.append(self._pri(line, unit, pri))
            return out
        if msg.startswith("sid 0x") and not final:
            return MORE
        if msg.startswith(_SKIPPING):
            self._skip[unit] = _CMDQ_ENT_DWORDS
            self._same = True
            return out
        cmdq = _CMDQ_ERROR.match(msg)
        if cmdq is not None:
            reason = f"CMDQ error: {cmdq.group('why').strip()}"
        else:
            overflow = _OVERFLOW.search(msg)
            if overflow is None:
                return None
            reason = overflow.group(0).strip()
        out.append(
            LogRecord(
                vendor=VENDOR,
                kind="message",
                line=line.number,
                timestamp=line.timestamp,
                unit=unit,
                reason=reason,
            )
        )
        return out

    def _dword(self, line: LogLine, unit: str, value: int, out: list[LogItem]) -> None:
        skip = self._skip.get(unit)
        if skip:  # a refused command's dwords, not an event's
            self._skip[unit] = skip - 1
            self._same = True
            return
        reading = self._reading.get(unit)
        began = reading is None
        if reading is None:  # the header was cut off: the dwords still say everything
            self._flush(unit, out)
            reading = self._reading[unit] = _Raw(line.number, line.text, line.timestamp, None)
        reading.dwords.append(value)
        if len(reading.dwords) < 4:
            self._same = not began  # nothing held began or ended
            return
        del self._reading[unit]
        if reading.broken or (
            reading.event_id is not None and reading.dwords[0] & 0xFF != reading.event_id
        ):
            out.append(Unrecognised(reading.line, reading.text, "dwords that do not add up"))
            return
        self._done[unit] = record_from_dwords(
            reading.dwords, line=reading.line, timestamp=reading.timestamp, unit=unit
        )

    def _decoded_1(
        self, line: LogLine, unit: str, msg: str, final: bool, out: list[LogItem]
    ) -> ParseResult:
        match = _DECODED_1.fullmatch(msg)
        if match is None:
            if not final:
                return MORE
            if unit in self._done:
                return out  # a cut copy of the record just read raw
            out.append(Unrecognised(line.number, line.text, "a cut decoded event line"))
            return out
        done = self._done.get(unit)
        merged = None
        if (
            done is not None
            and done.source_id == _num(match.group("sid"))
            and (
                done.reason == match.group("name")
                or done.code == _NAME_TO_ID.get(match.group("name"))
            )
        ):
            merged = done
            del self._done[unit]
        self._flush(unit, out)
        self._decoded[unit] = _Decoded(line.number, unit, line.timestamp, match.groupdict(), merged)
        return out

    def _decoded_2(
        self, line: LogLine, unit: str, msg: str, final: bool, out: list[LogItem]
    ) -> ParseResult:
        stag_at = msg.find("stag:")
        glued = _PREFIX.search(msg, stag_at) if stag_at >= 0 else None
        head = msg if glued is None else msg[: glued.start()]
        match = _DECODED_2.match(head)
        if match is None:
            if not final:
                return MORE
            first = self._decoded.pop(unit, None)
            if first is not None:
                out.append(self._from_decoded(first, None))
            else:
                out.append(Unrecognised(line.number, line.text, "a cut decoded event line"))
            return out
        stag_text = match.group("stag")
        first = self._decoded.pop(unit, None)
        if first is None:
            # The second line alone: its first line was cut off. Nothing to add to a raw
            # record of this unit; otherwise it is not enough for a record.
            if unit not in self._done:
                out.append(Unrecognised(line.number, line.text, "a decoded event line alone"))
        else:
            out.append(self._from_decoded(first, match, stag_text))
        if glued is not None:  # the driver's next message, glued on (no newline)
            self._message(line, glued.group("unit"), glued.group("msg"), True, out)
        return out

    def _from_decoded(
        self, first: _Decoded, second: re.Match[str] | None, stag_text: str | None = None
    ) -> LogRecord:
        fields = first.match
        device = _device(str(fields["client"]))
        if first.merged is not None:
            return first.merged._replace(device=device)
        name = str(fields["name"])
        event_id = _NAME_TO_ID.get(name)
        ssid = _num(fields["ssid"])
        stall: bool | None = None
        access = None
        s2 = False
        if second is not None:
            priv, cls, rw, stage, _desc, extra = second.groups()[:6]
            stall = "stall" in extra.split()
            s2 = stage == "s2"
            access = _ACCESS[rw == "read", cls == "inst", priv == "priv"]
        address = _num(fields["iova"]) if fields["iova"] is not None else _num(fields["fetch"])
        return LogRecord(
            vendor=VENDOR,
            kind="event" if event_id is None else _kind(event_id, stall, s2),
            line=first.line,
            timestamp=first.timestamp,
            unit=first.unit,
            device=device,
            source_id=_num(fields["sid"]),
            pasid=ssid or None,  # "ssid shows 0x0 unless SSV is set"
            address=address,
            access=access,
            code=event_id,
            reason=name,
            stall=stall,
            tag=None if stag_text is None else _num(stag_text),
        )

    def _pri(self, line: LogLine, unit: str, pri: re.Match[str]) -> LogRecord:
        ssid = int(pri.group("ssid"), 16)
        return LogRecord(
            vendor=VENDOR,
            kind="page_request",
            line=line.number,
            timestamp=line.timestamp,
            unit=unit,
            source_id=int(pri.group("sid"), 16),
            pasid=ssid or None,
            address=int(pri.group("iova"), 16),
            access=access_letters(
                read=bool(pri.group("r")),
                write=bool(pri.group("w")),
                execute=bool(pri.group("x")),
                priv=not pri.group("un"),
            ),
            tag=int(pri.group("grp")),
        )

    # -- what is held

    def _flush(self, unit: str, out: list[LogItem]) -> None:
        """Give up whatever ``unit`` still holds (a new record of it begins)."""
        reading = self._reading.pop(unit, None)
        if reading is not None:
            out.append(
                Unrecognised(
                    reading.line,
                    reading.text,
                    f"a record cut after {len(reading.dwords)} of 4 dwords",
                )
            )
        done = self._done.pop(unit, None)
        if done is not None:
            out.append(done)
        first = self._decoded.pop(unit, None)
        if first is not None:
            out.append(self._from_decoded(first, None))

    def _note_held(self) -> None:
        held = None
        for state in (self._reading, self._done, self._decoded):
            for kept in state.values():
                if held is None or kept.line < held:
                    held = kept.line
        for first in self._decoded.values():  # a raw record merged into decoded lines
            if first.merged is not None and (held is None or first.merged.line < held):
                held = first.merged.line
        self.held_from = held

    def expire(self, before: int) -> Sequence[LogItem]:
        out: list[LogItem] = []
        units = {u for u, r in self._reading.items() if r.line < before}
        units |= {u for u, r in self._done.items() if r.line < before}
        units |= {
            u
            for u, d in self._decoded.items()
            if min(d.line, d.line if d.merged is None else d.merged.line) < before
        }
        for unit in sorted(units):
            self._flush(unit, out)
        self._note_held()
        return sorted(out, key=lambda item: item.line)

    def close(self) -> Sequence[LogItem]:
        return self.expire(1 << 62)


SMMUV3_LOG_FORMAT: Final = LogFormat(
    vendor=VENDOR,
    triggers=("arm-smmu-v3", "SMMUv3", "Unhandled context fault", "Unexpected global fault"),
    new_parser=Smmuv3LogParser,
    ratelimited=("arm_smmu_evtq_thread", "arm_smmu_priq_thread"),
    examples=(
        "[  478.907684] arm-smmu-v3 arm-smmu-v3.2.auto: event 0x10 received:",
        "[  478.913691] arm-smmu-v3 arm-smmu-v3.2.auto:  0x0000310200000010",
        "[  478.919603] arm-smmu-v3 arm-smmu-v3.2.auto:  0x000002088000007f",
        "[  478.925515] arm-smmu-v3 arm-smmu-v3.2.auto:  0x0000000000000000",
        "[  478.931425] arm-smmu-v3 arm-smmu-v3.2.auto:  0x0000000000000000",
        "[  420.979049] arm-smmu-v3 arm-smmu-v3.4.auto: event: F_TRANSLATION client: "
        "0000:87:00.0 sid: 0x8700 ssid: 0x0 iova: 0x272f7900 ipa: 0x272f7000",
        '[  421.129512] arm-smmu-v3 arm-smmu-v3.4.auto: unpriv data write s1 "Input address '
        'caused fault" stag: 0x0',
    ),
    description="Arm SMMUv3 event records (raw and decoded), PRI requests, queue overflows",
)
