"""Bundled plugins import only the core's public door (``ioasid_core.plugin``; their tests
also the kit, ``ioasid_core.testing``; both also the SPEC.md names of ``ioasid_core``).

Every plugin directory under ``plugins/`` and ``examples/plugins/`` is scanned, so a new one
is held to the rule from its first commit. A plugin listed in ``CONVERTING`` is expected to
fail, strictly, so converting one without taking it off the list fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ioasid_core
import ioasid_core.plugin
import ioasid_core.testing

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(
    path.parent
    for path in [
        *ROOT.glob("plugins/*/pyproject.toml"),
        *ROOT.glob("examples/plugins/*/pyproject.toml"),
    ]
)
CONVERTING: frozenset[str] = frozenset()
"""Plugins whose imports are still being converted to the door (none now); their scan is
expected to fail, strictly."""

PUBLIC = {
    "ioasid_core": frozenset(ioasid_core.__all__),
    "ioasid_core.plugin": frozenset(ioasid_core.plugin.__all__),
}
PUBLIC_TO_TESTS = {**PUBLIC, "ioasid_core.testing": frozenset(ioasid_core.testing.__all__)}


def violations(path: Path, public: dict[str, frozenset[str]]) -> list[str]:
    """Each import of the core in ``path`` that goes around the door, as ``file:line: what``."""
    found: list[str] = []
    where = path.relative_to(ROOT)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ioasid_core") and alias.name not in public:
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module == "ioasid_core" or module.startswith("ioasid_core."):
                allowed = public.get(module)
                if allowed is None:
                    found.append(f"{where}:{node.lineno}: from {module} import ...")
                    continue
                for alias in node.names:
                    if alias.name not in allowed:
                        found.append(f"{where}:{node.lineno}: {alias.name} is not in {module}")
    return found


def plugin_violations(plugin: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(plugin.rglob("*.py")):
        in_tests = "tests" in path.relative_to(plugin).parts
        found += violations(path, PUBLIC_TO_TESTS if in_tests else PUBLIC)
    return found


@pytest.mark.parametrize(
    "plugin",
    [
        pytest.param(
            path,
            id=path.name,
            marks=[pytest.mark.xfail(strict=True, reason="imports not yet converted")]
            if path.name in CONVERTING
            else [],
        )
        for path in PLUGIN_DIRS
    ],
)
def test_a_bundled_plugin_imports_only_the_door(plugin: Path) -> None:
    found = plugin_violations(plugin)
    assert not found, "imports around ioasid_core.plugin:\n" + "\n".join(found)


def test_the_scan_finds_an_import_around_the_door(tmp_path: Path) -> None:
    bad = ROOT / "tests" / "_door_probe.py"  # under ROOT, as the scanned files are
    try:
        bad.write_text(
            "import ioasid_core.space\n"
            "from ioasid_core.plugin import hookimpl, IoasidSpace\n"
            "from ioasid_core.prq.vendor import VendorPrq\n"
            "from ioasid_core.plugin import replay\n"
            "from ioasid_core import IoasidSet\n"
        )
        assert violations(bad, PUBLIC) == [
            "tests/_door_probe.py:1: import ioasid_core.space",
            "tests/_door_probe.py:3: from ioasid_core.prq.vendor import ...",
            "tests/_door_probe.py:4: replay is not in ioasid_core.plugin",
        ]
    finally:
        bad.unlink()


def test_every_bundled_plugin_is_scanned() -> None:
    names = {path.name for path in PLUGIN_DIRS}
    assert {"vtd", "smmuv3", "virtio_iommu", "upstream_now"} <= names


def test_the_door_names_only_what_it_imports() -> None:
    for module in (ioasid_core.plugin, ioasid_core.testing):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_columns_allowed_checks_each_column_down_every_record() -> None:
    from ioasid_core.plugin import columns_allowed

    # Three 4-byte records; column 1 may hold 0x00 or 0x80, column 3 only 0x00.
    columns = ((1, bytes([0x00, 0x80])), (3, bytes([0x00])))
    good = bytes.fromhex("ff00aa00 ff80bb00 ff000000")
    assert columns_allowed(good, 4, columns)
    assert columns_allowed(bytearray(good), 4, columns)
    assert not columns_allowed(bytes.fromhex("ff00aa00 ff40bb00 ff000000"), 4, columns)
    assert not columns_allowed(bytes.fromhex("ff00aa00 ff80bb00 ff000001"), 4, columns)
    assert columns_allowed(b"", 4, columns)  # no record: nothing is bad
    assert columns_allowed(bytes.fromhex("ffffffff"), 4, ())  # no column: nothing to check
