"""Owners are declared: a typo in a device's ``owner`` would silently change the cross-owner
counts, so every owner named must be an address space, a VM or one of ``platform.owners``."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.scenario import ScenarioError, parse_scenario

BASE: dict[str, Any] = {
    "name": "o",
    "platform": {
        "units": [{"name": "u"}],
        "owners": ["idxd"],
        "address_spaces": [{"name": "proc-a"}],
        "vms": [{"name": "vm-1"}],
        "sets": [{"name": "s"}],
        "domains": [{"name": "d", "owner": "proc-a"}],
        "devices": [
            {"name": "a", "unit": "u", "source_id": 1, "owner": "proc-a"},
            {"name": "b", "unit": "u", "source_id": 2, "owner": "idxd"},
            {"name": "c", "unit": "u", "source_id": 3, "owner": "vm-1"},
        ],
    },
    "steps": [{"op": "alloc", "set": "s", "owner": "idxd", "name": "x"}],
}


def edited(where: str, owner: object) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    section, index, key = where.split(".")
    target = doc["platform"] if section != "steps" else doc
    target[section if section != "steps" else "steps"][int(index)][key] = owner
    return doc


def test_address_spaces_vms_and_declared_owners_are_owners() -> None:
    parse_scenario(BASE, "t.toml")


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("devices.0.owner", "platform.devices[0].owner"),
        ("domains.0.owner", "platform.domains[0].owner"),
        ("steps.0.owner", "steps[0].owner"),
    ],
)
def test_an_undeclared_owner_is_named_with_its_key_path(where: str, path: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(edited(where, "proc-aa"), "t.toml")
    assert [(p.key_path, p.expected) for p in caught.value.problems] == [
        (
            path,
            "no owner named 'proc-aa': an owner is an address space, a VM or one of "
            "platform.owners (declared: idxd, proc-a, vm-1)",
        )
    ]


def test_platform_owners_takes_non_empty_strings() -> None:
    doc = copy.deepcopy(BASE)
    doc["platform"]["owners"] = ["idxd", 3, ""]
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(doc, "t.toml")
    assert [p.key_path for p in caught.value.problems] == [
        "platform.owners[1]",
        "platform.owners[2]",
    ]


def test_a_generators_owner_is_reported_at_the_generator() -> None:
    doc = copy.deepcopy(BASE)
    doc["generators"] = [
        {
            "kind": "driver_pasids",
            "at": 1,
            "set": "s",
            "owner": "idxx",
            "count": 3,
            "live": 1,
            "interval": 2,
        }
    ]
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(doc, "t.toml")
    assert [p.key_path for p in caught.value.problems] == ["generators[0].owner"]


def test_the_command_exits_2_naming_the_owner(tmp_path: Any) -> None:
    path = tmp_path / "o.toml"
    path.write_text(
        'name = "o"\n[platform]\nunits = [{ name = "u" }]\naddress_spaces = [{ name = "proc-a" }]\n'
        'devices = [{ name = "a", unit = "u", source_id = 1, owner = "proc-aa" }]\n'
    )
    result = CliRunner().invoke(cli, ["compare", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"ioasid: {path}: platform.devices[0].owner: no owner named 'proc-aa': an owner is an "
        "address space, a VM or one of platform.owners (declared: proc-a)\n"
    )
