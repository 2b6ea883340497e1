"""The conformance kit (``ioasid_core.testing``): a conforming vendor passes, and each kind of
broken vendor fails with a message naming the vendor and what is wrong."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from ioasid_core.bits import Buffer
from ioasid_core.plugin import LogFormat, LogItem, LogLine, LogRecord, ParseResult
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.types import PageRequest, Perm, RequestRow, ResponseCode
from ioasid_core.testing import (
    ConformanceError,
    GoldenRequest,
    assert_conforms,
    bundled_scenarios,
    check_garbage,
    check_golden,
    check_pickle,
    check_replay,
    check_request_round_trip,
    check_row_codec,
    invoke_cli,
    load_named_scenario,
    read_log,
)

READ = PageRequest(device=3, pasid=5, pasid_valid=True, grpid=2, perm=Perm.READ, addr=0x1000)
SAMPLES = [
    READ,
    PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000, needs_pasid=True),
]
# The generic entry (struct "<IIHHIQ"): device 3 | PASID 5 | group 2 | flags 0x0b (PASID
# valid 1, last 1 << 1, READ 1 << 3) | reserved 0 | address 0x1000.
READ_HEX = "03000000 05000000 0200 0b00 00000000 0010000000000000"


def test_the_reference_vendor_conforms() -> None:
    assert_conforms(GenericPrq(), requests=SAMPLES, golden=[GoldenRequest(READ, READ_HEX)])


def test_a_wrong_golden_vector_is_named() -> None:
    wrong = READ_HEX.replace("0b00", "0f00")  # needs_pasid set: not what READ encodes to
    problems = check_golden(GenericPrq(), [GoldenRequest(READ, wrong)])
    assert len(problems) == 2
    assert "encodes to 03 00 00 00 05" in problems[0]
    assert "the golden vector is 03 00 00 00 05 00 00 00 02 00 0f 00" in problems[0]
    assert "decodes to [PageRequest(device=3" in problems[1] and "needs_pasid=True" in problems[1]


class _LosesTheAddress(GenericPrq):
    """Decodes every address as 0: the round trip catches it."""

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return [(*row[:6], 0, *row[7:]) for row in super().decode_rows(data)]


def test_a_lossy_codec_fails_the_round_trip() -> None:
    problems = check_request_round_trip(_LosesTheAddress(), [READ])
    assert len(problems) == 1
    assert "addr=4096" in problems[0] and "which decodes to" in problems[0]
    assert "addr=0" in problems[0]


class _CrashesOnGarbage(GenericPrq):
    """Raises IndexError, not DecodeError, on an entry with reserved bits set."""

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        if any(bytes(data)[i + 12 : i + 16] != bytes(4) for i in range(0, len(data) - 23, 24)):
            raise IndexError("reserved word")
        return super().decode_rows(data)


def test_only_decode_error_may_escape_a_decoder() -> None:
    problems = check_garbage(_CrashesOnGarbage(), SAMPLES, count=40)
    assert problems
    assert all("raised IndexError: reserved word" in p for p in problems if "stopped" not in p)
    assert "(only DecodeError may escape a decoder)" in problems[0]
    assert check_garbage(GenericPrq(), SAMPLES, count=200) == []


class _TwoCodecs:
    """Writes both forms itself, and its row decoder disagrees with its object decoder."""

    name = "two-codecs"
    entry_size = GenericPrq.entry_size
    default_policy = GenericPrq().default_policy
    expected = GenericPrq.expected
    row_check = None

    def __init__(self) -> None:
        self._inner = GenericPrq()

    def encode_request(self, request: PageRequest) -> bytes:
        return self._inner.encode_request(request)

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        return self._inner.decode_batch(data)

    def check(self, request: PageRequest) -> ResponseCode | None:
        return ResponseCode.INVALID if request.device == 7 else None

    def encode_responses(self, responses: Sequence[object]) -> bytes:
        return b""

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        return self._inner.encode_request_rows(rows)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        return [(row[0] + 1, *row[1:]) for row in self._inner.decode_rows(data)]

    def encode_response_rows(self, rows: Sequence[object]) -> bytes:
        return b""


def test_the_row_codec_must_match_the_object_path() -> None:
    problems = check_row_codec(_TwoCodecs(), SAMPLES)
    assert any(p.startswith("decode_rows gives [(4, 5,") for p in problems), problems
    # check() answers INVALID for device 7 while row_check is None: no check per row.
    assert any("check gives <ResponseCode.INVALID" in p and "row_check None" in p for p in problems)


class _Unpicklable(GenericPrq):
    def __init__(self) -> None:
        super().__init__()
        self.hook = lambda: None


def test_a_vendor_that_does_not_pickle_is_named() -> None:
    problems = check_pickle(_Unpicklable(), SAMPLES)
    assert len(problems) == 1
    assert problems[0].startswith("pickle round trip: raised")


class _FailsInReplay(GenericPrq):
    def __init__(self) -> None:
        super().__init__()
        self.row_check = self._explode

    def _explode(self, row: RequestRow) -> ResponseCode | None:
        raise RuntimeError("handler bug")


def test_a_vendor_that_raises_in_a_replay_is_named_with_scenario_and_policy() -> None:
    scenario = load_named_scenario("null-set-search")
    problems = check_replay(_FailsInReplay(), [scenario])
    assert len(problems) == 4  # one per policy
    assert problems[0].startswith("replay null-set-search under global: raised")
    assert "handler bug" in problems[0]
    assert check_replay(GenericPrq(), [scenario]) == []


def test_assert_conforms_lists_every_problem_in_one_error() -> None:
    with pytest.raises(ConformanceError) as caught:
        assert_conforms(_LosesTheAddress(), requests=SAMPLES, replays=False)
    error = caught.value
    assert error.vendor == "generic"
    assert len(error.problems) >= 2  # both samples lose their address
    assert str(error).startswith(f"vendor 'generic' does not conform ({len(error.problems)} ")


def test_something_that_is_not_a_vendor_is_refused_naming_what_it_lacks() -> None:
    class Half:
        name = "half"
        entry_size = 8

        def encode_request(self, request: PageRequest) -> bytes:
            return bytes(8)

    with pytest.raises(ConformanceError) as caught:
        assert_conforms(Half(), requests=SAMPLES)  # type: ignore[arg-type]
    assert caught.value.problems == (
        "missing default_policy",
        "missing expected",
        "missing decode_batch",
        "missing check",
        "missing encode_responses",
    )


def test_the_bundled_scenarios_are_in_the_package_and_named_without_a_path() -> None:
    names = bundled_scenarios()
    assert {"null-set-search", "guest-vcmd", "prq-storm"} <= set(names)
    for name, path in names.items():
        assert path.parent.name == "examples" and path.parent.parent.name == "ioasid_core"
        assert load_named_scenario(name).source == str(path)


def test_run_takes_a_bundled_name() -> None:
    result = invoke_cli("run", "null-set-search", "--vendor", "generic", "--json")
    assert result.exit_code == 0, result.stderr
    assert '"scenario": "null-set-search"' in result.stdout


def test_an_unknown_name_lists_the_bundled_ones() -> None:
    result = invoke_cli("compare", "null-set-serach")
    assert result.exit_code == 2
    assert "null-set-serach: no such file, nor a bundled scenario of that name" in result.stderr
    assert "null-set-search" in result.stderr


def test_a_file_of_that_name_wins_over_the_bundled_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("null-set-search").write_text("name = 1\n")
    result = invoke_cli("compare", "null-set-search")
    assert result.exit_code == 2
    assert result.stderr.startswith("ioasid: null-set-search: name:")


_ACME = re.compile(r"acme-iommu (?P<unit>\S+): fault pasid 0x(?P<pasid>[0-9a-f]+)")


class _AcmeParser:
    held_from: int | None = None

    def parse(self, line: LogLine, final: bool) -> ParseResult:
        if "explode" in line.body:
            raise RuntimeError("no such group")
        match = _ACME.search(line.body)
        if match is None:
            return None
        record = LogRecord(
            vendor="acme", kind="fault", line=line.number, timestamp=line.timestamp,
            unit=match["unit"], pasid=int(match["pasid"], 16),
        )  # fmt: skip
        return [record]

    def expire(self, before: int) -> Sequence[LogItem]:
        return []

    def close(self) -> Sequence[LogItem]:
        return []


ACME_LOG = LogFormat(vendor="acme", triggers=("acme-iommu",), new_parser=_AcmeParser)


def test_read_log_reads_a_paste_as_ioasid_logs_does() -> None:
    paste = (
        "> [   12.500000] acme-iommu acme0: fault pasid 0x3\n"
        "Jan 02 10:00:01 host kernel: acme-iommu acme1: fault pasid 0x1f\n"
        "unrelated line\n"
    )
    records = read_log(paste, ACME_LOG)
    assert [
        (r.line, r.unit, r.pasid, r.timestamp) for r in records if isinstance(r, LogRecord)
    ] == [
        (1, "acme0", 3, "12.500000"),
        (2, "acme1", 0x1F, "Jan 02 10:00:01"),
    ]
    assert len(records) == 2


def test_read_log_fails_naming_the_vendor_and_line_of_a_parser_that_raises() -> None:
    with pytest.raises(ConformanceError) as caught:
        read_log(["acme-iommu acme0: fault pasid 0x3", "acme-iommu explode"], ACME_LOG)
    assert caught.value.vendor == "acme"
    assert caught.value.problems == (
        "its log parser raised at line 2: RuntimeError: no such group",
    )
