"""The fast batch decoders give exactly what the BitLayout decoders give, entry by entry."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import DecodeError
from ioasid_smmuv3.events import EVENT_RECORD_SIZE, decode_event, decode_event_batch
from ioasid_smmuv3.priq import PRIQ_ENTRY, PRIQ_ENTRY_SIZE, decode_pri, decode_pri_batch

word = st.integers(0, (1 << 64) - 1)
RESERVED0, RESERVED1 = PRIQ_ENTRY.reserved


@given(st.lists(st.tuples(word, word), max_size=24))
def test_pri_batch_equals_entry_by_entry(entries: list[tuple[int, int]]) -> None:
    data = b"".join(struct.pack("<QQ", dw0 & ~RESERVED0, dw1 & ~RESERVED1) for dw0, dw1 in entries)
    one_by_one = [decode_pri(data, i) for i in range(0, len(data), PRIQ_ENTRY_SIZE)]
    assert decode_pri_batch(data) == one_by_one
    assert decode_pri_batch(memoryview(data)) == one_by_one


@given(
    st.lists(st.tuples(word, word), min_size=1, max_size=8),
    st.data(),
)
def test_pri_batch_fails_like_the_entry_decoder(
    entries: list[tuple[int, int]], data: st.DataObject
) -> None:
    clean = [(dw0 & ~RESERVED0, dw1 & ~RESERVED1) for dw0, dw1 in entries]
    bad = data.draw(st.integers(0, len(clean) - 1))
    word_index = data.draw(st.integers(0, 1))
    bit = data.draw(
        st.sampled_from([b for b in range(64) if PRIQ_ENTRY.reserved[word_index] >> b & 1])
    )
    dw = list(clean[bad])
    dw[word_index] |= 1 << bit
    clean[bad] = (dw[0], dw[1])
    raw = b"".join(struct.pack("<QQ", *e) for e in clean)
    with pytest.raises(DecodeError) as single:
        decode_pri(raw, bad * PRIQ_ENTRY_SIZE)
    with pytest.raises(DecodeError) as batch:
        decode_pri_batch(raw)
    assert str(batch.value) == str(single.value)
    assert batch.value.offset == bad * PRIQ_ENTRY_SIZE


@given(st.lists(st.tuples(word, word, word, word), max_size=16))
def test_event_batch_equals_record_by_record(records: list[tuple[int, int, int, int]]) -> None:
    data = b"".join(struct.pack("<4Q", *r) for r in records)
    one_by_one = [decode_event(data, i) for i in range(0, len(data), EVENT_RECORD_SIZE)]
    assert decode_event_batch(data) == one_by_one
    assert decode_event_batch(bytearray(data)) == one_by_one


def test_empty_runs() -> None:
    assert decode_pri_batch(b"") == []
    assert decode_event_batch(b"") == []
