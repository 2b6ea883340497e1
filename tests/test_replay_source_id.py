"""A ``page_requests`` step with another source ID: a requester the driver does not know."""

from __future__ import annotations

from typing import Any

import pytest

from ioasid_core.compare import available_vendors, check_source_ids
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq
from ioasid_core.replay import replay
from ioasid_core.scenario import Scenario, ScenarioError, parse_scenario

VENDORS = available_vendors(new_plugin_manager().hooks)


def scenario(source_id: int) -> Scenario:
    doc: dict[str, Any] = {
        "name": "stranger",
        "platform": {
            "units": [{"name": "u"}],
            "address_spaces": [{"name": "p"}],
            "sets": [{"name": "sva", "sva": True}],
            "domains": [{"name": "d", "owner": "p", "sets": ["sva"]}],
            "devices": [
                {"name": "dev", "unit": "u", "source_id": 0x10, "owner": "p", "domain": "d"}
            ],
        },
        "steps": [
            {"op": "bind", "device": "dev", "set": "sva", "address_space": "p", "name": "p"},
            {"op": "page_requests", "device": "dev", "pasid": "p", "groups": 2},
            {
                "op": "page_requests",
                "device": "dev",
                "pasid": "p",
                "groups": 3,
                "source_id": source_id,
            },
        ],
    }
    return parse_scenario(doc, "t.toml")


def test_the_requests_carry_the_other_source_id() -> None:
    m = replay(scenario(0x99), GenericPrq()).metrics
    assert m.outcomes["resolved"] == 2
    assert m.outcomes["unknown_device"] == 3
    assert m.responses == {"success": 2, "invalid": 3}


def test_a_source_id_a_vendor_cannot_carry_is_refused_before_any_run() -> None:
    check_source_ids(scenario(0xFFFF), [VENDORS["vtd"]])
    with pytest.raises(ScenarioError, match=r"steps\[2\]\.source_id: vendor 'vtd' carries 16-bit"):
        check_source_ids(scenario(0x1_0000), [VENDORS["vtd"]])
