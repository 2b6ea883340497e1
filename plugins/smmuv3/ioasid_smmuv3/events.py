"""The SMMUv3 event queue record (32 bytes) and stall faults as page requests.

Fields the kernel reads (kernel-facts §4), four little-endian 64-bit words:

====  =======  ==================================================
word  bits     field
====  =======  ==================================================
dw0   7:0      ID (event type)
dw0   11       SSV (SSID valid)
dw0   31:12    SSID
dw0   63:32    SID
dw1   15:0     STAG (stall tag, echoed by CMD_RESUME)
dw1   31       STALL (the transaction is stalled, awaiting RESUME)
dw1   33       PnU (privileged)
dw1   34       InD (instruction fetch)
dw1   35       RnW (read)
dw1   39       S2 (stage 2 fault)
dw1   41:40    CLASS (0 CD fetch, 1 table walk, 2 input address)
dw1   44       TT_READ
dw2   63:0     input address
dw3   51:12    IPA (in place: ``ipa`` is 4 KiB aligned)
====  =======  ==================================================

Reserved bits: none are checked, for any event type. This is deliberate:

- The layout depends on the event ID and the facts give only the fields above, read for the
  handled faults. For other IDs the same bits mean other things: the Arm SMMUv3 spec (§7.3)
  puts F_UUT's (0x01) IMPLEMENTATION DEFINED Reason in dw1 15:0, where STAG is; C_BAD_SUBSTREAMID
  (0x08) has no SSV (bit 11 is RES0 and its SSID is always valid); the fetch-abort events carry
  FetchAddr[55:3] in dw3, where IPA 51:12 is here. A single reserved mask would reject them.
- Even for the handled faults 0x10..0x13, the spec lets the IPA reach bit 55 (56-bit output
  addresses), puts NSIPA in dw3 bit 63 on the Secure queue, and newer revisions add fields.
- Records come from hardware. Refusing one leaves a stalled transaction that nobody resumes,
  and Arm recommends treating unknown events as non-fatal.

So every record of any ID decodes; the fields above are extracted for all of them; every other
bit is kept, in place, in :attr:`EventRecord.other`, so nothing is lost (``encode_event``
gives the same bytes back). :attr:`EventRecord.handled` says whether the named fields mean
what their names say. Only the length is checked: 32 bytes per record.

Which records are page requests (kernel-facts §4): a handled fault (0x10..0x13) with STALL
set and S2 clear. The IOASID-era kernels refused a stage-2 fault before building a request
(``-EFAULT``: stage 2 was pinned, so an S2 fault was no SVA fault), logged it and sent no
RESUME, so a stalled S2 fault is refused here too (:class:`StageTwoFaultError`) and stays
stalled; see ``docs/kernel-differences.md``.
"""

from __future__ import annotations

import enum
import errno as _errno
import struct
from typing import Final

import attrs

from ioasid_core.plugin import (
    INVALID_IOASID,
    BitField,
    BitLayout,
    Buffer,
    DecodeError,
    EncodeError,
    IoasidError,
    PageRequest,
    Perm,
    byte_view,
)

__all__ = [
    "EVENT_NAMES",
    "EVENT_RECORD",
    "EVENT_RECORD_SIZE",
    "HANDLED_FAULTS",
    "NAMED_BITS",
    "OTHER_BITS",
    "EventId",
    "EventNotRecoverableError",
    "EventRecord",
    "StageTwoFaultError",
    "decode_event",
    "decode_event_batch",
    "encode_event",
    "event_name",
    "stall_record",
]


class EventId(enum.IntEnum):
    """The fault IDs the kernel's SVA fault path handles; every other ID is only logged."""

    TRANSLATION = 0x10
    ADDR_SIZE = 0x11
    ACCESS = 0x12
    PERMISSION = 0x13


HANDLED_FAULTS: Final = frozenset(int(e) for e in EventId)

EVENT_NAMES: Final = {
    0x01: "F_UUT",
    0x02: "C_BAD_STREAMID",
    0x03: "F_STE_FETCH",
    0x04: "C_BAD_STE",
    0x05: "F_BAD_ATS_TREQ",
    0x06: "F_STREAM_DISABLED",
    0x07: "F_TRANSL_FORBIDDEN",
    0x08: "C_BAD_SUBSTREAMID",
    0x09: "F_CD_FETCH",
    0x0A: "C_BAD_CD",
    0x0B: "F_WALK_EABT",
    0x10: "F_TRANSLATION",
    0x11: "F_ADDR_SIZE",
    0x12: "F_ACCESS",
    0x13: "F_PERMISSION",
    0x20: "F_TLB_CONFLICT",
    0x21: "F_CFG_CONFLICT",
    0x24: "E_PAGE_REQUEST",
    0x25: "F_VMS_FETCH",
}
"""The event types of the Arm SMMUv3 spec (§7.3), for messages only: the kernel handles
0x10..0x13 and logs the rest, whatever their name."""


def event_name(event_id: int) -> str:
    """``F_TRANSLATION (0x10)``; an ID the spec does not define is shown by number only."""
    name = EVENT_NAMES.get(event_id)
    return f"{name} ({event_id:#04x})" if name else f"event {event_id:#04x}"


class EventNotRecoverableError(IoasidError):
    """The record is not a stalled translation fault, so it is not a page request.

    The kernel's handler answered ``-EOPNOTSUPP`` for these (the core has no such class).
    """

    errno = _errno.EOPNOTSUPP


class StageTwoFaultError(EventNotRecoverableError):
    """A stage-2 fault (S2 set): the IOASID-era kernels refused it with ``-EFAULT`` before
    building a page request, stalled or not, and nobody resumed the stall."""

    errno = _errno.EFAULT


_FIELDS: Final = (
    BitField("id", 0, 0, 7),
    BitField("ssv", 0, 11, 11),
    BitField("ssid", 0, 12, 31),
    BitField("sid", 0, 32, 63),
    BitField("stag", 1, 0, 15),
    BitField("stall", 1, 31, 31),
    BitField("pnu", 1, 33, 33),
    BitField("ind", 1, 34, 34),
    BitField("rnw", 1, 35, 35),
    BitField("s2", 1, 39, 39),
    BitField("class", 1, 40, 41),
    BitField("tt_read", 1, 44, 44),
    BitField("input_addr", 2, 0, 63),
    BitField("ipa", 3, 12, 51),
)
_WORD_COUNT: Final = 4
_FULL: Final = (1 << 64) - 1


def _named(fields: tuple[BitField, ...]) -> tuple[int, ...]:
    masks = [0] * _WORD_COUNT
    for f in fields:
        masks[f.word] |= f.mask << f.lo
    return tuple(masks)


NAMED_BITS: Final = _named(_FIELDS)
"""Per word, the bits of the fields above; the rest of each word is ``other``."""
OTHER_BITS: Final = tuple(_FULL & ~m for m in NAMED_BITS)


def _other_fields() -> list[BitField]:
    """The bits no named field covers, as "don't care" fields: the layout then reserves none."""
    fields: list[BitField] = []
    for word, mask in enumerate(OTHER_BITS):
        bit = 0
        while bit < 64:
            if mask >> bit & 1:
                lo = bit
                while bit < 64 and mask >> bit & 1:
                    bit += 1
                fields.append(BitField(f"other dw{word}[{bit - 1}:{lo}]", word, lo, bit - 1))
            else:
                bit += 1
    return fields


EVENT_RECORD: Final = BitLayout("SMMUv3 event record", 32, [*_FIELDS, *_other_fields()])
EVENT_RECORD_SIZE: Final = EVENT_RECORD.size
_OTHER_FIELDS: Final = tuple(
    (f.name, f.word, f.lo) for f in EVENT_RECORD.fields if f.name.startswith("other")
)

_PAGE_SHIFT: Final = 12
# An int: ``~`` of an IntFlag complements within the flag's members, hiding unknown bits.
_ALL_PERMS: Final = int(Perm.READ | Perm.WRITE | Perm.EXEC | Perm.PRIV)


@attrs.frozen(kw_only=True)
class EventRecord:
    """One decoded event record. Flags are bools; ``ipa`` is an address (bits 51:12 in place).

    ``other`` holds, per word and in place, the bits that no named field covers: their meaning
    depends on ``event_id`` (see the module docstring); they are kept, never interpreted.
    """

    event_id: int
    sid: int
    ssv: bool = False
    ssid: int = 0
    stag: int = 0
    stall: bool = False
    pnu: bool = False
    ind: bool = False
    rnw: bool = False
    s2: bool = False
    fault_class: int = 0
    tt_read: bool = False
    input_addr: int = 0
    ipa: int = 0
    other: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def handled(self) -> bool:
        """A fault the kernel's SVA path handles (translation, address size, access, permission)."""
        return self.event_id in HANDLED_FAULTS

    @property
    def recoverable(self) -> bool:
        """A stage-1 handled fault whose transaction is stalled: a page request that needs a
        RESUME. A stalled stage-2 fault is not (the driver refuses it, see the module doc)."""
        return self.stall and not self.s2 and self.event_id in HANDLED_FAULTS

    def to_page_request(self) -> PageRequest:
        """The one-request group the stall reports (kernel-facts §4, stall-based faults).

        ``last`` is always set (each stall is its own group), ``grpid`` is STAG, the PASID is
        the SSID if SSV, ``addr`` the input address; perm is READ if RnW else WRITE, plus EXEC
        if InD, plus PRIV if PnU.
        """
        if self.event_id not in HANDLED_FAULTS:
            raise EventNotRecoverableError(
                f"event {self.event_id:#04x} from SID {self.sid:#x} is not a handled fault "
                f"(0x10..0x13): not a page request"
            )
        if self.s2:
            raise StageTwoFaultError(
                f"stage-2 fault {EventId(self.event_id).name} ({self.event_id:#04x}) from SID "
                f"{self.sid:#x}: refused (-EFAULT), not an SVA fault"
                + (", the stall is never resumed" if self.stall else "")
            )
        if not self.stall:
            raise EventNotRecoverableError(
                f"fault {EventId(self.event_id).name} ({self.event_id:#04x}) from SID "
                f"{self.sid:#x} did not stall: the transaction was terminated, nothing to resume"
            )
        perm = Perm.READ if self.rnw else Perm.WRITE
        if self.ind:
            perm |= Perm.EXEC
        if self.pnu:
            perm |= Perm.PRIV
        return PageRequest(
            device=self.sid,
            pasid=self.ssid if self.ssv else INVALID_IOASID,
            pasid_valid=self.ssv,
            grpid=self.stag,
            last=True,
            perm=perm,
            addr=self.input_addr,
        )


def decode_event(data: Buffer, offset: int = 0) -> EventRecord:
    """The record at ``offset`` (any event ID; only a short buffer is refused)."""
    f = EVENT_RECORD.decode(data, offset)
    other = [0] * _WORD_COUNT
    for name, word, lo in _OTHER_FIELDS:
        other[word] |= f[name] << lo
    return EventRecord(
        event_id=f["id"],
        sid=f["sid"],
        ssv=bool(f["ssv"]),
        ssid=f["ssid"],
        stag=f["stag"],
        stall=bool(f["stall"]),
        pnu=bool(f["pnu"]),
        ind=bool(f["ind"]),
        rnw=bool(f["rnw"]),
        s2=bool(f["s2"]),
        fault_class=f["class"],
        tt_read=bool(f["tt_read"]),
        input_addr=f["input_addr"],
        ipa=f["ipa"] << _PAGE_SHIFT,
        other=(other[0], other[1], other[2], other[3]),
    )


def encode_event(record: EventRecord) -> bytes:
    """The record's 32 bytes; ``EncodeError`` naming the field that does not fit."""
    if record.ipa & ((1 << _PAGE_SHIFT) - 1):
        raise EncodeError(
            f"{EVENT_RECORD.name}: ipa={record.ipa:#x} is not 4 KiB aligned "
            "(the record holds IPA bits 51:12)"
        )
    values = {
        "id": record.event_id,
        "ssv": int(record.ssv),
        "ssid": record.ssid,
        "sid": record.sid,
        "stag": record.stag,
        "stall": int(record.stall),
        "pnu": int(record.pnu),
        "ind": int(record.ind),
        "rnw": int(record.rnw),
        "s2": int(record.s2),
        "class": record.fault_class,
        "tt_read": int(record.tt_read),
        "input_addr": record.input_addr,
        "ipa": record.ipa >> _PAGE_SHIFT,
    }
    for word, (bits, allowed) in enumerate(zip(record.other, OTHER_BITS, strict=True)):
        if not isinstance(bits, int) or bits & ~allowed or bits < 0:
            raise EncodeError(
                f"{EVENT_RECORD.name}: other[{word}]={bits!r} overlaps named fields "
                f"(allowed mask {allowed:#018x})"
            )
    for name, word, lo in _OTHER_FIELDS:
        values[name] = record.other[word] >> lo & EVENT_RECORD.by_name[name].mask
    return EVENT_RECORD.encode(values)


def stall_record(request: PageRequest, *, event_id: EventId = EventId.TRANSLATION) -> EventRecord:
    """The stall record the SMMU would write for ``request`` (the device side of the model).

    Only what a stall can say is accepted: a last-in-group request reading or writing (not
    both, not neither: RnW is one bit), STAG of 16 bits, no ``needs_pasid`` or private data.
    """
    access = request.perm & (Perm.READ | Perm.WRITE)
    if access not in (Perm.READ, Perm.WRITE):
        raise EncodeError(
            f"{EVENT_RECORD.name}: a stall is a read or a write (RnW), not perm {request.perm!r}"
        )
    if int(request.perm) & ~_ALL_PERMS:
        raise EncodeError(f"{EVENT_RECORD.name}: perm {int(request.perm):#x} has unknown bits")
    if not request.last:
        raise EncodeError(f"{EVENT_RECORD.name}: a stall is its own group, last must be set")
    if request.needs_pasid or request.private_data is not None:
        raise EncodeError(
            f"{EVENT_RECORD.name}: a stall record carries neither needs_pasid nor private data"
        )
    record = EventRecord(
        event_id=int(event_id),
        sid=request.device,
        ssv=request.pasid_valid,
        ssid=request.pasid if request.pasid_valid else 0,
        stag=request.grpid,
        stall=True,
        pnu=bool(request.perm & Perm.PRIV),
        ind=bool(request.perm & Perm.EXEC),
        rnw=access == Perm.READ,
        input_addr=request.addr,
    )
    encode_event(record)  # the range checks (SID, SSID, STAG, address), with field names
    return record


# The batch decoder: the same records as decode_event, without a dict per record.

_WORDS: Final = struct.Struct("<4Q")
_O0, _O1, _O2, _O3 = OTHER_BITS
_IPA_MASK: Final = ((1 << 40) - 1) << _PAGE_SHIFT


def check_whole_records(data: Buffer) -> None:
    """A run of event records must be whole: ``DecodeError`` naming the trailing bytes."""
    size = len(byte_view(data))
    if size % EVENT_RECORD_SIZE:
        raise DecodeError(
            EVENT_RECORD.name,
            f"{size} bytes is not a whole number of {EVENT_RECORD_SIZE}-byte records "
            f"({size % EVENT_RECORD_SIZE} trailing bytes)",
            offset=size - size % EVENT_RECORD_SIZE,
        )


def decode_event_batch(data: Buffer) -> list[EventRecord]:
    """Every record of a run of event queue records, in order (whole records only)."""
    data = byte_view(data)
    check_whole_records(data)
    out: list[EventRecord] = []
    append = out.append
    for dw0, dw1, dw2, dw3 in _WORDS.iter_unpack(data):
        append(
            EventRecord(
                event_id=dw0 & 0xFF,
                sid=dw0 >> 32,
                ssv=dw0 >> 11 & 1 == 1,
                ssid=dw0 >> 12 & 0xFFFFF,
                stag=dw1 & 0xFFFF,
                stall=dw1 >> 31 & 1 == 1,
                pnu=dw1 >> 33 & 1 == 1,
                ind=dw1 >> 34 & 1 == 1,
                rnw=dw1 >> 35 & 1 == 1,
                s2=dw1 >> 39 & 1 == 1,
                fault_class=dw1 >> 40 & 0x3,
                tt_read=dw1 >> 44 & 1 == 1,
                input_addr=dw2,
                ipa=dw3 & _IPA_MASK,
                other=(dw0 & _O0, dw1 & _O1, dw2 & _O2, dw3 & _O3),
            )
        )
    return out
