"""Built-in allocator backends: SPEC's allocator contract, and each kind's choice of ID."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core import IoasidSpace
from ioasid_core.backends import BACKEND_KINDS, BackendKind, IdBackend, backend_ops
from ioasid_core.errors import (
    AllocatorError,
    BusyError,
    InvalidArgumentError,
    NoSpaceError,
    NotFoundError,
)

CAPACITY = 64


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(BACKEND_KINDS),
    seed=st.integers(0, 3),
    ops=st.lists(
        st.tuples(st.booleans(), st.integers(0, CAPACITY - 1), st.integers(0, CAPACITY - 1)),
        max_size=80,
    ),
)
def test_a_backend_hands_out_free_ids_in_range_once_and_frees_only_its_own(
    kind: BackendKind, seed: int, ops: list[tuple[bool, int, int]]
) -> None:
    backend = IdBackend(kind, CAPACITY, seed)
    held: set[int] = set()
    for is_alloc, a, b in ops:
        lo, hi = min(a, b), max(a, b)
        if is_alloc:
            if held.issuperset(range(lo, hi + 1)):
                with pytest.raises(NoSpaceError):
                    backend.alloc(lo, hi)
                continue
            got = backend.alloc(lo, hi)
            assert lo <= got <= hi and got not in held
            held.add(got)
        elif a in held:
            backend.free(a)
            held.remove(a)
        else:
            with pytest.raises(NotFoundError):
                backend.free(a)
        assert len(backend) == len(held)


def _sequence(kind: BackendKind, seed: int = 0) -> list[int]:
    """Take 1..4, free 2, then take three more: which IDs come out."""
    backend = IdBackend(kind, 16, seed)
    for _ in range(4):
        backend.alloc(1, 15)
    backend.free(2)
    return [backend.alloc(1, 15) for _ in range(3)]


def test_each_kind_chooses_its_own_way() -> None:
    assert _sequence("lowest") == [2, 5, 6]  # a freed ID comes back at once
    assert _sequence("cyclic") == [5, 6, 7]  # it waits a lap
    top = IdBackend("top_down", 16)
    assert [top.alloc(1, 15) for _ in range(3)] == [15, 14, 13]


def test_cyclic_wraps_to_the_bottom_of_the_range() -> None:
    backend = IdBackend("cyclic", 8)
    assert [backend.alloc(1, 3) for _ in range(3)] == [1, 2, 3]
    backend.free(2)
    assert backend.alloc(1, 3) == 2


def test_random_is_seeded() -> None:
    def draws(seed: int) -> list[int]:
        backend = IdBackend("random", 1 << 16, seed)
        return [backend.alloc(1, 0xFFFF) for _ in range(4)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


def test_a_range_outside_the_backend_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        IdBackend("lowest", 8).alloc(4, 8)
    with pytest.raises(InvalidArgumentError):
        IdBackend("sideways", 8)  # type: ignore[arg-type]


def test_ops_of_one_backend_share_a_space_and_two_backends_never_do() -> None:
    one, two = IdBackend("lowest", 8), IdBackend("lowest", 8)
    assert backend_ops(one, "a").shares_space_with(backend_ops(one, "b"))
    assert not backend_ops(one).shares_space_with(backend_ops(two))


def test_a_swapped_in_backend_serves_the_space_and_a_busy_unregister_changes_nothing() -> None:
    space = IoasidSpace(capacity=CAPACITY)
    owner = space.create_set()
    backend = IdBackend("top_down", CAPACITY)
    ops = backend_ops(backend)
    space.register_allocator(ops)
    ioasid = space.alloc(owner, 1, CAPACITY - 1)
    assert ioasid == CAPACITY - 1 and ioasid in backend
    with pytest.raises(BusyError):
        space.unregister_allocator(ops)
    assert space.active_allocator is ops and ioasid in space and ioasid in backend
    space.unregister_allocator(ops, force=True)
    assert space.active_allocator is None and ioasid not in space and len(backend) == 0


def test_a_full_backend_is_a_no_space_allocator_error_in_the_space() -> None:
    space = IoasidSpace(capacity=CAPACITY)
    owner = space.create_set()
    space.register_allocator(backend_ops(IdBackend("cyclic", CAPACITY)))
    space.alloc(owner, 5, 5)
    with pytest.raises(AllocatorError) as caught:
        space.alloc(owner, 5, 5)
    assert isinstance(caught.value, NoSpaceError)
