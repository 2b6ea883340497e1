"""PROBE properties, the virtio-iommu unit, and guest PASID tables (ATTACH_TABLE)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core import (
    AccessDeniedError,
    InvalidArgumentError,
    IoasidSpace,
    NoSpaceError,
    NotFoundError,
)
from ioasid_core.plugin import DecodeError, EncodeError
from ioasid_virtio_iommu.plugin import ioasid_vendor_info
from ioasid_virtio_iommu.probe import (
    VENDOR,
    GuestPasidTable,
    PasidSize,
    ProbeProperty,
    PropertyType,
    RawProperty,
    decode_properties,
    encode_properties,
    pasid_size,
    virtio_iommu_unit,
)

# Golden property area of 24 bytes, by hand: PASID_SIZE 16 bits, then OUTPUT_SIZE (type 4,
# kept raw) with value 30 00 00 00, then zero padding (a NONE head ends the list):
#   bytes 0..1   type 5                 -> 05 00
#   bytes 2..3   length 4               -> 04 00
#   byte  4      bits 16 = 0x10         -> 10
#   bytes 5..7   reserved               -> 00 00 00
#   bytes 8..9   type 4; 10..11 length 4 -> 04 00 04 00
#   bytes 12..15 value                  -> 30 00 00 00
#   bytes 16..23 padding                -> 00 * 8
GOLDEN = bytes.fromhex("0500 0400 10 000000 0400 0400 30000000 0000000000000000")
PROPERTIES: list[ProbeProperty] = [PasidSize(16), RawProperty(4, b"\x30\x00\x00\x00")]


def test_golden_property_list_both_ways() -> None:
    assert decode_properties(GOLDEN) == PROPERTIES
    assert encode_properties(PROPERTIES, size=24) == GOLDEN
    assert encode_properties(PROPERTIES) == GOLDEN[:16]
    assert pasid_size(decode_properties(GOLDEN)) == 16


def test_types_are_the_rfcs_numbers() -> None:
    assert int(PropertyType.PASID_SIZE) == 5
    assert [int(t) for t in PropertyType] == list(range(8))


raw_properties = st.builds(
    RawProperty,
    st.integers(1, 0xFFF).filter(lambda t: t != 5),
    st.binary(max_size=24),
)


@st.composite
def property_lists(draw: st.DrawFn) -> list[ProbeProperty]:
    props: list[ProbeProperty] = draw(st.lists(raw_properties, max_size=5))
    if draw(st.booleans()):
        props.insert(draw(st.integers(0, len(props))), PasidSize(draw(st.integers(0, 32))))
    return props


@given(property_lists(), st.integers(0, 16))
def test_property_list_round_trip(props: list[ProbeProperty], spare: int) -> None:
    raw = encode_properties(props)
    assert decode_properties(raw) == props
    padded = encode_properties(props, size=len(raw) + spare)
    assert decode_properties(padded) == props
    widths = [p.bits for p in props if isinstance(p, PasidSize)]
    assert pasid_size(decode_properties(padded)) == (widths[0] if widths else None)


def test_a_list_without_pasid_size_advertises_no_pasids() -> None:
    assert pasid_size(decode_properties(encode_properties([RawProperty(2, bytes(12))]))) is None
    assert decode_properties(bytes(64)) == []


@pytest.mark.parametrize(
    ("raw", "says", "offset"),
    [
        # Trailing bytes too short for a head must be zero.
        (GOLDEN[:16] + b"\x01\x00", "2 trailing bytes cannot hold a property head", 16),
        # A value longer than the area.
        (b"\x02\x00\x0c\x00" + bytes(8), "length (property byte 2): type 2 value of 12 bytes", 2),
        (GOLDEN[:8] + b"\x04\x00\x09\x00" + bytes(4), "overruns the area (4 bytes left)", 10),
        # PASID_SIZE: length 4, bits at most 32, reserved bytes zero, only once.
        (b"\x05\x00\x02\x00\x10\x00", "length (record byte 2): is 2, PASID_SIZE has 4", 2),
        (b"\x05\x00\x04\x00\x21\x00\x00\x00", "bits (record byte 4): 33 is more than 32", 4),
        (b"\x05\x00\x04\x00\x10\x00\x01\x00", "reserved bytes 5..7 (record byte 5): must be", 5),
        (GOLDEN[:8] * 2, "PASID_SIZE given twice (first at byte offset 0x0)", 8),
        # Type bits 15:12 are reserved.
        (b"\x05\x10\x04\x00\x10\x00\x00\x00", "reserved bits 15:12 must be zero", 0),
        # After the NONE head everything must be zero.
        (GOLDEN[:16] + bytes(4) + b"\x05\x00\x04\x00", "after the end of the list", 16),
    ],
)
def test_malformed_property_lists_are_refused(raw: bytes, says: str, offset: int) -> None:
    with pytest.raises(DecodeError, match=re.escape(says)) as info:
        decode_properties(raw)
    assert info.value.offset == offset


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: PasidSize(33), "must be 0..32"),
        (lambda: RawProperty(5, b""), "PASID_SIZE (5) is a PasidSize"),
        (lambda: RawProperty(0, b""), "must be 1..0xfff"),
        (lambda: RawProperty(0x1000, b""), "must be 1..0xfff"),
        (lambda: RawProperty(2, bytes(0x10000)), "max 65535"),
    ],
)
def test_property_values_are_checked(build: object, says: str) -> None:
    assert callable(build)
    with pytest.raises(InvalidArgumentError, match=re.escape(says)):
        build()


def test_encode_refuses_an_area_too_small() -> None:
    with pytest.raises(EncodeError, match="16 bytes do not fit a 12-byte area"):
        encode_properties(PROPERTIES, size=12)


def test_pasid_size_refuses_two_widths() -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("given 2 times: [4, 8]")):
        pasid_size([PasidSize(4), PasidSize(8)])


# The unit.


def test_unit_takes_the_pasid_width_from_probe() -> None:
    unit = virtio_iommu_unit("viommu0", {1: decode_properties(GOLDEN), 2: []})
    assert unit.vendor == VENDOR == ioasid_vendor_info().name == "virtio-iommu"
    assert unit.name == "viommu0"
    assert unit.pasid_bits == 16
    assert dict(unit.caps) == {"pasid_size": 16, "endpoints": 2, "pasid_endpoints": 1}


def test_unit_width_is_the_widest_endpoint_clamped_to_20_bits() -> None:
    unit = virtio_iommu_unit("v", {1: [PasidSize(8)], 2: [PasidSize(32)], 3: [PasidSize(5)]})
    assert unit.pasid_bits == 20
    assert unit.caps["pasid_size"] == 32
    assert unit.caps["pasid_endpoints"] == 3


def test_unit_without_pasid_size_has_no_pasids() -> None:
    unit = virtio_iommu_unit("v", {7: [RawProperty(2, bytes(12))]})
    assert unit.pasid_bits == 0
    assert unit.caps["pasid_size"] == 0


# ATTACH_TABLE: the guest allocates its PASIDs from its own space.


def test_guest_allocates_pasids_from_its_own_space() -> None:
    host = IoasidSpace(capacity=1 << 20)
    guest = IoasidSpace(capacity=1 << 20)
    table = GuestPasidTable(guest, 4, [PasidSize(8)])
    assert (table.endpoint, table.pasid_bits, table.max_pasid) == (4, 8, 255)
    first = [table.alloc(private=f"mm{i}") for i in range(3)]
    assert first == [1, 2, 3]  # lowest free first, PASID 0 kept for DMA without a PASID
    assert table.find(2) == "mm1"
    assert guest.find_set(2) is table.set
    assert len(host) == 0  # the host's space never sees guest PASIDs
    assert guest.active_allocator is None
    table.free(2)
    assert table.alloc() == 2
    assert table.pasids() == [1, 2, 3]


def test_two_endpoints_share_the_guests_pasid_space() -> None:
    guest = IoasidSpace(capacity=64)
    a = GuestPasidTable(guest, 1, [PasidSize(4)])
    b = GuestPasidTable(guest, 2, [PasidSize(4)])
    assert [a.alloc(), b.alloc(), a.alloc()] == [1, 2, 3]
    with pytest.raises(AccessDeniedError):
        a.free(2)


def test_allocation_stays_within_the_table_width() -> None:
    guest = IoasidSpace(capacity=1 << 20)
    table = GuestPasidTable(guest, 1, [PasidSize(16)], pasid_bits=2)
    assert [table.alloc() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NoSpaceError):
        table.alloc()


def test_a_guest_space_smaller_than_the_table_bounds_it() -> None:
    guest = IoasidSpace(capacity=4)
    table = GuestPasidTable(guest, 1, [PasidSize(20)])
    assert table.max_pasid == 3
    assert [table.alloc() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(NoSpaceError):
        table.alloc()


@pytest.mark.parametrize(
    ("props", "bits", "says"),
    [
        ([], None, "PROBE advertised no PASID_SIZE"),
        ([RawProperty(2, bytes(12))], 4, "advertised no PASID_SIZE"),
        ([PasidSize(8)], 9, "a 9-bit PASID table, but PASID_SIZE is 8"),
        ([PasidSize(8)], 0, "a 0-bit PASID table"),
        ([PasidSize(0)], None, "a 0-bit PASID table"),
        ([PasidSize(32)], 21, "need 1..20"),
    ],
)
def test_attach_refuses_a_table_the_endpoint_cannot_take(
    props: list[ProbeProperty], bits: int | None, says: str
) -> None:
    guest = IoasidSpace(capacity=64)
    with pytest.raises(InvalidArgumentError, match=re.escape(says)):
        GuestPasidTable(guest, 3, props, pasid_bits=bits)
    assert guest.sets() == []


def test_attach_refuses_a_guest_space_with_only_pasid_0() -> None:
    with pytest.raises(InvalidArgumentError, match="has no PASID above 0"):
        GuestPasidTable(IoasidSpace(capacity=1), 3, [PasidSize(8)])


def test_detach_frees_every_pasid_and_the_set() -> None:
    guest = IoasidSpace(capacity=64)
    table = GuestPasidTable(guest, 1, [PasidSize(5)], quota=8)
    assert guest.available == 56
    for _ in range(4):
        table.alloc()
    assert table.detach() == 4
    assert not table.attached
    assert len(guest) == 0
    assert guest.available == 64
    assert table.set.destroyed
    for call in (table.alloc, table.detach, lambda: table.free(1)):
        with pytest.raises(InvalidArgumentError, match="is detached"):
            call()
    with pytest.raises(NotFoundError):
        table.find(1)
