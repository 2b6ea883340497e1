"""virtio-iommu fault records: merged and extended layouts, page requests, contradictions."""

from __future__ import annotations

import logging
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import (
    INVALID_IOASID,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    PageRequest,
    Perm,
)
from ioasid_virtio_iommu.faults import (
    MAX_PASID,
    FaultFlag,
    FaultLog,
    FaultReason,
    UnrecoverableFault,
    decode_event,
    decode_extended,
    decode_merged,
    decode_page_request,
    encode_fault,
    encode_page_request,
)

# Golden vectors, computed by hand.
#
# MAPPING fault, endpoint 0x12345678, READ|WRITE at 0xFFFF0000DEADB000:
#   reason  = MAPPING = 2                                  -> byte 0: 02
#   flags   = READ 0x1 | WRITE 0x2 | ADDRESS 0x100 = 0x103 -> bytes 4..7 LE: 03 01 00 00
#   endpoint 0x12345678                                    -> bytes 8..11 LE: 78 56 34 12
#   address 0xFFFF0000DEADB000                             -> bytes 16..23 LE:
#                                                             00 b0 ad de 00 00 ff ff
MERGED_GOLDEN = bytes.fromhex(
    "02 000000"  # reason, reserved 1..3
    "03010000"  # flags
    "78563412"  # endpoint
    "00000000"  # reserved 12..15
    "00b0adde0000ffff"  # address
)
MERGED_FAULT = UnrecoverableFault(
    endpoint=0x12345678,
    reason=FaultReason.MAPPING,
    perm=Perm.READ | Perm.WRITE,
    address=0xFFFF0000DEADB000,
)

# Page request: endpoint 3, PASID 0x1234, group 0x1FF, last, READ + PRIVILEGED, at
# 0x7F0000001000, private data (1, 2):
#   flags = READ 0x1 | PRIVILEGED 0x8 | LAST 0x10 | PAGE_REQ 0x20            = 0x039
#         | ADDRESS 0x100 | PASID 0x200 | GROUP_ID 0x400 | PRIV_DATA 0x800  = 0xF00 -> 0xF39
#         -> bytes 4..7 LE: 39 0f 00 00
#   pasid 0x1234 -> bytes 12..15: 34 12 00 00; group 0x1FF -> bytes 24..25: ff 01
#   address 0x00007F0000001000 -> bytes 16..23 LE: 00 10 00 00 00 7f 00 00
PAGE_REQUEST_GOLDEN = bytes.fromhex(
    "02 000000"  # reason MAPPING, reserved
    "390f0000"  # flags 0xF39
    "03000000"  # endpoint 3
    "34120000"  # pasid
    "0010000000 7f0000"  # address
    "ff01 000000000000"  # group_id, reserved 26..31
    "0100000000000000"  # private_data[0] = 1
    "0200000000000000"  # private_data[1] = 2
)
PAGE_REQUEST = PageRequest(
    device=3,
    pasid=0x1234,
    pasid_valid=True,
    grpid=0x1FF,
    last=True,
    perm=Perm.READ | Perm.PRIV,
    addr=0x7F0000001000,
    private_data=(1, 2),
)

# Extended unrecoverable fault with a PASID: DOMAIN, EXEC, endpoint 0x10, PASID 0xFFFFF, no address:
#   flags = EXEC 0x4 | PASID 0x200 = 0x204 -> 04 02 00 00; pasid 0xFFFFF -> ff ff 0f 00
EXTENDED_FAULT_GOLDEN = bytes.fromhex("01000000 04020000 10000000 ffff0f00") + bytes(32)
EXTENDED_FAULT = UnrecoverableFault(
    endpoint=0x10, reason=FaultReason.DOMAIN, perm=Perm.EXEC, pasid=0xFFFFF
)


def test_merged_golden_both_ways() -> None:
    assert len(MERGED_GOLDEN) == 24
    assert decode_merged(MERGED_GOLDEN) == MERGED_FAULT
    assert decode_event(MERGED_GOLDEN) == MERGED_FAULT
    assert encode_fault(MERGED_FAULT) == MERGED_GOLDEN


def test_page_request_golden_both_ways() -> None:
    assert len(PAGE_REQUEST_GOLDEN) == 48
    assert decode_page_request(PAGE_REQUEST_GOLDEN) == PAGE_REQUEST
    assert decode_event(PAGE_REQUEST_GOLDEN) == PAGE_REQUEST
    assert encode_page_request(PAGE_REQUEST) == PAGE_REQUEST_GOLDEN


def test_extended_fault_golden_both_ways() -> None:
    assert decode_extended(EXTENDED_FAULT_GOLDEN) == EXTENDED_FAULT
    assert encode_fault(EXTENDED_FAULT, extended=True) == EXTENDED_FAULT_GOLDEN


def test_stop_marker_is_a_page_request_the_pipeline_discards() -> None:
    # flags = LAST 0x10 | PAGE_REQ 0x20 | ADDRESS 0x100 | GROUP_ID 0x400 = 0x530: no READ/WRITE.
    raw = bytes.fromhex("02000000 30050000 07000000 00000000") + bytes(8) + b"\x05\x00" + bytes(22)
    request = decode_page_request(raw)
    assert (request.device, request.grpid, request.last, request.perm) == (7, 5, True, Perm.NONE)
    assert request.stop_marker


def test_page_request_without_pasid_has_the_invalid_pasid() -> None:
    raw = bytearray(PAGE_REQUEST_GOLDEN)
    raw[5] &= ~0x02  # clear PASID (bit 9 = bit 1 of byte 5)
    raw[12:16] = bytes(4)
    request = decode_page_request(bytes(raw))
    assert (request.pasid_valid, request.pasid) == (False, INVALID_IOASID)


def test_needs_pasid_comes_from_the_caller_not_the_record() -> None:
    assert decode_page_request(PAGE_REQUEST_GOLDEN, needs_pasid=True).needs_pasid
    assert not decode_page_request(PAGE_REQUEST_GOLDEN).needs_pasid


def test_records_are_read_at_an_offset_in_a_larger_buffer() -> None:
    buf = bytes(8) + PAGE_REQUEST_GOLDEN + MERGED_GOLDEN
    assert decode_page_request(buf, 8) == PAGE_REQUEST
    assert decode_merged(buf, 56) == MERGED_FAULT


# Round trips.

u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, (1 << 64) - 1)
pasids = st.integers(0, MAX_PASID)

faults = st.builds(
    UnrecoverableFault,
    endpoint=u32,
    reason=st.sampled_from(FaultReason),
    perm=st.integers(0, 7).map(Perm),
    address=st.none() | u64,
    pasid=st.none() | pasids,
)


@st.composite
def page_requests(draw: st.DrawFn) -> PageRequest:
    valid = draw(st.booleans())
    return PageRequest(
        device=draw(u32),
        pasid=draw(pasids) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0xFFFF)),
        last=draw(st.booleans()),
        perm=Perm(draw(st.integers(0, 15))),
        addr=draw(u64),
        needs_pasid=draw(st.booleans()),
        private_data=draw(st.none() | st.tuples(u64, u64)),
    )


@given(faults)
def test_extended_fault_round_trip(fault: UnrecoverableFault) -> None:
    assert decode_extended(encode_fault(fault, extended=True)) == fault
    assert decode_event(encode_fault(fault, extended=True)) == fault


@given(faults.filter(lambda f: f.pasid is None))
def test_merged_fault_round_trip_and_prefix_compatibility(fault: UnrecoverableFault) -> None:
    merged = encode_fault(fault)
    assert decode_merged(merged) == fault
    # The counter-proposal's point: an extended record's first 24 bytes are the merged record.
    assert encode_fault(fault, extended=True)[:24] == merged


@given(page_requests())
def test_page_request_round_trip(request: PageRequest) -> None:
    raw = encode_page_request(request)
    assert decode_page_request(raw, needs_pasid=request.needs_pasid) == request
    assert decode_event(raw, needs_pasid=request.needs_pasid) == request


@given(
    st.one_of(
        page_requests().map(encode_page_request),
        faults.map(lambda f: encode_fault(f, extended=True)),
    ),
    st.lists(st.integers(0, 48 * 8 - 1), max_size=3),
)
def test_every_accepted_extended_record_re_encodes_to_itself(raw: bytes, flips: list[int]) -> None:
    """Decoding is lossless: whatever is accepted, even after random bit flips, re-encodes."""
    value = int.from_bytes(raw, "little")
    for bit in flips:
        value ^= 1 << bit
    mutated = value.to_bytes(48, "little")
    try:
        event = decode_extended(mutated)
    except DecodeError:
        return
    if isinstance(event, PageRequest):
        assert encode_page_request(event) == mutated
    else:
        assert encode_fault(event, extended=True) == mutated


@given(faults.filter(lambda f: f.pasid is None), st.lists(st.integers(0, 24 * 8 - 1), max_size=3))
def test_every_accepted_merged_record_re_encodes_to_itself(
    fault: UnrecoverableFault, flips: list[int]
) -> None:
    value = int.from_bytes(encode_fault(fault), "little")
    for bit in flips:
        value ^= 1 << bit
    mutated = value.to_bytes(24, "little")
    try:
        decoded = decode_merged(mutated)
    except DecodeError:
        return
    assert encode_fault(decoded) == mutated


# Malformed input: each error names the field and its byte offset.


def _error(fn: object, raw: bytes, message: str, offset: int) -> None:
    assert callable(fn)
    with pytest.raises(DecodeError) as info:
        fn(raw)
    assert message in str(info.value)
    assert info.value.offset == offset, str(info.value)


@pytest.mark.parametrize(
    ("fn", "size", "says"),
    [
        (decode_merged, 23, "needs 24 bytes, only 23 left"),
        (decode_extended, 47, "needs 48 bytes, only 47 left"),
        (decode_page_request, 24, "needs 48 bytes, only 24 left"),
    ],
)
def test_short_buffers_are_refused(fn: object, size: int, says: str) -> None:
    _error(fn, bytes(size), says, 0)


@pytest.mark.parametrize("size", [0, 23, 25, 32, 47, 49, 96])
def test_an_event_is_24_or_48_bytes(size: int) -> None:
    _error(decode_event, bytes(size), f"{size} bytes: a fault record is 24 bytes (merged) or 48", 0)


@pytest.mark.parametrize("fn", [decode_merged, decode_extended])
@pytest.mark.parametrize("reason", [3, 0x80, 0xFF])
def test_unknown_reasons_are_refused(fn: object, reason: int) -> None:
    raw = bytearray(48)
    raw[0] = reason
    _error(fn, bytes(raw), f"reason (record byte 0): unknown reason {reason} (UNKNOWN 0", 0)


@pytest.mark.parametrize(("bit", "extended"), [(6, True), (7, True), (12, True), (31, False)])
def test_unknown_flag_bits_are_refused(bit: int, extended: bool) -> None:
    raw = bytearray(48 if extended else 24)
    raw[4:8] = (1 << bit).to_bytes(4, "little")
    fn = decode_extended if extended else decode_merged
    _error(fn, bytes(raw), f"flags (record byte 4): unknown bits {1 << bit:#x}", 4)


@pytest.mark.parametrize(
    "flag",
    [
        FaultFlag.PRIVILEGED,
        FaultFlag.LAST,
        FaultFlag.PAGE_REQ,
        FaultFlag.PASID,
        FaultFlag.GROUP_ID,
        FaultFlag.PRIV_DATA,
    ],
)
def test_extension_flags_need_the_extended_record(flag: FaultFlag) -> None:
    raw = bytearray(MERGED_GOLDEN)
    raw[4:8] = (0x103 | flag).to_bytes(4, "little")
    _error(
        decode_merged,
        bytes(raw),
        f"flags (record byte 4): {flag.name} ({int(flag):#x}) belong to the page-request "
        "extension, which needs the 48-byte record",
        4,
    )


@pytest.mark.parametrize(
    ("byte", "field", "start"),
    [(1, "reserved bytes 1..3", 1), (3, "reserved bytes 1..3", 1)]
    + [(b, "reserved bytes 12..15", 12) for b in (12, 13, 15)],
)
def test_merged_reserved_bytes_must_be_zero(byte: int, field: str, start: int) -> None:
    raw = bytearray(MERGED_GOLDEN)
    raw[byte] = 0x40
    _error(decode_merged, bytes(raw), f"{field} (record byte {start}): must be zero", start)


@pytest.mark.parametrize(
    ("byte", "field", "start"),
    [(2, "reserved bytes 1..3", 1)] + [(b, "reserved bytes 26..31", 26) for b in (26, 28, 31)],
)
def test_extended_reserved_bytes_must_be_zero(byte: int, field: str, start: int) -> None:
    raw = bytearray(PAGE_REQUEST_GOLDEN)
    raw[byte] = 1
    _error(decode_extended, bytes(raw), f"{field} (record byte {start}): must be zero", start)


def test_the_offset_in_an_error_is_absolute() -> None:
    raw = bytearray(PAGE_REQUEST_GOLDEN * 2)
    raw[48 + 27] = 1
    with pytest.raises(DecodeError, match=re.escape("at byte offset 0x4a: reserved bytes 26..31")):
        decode_extended(bytes(raw), 48)


def _extended(
    flags: int,
    *,
    reason: int = 2,
    pasid: int = 0,
    address: int = 0,
    group: int = 0,
    private: tuple[int, int] = (0, 0),
) -> bytes:
    """An extended record built field by field with struct-free arithmetic."""
    return (
        bytes([reason, 0, 0, 0])
        + flags.to_bytes(4, "little")
        + (9).to_bytes(4, "little")
        + pasid.to_bytes(4, "little")
        + address.to_bytes(8, "little")
        + group.to_bytes(2, "little")
        + bytes(6)
        + private[0].to_bytes(8, "little")
        + private[1].to_bytes(8, "little")
    )


PR = int(FaultFlag.PAGE_REQ | FaultFlag.ADDRESS | FaultFlag.GROUP_ID)


@pytest.mark.parametrize(
    ("raw", "says", "offset"),
    [
        # A field whose validity flag is clear must be zero.
        (_extended(PR, pasid=5), "pasid (record byte 12): is 0x5 but flag PASID is clear", 12),
        (_extended(0, address=1 << 12), "address (record byte 16): is 0x1000 but flag ADDRESS", 16),
        (_extended(0, group=3), "group_id (record byte 24): is 0x3 but flag GROUP_ID is clear", 24),
        (_extended(PR, private=(0, 7)), "private_data[1] (record byte 40): is 0x7 but flag", 40),
        (_extended(PR, private=(7, 0)), "private_data[0] (record byte 32): is 0x7 but flag", 32),
        # A page request needs an address, a group and reason MAPPING.
        (_extended(PR & ~int(FaultFlag.ADDRESS)), "a page request (PAGE_REQ) needs ADDRESS", 4),
        (_extended(PR & ~int(FaultFlag.GROUP_ID)), "a page request (PAGE_REQ) needs GROUP_ID", 4),
        (_extended(int(FaultFlag.PAGE_REQ)), "needs ADDRESS|GROUP_ID (flags=0x20)", 4),
        (_extended(PR, reason=1), "reason (record byte 0): a page request (PAGE_REQ) must", 0),
        (_extended(PR, reason=0), "must have reason MAPPING (2), not UNKNOWN", 0),
        # Page-request-only flags on an unrecoverable fault.
        (_extended(int(FaultFlag.LAST)), "flags (record byte 4): LAST only belong on a page", 4),
        (_extended(int(FaultFlag.PRIVILEGED | FaultFlag.READ)), "PRIVILEGED only belong", 4),
        (_extended(int(FaultFlag.GROUP_ID)), "GROUP_ID only belong on a page request", 4),
        (_extended(int(FaultFlag.PRIV_DATA)), "PRIV_DATA only belong on a page request", 4),
        (_extended(0x10 | 0x800), "LAST|PRIV_DATA only belong on a page request", 4),
        # A PASID is at most 20 bits.
        (_extended(PR | FaultFlag.PASID, pasid=1 << 20), "pasid (record byte 12): 0x100000 is", 12),
        (_extended(int(FaultFlag.PASID), pasid=0xFFFFFFFF), "0xffffffff is wider than 20", 12),
    ],
)
def test_contradictory_records_are_refused(raw: bytes, says: str, offset: int) -> None:
    _error(decode_extended, raw, says, offset)


def test_a_page_request_at_the_edges_is_accepted() -> None:
    flags = PR | FaultFlag.PASID | FaultFlag.PRIV_DATA | FaultFlag.WRITE
    raw = _extended(flags, pasid=MAX_PASID, address=(1 << 64) - 1, group=0xFFFF, private=(0, 0))
    request = decode_page_request(raw)
    assert (request.pasid, request.addr, request.grpid, request.private_data) == (
        0xFFFFF,
        (1 << 64) - 1,
        0xFFFF,
        (0, 0),
    )
    assert not request.last


def test_decode_page_request_refuses_an_unrecoverable_fault() -> None:
    says = "flags (record byte 4): PAGE_REQ is clear"
    _error(decode_page_request, EXTENDED_FAULT_GOLDEN, says, 4)


# Encoding refuses what the records cannot carry.


@pytest.mark.parametrize(
    ("page_request", "says"),
    [
        (PageRequest(device=1, grpid=1 << 16), "group_id=65536 does not fit 16 bits"),
        (PageRequest(device=1, pasid=1 << 20, pasid_valid=True), "pasid=0x100000 is wider"),
        (PageRequest(device=1 << 32), "endpoint=4294967296 does not fit 32 bits"),
        (PageRequest(device=1, perm=Perm(16)), "has unknown bits"),
        (PageRequest(device=1, private_data=(1 << 64, 0)), "private_data[0]=18446744073709551616"),
    ],
)
def test_encode_page_request_refuses_what_does_not_fit(
    page_request: PageRequest, says: str
) -> None:
    with pytest.raises(EncodeError, match=re.escape(says)):
        encode_page_request(page_request)


def test_an_invalid_pasid_is_not_written() -> None:
    raw = encode_page_request(PageRequest(device=1, pasid=0x55, pasid_valid=False))
    assert raw[12:16] == bytes(4)
    assert not raw[5] & 0x02


def test_a_fault_with_a_pasid_needs_the_extended_record() -> None:
    with pytest.raises(EncodeError, match="only the extended record carries"):
        encode_fault(EXTENDED_FAULT)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"perm": Perm.PRIV}, "only READ, WRITE and EXEC describe a fault"),
        ({"endpoint": 1 << 32}, "is not a le32"),
        ({"address": -1}, "is not a le64"),
        ({"pasid": 1 << 20}, "wider than 20 bits"),
        ({"reason": 2}, "is not a FaultReason"),
    ],
)
def test_fault_values_are_checked_when_built(kwargs: dict[str, object], says: str) -> None:
    args: dict[str, object] = {"endpoint": 1, "reason": FaultReason.DOMAIN} | kwargs
    with pytest.raises(InvalidArgumentError, match=says):
        UnrecoverableFault(**args)  # type: ignore[arg-type]


def test_fault_log_counts_and_logs_but_never_answers(caplog: pytest.LogCaptureFixture) -> None:
    log = FaultLog()
    with caplog.at_level(logging.WARNING):
        for raw in (MERGED_GOLDEN, MERGED_GOLDEN, EXTENDED_FAULT_GOLDEN):
            fault = decode_event(raw)
            assert isinstance(fault, UnrecoverableFault)
            log.report(fault)  # typed -> None: there is nothing to send back
    assert log.total == 3
    assert log.by_reason == {FaultReason.MAPPING: 2, FaultReason.DOMAIN: 1}
    assert log.by_endpoint == {0x12345678: 2, 0x10: 1}
    assert "MAPPING fault from endpoint 305419896 [rw-] at 0xffff0000deadb000" in caplog.text
    assert "DOMAIN fault from endpoint 16 PASID 0xfffff [--x]" in caplog.text
