"""Every installed vendor's decoder fails only with ``DecodeError``, and reads any Buffer
exactly as it reads its bytes (issue 19).

Inputs are random bytes and valid queue entries with bits flipped or bytes overwritten, each
handed over as bytes, as a ring mapped as 64-bit words
(``memoryview(buf).cast("Q")``: ``len()`` counts words there) and as a strided,
non-contiguous view. 20,000 examples per decoder (rows and objects are decoded in each).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioasid_core.bits import Buffer, DecodeError, byte_view
from ioasid_core.compare import available_vendors
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq.types import PageRequest, Perm, request_row
from ioasid_core.prq.vendor import VendorPrq, row_codec

VENDORS = available_vendors(new_plugin_manager().hooks)
EXAMPLES = 20_000


def _valid_entries(vendor: VendorPrq) -> bytes:
    """A few well-formed page requests in the vendor's own format (8 bits of PASID and
    requester ID keep them legal for every vendor)."""
    requests = [
        PageRequest(0x10 + i, 0x20 + i, True, i, i % 2 == 0, Perm.READ | Perm.WRITE, i << 12)
        for i in range(4)
    ]
    return b"".join(vendor.encode_request(r) for r in requests)


def _views(data: bytes) -> list[Buffer]:
    """The same bytes, as the Buffers a caller may hand a decoder."""
    views: list[Buffer] = []
    if len(data) % 8 == 0:
        views.append(memoryview(bytearray(data)).cast("Q"))
    spread = bytearray(2 * len(data))
    spread[::2] = data
    views.append(memoryview(spread)[::2])  # not contiguous
    return views


VALID = {name: _valid_entries(vendor) for name, vendor in VENDORS.items()}

# One example feeds every decoder (a vendor-neutral recipe, applied to each vendor's
# format), so each decoder sees all 20,000 examples for the price of one run of hypothesis.
# The recipe is one byte string (the cheapest thing hypothesis draws, and it shrinks well):
# byte 0 says random bytes or mutated valid entries (bit 0), how many entries (bits 1-2) and
# the slack after them (bits 3-5); the rest is the random bytes, or (offset, xor) edits.
_SLACK = (0, 0, 0, 1, -1, 8, 3, 0)


def _bytes_for(name: str, recipe: bytes) -> bytes:
    head, rest = recipe[0], recipe[1:]
    size = VENDORS[name].entry_size
    count = head >> 1 & 3
    if head & 1:
        length = max(0, count * size + _SLACK[head >> 3 & 7])
        return (rest * (length // max(1, len(rest)) + 1))[:length]
    data = bytearray(VALID[name][: max(1, count) * size])
    for at, value in zip(rest[::2], rest[1::2], strict=False):
        data[at * 7 % len(data)] ^= value or 0xFF
    return bytes(data)


def _outcome(vendor: VendorPrq, data: Buffer, *, objects: bool) -> object:
    """What the decoder answers (rows, and objects agreeing with them), or the DecodeError's
    text; any other exception propagates and fails the test."""
    try:
        rows = row_codec(vendor).decode_rows(data)
        decoded = vendor.decode_batch(data) if objects else None
    except DecodeError as exc:
        return (type(exc), str(exc))
    if decoded is not None:
        assert [request_row(o) for o in decoded] == rows
    return rows


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.binary(min_size=1, max_size=4 * 48 + 9))
def test_every_decoder_fails_only_with_decode_error_and_reads_any_buffer_like_bytes(
    recipe: bytes,
) -> None:
    for name, vendor in VENDORS.items():
        data = _bytes_for(name, recipe)
        expected = _outcome(vendor, data, objects=True)
        for view in _views(data):
            assert _outcome(vendor, view, objects=False) == expected, (name, view)


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_a_ring_mapped_as_64_bit_words_decodes_like_its_bytes(name: str) -> None:
    vendor = VENDORS[name]
    raw = _valid_entries(vendor)
    words = memoryview(bytearray(raw)).cast("Q")
    assert len(words) == len(raw) // 8  # what len() saw before: words, not bytes
    rows = row_codec(vendor).decode_rows(words)
    assert [r[:2] for r in rows] == [(0x10 + i, 0x20 + i) for i in range(4)]


def test_byte_view_counts_bytes_and_copies_only_a_strided_view() -> None:
    raw = bytearray(range(24))
    assert byte_view(raw) is raw
    words = memoryview(raw).cast("Q")
    view = byte_view(words)
    assert isinstance(view, memoryview) and len(view) == 24 and view.obj is raw
    strided = memoryview(bytes(range(48)))[::2]
    assert byte_view(strided) == bytes(range(0, 48, 2))
