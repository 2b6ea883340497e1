"""The row form of the page-request path: ``Ring.push_many``, ``PrqPipeline.submit_rows``,
and ``row_codec``, which must give exactly the object path's answers whatever a vendor
implements (rows, objects only, or rows with an object method overridden)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.bits import Buffer
from ioasid_core.errors import InvalidArgumentError
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.ring import Ring
from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode, request_row
from ioasid_core.prq.vendor import RowCodec, VendorPrq, row_codec

if TYPE_CHECKING:
    from prq_helpers import SRC_A, SRC_UNKNOWN, SRC_VM1, World, build_world, make_pipeline
else:
    from tests.prq_helpers import (
        SRC_A,
        SRC_UNKNOWN,
        SRC_VM1,
        World,
        build_world,
        make_pipeline,
    )


# ---------------------------------------------------------------------- Ring.push_many


def entries(*values: int, size: int = 4) -> bytes:
    return b"".join(v.to_bytes(size, "little") for v in values)


def test_push_many_takes_what_fits_and_drops_the_rest_like_push() -> None:
    many, one = Ring(4, 4), Ring(4, 4)
    assert many.push_many(entries(1, 2, 3, 4, 5)) == 3
    assert [one.push(entries(v)) for v in (1, 2, 3, 4, 5)] == [True, True, True, False, False]
    assert (many.overflow, many.dropped, len(many)) == (True, 2, 3)
    assert (one.overflow, one.dropped) == (many.overflow, many.dropped)
    assert many.drain() == one.drain() == entries(1, 2, 3)


def test_push_many_wraps_around_the_end_of_the_ring() -> None:
    ring = Ring(4, 4)
    ring.push_many(entries(1, 2, 3))
    assert ring.drain(2) == entries(1, 2)
    assert ring.push_many(entries(4, 5)) == 2  # slot 3, then slot 0
    assert (ring.head, ring.tail, ring.overflow) == (2, 1, False)
    assert ring.drain() == entries(3, 4, 5)


def test_push_many_of_part_of_an_entry_is_refused_and_changes_nothing() -> None:
    ring = Ring(4, 4)
    ring.push_many(entries(7))
    with pytest.raises(InvalidArgumentError, match="4 bytes each; 6 bytes"):
        ring.push_many(b"\x01" * 6)
    assert (ring.head, ring.tail, ring.overflow, ring.dropped) == (0, 1, False, 0)
    assert ring.drain() == entries(7)


def test_push_many_of_nothing_is_nothing() -> None:
    ring = Ring(2, 4)
    assert ring.push_many(b"") == 0
    assert (ring.tail, ring.overflow) == (0, False)


_BUFFERS = (bytes, bytearray, memoryview)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 7),
    st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from(range(len(_BUFFERS))), st.integers(0, 9)),
        max_size=30,
    ),
)
def test_push_many_is_push_one_by_one(slots: int, ops: list[tuple[int, int, int]]) -> None:
    """Bursts of any size and buffer type, with drains of any size between them: the same
    entries, indices, overflow and drops as one ``push`` per entry."""
    many, one = Ring(slots, 4), Ring(slots, 4)
    value = 0
    for burst, kind, drained in ops:
        values = range(value, value + burst)
        value += burst
        taken = many.push_many(_BUFFERS[kind](entries(*values)))
        assert taken == sum(one.push(entries(v)) for v in values)
        state = (many.head, many.tail, many.overflow, many.dropped, len(many))
        assert state == (one.head, one.tail, one.overflow, one.dropped, len(one))
        assert many.drain(drained) == one.drain(drained)


# ---------------------------------------------------------------------- vendors


class ObjectsOnly:
    """A vendor written the simple way: the four object methods, no rows (it delegates to
    the generic codec, so its answers must be the generic vendor's)."""

    name = "objects-only"
    entry_size = GenericPrq.entry_size
    default_policy = LookupPolicy.GLOBAL
    expected: type | tuple[type, ...] = GenericPrq.expected

    def __init__(self) -> None:
        self._inner = GenericPrq()

    def encode_request(self, request: PageRequest) -> bytes:
        return self._inner.encode_request(request)

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        return self._inner.decode_batch(data)

    def check(self, request: PageRequest) -> ResponseCode | None:
        return ResponseCode.FAILURE if request.perm & Perm.EXEC else None

    def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
        return self._inner.encode_responses(responses)


class RejectsExec(GenericPrq):
    """A row vendor's subclass that overrides one object method: the override must win."""

    def check(self, request: PageRequest) -> ResponseCode | None:
        return ResponseCode.FAILURE if request.perm & Perm.EXEC else None


class TaggedResponses(GenericPrq):
    def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
        return b"tagged:" + super().encode_responses(responses)


def test_row_codec_is_the_vendor_itself_when_it_writes_rows() -> None:
    vendor = GenericPrq()
    assert row_codec(vendor) is vendor
    assert isinstance(vendor, RowCodec)


def test_row_codec_adapts_an_object_only_vendor() -> None:
    vendor = ObjectsOnly()
    assert isinstance(vendor, VendorPrq) and not isinstance(vendor, RowCodec)
    codec = row_codec(vendor)
    assert not isinstance(codec, ObjectsOnly)
    request = PageRequest(SRC_A, 5, True, 3, True, Perm.READ | Perm.EXEC, 0x2000, True)
    raw = codec.encode_request_rows([request_row(request)])
    assert raw == vendor.encode_request(request)
    assert codec.decode_rows(raw) == [request_row(r) for r in vendor.decode_batch(raw)]
    assert codec.row_check is not None
    assert codec.row_check(request_row(request)) is ResponseCode.FAILURE


def test_an_overridden_object_method_wins_over_the_rows_it_shadows() -> None:
    codec = row_codec(RejectsExec())
    assert codec.row_check is not None
    exec_request = PageRequest(SRC_A, 5, True, 0, True, Perm.READ | Perm.EXEC, 0x1000)
    assert codec.row_check(request_row(exec_request)) is ResponseCode.FAILURE
    # The methods it did not override stay the fast ones.
    assert codec.decode_rows(b"") == []
    tagged = row_codec(TaggedResponses())
    assert tagged.encode_response_rows([]) == b"tagged:"


def test_the_pipeline_honours_an_overridden_check_and_encoder() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=RejectsExec())
    pl.submit(PageRequest(SRC_A, w.pasid_a, True, 1, True, Perm.READ | Perm.EXEC, 0x1000))
    assert [r.code for r in pl.service()] == [ResponseCode.FAILURE]
    assert pl.counters.vendor_rejects == 1
    tagged = make_pipeline(w, LookupPolicy.GLOBAL, vendor=TaggedResponses())
    tagged.submit(PageRequest(SRC_A, w.pasid_a, True, 1, True, Perm.READ, 0x1000))
    assert tagged.service_raw().startswith(b"tagged:")


# ---------------------------------------------------------------------- differential

requests = st.builds(
    lambda source, pasid, grpid, last, perm: (source, pasid, grpid, last, perm),
    st.sampled_from([SRC_A, SRC_VM1, SRC_UNKNOWN]),
    st.sampled_from(["a", "b", "drv", None, 7]),
    st.integers(0, 3),
    st.booleans(),
    st.sampled_from([Perm.READ, Perm.WRITE, Perm.NONE, Perm.READ | Perm.EXEC]),
)


def concrete(world: World, spec: tuple[int, str | int | None, int, bool, Perm]) -> PageRequest:
    source, name, grpid, last, perm = spec
    pasid = {"a": world.pasid_a, "b": world.pasid_b, "drv": world.pasid_drv}.get(
        name if isinstance(name, str) else "", name if isinstance(name, int) else None
    )
    return PageRequest(
        source, 0 if pasid is None else pasid, pasid is not None, grpid, last, perm, 0x1000, True
    )


def observed(pipeline: PrqPipeline) -> tuple[object, ...]:
    c = pipeline.counters
    return (
        c.page_requests,
        dict(c.responses),
        dict(c.outcomes),
        c.cross_owner_hits,
        c.type_confusions,
        c.vendor_rejects,
        c.overflow_dropped,
        dict(c.auto_responses),
        pipeline.iopf.counters,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(requests, max_size=12), max_size=5),
    st.sampled_from(list(LookupPolicy)),
)
def test_rows_and_objects_give_the_same_answers(
    bursts: list[list[tuple[int, str | int | None, int, bool, Perm]]], policy: LookupPolicy
) -> None:
    """The same bursts through a row vendor (submitted as rows) and an object-only vendor
    (submitted one object at a time) give the same responses, bytes and counters."""
    w = build_world()
    fast = make_pipeline(w, policy, vendor=RejectsExec(), ring_entries=16)
    slow = make_pipeline(w, policy, vendor=ObjectsOnly(), ring_entries=16)
    for burst in bursts:
        objects = [concrete(w, spec) for spec in burst]
        taken = fast.submit_rows([request_row(r) for r in objects])
        assert taken == sum(slow.submit(r) for r in objects)
        raw = slow.ring.drain()
        assert fast.ring.drain() == raw
        fast.ring.push_many(raw)
        slow.ring.push_many(raw)
        assert fast.service_raw() == slow.service_raw()
    assert observed(fast) == observed(slow)
