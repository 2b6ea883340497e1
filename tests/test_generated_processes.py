"""A churn's generated processes (``processes = true``) are ranges of names, not one
declaration each: the loader and a replay keep only live ones, names clash by range, and
messages listing names never copy them all."""

from __future__ import annotations

import copy
import gc
import tomllib
import tracemalloc
import weakref
from typing import Any

import pytest

import ioasid_core.replay as replay_module
from ioasid_core.compare import available_vendors
from ioasid_core.platform import AddressSpace
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.replay import replay
from ioasid_core.scenario import ScenarioError, parse_scenario
from ioasid_core.scenario.processes import ProcessNames, split_process_name
from ioasid_core.scenario.schema import GeneratedProcesses

BASE = tomllib.loads(
    """\
name = "gen"
[[platform.units]]
name = "iommu0"
[[platform.address_spaces]]
name = "proc"
[[platform.address_spaces]]
name = "proc1"
[[platform.sets]]
name = "sva"
sva = true
[[platform.devices]]
name = "d0"
unit = "iommu0"
source_id = 1
owner = "proc"
[[platform.devices]]
name = "d1"
unit = "iommu0"
source_id = 2
owner = "proc"
[[steps]]
at = 0
op = "bind"
device = "d0"
set = "sva"
address_space = "proc"
name = "p0"
[[steps]]
at = 0
op = "bind"
device = "d1"
set = "sva"
address_space = "proc1"
name = "p1"
"""
)
PROCESSES: dict[str, Any] = {
    "kind": "churn",
    "at": 10,
    "device": "d0",
    "set": "sva",
    "processes": True,
    "count": 3,
    "live": 2,
    "interval": 5,
    "prefix": "c",
}


def _data(*generators: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> Any:
    data = copy.deepcopy(BASE)
    data["generators"] = [copy.deepcopy(g) for g in generators]
    data["steps"] += steps or []
    return data


def _problem(data: Any) -> tuple[str, str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "t.toml")
    (problem,) = caught.value.problems
    return problem.key_path, problem.expected


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("aproc0", ("a", 0)),
        ("proc12", ("", 12)),
        ("a.proc1proc2", ("a.proc1", 2)),  # the last "proc" before the digits
        ("g3.proc65535", ("g3.", 65535)),
        ("aproc", None),
        ("aproc007", None),  # never generated: numbers have no leading zeros
        ("aproc-1", None),
        ("aproc\u0663", None),  # ARABIC-INDIC DIGIT THREE: a digit, not an ASCII one
        ("aproc1a", None),
        ("proc", None),
    ],
)
def test_a_process_name_splits_at_its_last_proc_before_the_digits(
    name: str, split: tuple[str, int] | None
) -> None:
    assert split_process_name(name) == split


def test_process_names_are_found_by_range_without_a_name_each() -> None:
    names = ProcessNames((GeneratedProcesses(prefix="g.", count=3, where="generators[1]"),))
    assert "g.proc2" in names and "g.proc3" not in names and "h.proc0" not in names
    assert names.where("g.proc0") == "generators[1]" and names.where("g.proc3") is None
    number: object = 7
    assert number not in names
    assert len(names) == 3 and list(names) == ["g.proc0", "g.proc1", "g.proc2"]


def test_the_loader_declares_a_range_and_the_steps_name_its_processes() -> None:
    scenario = parse_scenario(_data(PROCESSES | {"count": 4}), "t.toml")
    assert scenario.platform.processes == (
        GeneratedProcesses(prefix="c", count=4, where="generators[0]"),
    )
    spaces = [s.address_space for s in scenario.steps if s.op == "bind"]
    assert spaces == ["proc", "proc1", "cproc0", "cproc1", "cproc2", "cproc3"]


def test_two_churns_with_one_prefix_clash_at_the_second() -> None:
    second = PROCESSES | {"device": "d1"}
    assert _problem(_data(PROCESSES, second)) == (
        "generators[1].prefix",
        "generated process 'cproc0' is already an address space (generators[0]): "
        "pick another prefix",
    )


def test_a_declared_name_clashes_only_inside_the_range() -> None:
    data = _data(PROCESSES)
    data["platform"]["address_spaces"] += [{"name": "cproc5"}, {"name": "cproc03"}]
    parse_scenario(data, "t.toml")  # 5 >= count 3; "03" is never generated
    data["generators"][0]["count"] = 6
    assert _problem(data) == (
        "generators[0].prefix",
        "generated process 'cproc5' is already an address space (platform.address_spaces[2]): "
        "pick another prefix",
    )
    data["platform"]["address_spaces"].append({"name": "cproc4"})
    # The lowest-numbered of the names taken is the one named.
    assert "'cproc4' is already an address space (platform.address_spaces[4])" in _problem(data)[1]


def test_a_step_naming_no_address_space_lists_twenty_names_of_thousands() -> None:
    bad = {"op": "bind", "at": 1, "device": "d1", "set": "sva", "address_space": "nobody"}
    data = _data(PROCESSES | {"count": 20_000}, steps=[bad | {"name": "n"}])
    key, expected = _problem(data)
    assert key == "steps[2].address_space"
    # Sorted as text: 20 of the 20,002 (proc, proc1 and cproc0 .. cproc19999), worked out
    # by hand; "proc" and "proc1" sort after every "cproc".
    shown = ["cproc0", "cproc1", "cproc10", "cproc100", "cproc1000"]
    shown += [f"cproc1000{d}" for d in range(10)] + ["cproc1001"]
    shown += [f"cproc1001{d}" for d in range(4)]
    listed = ", ".join(shown)
    assert expected == f"no address space named 'nobody' (known: {listed}, ... (19982 more))"


def test_an_exited_process_named_again_is_found_on_the_second_check() -> None:
    late = {"op": "alloc", "at": 100, "set": "sva", "address_space": "cproc1", "name": "x"}
    assert _problem(_data(PROCESSES, steps=[late])) == (
        "steps[2].address_space",
        "process 'cproc1' has exited (its last binding went at generators[0]/4)",
    )
    early = late | {"at": 12}  # cproc1 binds at 15: before that it has not exited
    parse_scenario(_data(PROCESSES, steps=[early]), "t.toml")


def _load_peak_bytes(count: int) -> int:
    """Peak traced bytes of loading a churn of ``count`` fresh processes."""
    data = _data(PROCESSES | {"count": count, "live": 2})
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        parse_scenario(data, "t.toml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


def test_loading_fresh_processes_keeps_no_entry_for_each() -> None:
    small, large = _load_peak_bytes(200), _load_peak_bytes(20_000)
    # Two declarations, an exit record and a platform entry per process cost about
    # 330 B each on main before this (6.5 MB here); now a byte each marks an exit (20 kB).
    assert large - small < 400_000, (small, large)


def test_a_replay_keeps_a_process_only_while_it_holds_its_pasid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count, live = 2_000, 2
    scenario = parse_scenario(_data(PROCESSES | {"count": count, "live": live}), "t.toml")
    alive: list[int] = []  # address spaces alive after each one made
    gone: list[int] = [0]

    def counted(name: str, kind: str = "process") -> AddressSpace:
        space = AddressSpace(name, kind)
        weakref.finalize(space, lambda: gone.append(gone.pop() + 1))
        alive.append(len(alive) + 1 - gone[0])
        return space

    monkeypatch.setattr(replay_module, "AddressSpace", counted)
    vendor = available_vendors(new_plugin_manager().hooks)["generic"]
    metrics = replay(scenario, vendor).metrics
    assert metrics.sva_binds == count + 2 and metrics.frees == count
    assert len(alive) == 2 + count  # the two declared, then one per fresh process
    # Each fresh process went when it exited: the declared two, the live ones and the one
    # being bound at most (all 2,002 at once before: made when the run started).
    assert max(alive) <= 2 + live + 1, max(alive)
