"""The answer disciplines and the vendor verdicts, through the pipeline.

Every expected sequence below is worked out by hand from the kernel code paths the
discipline models, not from the implementation:

- IOPF (``io-pgfault.c``, v5.13+): partials held until LAST; the group's members handled in
  order, the first failure answering the group; one response, from the LAST request.
- per request (VT-d ``prq_event_thread``, v5.5-v5.12): each descriptor handled on its own
  (``result`` starts INVALID; a failed lookup keeps it), a response only ``if (req->lpig ||
  req->priv_data_present)``, with that descriptor's result and ``QI_PGRP_LPIG(req->lpig)``.
- device tables (``amd_iommu_v2.c``): ``get_device_state`` NULL -> no response;
  ``get_pasid_state`` NULL -> ``amd_iommu_complete_ppr(..., PPR_INVALID, tag)`` at once;
  otherwise a per-(PASID, tag) in-flight count, the response when it drops to 0 with
  ``finish`` (tag bit 9) set, status overwritten by failures, reset to SUCCESS after.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ioasid_core.prq.discipline import CheckResult, Discipline, Verdict, discipline_of
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy, Outcome
from ioasid_core.prq.types import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.prq.vendor import row_codec
from ioasid_core.types import INVALID_IOASID

if TYPE_CHECKING:
    from prq_helpers import (
        SRC_A,
        SRC_UNKNOWN,
        SRC_VM1,
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
        UNIT,
        World,
        build_world,
        make_pipeline,
        req,
    )

OK = ResponseCode.SUCCESS
BAD = ResponseCode.INVALID
FAIL = ResponseCode.FAILURE
PRIVATE = (0x1122_3344_5566_7788, 0x99AA_BBCC_DDEE_FF00)


class Scripted(GenericPrq):
    """The generic codec with a discipline and a check that answers by address:
    ``0xD000`` -> SILENT, ``0xE000`` -> EARLY, ``0xF000`` -> now INVALID, ``0xB000`` ->
    FAILURE (a plain code), anything carrying private data -> EARLY (VT-d's PDP rule)."""

    def __init__(self, discipline: Discipline) -> None:
        super().__init__(LookupPolicy.GLOBAL)
        self.discipline = discipline

    def check(self, request: PageRequest) -> CheckResult:
        verdicts: dict[int, CheckResult] = {
            0xD000: Verdict.SILENT,
            0xE000: Verdict.EARLY,
            0xF000: Verdict.now(BAD),
            0xB000: FAIL,
        }
        if request.private_data is not None:
            return Verdict.EARLY
        return verdicts.get(request.addr)


def pipe(
    w: World, discipline: Discipline, policy: LookupPolicy = LookupPolicy.GLOBAL
) -> PrqPipeline:
    return make_pipeline(w, policy, vendor=Scripted(discipline))


def answer(
    device: int,
    grpid: int,
    code: ResponseCode,
    pasid: int | None = None,
    *,
    last: bool = True,
    private: tuple[int, int] | None = None,
) -> PageResponse:
    return PageResponse(
        device,
        grpid,
        code,
        INVALID_IOASID if pasid is None else pasid,
        pasid is not None,
        private,
        last,
    )


# -- declaring a discipline


def test_a_vendor_without_a_discipline_follows_iopf() -> None:
    assert discipline_of(GenericPrq()) is Discipline.IOPF
    assert make_pipeline(build_world(), LookupPolicy.GLOBAL).discipline is Discipline.IOPF


def test_a_discipline_may_be_declared_by_its_name() -> None:
    vendor = GenericPrq()
    vendor.discipline = "per-request"  # type: ignore[attr-defined]
    assert discipline_of(vendor) is Discipline.PER_REQUEST


def test_an_unknown_discipline_is_refused_naming_the_vendor() -> None:
    vendor = GenericPrq()
    vendor.discipline = "whenever"  # type: ignore[attr-defined]
    with pytest.raises(
        TypeError,
        match=r"vendor 'generic' does not conform to VendorPrq: discipline 'whenever'.*per-request",
    ):
        make_pipeline(build_world(), LookupPolicy.GLOBAL, vendor=vendor)


def test_the_pipeline_may_be_given_a_discipline() -> None:
    w = build_world()
    pl = PrqPipeline(w.platform, UNIT, GenericPrq(), discipline=Discipline.DEVICE_TABLES)
    assert pl.discipline is Discipline.DEVICE_TABLES


def test_verdict_now_carries_its_code() -> None:
    assert [Verdict.now(c).code for c in ResponseCode] == [OK, BAD, FAIL]
    assert Verdict.SILENT.code is None and Verdict.EARLY.code is None


# -- IOPF, with verdicts


def test_iopf_silence_on_a_last_request_leaves_its_group_unanswered() -> None:
    w = build_world()
    pl = pipe(w, Discipline.IOPF)
    out = pl.process(
        [
            req(SRC_A, w.pasid_a, grpid=1, last=False),
            req(SRC_A, w.pasid_a, grpid=1, addr=0xD000),
            req(SRC_A, w.pasid_a, grpid=2, addr=0xD000),  # a group of one
        ]
    )
    assert out == []
    assert pl.counters.unanswered_groups == 2
    assert pl.counters.vendor_rejects == 2
    assert pl.iopf.partial(SRC_A) == []  # the group was taken, not left held
    assert pl.counters.outcomes == {}  # nothing was looked up


def test_iopf_answers_a_partial_now_when_its_check_says_so_and_the_group_later() -> None:
    w = build_world()
    pl = pipe(w, Discipline.IOPF)
    out = pl.process(
        [
            req(SRC_A, w.pasid_a, grpid=1, last=False, addr=0xF000),  # now INVALID
            req(SRC_A, w.pasid_a, grpid=1, last=False, addr=0xE000),  # EARLY: own result
            req(SRC_A, w.free_pasid, grpid=1, last=False, addr=0xE000),  # EARLY, unknown
            req(SRC_A, w.pasid_a, grpid=1, last=False, addr=0xD000),  # silence: dropped
            req(SRC_A, w.pasid_a, grpid=1),
        ]
    )
    assert out == [
        answer(SRC_A, 1, BAD, last=False),
        answer(SRC_A, 1, OK, last=False),
        answer(SRC_A, 1, BAD, last=False),
        answer(SRC_A, 1, OK),  # the group: only the LAST request was held for it
    ]
    assert pl.counters.premature_responses == 3
    assert pl.counters.unanswered_groups == 0
    assert pl.counters.vendor_rejects == 2
    assert pl.counters.outcomes == {Outcome.RESOLVED: 2, Outcome.UNKNOWN_PASID: 1}


def test_iopf_a_plain_code_on_a_partial_still_sticks_to_its_group() -> None:
    w = build_world()
    pl = pipe(w, Discipline.IOPF)
    out = pl.process(
        [
            req(SRC_A, w.pasid_a, grpid=3, last=False, addr=0xB000),
            req(SRC_A, w.pasid_a, grpid=3),
        ]
    )
    assert out == [answer(SRC_A, 3, FAIL)]
    assert pl.counters.outcomes == {}  # the first member failed: nothing looked up
    assert pl.counters.premature_responses == 0


# -- per request: VT-d's 2019 handler


def test_per_request_answers_the_last_request_with_its_own_result() -> None:
    w = build_world()
    pl = pipe(w, Discipline.PER_REQUEST)
    group = [
        req(SRC_A, w.pasid_a, grpid=5, last=False),
        req(SRC_A, w.free_pasid, grpid=5, last=False),  # fails: not remembered
        req(SRC_A, w.pasid_a, grpid=5),
    ]
    out = pl.process(group)
    assert out == [answer(SRC_A, 5, OK)]
    # Every descriptor was looked up as it came; the IOPF rules would stop at the failure.
    assert pl.counters.outcomes == {Outcome.RESOLVED: 2, Outcome.UNKNOWN_PASID: 1}
    iopf = pipe(w, Discipline.IOPF)
    assert iopf.process(group) == [answer(SRC_A, 5, BAD)]
    assert iopf.counters.outcomes == {Outcome.RESOLVED: 1, Outcome.UNKNOWN_PASID: 1}


def test_per_request_answers_a_failed_last_request_invalid() -> None:
    w = build_world()
    pl = pipe(w, Discipline.PER_REQUEST)
    out = pl.process(
        [
            req(SRC_A, w.pasid_a, grpid=6, last=False),
            req(SRC_A, w.free_pasid, grpid=6),
            req(SRC_A, None, grpid=7),  # no PASID: "goto no_pasid" with INVALID
            req(SRC_A, None, grpid=8, last=False),  # no PASID, not LPIG: no response
        ]
    )
    assert out == [answer(SRC_A, 6, BAD), answer(SRC_A, 7, BAD)]
    assert pl.counters.outcomes == {
        Outcome.RESOLVED: 1,
        Outcome.UNKNOWN_PASID: 1,
        Outcome.NO_PASID: 2,
    }
    assert pl.counters.premature_responses == 0
    assert pl.iopf.counters.groups == 2


def test_per_request_looks_up_and_answers_a_stop_marker() -> None:
    """The 2019 handler did not single stop markers out: an LPIG descriptor with neither
    read nor write was looked up (and faulted in) like any other, and answered."""
    w = build_world()
    pl = pipe(w, Discipline.PER_REQUEST)
    out = pl.process([req(SRC_A, w.pasid_a, grpid=9, perm=Perm.NONE)])
    assert out == [answer(SRC_A, 9, OK)]
    assert pl.iopf.counters.stop_markers == 0
    iopf = pipe(w, Discipline.IOPF)
    assert iopf.process([req(SRC_A, w.pasid_a, grpid=9, perm=Perm.NONE)]) == []
    assert iopf.iopf.counters.stop_markers == 1


def test_per_request_answers_private_data_at_once_with_it_echoed() -> None:
    """VT-d spec 3.0 §7.7: a descriptor with private data present is answered whether or
    not it is the last of its group; the response echoes the private data, LPIG clear."""
    w = build_world()
    pl = pipe(w, Discipline.PER_REQUEST)
    with_data = PageRequest(SRC_A, w.pasid_a, True, 4, False, Perm.READ, 0x1000, True, PRIVATE)
    out = pl.process([with_data, req(SRC_A, w.pasid_a, grpid=4)])
    assert out == [
        answer(SRC_A, 4, OK, w.pasid_a, last=False, private=PRIVATE),
        answer(SRC_A, 4, OK),
    ]
    assert pl.counters.premature_responses == 1


def test_per_request_silence_and_now_verdicts() -> None:
    w = build_world()
    pl = pipe(w, Discipline.PER_REQUEST)
    out = pl.process(
        [
            req(SRC_A, w.pasid_a, grpid=1, addr=0xD000),  # silent LAST
            req(SRC_A, w.pasid_a, grpid=2, last=False, addr=0xF000),  # now INVALID
            req(SRC_A, w.pasid_a, grpid=2, last=False, addr=0xB000),  # FAILURE, not LPIG
            req(SRC_A, w.pasid_a, grpid=2, addr=0xB000),  # FAILURE on LPIG
        ]
    )
    assert out == [answer(SRC_A, 2, BAD, last=False), answer(SRC_A, 2, FAIL)]
    assert pl.counters.unanswered_groups == 1
    assert pl.counters.premature_responses == 1
    assert pl.counters.vendor_rejects == 4
    assert pl.iopf.counters.groups == 2  # two LAST requests: one silenced, one answered


# -- per-device tables: AMD's amd_iommu_v2


def test_tables_never_answer_an_unknown_device() -> None:
    w = build_world()
    pl = pipe(w, Discipline.DEVICE_TABLES, LookupPolicy.DEVICE)
    out = pl.process([req(SRC_UNKNOWN, 5, grpid=1, last=False), req(SRC_UNKNOWN, 5, grpid=1)])
    assert out == []
    assert pl.counters.unanswered_groups == 1
    assert pl.counters.outcomes == {Outcome.UNKNOWN_DEVICE: 2}


def test_tables_answer_an_unknown_pasid_invalid_at_once_for_that_request() -> None:
    w = build_world()
    pl = pipe(w, Discipline.DEVICE_TABLES, LookupPolicy.DEVICE)
    out = pl.process(
        [
            req(SRC_A, w.pasid_b, grpid=1, last=False),  # not in dev-a's table
            req(SRC_A, w.pasid_a, grpid=1, last=False),
            req(SRC_A, w.pasid_b, grpid=1, last=False),
            req(SRC_A, w.pasid_a, grpid=1),
        ]
    )
    assert out == [
        answer(SRC_A, 1, BAD, last=False),
        answer(SRC_A, 1, BAD, last=False),
        answer(SRC_A, 1, OK),  # (dev-a, pasid_a, 1) completes: none of its own failed
    ]
    assert pl.counters.premature_responses == 2


def test_tables_answer_a_group_once_with_the_last_failure_it_met() -> None:
    w = build_world()
    pl = pipe(w, Discipline.DEVICE_TABLES, LookupPolicy.DEVICE)
    out = pl.process(
        [
            req(SRC_A, w.pasid_a, grpid=2, last=False),
            req(SRC_A, w.pasid_a, grpid=2, last=False, addr=0xB000),  # FAILURE
            req(SRC_A, w.pasid_a, grpid=2, last=False),  # SUCCESS does not overwrite
            req(SRC_A, w.pasid_a, grpid=2),
            req(SRC_A, w.pasid_a, grpid=2),  # the status was reset after the response
        ]
    )
    assert out == [answer(SRC_A, 2, FAIL), answer(SRC_A, 2, OK)]
    assert pl.counters.outcomes == {Outcome.RESOLVED: 4}  # every request handled
    assert pl.counters.vendor_rejects == 1


def test_tables_key_groups_by_pasid_too() -> None:
    """Two groups with one index but two PASIDs of one device: AMD's tables keep them
    apart (per PASID state), the IOPF layer merges them (its key is the index only)."""
    w = build_world()
    w.platform.bind("dev-a", w.pasid_b, w.proc_b)
    requests = [
        req(SRC_A, w.pasid_a, grpid=3, last=False, addr=0xB000),
        req(SRC_A, w.pasid_b, grpid=3),
        req(SRC_A, w.pasid_a, grpid=3),
    ]
    tables = pipe(w, Discipline.DEVICE_TABLES, LookupPolicy.DEVICE)
    assert tables.process(requests) == [answer(SRC_A, 3, OK), answer(SRC_A, 3, FAIL)]
    iopf = pipe(w, Discipline.IOPF, LookupPolicy.DEVICE)
    assert iopf.process(requests) == [answer(SRC_A, 3, FAIL), answer(SRC_A, 3, OK)]


def test_tables_drop_stop_markers_and_forget_a_removed_devices_groups() -> None:
    w = build_world()
    pl = pipe(w, Discipline.DEVICE_TABLES, LookupPolicy.DEVICE)
    assert pl.process([req(SRC_A, w.pasid_a, grpid=4, perm=Perm.NONE)]) == []
    assert pl.iopf.counters.stop_markers == 1
    pl.process([req(SRC_A, w.pasid_a, grpid=5, last=False)] * 2)
    assert pl.remove_device(SRC_A) == []
    assert pl.iopf.counters.discarded_partial == 2
    assert pl.process([req(SRC_A, w.pasid_a, grpid=5)]) == [answer(SRC_A, 5, OK)]


def test_tables_silence_and_now_verdicts() -> None:
    w = build_world()
    pl = pipe(w, Discipline.DEVICE_TABLES, LookupPolicy.DEVICE)
    out = pl.process(
        [
            req(SRC_A, w.pasid_a, grpid=6, addr=0xD000),
            req(SRC_A, w.pasid_a, grpid=7, last=False, addr=0xF000),
            req(SRC_A, w.pasid_a, grpid=7, last=False, addr=0xE000),
            req(SRC_A, w.pasid_a, grpid=7),
        ]
    )
    assert out == [
        answer(SRC_A, 7, BAD, last=False),
        answer(SRC_A, 7, OK, last=False),
        answer(SRC_A, 7, OK),
    ]
    assert pl.counters.unanswered_groups == 1
    assert pl.counters.premature_responses == 2


# -- PRG Response PASID Required


@pytest.mark.parametrize("discipline", list(Discipline))
def test_a_device_requiring_the_pasid_gets_it_in_every_response(discipline: Discipline) -> None:
    w = build_world()
    w.platform.add_device(
        "dev-pasid",
        unit=UNIT,
        source_id=0x50,
        owner="proc-a",
        domain="dom-a",
        prg_response_pasid_required=True,
    )
    w.platform.bind("dev-pasid", w.pasid_a, w.proc_a)
    pl = pipe(w, discipline, LookupPolicy.DEVICE)
    out = pl.process(
        [
            req(0x50, w.pasid_a, grpid=1, last=False, addr=0xF000),
            req(0x50, w.pasid_a, grpid=1),
            req(0x50, None, grpid=2),  # no PASID: none to carry
            req(SRC_VM1, w.pasid_vm1, grpid=3),  # dev-vm1 does not require it
        ]
    )
    assert [(r.pasid_valid, r.pasid) for r in out] == [
        (True, w.pasid_a),
        (True, w.pasid_a),
        (False, INVALID_IOASID),
        (False, INVALID_IOASID),
    ]
    assert w.platform.pasid_required(UNIT) == {0x50}
    w.platform.remove_device("dev-pasid")
    assert w.platform.pasid_required(UNIT) == set()


# -- the reference vendor's wire codes, by hand


@pytest.mark.parametrize(("code", "byte"), [(OK, "00"), (BAD, "01"), (FAIL, "02")])
def test_each_generic_code_has_its_generic_wire_code(code: ResponseCode, byte: str) -> None:
    """The generic response (16 bytes): le32 device 0x10, le32 pasid 0x77, le16 group index
    3, u8 code (the IOPF value), u8 flags (PASID_VALID 1), le32 reserved."""
    raw = GenericPrq().encode_responses([PageResponse(0x10, 3, code, 0x77, True)])
    assert raw == bytes.fromhex("10000000770000000300" + byte + "0100000000")


def test_every_installed_vendor_carries_the_pasid_exactly_when_the_device_requires_it() -> None:
    """Through each vendor's own codec: the response rows its encoder gets say "carry the
    PASID" for the device that requires it, and only for it."""
    from ioasid_core.compare import available_vendors
    from ioasid_core.plugins import new_plugin_manager

    for name, vendor in available_vendors(new_plugin_manager().hooks).items():
        w = build_world()
        w.platform.add_device(
            "dev-pasid",
            unit=UNIT,
            source_id=0x50,
            owner="proc-a",
            domain="dom-a",
            prg_response_pasid_required=True,
        )
        w.platform.bind("dev-pasid", w.pasid_a, w.proc_a)
        pl = make_pipeline(w, LookupPolicy.DEVICE, vendor=vendor)
        for request in (req(0x50, w.pasid_a, grpid=1), req(SRC_A, w.pasid_a, grpid=2)):
            assert pl.submit(request), name
        rows = pl.service_rows()
        assert [(row[0], row[4], row[3]) for row in rows] == [
            (0x50, True, w.pasid_a),
            (SRC_A, False, INVALID_IOASID),
        ], name
        assert row_codec(vendor).encode_response_rows(rows), name  # its encoder takes them


# -- a vendor of per-device tables, through a replay


class TablesPrq(GenericPrq):
    """A test vendor following AMD v2's per-device tables, with the generic queue format."""

    name = "tables"
    discipline = Discipline.DEVICE_TABLES

    def __init__(self) -> None:
        super().__init__(LookupPolicy.DEVICE)


def test_a_tables_vendor_replays_the_answer_disciplines_example() -> None:
    """By hand: acc0's 2 groups of 4 for its own PASID are answered once each, at their
    last request; the 2 groups of 3 for PASID 0x4242 (not in acc0's table) are answered
    INVALID request by request, 4 of the 6 before their group's last; the write SUCCESS;
    the stop markers dropped. Latency is counted once per group, at its last request."""
    from ioasid_core.compare import compare
    from ioasid_core.report import to_json
    from ioasid_core.scenario import load_scenario

    path = Path(__file__).resolve().parents[1] / "examples" / "answer-disciplines.toml"
    (result,) = compare(load_scenario(path), [TablesPrq()], ["native"])
    m = result.metrics
    assert (result.policy, result.native, result.discipline) == (
        LookupPolicy.DEVICE,
        True,
        Discipline.DEVICE_TABLES,
    )
    assert dict(m.responses) == {"success": 3, "invalid": 6}
    assert m.premature_responses == 4 and m.unanswered_groups == 0
    assert dict(m.outcomes) == {"resolved": 9, "not_bound": 6}
    assert m.dropped["stop_markers"] == 2
    assert len(m.request_latency_us) == 5  # 2 + 2 + 1 groups, each once
    (shown,) = json.loads(to_json("x", [result]))["results"]
    assert shown["metrics"]["premature_responses"] == 4
    assert shown["metrics"]["unanswered_groups"] == 0
    assert shown["discipline"] == "device-tables"


def test_a_plugin_vendor_declaring_no_discipline_is_refused_when_collected() -> None:
    from ioasid_core.plugins import new_plugin_manager

    if TYPE_CHECKING:
        from prq_helpers import VendorPlugin
    else:
        from tests.prq_helpers import VendorPlugin

    vendor = GenericPrq()
    vendor.name = "odd"
    vendor.discipline = 3  # type: ignore[attr-defined]
    host = new_plugin_manager(load_entry_points=False)
    host.pm.register(VendorPlugin([vendor]), name="odd")
    with pytest.raises(
        TypeError,
        match=r"plugin 'odd': vendor 'odd' does not conform to VendorPrq: "
        r"discipline 3 is not an answer discipline",
    ):
        host.hooks.prq_vendors()


def test_tables_a_pasid_in_the_table_whose_fault_fails_answers_its_group() -> None:
    """A dying address space (``mmget_not_zero`` fails in the fault work) or an object the
    handler cannot service is in the device's table: the failure goes to the group's
    status, answered at its last request, not at once."""
    w = build_world()
    w.proc_a.dying = True
    pl = pipe(w, Discipline.DEVICE_TABLES, LookupPolicy.DEVICE)
    out = pl.process([req(SRC_A, w.pasid_a, grpid=1, last=False), req(SRC_A, w.pasid_a, grpid=1)])
    assert out == [answer(SRC_A, 1, BAD)]
    assert pl.counters.premature_responses == 0
    w.proc_a.dying = False
    w.platform.bind("dev-a", w.pasid_drv, w.drv)  # a driver object where an mm is expected
    out = pl.process([req(SRC_A, w.pasid_drv, grpid=2, last=False), req(SRC_A, w.pasid_a, grpid=2)])
    # (dev-a, pasid_a, 2) is its own group, closed at once; (dev-a, pasid_drv, 2) waits.
    assert out == [answer(SRC_A, 2, OK)]
    assert pl.counters.premature_responses == 0
    assert pl.process([req(SRC_A, w.pasid_drv, grpid=2)]) == [answer(SRC_A, 2, BAD)]


def test_the_table_shows_unanswered_and_premature_only_where_they_matter() -> None:
    from ioasid_core.compare import compare
    from ioasid_core.report import render_table
    from ioasid_core.scenario import load_scenario

    path = Path(__file__).resolve().parents[1] / "examples" / "answer-disciplines.toml"
    scenario = load_scenario(path)
    plain = render_table(scenario.name, compare(scenario, [GenericPrq()], ["native"]))
    assert " early" not in plain and "unans" not in plain
    text = render_table(scenario.name, compare(scenario, [GenericPrq(), TablesPrq()], ["native"]))
    header = next(line for line in text.splitlines() if line.split()[:2] == ["vendor", "policy"])
    assert header.split()[-3:] == ["early", "drop", "p99"]  # no group went unanswered
    cells = {line.split()[0]: line.split() for line in text.splitlines() if line.split()}
    assert cells["tables"][-3] == "4" and cells["generic"][-3] == "0"
    assert "early: responses before the group's last request" in " ".join(text.split())


def test_the_plot_shows_groups_never_answered_only_when_some_are() -> None:
    from ioasid_core.compare import compare
    from ioasid_core.report import plot_figure
    from ioasid_core.scenario import load_scenario

    class Silent(GenericPrq):
        """Never answers a write (a test vendor using Verdict.SILENT)."""

        name = "silent"

        def check(self, request: PageRequest) -> CheckResult:
            return Verdict.SILENT if request.perm & Perm.WRITE else None

    path = Path(__file__).resolve().parents[1] / "examples" / "answer-disciplines.toml"
    scenario = load_scenario(path)
    (silent,) = compare(scenario, [Silent()], ["native"])
    assert silent.metrics.unanswered_groups == 3  # the 2 read+write groups and the write
    legend = plot_figure("x", [silent]).axes[0].get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()][-1] == "never answered"
    (plain,) = compare(scenario, [GenericPrq()], ["native"])
    legend = plot_figure("x", [plain]).axes[0].get_legend()
    assert legend is not None
    assert "never answered" not in [t.get_text() for t in legend.get_texts()]
