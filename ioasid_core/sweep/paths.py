"""Dotted key paths into a scenario document: ``platform.units[0].queue_entries``.

An axis of a sweep names the place in the base scenario's TOML it changes. The path is
checked against the base document before anything runs: every table and array on the way
must be there (a typo is named, with what the document has at that place); the last key may
be new (an optional key the base leaves out), and the scenario loader then checks it like
any other key.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Final

__all__ = [
    "KeyPath",
    "PathError",
    "apply",
    "base_value",
    "parse_path",
    "resolve_problem",
    "show_path",
]

Segment = str | int
"""A table key or an array index."""

KeyPath = tuple[Segment, ...]

_SEGMENT: Final = re.compile(r"(?P<key>[A-Za-z0-9_-]+)(?P<indices>(\[\d+\])*)")
_INDEX: Final = re.compile(r"\[(\d+)\]")


class PathError(ValueError):
    """A key path that is not well formed, or leads nowhere in the base document."""


def parse_path(text: str) -> KeyPath:
    """``a.b[2].c`` to ``("a", "b", 2, "c")``; ``PathError`` if it is not well formed."""
    if not text:
        raise PathError("expected a key path such as platform.units[0].queue_entries, got ''")
    path: list[Segment] = []
    for part in text.split("."):
        found = _SEGMENT.fullmatch(part)
        if found is None:
            raise PathError(
                f"{text!r} is not a key path: each part is a bare key (letters, digits, _ and -) "
                "with optional [N] indices, parts joined by dots"
            )
        path.append(found["key"])
        path += [int(index) for index in _INDEX.findall(found["indices"])]
    if isinstance(path[-1], int):
        raise PathError(f"{text!r} ends with an index: name the key of the array element")
    return tuple(path)


def show_path(path: Sequence[Segment]) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            out += f".{segment}" if out else segment
    return out


def resolve_problem(document: Mapping[str, object], path: KeyPath) -> str | None:
    """What is wrong with ``path`` in ``document``, or None if a value can be set there."""
    node: object = document
    for depth, segment in enumerate(path[:-1]):
        here = show_path(path[: depth + 1])
        if isinstance(segment, int):
            if not isinstance(node, list):
                return f"{show_path(path[:depth]) or 'the document'} is not an array"
            if segment >= len(node):
                return f"{here}: the base scenario has {len(node)} element(s) there"
            node = node[segment]
        else:
            if not isinstance(node, Mapping):
                return f"{show_path(path[:depth])} is not a table"
            if segment not in node:
                keys = ", ".join(sorted(node)) or "none"
                return f"{here}: no such key in the base scenario (it has: {keys})"
            node = node[segment]
    if not isinstance(node, Mapping):
        return f"{show_path(path[:-1])} is not a table"
    return None


def apply(
    document: Mapping[str, object], changes: Sequence[tuple[KeyPath, object]]
) -> dict[str, object]:
    """A deep copy of ``document`` with each ``(path, value)`` set (paths checked already)."""
    out: dict[str, object] = copy.deepcopy(dict(document))
    for path, value in changes:
        node: object = out
        for segment in path[:-1]:
            node = node[segment]  # type: ignore[index]
        assert isinstance(node, MutableMapping)
        node[path[-1]] = copy.deepcopy(value)
    return out


def base_value(document: Mapping[str, object], path: KeyPath) -> object | None:
    """The base document's value at ``path`` (checked already), or None if it has none."""
    node: object = document
    for segment in path:
        if isinstance(segment, int):
            node = node[segment]  # type: ignore[index]
        else:
            assert isinstance(node, Mapping)
            if segment not in node:
                return None
            node = node[segment]
    return node
