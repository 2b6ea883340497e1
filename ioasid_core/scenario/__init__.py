"""Scenario files: the TOML schema, loading with key-path errors (issue "Scenarios, replay
and `ioasid compare`")."""

from ioasid_core.scenario.load import (
    ScenarioError,
    ScenarioProblem,
    load_scenario,
    parse_scenario,
)
from ioasid_core.scenario.schema import (
    AddressSpaceSpec,
    DeviceSpec,
    DomainSpec,
    GeneratedProcesses,
    PlatformSpec,
    Scenario,
    SetSpec,
    Step,
    UnitSpec,
    VmSpec,
)

__all__ = [
    "AddressSpaceSpec",
    "DeviceSpec",
    "DomainSpec",
    "GeneratedProcesses",
    "PlatformSpec",
    "Scenario",
    "ScenarioError",
    "ScenarioProblem",
    "SetSpec",
    "Step",
    "UnitSpec",
    "VmSpec",
    "load_scenario",
    "parse_scenario",
]
