"""Properties of the page-request path over random request streams (hypothesis).

- The IOPF queue groups exactly as a reference model does (partials per device and group
  index, closed by LAST, stop markers discarded).
- Through the pipeline, every closed group gets exactly one response, in closing order, with
  the code the first failing member decides; stop markers get none.
- With a small ring that overflows, every LAST the ring took is answered exactly once and
  every LAST it dropped is counted as auto-answered; the ring ends empty and clear.
- The generic codec round-trips requests; random raw bytes never crash the pipeline.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.iopf import IopfQueue
from ioasid_core.prq.policy import LookupPolicy, Outcome, Resolver, make_resolver
from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.types import INVALID_IOASID

# The helpers live in tests/prq_helpers.py. The workspace puts the repository root on
# sys.path, so they import as ``tests.prq_helpers``; mypy, which checks ``tests`` as a
# directory of top-level modules, knows the same file as ``prq_helpers``.
if TYPE_CHECKING:
    from prq_helpers import (
        SRC_A,
        SRC_UNKNOWN,
        SRC_VM1,
        SRC_VM2,
        UNIT,
        World,
        build_world,
        make_pipeline,
        req,
    )
else:
    from tests.prq_helpers import (
        SRC_A,
        SRC_UNKNOWN,
        SRC_VM1,
        SRC_VM2,
        UNIT,
        World,
        build_world,
        make_pipeline,
        req,
    )

FAST = settings(max_examples=100, deadline=None)

DEVICES = (SRC_A, SRC_VM1, SRC_VM2, SRC_UNKNOWN)
PASIDS = ("pasid_a", "pasid_b", "pasid_drv", "pasid_vm1", "pasid_vm2", "free_pasid", None)
PERMS = (Perm.NONE, Perm.READ, Perm.WRITE, Perm.READ | Perm.WRITE, Perm.EXEC, Perm.READ | Perm.PRIV)

# A request spec: (device, pasid name or None, group index, last, perm, needs_pasid). The
# world is built per example, so the spec names its PASID rather than carrying the number.
Spec = tuple[int, str | None, int, bool, Perm, bool]

specs = st.tuples(
    st.sampled_from(DEVICES),
    st.sampled_from(PASIDS),
    st.integers(0, 3),
    st.booleans(),
    st.sampled_from(PERMS),
    st.booleans(),
)


def make(world: World, spec: Spec) -> PageRequest:
    device, pasid_name, grpid, last, perm, needs = spec
    pasid = None if pasid_name is None else getattr(world, pasid_name)
    assert pasid is None or isinstance(pasid, int)
    return req(device, pasid, grpid=grpid, last=last, perm=perm, needs_pasid=needs)


class Reference:
    """The IOPF grouping rules, written the obvious way."""

    def __init__(self) -> None:
        self.held: dict[int, list[PageRequest]] = {}
        self.closed: list[list[PageRequest]] = []
        self.stops = 0

    def report(self, r: PageRequest) -> list[PageRequest] | None:
        if r.last and not r.perm & (Perm.READ | Perm.WRITE):
            self.stops += 1
            return None
        held = self.held.setdefault(r.device, [])
        if not r.last:
            held.append(r)
            return None
        group = [p for p in held if p.grpid == r.grpid] + [r]
        held[:] = [p for p in held if p.grpid != r.grpid]
        self.closed.append(group)
        return group


def ids(requests: list[PageRequest] | None) -> list[int] | None:
    return None if requests is None else [id(r) for r in requests]


@FAST
@given(st.lists(specs, max_size=60))
def test_iopf_queue_groups_as_the_reference_model(stream: list[Spec]) -> None:
    world = build_world()
    q = IopfQueue()
    ref = Reference()
    for spec in stream:
        r = make(world, spec)
        assert ids(q.report(r.device, r)) == ids(ref.report(r))
    assert q.counters.groups == len(ref.closed)
    assert q.counters.stop_markers == ref.stops
    for device in DEVICES:
        assert ids(q.partial(device)) == ids(ref.held.get(device, []))
        mine = [g[-1] for g in ref.closed if g[-1].device == device]
        assert ids(q.pending(device)) == ids(mine)
    # One response per closed group: each answer retires one, a second answer is dropped.
    answers = [
        PageResponse(g[-1].device, g[-1].grpid, ResponseCode.SUCCESS, g[-1].pasid, True)
        for g in ref.closed
    ]
    assert all(q.respond(a.device, a) for a in answers)
    assert not any(q.respond(a.device, a) for a in answers)
    assert q.counters.unmatched_responses == len(answers)
    assert all(q.pending(device) == [] for device in DEVICES)


def expected(resolve: Resolver, group: list[PageRequest], seen: Counter[Outcome]) -> ResponseCode:
    """The group's code under sticky errors; counts the outcomes of the members resolved."""
    for member in group:
        resolution = resolve(member.device, member.pasid_valid, member.pasid)
        seen[resolution.outcome] += 1
        if not resolution.ok:
            return ResponseCode.INVALID
    return ResponseCode.SUCCESS


@FAST
@given(
    st.lists(st.tuples(specs, st.booleans()), max_size=60),
    st.sampled_from(list(LookupPolicy)),
)
def test_every_closed_group_gets_exactly_one_response_and_stop_markers_none(
    steps: list[tuple[Spec, bool]], policy: LookupPolicy
) -> None:
    world = build_world()
    pl = make_pipeline(world, policy, ring_entries=128)
    oracle = make_resolver(world.platform, UNIT, policy, sva_set=world.sva_set)
    ref = Reference()
    out: list[PageResponse] = []
    for spec, service_now in steps:
        r = make(world, spec)
        assert pl.submit(r)
        ref.report(r)
        if service_now:
            out += pl.service()
    out += pl.service()

    lasts = [g[-1] for g in ref.closed]
    assert [(o.device, o.grpid) for o in out] == [(r.device, r.grpid) for r in lasts]
    for o, r in zip(out, lasts, strict=True):
        carried = r.pasid_valid and r.needs_pasid
        assert o.pasid_valid is carried
        assert o.pasid == (r.pasid if carried else INVALID_IOASID)
    outcomes: Counter[Outcome] = Counter()
    assert [o.code for o in out] == [expected(oracle, g, outcomes) for g in ref.closed]
    assert pl.counters.outcomes == outcomes
    assert sum(pl.counters.responses.values()) == len(ref.closed)
    assert pl.counters.page_requests == len(steps)
    assert pl.iopf.counters.stop_markers == ref.stops
    assert all(pl.iopf.pending(device) == [] for device in DEVICES)
    assert pl.counters.malformed == 0


# An operation on a small ring: submit a request, or service with an optional limit.
Op = tuple[str, Spec | None, int | None]

ops = st.one_of(
    st.tuples(st.just("submit"), specs, st.none()),
    st.tuples(st.just("service"), st.none(), st.one_of(st.none(), st.integers(0, 3))),
)


@FAST
@given(st.lists(ops, max_size=80), st.integers(2, 6))
def test_with_overflow_every_accepted_last_is_answered_once_and_dropped_ones_counted(
    steps: list[Op], entries: int
) -> None:
    world = build_world()
    pl = make_pipeline(world, LookupPolicy.GLOBAL, ring_entries=entries)
    accepted_lasts: list[PageRequest] = []
    dropped = dropped_lasts = 0
    out: list[PageResponse] = []
    for kind, spec, limit in steps:
        if kind == "service":
            was = pl.ring.overflow
            out += pl.service(limit)
            # Overflow is cleared (and partials discarded) only once the ring is empty.
            assert pl.ring.overflow is (was and len(pl.ring) > 0)
            continue
        assert spec is not None
        r = make(world, spec)
        answered = r.last and not r.stop_marker
        if pl.submit(r):
            if answered:
                accepted_lasts.append(r)
        else:
            dropped += 1
            dropped_lasts += answered
    out += pl.service()

    assert [(o.device, o.grpid) for o in out] == [(r.device, r.grpid) for r in accepted_lasts]
    assert pl.counters.overflow_dropped == dropped == pl.ring.dropped
    assert sum(pl.counters.auto_responses.values()) == dropped_lasts
    assert len(pl.ring) == 0
    assert not pl.ring.overflow
    assert all(pl.iopf.pending(device) == [] for device in DEVICES)


requests_st = st.builds(
    PageRequest,
    device=st.integers(0, 0xFFFF_FFFF),
    pasid=st.integers(0, 0xFFFF_FFFF),
    pasid_valid=st.booleans(),
    grpid=st.integers(0, 0xFFFF),
    last=st.booleans(),
    perm=st.integers(0, 15).map(Perm),
    addr=st.integers(0, (1 << 64) - 1),
    needs_pasid=st.booleans(),
)


@FAST
@given(st.lists(requests_st, max_size=10))
def test_generic_codec_round_trips_any_batch(batch: list[PageRequest]) -> None:
    codec = GenericPrq()
    data = b"".join(codec.encode_request(r) for r in batch)
    assert len(data) == len(batch) * codec.entry_size
    back = codec.decode_batch(data)
    for r in batch:
        if not r.pasid_valid:
            r.pasid = INVALID_IOASID
    assert back == batch


@FAST
@given(st.lists(st.binary(min_size=24, max_size=24), max_size=20))
def test_random_raw_entries_never_crash_and_are_all_accounted_for(entries: list[bytes]) -> None:
    world = build_world()
    pl = make_pipeline(world, LookupPolicy.GLOBAL, ring_entries=32)
    for entry in entries:
        assert pl.ring.push(entry)
    out = pl.service()
    assert pl.counters.malformed + pl.counters.page_requests == len(entries)
    assert len(out) <= pl.counters.page_requests
    assert len(pl.counters.errors) == min(pl.counters.malformed, 20)
    # Still serving afterwards.
    pl.iopf.discard_partial()
    assert pl.submit(req(SRC_A, world.pasid_a, grpid=0xFFFF))
    (last,) = pl.service()
    assert (last.grpid, last.code) == (0xFFFF, ResponseCode.SUCCESS)
