"""Record what every example and ``all-kinds.toml`` load into (every step, generated ones
included, and the rest of the Scenario) in ``expected.json`` (issue 17: the split of the
scenario package must not change any generator's expansion for the same seed). The replay
reads nothing else of a file, so equal digests mean equal metrics; metrics themselves are
not recorded, since other work adds counters to them.

Run from the repository root, on the code whose behaviour is the reference:
``uv run python tests/data/expansions/record.py``. ``tests/test_scenario_expansions.py``
compares the current code against the file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import attrs

from ioasid_core.scenario import PlatformSpec, Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected.json"


def sources() -> list[Path]:
    """Every example scenario, and the file that uses every generator kind."""
    return [*sorted((ROOT / "examples").glob("*.toml")), HERE / "all-kinds.toml"]


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def figures(scenario: Scenario) -> dict[str, object]:
    """What the file loaded into, as digests and a count: every step, the platform (with
    generated processes), and the rest (name, seed, vendor sections, latency)."""
    steps = [attrs.asdict(step) for step in scenario.steps]
    rest = [scenario.name, scenario.description, scenario.seed]
    return {
        "steps": len(steps),
        "steps_sha256": _digest(steps),
        "platform_sha256": _digest(_platform_as_recorded(scenario.platform)),
        "rest_sha256": _digest([*rest, scenario.vendor_options, scenario.latency]),
    }


def _platform_as_recorded(platform: PlatformSpec) -> dict[str, object]:
    """The platform as the loader of the recording gave it: a churn's generated processes
    declared one address space each, after the declared ones (now a range per churn)."""
    fields = attrs.asdict(platform)
    ranges = fields.pop("processes", [])
    fields["address_spaces"] = [
        *fields["address_spaces"],
        *(
            {"name": f"{r['prefix']}proc{n}", "kind": "process"}
            for r in ranges
            for n in range(r["count"])
        ),
    ]
    return fields


def record() -> dict[str, dict[str, object]]:
    return {str(path.relative_to(ROOT)): figures(load_scenario(path)) for path in sources()}


if __name__ == "__main__":
    EXPECTED.write_text(json.dumps(record(), indent=2, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {EXPECTED.relative_to(ROOT)}\n")
