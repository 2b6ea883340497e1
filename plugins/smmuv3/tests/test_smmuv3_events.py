"""The event queue record codec and stall faults as page requests."""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import INVALID_IOASID, DecodeError, EncodeError, PageRequest, Perm
from ioasid_smmuv3.events import (
    EVENT_RECORD_SIZE,
    OTHER_BITS,
    EventId,
    EventNotRecoverableError,
    EventRecord,
    decode_event,
    decode_event_batch,
    encode_event,
    stall_record,
)

# A stalled F_TRANSLATION read fetching an instruction at EL1:
# dw0 = ID 0x10 | SSV 1 << 11 | SSID 0x12345 << 12 | SID 0xBEEF << 32
#     = 0x10 + 0x800 + 0x1234_5000 + 0xBEEF_0000_0000 = 0x0000_BEEF_1234_5810
#                                           -> 10 58 34 12 ef be 00 00
# dw1 = STAG 0xCAFE | STALL 1 << 31 | PnU 1 << 33 | InD 1 << 34 | RnW 1 << 35 | CLASS 2 << 40
#     = 0xCAFE + 0x8000_0000 + 0x2_0000_0000 + 0x4_0000_0000 + 0x8_0000_0000 + 0x200_0000_0000
#     = 0x0000_020E_8000_CAFE               -> fe ca 00 80 0e 02 00 00
# dw2 = input address 0xFFFF_8000_1234_5678 -> 78 56 34 12 00 80 ff ff
# dw3 = 0
GOLDEN_STALL = bytes.fromhex("10583412efbe0000feca00800e020000785634120080ffff0000000000000000")
GOLDEN_STALL_RECORD = EventRecord(
    event_id=0x10,
    sid=0xBEEF,
    ssv=True,
    ssid=0x12345,
    stag=0xCAFE,
    stall=True,
    pnu=True,
    ind=True,
    rnw=True,
    fault_class=2,
    input_addr=0xFFFF800012345678,
)

# F_WALK_EABT (0x0B, not a handled fault) with its FetchAddr[55:3] in dw3, where IPA 51:12 is:
# dw0 = ID 0x0B | SID 0x42 << 32 = 0x0000_0042_0000_000B  -> 0b 00 00 00 42 00 00 00
# dw1 = S2 1 << 39 | CLASS 1 << 40 | bit 20 (not a named field) 1 << 20
#     = 0x80_0000_0000 + 0x100_0000_0000 + 0x10_0000 = 0x0000_0180_0010_0000
#                                                    -> 00 00 10 00 80 01 00 00
# dw2 = 0x1000                                        -> 00 10 00 00 00 00 00 00
# dw3 = FetchAddr 0x12_3456_7FF8: bits 51:12 give ipa 0x12_3456_7000, bits 11:3 (0xFF8) are "other"
#                                                    -> f8 7f 56 34 12 00 00 00
GOLDEN_WALK = bytes.fromhex("0b0000004200000000001000800100000010000000000000f87f563412000000")
GOLDEN_WALK_RECORD = EventRecord(
    event_id=0x0B,
    sid=0x42,
    s2=True,
    fault_class=1,
    input_addr=0x1000,
    ipa=0x1234567000,
    other=(0, 1 << 20, 0, 0xFF8),
)


@pytest.mark.parametrize(
    ("raw", "record"),
    [(GOLDEN_STALL, GOLDEN_STALL_RECORD), (GOLDEN_WALK, GOLDEN_WALK_RECORD)],
)
def test_golden_records(raw: bytes, record: EventRecord) -> None:
    assert len(raw) == EVENT_RECORD_SIZE
    assert decode_event(raw) == record
    assert encode_event(record) == raw
    assert decode_event_batch(raw) == [record]


def test_golden_stall_is_a_page_request() -> None:
    assert GOLDEN_STALL_RECORD.handled and GOLDEN_STALL_RECORD.recoverable
    assert decode_event(GOLDEN_STALL).to_page_request() == PageRequest(
        device=0xBEEF,
        pasid=0x12345,
        pasid_valid=True,
        grpid=0xCAFE,
        last=True,
        perm=Perm.READ | Perm.EXEC | Perm.PRIV,
        addr=0xFFFF800012345678,
    )


def test_undocumented_bits_are_kept_not_refused() -> None:
    # Every bit set: a record of ID 0xFF with all "other" bits, e.g. NSIPA (dw3 bit 63) and the
    # IPA bits 55:52 of a 56-bit output address. It decodes; nothing is lost.
    raw = b"\xff" * EVENT_RECORD_SIZE
    record = decode_event(raw)
    assert record.other == OTHER_BITS
    assert record.ipa == 0x000FFFFFFFFFF000  # bits 51:12 in place
    assert not record.handled
    assert encode_event(record) == raw
    # NSIPA and IPA[55:52] alone: dw3 = 0x80F0_0000_0000_0000
    nsipa = decode_event(bytes(24) + struct.pack("<Q", 0x80F0000000000000))
    assert (nsipa.ipa, nsipa.other) == (0, (0, 0, 0, 0x80F0000000000000))


@pytest.mark.parametrize(
    ("event_id", "handled"),
    [
        *[(0x10, True), (0x11, True), (0x12, True), (0x13, True)],
        *[(0x01, False), (0x08, False), (0x0B, False), (0x0F, False), (0x14, False)],
    ],
)
def test_handled_faults(event_id: int, handled: bool) -> None:
    # A stalled record of each ID: dw0 = ID, dw1 = STALL 1 << 31
    record = decode_event(struct.pack("<4Q", event_id, 1 << 31, 0, 0))
    assert record.handled is handled
    assert record.recoverable is handled
    if handled:
        assert record.to_page_request().last
    else:
        with pytest.raises(
            EventNotRecoverableError, match=rf"event {event_id:#04x} .* not a handled"
        ):
            record.to_page_request()


def test_a_fault_that_did_not_stall_is_not_a_page_request() -> None:
    record = decode_event(struct.pack("<4Q", 0x13, 0, 0, 0))  # F_PERMISSION, STALL clear
    assert record.handled and not record.recoverable
    with pytest.raises(EventNotRecoverableError, match=r"PERMISSION .* did not stall") as info:
        record.to_page_request()
    assert info.value.errno == errno.EOPNOTSUPP


@pytest.mark.parametrize(
    ("rnw", "ind", "pnu", "perm"),
    [
        (False, False, False, Perm.WRITE),
        (True, False, False, Perm.READ),
        (False, True, False, Perm.WRITE | Perm.EXEC),
        (True, True, False, Perm.READ | Perm.EXEC),
        (False, False, True, Perm.WRITE | Perm.PRIV),
        (True, False, True, Perm.READ | Perm.PRIV),
        (False, True, True, Perm.WRITE | Perm.EXEC | Perm.PRIV),
        (True, True, True, Perm.READ | Perm.EXEC | Perm.PRIV),
    ],
)
def test_stall_permissions(rnw: bool, ind: bool, pnu: bool, perm: Perm) -> None:
    dw1 = 1 << 31 | pnu << 33 | ind << 34 | rnw << 35
    assert decode_event(struct.pack("<4Q", 0x10, dw1, 0, 0)).to_page_request().perm == perm


def test_a_stall_without_ssv_has_no_pasid() -> None:
    # dw0 = ID 0x12 | SSID 0x7 << 12 (SSV clear), dw1 = STALL | STAG 9
    record = decode_event(struct.pack("<4Q", 0x12 | 0x7 << 12, 1 << 31 | 9, 0x5000, 0))
    request = record.to_page_request()
    assert (request.pasid, request.pasid_valid, request.grpid) == (INVALID_IOASID, False, 9)
    assert request.addr == 0x5000


# Malformed input.


@pytest.mark.parametrize("size", [0, 16, 31])
def test_short_buffer(size: int) -> None:
    with pytest.raises(
        DecodeError, match=rf"event record at byte offset 0x0: needs 32 bytes, only {size} left"
    ):
        decode_event(bytes(size))


def test_batch_refuses_a_partial_record() -> None:
    with pytest.raises(DecodeError, match=r"at byte offset 0x20: 48 bytes .*16 trailing"):
        decode_event_batch(GOLDEN_STALL + bytes(16))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"other": (1, 0, 0, 0)}, r"other\[0\]=1 overlaps named fields"),
        ({"other": (0, 1 << 31, 0, 0)}, r"other\[1\]"),
        ({"ipa": 0x1234}, "ipa=0x1234 is not 4 KiB aligned"),
        ({"stag": 0x10000}, "stag=65536 does not fit 16 bits"),
        ({"fault_class": 4}, "class=4 does not fit 2 bits"),
    ],
)
def test_encode_refuses_what_a_record_cannot_hold(changes: dict[str, object], says: str) -> None:
    fields: dict[str, object] = {"event_id": 0x10, "sid": 1}
    fields.update(changes)
    with pytest.raises(EncodeError, match=says):
        encode_event(EventRecord(**fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"perm": Perm.READ | Perm.WRITE}, "read or a write"),
        ({"perm": Perm.EXEC}, "read or a write"),
        ({"perm": Perm.READ | Perm(16)}, "unknown bits"),
        ({"last": False}, "last must be set"),
        ({"grpid": 0x10000}, "stag=65536 does not fit 16 bits"),
        ({"pasid": 0x100000}, "ssid=1048576 does not fit 20 bits"),
        ({"needs_pasid": True}, "needs_pasid"),
    ],
)
def test_stall_record_refuses_what_a_stall_cannot_say(
    changes: dict[str, object], says: str
) -> None:
    fields: dict[str, object] = {"device": 1, "pasid": 2, "pasid_valid": True, "perm": Perm.READ}
    fields.update(changes)
    with pytest.raises(EncodeError, match=says):
        stall_record(PageRequest(**fields))  # type: ignore[arg-type]


# Round trips.

words = st.integers(0, (1 << 64) - 1)


@given(words, words, words, words)
def test_any_record_decodes_and_encodes_back(dw0: int, dw1: int, dw2: int, dw3: int) -> None:
    raw = struct.pack("<4Q", dw0, dw1, dw2, dw3)
    assert encode_event(decode_event(raw)) == raw


@st.composite
def records(draw: st.DrawFn) -> EventRecord:
    other = tuple(draw(words) & mask for mask in OTHER_BITS)
    return EventRecord(
        event_id=draw(st.integers(0, 0xFF)),
        sid=draw(st.integers(0, 0xFFFFFFFF)),
        ssv=draw(st.booleans()),
        ssid=draw(st.integers(0, 0xFFFFF)),
        stag=draw(st.integers(0, 0xFFFF)),
        stall=draw(st.booleans()),
        pnu=draw(st.booleans()),
        ind=draw(st.booleans()),
        rnw=draw(st.booleans()),
        s2=draw(st.booleans()),
        fault_class=draw(st.integers(0, 3)),
        tt_read=draw(st.booleans()),
        input_addr=draw(words),
        ipa=draw(st.integers(0, (1 << 40) - 1)) << 12,
        other=(other[0], other[1], other[2], other[3]),
    )


@given(records())
def test_record_round_trip(record: EventRecord) -> None:
    assert decode_event(encode_event(record)) == record


@st.composite
def stalls(draw: st.DrawFn) -> PageRequest:
    valid = draw(st.booleans())
    perm = draw(st.sampled_from([Perm.READ, Perm.WRITE]))
    perm |= draw(st.sampled_from([Perm.NONE, Perm.EXEC, Perm.PRIV, Perm.EXEC | Perm.PRIV]))
    return PageRequest(
        device=draw(st.integers(0, 0xFFFFFFFF)),
        pasid=draw(st.integers(0, 0xFFFFF)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0xFFFF)),
        last=True,
        perm=perm,
        addr=draw(words),
    )


@given(stalls(), st.sampled_from(list(EventId)))
def test_stall_round_trip_through_bytes(request_: PageRequest, event_id: EventId) -> None:
    record = stall_record(request_, event_id=event_id)
    assert record.recoverable
    assert decode_event(encode_event(record)).to_page_request() == request_
