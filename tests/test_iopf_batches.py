"""Batches change nothing but the cost.

- The IOPF discipline: a group whose partial requests arrive in the batch that closes it is
  answered from rows, one whose partials came in an earlier batch through the grouping
  layer's objects; both must give the same responses, in the same order, and the same
  counts, with a vendor check saying anything (codes and every verdict) on partial and last
  requests alike.
- The other disciplines (per request, per-device tables) likewise: a batch answers and
  counts as its requests one by one, under every policy (the serving loops count the usual
  resolution and answer in locals, the rest in lists: both must add up).
- The hardware's own checks: a burst goes into the ring at once when what they let through
  fits, request by request otherwise; the same as ``submit`` of each request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.prq.discipline import CheckResult, Discipline, Verdict
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.hardware import HardwareRules
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import PageRequest, Perm, RequestRow, ResponseCode, ResponseRow
from ioasid_core.types import INVALID_IOASID

if TYPE_CHECKING:
    from prq_helpers import SRC_A, SRC_UNKNOWN, SRC_VM1, UNIT, World, build_world, make_pipeline
else:
    from tests.prq_helpers import (
        SRC_A,
        SRC_UNKNOWN,
        SRC_VM1,
        UNIT,
        World,
        build_world,
        make_pipeline,
    )

_SAYS: tuple[CheckResult, ...] = (
    None,
    None,
    None,
    ResponseCode.FAILURE,
    Verdict.SILENT,
    Verdict.EARLY,
    Verdict.NOW_INVALID,
    ResponseCode.INVALID,
)


def _says(row: RequestRow) -> CheckResult:
    """A check that says what the request's page asks it to (``addr`` bits 12-14)."""
    return _SAYS[row[6] >> 12 & 7]


class _Checking(GenericPrq):
    row_check = staticmethod(_says)


# (device, PASID name or None, group index, last, perm, what the check says)
Spec = tuple[int, str | None, int, bool, Perm, int]
specs = st.tuples(
    st.sampled_from((SRC_A, SRC_VM1, SRC_UNKNOWN)),
    st.sampled_from(("pasid_a", "pasid_vm1", "free_pasid", None)),
    st.integers(0, 2),
    st.booleans(),
    st.sampled_from((Perm.READ, Perm.WRITE | Perm.READ, Perm.NONE)),
    st.integers(0, len(_SAYS) - 1),
)


def _row(world: World, spec: Spec) -> RequestRow:
    device, name, grpid, last, perm, says = spec
    pasid = INVALID_IOASID if name is None else getattr(world, name)
    assert isinstance(pasid, int)
    return (device, pasid, name is not None, grpid, last, perm, says << 12, False, None)


def _state(pipeline: PrqPipeline) -> dict[str, object]:
    held = pipeline.iopf.partial_by_device
    return {
        "counters": attrs.asdict(pipeline.counters, recurse=False),
        "iopf": attrs.asdict(pipeline.iopf.counters),
        "held": {d: [attrs.astuple(r) for r in rs] for d, rs in held.items() if rs},
        "held_codes": sorted(code for _request, code in pipeline._held_codes.values()),
    }


def _serve(pipeline: PrqPipeline, batches: Sequence[list[RequestRow]]) -> list[ResponseRow]:
    out: list[ResponseRow] = []
    for batch in batches:
        out += pipeline.process_rows(batch)
    return out


class _CheckingPerRequest(_Checking):
    discipline = Discipline.PER_REQUEST


class _CheckingTables(_Checking):
    discipline = Discipline.DEVICE_TABLES


@settings(max_examples=150, deadline=None)
@given(
    # Over 16 requests: the whole batch is counted in bulk, one by one it is not.
    st.lists(st.tuples(specs, st.booleans()), min_size=17, max_size=40),
    st.sampled_from(list(LookupPolicy)),
    st.sampled_from((_Checking, _CheckingPerRequest, _CheckingTables)),
)
def test_big_batches_do_not_change_the_answers_of_any_discipline(
    stream: list[tuple[Spec, bool]], policy: LookupPolicy, vendor: type[_Checking]
) -> None:
    world = build_world()
    rows = [_row(world, spec) for spec, _cut in stream]
    chunks: list[list[RequestRow]] = [[]]
    for row, (_spec, cut) in zip(rows, stream, strict=True):
        chunks[-1].append(row)
        if cut:
            chunks.append([])
    one_by_one = make_pipeline(world, policy, vendor=vendor())
    chunked = make_pipeline(world, policy, vendor=vendor())
    whole = make_pipeline(world, policy, vendor=vendor())
    want = _serve(one_by_one, [[row] for row in rows])
    assert _serve(chunked, chunks) == want
    assert _serve(whole, [rows]) == want
    assert _state(chunked) == _state(one_by_one)
    assert _state(whole) == _state(one_by_one)
    assert whole._tables == one_by_one._tables


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(specs, st.booleans()), max_size=40),
    st.sampled_from((LookupPolicy.GLOBAL, LookupPolicy.DEVICE)),
)
def test_batches_do_not_change_the_answers(
    stream: list[tuple[Spec, bool]], policy: LookupPolicy
) -> None:
    world = build_world()
    rows = [_row(world, spec) for spec, _cut in stream]
    # Every group still open at the end is closed in a batch of its own.
    closing: list[RequestRow] = [
        (device, world.pasid_a, True, grpid, True, Perm.READ, 0, False, None)
        for device in (SRC_A, SRC_VM1, SRC_UNKNOWN)
        for grpid in range(3)
    ]
    chunks: list[list[RequestRow]] = [[]]
    for row, (_spec, cut) in zip(rows, stream, strict=True):
        chunks[-1].append(row)
        if cut:
            chunks.append([])
    one_by_one = make_pipeline(world, policy, vendor=_Checking())
    chunked = make_pipeline(world, policy, vendor=_Checking())
    whole = make_pipeline(world, policy, vendor=_Checking())

    want = _serve(one_by_one, [[row] for row in rows])
    assert _serve(chunked, chunks) == want
    assert _serve(whole, [rows]) == want
    assert _state(chunked) == _state(one_by_one)
    assert _state(whole) == _state(one_by_one)
    want = _serve(one_by_one, [closing])
    assert _serve(chunked, [closing]) == want
    assert _serve(whole, [closing]) == want
    assert _state(chunked) == _state(one_by_one)
    assert _state(whole) == _state(one_by_one)


def test_a_group_closed_in_its_own_batch_is_answered_by_its_first_failure() -> None:
    """Worked by hand: a partial request the check answers FAILURE (held with its code), a
    partial that looks up fine, the LAST: the group's answer is the first member's code."""
    world = build_world()
    pipeline = make_pipeline(world, LookupPolicy.GLOBAL, vendor=_Checking())
    a = world.pasid_a
    rows: list[RequestRow] = [
        (SRC_A, a, True, 1, False, Perm.READ, 3 << 12, False, None),  # FAILURE, held
        (SRC_A, a, True, 2, False, Perm.READ, 0, False, None),  # another group, stays held
        (SRC_A, a, True, 1, False, Perm.READ, 0, False, None),
        (SRC_A, a, True, 1, True, Perm.READ, 0, False, None),  # closes group 1
    ]
    assert pipeline.process_rows(rows) == [
        (SRC_A, 1, ResponseCode.FAILURE, INVALID_IOASID, False, None, True)
    ]
    assert pipeline.counters.vendor_rejects == 1
    assert pipeline.iopf.counters.groups == 1
    # Group 2's partial request waits in the grouping layer for a later batch.
    assert [r.grpid for r in pipeline.iopf.partial(SRC_A)] == [2]
    assert pipeline.process_rows([(SRC_A, a, True, 2, True, Perm.READ, 0, False, None)]) == [
        (SRC_A, 2, ResponseCode.SUCCESS, INVALID_IOASID, False, None, True)
    ]
    assert pipeline.iopf.partial(SRC_A) == []


# ---------------------------------------------------------------------- hardware checks

_ADMIT_SAYS: tuple[ResponseCode | None, ...] = (
    None,
    None,
    ResponseCode.FAILURE,
    ResponseCode.INVALID,
)


def _admit(row: RequestRow) -> ResponseCode | None:
    """The hardware's own checks, saying what the request's page asks (``addr`` bits 12-13)."""
    return _ADMIT_SAYS[row[6] >> 12 & 3]


def _burst_state(pipeline: PrqPipeline) -> dict[str, object]:
    ring = pipeline.ring
    return {
        "counters": attrs.asdict(pipeline.counters, recurse=False),
        "ring": (ring.head, ring.tail, ring.overflow, len(ring)),
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(
                st.tuples(
                    st.integers(0, 3), st.booleans(), st.sampled_from((Perm.READ, Perm.NONE))
                ),
                max_size=8,
            ),
            st.integers(0, 4),
        ),
        max_size=12,
    ),
    st.integers(2, 9),
    st.booleans(),
    st.sampled_from((ResponseCode.SUCCESS, None)),
)
def test_a_burst_through_the_hardware_checks_is_its_requests_one_by_one(
    bursts: list[tuple[list[tuple[int, bool, Perm]], int]],
    entries: int,
    sticky: bool,
    overflow_response: ResponseCode | None,
) -> None:
    """``submit_rows`` of a burst the hardware checks: the same requests in the ring, the
    same count taken, the same refusals, drops and auto-answers (in the same order) as
    ``submit`` of each, whatever the ring's room, with drains between bursts."""
    world = build_world()
    rules = HardwareRules(overflow_response=overflow_response, sticky_overflow=sticky, admit=_admit)
    many, one = (
        PrqPipeline(world.platform, UNIT, GenericPrq(), ring_entries=entries, hardware=rules)
        for _ in range(2)
    )
    for burst, drained in bursts:
        rows: list[RequestRow] = [
            (SRC_A, world.pasid_a, True, grpid, last, perm, says << 12, False, None)
            for grpid, (says, last, perm) in enumerate(burst)
        ]
        taken = many.submit_rows(rows)
        assert taken == sum(one.submit(PageRequest(*row)) for row in rows)
        assert _burst_state(many) == _burst_state(one)
        assert list(many.counters.auto_responses) == list(one.counters.auto_responses)
        assert many.ring.drain(drained) == one.ring.drain(drained)
        if drained % 2:
            many.ring.clear_overflow()
            one.ring.clear_overflow()
