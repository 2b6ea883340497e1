"""The IOPF grouping rules, per device (``drivers/iommu/io-pgfault.c``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ioasid_core.prq.iopf import IopfCounters, IopfQueue, response_for
from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.types import INVALID_IOASID

# The helpers live in tests/prq_helpers.py. The workspace puts the repository root on
# sys.path, so they import as ``tests.prq_helpers``; mypy, which checks ``tests`` as a
# directory of top-level modules, knows the same file as ``prq_helpers``.
if TYPE_CHECKING:
    from prq_helpers import req
else:
    from tests.prq_helpers import req

DEV = 0x10
OTHER = 0x20


def partial(grpid: int, pasid: int | None = 7, *, device: int = DEV) -> PageRequest:
    return req(device, pasid, grpid=grpid, last=False)


def last(
    grpid: int, pasid: int | None = 7, *, device: int = DEV, needs_pasid: bool = False
) -> PageRequest:
    return req(device, pasid, grpid=grpid, last=True, needs_pasid=needs_pasid)


def stop(grpid: int, pasid: int | None = 7, *, device: int = DEV) -> PageRequest:
    return req(device, pasid, grpid=grpid, last=True, perm=Perm.NONE)


def answer(request: PageRequest, code: ResponseCode = ResponseCode.SUCCESS) -> PageResponse:
    return response_for(request, code)


def queue_state(q: IopfQueue, *devices: int) -> tuple[object, ...]:
    return (
        attrs_tuple(q.counters),
        tuple((d, q.partial(d), q.pending(d)) for d in devices),
    )


def attrs_tuple(c: IopfCounters) -> tuple[int, ...]:
    return (
        c.groups,
        c.stop_markers,
        c.unmatched_responses,
        c.discarded_partial,
        c.answered_on_removal,
    )


# -- partial requests and closing a group


def test_a_partial_request_is_held_and_returns_no_group() -> None:
    q = IopfQueue()
    p = partial(1)
    assert q.report(DEV, p) is None
    assert q.partial(DEV) == [p]
    assert q.pending(DEV) == []
    assert q.counters.groups == 0


def test_last_closes_the_group_with_its_partials_in_arrival_order() -> None:
    q = IopfQueue()
    p1, p2, end = partial(1), partial(1), last(1)
    p1.addr, p2.addr = 0x1000, 0x2000
    q.report(DEV, p1)
    q.report(DEV, p2)
    group = q.report(DEV, end)
    assert group is not None
    assert [r.addr for r in group] == [0x1000, 0x2000, end.addr]
    assert group[0] is p1
    assert group[1] is p2
    assert group[-1] is end
    assert q.partial(DEV) == []
    assert q.counters.groups == 1


def test_a_last_request_alone_is_a_group_of_one() -> None:
    q = IopfQueue()
    end = last(3)
    assert q.report(DEV, end) == [end]


def test_closing_a_group_leaves_the_partials_of_other_groups_held() -> None:
    q = IopfQueue()
    a1, b1, a2 = partial(1), partial(2), partial(1)
    for r in (a1, b1, a2):
        q.report(DEV, r)
    group = q.report(DEV, last(1))
    assert group is not None
    assert group[:2] == [a1, a2]
    assert q.partial(DEV) == [b1]
    group2 = q.report(DEV, last(2))
    assert group2 is not None
    assert group2[0] is b1
    assert q.partial(DEV) == []


def test_grouping_key_is_the_group_index_only_not_the_pasid() -> None:
    q = IopfQueue()
    p = partial(4, pasid=5)
    q.report(DEV, p)
    group = q.report(DEV, last(4, pasid=6))
    assert group is not None
    assert group[0] is p
    assert len(group) == 2


def test_a_group_index_is_reusable_once_its_group_closed() -> None:
    q = IopfQueue()
    q.report(DEV, partial(1))
    q.report(DEV, last(1))
    p = partial(1)
    q.report(DEV, p)
    group = q.report(DEV, last(1))
    assert group is not None
    assert group[0] is p
    assert len(group) == 2


def test_two_devices_with_the_same_group_index_do_not_mix() -> None:
    q = IopfQueue()
    mine, theirs = partial(1, device=DEV), partial(1, device=OTHER)
    q.report(DEV, mine)
    q.report(OTHER, theirs)
    group = q.report(DEV, last(1, device=DEV))
    assert group is not None
    assert group[0] is mine
    assert len(group) == 2
    assert q.partial(OTHER) == [theirs]
    other_group = q.report(OTHER, last(1, device=OTHER))
    assert other_group is not None
    assert other_group[0] is theirs
    assert len(other_group) == 2


# -- stop markers


def test_stop_marker_property_is_last_without_read_or_write() -> None:
    assert req(DEV, 1, last=True, perm=Perm.NONE).stop_marker
    assert req(DEV, 1, last=True, perm=Perm.EXEC | Perm.PRIV).stop_marker
    assert not req(DEV, 1, last=True, perm=Perm.READ).stop_marker
    assert not req(DEV, 1, last=True, perm=Perm.WRITE).stop_marker
    assert not req(DEV, 1, last=False, perm=Perm.NONE).stop_marker


def test_a_stop_marker_is_discarded_counted_and_never_pending() -> None:
    q = IopfQueue()
    assert q.report(DEV, stop(1)) is None
    assert q.counters.stop_markers == 1
    assert q.counters.groups == 0
    assert q.pending(DEV) == []
    assert q.partial(DEV) == []


def test_a_stop_marker_does_not_close_the_group_of_its_index() -> None:
    q = IopfQueue()
    p = partial(1)
    q.report(DEV, p)
    assert q.report(DEV, stop(1)) is None
    assert q.partial(DEV) == [p]
    group = q.report(DEV, last(1))
    assert group is not None
    assert group[0] is p


def test_a_partial_without_read_or_write_is_held_not_a_stop_marker() -> None:
    q = IopfQueue()
    p = req(DEV, 1, grpid=2, last=False, perm=Perm.NONE)
    assert q.report(DEV, p) is None
    assert q.partial(DEV) == [p]
    assert q.counters.stop_markers == 0


# -- pending groups and responses


def test_every_closed_group_is_pending_until_answered() -> None:
    q = IopfQueue()
    a, b = last(1), last(2)
    q.report(DEV, a)
    q.report(DEV, b)
    assert q.pending(DEV) == [a, b]
    assert q.respond(DEV, answer(b))
    assert q.pending(DEV) == [a]
    assert q.respond(DEV, answer(a))
    assert q.pending(DEV) == []


def test_one_response_per_group_a_second_one_is_dropped_and_counted() -> None:
    q = IopfQueue()
    end = last(1)
    q.report(DEV, end)
    assert q.respond(DEV, answer(end))
    before = queue_state(q, DEV)
    assert not q.respond(DEV, answer(end))
    assert q.counters.unmatched_responses == 1
    assert queue_state(q, DEV)[1] == before[1]


def test_response_for_an_unknown_group_is_dropped_counted_and_changes_nothing() -> None:
    q = IopfQueue()
    end = last(1)
    q.report(DEV, end)
    q.report(DEV, partial(2))
    before = queue_state(q, DEV)
    stray = PageResponse(DEV, 9, ResponseCode.SUCCESS)
    assert not q.respond(DEV, stray)
    assert q.counters.unmatched_responses == 1
    assert queue_state(q, DEV)[1] == before[1]
    assert q.pending(DEV) == [end]


def test_response_for_an_unknown_device_is_dropped_and_counted() -> None:
    q = IopfQueue()
    end = last(1)
    q.report(DEV, end)
    assert not q.respond(OTHER, answer(end))
    assert q.counters.unmatched_responses == 1
    assert q.pending(DEV) == [end]


def test_a_response_for_another_devices_group_does_not_retire_it() -> None:
    q = IopfQueue()
    q.report(DEV, last(1, device=DEV))
    q.report(OTHER, last(1, device=OTHER))
    assert q.respond(OTHER, PageResponse(OTHER, 1, ResponseCode.SUCCESS))
    assert len(q.pending(DEV)) == 1
    assert q.pending(OTHER) == []


def test_a_response_to_a_group_needing_the_pasid_must_carry_that_pasid() -> None:
    q = IopfQueue()
    end = last(1, pasid=7, needs_pasid=True)
    q.report(DEV, end)
    wrong = PageResponse(DEV, 1, ResponseCode.SUCCESS, pasid=8, pasid_valid=True)
    assert not q.respond(DEV, wrong)
    assert q.counters.unmatched_responses == 1
    assert q.pending(DEV) == [end]
    right = PageResponse(DEV, 1, ResponseCode.SUCCESS, pasid=7, pasid_valid=True)
    assert q.respond(DEV, right)
    assert q.pending(DEV) == []


def test_a_response_without_pasid_valid_does_not_match_a_group_needing_the_pasid() -> None:
    """The kernel skips a pending fault that needs the PASID when the response has no valid
    PASID (``needs_pasid && (!has_pasid || pasid differs)``): a stale pasid field does not
    count."""
    q = IopfQueue()
    end = last(1, pasid=7, needs_pasid=True)
    q.report(DEV, end)
    no_pasid = PageResponse(DEV, 1, ResponseCode.SUCCESS, pasid=7, pasid_valid=False)
    assert not q.respond(DEV, no_pasid)
    assert q.pending(DEV) == [end]


def test_a_group_not_needing_the_pasid_matches_on_the_group_index_alone() -> None:
    q = IopfQueue()
    end = last(1, pasid=7)
    q.report(DEV, end)
    assert q.respond(DEV, PageResponse(DEV, 1, ResponseCode.SUCCESS, pasid=99, pasid_valid=True))
    assert q.pending(DEV) == []


def test_two_pending_groups_with_the_same_index_are_answered_oldest_first() -> None:
    q = IopfQueue()
    first, second = last(1, pasid=3), last(1, pasid=4)
    q.report(DEV, first)
    q.report(DEV, second)
    assert q.respond(DEV, answer(first))
    assert q.pending(DEV) == [second]


# -- response_for: the one response a group gets


@pytest.mark.parametrize(
    ("pasid_valid", "needs_pasid", "carried"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_response_carries_the_pasid_only_if_valid_and_needed(
    pasid_valid: bool, needs_pasid: bool, carried: bool
) -> None:
    end = PageRequest(
        DEV, pasid=0x2A, pasid_valid=pasid_valid, grpid=5, last=True, needs_pasid=needs_pasid
    )
    r = response_for(end, ResponseCode.INVALID)
    assert (r.device, r.grpid, r.code) == (DEV, 5, ResponseCode.INVALID)
    assert r.pasid_valid is carried
    assert r.pasid == (0x2A if carried else INVALID_IOASID)


def test_response_carries_the_last_requests_private_data() -> None:
    end = last(1)
    end.private_data = (0x1234, 0x5678)
    assert response_for(end, ResponseCode.SUCCESS).private_data == (0x1234, 0x5678)


# -- overflow and device removal


def test_discard_partial_drops_every_devices_partials_and_keeps_pending() -> None:
    q = IopfQueue()
    q.report(DEV, partial(1))
    q.report(DEV, partial(2))
    q.report(OTHER, partial(1, device=OTHER))
    end = last(3)
    q.report(DEV, end)
    assert q.discard_partial() == 3
    assert q.counters.discarded_partial == 3
    assert q.partial(DEV) == []
    assert q.partial(OTHER) == []
    assert q.pending(DEV) == [end]
    # A LAST arriving after the discard closes a group of one.
    assert q.report(DEV, last(1)) is not None
    assert len(q.pending(DEV)) == 2


def test_a_last_after_the_discard_closes_a_group_of_one() -> None:
    q = IopfQueue()
    q.report(DEV, partial(1))
    q.discard_partial()
    end = last(1)
    assert q.report(DEV, end) == [end]


def test_discard_partial_of_given_devices_keeps_the_others() -> None:
    q = IopfQueue()
    q.report(DEV, partial(1))
    theirs = partial(1, device=OTHER)
    q.report(OTHER, theirs)
    assert q.discard_partial([DEV]) == 1
    assert q.partial(DEV) == []
    assert q.partial(OTHER) == [theirs]
    assert q.discard_partial([0x999]) == 0
    assert q.counters.discarded_partial == 1


def test_removing_a_device_answers_every_pending_group_invalid() -> None:
    q = IopfQueue()
    a = last(1, pasid=7, needs_pasid=True)
    b = last(2, pasid=None)
    q.report(DEV, a)
    q.report(DEV, b)
    q.report(DEV, partial(3))
    theirs = last(1, device=OTHER)
    q.report(OTHER, theirs)
    answered = q.remove_device(DEV)
    assert answered == [
        response_for(a, ResponseCode.INVALID),
        response_for(b, ResponseCode.INVALID),
    ]
    assert [(r.grpid, r.code, r.pasid_valid) for r in answered] == [
        (1, ResponseCode.INVALID, True),
        (2, ResponseCode.INVALID, False),
    ]
    assert q.counters.answered_on_removal == 2
    assert q.counters.discarded_partial == 1
    assert q.pending(DEV) == []
    assert q.partial(DEV) == []
    assert q.pending(OTHER) == [theirs]


def test_responses_after_a_device_was_removed_are_dropped_and_counted() -> None:
    q = IopfQueue()
    end = last(1)
    q.report(DEV, end)
    q.remove_device(DEV)
    assert not q.respond(DEV, answer(end))
    assert q.counters.unmatched_responses == 1


def test_removing_an_unknown_device_answers_nothing() -> None:
    q = IopfQueue()
    assert q.remove_device(DEV) == []
    assert attrs_tuple(q.counters) == (0, 0, 0, 0, 0)


def test_pending_and_partial_return_copies() -> None:
    q = IopfQueue()
    q.report(DEV, partial(1))
    q.report(DEV, last(2))
    q.partial(DEV).clear()
    q.pending(DEV).clear()
    assert len(q.partial(DEV)) == 1
    assert len(q.pending(DEV)) == 1
