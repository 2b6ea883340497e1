"""A vendor codec that returns fewer requests than it was given entries, without raising,
loses none of them: the shortfall is counted as malformed and named (issue 19)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ioasid_core.bits import Buffer
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import RequestRow

if TYPE_CHECKING:
    from prq_helpers import SRC_A, build_world, make_pipeline, req
else:
    from tests.prq_helpers import SRC_A, build_world, make_pipeline, req


class SwallowsEverything(GenericPrq):
    """Decodes nothing at all, and says nothing about it."""

    name = "swallower"

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return []


class DropsTheLast(GenericPrq):
    """Decodes every entry but the last of a batch."""

    name = "dropper"

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return super().decode_rows(data)[:-1]


def test_a_codec_returning_no_rows_counts_the_batch_as_malformed_naming_the_vendor() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=SwallowsEverything())
    for g in range(5):
        assert pl.submit(req(SRC_A, w.pasid_a, grpid=g))
    assert pl.service() == []
    assert pl.counters.malformed == 5 and pl.counters.page_requests == 0
    (error,) = pl.counters.errors
    assert "vendor 'swallower'" in error and "5 of 5 entries" in error


def test_a_codec_dropping_one_entry_counts_it_and_processes_the_rest() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=DropsTheLast())
    for g in range(4):
        assert pl.submit(req(SRC_A, w.pasid_a, grpid=g))
    assert [r.grpid for r in pl.service()] == [0, 1, 2]
    assert pl.counters.malformed == 1 and pl.counters.page_requests == 3
    assert "vendor 'dropper'" in pl.counters.errors[0]


class DropsAndRefuses(GenericPrq):
    """Refuses a batch holding a bad entry; on its own, decodes a good entry to nothing."""

    name = "half"

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        rows = super().decode_rows(data)  # raises on the bad entry: entry by entry then
        return [] if len(rows) == 1 and rows[0][3] == 2 else rows


def test_the_entry_by_entry_path_counts_an_entry_decoded_to_nothing() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=DropsAndRefuses())
    for g in range(3):
        assert pl.submit(req(SRC_A, w.pasid_a, grpid=g))
    pl.ring.push(b"\xff" * 24)  # reserved bits set: the whole batch is refused
    assert [r.grpid for r in pl.service()] == [0, 1]
    assert pl.counters.malformed == 2  # grpid 2 (decoded to nothing) and the bad entry
    assert any("vendor 'half'" in e and "byte 0x30" in e for e in pl.counters.errors)
