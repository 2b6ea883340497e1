"""Entries that are well formed but not page requests: counted by kind, once, not malformed."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.bits import Buffer
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import RequestRow, ResponseCode
from ioasid_core.prq.unhandled import UNHANDLED_KINDS, UnhandledEvent, UnhandledKind
from ioasid_core.prq.vendor import UnhandledLog

# As in test_prq_properties: the same helpers file, by the name each tool knows it under.
if TYPE_CHECKING:
    from prq_helpers import SRC_A, build_world, make_pipeline
else:
    from tests.prq_helpers import SRC_A, build_world, make_pipeline

ENTRY = struct.Struct("<IIHHIQ")  # the generic codec's request entry
VALID_LAST_READ = 1 | 2 | 1 << 3
EVENT_SOURCE = 0xE0
"""In :class:`EventfulPrq`, an entry from this source is an event; its grpid picks the kind."""
KINDS = tuple(UnhandledKind)


class EventfulPrq(GenericPrq):
    """The generic format, where entries from ``EVENT_SOURCE`` are well-formed events;
    counts its decode calls."""

    def __init__(self) -> None:
        super().__init__()
        self.decodes = 0

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        self.decodes += 1
        rows = super().decode_rows(data)
        for index, row in enumerate(rows):
            if row[0] == EVENT_SOURCE:
                raise UnhandledEvent(
                    "toy", f"event {row[3]}", offset=index * ENTRY.size, kind=KINDS[row[3] % 3]
                )
        return rows


class LoggedPrq(EventfulPrq):
    """... whose driver also keeps its own log of them."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[str] = []

    def log_unhandled(self, event: UnhandledEvent) -> None:
        self.logged.append(event.what)


def request(pasid: int, grpid: int) -> bytes:
    return ENTRY.pack(SRC_A, pasid, grpid, VALID_LAST_READ, 0, 0x1000)


def event(number: int) -> bytes:
    return ENTRY.pack(EVENT_SOURCE, 0, number, VALID_LAST_READ, 0, 0)


def malformed(grpid: int) -> bytes:
    return ENTRY.pack(SRC_A, 0, grpid, VALID_LAST_READ, 1, 0)  # the reserved word is set


def test_unhandled_and_malformed_entries_are_told_apart() -> None:
    w = build_world()
    vendor = LoggedPrq()
    assert isinstance(vendor, UnhandledLog)
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=vendor)
    for entry in (
        request(w.pasid_a, 1),
        event(0),
        malformed(2),
        event(2),
        request(w.pasid_a, 3),
        event(3),
    ):
        assert pl.ring.push(entry)
    assert [(r.grpid, r.code) for r in pl.service()] == [
        (1, ResponseCode.SUCCESS),
        (3, ResponseCode.SUCCESS),
    ]
    c = pl.counters
    assert c.unhandled_events == {UnhandledKind.FAULT: 2, UnhandledKind.REFUSED_STALL: 1}
    assert (c.malformed, c.page_requests) == (1, 2)
    assert len(c.errors) == 1 and f"{2 * ENTRY.size:#x}" in c.errors[0]
    assert vendor.logged == ["event 0", "event 2", "event 3"]  # once each, in ring order


def test_a_batch_of_requests_only_takes_one_decode_call() -> None:
    w = build_world()
    vendor = EventfulPrq()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=vendor)
    for g in range(8):
        pl.ring.push(request(w.pasid_a, g))
    assert len(pl.service()) == 8
    assert vendor.decodes == 1
    assert pl.counters.unhandled_events == {}


def test_a_vendor_without_a_log_is_counted_all_the_same() -> None:
    w = build_world()
    assert not isinstance(EventfulPrq(), UnhandledLog)
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=EventfulPrq())
    pl.ring.push(event(1))
    assert pl.service() == []
    assert pl.counters.unhandled_events == {UnhandledKind.EVENT: 1}


@given(st.lists(st.sampled_from(["request", "event", "malformed"]), max_size=24))
def test_every_entry_is_counted_exactly_once(kinds: list[str]) -> None:
    w = build_world()
    vendor = LoggedPrq()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=vendor, ring_entries=32)
    make = {"request": lambda g: request(w.pasid_a, g), "event": event, "malformed": malformed}
    for index, kind in enumerate(kinds):
        assert pl.ring.push(make[kind](index))
    answered = pl.service()
    c = pl.counters
    assert len(answered) == c.page_requests == kinds.count("request")
    assert sum(c.unhandled_events.values()) == kinds.count("event") == len(vendor.logged)
    assert c.malformed == kinds.count("malformed")
    assert {k.value for k in c.unhandled_events} <= set(UNHANDLED_KINDS)
