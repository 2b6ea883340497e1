"""The pluggy project name, the entry-point group and the hook markers.

Kept apart from ``hookspecs`` so that a vendor plugin can import ``hookimpl`` without pulling in
the spec module (and, through its annotations, the whole core).
"""

from __future__ import annotations

from typing import Final

import pluggy

__all__ = ["ENTRY_POINT_GROUP", "PROJECT", "hookimpl", "hookspec"]

PROJECT: Final = "ioasid"
"""The pluggy project name: hook functions are named ``ioasid_*``."""

ENTRY_POINT_GROUP: Final = "ioasid"
"""Vendor distributions declare ``[project.entry-points.ioasid] <name> = "<module>"``."""

hookspec: Final = pluggy.HookspecMarker(PROJECT)
hookimpl: Final = pluggy.HookimplMarker(PROJECT)
