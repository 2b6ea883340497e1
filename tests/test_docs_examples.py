"""The complete scenario files shown in docs/scenarios.md load and replay without step
errors (a reader copies them first; they must not rot)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ioasid_core.prq import GenericPrq
from ioasid_core.replay import replay
from ioasid_core.scenario import parse_scenario

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
COMPLETE = [block for block in BLOCKS if block.lstrip().startswith("name =")]


def test_the_page_shows_complete_files() -> None:
    assert len(COMPLETE) >= 3


@pytest.mark.parametrize("text", COMPLETE, ids=[b.split('"')[1] for b in COMPLETE])
def test_each_complete_file_loads_and_replays_cleanly(text: str) -> None:
    scenario = parse_scenario(tomllib.loads(text), "docs/scenarios.md")
    assert not replay(scenario, GenericPrq()).metrics.step_errors
