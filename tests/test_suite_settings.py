"""The suite's settings (the repository's ``conftest.py``): no pass or fail depends on how fast
the machine is or on what the caller's shell exports, and CI draws the same examples every
run."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]


def test_the_profile_is_cis_in_ci_and_the_projects_elsewhere() -> None:
    wanted = "ci" if os.environ.get("CI") else "ioasid-dev"
    assert settings.get_current_profile_name() == wanted


def test_no_profile_times_an_example_or_the_drawing_of_examples() -> None:
    for profile in (settings(), settings.get_profile("ci"), settings.get_profile("ioasid-dev")):
        assert profile.deadline is None
        assert HealthCheck.too_slow in profile.suppress_health_check


def test_ci_draws_the_same_examples_every_run_and_keeps_none() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.database is None


@settings(max_examples=3)  # as the plugins' tests write theirs: the rest from the profile
@given(st.integers())
def test_a_tests_own_settings_keep_the_profiles_deadline(n: int) -> None:
    assert settings().deadline is None


def test_no_test_sets_a_deadline_of_its_own() -> None:
    """A ``deadline=`` other than None in any test module would time that test again."""
    timed: list[str] = []
    for path in sorted(ROOT.glob("**/tests/**/*.py")):
        if ".venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.keyword) and node.arg == "deadline"):
                continue
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                timed.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
    assert timed == []


def test_the_callers_terminal_colour_and_plugin_choices_do_not_reach_the_tests() -> None:
    # With COLUMNS=40, FORCE_COLOR=1 or IOASID_BLOCK_PLUGINS=vtd exported, tests failed that
    # CI passes: tables wrapped, escape codes in plain text, a vendor missing.
    for name in ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "IOASID_BLOCK_PLUGINS"):
        assert name not in os.environ, name
