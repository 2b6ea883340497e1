"""The example scenarios shipped inside the package, named without a path.

``ioasid compare null-set-search`` runs the bundled ``null-set-search.toml`` from any
directory, and an out-of-tree plugin's tests reach the same files through
:mod:`ioasid_core.testing`. A path that exists always wins over a bundled name, so a user's
own ``null-set-search.toml`` in the working directory is the one read. The checkout's
``examples/*.toml`` are links to these files, so the README's paths keep working.
"""

from __future__ import annotations

import os
from pathlib import Path

from ioasid_core.scenario.load import ScenarioError, ScenarioProblem, load_scenario
from ioasid_core.scenario.schema import Scenario

__all__ = ["BUNDLED_DIR", "bundled_scenarios", "load_named_scenario", "resolve_scenario"]

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "examples"
"""Where the bundled scenarios live: ``ioasid_core/examples``."""


def bundled_scenarios() -> dict[str, Path]:
    """Every bundled scenario by name (the file's stem), sorted by name."""
    return {path.stem: path for path in sorted(BUNDLED_DIR.glob("*.toml"))}


def resolve_scenario(name_or_path: str) -> str:
    """``name_or_path`` if it names an existing file, else the bundled scenario of that name
    (``null-set-search`` or ``null-set-search.toml``); ``ScenarioError`` if neither."""
    if os.path.exists(name_or_path):
        return name_or_path
    bundled = bundled_scenarios()
    name = name_or_path.removesuffix(".toml")
    if "/" not in name_or_path and os.sep not in name_or_path and name in bundled:
        return str(bundled[name])
    known = ", ".join(bundled) or "none"
    raise ScenarioError(
        name_or_path,
        [ScenarioProblem("", f"no such file, nor a bundled scenario of that name ({known})")],
    )


def load_named_scenario(name_or_path: str) -> Scenario:
    """Load a scenario file or a bundled scenario by name (see :func:`resolve_scenario`)."""
    return load_scenario(resolve_scenario(name_or_path))
