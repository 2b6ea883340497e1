"""The conformance kit: what a vendor plugin's own tests call to prove it keeps the contract.

Installed with the core, so an out-of-tree plugin's tests reach it (and the bundled
scenarios) without a checkout. Each ``check_*`` returns the problems it found, one line
each, naming the vendor and the input; :func:`assert_conforms` runs them all and raises one
:class:`ConformanceError` listing every problem. Typical use in a plugin's tests::

    from ioasid_core.testing import GoldenRequest, assert_conforms

    def test_conforms() -> None:
        assert_conforms(MyVendor(), requests=SAMPLES, golden=[GoldenRequest(req, "01 00 ...")])

The checks:

- ``check_request_round_trip``: each request encodes to one ``entry_size`` entry and decodes
  back to itself, alone and in a batch;
- ``check_row_codec``: the fast row codec (``RowCodec``) gives the same bytes, rows and check
  codes as the object methods;
- ``check_golden``: author-supplied byte vectors, written by hand from the hardware layout;
- ``check_garbage``: random and mutated queue bytes: decoding may refuse them, but only with
  ``DecodeError``, and the row and object paths agree;
- ``check_pickle``: the vendor survives pickling (``compare --jobs`` sends it to workers);
- ``check_replay``: every bundled scenario replays under every lookup policy, twice with the
  same result.

And for a plugin's log formats (``ioasid logs``), ``read_log``: a paste read through the
core's reader with the plugin's formats, as the command reads it.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable, Iterable, Sequence

import attrs
from click.testing import CliRunner, Result

from ioasid_core.bits import DecodeError
from ioasid_core.cli import cli
from ioasid_core.compare import available_vendors, check_source_ids, compare
from ioasid_core.dump import decode_dump, dump_formats
from ioasid_core.logs import LogFormat, LogItem, LogReader
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.profile import conformance_problems
from ioasid_core.prq.hardware import hardware_rules
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import (
    PageRequest,
    PageResponse,
    RequestRow,
    request_row,
    response_row,
)
from ioasid_core.prq.vendor import RowCodec, VendorPrq, row_codec
from ioasid_core.replay import RunResult, replay
from ioasid_core.report import to_csv, to_json
from ioasid_core.scenario.bundled import bundled_scenarios, load_named_scenario
from ioasid_core.scenario.load import ScenarioError, load_scenario, parse_scenario
from ioasid_core.scenario.schema import Scenario

__all__ = [
    "ConformanceError",
    "GoldenRequest",
    "GoldenResponses",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "assert_conforms",
    "available_vendors",
    "bundled_scenarios",
    "check_garbage",
    "check_golden",
    "check_pickle",
    "check_replay",
    "check_request_round_trip",
    "check_row_codec",
    "cli",
    "compare",
    "decode_dump",
    "dump_formats",
    "hardware_rules",
    "invoke_cli",
    "load_named_scenario",
    "load_scenario",
    "new_plugin_manager",
    "parse_scenario",
    "read_log",
    "replay",
    "to_csv",
    "to_json",
]


class ConformanceError(AssertionError):
    """A vendor broke the contract: ``problems`` holds one line per problem."""

    def __init__(self, vendor: str, problems: Sequence[str]) -> None:
        self.vendor = vendor
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"vendor {vendor!r} does not conform ({len(problems)} problems):\n{lines}")


@attrs.frozen
class GoldenRequest:
    """One queue entry as the hardware writes it: ``hex`` (spaces allowed) must decode to
    ``request`` and ``request`` must encode to it."""

    request: PageRequest
    hex: str


@attrs.frozen
class GoldenResponses:
    """What the driver writes for ``responses``, as ``hex`` (spaces allowed)."""

    responses: tuple[PageResponse, ...]
    hex: str


def _name(vendor: object) -> str:
    return str(getattr(vendor, "name", type(vendor).__name__))


def _call(what: str, problems: list[str], fn: Callable[..., object], *args: object) -> object:
    """``fn(*args)``, or None with a problem line naming ``what`` and the exception."""
    try:
        return fn(*args)
    except Exception as exc:
        problems.append(f"{what}: raised {type(exc).__name__}: {exc}")
        return None


def check_request_round_trip(vendor: VendorPrq, requests: Sequence[PageRequest]) -> list[str]:
    """Each request is one ``entry_size`` entry that decodes back to it; so is the batch."""
    problems: list[str] = []
    encoded: list[bytes] = []
    for request in requests:
        raw = _call(f"encode_request({request!r})", problems, vendor.encode_request, request)
        if not isinstance(raw, bytes):
            if raw is not None:
                problems.append(f"encode_request({request!r}) returned {raw!r}, not bytes")
            continue
        encoded.append(raw)
        if len(raw) != vendor.entry_size:
            problems.append(
                f"encode_request({request!r}) gave {len(raw)} bytes, not entry_size "
                f"{vendor.entry_size}"
            )
            continue
        back = _call(f"decode_batch({raw.hex()})", problems, vendor.decode_batch, raw)
        if back is not None and back != [request]:
            problems.append(f"{request!r} encoded to {raw.hex()}, which decodes to {back!r}")
    if len(encoded) == len(requests) > 1 and not problems:
        batch = _call("decode_batch(all)", problems, lambda: vendor.decode_batch(b"".join(encoded)))
        if batch is not None and batch != list(requests):
            problems.append(f"the {len(requests)} requests back to back decode to {batch!r}")
    return problems


def check_row_codec(
    vendor: VendorPrq,
    requests: Sequence[PageRequest],
    responses: Sequence[PageResponse] = (),
) -> list[str]:
    """The row codec the pipeline uses agrees with the object methods, byte for byte."""
    problems: list[str] = []
    codec = _call("row_codec", problems, lambda: row_codec(vendor))
    if not isinstance(codec, RowCodec):
        return problems
    rows = [request_row(r) for r in requests]
    by_rows = _call("encode_request_rows", problems, lambda: codec.encode_request_rows(rows))
    by_objects = _call(
        "encode_request", problems, lambda: b"".join(vendor.encode_request(r) for r in requests)
    )
    if by_rows is not None and by_objects is not None and by_rows != by_objects:
        problems.append(f"encode_request_rows gives {by_rows!r}, encode_request {by_objects!r}")
    if isinstance(by_objects, bytes):
        decoded = _call("decode_rows", problems, lambda: codec.decode_rows(by_objects))
        objects = _call("decode_batch", problems, lambda: vendor.decode_batch(by_objects))
        if decoded is not None and isinstance(objects, list):
            as_rows = [request_row(r) for r in objects]
            if decoded != as_rows:
                problems.append(f"decode_rows gives {decoded!r}, decode_batch {as_rows!r}")
    check = codec.row_check
    for request, row in zip(requests, rows, strict=True):
        by_object = _call(f"check({request!r})", problems, vendor.check, request)
        by_row = None if check is None else _call(f"row_check({row!r})", problems, check, row)
        if by_object != by_row:
            problems.append(f"check gives {by_object!r} for {request!r}, row_check {by_row!r}")
    if responses:
        out_rows = _call(
            "encode_response_rows",
            problems,
            lambda: codec.encode_response_rows([response_row(r) for r in responses]),
        )
        out_objects = _call(
            "encode_responses", problems, lambda: vendor.encode_responses(responses)
        )
        if out_rows is not None and out_objects is not None and out_rows != out_objects:
            problems.append(
                f"encode_response_rows gives {out_rows!r}, encode_responses {out_objects!r}"
            )
    return problems


def _shown(raw: object) -> str:
    return raw.hex(" ") if isinstance(raw, bytes) else repr(raw)


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def check_golden(
    vendor: VendorPrq,
    requests: Iterable[GoldenRequest] = (),
    responses: Iterable[GoldenResponses] = (),
) -> list[str]:
    """The author's hand-written vectors: encode and decode match them exactly."""
    problems: list[str] = []
    for vector in requests:
        expected = _hex(vector.hex)
        raw = _call(
            f"encode_request({vector.request!r})",
            problems,
            vendor.encode_request,
            vector.request,
        )
        if raw is not None and raw != expected:
            problems.append(
                f"{vector.request!r} encodes to {_shown(raw)}, "
                f"the golden vector is {expected.hex(' ')}"
            )
        back = _call(f"decode_batch({expected.hex()})", problems, vendor.decode_batch, expected)
        if back is not None and back != [vector.request]:
            problems.append(
                f"golden {expected.hex(' ')} decodes to {back!r}, not {vector.request!r}"
            )
    for out in responses:
        expected = _hex(out.hex)
        raw = _call(
            f"encode_responses({out.responses!r})",
            problems,
            vendor.encode_responses,
            out.responses,
        )
        if raw is not None and raw != expected:
            problems.append(
                f"{out.responses!r} encode to {_shown(raw)}, "
                f"the golden vector is {expected.hex(' ')}"
            )
    return problems


def _decode_outcome(decode: Callable[[bytes], Sequence[object]], data: bytes) -> object:
    """What decoding ``data`` gives, as something comparable: rows, or the DecodeError's
    class; anything else escapes to the caller."""
    try:
        return [tuple(r) if isinstance(r, tuple) else request_row(r) for r in decode(data)]  # type: ignore[arg-type]
    except DecodeError as exc:
        return type(exc)


def check_garbage(
    vendor: VendorPrq,
    requests: Sequence[PageRequest],
    *,
    seed: int = 0,
    count: int = 300,
) -> list[str]:
    """Random entries and the sample requests' entries with bytes flipped, cut short or run
    long: decoding may refuse them, but only with ``DecodeError``; whatever it decodes is a
    page request per entry at most, and the row path says the same as the object path."""
    problems: list[str] = []
    rng = random.Random(seed)
    size = vendor.entry_size
    valid = [raw for r in requests if isinstance(raw := _quiet(vendor.encode_request, r), bytes)]
    codec = row_codec(vendor)
    for case in range(count):
        kind = case % 4
        if kind == 0 or not valid:
            data = rng.randbytes(size * rng.randint(1, 4))
        else:
            base = bytearray(b"".join(rng.choice(valid) for _ in range(rng.randint(1, 3))))
            if kind == 1:
                for _ in range(rng.randint(1, 4)):
                    base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
            elif kind == 2:
                base[rng.randrange(len(base))] = rng.randrange(256)
            else:
                base = base[: rng.randrange(len(base))] if rng.random() < 0.5 else base + b"\0"
            data = bytes(base)
        outcomes = []
        for label, decode in (
            ("decode_batch", vendor.decode_batch),
            ("decode_rows", codec.decode_rows),
        ):
            try:
                outcome = _decode_outcome(decode, data)
            except Exception as exc:
                problems.append(
                    f"{label}({data.hex()}) raised {type(exc).__name__}: {exc} "
                    "(only DecodeError may escape a decoder)"
                )
                break
            if isinstance(outcome, list) and len(outcome) > len(data) // size:
                problems.append(
                    f"{label}({data.hex()}) gave {len(outcome)} requests from "
                    f"{len(data) // size} whole entries"
                )
            outcomes.append(outcome)
        else:
            if outcomes[0] != outcomes[1]:
                problems.append(
                    f"on {data.hex()}, decode_batch gives {outcomes[0]!r} but decode_rows "
                    f"{outcomes[1]!r}"
                )
        if len(problems) >= 10:
            problems.append("(stopped after 10 problems)")
            break
    return problems


def _quiet(fn: Callable[[PageRequest], bytes], request: PageRequest) -> bytes | None:
    """``fn(request)``, or None if it raises (the round-trip check reports that)."""
    try:
        return fn(request)
    except Exception:
        return None


def check_pickle(vendor: VendorPrq, requests: Sequence[PageRequest] = ()) -> list[str]:
    """A pickled copy (what ``compare --jobs`` hands each worker) is the same vendor."""
    problems: list[str] = []
    copy = _call("pickle round trip", problems, lambda: pickle.loads(pickle.dumps(vendor)))
    if copy is None:
        return problems
    if type(copy) is not type(vendor):
        problems.append(f"unpickles as {type(copy).__name__}, not {type(vendor).__name__}")
        return problems
    for member in ("name", "entry_size", "default_policy", "expected"):
        if getattr(copy, member, None) != getattr(vendor, member, None):
            problems.append(f"{member} is {getattr(copy, member, None)!r} after pickling")
    for request in requests:
        if _quiet(copy.encode_request, request) != _quiet(vendor.encode_request, request):
            problems.append(f"after pickling, {request!r} encodes differently")
    return problems


def check_replay(
    vendor: VendorPrq,
    scenarios: Iterable[Scenario] | None = None,
    policies: Iterable[LookupPolicy] | None = None,
) -> list[str]:
    """Every scenario (by default every bundled one) replays under every policy (by default
    all, and the vendor's own), twice with the same metrics: no plugin error, no drift. A
    scenario whose devices this vendor cannot address (source IDs too wide) is skipped."""
    problems: list[str] = []
    chosen = list(LookupPolicy) if policies is None else list(policies)
    if scenarios is None:
        scenarios = [load_named_scenario(name) for name in bundled_scenarios()]
    ran = 0
    for scenario in scenarios:
        try:
            check_source_ids(scenario, [vendor])
        except ScenarioError:
            continue
        for policy in chosen:
            where = f"{scenario.name} under {policy.value}"
            first = _call(f"replay {where}", problems, replay, scenario, vendor, policy)
            if not isinstance(first, RunResult):
                continue
            ran += 1
            second = _call(f"replay {where} again", problems, replay, scenario, vendor, policy)
            if isinstance(second, RunResult) and second.metrics != first.metrics:
                problems.append(f"replay {where} gave different metrics on a second run")
    if ran == 0 and not problems:
        problems.append("no scenario could be replayed (every one was skipped)")
    return problems


def assert_conforms(
    vendor: VendorPrq,
    *,
    requests: Sequence[PageRequest],
    responses: Sequence[PageResponse] = (),
    golden: Iterable[GoldenRequest] = (),
    golden_responses: Iterable[GoldenResponses] = (),
    scenarios: Iterable[Scenario] | None = None,
    replays: bool = True,
    seed: int = 0,
) -> None:
    """Run every check; raise one :class:`ConformanceError` listing all problems found.

    :param requests: sample requests the vendor's format can carry (the more fields they
        exercise, the more the round trips prove).
    :param responses: sample responses, for the row/object comparison of the encoder.
    :param golden: hand-written entries (see :class:`GoldenRequest`).
    :param replays: False skips the replay of bundled scenarios (the slowest check).
    """
    problems: list[str] = []
    contract = conformance_problems(vendor)  # the members, as the core checks them
    if contract:
        raise ConformanceError(_name(vendor), contract)
    problems += check_request_round_trip(vendor, requests)
    problems += check_row_codec(vendor, requests, responses)
    problems += check_golden(vendor, golden, golden_responses)
    problems += check_garbage(vendor, requests, seed=seed)
    problems += check_pickle(vendor, requests)
    if replays:
        problems += check_replay(vendor, scenarios)
    if problems:
        raise ConformanceError(vendor.name, problems)


def read_log(text: str | Iterable[str], *formats: LogFormat) -> list[LogItem]:
    """Every record and unrecognised line ``formats`` read in ``text`` (a paste, or its
    lines), through the core's reader as ``ioasid logs`` runs it: timestamps, syslog,
    journal and quote prefixes stripped, wrapped records joined, ``final`` and ``expire``
    called. A parser that raises fails the call with a :class:`ConformanceError` naming
    its vendor and line (``ioasid logs`` would leave that vendor out and read on)."""
    reader = LogReader(formats)
    lines = text.splitlines() if isinstance(text, str) else text
    items = list(reader.read(lines))
    for failure in reader.stats.failures:
        problem = f"its log parser raised at line {failure.line}: {failure.error}"
        raise ConformanceError(failure.vendor, [problem])
    return items


def invoke_cli(*args: str) -> Result:
    """Run the ``ioasid`` command in-process (click's runner): ``.exit_code``, ``.stdout``,
    ``.stderr``."""
    return CliRunner().invoke(cli, list(args))


def rows_of(requests: Iterable[PageRequest]) -> list[RequestRow]:
    """``requests`` as rows, for a codec's row methods."""
    return [request_row(r) for r in requests]
