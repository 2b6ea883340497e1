"""VT-d capability registers and the two VCMD/VCRSP layouts, bit by bit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import DecodeError, EncodeError, InvalidArgumentError, IommuUnit
from ioasid_vtd.registers import (
    GUEST_VIOMMU,
    LAYOUT_3_1,
    LAYOUT_3_3,
    VCMD_LAYOUTS,
    VcmdCommand,
    VcmdLayout,
    VcmdResponse,
    VtdCapabilities,
    vtd_caps,
    vtd_unit,
)

U64 = st.integers(0, (1 << 64) - 1)
LAYOUTS = pytest.mark.parametrize("layout", [LAYOUT_3_1, LAYOUT_3_3], ids=["3.1", "3.3"])


# -- capabilities


def test_guest_viommu_golden_values() -> None:
    # CAP.CM is bit 7: 1 << 7 = 0x80.
    # ECAP: PSS 19 in bits 39:35 = 0x13 << 35 = 0x98_0000_0000; PASID bit 40 = 0x100_0000_0000;
    # VCS bit 44 = 0x1000_0000_0000; sum 0x1198_0000_0000.  VCCAP.PAS bit 0 = 0x1.
    assert GUEST_VIOMMU.cap == 0x80
    assert GUEST_VIOMMU.ecap == 0x1198_0000_0000
    assert GUEST_VIOMMU.vccap == 0x1
    assert GUEST_VIOMMU.caching_mode and GUEST_VIOMMU.pasid and GUEST_VIOMMU.vcs
    assert GUEST_VIOMMU.pas and GUEST_VIOMMU.vcmd_allocator
    assert GUEST_VIOMMU.pss == 19


def test_fields_read_from_raw_values() -> None:
    # ECAP 0x1080_0000_0000 = bit 44 (VCS, 0x1000_0000_0000) + bit 39 (0x80_0000_0000: the
    # top bit of PSS 39:35, so PSS = 0b10000 = 16); bit 40 (PASID) clear.
    caps = VtdCapabilities(cap=0x7F, ecap=0x1080_0000_0000, vccap=0xFFFE)
    assert not caps.caching_mode  # bits 6:0 only
    assert caps.vcs and caps.pss == 16 and not caps.pasid
    assert not caps.pas  # VCCAP bit 0 clear
    assert not caps.vcmd_allocator


@pytest.mark.parametrize(
    ("pss", "nr", "top", "bits"),
    [
        (0, 2, 1, 1),  # 2 << 0
        (4, 32, 31, 5),  # 2 << 4
        (18, 0x80000, 0x7FFFF, 19),
        (19, 0x100000, 0xFFFFF, 20),  # 2 << 19 = 2^20, PASID_MAX
        (25, 0x100000, 0xFFFFF, 20),  # capped at 20 bits
        (31, 0x100000, 0xFFFFF, 20),
    ],
)
def test_pasid_counts(pss: int, nr: int, top: int, bits: int) -> None:
    caps = VtdCapabilities.build(pasid=True, pss=pss)
    assert (caps.nr_pasids, caps.pasid_max, caps.pasid_bits) == (nr, top, bits)


def test_no_pasid_support_means_no_pasids() -> None:
    caps = VtdCapabilities.build(pasid=False, pss=19)
    assert (caps.nr_pasids, caps.pasid_bits) == (0, 0)


@given(
    cm=st.booleans(),
    pasid=st.booleans(),
    pss=st.integers(0, 31),
    vcs=st.booleans(),
    pas=st.booleans(),
    cap=U64,
    ecap=U64,
    vccap=U64,
)
def test_build_sets_fields_and_keeps_other_bits(
    *, cm: bool, pasid: bool, pss: int, vcs: bool, pas: bool, cap: int, ecap: int, vccap: int
) -> None:
    caps = VtdCapabilities.build(
        caching_mode=cm, pasid=pasid, pss=pss, vcs=vcs, pas=pas, cap=cap, ecap=ecap, vccap=vccap
    )
    assert (caps.caching_mode, caps.pasid, caps.pss, caps.vcs, caps.pas) == (
        cm,
        pasid,
        pss,
        vcs,
        pas,
    )
    assert caps.cap & ~(1 << 7) == cap & ~(1 << 7)
    ecap_fields = 0x1F << 35 | 1 << 40 | 1 << 44
    assert caps.ecap & ~ecap_fields == ecap & ~ecap_fields
    assert caps.vccap >> 1 == vccap >> 1


@given(cap=U64, ecap=U64, vccap=U64)
def test_raw_values_survive_typed_rebuild(cap: int, ecap: int, vccap: int) -> None:
    raw = VtdCapabilities(cap, ecap, vccap)
    rebuilt = VtdCapabilities.build(
        caching_mode=raw.caching_mode,
        pasid=raw.pasid,
        pss=raw.pss,
        vcs=raw.vcs,
        pas=raw.pas,
        cap=cap,
        ecap=ecap,
        vccap=vccap,
    )
    assert rebuilt == raw


@given(cap=U64, ecap=U64, vccap=U64)
def test_unit_round_trip(cap: int, ecap: int, vccap: int) -> None:
    caps = VtdCapabilities(cap, ecap, vccap)
    unit = vtd_unit("dmar3", caps)
    assert unit.vendor == "vtd" and unit.name == "dmar3"
    assert dict(unit.caps) == {"cap": cap, "ecap": ecap, "vccap": vccap}
    assert unit.pasid_bits == caps.pasid_bits
    assert vtd_caps(unit) == caps


def test_vtd_caps_refuses_other_vendors_and_missing_registers() -> None:
    with pytest.raises(InvalidArgumentError, match="'smmuv3' unit, not VT-d"):
        vtd_caps(IommuUnit(name="smmu0", vendor="smmuv3", pasid_bits=16))
    partial = IommuUnit(name="dmar0", vendor="vtd", pasid_bits=0, caps={"cap": 0x80})
    with pytest.raises(InvalidArgumentError, match="no ecap, vccap caps"):
        vtd_caps(partial)
    assert vtd_caps(partial, missing_as_zero=True) == VtdCapabilities(cap=0x80)


@pytest.mark.parametrize("value", [-1, 1 << 64, 1.0, True])
def test_raw_values_must_be_64_bit_ints(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="ECAP register value"):
        VtdCapabilities(0, value, 0)  # type: ignore[arg-type]


def test_build_refuses_a_pss_that_does_not_fit() -> None:
    with pytest.raises(EncodeError, match="pss=32 does not fit 5 bits"):
        VtdCapabilities.build(pss=32)


# -- VCMD layouts


def test_layout_offsets() -> None:
    assert (LAYOUT_3_1.vccap, LAYOUT_3_1.vcmd, LAYOUT_3_1.vcrsp) == (0xE00, 0xE10, 0xE20)
    assert (LAYOUT_3_3.vcmd, LAYOUT_3_3.vcrsp, LAYOUT_3_3.vccap) == (0xE00, 0xE10, 0xE30)
    assert VCMD_LAYOUTS == {"3.1": LAYOUT_3_1, "3.3": LAYOUT_3_3}


def test_status_codes() -> None:
    for layout in (LAYOUT_3_1, LAYOUT_3_3):
        assert (layout.status_success, layout.status_undefined) == (0, 1)
    assert LAYOUT_3_1.status_no_pasid == LAYOUT_3_1.status_invalid_pasid == 2
    assert LAYOUT_3_3.status_no_pasid == LAYOUT_3_3.status_invalid_pasid == 16


@pytest.mark.parametrize(
    ("layout", "command", "operand", "raw"),
    [
        # 3.1: command bits 7:0, operand 27:8.  FREE 0x12345: 2 | 0x12345 << 8 = 0x0123_4502.
        (LAYOUT_3_1, VcmdCommand.FREE, 0x12345, 0x0123_4502),
        (LAYOUT_3_1, VcmdCommand.ALLOC, 0, 0x1),
        # 0xFFFFF << 8 = 0xFFF_FF00, | 2 = 0xFFF_FF02.
        (LAYOUT_3_1, VcmdCommand.FREE, 0xFFFFF, 0x0FFF_FF02),
        # 3.3: operand 35:16.  0x12345 << 16 = 0x1_2345_0000, | 2 = 0x1_2345_0002.
        (LAYOUT_3_3, VcmdCommand.FREE, 0x12345, 0x1_2345_0002),
        (LAYOUT_3_3, VcmdCommand.ALLOC, 0, 0x1),
        # 0xFFFFF << 16 = 0xF_FFFF_0000, | 2.
        (LAYOUT_3_3, VcmdCommand.FREE, 0xFFFFF, 0xF_FFFF_0002),
    ],
)
def test_command_golden(layout: VcmdLayout, command: int, operand: int, raw: int) -> None:
    assert layout.encode_command(command, operand) == raw
    assert layout.decode_command(raw) == (command, operand)


@pytest.mark.parametrize(
    ("layout", "response", "raw"),
    [
        (LAYOUT_3_1, VcmdResponse(True, 0, 0), 0x1),  # IP, bit 0
        # result 0x12345 << 8 = 0x123_4500
        (LAYOUT_3_1, VcmdResponse(False, 0, 0x12345), 0x0123_4500),
        (LAYOUT_3_1, VcmdResponse(False, 2, 0), 0x4),  # status 2 in bits 2:1: 2 << 1
        (LAYOUT_3_1, VcmdResponse(False, 1, 0), 0x2),  # undefined command: 1 << 1
        (LAYOUT_3_3, VcmdResponse(True, 0, 0), 0x1),
        # 0x12345 << 16 = 0x1_2345_0000
        (LAYOUT_3_3, VcmdResponse(False, 0, 0x12345), 0x1_2345_0000),
        (LAYOUT_3_3, VcmdResponse(False, 16, 0), 0x20),  # status 16 in bits 7:1: 16 << 1
        (LAYOUT_3_3, VcmdResponse(False, 1, 0), 0x2),
        (LAYOUT_3_3, VcmdResponse(False, 127, 0), 0xFE),  # the widest status
    ],
)
def test_response_golden(layout: VcmdLayout, response: VcmdResponse, raw: int) -> None:
    encoded = layout.encode_response(
        in_progress=response.in_progress, status=response.status, result=response.result
    )
    assert encoded == raw
    assert layout.decode_response(raw) == response


@LAYOUTS
@given(command=st.integers(0, 0xFF), operand=st.integers(0, 0xFFFFF))
def test_command_round_trip(layout: VcmdLayout, command: int, operand: int) -> None:
    assert layout.decode_command(layout.encode_command(command, operand)) == (command, operand)


@LAYOUTS
@given(ip=st.booleans(), status=st.integers(0, 127), result=st.integers(0, 0xFFFFF))
def test_response_round_trip(layout: VcmdLayout, ip: bool, status: int, result: int) -> None:
    status &= layout.response.by_name["status"].mask
    raw = layout.encode_response(in_progress=ip, status=status, result=result)
    assert layout.decode_response(raw) == VcmdResponse(ip, status, result)


@LAYOUTS
@given(raw=U64)
def test_any_register_value_decodes_or_names_a_reserved_bit(layout: VcmdLayout, raw: int) -> None:
    for decode, reserved in (
        (layout.decode_command, layout.command.reserved[0]),
        (layout.decode_response, layout.response.reserved[0]),
    ):
        if raw & reserved:
            with pytest.raises(DecodeError, match="reserved bit"):
                decode(raw)
        else:
            decode(raw)


@pytest.mark.parametrize(
    ("layout", "raw", "message"),
    [
        (LAYOUT_3_1, 1 << 28, "VT-d 3.1 VCMD: reserved bit 28 of word 0 must be zero"),
        (LAYOUT_3_3, 1 << 8, "VT-d 3.3 VCMD: reserved bit 8 of word 0 must be zero"),
        (LAYOUT_3_3, 1 << 36, "VT-d 3.3 VCMD: reserved bit 36 of word 0"),
    ],
)
def test_command_reserved_bits(layout: VcmdLayout, raw: int, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        layout.decode_command(raw | 1)


@pytest.mark.parametrize(
    ("layout", "raw", "message"),
    [
        (LAYOUT_3_1, 0xF8, "VT-d 3.1 VCRSP: reserved bits 7:3 of word 0"),
        (LAYOUT_3_1, 1 << 63, "VT-d 3.1 VCRSP: reserved bit 63 of word 0"),
        (LAYOUT_3_3, 3 << 9, "VT-d 3.3 VCRSP: reserved bits 10:9 of word 0"),
    ],
)
def test_response_reserved_bits(layout: VcmdLayout, raw: int, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        layout.decode_response(raw)


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(EncodeError, match="status=4 does not fit 2 bits"):
        LAYOUT_3_1.encode_response(in_progress=False, status=4)
    with pytest.raises(EncodeError, match="operand=1048576 does not fit 20 bits"):
        LAYOUT_3_3.encode_command(VcmdCommand.FREE, 1 << 20)
    with pytest.raises(EncodeError, match="command=256"):
        LAYOUT_3_3.encode_command(0x100)
    with pytest.raises(DecodeError, match="not a 64-bit register value"):
        LAYOUT_3_3.decode_response(1 << 64)
