"""The SMMU model: SSID widths, the stream table, SVA PASID allocation, the IommuUnit."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core import (
    AlreadyRegisteredError,
    Event,
    InvalidArgumentError,
    IoasidSet,
    IoasidSpace,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
)
from ioasid_core.plugin import IommuUnit
from ioasid_smmuv3 import plugin
from ioasid_smmuv3.model import (
    CTXDESC_LINEAR_CDMAX,
    Master,
    Smmu,
    SsidOverflowError,
    alloc_sva_pasid,
    check_sva_pasid,
    master_ssid_bits,
    sva_pasid_range,
)

# SSID width rules.


@pytest.mark.parametrize(
    ("smmu_bits", "master_bits", "cd_2lvl", "expected"),
    [
        (20, 20, True, 20),  # both 20, 2-level CD tables: no cap
        (20, 20, False, 10),  # linear CD table: capped at CTXDESC_LINEAR_CDMAX
        (8, 20, False, 8),  # the SMMU is the narrower
        (16, 5, True, 5),  # the master is the narrower
        (16, 12, False, 10),  # min is 12, then the cap
        (11, 11, False, 10),
        (10, 10, False, 10),  # exactly the cap
        (0, 20, True, 0),  # an SMMU without substreams
        (12, 0, True, 0),  # a master without PASID
    ],
)
def test_master_ssid_bits(smmu_bits: int, master_bits: int, cd_2lvl: bool, expected: int) -> None:
    assert master_ssid_bits(smmu_bits, master_bits, cd_2lvl=cd_2lvl) == expected
    smmu = Smmu.build("smmu0", ssid_bits=smmu_bits, cd_2lvl=cd_2lvl)
    assert smmu.add_master(0x10, pasid_bits=master_bits).ssid_bits == expected


@given(st.integers(0, 20), st.integers(0, 20), st.booleans())
def test_ssid_bits_is_the_min_capped_without_two_level_tables(
    smmu_bits: int, master_bits: int, cd_2lvl: bool
) -> None:
    master = Master(Smmu.build("s", ssid_bits=smmu_bits, cd_2lvl=cd_2lvl), 1, master_bits)
    bits = master.ssid_bits
    assert bits <= smmu_bits and bits <= master_bits
    if cd_2lvl:
        assert bits == min(smmu_bits, master_bits)
    else:
        assert bits == min(smmu_bits, master_bits, CTXDESC_LINEAR_CDMAX)


# IDR1 and the SMMU itself.


def test_ssidsize_is_read_from_idr1_bits_10_to_6_and_other_bits_are_kept() -> None:
    # IDR1 = 0x510 = 0b101_0001_0000: bits 10:6 = 0b10100 = 20 (0x510 >> 6 = 0x14, & 0x1F = 20);
    # bits 5:0 = 0x10 belong to another field, which the model keeps but does not read.
    smmu = Smmu("smmu0", 0x510, cd_2lvl=True)
    assert smmu.ssid_bits == 20
    assert smmu.idr1 == 0x510
    assert smmu.max_master_ssid_bits == 20
    # build() writes only SSIDSIZE: 16 << 6 = 0x400.
    assert Smmu.build("smmu1", ssid_bits=16).idr1 == 0x400


@pytest.mark.parametrize("idr1", [21 << 6, 31 << 6, (21 << 6) | 0x3F])
def test_ssidsize_above_20_is_refused_naming_the_field(idr1: int) -> None:
    with pytest.raises(InvalidArgumentError, match=r"SSIDSIZE \(bits 10:6\) is (21|31), above"):
        Smmu("smmu0", idr1)


@pytest.mark.parametrize("idr1", [-1, 1 << 32, True])
def test_idr1_must_be_a_32_bit_value(idr1: int) -> None:
    with pytest.raises(InvalidArgumentError, match="32-bit register"):
        Smmu("smmu0", idr1)


@pytest.mark.parametrize("bits", [-1, 21])
def test_build_refuses_an_ssidsize_out_of_range(bits: int) -> None:
    with pytest.raises(InvalidArgumentError, match=r"SSIDSIZE must be an int in 0\.\.20"):
        Smmu.build("smmu0", ssid_bits=bits)


def test_without_two_level_tables_no_master_exceeds_10_bits() -> None:
    assert Smmu.build("a", ssid_bits=20).max_master_ssid_bits == 10
    assert Smmu.build("b", ssid_bits=20, cd_2lvl=True).max_master_ssid_bits == 20
    assert Smmu.build("c", ssid_bits=7).max_master_ssid_bits == 7


# The stream table.


def test_masters_are_registered_by_stream_id() -> None:
    smmu = Smmu.build("smmu0", ssid_bits=16, cd_2lvl=True)
    b = smmu.add_master(0x20, pasid_bits=8)
    a = smmu.add_master(0x10, pasid_bits=20)
    assert smmu.masters() == [a, b]
    assert smmu.master(0x20) is b
    assert smmu.find_master(0x10) is a
    assert smmu.find_master(0x30) is None
    with pytest.raises(AlreadyRegisteredError, match="stream ID 0x10 already belongs"):
        smmu.add_master(0x10, pasid_bits=4)
    assert smmu.master(0x10) is a  # the refused probe replaced nothing
    assert smmu.remove_master(0x10) is a
    with pytest.raises(NotFoundError, match="smmu0: no master with stream ID 0x10"):
        smmu.master(0x10)
    with pytest.raises(NotFoundError, match="stream ID 0x10"):
        smmu.remove_master(0x10)
    assert smmu.masters() == [b]


def test_the_same_stream_id_on_two_smmus_is_two_masters() -> None:
    one, two = Smmu.build("a", ssid_bits=8), Smmu.build("b", ssid_bits=8)
    assert one.add_master(1, pasid_bits=8) != two.add_master(1, pasid_bits=8)


@pytest.mark.parametrize(
    ("sid", "bits", "says"),
    [(1 << 32, 8, "stream ID"), (-1, 8, "stream ID"), (1, 21, "PASID width"), (1, -1, "PASID")],
)
def test_master_fields_are_checked(sid: int, bits: int, says: str) -> None:
    smmu = Smmu.build("smmu0", ssid_bits=8)
    with pytest.raises(InvalidArgumentError, match=says):
        smmu.add_master(sid, pasid_bits=bits)
    assert smmu.masters() == []


# The unit.


def test_unit_carries_raw_idr1_and_reads_back() -> None:
    smmu = Smmu("smmu3", 0x510)  # SSIDSIZE 20, linear CD tables
    unit = smmu.unit()
    assert unit.vendor == "smmuv3" == plugin.ioasid_vendor_info().name
    assert unit.name == "smmu3"
    assert unit.pasid_bits == 10  # the widest a master can get: min(20, 20) capped at 10
    assert dict(unit.caps) == {"idr1": 0x510, "cd_2lvl": 0}
    back = Smmu.from_unit(unit)
    assert (back.name, back.idr1, back.cd_2lvl, back.ssid_bits) == ("smmu3", 0x510, False, 20)
    assert back.masters() == []


@given(st.integers(0, 20), st.booleans(), st.integers(0, (1 << 32) - 1))
def test_unit_round_trip(ssid_bits: int, cd_2lvl: bool, other: int) -> None:
    idr1 = other & ~(0x1F << 6) | ssid_bits << 6
    smmu = Smmu("s", idr1, cd_2lvl)
    back = Smmu.from_unit(smmu.unit())
    assert (back.idr1, back.cd_2lvl, back.ssid_bits) == (idr1, cd_2lvl, ssid_bits)


@pytest.mark.parametrize(
    ("unit", "says"),
    [
        (IommuUnit(name="u", vendor="vtd", pasid_bits=10, caps={"idr1": 0}), "'vtd' unit"),
        (IommuUnit(name="u", vendor="smmuv3", pasid_bits=0, caps={"idr1": 0}), "lacks caps"),
        (
            IommuUnit(name="u", vendor="smmuv3", pasid_bits=8, caps={"idr1": 0, "cd_2lvl": 2}),
            "cd_2lvl is 2",
        ),
        (
            # SSIDSIZE 20 without 2-level tables gives 10, not 20.
            IommuUnit(name="u", vendor="smmuv3", pasid_bits=20, caps={"idr1": 0x500, "cd_2lvl": 0}),
            "pasid_bits is 20, but .* give 10",
        ),
        (
            IommuUnit(name="u", vendor="smmuv3", pasid_bits=0, caps={"idr1": 0x7C0, "cd_2lvl": 1}),
            "SSIDSIZE",
        ),
    ],
)
def test_from_unit_refuses_inconsistent_units(unit: IommuUnit, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match=says):
        Smmu.from_unit(unit)


# SVA PASIDs.


def observe(space: IoasidSpace, *sets: IoasidSet) -> object:
    return (len(space), space.available, [(s.count, s.ioasids()) for s in sets])


def test_sva_range_starts_at_1_because_ssid_0_is_dma_without_pasid() -> None:
    master = Smmu.build("smmu0", ssid_bits=5).add_master(7, pasid_bits=20)
    assert sva_pasid_range(master) == (1, 31)  # 5 bits: (1 << 5) - 1 = 31
    space = IoasidSpace(capacity=64)
    sva = space.create_set()
    assert alloc_sva_pasid(space, sva, master, private="mm") == 1  # 0 is free, but not for SVA
    assert space.find(sva, 1) == "mm"


def test_a_master_without_ssid_bits_cannot_do_sva() -> None:
    master = Smmu.build("smmu0", ssid_bits=0).add_master(7, pasid_bits=20)
    space = IoasidSpace(capacity=64)
    sva = space.create_set()
    before = observe(space, sva)
    with pytest.raises(InvalidArgumentError, match=r"master SID 0x7 on smmu0 \(0 SSID bits.*SVA"):
        alloc_sva_pasid(space, sva, master)
    with pytest.raises(InvalidArgumentError, match="cannot do SVA"):
        sva_pasid_range(master)
    assert observe(space, sva) == before


def test_allocation_beyond_the_masters_width_fails_and_changes_nothing() -> None:
    smmu = Smmu.build("smmu0", ssid_bits=16, cd_2lvl=True)
    narrow = smmu.add_master(0x10, pasid_bits=2)  # SVA PASIDs 1..3
    wide = smmu.add_master(0x11, pasid_bits=16)
    space = IoasidSpace(capacity=256)
    sva = space.create_set()
    assert [alloc_sva_pasid(space, sva, narrow) for _ in range(3)] == [1, 2, 3]
    before = observe(space, sva)
    seen: list[Event] = []
    space.subscribe(seen.append)
    with pytest.raises(
        NoSpaceError, match=r"no SVA PASID left in \[0x1, 0x3\] for master SID 0x10 on smmu0"
    ):
        alloc_sva_pasid(space, sva, narrow)
    assert observe(space, sva) == before
    assert seen == []
    assert alloc_sva_pasid(space, sva, wide) == 4  # the same set still has room for a wider one


def test_the_linear_cd_table_cap_limits_allocation() -> None:
    # SMMU and master both 20 bits, but no 2-level CD tables: PASIDs 1..0x3ff only.
    master = Smmu.build("smmu0", ssid_bits=20).add_master(1, pasid_bits=20)
    space = IoasidSpace(capacity=0x800)
    sva, other = space.create_set(), space.create_set()
    for _ in range(0x3FF):
        space.alloc(other, 1, 0x3FF)
    with pytest.raises(NoSpaceError, match=r"\[0x1, 0x3ff\].*linear CD table: at most 10"):
        alloc_sva_pasid(space, sva, master)
    assert 0x400 not in space  # free, but beyond the master's width


def test_the_range_is_clipped_to_the_space() -> None:
    master = Smmu.build("smmu0", ssid_bits=10).add_master(1, pasid_bits=10)
    space = IoasidSpace(capacity=4)
    sva = space.create_set()
    assert [alloc_sva_pasid(space, sva, master) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NoSpaceError, match=r"\[0x1, 0x3\]"):
        alloc_sva_pasid(space, sva, master)
    tiny = IoasidSpace(capacity=1)
    with pytest.raises(NoSpaceError, match="none of them an SVA PASID"):
        alloc_sva_pasid(tiny, tiny.create_set(), master)


def test_quota_errors_pass_through_unchanged() -> None:
    master = Smmu.build("smmu0", ssid_bits=8).add_master(1, pasid_bits=8)
    space = IoasidSpace(capacity=64)
    sva = space.create_set(quota=1)
    alloc_sva_pasid(space, sva, master)
    with pytest.raises(QuotaExceededError) as info:
        alloc_sva_pasid(space, sva, master)
    assert "SVA" not in str(info.value)


@pytest.mark.parametrize(("pasid", "ok"), [(0, False), (1, True), (0xFF, True), (0x100, False)])
def test_check_sva_pasid(pasid: int, ok: bool) -> None:
    master = Smmu.build("smmu0", ssid_bits=8).add_master(3, pasid_bits=12)  # 8 SSID bits
    if ok:
        check_sva_pasid(master, pasid)
        return
    with pytest.raises(SsidOverflowError, match=rf"PASID {pasid} is outside \[0x1, 0xff\]") as info:
        check_sva_pasid(master, pasid)
    assert info.value.errno == errno.EOVERFLOW
    assert ("reserved for DMA without PASID" in str(info.value)) == (pasid == 0)
