"""``ioasid new-plugin``: the skeleton it writes installs out of tree and conforms.

Installing it for real is CI's job (``.ci/run``: from a temporary directory, the documented
way); here the written package is imported from its directory and given an entry point.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ioasid_core.markers import ENTRY_POINT_GROUP
from ioasid_core.skeleton import skeleton_files
from ioasid_core.testing import assert_conforms, invoke_cli

EXPECTED = {
    "pyproject.toml",
    "README.md",
    "ioasid_demo_vt/__init__.py",
    "ioasid_demo_vt/plugin.py",
    "ioasid_demo_vt/vendor.py",
    "ioasid_demo_vt/py.typed",
    "tests/test_demo_vt.py",
}


@pytest.fixture
def skeleton(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    dest = tmp_path / "demo"
    result = invoke_cli("new-plugin", "demo_vt", "--dir", str(dest))
    assert result.exit_code == 0, result.stderr
    monkeypatch.syspath_prepend(str(dest))
    yield dest
    for module in [m for m in sys.modules if m.startswith("ioasid_demo_vt")]:
        del sys.modules[module]


def test_it_writes_a_package_tests_and_a_pyproject_without_workspace_paths(
    skeleton: Path,
) -> None:
    written = {str(p.relative_to(skeleton)) for p in skeleton.rglob("*") if p.is_file()}
    assert written == EXPECTED
    project = tomllib.loads((skeleton / "pyproject.toml").read_text())
    assert project["project"]["name"] == "ioasid-demo-vt"
    assert project["project"]["dependencies"] == ["ioasid-core>=0.1,<0.2"]
    assert project["project"]["entry-points"]["ioasid"] == {"demo_vt": "ioasid_demo_vt.plugin"}
    assert "uv" not in project.get("tool", {})  # nothing that only resolves in our workspace


def test_the_written_vendor_conforms_and_compare_runs_it(
    skeleton: Path, install: Callable[..., None]
) -> None:
    from ioasid_demo_vt import DemoVtPrq  # type: ignore[import-not-found]

    assert_conforms(DemoVtPrq(), requests=[], replays=True)
    install(
        importlib.metadata.EntryPoint(
            name="demo_vt", value="ioasid_demo_vt.plugin", group=ENTRY_POINT_GROUP
        )
    )
    result = invoke_cli("compare", "null-set-search", "--vendors", "demo-vt", "--policies", "set")
    assert result.exit_code == 0, result.stderr
    assert "demo-vt" in result.stdout


def test_the_written_sources_pass_the_linter(skeleton: Path) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    checked = subprocess.run(
        [
            str(ruff),
            "check",
            "--isolated",
            "--line-length",
            "100",
            "--select",
            "E,F,W,I,B,UP",
            str(skeleton),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=skeleton,  # so its own package sorts as first party, as in its own checkout
    )
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("name", ["Acme", "1acme", "ac-me", "acme/../x", "", "a" * 41], ids=repr)
def test_a_bad_name_is_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    result = invoke_cli("new-plugin", name, "--dir", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert f"plugin name {name!r}: expected a lower-case identifier" in result.stderr
    assert not (tmp_path / "x").exists()


def test_an_existing_directory_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "mine.txt").write_text("keep")
    result = invoke_cli("new-plugin", "acme", "--dir", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "exists already" in result.stderr
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["mine.txt"]


def test_the_files_name_the_plugin_everywhere() -> None:
    files = skeleton_files("acme_vt")
    assert 'name="acme-vt"' in files["ioasid_acme_vt/plugin.py"]
    assert "class AcmeVtPrq(RowVendorMixin)" in files["ioasid_acme_vt/vendor.py"]
    assert "$" not in files["ioasid_acme_vt/vendor.py"]


def test_the_next_step_names_the_directory_absolutely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The install runs from the ioasid checkout: a path relative to where new-plugin ran
    would point elsewhere there."""
    monkeypatch.chdir(tmp_path)
    result = invoke_cli("new-plugin", "acme", "--dir", "sub/acme")
    assert result.exit_code == 0, result.stderr
    assert (
        f"next, from the ioasid checkout: uv pip install -e {tmp_path / 'sub' / 'acme'}\n"
    ) in result.stdout
