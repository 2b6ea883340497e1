"""Scenario loading: a full file round trip, and one test per rule proving key path and message."""

from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path
from typing import Any, get_args

import attrs
import pytest

from ioasid_core.errors import InvalidArgumentError
from ioasid_core.latency import Exponential, Fixed, LogNormal, Uniform
from ioasid_core.scenario import (
    AddressSpaceSpec,
    DeviceSpec,
    DomainSpec,
    PlatformSpec,
    Scenario,
    ScenarioError,
    ScenarioProblem,
    SetSpec,
    Step,
    UnitSpec,
    VmSpec,
    load_scenario,
    parse_scenario,
)
from ioasid_core.scenario.load import _OP_KEYS, _STEP_KEYS, _STEP_WHAT
from ioasid_core.scenario.schema import Op

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

FULL_TOML = """\
name = "full"
description = "every key the format has"
seed = 7

[latency]
alloc = { dist = "fixed", us = 2 }
free = { dist = "uniform", low_us = 1, high_us = 3.5 }
bind = { dist = "exponential", mean_us = 5 }
page_request_service = { dist = "lognormal", median_us = 4, sigma = 0.5 }

[platform]
capacity = 0x1000
owners = ["idxd", "idxd-a"]

[[platform.units]]
name = "iommu0"
pasid_bits = 16
queue_entries = 64

[[platform.units]]
name = "iommu1"

[[platform.address_spaces]]
name = "proc-42"
kind = "process"

[[platform.address_spaces]]
name = "vm-1"
kind = "vm"

[[platform.sets]]
name = "sva"
type = "null"
sva = true

[[platform.sets]]
name = "vm-1"
type = "mm"
token = "vm-1"
quota = 8
sva = false

[[platform.sets]]
name = "proc-42-mm"
type = "mm"
token = "proc-42"

[[platform.vms]]
name = "vm-a"
quota = 2
capacity = 0x100
units = ["v0", "v1"]

[[platform.vms]]
name = "vm-b"

[vendor.vtd]
vcmd_layout = "3.1"

[[platform.domains]]
name = "proc-42-sva"
owner = "proc-42"
sets = ["sva", "proc-42-mm"]

[[platform.domains]]
name = "empty"
owner = "idxd"

[[platform.devices]]
name = "dsa0"
unit = "iommu0"
source_id = 0x100
owner = "proc-42"
domain = "proc-42-sva"
pasid_bits = 8
prg_response_pasid_required = true

[[platform.devices]]
name = "dsa1"
unit = "iommu1"
source_id = 0x100
owner = "idxd"

[[steps]]
op = "bind"
device = "dsa0"
set = "sva"
address_space = "proc-42"
name = "p"

[[steps]]
at = 1.5
op = "alloc"
set = "vm-1"
address_space = "vm-1"
name = "guest"

[[steps]]
at = 2
op = "alloc"
set = "sva"
owner = "idxd"
name = "aux"

[[steps]]
at = 3
op = "page_requests"
device = "dsa0"
pasid = "aux"
groups = 3
group_size = 4
perm = ["read", "write", "exec", "priv"]
stop_markers = 2
service = false

[[steps]]
at = 4
op = "page_requests"
device = "dsa1"
pasid = 0xfffff
source_id = 0x77

[[steps]]
at = 4
op = "page_requests"
device = "dsa1"

[[steps]]
at = 5
op = "service"
unit = "iommu0"

[[steps]]
at = 6
op = "free"
pasid = "guest"

[[steps]]
at = 7
op = "free"
pasid = 0x33

[[steps]]
at = 8
op = "unbind"
device = "dsa0"
pasid = "p"

[[steps]]
at = 9
op = "free"
pasid = 4

[[steps]]
at = 10
op = "unplug"
unit = "iommu1"

[[steps]]
at = 11
op = "guest_alloc"
vm = "vm-a"
name = "g"
owner = "idxd-a"

[[steps]]
at = 12
op = "unplug"
vm = "vm-a"
unit = "v0"

[[steps]]
at = 13
op = "guest_free"
vm = "vm-a"
pasid = "g"

[[steps]]
at = 14
op = "plug"
vm = "vm-a"
unit = "v0"

[[steps]]
at = 15
op = "register_allocator"
allocator = "vcmd"
kind = "cyclic"

[[steps]]
at = 15
op = "register_allocator"
allocator = "vcmd-1"
kind = "cyclic"
share = true

[[steps]]
at = 16
op = "attach_spid"
pasid = "aux"
spid = 101

[[steps]]
at = 17
op = "page_requests"
device = "dsa0"
set = "sva"
spid = 101

[[steps]]
at = 18
op = "detach_spid"
set = "sva"
spid = 101

[[steps]]
at = 19
op = "unregister_allocator"
allocator = "vcmd"
force = true
"""


def _full_expected(source: str) -> Scenario:
    return Scenario(
        name="full",
        description="every key the format has",
        seed=7,
        source=source,
        platform=PlatformSpec(
            capacity=0x1000,
            units=(
                UnitSpec(name="iommu0", pasid_bits=16, queue_entries=64),
                UnitSpec(name="iommu1"),
            ),
            address_spaces=(
                AddressSpaceSpec(name="proc-42", kind="process"),
                AddressSpaceSpec(name="vm-1", kind="vm"),
            ),
            sets=(
                SetSpec(name="sva", type="null", sva=True),
                SetSpec(name="vm-1", type="mm", token="vm-1", quota=8),
                SetSpec(name="proc-42-mm", type="mm", token="proc-42"),
            ),
            domains=(
                DomainSpec(name="proc-42-sva", owner="proc-42", sets=("sva", "proc-42-mm")),
                DomainSpec(name="empty", owner="idxd"),
            ),
            devices=(
                DeviceSpec(
                    name="dsa0",
                    unit="iommu0",
                    source_id=0x100,
                    owner="proc-42",
                    domain="proc-42-sva",
                    pasid_bits=8,
                    prg_response_pasid_required=True,
                ),
                DeviceSpec(name="dsa1", unit="iommu1", source_id=0x100, owner="idxd"),
            ),
            vms=(
                VmSpec(name="vm-a", quota=2, capacity=0x100, units=("v0", "v1")),
                VmSpec(name="vm-b"),
            ),
        ),
        vendor_options=(("vtd", (("vcmd_layout", "3.1"),)),),
        steps=(
            Step(
                op="bind",
                device="dsa0",
                set="sva",
                address_space="proc-42",
                name="p",
                where="steps[0]",
            ),
            Step(
                op="alloc",
                at=1.5,
                set="vm-1",
                address_space="vm-1",
                name="guest",
                where="steps[1]",
            ),
            Step(op="alloc", at=2.0, set="sva", owner="idxd", name="aux", where="steps[2]"),
            Step(
                op="page_requests",
                at=3.0,
                device="dsa0",
                pasid="aux",
                groups=3,
                group_size=4,
                perm=("read", "write", "exec", "priv"),
                stop_markers=2,
                service=False,
                where="steps[3]",
            ),
            Step(
                op="page_requests",
                at=4.0,
                device="dsa1",
                pasid=0xFFFFF,
                source_id=0x77,
                where="steps[4]",
            ),
            Step(op="page_requests", at=4.0, device="dsa1", where="steps[5]"),
            Step(op="service", at=5.0, unit="iommu0", where="steps[6]"),
            Step(op="free", at=6.0, pasid="guest", where="steps[7]"),
            Step(op="free", at=7.0, pasid=0x33, where="steps[8]"),
            Step(op="unbind", at=8.0, device="dsa0", pasid="p", where="steps[9]"),
            Step(op="free", at=9.0, pasid=4, where="steps[10]"),
            Step(op="unplug", at=10.0, unit="iommu1", where="steps[11]"),
            Step(op="guest_alloc", at=11.0, vm="vm-a", name="g", owner="idxd-a", where="steps[12]"),
            Step(op="unplug", at=12.0, vm="vm-a", unit="v0", where="steps[13]"),
            Step(op="guest_free", at=13.0, vm="vm-a", pasid="g", where="steps[14]"),
            Step(op="plug", at=14.0, vm="vm-a", unit="v0", where="steps[15]"),
            Step(
                op="register_allocator",
                at=15.0,
                allocator="vcmd",
                kind="cyclic",
                where="steps[16]",
            ),
            Step(
                op="register_allocator",
                at=15.0,
                allocator="vcmd-1",
                kind="cyclic",
                share=True,
                where="steps[17]",
            ),
            Step(op="attach_spid", at=16.0, pasid="aux", spid=101, where="steps[18]"),
            Step(
                op="page_requests", at=17.0, device="dsa0", set="sva", spid=101, where="steps[19]"
            ),
            Step(op="detach_spid", at=18.0, set="sva", spid=101, where="steps[20]"),
            Step(
                op="unregister_allocator",
                at=19.0,
                allocator="vcmd",
                force=True,
                where="steps[21]",
            ),
        ),
        latency=(
            ("alloc", Fixed(2.0)),
            ("free", Uniform(1.0, 3.5)),
            ("bind", Exponential(5.0)),
            ("page_request_service", LogNormal(4.0, 0.5)),
        ),
    )


def test_a_file_with_every_key_loads_into_exactly_the_scenario_it_describes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "full.toml"
    path.write_text(FULL_TOML, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario == _full_expected(str(path))
    # Every field of every spec type is set away from its default somewhere above.
    spec_types = (
        Scenario,
        PlatformSpec,
        UnitSpec,
        AddressSpaceSpec,
        SetSpec,
        DomainSpec,
        DeviceSpec,
        VmSpec,
    )
    for spec_type in spec_types:
        for field in attrs.fields(spec_type):
            if field.name in ("type", "kind", "source"):
                continue  # literal choices: both values appear; source is the file
            if spec_type is PlatformSpec and field.name == "processes":
                continue  # a churn's, not a [platform] key (tests/test_generated_processes.py)
            values = _values(scenario, spec_type, field.name)
            assert any(v != field.default for v in values), (spec_type, field.name)
    step_values = {
        f.name: {repr(getattr(s, f.name)) for s in scenario.steps} for f in attrs.fields(Step)
    }
    for field in attrs.fields(Step):
        assert len(step_values[field.name]) > 1, field.name


def _values(scenario: Scenario, spec_type: type, field: str) -> list[object]:
    p = scenario.platform
    objects: dict[type, tuple[object, ...]] = {
        Scenario: (scenario,),
        PlatformSpec: (p,),
        UnitSpec: p.units,
        AddressSpaceSpec: p.address_spaces,
        SetSpec: p.sets,
        DomainSpec: p.domains,
        DeviceSpec: p.devices,
        VmSpec: p.vms,
    }
    return [getattr(o, field) for o in objects[spec_type]]


def test_absent_keys_take_the_schema_defaults() -> None:
    scenario = parse_scenario(
        {
            "name": "bare",
            "platform": {
                "units": [{"name": "u"}],
                "address_spaces": [{"name": "a"}],
                "sets": [{"name": "s"}],
                "domains": [{"name": "d", "owner": "a"}],
                "devices": [{"name": "x", "unit": "u", "source_id": 1, "owner": "a"}],
            },
            "steps": [{"op": "page_requests", "device": "x"}],
        },
        "bare.toml",
    )
    assert scenario == Scenario(
        name="bare",
        source="bare.toml",
        platform=PlatformSpec(
            units=(UnitSpec(name="u"),),
            address_spaces=(AddressSpaceSpec(name="a"),),
            sets=(SetSpec(name="s"),),
            domains=(DomainSpec(name="d", owner="a"),),
            devices=(DeviceSpec(name="x", unit="u", source_id=1, owner="a"),),
        ),
        steps=(Step(op="page_requests", device="x", where="steps[0]"),),
    )
    assert parse_scenario({"name": "empty"}, "e.toml") == Scenario(name="empty", source="e.toml")


# ---------------------------------------------------------------------------- rules

_DELETE = object()


def _base() -> dict[str, Any]:
    """A small valid document that each rule's case edits in one or two places."""
    return {
        "name": "t",
        "platform": {
            "units": [{"name": "iommu0"}],
            "owners": ["idxd", "proc-7", "x"],
            "address_spaces": [{"name": "proc-42"}, {"name": "vm-1", "kind": "vm"}],
            "sets": [
                {"name": "sva", "sva": True},
                {"name": "priv"},
                {"name": "vm-1", "type": "mm", "token": "vm-1"},
            ],
            "domains": [{"name": "d", "owner": "proc-42", "sets": ["sva"]}],
            "devices": [
                {"name": "dsa0", "unit": "iommu0", "source_id": 0x100, "owner": "proc-42"},
                {"name": "dsa1", "unit": "iommu0", "source_id": 0x101, "owner": "proc-7"},
            ],
        },
        "steps": [
            {
                "op": "bind",
                "at": 0,
                "device": "dsa0",
                "set": "sva",
                "address_space": "proc-42",
                "name": "p",
            },
            {"op": "alloc", "at": 10, "set": "priv", "owner": "idxd", "name": "aux"},
            {"op": "page_requests", "at": 20, "device": "dsa0", "pasid": "aux"},
            {"op": "service", "at": 30, "unit": "iommu0"},
        ],
    }


def _edit(doc: dict[str, Any], path: str, value: object) -> None:
    """Set (or delete, or append at index len) the value at a key path like ``a.b[1].c``."""
    keys: list[Any] = []
    for part in path.split("."):
        found = re.fullmatch(r"(\w+)((?:\[\d+\])*)", part)
        assert found is not None, part
        keys.append(found[1])
        keys.extend(int(i) for i in re.findall(r"\[(\d+)\]", found[2]))
    target: Any = doc
    for key in keys[:-1]:
        target = target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    elif isinstance(last, int) and last == len(target):
        target.append(value)
    else:
        target[last] = value


def _error(*edits: tuple[str, object]) -> ScenarioError:
    doc = _base()
    for path, value in edits:
        _edit(doc, path, value)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(doc, "t.toml")
    return caught.value


def test_the_base_document_is_valid() -> None:
    scenario = parse_scenario(_base(), "t.toml")
    assert [s.where for s in scenario.steps] == ["steps[0]", "steps[1]", "steps[2]", "steps[3]"]


def _free(at: int, pasid: object) -> dict[str, object]:
    return {"op": "free", "at": at, "pasid": pasid}


_PR = {"op": "page_requests", "device": "dsa0"}
_REG = {"op": "register_allocator", "at": 40, "allocator": "a", "kind": "cyclic"}
_ATTACH = {"op": "attach_spid", "at": 40, "pasid": "aux", "spid": 5}

# (edits, key path, a part of the message)
RULES: list[tuple[tuple[tuple[str, object], ...], str, str]] = [
    # --- top level
    ((("name", _DELETE),), "name", "required key is missing (expected a non-empty string)"),
    ((("name", 5),), "name", "expected a non-empty string, got an integer (5)"),
    ((("name", ""),), "name", "expected a non-empty string, got a string ('')"),
    ((("description", ["x"]),), "description", "expected a string, got an array"),
    ((("seed", True),), "seed", "expected an integer >= 0, got a boolean (true)"),
    ((("seed", -1),), "seed", "expected an integer >= 0, got -1"),
    ((("steps", []), ("platform", [1])), "platform", "expected a table, got an array"),
    ((("steps", {"op": "bind"}),), "steps", "expected an array, got a table"),
    ((("steps[4]", "free"),), "steps[4]", "expected a table, got a string ('free')"),
    # --- ranges and types in the platform
    (
        (("platform.capacity", 0),),
        "platform.capacity",
        "expected an integer in 1..0x1000000, got 0",
    ),
    (
        (("platform.capacity", (1 << 24) + 1),),
        "platform.capacity",
        "in 1..0x1000000, got 16777217 (0x1000001)",
    ),
    ((("platform.capacity", 1.0),), "platform.capacity", "got a float (1.0)"),
    (
        (("platform.units[0].pasid_bits", 21),),
        "platform.units[0].pasid_bits",
        "expected an integer in 0..20, got 21",
    ),
    ((("platform.units[0].pasid_bits", -1),), "platform.units[0].pasid_bits", "got -1"),
    (
        (("platform.units[0].pasid_bits", True),),
        "platform.units[0].pasid_bits",
        "expected an integer in 0..20, got a boolean (true)",
    ),
    (
        (("platform.devices[0].prg_response_pasid_required", 1),),
        "platform.devices[0].prg_response_pasid_required",
        "expected a boolean, got an integer (1)",
    ),
    (
        (("platform.units[0].queue_entries", 1),),
        "platform.units[0].queue_entries",
        "expected an integer in 2..0x80000, got 1",
    ),
    (
        (("platform.domains", {"name": "x"}),),
        "platform.domains",
        "expected an array, got a table",
    ),
    ((("platform.units[1]", "iommu1"),), "platform.units[1]", "expected a table, got a string"),
    (
        (("platform.domains[0].name", _DELETE),),
        "platform.domains[0].name",
        "required key is missing (expected a non-empty string)",
    ),
    # --- uniqueness per kind
    (
        (("platform.units[1]", {"name": "iommu0"}),),
        "platform.units[1].name",
        "duplicate unit name 'iommu0' (first at platform.units[0])",
    ),
    (
        (("platform.address_spaces[2]", {"name": "proc-42"}),),
        "platform.address_spaces[2].name",
        "duplicate address space name 'proc-42' (first at platform.address_spaces[0])",
    ),
    (
        (("platform.sets[3]", {"name": "sva"}),),
        "platform.sets[3].name",
        "duplicate set name 'sva' (first at platform.sets[0])",
    ),
    (
        (("platform.domains[1]", {"name": "d", "owner": "x"}),),
        "platform.domains[1].name",
        "duplicate domain name 'd' (first at platform.domains[0])",
    ),
    (
        (
            (
                "platform.devices[2]",
                {"name": "dsa0", "unit": "iommu0", "source_id": 2, "owner": "x"},
            ),
        ),
        "platform.devices[2].name",
        "duplicate device name 'dsa0' (first at platform.devices[0])",
    ),
    (
        (("platform.devices[1].source_id", 0x100),),
        "platform.devices[1].source_id",
        "source ID 0x100 behind unit 'iommu0' is taken (platform.devices[0])",
    ),
    # --- address spaces and sets
    (
        (("platform.address_spaces[0].kind", "thread"),),
        "platform.address_spaces[0].kind",
        "expected one of process, vm, got 'thread'",
    ),
    (
        (("platform.sets[0].type", "pasid"),),
        "platform.sets[0].type",
        "expected one of null, mm, got 'pasid'",
    ),
    (
        (("platform.sets[2].token", _DELETE),),
        "platform.sets[2].token",
        "required key is missing (expected the name of an address space: an 'mm' set has one)",
    ),
    (
        (("platform.sets[1].token", "proc-42"),),
        "platform.sets[1].token",
        "a set of type 'null' takes no token",
    ),
    (
        (("platform.sets[2].token", "vm-9"),),
        "platform.sets[2].token",
        "no address space named 'vm-9' (known: proc-42, vm-1)",
    ),
    (
        (("platform.sets[3]", {"name": "vm-1b", "type": "mm", "token": "vm-1"}),),
        "platform.sets[3].token",
        "address space 'vm-1' already has an 'mm' set (platform.sets[2]): one each",
    ),
    ((("platform.sets[1].quota", -1),), "platform.sets[1].quota", "expected an integer >= 0"),
    (
        (
            ("platform.capacity", 8),
            ("platform.sets[1].quota", 5),
            ("platform.sets[2].quota", 4),
        ),
        "platform.sets[2].quota",
        "quotas add up to 9 here, more than the capacity (8): a quota reserves its IDs up front",
    ),
    (
        (("platform.sets[1].sva", True),),
        "platform.sets[1].sva",
        "at most one set may have sva = true (platform.sets[0])",
    ),
    (
        (("platform.sets[1].sva", "yes"),),
        "platform.sets[1].sva",
        "expected a boolean, got a string ('yes')",
    ),
    # --- domains
    (
        (("platform.domains[0].owner", _DELETE),),
        "platform.domains[0].owner",
        "required key is missing",
    ),
    (
        (("platform.domains[0].sets", ["sva", "nope"]),),
        "platform.domains[0].sets[1]",
        "no set named 'nope' (known: priv, sva, vm-1)",
    ),
    (
        (("platform.domains[0].sets", ["sva", "sva"]),),
        "platform.domains[0].sets[1]",
        "'sva' is listed twice (first at platform.domains[0].sets[0])",
    ),
    (
        (("platform.domains[0].sets", "sva"),),
        "platform.domains[0].sets",
        "expected an array, got a string ('sva')",
    ),
    # --- devices
    (
        (("platform.devices[0].unit", "iommu9"),),
        "platform.devices[0].unit",
        "no unit named 'iommu9' (known: iommu0)",
    ),
    (
        (("platform.devices[0].domain", "dd"),),
        "platform.devices[0].domain",
        "no domain named 'dd' (known: d)",
    ),
    (
        (("platform.devices[0].source_id", 1 << 32),),
        "platform.devices[0].source_id",
        "expected an integer in 0..0xffffffff, got 4294967296 (0x100000000)",
    ),
    ((("platform.devices[0].source_id", -1),), "platform.devices[0].source_id", "got -1"),
    (
        (("platform.devices[0].source_id", _DELETE),),
        "platform.devices[0].source_id",
        "required key is missing (expected an integer in 0..0xffffffff)",
    ),
    ((("platform.devices[0].owner", _DELETE),), "platform.devices[0].owner", "required key"),
    ((("platform.devices[0].pasid_bits", 21),), "platform.devices[0].pasid_bits", "in 0..20"),
    # --- unknown keys everywhere
    (
        (("sead", 1),),
        "sead",
        "unknown key (allowed: description, generators, latency, name, platform, seed, steps, "
        "vendor)",
    ),
    (
        (("platform.capacty", 1),),
        "platform.capacty",
        "unknown key (allowed: address_spaces, capacity, devices, domains, owners, sets, units, "
        "vms)",
    ),
    (
        (("platform.units[0].pasid_bit", 20),),
        "platform.units[0].pasid_bit",
        "unknown key (allowed: name, pasid_bits, queue_entries)",
    ),
    (
        (("platform.address_spaces[0].knid", "vm"),),
        "platform.address_spaces[0].knid",
        "unknown key (allowed: kind, name)",
    ),
    (
        (("platform.sets[0].qouta", 1),),
        "platform.sets[0].qouta",
        "unknown key (allowed: name, quota, sva, token, type)",
    ),
    (
        (("platform.domains[0].set", ["sva"]),),
        "platform.domains[0].set",
        "unknown key (allowed: name, owner, sets)",
    ),
    (
        (("platform.devices[0].sid", 1),),
        "platform.devices[0].sid",
        "unknown key (allowed: domain, name, owner, pasid_bits, prg_response_pasid_required, "
        "source_id, unit)",
    ),
    (
        (("steps[0].devcie", "dsa0"),),
        "steps[0].devcie",
        "unknown key (allowed for op 'bind': address_space, at, device, name, op, set)",
    ),
    ((("steps[3].where", "x"),), "steps[3].where", "unknown key (allowed for op 'service'"),
    # --- op names and the keys each op takes
    (
        (("steps[3].op", "servce"),),
        "steps[3].op",
        "expected one of bind, unbind, alloc, free, page_requests, service, unplug, plug, "
        "guest_alloc, guest_free, register_allocator, unregister_allocator, attach_spid, "
        "detach_spid, got 'servce'",
    ),
    ((("steps[3].op", _DELETE),), "steps[3].op", "required key is missing (expected a string)"),
    (
        (("steps[3].device", "dsa0"),),
        "steps[3].device",
        "op 'service' takes no 'device' (it takes: at, op, unit)",
    ),
    (
        (("steps[1].groups", 2),),
        "steps[1].groups",
        "op 'alloc' takes no 'groups' (it takes: address_space, at, name, op, owner, set)",
    ),
    (
        (("steps[0].device", _DELETE),),
        "steps[0].device",
        "required key is missing (expected the name of a device: op 'bind' needs it)",
    ),
    ((("steps[0].name", _DELETE),), "steps[0].name", "op 'bind' needs it"),
    ((("steps[3].unit", _DELETE),), "steps[3].unit", "op 'service' needs it"),
    ((("steps[4]", {"op": "unbind", "at": 40, "pasid": "p"}),), "steps[4].device", "needs it"),
    ((("steps[4]", {"op": "free", "at": 40}),), "steps[4].pasid", "op 'free' needs it"),
    (
        (("steps[1].address_space", "proc-42"),),
        "steps[1]",
        "alloc takes owner (a driver object's owner) or address_space, not both",
    ),
    (
        (("steps[1].owner", _DELETE),),
        "steps[1].owner",
        "required key is missing (expected a driver's name, or address_space instead",
    ),
    # --- references from steps
    (
        (("steps[2].device", "dsa9"),),
        "steps[2].device",
        "no device named 'dsa9' (known: dsa0, dsa1)",
    ),
    ((("steps[0].set", "svaa"),), "steps[0].set", "no set named 'svaa' (known: priv, sva, vm-1)"),
    (
        (("steps[0].address_space", "proc-9"),),
        "steps[0].address_space",
        "no address space named 'proc-9' (known: proc-42, vm-1)",
    ),
    ((("steps[3].unit", "iommu1"),), "steps[3].unit", "no unit named 'iommu1' (known: iommu0)"),
    # --- time
    ((("steps[1].at", -1),), "steps[1].at", "expected a finite number >= 0, got -1"),
    ((("steps[1].at", float("nan")),), "steps[1].at", "expected a finite number >= 0, got nan"),
    ((("steps[1].at", True),), "steps[1].at", "expected a number of microseconds, got a boolean"),
    ((("steps[1].at", "10us"),), "steps[1].at", "got a string ('10us')"),
    (
        (("steps[2].at", 5),),
        "steps[2].at",
        "expected at >= 10 (steps[1].at), got 5: steps run in file order and time never goes back",
    ),
    ((("steps[2].at", _DELETE),), "steps[2].at", "got 0 (absent, so the default)"),
    # --- page requests
    ((("steps[2].groups", 0),), "steps[2].groups", "expected an integer in 1..0x10000, got 0"),
    (
        (("steps[2].group_size", 0),),
        "steps[2].group_size",
        "expected an integer in 1..0x10000, got 0",
    ),
    ((("steps[2].stop_markers", -1),), "steps[2].stop_markers", "an integer in 0..0x10000"),
    ((("steps[2].groups", 10**8),), "steps[2].groups", "in 1..0x10000, got 100000000 (0x5f5e100)"),
    (
        (("steps[2].groups", 0x8000), ("steps[2].group_size", 3)),
        "steps[2]",
        "a step sends at most 0x10000 page requests; groups x group_size + stop_markers is",
    ),
    ((("steps[2].groups", 2.0),), "steps[2].groups", "got a float (2.0)"),
    (
        (("steps[2].perm", ["read", "rwx"]),),
        "steps[2].perm[1]",
        "expected one of read, write, exec, priv, got 'rwx'",
    ),
    ((("steps[2].perm", ["read", 1]),), "steps[2].perm[1]", "got an integer (1)"),
    ((("steps[2].perm", ["read", "read"]),), "steps[2].perm[1]", "'read' is listed twice"),
    ((("steps[2].perm", []),), "steps[2].perm", "use stop_markers for stop markers"),
    ((("steps[2].perm", "read"),), "steps[2].perm", "expected an array of strings, got a string"),
    ((("steps[2].service", "no"),), "steps[2].service", "expected a boolean, got a string"),
    # --- PASID references
    (
        (("steps[2].pasid", True),),
        "steps[2].pasid",
        "expected a PASID name (a string) or number (an integer), got a boolean (true)",
    ),
    ((("steps[2].pasid", 1.0),), "steps[2].pasid", "got a float (1.0)"),
    (
        (("steps[2].pasid", 1 << 20),),
        "steps[2].pasid",
        "expected a PASID in 0..0xfffff (a page request carries 20 bits), got 1048576",
    ),
    ((("steps[2].pasid", -1),), "steps[2].pasid", "expected a PASID in 0..0xfffff"),
    (
        (("steps[4]", _free(40, 1 << 20)),),
        "steps[4].pasid",
        "expected a PASID in 0..0xfffff (capacity), got 1048576",
    ),
    (
        (("platform.capacity", 16), ("steps[4]", _free(40, 16))),
        "steps[4].pasid",
        "expected a PASID in 0..15 (capacity), got 16",
    ),
    (
        (("steps[2].pasid", "nope"),),
        "steps[2].pasid",
        "no PASID named 'nope': a name must come from an earlier bind or alloc step's name "
        "(live: aux, p)",
    ),
    (
        (
            ("steps[2].pasid", "later"),
            ("steps[4]", {"op": "alloc", "at": 40, "set": "priv", "owner": "x", "name": "later"}),
        ),
        "steps[2].pasid",
        "no PASID named 'later'",
    ),
    (
        (("steps[4]", _free(40, "aux")), ("steps[5]", {**_PR, "at": 50, "pasid": "aux"})),
        "steps[5].pasid",
        "PASID 'aux' was freed at steps[4]; it is no longer live",
    ),
    (
        (
            ("steps[4]", {"op": "unbind", "at": 40, "device": "dsa0", "pasid": "p"}),
            ("steps[5]", _free(50, "p")),
        ),
        "steps[5].pasid",
        "PASID 'p' was unbound at steps[4]; it is no longer live",
    ),
    (
        (("steps[4]", _free(40, "aux")), ("steps[5]", _free(50, "aux"))),
        "steps[5].pasid",
        "PASID 'aux' was freed at steps[4]",
    ),
    (
        (("steps[4]", {"op": "alloc", "at": 40, "set": "priv", "owner": "x", "name": "p"}),),
        "steps[4].name",
        "'p' already names a live PASID (from steps[0]); unbind or free it first",
    ),
    (
        (("steps[4]", {"op": "unbind", "at": 40, "device": "dsa0", "pasid": "aux"}),),
        "steps[4].pasid",
        "PASID 'aux' was allocated (at steps[1]), not bound: free it instead",
    ),
    (
        (("steps[4]", {"op": "unbind", "at": 40, "device": "dsa1", "pasid": "p"}),),
        "steps[4].pasid",
        "PASID 'p' is bound to device 'dsa0' (at steps[0]), not 'dsa1'",
    ),
    # --- units that were unplugged
    (
        (
            ("steps[4]", {"op": "unplug", "at": 40, "unit": "iommu0"}),
            ("steps[5]", {**_PR, "at": 50, "pasid": "p"}),
        ),
        "steps[5].device",
        "device 'dsa0' is gone: its unit 'iommu0' was unplugged at steps[4]",
    ),
    (
        (
            ("steps[4]", {"op": "unplug", "at": 40, "unit": "iommu0"}),
            ("steps[5]", {"op": "service", "at": 50, "unit": "iommu0"}),
        ),
        "steps[5].unit",
        "unit 'iommu0' was unplugged at steps[4]",
    ),
    # --- allocator swaps
    (
        (("steps[4]", {"op": "register_allocator", "at": 40, "allocator": "a", "kind": "fifo"}),),
        "steps[4].kind",
        "expected one of lowest, cyclic, top_down, random, got 'fifo'",
    ),
    (
        (("steps[4]", {"op": "register_allocator", "at": 40, "allocator": "a"}),),
        "steps[4].kind",
        "required key is missing (expected an allocator backend (lowest, cyclic, top_down, "
        "random): op 'register_allocator' needs it)",
    ),
    (
        (("steps[4]", _REG), ("steps[5]", {**_REG, "kind": "lowest"})),
        "steps[5].allocator",
        "'a' is already registered (at steps[4])",
    ),
    (
        (("steps[4]", {**_REG, "share": True}),),
        "steps[4].share",
        "no live 'cyclic' allocator to share with: register one first",
    ),
    (
        (
            ("steps[4]", _REG),
            ("steps[5]", {**_REG, "allocator": "b", "kind": "lowest", "share": True}),
        ),
        "steps[5].share",
        "no live 'lowest' allocator to share with",
    ),
    (
        (("steps[4]", {"op": "unregister_allocator", "at": 40, "allocator": "a"}),),
        "steps[4].allocator",
        "no allocator registered as 'a' here (registered: none declared)",
    ),
    (
        (
            ("steps[4]", _REG),
            ("steps[5]", {"op": "unregister_allocator", "at": 40, "allocator": "a", "force": 1}),
        ),
        "steps[5].force",
        "expected a boolean, got an integer (1)",
    ),
    (
        (("steps[4]", {**_REG, "force": True}),),
        "steps[4].force",
        "op 'register_allocator' takes no 'force'",
    ),
    # --- SPIDs
    (
        (("steps[4]", {**_ATTACH, "spid": 0xFFFFFFFF}),),
        "steps[4].spid",
        "expected an integer in 0..0xfffffffe, got 4294967295 (0xffffffff)",
    ),
    (
        (("steps[4]", {**_ATTACH, "pasid": 7}),),
        "steps[4].pasid",
        "expected the name of a live PASID: attach_spid needs to know its set",
    ),
    (
        (("steps[4]", _free(40, "aux")), ("steps[5]", {**_ATTACH, "at": 41})),
        "steps[5].pasid",
        "PASID 'aux' was freed at steps[4]; it is no longer live",
    ),
    (
        (("steps[4]", _ATTACH), ("steps[5]", {**_ATTACH, "spid": 6})),
        "steps[5].pasid",
        "PASID 'aux' already has SPID 5: detach it first",
    ),
    (
        (
            ("steps[4]", _ATTACH),
            ("steps[5]", {"op": "alloc", "at": 40, "set": "priv", "owner": "x", "name": "b"}),
            ("steps[6]", {**_ATTACH, "pasid": "b"}),
        ),
        "steps[6].spid",
        "SPID 5 is already attached in set 'priv' (at steps[4])",
    ),
    (
        (("steps[4]", {"op": "detach_spid", "at": 40, "set": "priv", "spid": 5}),),
        "steps[4].spid",
        "SPID 5 is not attached in set 'priv' here: an attach_spid step must come first",
    ),
    (
        (
            ("steps[4]", _ATTACH),
            ("steps[5]", {"op": "detach_spid", "at": 40, "set": "priv", "spid": 5}),
            ("steps[6]", {**_PR, "at": 40, "set": "priv", "spid": 5}),
        ),
        "steps[6].spid",
        "SPID 5 is not attached in set 'priv' here",
    ),
    (
        (("steps[4]", _ATTACH), ("steps[5]", {**_PR, "at": 40, "set": "sva", "spid": 5})),
        "steps[5].spid",
        "SPID 5 is not attached in set 'sva' here",
    ),
    (
        (("steps[4]", _ATTACH), ("steps[5]", {**_PR, "at": 40, "pasid": "aux", "spid": 5})),
        "steps[5]",
        "page_requests takes pasid, or set and spid (a guest PASID), not both",
    ),
    (
        (("steps[4]", _ATTACH), ("steps[5]", {**_PR, "at": 40, "spid": 5})),
        "steps[5].set",
        "required key is missing (expected the name of a set: the guest set the SPID belongs to)",
    ),
    (
        (("steps[4]", {**_PR, "at": 40, "set": "priv"}),),
        "steps[4].spid",
        "required key is missing (expected a guest PASID: set names the guest's set)",
    ),
    (
        (("steps[4]", {"op": "detach_spid", "at": 40, "set": "nope", "spid": 5}),),
        "steps[4].set",
        "no set named 'nope'",
    ),
    # --- latency
    ((("latency", 5),), "latency", "expected a table, got an integer (5)"),
    (
        (("latency", {"alloc": {"dist": "fixed", "us": 1}, "alocate": {}}),),
        "latency.alocate",
        "unknown key (allowed: alloc, attach_spid, bind, detach_spid, free, "
        "page_request_service, register_allocator, unbind, unregister_allocator)",
    ),
    (
        (("latency", {"alloc": {"dist": "normal", "mean_us": 1}}),),
        "latency.alloc.dist",
        "expected one of fixed, uniform, exponential, lognormal, got 'normal'",
    ),
    (
        (("latency", {"alloc": {"us": 1}}),),
        "latency.alloc.dist",
        "required key is missing (expected a string)",
    ),
    (
        (("latency", {"free": {"dist": "uniform", "low_us": 1}}),),
        "latency.free.high_us",
        "required key is missing (expected a number of microseconds >= 0: dist 'uniform' needs it)",
    ),
    (
        (("latency", {"free": {"dist": "uniform", "low_us": 3, "high_us": 2}}),),
        "latency.free.high_us",
        "expected high_us >= low_us (3), got 2",
    ),
    (
        (("latency", {"bind": {"dist": "exponential", "mean_us": -1}}),),
        "latency.bind.mean_us",
        "expected a number of microseconds >= 0, got -1",
    ),
    (
        (("latency", {"bind": {"dist": "exponential", "mean_us": True}}),),
        "latency.bind.mean_us",
        "expected a number of microseconds >= 0, got a boolean (true)",
    ),
    (
        (("latency", {"bind": {"dist": "lognormal", "median_us": 3, "sigma": float("nan")}}),),
        "latency.bind.sigma",
        "expected a number >= 0 (the spread of log(time)), got nan",
    ),
    (
        (("latency", {"bind": {"dist": "fixed", "us": 1, "mean_us": 2}}),),
        "latency.bind.mean_us",
        "unknown key (allowed: dist, us)",
    ),
    (
        (("latency", {"unbind": "fast"}),),
        "latency.unbind",
        "expected a table, got a string ('fast')",
    ),
]


@pytest.mark.parametrize(("edits", "key_path", "message"), RULES, ids=[r[1] for r in RULES])
def test_each_rule_names_the_key_path_and_what_was_expected(
    edits: tuple[tuple[str, object], ...], key_path: str, message: str
) -> None:
    error = _error(*edits)
    # Exactly one problem: the edit caused this one and no cascade of others.
    assert len(error.problems) == 1, str(error)
    assert error.source == "t.toml"
    assert error.key_path == key_path
    assert message in error.expected
    assert str(error) == f"t.toml: {key_path}: {error.expected}"


def test_the_message_has_the_documented_shape() -> None:
    error = _error(("steps[2].device", "dsa9"))
    assert str(error) == "t.toml: steps[2].device: no device named 'dsa9' (known: dsa0, dsa1)"
    assert isinstance(error, InvalidArgumentError)
    assert isinstance(error, ValueError)


def test_every_problem_is_reported_one_per_line_in_file_order() -> None:
    error = _error(
        ("seed", "x"),
        ("platform.units[0].queue_entries", 0),
        ("platform.devices[1].unit", "nope"),
        ("steps[0].op", "bnd"),
        ("steps[0].typo", 1),
        ("steps[2].device", "dsa9"),
    )
    assert error.problems == (
        ScenarioProblem("seed", "expected an integer >= 0, got a string ('x')"),
        ScenarioProblem(
            "platform.units[0].queue_entries", "expected an integer in 2..0x80000, got 0"
        ),
        ScenarioProblem("platform.devices[1].unit", "no unit named 'nope' (known: iommu0)"),
        ScenarioProblem(
            "steps[0].op",
            "expected one of bind, unbind, alloc, free, page_requests, service, unplug, plug, "
            "guest_alloc, guest_free, register_allocator, unregister_allocator, attach_spid, "
            "detach_spid, got 'bnd'",
        ),
        ScenarioProblem(
            "steps[0].typo",
            "unknown key (allowed: address_space, allocator, at, device, force, group_size, "
            "groups, kind, name, op, owner, pasid, perm, service, set, share, source_id, spid, "
            "stop_markers, unit, vm)",
        ),
        ScenarioProblem("steps[2].device", "no device named 'dsa9' (known: dsa0, dsa1)"),
    )
    assert str(error).splitlines() == [
        f"t.toml: {p.key_path}: {p.expected}" for p in error.problems
    ]
    assert (error.key_path, error.expected) == error.problems[0]


def test_a_bad_op_hides_no_other_problem_in_its_step() -> None:
    error = _error(("steps[2].op", "page_request"), ("steps[2].groups", 0))
    assert [p.key_path for p in error.problems] == ["steps[2].op", "steps[2].groups"]


def test_a_bad_entry_still_declares_its_name_so_references_to_it_do_not_cascade() -> None:
    error = _error(("platform.devices[0].source_id", "0x100"))
    assert [p.key_path for p in error.problems] == ["platform.devices[0].source_id"]


def test_sets_and_domains_may_be_referenced_before_their_tables() -> None:
    doc = _base()
    doc["platform"]["sets"].reverse()
    doc["platform"]["domains"].insert(0, {"name": "first", "owner": "x", "sets": ["vm-1"]})
    scenario = parse_scenario(doc, "t.toml")
    assert scenario.platform.domains[0].sets == ("vm-1",)


def test_what_the_rules_allow() -> None:
    doc = _base()
    # An mm set's token may name a process or a VM.
    doc["platform"]["sets"].append({"name": "p42", "type": "mm", "token": "proc-42"})
    # A source ID is unique per unit, not across units.
    doc["platform"]["units"].append({"name": "iommu1"})
    doc["platform"]["devices"].append(
        {"name": "dsa2", "unit": "iommu1", "source_id": 0x100, "owner": "x"}
    )
    doc["platform"]["sets"][1]["quota"] = 1 << 20  # the whole capacity: still fits
    doc["steps"] += [
        # A freed name may be defined again; `at` may repeat and be fractional.
        _free(30, "aux"),
        {"op": "alloc", "at": 30.5, "set": "priv", "address_space": "vm-1", "name": "aux"},
        {**_PR, "at": 30.5, "pasid": "aux"},
        # A PASID still bound may be freed (the number is the driver's to give back; an
        # address space's PASID goes with every binding of it).
        _free(31, "p"),
        # PASID numbers are not tracked: the replay decides what they hit.
        _free(32, 5),
        _free(33, 0),
        {"op": "unplug", "at": 34, "unit": "iommu0"},
        {**_PR, "at": 35, "device": "dsa2", "pasid": 0xFFFFF},
    ]
    scenario = parse_scenario(doc, "t.toml")
    assert [s.op for s in scenario.steps[4:]] == [
        "free",
        "alloc",
        "page_requests",
        "free",
        "free",
        "free",
        "unplug",
        "page_requests",
    ]
    assert scenario.steps[5].at == 30.5


def test_what_the_swap_and_spid_rules_allow() -> None:
    doc = _base()
    doc["steps"] += [
        {**_ATTACH, "at": 40},
        # A PASID freed with its SPID attached stays reachable through the SPID until the
        # detach (it is FREE_PENDING), and its name may be used again at once.
        _free(41, "aux"),
        {**_PR, "at": 42, "set": "priv", "spid": 5},
        {"op": "alloc", "at": 43, "set": "priv", "owner": "x", "name": "aux"},
        {"op": "detach_spid", "at": 44, "set": "priv", "spid": 5},
        {**_ATTACH, "at": 45},
        # An unregister may be refused at replay time: a second one is a retry.
        {**_REG, "at": 46},
        {**_REG, "at": 46, "allocator": "b", "share": True},
        {"op": "unregister_allocator", "at": 47, "allocator": "a"},
        {"op": "unregister_allocator", "at": 48, "allocator": "a", "force": True},
        {**_REG, "at": 49, "kind": "random"},
    ]
    scenario = parse_scenario(doc, "t.toml")
    assert [s.op for s in scenario.steps[-5:]] == [
        "register_allocator",
        "register_allocator",
        "unregister_allocator",
        "unregister_allocator",
        "register_allocator",
    ]
    assert scenario.steps[6].spid == 5 and scenario.steps[6].set == "priv"


def test_every_op_has_a_key_table_and_only_step_keys_in_it() -> None:
    assert set(_OP_KEYS) == set(get_args(Op))
    for required, optional in _OP_KEYS.values():
        assert required | optional <= _STEP_KEYS
        assert not required & optional
        assert required <= _STEP_WHAT.keys()  # a missing key's message says what it is


# ---------------------------------------------------------------------------- files


def test_a_toml_syntax_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n[platform\ncapacity = 4\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    error = caught.value
    assert error.source == str(path)
    assert error.key_path == ""
    assert str(error).startswith(f"{path}: line 2, column 10: invalid TOML: ")


def test_a_toml_error_at_the_end_still_gets_a_position(tmp_path: Path) -> None:
    path = tmp_path / "cut.toml"
    path.write_text('name = "x"\nseed = ', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"line 2, column 8 \(end of file\): invalid TOML: "):
        load_scenario(path)


def test_a_file_that_is_not_utf8_is_refused_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "x"\ndescription = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match=r"line 2, column 19: expected UTF-8 text"):
        load_scenario(path)


def test_a_missing_file_is_a_clear_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}: no such file"
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)


def test_problems_in_a_file_name_that_file(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\n[[steps]]\nop = "service"\nunit = "u"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(str(path))
    assert str(caught.value) == f"{path}: steps[0].unit: no unit named 'u' (known: none declared)"


def test_a_scenario_error_survives_pickling() -> None:
    error = _error(("steps[2].device", "dsa9"), ("seed", -1))
    copy_ = pickle.loads(pickle.dumps(error))
    assert type(copy_) is ScenarioError
    assert (copy_.source, copy_.problems, str(copy_)) == (error.source, error.problems, str(error))


def test_the_input_mapping_is_not_changed() -> None:
    doc = _base()
    before = copy.deepcopy(doc)
    parse_scenario(doc, "t.toml")
    assert doc == before


def test_the_null_set_search_example_loads() -> None:
    scenario = load_scenario(EXAMPLES / "null-set-search.toml")
    assert scenario.name == "null-set-search"
    p = scenario.platform
    sva = [s for s in p.sets if s.sva]
    assert [s.name for s in sva] == ["sva"]
    domains = {d.name: d for d in p.domains}
    assert domains["proc-42-sva"] == DomainSpec(name="proc-42-sva", owner="proc-42", sets=("sva",))
    assert domains["idxd-aux"] == DomainSpec(name="idxd-aux", owner="idxd", sets=("idxd-private",))
    devices = {d.name: d for d in p.devices}
    assert devices["dsa0"].owner == "proc-42"
    assert devices["dsa0"].domain == "proc-42-sva"
    assert devices["idxd-vdev"].unit == devices["dsa0"].unit
    assert devices["idxd-vdev"].domain == "idxd-aux"
    alloc = next(s for s in scenario.steps if s.op == "alloc")
    assert (alloc.set, alloc.owner, alloc.address_space) == ("idxd-private", "idxd", None)
    requests = [s for s in scenario.steps if s.op == "page_requests" and s.device == "dsa0"]
    pasids = {s.pasid for s in requests}
    bind = next(s for s in scenario.steps if s.op == "bind")
    assert bind.name in pasids  # its own PASID
    assert alloc.name in pasids  # the driver-private PASID, foreign to dsa0
    assert any(isinstance(x, int) for x in pasids)  # a number nobody allocated
    assert any(s.stop_markers for s in requests)


# -- a page_requests step with another source ID


def _with_source(source_id: object, op: str = "page_requests") -> dict[str, Any]:
    step: dict[str, Any] = {"op": op, "device": "dev", "source_id": source_id}
    if op == "page_requests":
        step["pasid"] = 5
    return {
        "name": "s",
        "platform": {
            "units": [{"name": "u"}],
            "address_spaces": [{"name": "p"}],
            "devices": [{"name": "dev", "unit": "u", "source_id": 0x10, "owner": "p"}],
        },
        "steps": [step],
    }


def test_page_requests_may_carry_another_source_id() -> None:
    [step] = parse_scenario(_with_source(0x99), "t.toml").steps
    assert step.source_id == 0x99


@pytest.mark.parametrize(
    ("value", "says"),
    [(-1, "expected an integer"), (1 << 32, "expected an integer"), ("0x9", "an integer")],
)
def test_a_bad_source_id_on_a_step_is_named(value: object, says: str) -> None:
    with pytest.raises(ScenarioError, match=rf"steps\[0\]\.source_id: .*{says}"):
        parse_scenario(_with_source(value), "t.toml")


def test_only_page_requests_take_a_source_id() -> None:
    with pytest.raises(ScenarioError, match=r"steps\[0\]\.source_id: op 'unbind' takes no"):
        parse_scenario(_with_source(0x99, op="unbind"), "t.toml")
