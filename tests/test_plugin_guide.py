"""docs/writing-a-plugin.md says what a stranger needs and only what is true: the row
layouts it prints are the objects' fields in order, and its code imports only the door
(``ioasid_core.plugin``) and the kit (``ioasid_core.testing``)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from ioasid_core.plugin import PageRequest, PageResponse

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"


def _text() -> str:
    return " ".join(GUIDE.read_text().split())  # lines joined, as a reader reads them


def test_the_row_layouts_it_prints_are_the_objects_fields_in_order() -> None:
    for row, cls in (("RequestRow", PageRequest), ("ResponseRow", PageResponse)):
        found = re.search(rf"a `{row}` is `\(([^)]*)\)`", _text(), re.IGNORECASE)
        assert found is not None, row
        printed = [name.strip() for name in found[1].split(",")]
        assert printed == [field.name for field in attrs.fields(cls)], row


def test_its_code_imports_only_the_door_and_the_kit() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    imported = {m for block in blocks for m in re.findall(r"^from (ioasid_core\S*)", block, re.M)}
    assert imported == {"ioasid_core.plugin", "ioasid_core.testing"}
