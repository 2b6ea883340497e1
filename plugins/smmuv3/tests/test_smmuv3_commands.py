"""CMD_PRI_RESP and CMD_RESUME: golden vectors, malformed commands, the response mappings."""

from __future__ import annotations

import struct
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioasid_core.plugin import (
    INVALID_IOASID,
    DecodeError,
    EncodeError,
    InvalidArgumentError,
    PageResponse,
    ResponseCode,
)
from ioasid_smmuv3.commands import (
    COMMAND_SIZE,
    PRI_RESP_OUT_OF_TREE,
    PriResp,
    PriRespCommand,
    ResumeCommand,
    ResumeResp,
    decode_command,
    pri_resp_for,
    resume_for,
)

# CMD_PRI_RESP, SID 0xBEEF, SSID 0xFFFFF valid, GRPID 0x1FF, RESP SUCC:
# dw0 = opcode 0x41 | SSV 1 << 11 | SSID 0xFFFFF << 12 | SID 0xBEEF << 32
#     = 0x41 + 0x800 + 0xFFFF_F000 + 0xBEEF_0000_0000 = 0x0000_BEEF_FFFF_F841
#                                        -> 41 f8 ff ff ef be 00 00
# dw1 = GRPID 0x1FF | RESP 2 << 12 = 0x1FF + 0x2000 = 0x21FF -> ff 21 00 00 00 00 00 00
GOLDEN_PRI_RESP = bytes.fromhex("41f8ffffefbe0000ff21000000000000")
GOLDEN_PRI_RESP_CMD = PriRespCommand(
    sid=0xBEEF, grpid=0x1FF, resp=PriResp.SUCC, ssv=True, ssid=0xFFFFF
)

# CMD_RESUME, SID 0x1234_5678, RESP ABORT, STAG 0xCAFE:
# dw0 = opcode 0x44 | RESP 2 << 12 | SID 0x1234_5678 << 32
#     = 0x44 + 0x2000 + 0x1234_5678_0000_0000 = 0x1234_5678_0000_2044
#                                        -> 44 20 00 00 78 56 34 12
# dw1 = STAG 0xCAFE                      -> fe ca 00 00 00 00 00 00
GOLDEN_RESUME = bytes.fromhex("4420000078563412feca000000000000")
GOLDEN_RESUME_CMD = ResumeCommand(sid=0x12345678, stag=0xCAFE, resp=ResumeResp.ABORT)


def test_golden_pri_resp() -> None:
    assert GOLDEN_PRI_RESP_CMD.encode() == GOLDEN_PRI_RESP
    assert PriRespCommand.decode(GOLDEN_PRI_RESP) == GOLDEN_PRI_RESP_CMD
    assert decode_command(GOLDEN_PRI_RESP) == GOLDEN_PRI_RESP_CMD


def test_golden_resume() -> None:
    assert GOLDEN_RESUME_CMD.encode() == GOLDEN_RESUME
    assert ResumeCommand.decode(GOLDEN_RESUME) == GOLDEN_RESUME_CMD
    assert decode_command(GOLDEN_RESUME) == GOLDEN_RESUME_CMD


@pytest.mark.parametrize(("resp", "dw1"), [(PriResp.DENY, 0), (PriResp.FAIL, 1 << 12)])
def test_pri_resp_codes_sit_in_dw1_bits_13_12(resp: PriResp, dw1: int) -> None:
    raw = PriRespCommand(sid=0, grpid=0, resp=resp).encode()
    assert struct.unpack("<QQ", raw) == (0x41, dw1)


@pytest.mark.parametrize(("resp", "dw0"), [(ResumeResp.TERM, 0x44), (ResumeResp.RETRY, 0x1044)])
def test_resume_codes_sit_in_dw0_bits_13_12(resp: ResumeResp, dw0: int) -> None:
    assert struct.unpack("<QQ", ResumeCommand(sid=0, stag=0, resp=resp).encode()) == (dw0, 0)


# Malformed commands.


def test_wrong_opcode_is_named() -> None:
    with pytest.raises(DecodeError, match=r"CMD_PRI_RESP at byte offset 0x0: opcode .* is 0x44"):
        PriRespCommand.decode(GOLDEN_RESUME)
    with pytest.raises(DecodeError, match=r"CMD_RESUME at byte offset 0x10: .*expected 0x44"):
        ResumeCommand.decode(bytes(16) + GOLDEN_PRI_RESP, 16)
    sync = struct.pack("<QQ", 0x46, 0)  # CMD_SYNC
    with pytest.raises(DecodeError, match="opcode 0x46 is neither CMD_PRI_RESP"):
        decode_command(sync)


@pytest.mark.parametrize(
    ("base", "word", "bit"),
    [
        (GOLDEN_PRI_RESP, 0, 8),
        (GOLDEN_PRI_RESP, 0, 10),
        (GOLDEN_PRI_RESP, 1, 9),
        (GOLDEN_PRI_RESP, 1, 11),
        (GOLDEN_PRI_RESP, 1, 14),
        (GOLDEN_PRI_RESP, 1, 63),
        (GOLDEN_RESUME, 0, 8),
        (GOLDEN_RESUME, 0, 11),
        (GOLDEN_RESUME, 0, 14),
        (GOLDEN_RESUME, 0, 31),
        (GOLDEN_RESUME, 1, 16),
        (GOLDEN_RESUME, 1, 63),
    ],
)
def test_reserved_bits_are_refused(base: bytes, word: int, bit: int) -> None:
    words = list(struct.unpack("<QQ", base))
    words[word] |= 1 << bit
    raw = bytes(COMMAND_SIZE) + struct.pack("<QQ", *words)
    with pytest.raises(
        DecodeError, match=rf"at byte offset 0x10: reserved bit {bit} of word {word} must be zero"
    ):
        decode_command(raw, COMMAND_SIZE)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (struct.pack("<QQ", 0x41, 3 << 12), r"CMD_PRI_RESP .*RESP \(bits 13:12\) is 3: reserved"),
        (struct.pack("<QQ", 0x44 | 3 << 12, 0), r"CMD_RESUME .*RESP \(bits 13:12\) is 3: not TERM"),
    ],
)
def test_resp_3_is_refused(raw: bytes, says: str) -> None:
    with pytest.raises(DecodeError, match=says):
        decode_command(raw)


@pytest.mark.parametrize("size", [0, 8, 15])
def test_short_buffer(size: int) -> None:
    with pytest.raises(DecodeError, match=rf"needs 16 bytes, only {size} left"):
        decode_command(bytes(size))
    with pytest.raises(DecodeError, match=rf"CMD_PRI_RESP .*needs 16 bytes, only {size} left"):
        PriRespCommand.decode(bytes(size))
    with pytest.raises(DecodeError, match=rf"CMD_RESUME .*needs 16 bytes, only {size} left"):
        ResumeCommand.decode(bytes(size))


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (PriRespCommand(sid=0, grpid=0x200, resp=PriResp.SUCC), "grpid=512 does not fit 9 bits"),
        (PriRespCommand(sid=1 << 32, grpid=0, resp=PriResp.SUCC), "sid=4294967296"),
        (
            PriRespCommand(sid=0, grpid=0, resp=PriResp.SUCC, ssv=True, ssid=1 << 20),
            "ssid=1048576 does not fit 20 bits",
        ),
        (PriRespCommand(sid=0, grpid=0, resp=cast(PriResp, 3)), "resp=3 is not one of DENY 0"),
        (ResumeCommand(sid=0, stag=0x10000, resp=ResumeResp.RETRY), "stag=65536 does not fit"),
        (ResumeCommand(sid=0, stag=0, resp=cast(ResumeResp, 3)), "resp=3 is not one of TERM 0"),
    ],
)
def test_encode_refuses_what_does_not_fit(
    command: PriRespCommand | ResumeCommand, says: str
) -> None:
    with pytest.raises(EncodeError, match=says):
        command.encode()


# Mapping from PageResponse.


@pytest.mark.parametrize(
    ("code", "resp", "raw"),
    [
        # dw0 = opcode 0x41 | SID 0x10 << 32 = 0x0000_0010_0000_0041
        # dw1 = GRPID 0x42 | RESP << 12: SUCCESS -> 2 (0x2042), INVALID -> 1 (0x1042),
        # FAILURE -> 0 (0x0042), the out-of-tree patch's FAILURE 0 / INVALID 1 / SUCCESS 2.
        (ResponseCode.SUCCESS, PriResp.SUCC, "41000000100000004220000000000000"),
        (ResponseCode.INVALID, PriResp.FAIL, "41000000100000004210000000000000"),
        (ResponseCode.FAILURE, PriResp.DENY, "41000000100000004200000000000000"),
    ],
)
def test_pri_resp_out_of_tree_mapping(code: ResponseCode, resp: PriResp, raw: str) -> None:
    command = pri_resp_for(PageResponse(device=0x10, grpid=0x42, code=code))
    assert command == PriRespCommand(sid=0x10, grpid=0x42, resp=resp)
    assert command.encode() == bytes.fromhex(raw)


def test_an_ordinary_miss_is_never_a_response_failure() -> None:
    """RESP 0 is the PCIe Response Failure, which disables PRI at the function."""
    assert int(PriResp.DENY) == 0
    assert PRI_RESP_OUT_OF_TREE[ResponseCode.INVALID] is not PriResp.DENY
    assert PRI_RESP_OUT_OF_TREE[ResponseCode.FAILURE] is PriResp.DENY


def test_pri_resp_carries_the_pasid_only_when_valid() -> None:
    with_pasid = PageResponse(
        device=1, grpid=2, code=ResponseCode.SUCCESS, pasid=0x77, pasid_valid=True
    )
    assert (pri_resp_for(with_pasid).ssv, pri_resp_for(with_pasid).ssid) == (True, 0x77)
    without = PageResponse(device=1, grpid=2, code=ResponseCode.SUCCESS, pasid=0x77)
    assert (pri_resp_for(without).ssv, pri_resp_for(without).ssid) == (False, 0)


def test_pri_resp_refuses_a_code_the_mapping_lacks() -> None:
    response = PageResponse(device=1, grpid=2, code=ResponseCode.FAILURE)
    with pytest.raises(InvalidArgumentError, match="no CMD_PRI_RESP code"):
        pri_resp_for(response, {ResponseCode.SUCCESS: PriResp.SUCC})


@pytest.mark.parametrize(
    ("code", "resp"),
    [
        (ResponseCode.SUCCESS, ResumeResp.RETRY),
        (ResponseCode.INVALID, ResumeResp.ABORT),
        (ResponseCode.FAILURE, ResumeResp.ABORT),
        (cast(ResponseCode, 7), ResumeResp.TERM),  # anything else terminates
    ],
)
def test_resume_mapping(code: ResponseCode, resp: ResumeResp) -> None:
    response = PageResponse(device=0xBEEF, grpid=0xCAFE, code=code, pasid=3, pasid_valid=True)
    assert resume_for(response) == ResumeCommand(sid=0xBEEF, stag=0xCAFE, resp=resp)


# Round trips.


@st.composite
def pri_resps(draw: st.DrawFn) -> PriRespCommand:
    return PriRespCommand(
        sid=draw(st.integers(0, 0xFFFFFFFF)),
        grpid=draw(st.integers(0, 0x1FF)),
        resp=draw(st.sampled_from(list(PriResp))),
        ssv=draw(st.booleans()),
        ssid=draw(st.integers(0, 0xFFFFF)),
    )


@st.composite
def resumes(draw: st.DrawFn) -> ResumeCommand:
    return ResumeCommand(
        sid=draw(st.integers(0, 0xFFFFFFFF)),
        stag=draw(st.integers(0, 0xFFFF)),
        resp=draw(st.sampled_from(list(ResumeResp))),
    )


@given(st.one_of(pri_resps(), resumes()))
def test_command_round_trip(command: PriRespCommand | ResumeCommand) -> None:
    raw = command.encode()
    assert len(raw) == COMMAND_SIZE
    assert decode_command(raw) == command
    assert type(command).decode(raw) == command
    assert decode_command(raw).encode() == raw


@given(
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0x1FF),
    st.sampled_from(list(ResponseCode)),
    st.one_of(st.none(), st.integers(0, 0xFFFFF)),
)
def test_response_to_pri_resp_bytes_and_back(
    device: int, grpid: int, code: ResponseCode, pasid: int | None
) -> None:
    response = PageResponse(
        device=device,
        grpid=grpid,
        code=code,
        pasid=INVALID_IOASID if pasid is None else pasid,
        pasid_valid=pasid is not None,
    )
    command = decode_command(pri_resp_for(response).encode())
    assert isinstance(command, PriRespCommand)
    assert (command.sid, command.grpid, command.ssv) == (device, grpid, pasid is not None)
    assert command.ssid == (pasid or 0)
    assert command.resp == PRI_RESP_OUT_OF_TREE[code]


@pytest.mark.parametrize(
    ("code", "raw"),
    [
        # dw0 = opcode 0x44 | RESP << 12 | SID 0x10 << 32; dw1 = STAG 0x42.
        # SUCCESS -> RETRY 1 (0x1044), INVALID and FAILURE -> ABORT 2 (0x2044).
        (ResponseCode.SUCCESS, "44100000100000004200000000000000"),
        (ResponseCode.INVALID, "44200000100000004200000000000000"),
        (ResponseCode.FAILURE, "44200000100000004200000000000000"),
    ],
)
def test_each_generic_code_has_its_resume_wire_code(code: ResponseCode, raw: str) -> None:
    assert resume_for(PageResponse(device=0x10, grpid=0x42, code=code)).encode() == bytes.fromhex(
        raw
    )
