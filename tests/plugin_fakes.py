"""Fake installed plugins for the isolation tests (imported as ``tests.plugin_fakes``): an
entry point of distribution ``ioasid-<name>``, and one whose plugin offers a vendor. The
``install`` fixture (conftest.py) adds them to the real entry points."""

from __future__ import annotations

import attrs

from ioasid_core.markers import ENTRY_POINT_GROUP, hookimpl
from ioasid_core.prq.vendor import VendorPrq

__all__ = ["FakeDist", "FakeEntryPoint", "VendorEntryPoint"]


@attrs.frozen
class FakeDist:
    name: str
    version: str = "0.9"


class FakeEntryPoint:
    """An installed entry point of distribution ``ioasid-<name>`` loading ``target`` (raised
    instead when it is an exception: a plugin that fails to import)."""

    def __init__(self, name: str, target: object) -> None:
        self.name = name
        self.value = f"ioasid_{name}.plugin"
        self.group = ENTRY_POINT_GROUP
        self.dist = FakeDist(f"ioasid-{name}")
        self.target = target

    def load(self) -> object:
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


class VendorEntryPoint(FakeEntryPoint):
    """An entry point whose plugin offers ``vendor`` (a new plugin object per load, as a
    real import in a fresh process gives)."""

    def __init__(self, name: str, vendor: VendorPrq) -> None:
        super().__init__(name, vendor)
        self.vendor = vendor

    def load(self) -> object:
        vendor = self.vendor

        class Plugin:
            @hookimpl
            def ioasid_prq_vendors(self) -> list[VendorPrq]:
                return [vendor]

        return Plugin()
