"""IOMMU units as plugins see them when they are probed, and what a vendor plugin is.

``IommuUnit`` is deliberately small: the platform model (a later issue) will grow it with
devices, domains and bindings. Both classes are frozen so that one plugin cannot change what the
next one sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

__all__ = ["MAX_PASID_BITS", "Capabilities", "IommuUnit", "VendorInfo"]

MAX_PASID_BITS = 20
"""PCIe allows PASIDs of up to 20 bits."""


class Capabilities(Mapping[str, int]):
    """An immutable, hashable, picklable copy of a unit's capability fields.

    ``types.MappingProxyType`` would be immutable too, but it is neither hashable (so a frozen
    ``IommuUnit`` could not be) nor picklable (so units could not cross a process pool).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, int] | None = None) -> None:
        fields = dict(items or {})
        for key, value in fields.items():
            if not isinstance(key, str) or not isinstance(value, int):
                raise TypeError(f"capability {key!r}={value!r}: expected a str name, int value")
        self._items = fields

    def __getitem__(self, key: str) -> int:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Capabilities({self._items!r})"

    def __reduce__(self) -> tuple[type[Capabilities], tuple[dict[str, int]]]:
        return (Capabilities, (self._items,))


def _to_caps(value: Mapping[str, int]) -> Capabilities:
    return value if isinstance(value, Capabilities) else Capabilities(value)


@attrs.frozen(kw_only=True)
class IommuUnit:
    """One IOMMU unit (a VT-d DMAR unit, an SMMU, a virtio-iommu device) being probed.

    ``caps`` holds vendor-specific capability fields (e.g. VT-d's ``ecap.vcs``) by name, so the
    core need not know every vendor's registers.
    """

    name: str
    vendor: str
    pasid_bits: int = attrs.field(
        validator=[
            attrs.validators.instance_of(int),
            attrs.validators.ge(0),
            attrs.validators.le(MAX_PASID_BITS),
        ]
    )
    caps: Mapping[str, int] = attrs.field(factory=Capabilities, converter=_to_caps)


@attrs.frozen(kw_only=True)
class VendorInfo:
    """What a vendor plugin drives, as ``ioasid plugins`` shows it."""

    name: str
    description: str
