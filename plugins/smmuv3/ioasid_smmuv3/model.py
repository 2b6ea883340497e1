"""An Arm SMMUv3 and its masters, as far as PASIDs (SubstreamIDs, SSIDs) are concerned.

Facts modelled (kernel-facts §4, §1.9, §7):

- ``SMMU_IDR1.SSIDSIZE`` (bits 10:6) is the number of SSID bits the SMMU supports, 0..20.
- A master (endpoint) has its own PASID width, from its PCI PASID capability or firmware. Its
  SSID width is ``min(SSIDSIZE, master width)``, capped at ``CTXDESC_LINEAR_CDMAX`` = 10 bits
  (a 64 KiB linear table of 64-byte context descriptors) when the SMMU has no 2-level CD tables.
- SSID 0 carries DMA without PASID (STE.S1DSS = SSID0), so SVA PASIDs are allocated in
  ``[1, (1 << ssid_bits) - 1]``, as the SVA bind path did with ``iommu_sva_alloc_pasid``.

The SMMU's hardware description is immutable; its masters come and go (probe/release), so the
stream table (SID -> master) is a small mutable registry, as the kernel's streams rbtree is.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Mapping
from typing import Final

import attrs

from ioasid_core.plugin import (
    MAX_PASID_BITS,
    AlreadyRegisteredError,
    InvalidArgumentError,
    IoasidSet,
    IoasidSpace,
    IommuUnit,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
)

__all__ = [
    "CTXDESC_LINEAR_CDMAX",
    "IDR1_SSIDSIZE_HI",
    "IDR1_SSIDSIZE_LO",
    "MAX_SID",
    "MAX_SSID_BITS",
    "VENDOR",
    "Master",
    "Smmu",
    "SsidOverflowError",
    "alloc_sva_pasid",
    "check_sva_pasid",
    "master_ssid_bits",
    "sva_pasid_range",
]

VENDOR: Final = "smmuv3"
"""``IommuUnit.vendor`` of every SMMUv3 unit."""

IDR1_SSIDSIZE_LO: Final = 6
IDR1_SSIDSIZE_HI: Final = 10
_SSIDSIZE_MASK: Final = (1 << (IDR1_SSIDSIZE_HI - IDR1_SSIDSIZE_LO + 1)) - 1

MAX_SSID_BITS: Final = 20
"""SSIDSIZE above 20 is reserved: PCIe PASIDs have at most 20 bits."""

CTXDESC_LINEAR_CDMAX: Final = 10
"""log2(64 KiB / 64 B): the most SSID bits a linear (1-level) CD table can index."""

MAX_SID: Final = 0xFFFFFFFF
"""Stream IDs are 32 bits wide in every queue record."""

_CAP_IDR1: Final = "idr1"
_CAP_CD_2LVL: Final = "cd_2lvl"


class SsidOverflowError(InvalidArgumentError):
    """A PASID the master cannot emit: SSID 0, or wider than the master's SSID bits.

    The kernel's SVA bind answered ``-EOVERFLOW`` when the mm's existing PASID did not fit the
    device; the core has no such class, so this one refines ``InvalidArgumentError``.
    """

    errno = _errno.EOVERFLOW


def master_ssid_bits(smmu_ssid_bits: int, master_pasid_bits: int, *, cd_2lvl: bool) -> int:
    """The SSID width a master gets: the narrower of the two, capped without 2-level CD tables."""
    bits = min(smmu_ssid_bits, master_pasid_bits)
    if not cd_2lvl:
        bits = min(bits, CTXDESC_LINEAR_CDMAX)
    return bits


def _check_idr1(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise InvalidArgumentError(f"IDR1 must be a 32-bit register value, not {value!r}")
    ssidsize = value >> IDR1_SSIDSIZE_LO & _SSIDSIZE_MASK
    if ssidsize > MAX_SSID_BITS:
        raise InvalidArgumentError(
            f"IDR1 {value:#010x}: SSIDSIZE (bits {IDR1_SSIDSIZE_HI}:{IDR1_SSIDSIZE_LO}) is "
            f"{ssidsize}, above the architectural maximum of {MAX_SSID_BITS}"
        )


def _check_width(what: str, value: object, limit: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise InvalidArgumentError(f"{what} must be an int in 0..{limit}, not {value!r}")


@attrs.frozen(eq=False)
class Smmu:
    """One SMMUv3 (identity equality: it is a piece of hardware) and its registered masters.

    ``idr1`` is the raw ``SMMU_IDR1`` value; only SSIDSIZE is interpreted, the other fields are
    kept as they are. ``cd_2lvl``: 2-level CD tables are supported (the facts give no register
    bit for it, so it is a separate flag rather than a raw IDR0 value).
    """

    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    idr1: int = attrs.field(validator=_check_idr1, repr=lambda value: f"{value:#010x}")
    cd_2lvl: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    _masters: dict[int, Master] = attrs.field(factory=dict, init=False, repr=False)

    @classmethod
    def build(cls, name: str, *, ssid_bits: int, cd_2lvl: bool = False) -> Smmu:
        """An SMMU whose IDR1 holds only SSIDSIZE = ``ssid_bits``."""
        _check_width("SSIDSIZE", ssid_bits, MAX_SSID_BITS)
        return cls(name, ssid_bits << IDR1_SSIDSIZE_LO, cd_2lvl)

    @property
    def ssid_bits(self) -> int:
        """``IDR1.SSIDSIZE``: the SSID bits the SMMU itself supports."""
        return self.idr1 >> IDR1_SSIDSIZE_LO & _SSIDSIZE_MASK

    @property
    def max_master_ssid_bits(self) -> int:
        """The widest SSID any master behind this SMMU can get (its CD table format's limit)."""
        return master_ssid_bits(self.ssid_bits, MAX_PASID_BITS, cd_2lvl=self.cd_2lvl)

    # The stream table.

    def add_master(self, sid: int, *, pasid_bits: int) -> Master:
        """Probe a master: register it under its stream ID (``AlreadyRegisteredError`` if taken)."""
        master = Master(self, sid, pasid_bits)
        present = self._masters.setdefault(sid, master)
        if present is not master:
            raise AlreadyRegisteredError(
                f"{self.name}: stream ID {sid:#x} already belongs to a master "
                f"({present.pasid_bits} PASID bits)"
            )
        return master

    def remove_master(self, sid: int) -> Master:
        """Release the master of ``sid`` (``NotFoundError`` if there is none)."""
        try:
            return self._masters.pop(sid)
        except KeyError:
            raise NotFoundError(f"{self.name}: no master with stream ID {sid:#x}") from None

    def find_master(self, sid: int) -> Master | None:
        """The master of ``sid``, or None (the fault path turns None into its own error)."""
        return self._masters.get(sid)

    def master(self, sid: int) -> Master:
        """The master of ``sid``; ``NotFoundError`` naming the SMMU if there is none."""
        master = self._masters.get(sid)
        if master is None:
            raise NotFoundError(f"{self.name}: no master with stream ID {sid:#x}")
        return master

    def masters(self) -> list[Master]:
        """Every registered master, by stream ID."""
        return [self._masters[sid] for sid in sorted(self._masters)]

    # The unit the core's hooks see.

    def unit(self) -> IommuUnit:
        """The ``IommuUnit`` probed into the core: raw IDR1 and the CD-table flag as caps.

        ``pasid_bits`` is :attr:`max_master_ssid_bits`, the widest PASID any of its masters
        can use; masters are not part of the unit.
        """
        return IommuUnit(
            name=self.name,
            vendor=VENDOR,
            pasid_bits=self.max_master_ssid_bits,
            caps={_CAP_IDR1: self.idr1, _CAP_CD_2LVL: int(self.cd_2lvl)},
        )

    @classmethod
    def from_unit(cls, unit: IommuUnit) -> Smmu:
        """Read an SMMU back from its unit (no masters); refuse units that are not consistent."""
        if unit.vendor != VENDOR:
            raise InvalidArgumentError(
                f"unit {unit.name!r} is a {unit.vendor!r} unit, not {VENDOR}"
            )
        caps: Mapping[str, int] = unit.caps
        missing = [key for key in (_CAP_IDR1, _CAP_CD_2LVL) if key not in caps]
        if missing:
            raise InvalidArgumentError(f"SMMUv3 unit {unit.name!r} lacks caps {missing}")
        if caps[_CAP_CD_2LVL] not in (0, 1):
            raise InvalidArgumentError(
                f"SMMUv3 unit {unit.name!r}: cap {_CAP_CD_2LVL} is {caps[_CAP_CD_2LVL]}, not 0 or 1"
            )
        smmu = cls(unit.name, caps[_CAP_IDR1], bool(caps[_CAP_CD_2LVL]))
        if unit.pasid_bits != smmu.max_master_ssid_bits:
            raise InvalidArgumentError(
                f"SMMUv3 unit {unit.name!r}: pasid_bits is {unit.pasid_bits}, but IDR1.SSIDSIZE "
                f"{smmu.ssid_bits} and cd_2lvl={smmu.cd_2lvl} give {smmu.max_master_ssid_bits}"
            )
        return smmu


@attrs.frozen
class Master:
    """An endpoint behind ``smmu``: its stream ID and the PASID width it advertises.

    ``Smmu.add_master`` makes and registers one; a master built directly is a plain value.
    """

    smmu: Smmu
    sid: int
    pasid_bits: int

    def __attrs_post_init__(self) -> None:
        _check_width("stream ID", self.sid, MAX_SID)
        _check_width("master PASID width", self.pasid_bits, MAX_PASID_BITS)

    @property
    def ssid_bits(self) -> int:
        """The SSID bits this master may use (the kernel's ``master->ssid_bits``)."""
        return master_ssid_bits(self.smmu.ssid_bits, self.pasid_bits, cd_2lvl=self.smmu.cd_2lvl)

    def describe(self) -> str:
        """Who this master is and why it has the SSID width it has, for error messages."""
        cap = "" if self.smmu.cd_2lvl else f", linear CD table: at most {CTXDESC_LINEAR_CDMAX}"
        return (
            f"master SID {self.sid:#x} on {self.smmu.name} ({self.ssid_bits} SSID bits: "
            f"its PASID width {self.pasid_bits}, SMMU SSIDSIZE {self.smmu.ssid_bits}{cap})"
        )


def sva_pasid_range(master: Master) -> tuple[int, int]:
    """``(1, 2**ssid_bits - 1)``: the PASIDs SVA may give ``master`` (SSID 0 is DMA without PASID).

    A master with no SSID bits cannot do SVA at all: ``InvalidArgumentError`` (the kernel's
    ``max < min`` → ``-EINVAL``).
    """
    bits = master.ssid_bits
    if bits == 0:
        raise InvalidArgumentError(
            f"{master.describe()} cannot do SVA: SSID 0 is reserved for DMA without PASID "
            "and it has no other"
        )
    return 1, (1 << bits) - 1


def check_sva_pasid(master: Master, pasid: int) -> None:
    """Refuse a PASID (e.g. the mm's existing one) that ``master`` cannot emit for SVA."""
    lo, hi = sva_pasid_range(master)
    if not isinstance(pasid, int) or isinstance(pasid, bool) or not lo <= pasid <= hi:
        raise SsidOverflowError(
            f"PASID {pasid!r} is outside [{lo:#x}, {hi:#x}] for {master.describe()}"
            + (": SSID 0 is reserved for DMA without PASID" if pasid == 0 else "")
        )


def alloc_sva_pasid(
    space: IoasidSpace, sva_set: IoasidSet, master: Master, private: object = None
) -> int:
    """Allocate an SVA PASID that ``master`` can emit, from ``sva_set`` of ``space``.

    The range is :func:`sva_pasid_range`, clipped to the space's capacity (a PASID must exist in
    both). When no ID is left in it the ``NoSpaceError`` names the master and its width; like
    every failed core call it changes nothing. Quota errors are the set's, passed on unchanged.
    """
    lo, hi = sva_pasid_range(master)
    top = min(hi, space.capacity - 1)
    if top < lo:
        raise NoSpaceError(
            f"{master.describe()}: the space holds IDs 0..{space.capacity - 1:#x} only, "
            "none of them an SVA PASID"
        )
    try:
        return space.alloc(sva_set, lo, top, private)
    except QuotaExceededError:
        raise
    except NoSpaceError as exc:
        raise NoSpaceError(
            f"no SVA PASID left in [{lo:#x}, {top:#x}] for {master.describe()}: {exc}"
        ) from exc
