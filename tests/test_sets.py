"""Sets: types and tokens, ids, quotas and ``available``, ``free_set``/``free_all``, MM sets."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, cast

import pytest

from ioasid_core import (
    INVALID_IOASID,
    AlreadyRegisteredError,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidSpace,
    IoasidState,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
    SetType,
)

Unchanged = Callable[..., AbstractContextManager[None]]


class Token:
    """An address space stand-in; equal to every other Token, so only identity tells them apart."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token)

    def __hash__(self) -> int:
        return 42


# --- types, tokens, attributes ---------------------------------------------------------------


def test_null_set_has_no_token_no_quota_and_is_empty(space: IoasidSpace) -> None:
    s = space.create_set()
    assert s.token is None
    assert s.type is SetType.NULL
    assert s.quota is None
    assert s.count == 0
    assert s.ioasids() == []


def test_mm_set_keeps_its_token_type_and_quota(space: IoasidSpace) -> None:
    tok = Token()
    s = space.create_set(tok, quota=5, type=SetType.MM)
    assert s.token is tok
    assert s.type is SetType.MM
    assert s.quota == 5


@pytest.mark.parametrize(
    ("token", "kwargs"),
    [
        pytest.param(Token(), {}, id="null-type-with-token"),
        pytest.param(Token(), {"type": SetType.NULL}, id="explicit-null-type-with-token"),
        pytest.param(None, {"type": SetType.MM}, id="mm-type-without-token"),
        pytest.param(Token(), {"type": 3}, id="unknown-type"),
        pytest.param(None, {"quota": -1}, id="negative-quota"),
        pytest.param(Token(), {"type": SetType.MM, "quota": -5}, id="mm-negative-quota"),
    ],
)
def test_bad_type_token_or_quota_is_invalid_and_changes_nothing(
    space: IoasidSpace, unchanged: Unchanged, token: object, kwargs: dict[str, Any]
) -> None:
    first = space.create_set(quota=3)
    with unchanged(space, first), pytest.raises(InvalidArgumentError):
        space.create_set(token, **kwargs)
    # A failed creation consumed no set id.
    assert space.create_set().id == first.id + 1


def test_set_ids_count_from_zero_in_creation_order_and_are_never_reused(
    space: IoasidSpace,
) -> None:
    a, b, c = space.create_set(), space.create_set(quota=1), space.create_set()
    assert [a.id, b.id, c.id] == [0, 1, 2]
    assert space.free_set(b) is True
    assert space.free_set(a) is True
    d = space.create_set()
    assert d.id == 3


def test_failed_set_creation_consumes_no_set_id(space: IoasidSpace) -> None:
    space.create_set()
    with pytest.raises(NoSpaceError):
        space.create_set(quota=space.capacity + 1)
    tok = Token()
    space.create_set(tok, type=SetType.MM)
    with pytest.raises(AlreadyRegisteredError):
        space.create_set(tok, type=SetType.MM)
    assert space.create_set().id == 2


def test_each_space_numbers_its_sets_from_zero() -> None:
    one, two = IoasidSpace(capacity=16), IoasidSpace(capacity=16)
    one.create_set()
    one.create_set()
    assert two.create_set().id == 0


def test_count_and_sorted_ioasids_follow_allocations(space: IoasidSpace) -> None:
    s = space.create_set()
    other = space.create_set()
    for n in (10, 3, 7):
        assert space.alloc(s, n, n) == n
    space.alloc(other, 0, 63)
    assert s.count == 3
    assert s.ioasids() == [3, 7, 10]
    assert other.ioasids() == [0]
    space.free(s, 7)
    assert s.count == 2
    assert s.ioasids() == [3, 10]


# --- capacity and quotas ---------------------------------------------------------------------


def test_fresh_space_has_everything_available() -> None:
    sp = IoasidSpace(capacity=1000)
    assert sp.capacity == 1000
    assert sp.available == 1000


def test_default_capacity_is_twenty_bits() -> None:
    sp = IoasidSpace()
    assert sp.capacity == 1 << 20
    assert sp.available == 1 << 20


def test_quota_reserves_from_available_and_none_reserves_nothing(space: IoasidSpace) -> None:
    space.create_set(quota=10)
    assert space.available == 54
    space.create_set()
    assert space.available == 54
    space.create_set(Token(), quota=4, type=SetType.MM)
    assert space.available == 50


def test_quota_zero_reserves_nothing_and_allows_no_id(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    """**fix**: the DCP tree read quota 0 as "all remaining"."""
    s = space.create_set(quota=0)
    assert s.quota == 0
    assert space.available == space.capacity
    with unchanged(space, s), pytest.raises(QuotaExceededError):
        space.alloc(s, 0, 63)


def test_allocating_does_not_change_available(space: IoasidSpace) -> None:
    q = space.create_set(quota=10)
    n = space.create_set()
    space.alloc(q, 0, 63)
    space.alloc(n, 0, 63)
    assert space.available == 54


def test_quota_may_take_all_that_is_available(space: IoasidSpace) -> None:
    space.create_set(quota=40)
    s = space.create_set(quota=24)
    assert s.quota == 24
    assert space.available == 0


def test_quota_larger_than_available_is_no_space_and_changes_nothing(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    a = space.create_set(quota=40)
    with unchanged(space, a), pytest.raises(NoSpaceError) as info:
        space.create_set(quota=25)
    assert not isinstance(info.value, QuotaExceededError)


def test_quota_needs_available_minus_ids_held_by_quota_less_sets(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    free_for_all = space.create_set()
    for _ in range(10):
        space.alloc(free_for_all, 0, 63)
    with unchanged(space, free_for_all), pytest.raises(NoSpaceError) as info:
        space.create_set(quota=55)
    message = str(info.value)
    assert "55" in message  # the quota asked for
    assert "54" in message  # the capacity left
    s = space.create_set(quota=54)
    assert s.quota == 54
    assert space.available == 10


def test_quota_less_sets_together_are_limited_to_unreserved_capacity(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    reserved = space.create_set(quota=60)
    a, b = space.create_set(), space.create_set()
    space.alloc(a, 0, 63)
    space.alloc(b, 0, 63)
    space.alloc(a, 0, 63)
    space.alloc(b, 0, 63)
    for s in (a, b):
        with unchanged(space, reserved, a, b), pytest.raises(NoSpaceError) as info:
            space.alloc(s, 0, 63)
        assert not isinstance(info.value, QuotaExceededError)
    # The reservation is real: the quota set still gets all of its 60 IDs.
    got = [space.alloc(reserved, 0, 63) for _ in range(60)]
    assert len(set(got)) == 60
    # Freeing a quota-less ID makes room for exactly one more quota-less ID.
    space.free(a, a.ioasids()[0])
    space.alloc(b, 0, 63)
    with pytest.raises(NoSpaceError):
        space.alloc(a, 0, 63)


def test_quota_less_set_has_nothing_when_everything_is_reserved(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    space.create_set(quota=64)
    s = space.create_set()
    with unchanged(space, s), pytest.raises(NoSpaceError):
        space.alloc(s, 0, 63)


def test_destroying_a_quota_set_frees_room_for_quota_less_sets(space: IoasidSpace) -> None:
    reserved = space.create_set(quota=63)
    s = space.create_set()
    space.alloc(s, 0, 63)
    with pytest.raises(NoSpaceError):
        space.alloc(s, 0, 63)
    assert space.free_set(reserved) is True
    assert space.available == 64
    space.alloc(s, 0, 63)


def test_quota_set_is_refused_beyond_its_quota(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set(quota=2)
    space.alloc(s, 0, 63)
    space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(QuotaExceededError):
        space.alloc(s, 0, 63)
    space.free(s, 0)
    assert space.alloc(s, 0, 63) == 0


# --- free_set / free_all ---------------------------------------------------------------------


def test_free_set_destroys_an_empty_set_and_returns_its_quota(
    space: IoasidSpace, events: list[Event], unchanged: Unchanged
) -> None:
    """**fix**: the DCP tree leaked the quota of a destroyed set."""
    s = space.create_set(quota=10)
    assert space.available == 54
    events.clear()
    assert space.free_set(s) is True
    assert space.available == 64
    assert [(e.kind, e.set) for e in events] == [(EventKind.SET_FREE, s)]
    with unchanged(space), pytest.raises(InvalidArgumentError):
        space.alloc(s, 0, 63)
    with unchanged(space), pytest.raises(InvalidArgumentError):
        space.free_set(s)


def test_free_set_of_quota_less_set_leaves_available_alone(space: IoasidSpace) -> None:
    s = space.create_set()
    assert space.free_set(s) is True
    assert space.available == 64


def test_free_set_marks_a_non_empty_set_free_pending_and_refuses_allocations(
    space: IoasidSpace, events: list[Event], unchanged: Unchanged
) -> None:
    s = space.create_set(quota=10)
    i = space.alloc(s, 0, 63, private="data")
    events.clear()
    assert space.free_set(s) is False
    assert events == []  # not destroyed yet, so no SET_FREE
    assert space.available == 54  # the quota stays reserved while pending
    assert s.count == 1
    assert space.state(i) is IoasidState.IDLE  # free_set does not free the IDs
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.alloc(s, 0, 63)
    with unchanged(space, s), pytest.raises(InvalidArgumentError):
        space.free_set(s)


def test_ids_of_a_free_pending_set_work_as_usual(space: IoasidSpace) -> None:
    s = space.create_set()
    i = space.alloc(s, 0, 63, private="data")
    space.free_set(s)
    assert space.find(s, i) == "data"
    assert space.find_set(i) is s
    space.set_data(i, "new")
    assert space.find(None, i) == "new"
    space.get(s, i)
    assert space.state(i) is IoasidState.ACTIVE
    assert space.put(s, i) is False
    space.attach_spid(i, 7)
    assert space.find_by_spid(s, 7) == i
    space.detach_spid(i)
    assert space.state(i) is IoasidState.IDLE


def test_free_pending_set_is_destroyed_when_its_last_id_is_freed(
    space: IoasidSpace, events: list[Event], unchanged: Unchanged
) -> None:
    s = space.create_set(quota=10)
    a = space.alloc(s, 0, 63)
    b = space.alloc(s, 0, 63)
    space.free_set(s)
    space.free(s, a)
    assert space.available == 54
    events.clear()
    space.free(s, b)
    assert [(e.kind, e.set) for e in events] == [(EventKind.FREE, s), (EventKind.SET_FREE, s)]
    assert events[0].ioasid == b
    assert events[1].ioasid == INVALID_IOASID
    assert space.available == 64
    with unchanged(space), pytest.raises(InvalidArgumentError):
        space.free_set(s)
    with unchanged(space), pytest.raises(InvalidArgumentError):
        space.alloc(s, 0, 63)


def test_free_pending_set_is_destroyed_when_the_last_reference_is_put(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set(quota=3)
    i = space.alloc(s, 0, 63)
    space.get(s, i)
    space.free_set(s)
    space.free(s, i)
    assert space.state(i) is IoasidState.FREE_PENDING
    assert [e.kind for e in events][-1] is EventKind.FREE
    events.clear()
    assert space.put(None, i) is True
    assert [(e.kind, e.set) for e in events] == [(EventKind.SET_FREE, s)]
    assert space.available == 64


def test_free_all_frees_every_id_and_returns_how_many(
    space: IoasidSpace, events: list[Event]
) -> None:
    s = space.create_set()
    other = space.create_set()
    ids = [space.alloc(s, 0, 63) for _ in range(4)]
    keep = space.alloc(other, 0, 63)
    space.get(s, ids[1])
    events.clear()
    assert space.free_all(s) == 4
    assert sorted(e.ioasid for e in events if e.kind is EventKind.FREE) == ids
    # The referenced one waits, the others are gone.
    assert s.ioasids() == [ids[1]]
    assert space.state(ids[1]) is IoasidState.FREE_PENDING
    assert space.state(keep) is IoasidState.IDLE
    # Already pending IDs are not counted again, and get no second FREE.
    events.clear()
    assert space.free_all(s) == 0
    assert events == []


def test_free_all_drains_a_free_pending_set(space: IoasidSpace, events: list[Event]) -> None:
    s = space.create_set(quota=5)
    for _ in range(3):
        space.alloc(s, 0, 63)
    assert space.free_set(s) is False
    assert space.free_all(s) == 3
    assert [e.kind for e in events][-1] is EventKind.SET_FREE
    assert space.available == 64


def test_free_all_of_an_empty_set_returns_zero(space: IoasidSpace) -> None:
    s = space.create_set()
    assert space.free_all(s) == 0


def test_free_all_of_a_destroyed_set_is_invalid(space: IoasidSpace, unchanged: Unchanged) -> None:
    s = space.create_set()
    space.free_set(s)
    with unchanged(space), pytest.raises(InvalidArgumentError):
        space.free_all(s)


def test_sets_of_another_space_are_invalid_here(space: IoasidSpace, unchanged: Unchanged) -> None:
    elsewhere = IoasidSpace(capacity=64).create_set()
    mine = space.create_set()
    with unchanged(space, mine), pytest.raises(InvalidArgumentError):
        space.free_set(elsewhere)
    with unchanged(space, mine), pytest.raises(InvalidArgumentError):
        space.alloc(elsewhere, 0, 63)


# --- MM sets ---------------------------------------------------------------------------------


def test_second_mm_set_for_one_token_is_already_registered(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    tok = Token()
    s = space.create_set(tok, quota=4, type=SetType.MM)
    with unchanged(space, s), pytest.raises(AlreadyRegisteredError):
        space.create_set(tok, quota=4, type=SetType.MM)
    assert space.find_mm_set(tok) is s


def test_mm_token_stays_taken_while_its_set_is_free_pending(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    tok = Token()
    s = space.create_set(tok, type=SetType.MM)
    i = space.alloc(s, 0, 63)
    assert space.free_set(s) is False
    assert space.find_mm_set(tok) is s
    with unchanged(space, s), pytest.raises(AlreadyRegisteredError):
        space.create_set(tok, type=SetType.MM)
    space.free(s, i)
    # Destroyed now: the token is free again.
    assert space.find_mm_set(tok) is None
    t = space.create_set(tok, type=SetType.MM)
    assert space.find_mm_set(tok) is t


def test_token_is_free_again_after_its_empty_set_is_destroyed(space: IoasidSpace) -> None:
    tok = Token()
    s = space.create_set(tok, type=SetType.MM)
    space.free_set(s)
    assert space.find_mm_set(tok) is None
    assert space.create_set(tok, type=SetType.MM).id == s.id + 1


def test_mm_tokens_match_by_identity_not_equality(space: IoasidSpace) -> None:
    one, two = Token(), Token()
    assert one == two
    assert hash(one) == hash(two)
    s1 = space.create_set(one, type=SetType.MM)
    s2 = space.create_set(two, type=SetType.MM)
    assert s1 is not s2
    assert space.find_mm_set(one) is s1
    assert space.find_mm_set(two) is s2
    assert space.find_mm_set(Token()) is None


def test_find_mm_set_of_unknown_token_is_none(space: IoasidSpace) -> None:
    space.create_set()
    assert space.find_mm_set(object()) is None


def test_mm_token_uniqueness_is_per_space(space: IoasidSpace) -> None:
    tok = Token()
    space.create_set(tok, type=SetType.MM)
    other = IoasidSpace(capacity=64)
    s = other.create_set(tok, type=SetType.MM)
    assert other.find_mm_set(tok) is s


# --- find_set --------------------------------------------------------------------------------


def test_find_set_returns_the_owner_of_an_id(space: IoasidSpace) -> None:
    a, b = space.create_set(), space.create_set()
    i = space.alloc(a, 0, 63)
    j = space.alloc(b, 0, 63)
    assert space.find_set(i) is a
    assert space.find_set(j) is b


@pytest.mark.parametrize("ioasid", [0, 5, 63, 64, INVALID_IOASID])
def test_find_set_of_an_unallocated_id_is_not_found(space: IoasidSpace, ioasid: int) -> None:
    s = space.create_set()
    if ioasid == 5:
        space.alloc(s, 5, 5)
        space.free(s, 5)
    with pytest.raises(NotFoundError):
        space.find_set(ioasid)


def test_create_set_type_argument_is_keyword_only(space: IoasidSpace) -> None:
    create = cast(Any, space.create_set)
    with pytest.raises(TypeError):
        create(Token(), 3, SetType.MM)
