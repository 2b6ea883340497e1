"""A vendor that raises during a replay is isolated like one that fails to load: ``compare``
finishes every other vendor's runs, prints and writes them, then exits 1 naming the vendor,
its plugin, the policy and the exception (escaped); in a process pool too, whatever the
exception (one that does not pickle, or does not unpickle, must not break the pool)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ioasid_core.bits import Buffer
from ioasid_core.compare import VendorFailure, compare, scenario_pool
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import PageRequest, RequestRow
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.testing import invoke_cli, load_named_scenario

# tests/*_helpers.py, plugin_fakes.py: ``tests.x`` at run time, ``x`` to mypy.
if TYPE_CHECKING:
    from plugin_fakes import VendorEntryPoint
    from sweep_helpers import SMALL as SMALL_SWEEP
else:
    from tests.plugin_fakes import VendorEntryPoint
    from tests.sweep_helpers import SMALL as SMALL_SWEEP


class Stubborn(Exception):
    """Pickles, but does not unpickle (its two arguments became one)."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"stuck at {a}/{b}")


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no words")


def _lambda_holding() -> Exception:
    """Does not pickle at all (a lambda in its state)."""
    exc = RuntimeError("holds a lambda")
    exc.callback = lambda: None  # type: ignore[attr-defined]
    return exc


NASTY = "decoder exploded \x1b[2J[red]boom[/red]\nioasid: all good"
SHOWN = "decoder exploded \\x1b[2J[red]boom[/red]\\nioasid: all good"


class Raising(GenericPrq):
    """A vendor whose decoder raises what ``make`` makes: every run of it fails."""

    def __init__(self, name: str, make: Callable[[], Exception]) -> None:
        super().__init__()
        self.name = name
        self.make = make

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        raise self.make()

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        raise self.make()


def _nasty() -> Exception:
    return RuntimeError(NASTY)


def _stubborn() -> Exception:
    return Stubborn(1, 2)


def _unprintable() -> Exception:
    return Unprintable()


def _outputs(folder: Path, *extra: str) -> tuple[int, str, str, dict[str, object], str]:
    """``compare`` of the bundled example under two policies, with every output."""
    folder.mkdir()
    json_path, csv_path, plot = folder / "out.json", folder / "out.csv", folder / "out.png"
    result = invoke_cli(
        "compare", "null-set-search", "--policies", "set,global", "--json", str(json_path),
        "--csv", str(csv_path), "--plot", str(plot), *extra,
    )  # fmt: skip
    assert plot.exists(), (result.exit_code, result.stderr, result.exception)
    assert plot.stat().st_size > 1000
    document = json.loads(json_path.read_text())
    return result.exit_code, result.stdout, result.stderr, document, csv_path.read_text()


def _vendors_in_csv(text: str) -> set[str]:
    return {row["vendor"] for row in csv.DictReader(io.StringIO(text))}


@pytest.mark.parametrize(
    ("jobs", "make", "said"),
    [
        ("1", _nasty, f"RuntimeError: {SHOWN}"),
        ("2", _nasty, f"RuntimeError: {SHOWN}"),
        ("2", _stubborn, "Stubborn: stuck at 1/2"),
        ("2", _lambda_holding, "RuntimeError: holds a lambda"),
        ("1", _unprintable, "Unprintable: <str() raised ValueError>"),
    ],
)
def test_compare_runs_the_others_writes_them_and_exits_1_naming_the_raiser(
    install: Callable[..., None],
    tmp_path: Path,
    jobs: str,
    make: Callable[[], Exception],
    said: str,
) -> None:
    code, stdout, stderr, whole, whole_csv = _outputs(tmp_path / "before", "--jobs", jobs)
    assert code == 0, stderr
    install(VendorEntryPoint("crashy", Raising("crashy", make)))
    code, stdout, stderr, document, text = _outputs(tmp_path / "after", "--jobs", jobs)
    assert code == 1
    assert (
        "ioasid: left out: vendor 'crashy' (plugin 'crashy' (ioasid-crashy, entry point "
        f"ioasid_crashy.plugin)) failed under policy 'global': {said}\n"
    ) in stderr  # its own policy first: the first failure is named, once
    assert stderr.count("'crashy'") == 2
    assert "\x1b" not in stderr and "\nioasid: all good" not in stderr
    assert document == whole  # the others' results, exactly as without it
    assert text == whole_csv and "crashy" not in _vendors_in_csv(text)
    assert "vtd" in stdout and "crashy" not in stdout  # the others' table


def test_run_of_a_raising_vendor_exits_1_naming_it(install: Callable[..., None]) -> None:
    install(VendorEntryPoint("crashy", Raising("crashy", _nasty)))
    result = invoke_cli("run", "null-set-search", "--vendor", "crashy")
    assert result.exit_code == 1
    assert result.stderr == (
        "ioasid: vendor 'crashy' (plugin 'crashy' (ioasid-crashy, entry point "
        f"ioasid_crashy.plugin)) failed under policy 'global': RuntimeError: {SHOWN}\n"
    )


def test_compare_with_failures_keeps_the_others_in_a_pool_and_serially() -> None:
    scenario = load_named_scenario("null-set-search")
    vendors: list[VendorPrq] = [
        Raising("lambda", _lambda_holding),
        GenericPrq(),
        Raising("stubborn", _stubborn),
    ]
    alone = compare(scenario, [GenericPrq()])
    for pool in (None, ProcessPoolExecutor(2)):
        failures: list[VendorFailure] = []
        try:
            results = compare(scenario, vendors, executor=pool, failures=failures)
        finally:
            if pool is not None:
                pool.shutdown()
        assert [r.as_dict() for r in results] == [r.as_dict() for r in alone]
        assert [(f.vendor, f.policy, f.cause_text) for f in failures] == [
            ("lambda", LookupPolicy.GLOBAL, "RuntimeError: holds a lambda"),
            ("stubborn", LookupPolicy.GLOBAL, "Stubborn: stuck at 1/2"),
        ]
    with pytest.raises(VendorFailure, match="vendor 'stubborn' failed under policy 'global'"):
        compare(scenario, vendors[1:])  # without a list: the first failure is raised


def test_a_sweep_records_the_raisers_runs_names_its_plugin_and_runs_the_others(
    install: Callable[..., None], tmp_path: Path
) -> None:
    from ioasid_core.sweep import read_results

    install(VendorEntryPoint("crashy", Raising("crashy", _nasty)))
    path = tmp_path / "sweep.toml"
    path.write_text(SMALL_SWEEP.replace('["generic", "vtd"]', '["generic", "crashy"]'))
    out = tmp_path / "out"
    result = invoke_cli("sweep", str(path), "--out", str(out), "--jobs", "2")
    assert result.exit_code == 1
    assert "8 failed" in result.stdout
    assert (
        "run 2 failed: point 0 (generators[1].count=10), crashy/global, seed 1 (plugin 'crashy' "
        "(ioasid-crashy, entry point ioasid_crashy.plugin)): vendor 'crashy' failed under "
        f"policy 'global': RuntimeError: {SHOWN}\n"
    ) in result.stderr
    assert "\x1b" not in result.stderr
    rows = read_results(out)
    assert all(r["error"] is None and r["page_requests"] for r in rows if r["vendor"] == "generic")
    assert sum(r["vendor"] == "generic" for r in rows) == 8


def test_a_sweep_leaves_out_a_vendor_that_does_not_conform_and_runs_the_others(
    install: Callable[..., None], tmp_path: Path
) -> None:
    from ioasid_core.sweep import read_results

    install(VendorEntryPoint("halfbaked", GenericPrq()), VendorEntryPoint("nameless", object()))  # type: ignore[arg-type]
    path = tmp_path / "sweep.toml"
    path.write_text(SMALL_SWEEP)  # generic and vtd
    out = tmp_path / "out"
    result = invoke_cli("sweep", str(path), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 1
    assert "16 runs" in result.stdout and "0 failed" in result.stdout
    said = (
        "plugin 'nameless' (ioasid-nameless, entry point ioasid_nameless.plugin): vendor "
        "'object' does not conform to VendorPrq: missing name"
    )
    assert f"ioasid: left out: {said}" in result.stderr
    assert "offered twice" in result.stderr  # halfbaked's generic: the core's name
    assert "2 plugin problem(s) left vendors out: " in result.stderr
    rows = read_results(out)
    assert len(rows) == 16 and all(r["error"] is None for r in rows)


def test_a_pickler_that_follows_causes_does_not_break_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``distributed`` installs tblib's exception pickling (causes, contexts and attributes
    included) for the exception types it meets: a failure must still cross as text."""
    import copyreg

    pickle_exception = pytest.importorskip("tblib.pickling_support").pickle_exception

    for kind in (RuntimeError, VendorFailure):  # as after a Dask sweep in this process
        monkeypatch.setitem(copyreg.dispatch_table, kind, pickle_exception)
    scenario = load_named_scenario("null-set-search")
    failures: list[VendorFailure] = []
    with ProcessPoolExecutor(2) as pool:  # forked workers inherit the registration
        results = compare(
            scenario, [Raising("lambda", _lambda_holding), GenericPrq()], executor=pool,
            failures=failures,
        )  # fmt: skip
    assert [r.vendor for r in results] == ["generic"] * 4
    assert [f.cause_text for f in failures] == ["RuntimeError: holds a lambda"]


class Dying(GenericPrq):
    """A vendor whose decoder ends its worker process outright (``os._exit(3)``, or a
    signal), as native code that crashes would; never the test's own process."""

    def __init__(self, name: str, signal_number: int | None = None) -> None:
        super().__init__()
        self.name = name
        self.signal_number = signal_number
        self.parent = os.getpid()

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        if os.getpid() == self.parent:
            raise RuntimeError("Dying runs in worker processes only")
        if self.signal_number is not None:
            os.kill(os.getpid(), self.signal_number)
        os._exit(3)


class Named(GenericPrq):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class Unpicklable(GenericPrq):
    """A vendor that cannot be sent to a worker process (a lambda in its state)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.callback = lambda: None


@pytest.mark.parametrize(
    ("signal_number", "how"), [(None, "exit status 3"), (signal.SIGKILL, "killed by SIGKILL")]
)
def test_a_vendor_that_kills_its_worker_is_named_and_the_others_are_kept(
    signal_number: int | None, how: str
) -> None:
    scenario = load_named_scenario("null-set-search")
    first, last = GenericPrq(), Named("second")
    alone = compare(scenario, [first, last])
    failures: list[VendorFailure] = []
    pool = scenario_pool(scenario, 2)
    try:
        results = compare(
            scenario, [first, Dying("dying", signal_number), last], executor=pool,
            failures=failures,
        )  # fmt: skip
    finally:
        pool.shutdown()
    assert [r.as_dict() for r in results] == [r.as_dict() for r in alone]  # same order too
    assert [(f.vendor, f.policy, f.cause_text) for f in failures] == [
        ("dying", LookupPolicy.GLOBAL, f"the worker process running it died ({how})")
    ]


def test_without_a_failure_list_the_worker_killer_is_raised() -> None:
    scenario = load_named_scenario("null-set-search")
    said = r"vendor 'dying' failed under policy 'global': the worker process running it died"
    # any process pool, not only the scenario's
    with ProcessPoolExecutor(2) as pool, pytest.raises(VendorFailure, match=said):
        compare(scenario, [GenericPrq(), Dying("dying")], executor=pool)


def test_a_vendor_that_does_not_pickle_is_named_and_the_others_run() -> None:
    scenario = load_named_scenario("null-set-search")
    failures: list[VendorFailure] = []
    with ProcessPoolExecutor(2) as pool:
        results = compare(
            scenario, [Unpicklable("pickless"), GenericPrq()], executor=pool, failures=failures
        )
    assert [r.vendor for r in results] == ["generic"] * 4
    (failure,) = failures
    assert failure.vendor == "pickless"
    assert failure.cause_text.startswith(
        "its run could not cross to or from a worker process (--jobs): "
    )
    assert "lambda" in failure.cause_text


def test_compare_jobs_2_names_the_vendor_whose_plugin_killed_its_worker(
    install: Callable[..., None], tmp_path: Path
) -> None:
    code, stdout, stderr, whole, whole_csv = _outputs(tmp_path / "before", "--jobs", "2")
    assert code == 0, stderr
    install(VendorEntryPoint("killer", Dying("killer")))
    code, stdout, stderr, document, text = _outputs(tmp_path / "after", "--jobs", "2")
    assert code == 1
    assert (
        "ioasid: left out: vendor 'killer' (plugin 'killer' (ioasid-killer, entry point "
        "ioasid_killer.plugin)) failed under policy 'global': the worker process running it "
        "died (exit status 3)\n"
    ) in stderr
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr
    assert document == whole  # the others' results, exactly as without it
    assert text == whole_csv
    assert "vtd" in stdout and "killer" not in stdout


def test_a_sweep_records_only_the_runs_that_kill_their_worker_and_runs_the_others(
    install: Callable[..., None], tmp_path: Path
) -> None:
    from ioasid_core.sweep import read_results

    install(VendorEntryPoint("killer", Dying("killer")))
    path = tmp_path / "sweep.toml"
    path.write_text(SMALL_SWEEP.replace('["generic", "vtd"]', '["generic", "killer"]'))
    out = tmp_path / "out"
    result = invoke_cli("sweep", str(path), "--out", str(out), "--jobs", "2", "--batch", "3")
    assert result.exit_code == 1
    assert "8 failed" in result.stdout  # the killer's 8 runs; none of generic's lost with them
    assert (
        "(plugin 'killer' (ioasid-killer, entry point ioasid_killer.plugin)): vendor 'killer' "
        "failed under policy 'global': the worker process running it died (exit status 3)\n"
    ) in result.stderr
    assert "BrokenProcessPool" not in result.stderr + result.stdout
    rows = read_results(out)
    assert all(r["error"] is None and r["page_requests"] for r in rows if r["vendor"] == "generic")
    assert sum(r["vendor"] == "generic" for r in rows) == 8
    errors = [str(r["error"]) for r in rows if r["vendor"] == "killer"]
    assert len(errors) == 8 and all("died (exit status 3)" in e for e in errors)
