"""A unit's hardware rules before the queue (own checks, sticky overflow, no auto-response),
and vendor checks bound to the platform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pytest

from ioasid_core.platform import Platform
from ioasid_core.prq.discipline import Verdict
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.hardware import DEFAULT_HARDWARE, HardwareRules, hardware_rules
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import Perm, RequestRow, ResponseCode, request_row
from ioasid_core.prq.vendor import RowCheck

# The helpers in tests/prq_helpers.py import as ``tests.prq_helpers`` at run time; mypy,
# which checks ``tests`` as a directory of top-level modules, knows them as ``prq_helpers``.
if TYPE_CHECKING:
    from prq_helpers import SRC_A, SRC_UNKNOWN, SRC_VM1, UNIT, World, build_world, req
else:
    from tests.prq_helpers import SRC_A, SRC_UNKNOWN, SRC_VM1, UNIT, World, build_world, req


def pipeline(w: World, rules: HardwareRules, entries: int = 4) -> PrqPipeline:
    return PrqPipeline(
        w.platform,
        UNIT,
        GenericPrq(),
        policy=LookupPolicy.GLOBAL,
        ring_entries=entries,
        hardware=rules,
    )


def refuse_unknown(w: World) -> HardwareRules:
    known = w.platform.sources(UNIT)

    def admit(row: RequestRow) -> ResponseCode | None:
        return None if row[0] in known else ResponseCode.FAILURE

    return HardwareRules(admit=admit)


def test_the_hardware_answers_what_it_refuses_and_software_never_sees_it() -> None:
    w = build_world()
    pl = pipeline(w, refuse_unknown(w))
    assert not pl.submit(req(SRC_UNKNOWN, 5, grpid=1))
    assert pl.submit(req(SRC_A, w.pasid_a, grpid=2))
    assert len(pl.ring) == 1
    assert pl.counters.hardware_rejected == 1
    assert pl.counters.auto_responses == {ResponseCode.FAILURE: 1}
    assert [(r.device, r.code) for r in pl.service()] == [(SRC_A, ResponseCode.SUCCESS)]


@pytest.mark.parametrize(
    ("last", "perm"),
    [(False, Perm.READ), (True, Perm.NONE)],  # a partial request; a stop marker
)
def test_what_needs_no_answer_is_discarded_silently(last: bool, perm: Perm) -> None:
    w = build_world()
    pl = pipeline(w, refuse_unknown(w))
    assert pl.submit_rows([request_row(req(SRC_UNKNOWN, 5, last=last, perm=perm))]) == 0
    assert pl.counters.hardware_rejected == 1
    assert pl.counters.auto_responses == {}


def test_a_sticky_overflow_drops_everything_until_software_clears_it() -> None:
    w = build_world()
    pl = pipeline(w, HardwareRules(sticky_overflow=True), entries=3)
    rows = [request_row(req(SRC_A, w.pasid_a, grpid=g)) for g in range(3)]
    assert pl.submit_rows(rows) == 2  # a 3-slot ring holds 2; the third overflows
    assert pl.ring.overflow
    assert len(pl.service(limit=1)) == 1  # room again, but the flag is still set
    assert not pl.submit(req(SRC_VM1, w.pasid_vm1, grpid=9))
    assert pl.submit_rows([request_row(req(SRC_VM1, w.pasid_vm1, grpid=10, last=False))]) == 0
    assert pl.counters.overflow_dropped == 3
    assert pl.counters.hardware_rejected == 0  # dropped.overflow, not dropped.hardware
    assert pl.counters.auto_responses == {ResponseCode.SUCCESS: 2}  # not the partial one
    pl.service()  # the ring is empty now: the driver clears the flag
    assert not pl.ring.overflow
    assert pl.submit(req(SRC_VM1, w.pasid_vm1, grpid=9))


def test_without_sticky_overflow_a_freed_slot_is_used_at_once() -> None:
    w = build_world()
    pl = pipeline(w, DEFAULT_HARDWARE, entries=3)
    rows = [request_row(req(SRC_A, w.pasid_a, grpid=g)) for g in range(3)]
    assert pl.submit_rows(rows) == 2
    pl.service(limit=1)
    assert pl.submit(req(SRC_VM1, w.pasid_vm1, grpid=9))


def test_no_overflow_response_leaves_the_device_waiting() -> None:
    w = build_world()
    pl = pipeline(w, HardwareRules(overflow_response=None), entries=2)
    assert pl.submit(req(SRC_A, w.pasid_a, grpid=1))
    assert not pl.submit(req(SRC_A, w.pasid_a, grpid=2))
    assert pl.counters.overflow_dropped == 1
    assert pl.counters.auto_responses == {}


def test_a_vendor_without_rules_gets_the_default() -> None:
    w = build_world()
    assert hardware_rules(GenericPrq(), w.platform, UNIT, {}) is DEFAULT_HARDWARE
    assert DEFAULT_HARDWARE.overflow_response is ResponseCode.SUCCESS


class _Wrong(GenericPrq):
    def hardware_rules(
        self, platform: Platform, unit: str, options: Mapping[str, object]
    ) -> HardwareRules:
        return "no"  # type: ignore[return-value]


def test_rules_that_are_not_rules_are_named() -> None:
    w = build_world()
    with pytest.raises(TypeError, match=r"vendor 'generic': hardware_rules returned 'no'"):
        hardware_rules(_Wrong(), w.platform, UNIT, {})


# -- checks bound to the platform (PlatformCheck)


class _KnowsDevices(GenericPrq):
    """Answers FAILURE for what its row_check sees, but its platform-bound check wins."""

    def __init__(self) -> None:
        super().__init__()
        self.row_check = lambda row: ResponseCode.FAILURE

    def row_check_for(self, platform: Platform, unit: str) -> RowCheck | None:
        devices = platform.sources(unit)
        return lambda row: None if row[0] in devices else Verdict.SILENT


def test_a_check_bound_to_the_platform_replaces_row_check() -> None:
    w = build_world()
    pl = PrqPipeline(w.platform, UNIT, _KnowsDevices(), policy=LookupPolicy.GLOBAL)
    out = pl.process([req(SRC_UNKNOWN, 5, grpid=1), req(SRC_A, w.pasid_a, grpid=2)])
    assert [(r.device, r.code) for r in out] == [(SRC_A, ResponseCode.SUCCESS)]
    assert pl.counters.unanswered_groups == 1
