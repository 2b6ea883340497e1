"""Every generator expands as it did before the scenario package was split (issue 17): the
examples and ``tests/data/expansions/all-kinds.toml`` (every kind, seeded both ways) load
into the same steps, platform and options as recorded from the old loader by
``tests/data/expansions/record.py``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from ioasid_core.scenario import load_scenario

HERE = Path(__file__).resolve().parent / "data" / "expansions"


def _recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("expansions_record", HERE / "record.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECORD = _recorder()
EXPECTED: dict[str, dict[str, object]] = json.loads((HERE / "expected.json").read_text())


def test_the_fixture_covers_every_source_and_every_generator_kind() -> None:
    names = {str(p.relative_to(RECORD.ROOT)) for p in RECORD.sources()}
    # Examples added later are not in it (recording them needs the loader before the split).
    assert set(EXPECTED) <= names
    assert "tests/data/expansions/all-kinds.toml" in EXPECTED
    text = (HERE / "all-kinds.toml").read_text()
    from ioasid_core.scenario.generators import GENERATORS

    for kind in GENERATORS:
        assert f'kind = "{kind}"' in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_same_file_and_seed_load_into_the_same_steps(name: str) -> None:
    scenario = load_scenario(RECORD.ROOT / name)
    assert RECORD.figures(scenario) == EXPECTED[name]
