"""Every registered generator kind is documented in docs/scenarios.md, under its own heading,
with a complete file that loads and expands that kind (issue 17: a new kind is one module and
one line in ``GENERATORS``; this test makes the page follow)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ioasid_core.scenario import parse_scenario
from ioasid_core.scenario.generators import GENERATORS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()


def _section(kind: str) -> str:
    """The text under ``### `<kind>`...`` up to the next heading."""
    found = re.search(rf"^### `{kind}`.*?(?=^##)", DOC, re.S | re.M)
    assert found, f"docs/scenarios.md has no '### `{kind}`' section"
    return found.group(0)


def test_the_table_registers_the_kinds_the_loader_names() -> None:
    assert list(GENERATORS) == [kind.name for kind in GENERATORS.values()]
    assert len(GENERATORS) >= 7


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_each_kind_has_a_complete_example_that_loads_and_expands_it(kind: str) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", _section(kind), re.S)
    complete = [b for b in blocks if b.lstrip().startswith("name =")]
    assert complete, f"the {kind!r} section shows no complete file (one starting with name =)"
    data = tomllib.loads(complete[0])
    entries = data["generators"]
    assert isinstance(entries, list)
    mine = [i for i, entry in enumerate(entries) if entry["kind"] == kind]
    assert mine, f"the {kind!r} example has no generator of that kind"
    scenario = parse_scenario(data, "docs/scenarios.md")
    for index in mine:
        assert any(step.where.startswith(f"generators[{index}]/") for step in scenario.steps)


def test_a_kind_missing_from_the_page_is_found() -> None:
    with pytest.raises(AssertionError, match="no '### `no_such_kind`' section"):
        _section("no_such_kind")
