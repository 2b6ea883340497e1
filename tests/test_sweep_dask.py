"""End to end on a real Dask ``LocalCluster`` (2 worker processes, started and closed by the
command): the rows are the serial ones, row for row, read back with pyarrow. Then on one
the tests start (as a user's running cluster): the workers' runs take their plugins and
hold each point's steps, and a run that kills its worker is named with how it died while
the other runs keep their results."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.sweep import (
    SerialEngine,
    SweepStore,
    load_sweep,
    plan_sweep,
    read_results,
    run_sweep,
)
from ioasid_core.testing import invoke_cli

# tests/sweep_helpers.py: ``tests.sweep_helpers`` at run time, ``sweep_helpers`` to mypy.
if TYPE_CHECKING:
    from plugin_fakes import VendorEntryPoint
    from sweep_helpers import SMALL, VENDORS, Killer, comparable, install_in_worker, write_sweep
else:
    from tests.plugin_fakes import VendorEntryPoint
    from tests.sweep_helpers import (
        SMALL,
        VENDORS,
        Killer,
        comparable,
        install_in_worker,
        write_sweep,
    )


@pytest.fixture
def dask_default_port_taken() -> Iterator[None]:
    """Port 8787 (Dask's default HTTP port) held by someone else, as on a shared machine
    where another cluster runs: the local cluster must not warn (warnings are errors here)."""
    with socket.socket() as holder:
        try:
            holder.bind(("0.0.0.0", 8787))
            holder.listen()
        except OSError:
            pass  # already taken by another process: the same condition
        yield


@pytest.mark.usefixtures("dask_default_port_taken")
def test_a_dask_local_cluster_gives_the_serial_rows_row_for_row(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    plan = plan_sweep(load_sweep(path), VENDORS)
    serial_store = SweepStore(tmp_path / "serial")
    serial_store.check(plan, resume=False)
    run_sweep(plan, serial_store, SerialEngine())
    out = tmp_path / "dask"
    args = ["sweep", str(path), "--out", str(out), "--executor", "dask-local", "--jobs", "2"]
    result = CliRunner().invoke(cli, [*args, "--batch", "3", "--connect-timeout", "60"])
    assert result.exit_code == 0, result.output
    assert "on dask local cluster of 2" in result.stdout
    serial = pq.read_table(tmp_path / "serial" / "results.parquet").to_pylist()
    dask = pq.read_table(out / "results.parquet").to_pylist()
    assert len(dask) == 16
    assert comparable(dask) == comparable(serial)
    assert (out / "plots" / "responses.success.png").exists()


# -- on a cluster the tests start themselves, as a user's running one (dask://HOST:PORT)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A ``LocalCluster`` of 2 worker processes, as ``dask-local`` starts (no retry of a
    task whose worker dies: the sweep retries); the repository's root on the workers' path,
    so that they import ``tests.sweep_helpers`` (its vendors and plugins unpickle there)."""
    from distributed import Client, LocalCluster

    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))  # a spawned worker starts with this path
        local = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0", "allowed_failures": 0},
            silence_logs=logging.ERROR,
        )
        client = Client(local)  # type: ignore[no-untyped-call]
        try:
            yield client
        finally:
            client.close()  # type: ignore[no-untyped-call]
            local.close()


def _at(client: Any) -> str:
    address: str = client.scheduler.address
    return "dask://" + address.removeprefix("tcp://")


def test_a_dask_workers_runs_take_its_plugins_and_hold_each_points_steps(
    cluster: Any, tmp_path: Path
) -> None:
    cluster.wait_for_workers(2, timeout=120)  # a failure, not a hang
    log = tmp_path / "trace"
    cluster.run(install_in_worker, str(log))
    out = tmp_path / "out"
    result = invoke_cli(
        "sweep", str(write_sweep(tmp_path)), "--out", str(out), "--executor", _at(cluster),
        "--batch", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = log.read_text().splitlines()
    probes = sorted(line for line in lines if line.startswith("probe "))
    assert probes == ["probe generic"] * 8 + ["probe vtd"] * 8  # every run, in the workers
    walks = [line for line in lines if line.startswith("walk ")]
    # 2 points x 2 seeds: each worker made each scenario's steps once at most.
    assert 4 <= len(walks) <= 8 and len(set(walks)) == len(walks)
    assert len(read_results(out)) == 16


def test_a_run_that_kills_its_dask_worker_is_named_and_the_others_are_kept(
    cluster: Any, install: Callable[..., None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ioasid_core.sweep import dask_engine

    # How a worker ended is read from its nanny's log, which may learn of the end after the
    # scheduler: the command waits 5 s for it, then says it cannot tell. Here the wait may be
    # as long as a loaded machine needs (it ends as soon as the line is logged), since the
    # rule tested is that the end is named, not how fast the nanny logs.
    monkeypatch.setattr(dask_engine, "_DEATH_LOGGED_WITHIN", 120.0)
    cluster.wait_for_workers(2, timeout=120)  # a failure, not a hang
    install(VendorEntryPoint("killer", Killer("killer")))
    text = SMALL.replace('["generic", "vtd"]', '["generic", "killer"]')
    text = text.replace('["native", "device"]', '["native"]').replace("[1, 2]", "[1]")
    out = tmp_path / "out"
    result = invoke_cli(
        "sweep", str(write_sweep(tmp_path, text)), "--out", str(out), "--executor",
        _at(cluster), "--batch", "4",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "4 runs" in result.stdout and "2 failed" in result.stdout
    said = re.compile(
        r"\(plugin 'killer' \(ioasid-killer, entry point ioasid_killer\.plugin\)\): vendor "
        r"'killer' failed under policy 'global': the worker process running it died \(exit "
        r"status 3; Dask's KilledWorker: 1 worker\(s\) died running it, the last at "
        r"tcp://127\.0\.0\.1:\d+\)\n"
    )
    assert len(said.findall(result.stderr)) == 2, result.stderr
    assert "Traceback" not in result.stderr
    rows = read_results(out)
    assert [r["vendor"] for r in rows if r["error"] is None] == ["generic", "generic"]
    assert all(r["page_requests"] for r in rows if r["vendor"] == "generic")
    assert all("died (exit status 3" in str(r["error"]) for r in rows if r["vendor"] == "killer")


class _LosingExecutor:
    """Stands for Dask's executor: a task that refers to the scattered cargo is cancelled
    for the batches holding run 0 (as Dask cancels the tasks whose data died with every
    worker that held it); any other task runs here."""

    def __init__(self, scattered: object, cargo: object) -> None:
        self.scattered, self.cargo = scattered, cargo
        self.alone: list[int] = []

    def submit(self, fn: Callable[..., Any], cargo: object, runs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if cargo is self.scattered and any(run.index == 0 for run in runs):
            future.cancel()
            future.set_running_or_notify_cancel()  # as Dask's executor tells its waiters
            return future
        if cargo is self.scattered:
            cargo = self.cargo  # what the worker holds
        else:
            self.alone.extend(run.index for run in runs)
        future.set_result(fn(cargo, runs))
        return future


def test_batches_whose_cargo_dask_lost_run_again_one_run_at_a_time(tmp_path: Path) -> None:
    from distributed.scheduler import KilledWorker

    from ioasid_core.sweep import DaskEngine
    from ioasid_core.sweep.worker import cargo_of

    plan = plan_sweep(load_sweep(write_sweep(tmp_path)), VENDORS)
    serial = SerialEngine()
    serial.start(cargo_of(plan))
    ((_, got),) = serial.run([plan.runs])
    assert isinstance(got, list)
    expected = {o.index: o.values for o in got}
    serial.close()
    engine = DaskEngine.__new__(DaskEngine)  # its cluster stood for by the executor
    engine._killed = KilledWorker
    engine._cargo = cargo_of(plan)
    engine._scattered = object()
    engine.executor = executor = _LosingExecutor(engine._scattered, engine._cargo)
    batches = [plan.runs[i : i + 3] for i in range(0, len(plan.runs), 3)]
    done = list(engine.run(batches))
    assert executor.alone == [0, 1, 2]  # the lost batch's runs, each on its own
    outcomes = {o.index: o for _, got in done if isinstance(got, list) for o in got}
    assert sorted(outcomes) == list(range(16))
    assert all(o.error is None for o in outcomes.values())
    assert {i: o.values for i, o in outcomes.items()} == expected


class _NannyLog:
    """Stands for a Dask client asking a nanny for its log (newest first)."""

    def __init__(self, *messages: str) -> None:
        self.connection_args: dict[str, object] = {}
        self.lines = [
            ("INFO", f"2026-12-06 08:15:53,300 - distributed.nanny - INFO - {m}") for m in messages
        ]
        self.asked: list[str] = []

    def sync(self, fn: Callable[..., Any], nanny: str, args: object) -> list[tuple[str, str]]:
        self.asked.append(nanny)
        return self.lines


@pytest.mark.parametrize(
    ("logged", "how"),
    [
        ("Worker process 856 exited with status 3", "exit status 3"),
        ("Worker process 856 was killed by signal 11", "killed by SIGSEGV"),
        (
            "Worker process 856 was killed by unknown signal",
            "killed by a signal Dask could not tell",
        ),
        (
            "Worker process 857 exited with status 3",
            "how process 856 ended is not in its nanny's log",
        ),
    ],
)
def test_how_a_dask_worker_ended_is_read_from_its_nannys_log(
    monkeypatch: pytest.MonkeyPatch, logged: str, how: str
) -> None:
    from ioasid_core.sweep import DaskEngine, dask_engine

    monkeypatch.setattr(dask_engine, "_DEATH_LOGGED_WITHIN", 0.0)
    engine = DaskEngine.__new__(DaskEngine)
    engine._client = client = _NannyLog("Restarting worker", logged)

    class Worker:
        pid, nanny = 856, "tcp://127.0.0.1:4242"

    assert engine._how_it_ended(Worker()) == how
    assert client.asked[0] == "tcp://127.0.0.1:4242"  # its own nanny, asked directly
