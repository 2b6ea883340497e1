"""The example plugin: found through its entry point, resolves by (device, PASID) only."""

from __future__ import annotations

import pytest

from ioasid_core.plugin import (
    AddressSpace,
    InvalidArgumentError,
    IoasidSpace,
    IommuUnit,
    LookupPolicy,
    PageRequest,
    PageResponse,
    Perm,
    Platform,
    PrqPipeline,
    ResponseCode,
)
from ioasid_core.testing import assert_conforms, compare, load_named_scenario, new_plugin_manager
from ioasid_upstream_now import UpstreamNowPrq, alloc_global_pasid


def test_the_plugin_is_found_through_its_entry_point() -> None:
    host = new_plugin_manager(strict=True)
    assert "upstream_now" in {p.name for p in host.loaded}
    assert isinstance(host.hooks.prq_vendors()["upstream-now"], UpstreamNowPrq)


def test_global_pasids_start_at_1_and_respect_the_device_width() -> None:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u0", vendor="upstream-now", pasid_bits=20))
    narrow = platform.add_device("d", unit="u0", source_id=1, owner="p", pasid_bits=1)
    none = platform.add_device("n", unit="u0", source_id=2, owner="p", pasid_bits=0)
    ida = space.create_set()
    assert alloc_global_pasid(space, ida, narrow) == 1
    with pytest.raises(InvalidArgumentError, match="supports no PASID"):
        alloc_global_pasid(space, ida, none)


def test_a_pasid_is_only_resolved_on_the_device_it_is_attached_to() -> None:
    space = IoasidSpace()
    platform = Platform(space)
    platform.probe_unit(IommuUnit(name="u0", vendor="upstream-now", pasid_bits=20))
    mine = platform.add_device("mine", unit="u0", source_id=1, owner="proc")
    platform.add_device("other", unit="u0", source_id=2, owner="proc")
    proc = AddressSpace("proc")
    pasid = alloc_global_pasid(space, space.create_set(), mine)
    platform.bind("mine", pasid, proc)
    pipeline = PrqPipeline(platform, "u0", UpstreamNowPrq())
    assert pipeline.policy is LookupPolicy.DEVICE
    for source in (1, 2):
        pipeline.submit(PageRequest(source, pasid, True, 0, True, Perm.READ, 0x1000))
    assert [(r.device, r.code) for r in pipeline.service()] == [
        (1, ResponseCode.SUCCESS),
        (2, ResponseCode.INVALID),
    ]


def test_the_null_set_example_gives_no_cross_owner_hit_under_its_own_policy() -> None:
    (result,) = compare(
        load_named_scenario("null-set-search"), [UpstreamNowPrq()], [LookupPolicy.DEVICE]
    )
    assert result.metrics.cross_owner_hits == 0
    assert result.metrics.type_confusions == 0


@pytest.mark.parametrize(
    ("code", "byte"),
    [(ResponseCode.SUCCESS, "00"), (ResponseCode.INVALID, "01"), (ResponseCode.FAILURE, "02")],
)
def test_each_generic_code_has_its_wire_code(code: ResponseCode, byte: str) -> None:
    """The generic response format (16 bytes), by hand: le32 device 0x10, le32 pasid 0 (none
    carried), le16 group index 3, u8 code, u8 flags 0, le32 reserved."""
    raw = UpstreamNowPrq().encode_responses([PageResponse(0x10, 3, code)])
    assert raw == bytes.fromhex("10000000000000000300" + byte + "0000000000")


def test_the_vendor_conforms() -> None:
    samples = [
        PageRequest(device=3, pasid=5, pasid_valid=True, grpid=2, perm=Perm.READ, addr=0x1000),
        PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
    ]
    assert_conforms(UpstreamNowPrq(), requests=samples)
