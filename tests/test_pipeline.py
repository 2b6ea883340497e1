"""One unit's page-request path: ring, decode, IOPF grouping, lookup policy with sticky errors,
one response per group, counters; the generic reference codec; the vendor plugin hook."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from ioasid_core.bits import Buffer, DecodeError
from ioasid_core.errors import InvalidArgumentError, NotFoundError
from ioasid_core.platform import Platform
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy, Outcome
from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.space import IoasidSpace
from ioasid_core.types import INVALID_IOASID
from ioasid_core.units import IommuUnit

# The helpers live in tests/prq_helpers.py. The workspace puts the repository root on
# sys.path, so they import as ``tests.prq_helpers``; mypy, which checks ``tests`` as a
# directory of top-level modules, knows the same file as ``prq_helpers``.
if TYPE_CHECKING:
    from prq_helpers import (
        SRC_A,
        SRC_NARROW,
        SRC_UNKNOWN,
        SRC_VM1,
        UNIT,
        VendorPlugin,
        build_world,
        codes,
        make_pipeline,
        req,
        run,
    )
else:
    from tests.prq_helpers import (
        SRC_A,
        SRC_NARROW,
        SRC_UNKNOWN,
        SRC_VM1,
        UNIT,
        VendorPlugin,
        build_world,
        codes,
        make_pipeline,
        req,
        run,
    )

ENTRY = struct.Struct("<IIHHIQ")  # the generic codec's request entry
RESPONSE = struct.Struct("<IIHBBI")  # ... and its response
PASID_VALID, LAST, NEEDS_PASID = 1, 2, 4
READ_FLAG = 1 << 3

OK = ResponseCode.SUCCESS
BAD = ResponseCode.INVALID


def raw(
    device: int,
    pasid: int = 0,
    *,
    grpid: int = 0,
    flags: int = PASID_VALID | LAST | READ_FLAG,
    reserved: int = 0,
    addr: int = 0x1000,
) -> bytes:
    return ENTRY.pack(device, pasid, grpid, flags, reserved, addr)


def total(counter: object) -> int:
    assert isinstance(counter, dict)
    return sum(counter.values())


# -- construction


def test_the_vendors_default_policy_applies_when_none_is_given() -> None:
    w = build_world()
    pl = PrqPipeline(w.platform, UNIT, GenericPrq(LookupPolicy.DEVICE), sva_set=w.sva_set)
    assert pl.policy is LookupPolicy.DEVICE
    assert codes(run(pl, req(SRC_A, w.pasid_b))) == [BAD]  # DEVICE refuses it, GLOBAL would not
    assert PrqPipeline(w.platform, UNIT, GenericPrq()).policy is LookupPolicy.GLOBAL


def test_a_pipeline_for_an_unknown_unit_is_refused() -> None:
    w = build_world()
    with pytest.raises((ValueError, NotFoundError), match="ghost"):
        PrqPipeline(w.platform, "ghost", GenericPrq())


def test_a_set_pipeline_needs_the_sva_set() -> None:
    w = build_world()
    with pytest.raises(ValueError, match="SVA set"):
        PrqPipeline(w.platform, UNIT, GenericPrq(), policy=LookupPolicy.SET)


def test_the_ring_takes_the_vendors_entry_size() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, ring_entries=16)
    assert pl.ring.entry_size == GenericPrq.entry_size == ENTRY.size
    assert pl.ring.entries == 16


# -- a request is answered once, under the policy


@pytest.mark.parametrize("policy", list(LookupPolicy))
def test_own_pasid_is_answered_success(policy: LookupPolicy) -> None:
    w = build_world()
    pl = make_pipeline(w, policy)
    out = run(pl, req(SRC_A, w.pasid_a, grpid=3))
    assert [(r.device, r.grpid, r.code) for r in out] == [(SRC_A, 3, OK)]
    assert pl.counters.page_requests == 1
    assert pl.counters.responses == {OK: 1}
    assert pl.counters.outcomes == {Outcome.RESOLVED: 1}
    assert pl.counters.cross_owner_hits == 0
    assert pl.counters.type_confusions == 0


@pytest.mark.parametrize(
    ("policy", "outcome", "cross", "confused"),
    [
        (LookupPolicy.GLOBAL, Outcome.RESOLVED, 1, 1),
        (LookupPolicy.SET, Outcome.FOREIGN, 0, 0),
        (LookupPolicy.ENDPOINT, Outcome.FOREIGN, 0, 0),
        (LookupPolicy.DEVICE, Outcome.NOT_BOUND, 0, 0),
    ],
)
def test_driver_private_pasid_from_a_process_device_is_answered_invalid(
    policy: LookupPolicy, outcome: Outcome, cross: int, confused: int
) -> None:
    w = build_world()
    pl = make_pipeline(w, policy)
    assert codes(run(pl, req(SRC_A, w.pasid_drv))) == [BAD]
    assert pl.counters.outcomes == {outcome: 1}
    assert pl.counters.cross_owner_hits == cross
    assert pl.counters.type_confusions == confused


def test_global_answers_another_process_pasid_success_and_counts_cross_owner() -> None:
    """The dangerous case: an address space of the expected type, not the device's."""
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    assert codes(run(pl, req(SRC_A, w.pasid_b))) == [OK]
    assert pl.counters.cross_owner_hits == 1
    assert pl.counters.type_confusions == 0


def test_device_answers_another_process_pasid_invalid() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.DEVICE)
    assert codes(run(pl, req(SRC_A, w.pasid_b))) == [BAD]
    assert pl.counters.outcomes == {Outcome.NOT_BOUND: 1}
    assert pl.counters.cross_owner_hits == 0


def test_set_answers_a_dying_address_space_invalid() -> None:
    w = build_world()
    w.proc_a.dying = True
    pl = make_pipeline(w, LookupPolicy.SET)
    assert codes(run(pl, req(SRC_A, w.pasid_a))) == [BAD]
    assert pl.counters.outcomes == {Outcome.DYING: 1}


def test_endpoint_answers_another_vms_pasid_invalid() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.ENDPOINT)
    assert codes(run(pl, req(SRC_VM1, w.pasid_vm2), req(SRC_VM1, w.pasid_vm1, grpid=1))) == [
        BAD,
        OK,
    ]
    assert pl.counters.outcomes == {Outcome.FOREIGN: 1, Outcome.RESOLVED: 1}


# -- bad input: answered INVALID and counted, never a crash


@pytest.mark.parametrize(
    ("request_", "outcome"),
    [
        (req(SRC_UNKNOWN, 5), Outcome.UNKNOWN_DEVICE),
        (req(SRC_A, None), Outcome.NO_PASID),
        (req(SRC_NARROW, 4), Outcome.PASID_TOO_WIDE),
        (req(SRC_A, 1 << 8), Outcome.PASID_TOO_WIDE),
        (req(SRC_A, (1 << 20) - 1), Outcome.PASID_TOO_WIDE),
        (req(SRC_A, 1 << 31), Outcome.PASID_TOO_WIDE),
    ],
    ids=["unknown-device", "no-pasid", "narrow-device", "beyond-unit", "max20", "bit31"],
)
@pytest.mark.parametrize("policy", list(LookupPolicy))
def test_bad_requests_are_answered_invalid_and_counted(
    policy: LookupPolicy, request_: PageRequest, outcome: Outcome
) -> None:
    w = build_world()
    pl = make_pipeline(w, policy)
    out = run(pl, request_)
    assert codes(out) == [BAD]
    assert out[0].device == request_.device
    assert pl.counters.outcomes == {outcome: 1}
    assert pl.iopf.pending(request_.device) == []


def test_an_unallocated_pasid_is_answered_invalid() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    assert codes(run(pl, req(SRC_A, w.free_pasid))) == [BAD]
    assert pl.counters.outcomes == {Outcome.UNKNOWN_PASID: 1}


@pytest.mark.parametrize(
    "request_",
    [req(SRC_A, 1, grpid=1 << 16), req(SRC_A, 1 << 32), req(1 << 32, 1), req(SRC_A, 1, addr=-1)],
    ids=["grpid", "pasid", "device", "addr"],
)
def test_submitting_a_request_that_does_not_fit_the_entry_is_a_clear_error(
    request_: PageRequest,
) -> None:
    """The device side: a field the vendor's entry cannot hold is an ``InvalidArgumentError``
    (``EncodeError``), not a ``struct.error``; the ring does not change."""
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    pl.submit(req(SRC_A, w.pasid_a, last=False))
    ring = (pl.ring.head, pl.ring.tail, pl.ring.overflow, pl.ring.dropped)
    with pytest.raises(InvalidArgumentError):
        pl.submit(request_)
    assert (pl.ring.head, pl.ring.tail, pl.ring.overflow, pl.ring.dropped) == ring
    assert pl.counters.overflow_dropped == 0


# -- grouping through the pipeline


def test_partials_are_held_until_last_and_the_group_gets_one_response() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.DEVICE)
    assert run(pl, req(SRC_A, w.pasid_a, grpid=2, last=False)) == []
    assert run(pl, req(SRC_A, w.pasid_a, grpid=2, last=False)) == []
    out = run(pl, req(SRC_A, w.pasid_a, grpid=2))
    assert [(r.grpid, r.code) for r in out] == [(2, OK)]
    assert pl.counters.page_requests == 3
    assert pl.counters.outcomes == {Outcome.RESOLVED: 3}
    assert pl.counters.responses == {OK: 1}
    assert pl.iopf.pending(SRC_A) == []  # answered: retired


def test_responses_follow_the_order_groups_close_in() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    out = run(
        pl,
        req(SRC_A, w.pasid_a, grpid=1, last=False),
        req(SRC_VM1, w.pasid_vm1, grpid=1),
        req(SRC_A, w.pasid_a, grpid=2),
        req(SRC_A, w.pasid_a, grpid=1),
    )
    assert [(r.device, r.grpid) for r in out] == [(SRC_VM1, 1), (SRC_A, 2), (SRC_A, 1)]


def test_stop_markers_are_never_answered() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    out = run(
        pl,
        req(SRC_A, w.pasid_a, grpid=1, perm=Perm.NONE),
        req(SRC_A, w.pasid_a, grpid=2, perm=Perm.EXEC),
        req(SRC_UNKNOWN, None, grpid=3, perm=Perm.NONE),
    )
    assert out == []
    assert pl.iopf.counters.stop_markers == 3
    assert pl.counters.page_requests == 3
    assert total(pl.counters.responses) == 0
    assert total(pl.counters.outcomes) == 0


def test_the_response_carries_the_last_requests_pasid_only_if_valid_and_needed() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    out = run(
        pl,
        req(SRC_A, w.pasid_b, grpid=1, last=False),
        req(SRC_A, w.pasid_a, grpid=1, needs_pasid=True),
        req(SRC_A, w.pasid_a, grpid=2, needs_pasid=False),
        req(SRC_A, None, grpid=3, needs_pasid=True),
    )
    got = [(r.grpid, r.pasid_valid, r.pasid) for r in out]
    assert got == [(1, True, w.pasid_a), (2, False, INVALID_IOASID), (3, False, INVALID_IOASID)]


# -- sticky errors: the first failure answers the whole group


def test_first_failure_answers_the_group_and_later_members_are_not_resolved() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.DEVICE)
    out = run(
        pl,
        req(SRC_A, w.pasid_a, grpid=4, last=False),
        req(SRC_A, w.pasid_b, grpid=4, last=False),  # not bound: fails
        req(SRC_A, w.pasid_a, grpid=4, last=False),
        req(SRC_A, w.pasid_a, grpid=4),
    )
    assert codes(out) == [BAD]
    assert pl.counters.outcomes == {Outcome.RESOLVED: 1, Outcome.NOT_BOUND: 1}


def test_a_failing_first_member_stops_the_group_at_once() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    out = run(
        pl,
        req(SRC_A, w.pasid_drv, grpid=4, last=False),  # type confusion: fails
        req(SRC_A, w.pasid_b, grpid=4, last=False),  # would count a cross-owner hit
        req(SRC_A, w.pasid_a, grpid=4),
    )
    assert codes(out) == [BAD]
    assert pl.counters.outcomes == {Outcome.RESOLVED: 1}
    assert pl.counters.type_confusions == 1
    assert pl.counters.cross_owner_hits == 1  # the driver object's, not proc-b's


def test_a_failure_in_one_group_does_not_leak_into_the_next() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.DEVICE)
    out = run(pl, req(SRC_A, w.pasid_b, grpid=1), req(SRC_A, w.pasid_a, grpid=1))
    assert codes(out) == [BAD, OK]


class RejectPriv(GenericPrq):
    """A vendor whose own check answers FAILURE for a privileged request."""

    name = "reject-priv"

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[PageRequest] = []

    def check(self, request: PageRequest) -> ResponseCode | None:
        self.checked.append(request)
        return ResponseCode.FAILURE if request.perm & Perm.PRIV else None


def test_a_vendor_check_failure_is_sticky_too_and_skips_the_lookup() -> None:
    w = build_world()
    vendor = RejectPriv()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=vendor)
    out = run(
        pl,
        req(SRC_A, w.pasid_a, grpid=1, last=False),
        req(SRC_A, w.pasid_a, grpid=1, last=False, perm=Perm.READ | Perm.PRIV),
        req(SRC_A, w.pasid_a, grpid=1),
    )
    assert codes(out) == [ResponseCode.FAILURE]
    assert pl.counters.vendor_rejects == 1
    # Each request is checked once, on arrival (the driver's thread); the lookups stop at
    # the first failure.
    assert [r.perm for r in vendor.checked] == [Perm.READ, Perm.READ | Perm.PRIV, Perm.READ]
    assert pl.counters.outcomes == {Outcome.RESOLVED: 1}  # the privileged one never looked up
    assert pl.counters.responses == {ResponseCode.FAILURE: 1}


# -- the ring: overflow, auto-responses, discarding partial groups


def test_requests_dropped_on_overflow_are_counted_and_lasts_auto_answered() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, ring_entries=4)
    for g in range(3):
        assert pl.submit(req(SRC_A, w.pasid_a, grpid=g))
    assert not pl.submit(req(SRC_A, w.pasid_a, grpid=5))  # LAST: the hardware answers it
    assert not pl.submit(req(SRC_A, w.pasid_a, grpid=6, last=False))  # partial: lost
    assert not pl.submit(req(SRC_A, w.pasid_a, grpid=7, perm=Perm.NONE))  # stop marker: lost
    assert pl.counters.overflow_dropped == 3
    assert pl.counters.auto_responses == {ResponseCode.SUCCESS: 1}
    assert pl.ring.overflow
    assert len(pl.service()) == 3  # only what the ring took
    assert pl.counters.auto_responses == {ResponseCode.SUCCESS: 1}


def test_overflow_discards_partials_and_clears_only_once_the_ring_is_empty() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.DEVICE, ring_entries=4)
    pl.submit(req(SRC_A, w.pasid_a, grpid=1, last=False))
    pl.submit(req(SRC_A, w.pasid_a, grpid=2, last=False))
    pl.submit(req(SRC_A, w.pasid_a, grpid=2, last=False))
    assert not pl.submit(req(SRC_A, w.pasid_a, grpid=2))  # the group's LAST is lost
    assert pl.service(limit=1) == []
    assert pl.ring.overflow  # the ring still holds entries: not yet
    assert len(pl.iopf.partial(SRC_A)) == 1
    assert pl.iopf.counters.discarded_partial == 0
    assert pl.service() == []
    assert not pl.ring.overflow
    assert pl.iopf.partial(SRC_A) == []
    assert pl.iopf.counters.discarded_partial == 3
    # The groups start afresh: a LAST now closes a group of one.
    out = run(pl, req(SRC_A, w.pasid_a, grpid=1))
    assert codes(out) == [OK]
    assert pl.counters.outcomes == {Outcome.RESOLVED: 1}


def test_without_overflow_a_group_may_span_services() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.DEVICE, ring_entries=4)
    pl.submit(req(SRC_A, w.pasid_b, grpid=1, last=False))  # fails when resolved
    assert pl.service() == []
    assert not pl.ring.overflow
    assert len(pl.iopf.partial(SRC_A)) == 1
    assert codes(run(pl, req(SRC_A, w.pasid_a, grpid=1))) == [BAD]


def test_service_limit_reads_at_most_that_many_entries() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    for g in range(5):
        pl.submit(req(SRC_A, w.pasid_a, grpid=g))
    assert [r.grpid for r in pl.service(limit=2)] == [0, 1]
    assert len(pl.ring) == 3
    assert [r.grpid for r in pl.service()] == [2, 3, 4]


# -- malformed raw entries


def test_malformed_entries_are_counted_named_by_offset_and_the_good_ones_processed() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    batch = [
        raw(SRC_A, w.pasid_a, grpid=1),
        raw(SRC_A, w.pasid_a, grpid=2, flags=PASID_VALID | LAST | READ_FLAG | 0x80),  # reserved
        raw(SRC_A, w.pasid_a, grpid=3),
        raw(SRC_A, w.pasid_a, grpid=4, reserved=1),  # reserved word
        raw(SRC_A, 5, grpid=5, flags=LAST | READ_FLAG),  # a PASID without PASID_VALID
        raw(SRC_A, w.pasid_a, grpid=6),
    ]
    for entry in batch:
        assert pl.ring.push(entry)
    out = pl.service()
    assert [(r.grpid, r.code) for r in out] == [(1, OK), (3, OK), (6, OK)]
    assert pl.counters.malformed == 3
    assert pl.counters.page_requests == 3
    assert len(pl.counters.errors) == 3
    for error, offset in zip(pl.counters.errors, (1, 3, 4), strict=True):
        assert f"{offset * ENTRY.size:#x}" in error


def test_a_malformed_partial_is_not_held() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    pl.ring.push(raw(SRC_A, w.pasid_a, grpid=1, flags=PASID_VALID | READ_FLAG, reserved=7))
    assert pl.service() == []
    assert pl.iopf.partial(SRC_A) == []
    assert pl.counters.malformed == 1


def test_only_the_latest_errors_are_kept() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    for n in range(25):
        pl.ring.push(raw(SRC_A, w.pasid_a, grpid=n, reserved=1))
    pl.service()
    assert pl.counters.malformed == 25
    assert len(pl.counters.errors) == 20
    assert f"{24 * ENTRY.size:#x}" in pl.counters.errors[-1]
    assert f"{5 * ENTRY.size:#x}" in pl.counters.errors[0]


class CountingPrq(GenericPrq):
    """Counts decode calls."""

    def __init__(self) -> None:
        super().__init__()
        self.decodes = 0

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        self.decodes += 1
        return super().decode_batch(data)


def test_a_clean_batch_is_decoded_in_one_call() -> None:
    w = build_world()
    vendor = CountingPrq()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, vendor=vendor)
    for g in range(10):
        pl.submit(req(SRC_A, w.pasid_a, grpid=g))
    assert len(pl.service()) == 10
    assert vendor.decodes == 1


def test_servicing_makes_no_pluggy_call(monkeypatch: pytest.MonkeyPatch) -> None:
    host = new_plugin_manager(load_entry_points=False)
    host.pm.register(VendorPlugin([GenericPrq()]), name="vendor")
    platform = Platform(IoasidSpace(capacity=64), host.hooks)
    platform.probe_unit(IommuUnit(name=UNIT, vendor="generic", pasid_bits=6))
    platform.add_device("d", unit=UNIT, source_id=1, owner="o")
    vendor = host.hooks.prq_vendors()["generic"]
    pl = PrqPipeline(platform, UNIT, vendor, policy=LookupPolicy.GLOBAL)

    def no_hooks(*args: object, **kwargs: object) -> object:
        raise AssertionError("a pluggy hook was called on the page-request path")

    for name in dir(host.pm.hook):
        if name.startswith("ioasid_"):
            monkeypatch.setattr(host.pm.hook, name, no_hooks)
    for g in range(4):
        pl.submit(req(1, 3, grpid=g, last=g % 2 == 1))
    assert codes(pl.service()) == [BAD, BAD]


def test_service_raw_encodes_the_responses_in_the_vendors_format() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    pl.submit(req(SRC_A, w.pasid_a, grpid=7, needs_pasid=True))
    pl.submit(req(SRC_A, w.pasid_drv, grpid=8))
    data = pl.service_raw()
    assert list(RESPONSE.iter_unpack(data)) == [
        (SRC_A, w.pasid_a, 7, int(OK), 1, 0),
        (SRC_A, 0, 8, int(BAD), 0, 0),
    ]


# -- responses from elsewhere, and devices going away


def test_deliver_passes_a_response_matching_a_pending_group() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    last = req(SRC_VM1, w.pasid_vm1, grpid=9)
    pl.iopf.report(SRC_VM1, last)  # a group handed elsewhere (a guest)
    assert pl.deliver(PageResponse(SRC_VM1, 9, ResponseCode.FAILURE))
    assert pl.counters.responses == {ResponseCode.FAILURE: 1}
    assert pl.iopf.pending(SRC_VM1) == []


def test_deliver_drops_and_counts_a_response_for_an_unknown_group() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    run(pl, req(SRC_A, w.pasid_a, grpid=1))  # answered already
    responses = dict(pl.counters.responses)
    assert not pl.deliver(PageResponse(SRC_A, 1, OK))
    assert not pl.deliver(PageResponse(SRC_UNKNOWN, 1, OK))
    assert pl.iopf.counters.unmatched_responses == 2
    assert pl.counters.responses == responses


def test_removing_a_device_answers_its_pending_groups_invalid_and_drops_partials() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.DEVICE)
    pl.iopf.report(SRC_A, req(SRC_A, w.pasid_a, grpid=1))  # pending elsewhere
    run(pl, req(SRC_A, w.pasid_b, grpid=2, last=False))  # a partial that would fail
    answered = pl.remove_device(SRC_A)
    assert [(r.grpid, r.code) for r in answered] == [(1, BAD)]
    assert pl.counters.responses == {BAD: 1}
    assert pl.iopf.partial(SRC_A) == []
    assert codes(run(pl, req(SRC_A, w.pasid_a, grpid=2))) == [OK]  # the failing partial is gone


# -- the generic reference codec


def test_generic_codec_round_trips_a_request() -> None:
    codec = GenericPrq()
    r = req(SRC_A, 0xABCDE, grpid=0x1FF, last=False, perm=Perm.WRITE | Perm.EXEC, needs_pasid=True)
    r.addr = 0xFFFF_F000
    (back,) = codec.decode_batch(codec.encode_request(r))
    assert back == r
    no_pasid = req(SRC_A, None)
    (back,) = codec.decode_batch(codec.encode_request(no_pasid))
    assert (back.pasid_valid, back.pasid) == (False, INVALID_IOASID)


def test_generic_codec_names_the_offset_of_a_bad_entry() -> None:
    codec = GenericPrq()
    with pytest.raises(DecodeError, match="0x18") as info:
        codec.decode_batch(raw(1, 1) + raw(1, 1, reserved=3))
    assert info.value.offset == ENTRY.size


def test_generic_codec_refuses_a_partial_entry() -> None:
    with pytest.raises(DecodeError, match="whole number"):
        GenericPrq().decode_batch(raw(1, 1)[:-1])


def test_generic_codec_is_a_vendor_prq() -> None:
    assert isinstance(GenericPrq(), VendorPrq)
    assert GenericPrq().check(req(1, 1)) is None


# -- the ioasid_prq_vendors hook


def vendors_of(*results: object) -> dict[str, VendorPrq]:
    host = new_plugin_manager(load_entry_points=False)
    for n, result in enumerate(results):
        host.pm.register(VendorPlugin(result), name=f"plugin{n}")
    return host.hooks.prq_vendors()


def test_prq_vendors_collects_every_plugins_vendors_by_name() -> None:
    generic, other = GenericPrq(), RejectPriv()
    assert vendors_of([generic], [other]) == {"generic": generic, "reject-priv": other}
    assert vendors_of([generic, other]) == {"generic": generic, "reject-priv": other}


def test_prq_vendors_skips_plugins_without_vendors() -> None:
    generic = GenericPrq()
    assert vendors_of(None, [generic], []) == {"generic": generic}
    assert vendors_of() == {}


def test_prq_vendors_refuses_a_name_offered_twice() -> None:
    with pytest.raises(ValueError, match="generic"):
        vendors_of([GenericPrq()], [GenericPrq()])
    with pytest.raises(ValueError, match="generic"):
        vendors_of([GenericPrq(), GenericPrq()])


def test_prq_vendors_refuses_something_that_is_not_a_vendor_prq() -> None:
    class NoCheck:
        name = "half"
        entry_size = 8
        default_policy = LookupPolicy.GLOBAL
        expected = object

        def encode_request(self, request: PageRequest) -> bytes:
            return b""

        def decode_batch(self, data: Buffer) -> list[PageRequest]:
            return []

        def encode_responses(self, responses: Sequence[PageResponse]) -> bytes:
            return b""

    with pytest.raises(TypeError, match="VendorPrq"):
        vendors_of([object()])
    with pytest.raises(TypeError, match="VendorPrq"):
        vendors_of([GenericPrq(), NoCheck()])


def test_prq_vendors_refuses_a_bare_vendor_instead_of_a_sequence_naming_the_hook() -> None:
    with pytest.raises(TypeError, match="ioasid_prq_vendors"):
        vendors_of(GenericPrq())


def test_prq_vendors_calls_the_hook_once_per_collection() -> None:
    host = new_plugin_manager(load_entry_points=False)
    plugin = VendorPlugin([GenericPrq()])
    host.pm.register(plugin, name="p")
    host.hooks.prq_vendors()
    assert plugin.calls == 1


def test_the_devices_behind_a_unit_share_its_one_ring() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL, ring_entries=4)
    assert pl.submit(req(SRC_A, w.pasid_a, grpid=1))
    assert pl.submit(req(SRC_A, w.pasid_a, grpid=2))
    assert pl.submit(req(SRC_VM1, w.pasid_vm1, grpid=1))
    assert not pl.submit(req(SRC_VM1, w.pasid_vm1, grpid=2))  # full for every device
    assert pl.ring.overflow
    assert [(r.device, r.grpid) for r in pl.service()] == [(SRC_A, 1), (SRC_A, 2), (SRC_VM1, 1)]


def test_auto_responses_are_counted_with_the_configured_overflow_code() -> None:
    w = build_world()
    pl = PrqPipeline(
        w.platform,
        UNIT,
        GenericPrq(),
        policy=LookupPolicy.GLOBAL,
        ring_entries=2,
        overflow_response=ResponseCode.INVALID,
    )
    assert pl.submit(req(SRC_A, w.pasid_a, grpid=1))
    assert not pl.submit(req(SRC_A, w.pasid_a, grpid=2))
    assert pl.counters.auto_responses == {ResponseCode.INVALID: 1}
    assert pl.counters.responses == {}  # the driver answered nothing


def test_a_malformed_entry_is_reported_with_its_offset_in_the_batch_only() -> None:
    w = build_world()
    pl = make_pipeline(w, LookupPolicy.GLOBAL)
    assert pl.submit(req(SRC_A, w.pasid_a, grpid=1))
    bad = bytearray(GenericPrq().encode_request(req(SRC_A, w.pasid_a, grpid=2)))
    bad[12] = 0xFF  # the reserved u32 (bytes 12..15)
    pl.ring.push(bytes(bad))
    pl.service()
    assert pl.counters.malformed == 1
    (note,) = pl.counters.errors
    assert "ring entry at byte 0x18 of the batch" in note
    assert "offset 0x0" not in note
