"""The batch page-request decoder returns (and refuses) exactly what the plain decoder does."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import INVALID_IOASID, DecodeError, PageRequest, Perm
from ioasid_virtio_iommu.faults import (
    MAX_PASID,
    FaultReason,
    UnrecoverableFault,
    decode_page_request,
    decode_page_requests,
    encode_fault,
    encode_page_request,
)

u64 = st.integers(0, (1 << 64) - 1)


@st.composite
def page_requests(draw: st.DrawFn) -> PageRequest:
    valid = draw(st.booleans())
    return PageRequest(
        device=draw(st.integers(0, 7) | st.integers(0, 0xFFFFFFFF)),
        pasid=draw(st.integers(0, MAX_PASID)) if valid else INVALID_IOASID,
        pasid_valid=valid,
        grpid=draw(st.integers(0, 0xFFFF)),
        last=draw(st.booleans()),
        perm=Perm(draw(st.integers(0, 15))),
        addr=draw(u64),
        private_data=draw(st.none() | st.tuples(u64, u64)),
    )


def plain(data: bytes, needs_pasid: frozenset[int]) -> list[PageRequest]:
    """The reference: the plain decoder, record by record."""
    out = []
    for offset in range(0, len(data), 48):
        endpoint = int.from_bytes(data[offset + 8 : offset + 12], "little")
        out.append(decode_page_request(data, offset, needs_pasid=endpoint in needs_pasid))
    return out


def outcome(fn: object, *args: object) -> object:
    """A call's result, or its DecodeError's message: what must be equal."""
    assert callable(fn)
    try:
        return fn(*args)
    except DecodeError as error:
        return ("DecodeError", str(error), error.offset)


@given(st.lists(page_requests(), max_size=8), st.frozensets(st.integers(0, 7)))
def test_batch_equals_plain_on_valid_runs(requests: list[PageRequest], eps: frozenset[int]) -> None:
    data = b"".join(encode_page_request(r) for r in requests)
    batch = decode_page_requests(data, needs_pasid=eps)
    assert batch == plain(data, eps)
    assert [r.device for r in batch] == [r.device for r in requests]
    assert all(r.needs_pasid == (r.device in eps) for r in batch)


@given(
    st.lists(
        page_requests().map(encode_page_request)
        | st.builds(
            UnrecoverableFault,
            endpoint=st.integers(0, 7),
            reason=st.sampled_from(FaultReason),
            pasid=st.none() | st.integers(0, MAX_PASID),
        ).map(lambda f: encode_fault(f, extended=True)),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(0, 6 * 48 * 8 - 1), max_size=4),
    st.frozensets(st.integers(0, 7)),
)
def test_batch_equals_plain_on_corrupted_runs(
    records: list[bytes], flips: list[int], eps: frozenset[int]
) -> None:
    """Random bit flips anywhere: both accept the same, or both raise the same error."""
    data = b"".join(records)
    value = int.from_bytes(data, "little")
    for bit in flips:
        value ^= 1 << (bit % (len(data) * 8))
    mutated = value.to_bytes(len(data), "little")
    assert outcome(lambda: decode_page_requests(mutated, needs_pasid=eps)) == outcome(
        lambda: plain(mutated, eps)
    )


@pytest.mark.parametrize(
    ("byte", "value", "says"),
    [
        (0, 1, "reason (record byte 0): a page request (PAGE_REQ) must have reason MAPPING"),
        (2, 1, "reserved bytes 1..3 (record byte 1): must be zero"),
        (5, 0x10, "flags (record byte 4): unknown bits 0x1000"),
        (5, 0x05, "is 0x1234 but flag PASID is clear"),  # 0x700 -> 0x500: PASID clear
        (14, 0x10, "pasid (record byte 12): 0x101234 is wider than 20 bits"),
        (30, 1, "reserved bytes 26..31 (record byte 26): must be zero"),
    ],
)
def test_batch_names_the_bad_record_and_field(byte: int, value: int, says: str) -> None:
    good = encode_page_request(PageRequest(device=2, pasid=0x1234, pasid_valid=True, grpid=3))
    bad = bytearray(good)
    bad[byte] = value
    data = good + bytes(bad) + good
    with pytest.raises(DecodeError, match=re.escape(says)) as info:
        decode_page_requests(data)
    # The second record starts at 48: the offset is that of the field within the whole run.
    assert info.value.offset is not None and 48 <= info.value.offset < 96


def test_an_unrecoverable_fault_in_the_run_is_refused() -> None:
    fault = encode_fault(UnrecoverableFault(endpoint=1, reason=FaultReason.DOMAIN), extended=True)
    with pytest.raises(DecodeError, match=r"at byte offset 0x34: flags .*PAGE_REQ is clear"):
        decode_page_requests(encode_page_request(PageRequest(device=1)) + fault)


@pytest.mark.parametrize("size", [1, 47, 49, 95])
def test_a_run_is_whole_records(size: int) -> None:
    with pytest.raises(DecodeError, match=f"{size % 48} bytes are left over"):
        decode_page_requests(bytes(size))


def test_empty_run_and_memoryview_input() -> None:
    assert decode_page_requests(b"") == []
    raw = encode_page_request(PageRequest(device=5, last=False, perm=Perm.WRITE))
    assert decode_page_requests(memoryview(bytearray(raw * 2))) == [decode_page_request(raw)] * 2
