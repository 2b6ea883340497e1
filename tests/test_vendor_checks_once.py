"""The vendor sections and source IDs are checked once per command (issue 17): the command
checks them and hands on a ``CheckedScenario``, which ``compare()`` and each run trust; a
scenario nobody checked (an API caller's own) is still checked by ``compare()`` and by each
replay, so nothing runs on a section its vendor cannot read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

import ioasid_core.scenario.vendors as vendors_module
from ioasid_core.cli import cli
from ioasid_core.compare import available_vendors, compare
from ioasid_core.guest import OptionProblem
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.replay import replay
from ioasid_core.scenario import ScenarioError, load_scenario
from ioasid_core.scenario.vendors import CheckedScenario, check_vendors
from ioasid_core.vendor_options import option_problems

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "null-set-search.toml"
VENDORS = available_vendors(new_plugin_manager().hooks)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The vendor names whose sections are checked, one entry per check."""
    seen: list[str] = []

    def counting(vendor: object, options: Mapping[str, object]) -> list[OptionProblem]:
        seen.append(str(getattr(vendor, "name", "")))
        return option_problems(vendor, options)

    monkeypatch.setattr(vendors_module, "option_problems", counting)
    return seen


def test_a_checked_scenario_is_not_checked_again_by_compare_or_its_runs(
    checks: list[str],
) -> None:
    chosen = [GenericPrq(), VENDORS["vtd"]]
    scenario = check_vendors(load_scenario(EXAMPLE), chosen)
    assert isinstance(scenario, CheckedScenario)
    assert scenario.checked_for == {"generic", "vtd"}
    assert sorted(checks) == ["generic", "vtd"]
    results = compare(scenario, chosen)
    assert len(results) == 2 * len(LookupPolicy)
    assert sorted(checks) == ["generic", "vtd"]  # no second look, in compare or a run
    assert check_vendors(scenario, chosen) is scenario


def test_an_unchecked_scenario_is_checked_by_compare_and_by_each_run(checks: list[str]) -> None:
    scenario = load_scenario(EXAMPLE)
    compare(scenario, [GenericPrq()], [LookupPolicy.GLOBAL, LookupPolicy.SET])
    # compare() once; each run gets the scenario compare() marked, so none again.
    assert checks == ["generic"]
    checks.clear()
    replay(scenario, GenericPrq())
    assert checks == ["generic"]  # a replay of an unmarked scenario checks it itself


def test_a_vendor_not_in_the_mark_is_still_checked() -> None:
    sections = (("vtd", (("prq_order", -1),)),)
    marked = CheckedScenario(name="x", vendor_options=sections, checked_for=frozenset({"generic"}))
    with pytest.raises(ScenarioError, match=r"vendor\.vtd\.prq_order"):
        compare(marked, [GenericPrq(), VENDORS["vtd"]])
    with pytest.raises(ScenarioError, match=r"vendor\.vtd\.prq_order"):
        replay(marked, VENDORS["vtd"])


def test_the_compare_command_checks_each_installed_section_once(checks: list[str]) -> None:
    result = CliRunner().invoke(cli, ["compare", str(EXAMPLE), "--vendors", "generic,vtd"])
    assert result.exit_code == 0, result.stderr
    # Every installed vendor's section once (chosen or not), then no run looks again.
    assert sorted(checks) == sorted(VENDORS)
