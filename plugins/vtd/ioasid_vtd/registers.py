"""VT-d unit capabilities and the virtual command (VCMD) register layouts.

Capabilities (kernel-facts §3.1, §7) are kept as the raw register values, read back typed:

- ``ECAP.PSS`` bits 39:35 (supported PASIDs = ``2 << PSS``), ``ECAP.PASID`` bit 40,
  ``ECAP.VCS`` bit 44; ``VCCAP.PAS`` bit 0 (PASID allocation through VCMD).
- ``CAP.CM`` (caching mode) is bit 7 of the capability register. The facts file names the bit
  but not its position; bit 7 is the VT-d spec's. Caching mode is how a guest recognises a
  virtual IOMMU: the kernel only registers the VCMD allocator on units with CM set (§3.1).
- The VT-d spec puts the capability register at ``0x08`` and the extended capability register
  at ``0x10``; a guest reads both to build its unit (:func:`read_unit` in ``vcmd``).

Two VCMD layouts (§3.1), selectable per unit and per guest driver:

=========  ======  ======  ======  ===================  =============  ==============
layout     VCCAP   VCMD    VCRSP   operand / result     status (SC)    no-PASID code
=========  ======  ======  ======  ===================  =============  ==============
``3.1``    0xE00   0xE10   0xE20   bits 27:8            bits 2:1       2
``3.3``    0xE30   0xE00   0xE10   bits 35:16           bits 7:1       16
=========  ======  ======  ======  ===================  =============  ==============

Command bits 7:0: 1 allocate, 2 free. VCRSP bit 0 is IP (in progress). Every other bit of VCMD
and VCRSP is reserved: a decode that finds one set names it.

Status codes emitted, and why:

- ``0`` success, both layouts.
- ``1`` undefined command, both layouts. For the 3.1 layout this is what QEMU's emulation
  answers to an unknown command (§3.1). The facts give no value for the 3.3 layout; it moved the
  command-specific code up to 16 and widened the field, which leaves 1 as the generic
  "undefined command" code, so 1 is kept (an inference, not a sourced fact).
- "No PASID available" (allocate) and "invalid PASID" (free) share one code per layout:
  ``2`` in the 3.1 layout, ``16`` in the 3.3 layout (§3.1). The v5.8 guest driver read 1 as
  "no PASID"; that was corrected to 2 per spec 3.1, so this model never emits 1 for it (a v5.8
  guest would take an undefined command for an exhausted quota, the bug the fix removed).
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from ioasid_core.plugin import (
    MAX_PASID_BITS,
    BitField,
    BitLayout,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    IommuUnit,
)

__all__ = [
    "CAP_CM",
    "CAP_OFFSET",
    "ECAP_OFFSET",
    "ECAP_PASID",
    "ECAP_PSS",
    "ECAP_VCS",
    "GUEST_VIOMMU",
    "LAYOUT_3_1",
    "LAYOUT_3_3",
    "U64_MAX",
    "VCCAP_PAS",
    "VCMD_LAYOUTS",
    "VENDOR",
    "VcmdCommand",
    "VcmdLayout",
    "VcmdResponse",
    "VtdCapabilities",
    "vtd_caps",
    "vtd_unit",
]

VENDOR: Final = "vtd"
"""``IommuUnit.vendor`` of every VT-d unit."""

U64_MAX: Final = (1 << 64) - 1

CAP_OFFSET: Final = 0x08
ECAP_OFFSET: Final = 0x10

CAP_CM: Final = BitField("cm", 0, 7, 7)
ECAP_PSS: Final = BitField("pss", 0, 35, 39)
ECAP_PASID: Final = BitField("pasid", 0, 40, 40)
ECAP_VCS: Final = BitField("vcs", 0, 44, 44)
VCCAP_PAS: Final = BitField("pas", 0, 0, 0)

PASID_LIMIT: Final = 1 << MAX_PASID_BITS
"""``PASID_MAX`` = 0x100000: the driver caps a unit's PASIDs at 20 bits (§7)."""


def _get(field: BitField, value: int) -> int:
    return value >> field.lo & field.mask


def _put(field: BitField, value: int, into: int) -> int:
    if not 0 <= value <= field.mask:
        raise EncodeError(f"{field.name}={value!r} does not fit {field.width} bits")
    return into & ~(field.mask << field.lo) | value << field.lo


def _check_u64(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value.__class__ is not int or not 0 <= value <= U64_MAX:
        raise InvalidArgumentError(
            f"{attribute.name.upper()} register value {value!r} is not a 64-bit int"
        )


@attrs.frozen
class VtdCapabilities:
    """The raw ``CAP``, ``ECAP`` and ``VCCAP`` values of a unit, read back typed.

    Raw values are kept whole (bits this model does not know survive a round trip); build one
    from typed fields with :meth:`build`.
    """

    cap: int = attrs.field(default=0, validator=_check_u64)
    ecap: int = attrs.field(default=0, validator=_check_u64)
    vccap: int = attrs.field(default=0, validator=_check_u64)

    @classmethod
    def build(
        cls,
        *,
        caching_mode: bool = False,
        pasid: bool = False,
        pss: int = 0,
        vcs: bool = False,
        pas: bool = False,
        cap: int = 0,
        ecap: int = 0,
        vccap: int = 0,
    ) -> VtdCapabilities:
        """Set the modelled fields over the raw ``cap``/``ecap``/``vccap`` given (default 0)."""
        return cls(
            cap=_put(CAP_CM, int(caching_mode), cap),
            ecap=_put(ECAP_VCS, int(vcs), _put(ECAP_PASID, int(pasid), _put(ECAP_PSS, pss, ecap))),
            vccap=_put(VCCAP_PAS, int(pas), vccap),
        )

    @property
    def caching_mode(self) -> bool:
        """CAP.CM: set by a virtual IOMMU, which must be told of every map."""
        return bool(_get(CAP_CM, self.cap))

    @property
    def pasid(self) -> bool:
        """ECAP.PASID: the unit supports PASIDs at all."""
        return bool(_get(ECAP_PASID, self.ecap))

    @property
    def pss(self) -> int:
        """ECAP.PSS: the unit supports ``2 << pss`` PASIDs."""
        return _get(ECAP_PSS, self.ecap)

    @property
    def vcs(self) -> bool:
        """ECAP.VCS: the virtual command registers exist (so VCCAP means something)."""
        return bool(_get(ECAP_VCS, self.ecap))

    @property
    def pas(self) -> bool:
        """VCCAP.PAS: PASIDs are allocated through VCMD. Only meaningful with ``vcs``."""
        return bool(_get(VCCAP_PAS, self.vccap))

    @property
    def nr_pasids(self) -> int:
        """How many PASIDs the driver may use: ``2 << PSS``, capped at ``PASID_MAX``; 0 if none."""
        return min(2 << self.pss, PASID_LIMIT) if self.pasid else 0

    @property
    def pasid_max(self) -> int:
        """The highest usable PASID (``nr_pasids - 1``; the kernel compared against the count)."""
        return self.nr_pasids - 1

    @property
    def pasid_bits(self) -> int:
        """PASID width for ``IommuUnit.pasid_bits``: ``PSS + 1``, at most 20, 0 without PASID."""
        return min(self.pss + 1, MAX_PASID_BITS) if self.pasid else 0

    @property
    def vcmd_allocator(self) -> bool:
        """A guest's vIOMMU that allocates PASIDs through VCMD (CM, PASID, VCS and PAS)."""
        return self.caching_mode and self.pasid and self.vcs and self.pas


GUEST_VIOMMU: Final = VtdCapabilities.build(
    caching_mode=True, pasid=True, pss=19, vcs=True, pas=True
)
"""A vIOMMU as QEMU advertised it with ``scalable-mode=modern``: 20-bit PASIDs, VCS + PAS."""


def vtd_unit(name: str, caps: VtdCapabilities) -> IommuUnit:
    """The ``IommuUnit`` of a VT-d unit: vendor ``vtd``, caps ``cap``/``ecap``/``vccap``."""
    return IommuUnit(
        name=name,
        vendor=VENDOR,
        pasid_bits=caps.pasid_bits,
        caps={"cap": caps.cap, "ecap": caps.ecap, "vccap": caps.vccap},
    )


def vtd_caps(unit: IommuUnit, *, missing_as_zero: bool = False) -> VtdCapabilities:
    """Read a VT-d unit's registers back typed. ``InvalidArgumentError`` for another vendor,
    or for a missing register unless ``missing_as_zero`` (a unit described only by name and
    PASID width, as a scenario may build it, then reads as a bare-metal unit)."""
    if unit.vendor != VENDOR:
        raise InvalidArgumentError(f"unit {unit.name!r} is a {unit.vendor!r} unit, not VT-d")
    if missing_as_zero:
        caps = unit.caps
        return VtdCapabilities(caps.get("cap", 0), caps.get("ecap", 0), caps.get("vccap", 0))
    missing = [key for key in ("cap", "ecap", "vccap") if key not in unit.caps]
    if missing:
        raise InvalidArgumentError(f"VT-d unit {unit.name!r} has no {', '.join(missing)} caps")
    return VtdCapabilities(unit.caps["cap"], unit.caps["ecap"], unit.caps["vccap"])


class VcmdCommand(enum.IntEnum):
    """VCMD bits 7:0."""

    ALLOC = 1
    FREE = 2


@attrs.frozen
class VcmdResponse:
    """A decoded VCRSP value."""

    in_progress: bool
    status: int
    result: int


def _decode_register(layout: BitLayout, value: int) -> dict[str, int]:
    """A register value's fields; reserved bits must be zero (the error has no byte offset)."""
    if value.__class__ is not int or not 0 <= value <= U64_MAX:
        raise DecodeError(layout.name, f"{value!r} is not a 64-bit register value")
    layout.check_reserved((value,))
    return {f.name: value >> f.lo & f.mask for f in layout.fields}


@attrs.frozen(repr=False)
class VcmdLayout:
    """Where the VCMD registers live and how their bits are laid out, for one spec revision."""

    name: str
    vccap: int
    vcmd: int
    vcrsp: int
    command: BitLayout
    response: BitLayout
    status_no_pasid: int
    """"No PASID available" (allocate) and "invalid PASID" (free)."""
    status_success: int = 0
    status_undefined: int = 1

    def __repr__(self) -> str:
        return f"<VT-d VCMD layout {self.name}>"

    @property
    def status_invalid_pasid(self) -> int:
        """The free command's failure code: the same number as "no PASID" in both layouts."""
        return self.status_no_pasid

    def encode_command(self, command: int, operand: int = 0) -> int:
        """The 64-bit VCMD value. ``EncodeError`` if a field does not fit."""
        raw = self.command.encode({"command": command, "operand": operand})
        return int.from_bytes(raw, "little")

    def decode_command(self, value: int) -> tuple[int, int]:
        """``(command, operand)``; ``DecodeError`` naming a reserved bit that is set."""
        fields = _decode_register(self.command, value)
        return fields["command"], fields["operand"]

    def encode_response(self, *, in_progress: bool, status: int = 0, result: int = 0) -> int:
        """The 64-bit VCRSP value. ``EncodeError`` if ``status``/``result`` do not fit."""
        raw = self.response.encode({"ip": int(in_progress), "status": status, "result": result})
        return int.from_bytes(raw, "little")

    def decode_response(self, value: int) -> VcmdResponse:
        """A VCRSP value decoded; ``DecodeError`` naming a reserved bit that is set."""
        fields = _decode_register(self.response, value)
        return VcmdResponse(bool(fields["ip"]), fields["status"], fields["result"])


def _layout(
    name: str, *, vccap: int, vcmd: int, vcrsp: int, lo: int, sc_hi: int, nopasid: int
) -> VcmdLayout:
    return VcmdLayout(
        name=name,
        vccap=vccap,
        vcmd=vcmd,
        vcrsp=vcrsp,
        command=BitLayout(
            f"VT-d {name} VCMD",
            8,
            [BitField("command", 0, 0, 7), BitField("operand", 0, lo, lo + 19)],
        ),
        response=BitLayout(
            f"VT-d {name} VCRSP",
            8,
            [
                BitField("ip", 0, 0, 0),
                BitField("status", 0, 1, sc_hi),
                BitField("result", 0, lo, lo + 19),
            ],
        ),
        status_no_pasid=nopasid,
    )


LAYOUT_3_1: Final = _layout("3.1", vccap=0xE00, vcmd=0xE10, vcrsp=0xE20, lo=8, sc_hi=2, nopasid=2)
"""VT-d spec 3.0/3.1, kernels v5.8-v5.14 and QEMU's RFC emulation."""

LAYOUT_3_3: Final = _layout("3.3", vccap=0xE30, vcmd=0xE00, vcrsp=0xE10, lo=16, sc_hi=7, nopasid=16)
"""VT-d spec 3.3 (§10.4.43-46), kernels v5.15 (approx) until the interface was removed (v6.4)."""

VCMD_LAYOUTS: Final = {"3.1": LAYOUT_3_1, "3.3": LAYOUT_3_3}
