"""Reading scenario files: TOML in, a fully checked :class:`Scenario` out.

A file is validated completely before anything runs, so a replay never stops half-way on a
typo or a dangling name. Every problem is collected, not just the first: one
:class:`ScenarioError` lists each on its own line as ``<file>: <key path>: <what was
expected>``, so a user fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import BinaryIO, Final, Literal, NamedTuple, TypeVar, get_args

import attrs

from ioasid_core.backends import BACKEND_KINDS, BackendKind
from ioasid_core.errors import InvalidArgumentError
from ioasid_core.latency import DISTRIBUTIONS, LATENCY_OPS, Distribution, LatencyOp
from ioasid_core.scenario.generators import expand_all, merge_steps
from ioasid_core.scenario.schema import (
    AddressSpaceSpec,
    AllocatorSwapsSpec,
    ChurnSpec,
    DeviceSpec,
    DomainSpec,
    DriverPasidsSpec,
    GeneratorSpec,
    GuestAllocationsSpec,
    HotplugSpec,
    Op,
    OptionValue,
    PageRequestStreamSpec,
    PermName,
    PlatformSpec,
    Scenario,
    SetSpec,
    Step,
    StormSpec,
    UnitSpec,
    VmSpec,
)
from ioasid_core.types import INVALID_IOASID
from ioasid_core.units import MAX_PASID_BITS

__all__ = [
    "InputTooLarge",
    "ScenarioError",
    "ScenarioProblem",
    "load_scenario",
    "parse_scenario",
    "read_bounded",
]

MAX_CAPACITY: Final = 1 << 26
"""The largest host space a scenario may ask for (well above ``PCI_PASID_MAX``)."""
MAX_SOURCE_ID: Final = (1 << 32) - 1
"""Source IDs are at most 32 bits wide (SMMUv3 stream IDs, virtio-iommu endpoint IDs)."""
MIN_QUEUE_ENTRIES: Final = 2
"""A ring keeps one slot empty to tell full from empty, so it needs at least two."""
MAX_QUEUE_ENTRIES: Final = 1 << 19
"""The deepest queue any modelled hardware has: an SMMUv3 queue of ``2^19`` entries (VT-d's
PRQ holds at most 16384 descriptors, a split virtqueue 32768 buffers, AMD-Vi's PPR log 512
entries by the issue's facts). Each vendor may hold a unit to less (``max_queue_entries``)."""
MAX_SCENARIO_BYTES: Final = 32 << 20
"""The largest scenario file read (32 MiB): a hand-written or generated file is far smaller
(a 131k-step one is about 10 MiB); ``/dev/zero`` or a runaway generator script is not."""
MAX_WORK: Final = 1 << 23
"""The most events (steps plus page requests) one run of a file may ask for, generators
expanded: about half a minute per run on a slow machine (a replay does a few hundred
thousand a second), times vendors x policies runs. See docs/scenarios.md."""
WIRE_PASID_LIMIT: Final = 1 << MAX_PASID_BITS
"""A page request carries at most a 20-bit PASID (the PCIe PASID prefix)."""

_T = TypeVar("_T")

_OPS: Final[tuple[Op, ...]] = get_args(Op)
_PERMS: Final[tuple[PermName, ...]] = get_args(PermName)
_KINDS: Final[tuple[Literal["process", "vm"], ...]] = ("process", "vm")
_SET_TYPES: Final[tuple[Literal["null", "mm"], ...]] = ("null", "mm")

_TOP_KEYS: Final = frozenset(
    {"name", "description", "seed", "platform", "steps", "generators", "vendor", "latency"}
)
_PLATFORM_KEYS: Final = frozenset(
    {"capacity", "units", "address_spaces", "sets", "domains", "devices", "vms", "owners"}
)
_VM_KEYS: Final = frozenset({"name", "quota", "capacity", "units"})
_UNIT_KEYS: Final = frozenset({"name", "pasid_bits", "queue_entries"})
_SPACE_KEYS: Final = frozenset({"name", "kind"})
_SET_KEYS: Final = frozenset({"name", "type", "token", "quota", "sva"})
_DOMAIN_KEYS: Final = frozenset({"name", "owner", "sets"})
_DEVICE_KEYS: Final = frozenset(
    {"name", "unit", "source_id", "owner", "domain", "pasid_bits", "prg_response_pasid_required"}
)

_STEP_KEYS: Final = frozenset(f.name for f in attrs.fields(Step)) - {"where"}
"""Every key a step may have under some op (``where`` is the loader's, not the file's)."""
_STEP_COMMON: Final = frozenset({"op", "at"})
MAX_OPTION_ITEMS: Final = 4096
"""The longest array a ``[vendor.<name>]`` option may hold (e.g. device IDs)."""
_STEP_DEFAULTS: Final = Step(op=_OPS[0])
_OP_KEYS: Final[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = {
    # op: (required keys, optional keys), besides ``op`` and ``at``, after Step's docstring.
    # bind and alloc need a name: a PASID without one could never be unbound or freed.
    "bind": (frozenset({"device", "set", "address_space", "name"}), frozenset()),
    "unbind": (frozenset({"device", "pasid"}), frozenset()),
    # alloc also needs exactly one of owner / address_space (checked on its own).
    "alloc": (frozenset({"set", "name"}), frozenset({"owner", "address_space"})),
    "free": (frozenset({"pasid"}), frozenset()),
    # page_requests carries pasid, or set and spid (a guest PASID; checked on their own).
    "page_requests": (
        frozenset({"device"}),
        frozenset(
            {
                "pasid",
                "set",
                "spid",
                "groups",
                "group_size",
                "perm",
                "stop_markers",
                "service",
                "source_id",
            }
        ),
    ),
    "service": (frozenset({"unit"}), frozenset()),
    # unplug with vm: one of that VM's virtual units; without: a host unit.
    "unplug": (frozenset({"unit"}), frozenset({"vm"})),
    # plug with vm: one of that VM's virtual units; without: a host unit unplugged earlier.
    "plug": (frozenset({"unit"}), frozenset({"vm"})),
    "guest_alloc": (frozenset({"vm", "name"}), frozenset({"owner"})),
    "guest_free": (frozenset({"vm", "pasid"}), frozenset()),
    "register_allocator": (frozenset({"allocator", "kind"}), frozenset({"share"})),
    "unregister_allocator": (frozenset({"allocator"}), frozenset({"force"})),
    "attach_spid": (frozenset({"pasid", "spid"}), frozenset()),
    "detach_spid": (frozenset({"set", "spid"}), frozenset()),
}

_STEP_WHAT: Final[Mapping[str, str]] = {
    "device": "the name of a device",
    "set": "the name of a set",
    "address_space": "the name of an address space",
    "name": "a name for the PASID, for later steps' pasid",
    "pasid": "a PASID name (a string) or number (an integer)",
    "unit": "the name of a unit",
    "vm": "the name of a VM",
    "allocator": "a name for the allocator's registration",
    "kind": f"an allocator backend ({', '.join(BACKEND_KINDS)})",
    "spid": "a guest PASID (an integer)",
}

MAX_TIME_US: Final = 1e15
"""The latest modelled time a scenario may name (about 31 years, in µs), and the longest
interval or latency parameter: far beyond any workload, and sums of them stay finite."""
MAX_SIGMA: Final = 10.0
"""The widest lognormal spread (sigma of log(time)): wider is not a latency model."""
MAX_BURST: Final = 1 << 16
"""The most page requests one step may send (groups x group_size + stop markers): a typo of
a few zeros should fail at load time, not fill memory for minutes."""
MAX_GENERATED: Final = 1 << 16
"""The most steps (binds, groups) one generator may stand for: a typo of a few zeros
should fail at load time, not fill memory."""
_MIX_KINDS: Final[tuple[Literal["valid", "unknown", "foreign", "stop"], ...]] = (
    "valid",
    "unknown",
    "foreign",
    "stop",
)
_GEN_COMMON: Final = frozenset({"kind", "at", "seed"})
_GEN_KEYS: Final[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = {
    # kind: (required keys, optional keys), besides kind, at and seed.
    # churn also needs exactly one of address_space, address_spaces, processes.
    "churn": (
        frozenset({"device", "set", "count", "live", "interval"}),
        frozenset({"address_space", "address_spaces", "processes", "jitter", "prefix"}),
    ),
    "page_request_stream": (
        frozenset({"devices", "count", "interval", "mix"}),
        frozenset({"group_size", "pasids", "foreign_pasids", "perm", "service"}),
    ),
    "storm": (
        frozenset({"devices", "pasids", "groups", "unit"}),
        frozenset({"group_size", "delay", "perm"}),
    ),
    "guest_allocations": (
        frozenset({"vm", "count", "interval"}),
        frozenset({"free", "drain", "owner", "prefix"}),
    ),
    "driver_pasids": (
        frozenset({"set", "owner", "count", "live", "interval"}),
        frozenset({"jitter", "device", "groups", "prefix"}),
    ),
    "hotplug": (frozenset({"unit", "count", "interval"}), frozenset({"vm", "jitter"})),
    "allocator_swaps": (
        frozenset({"kinds", "count", "interval"}),
        frozenset({"jitter", "force", "prefix"}),
    ),
}

_ALL_PARAMS: Final = frozenset(k for _, keys in DISTRIBUTIONS.values() for k in keys)

_TOML_LOCATION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_AT_END = re.compile(r"^(?P<msg>.*) \(at end of document\)$")


class ScenarioProblem(NamedTuple):
    """One problem in a scenario file: where it is and what was expected there."""

    key_path: str
    """``steps[3].device``, ``platform.units[0].pasid_bits``; empty for the file as a whole."""
    expected: str


class ScenarioError(InvalidArgumentError):
    """A scenario file that cannot be replayed; the message has one line per problem.

    ``key_path`` and ``expected`` describe the first problem (in file order), ``problems``
    all of them, so that a caller can show one or all.
    """

    def __init__(self, source: str, problems: Sequence[ScenarioProblem]) -> None:
        if not problems:
            raise ValueError("a ScenarioError needs at least one problem")
        self.source = source
        self.problems = tuple(problems)
        self.key_path = self.problems[0].key_path
        self.expected = self.problems[0].expected
        super().__init__("\n".join(_line(source, p) for p in self.problems))

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[str, tuple[ScenarioProblem, ...]]]:
        # Exceptions pickle as cls(*args); ours takes (source, problems), not the message.
        return (type(self), (self.source, self.problems))


def _line(source: str, problem: ScenarioProblem) -> str:
    if problem.key_path:
        return f"{source}: {problem.key_path}: {problem.expected}"
    return f"{source}: {problem.expected}"


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check the scenario file at ``path``; raise :class:`ScenarioError` if it is bad."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = read_bounded(file, MAX_SCENARIO_BYTES, "a scenario file")
    except InputTooLarge as exc:
        raise _fail(source, str(exc)) from None
    except FileNotFoundError:
        raise _fail(source, "no such file") from None
    except IsADirectoryError:
        raise _fail(source, "is a directory, expected a scenario file (TOML)") from None
    except OSError as exc:
        raise _fail(source, f"cannot read it: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = _location(raw[: exc.start].decode("utf-8", errors="replace"))
        raise _fail(source, f"{where}: expected UTF-8 text (TOML files are UTF-8)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, _toml_problem(str(exc), text)) from None
    except RecursionError:
        # tomllib recurses once per level of nested arrays or inline tables.
        raise _fail(source, "invalid TOML: arrays or tables nested too deeply") from None
    return parse_scenario(data, source)


def _fail(source: str, text: str) -> ScenarioError:
    return ScenarioError(source, [ScenarioProblem("", text)])


def _location(before: str) -> str:
    """``line L, column C`` of the character that follows ``before``."""
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f"line {line}, column {column}"


def _toml_problem(message: str, text: str) -> str:
    """Restate tomllib's message as ``line L, column C: invalid TOML: <what>``.

    tomllib says "at end of document" rather than a position there; the end has a position
    too, and an editor wants one.
    """
    found = _TOML_LOCATION.match(message)
    if found:
        return (
            f"line {found['line']}, column {found['col']}: invalid TOML: "
            f"{found['msg'][:1].lower()}{found['msg'][1:]}"
        )
    found = _TOML_AT_END.match(message)
    if found:
        return (
            f"{_location(text)} (end of file): invalid TOML: "
            f"{found['msg'][:1].lower()}{found['msg'][1:]}"
        )
    return f"invalid TOML: {message}"


def parse_scenario(data: Mapping[str, object], source: str) -> Scenario:
    """Check ``data`` (a parsed TOML document) and build the Scenario it describes.

    ``source`` names the file in messages and becomes ``Scenario.source``.
    """
    parser = _Parser()
    scenario = parser.scenario(data, source)
    if parser.problems or scenario is None:
        raise ScenarioError(source, parser.problems)
    return scenario


# ---------------------------------------------------------------------------- helpers


class InputTooLarge(ValueError):
    """A file bigger than a command reads (its message says how big, or that it goes on)."""


def read_bounded(file: BinaryIO, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of ``file``: a regular file's size is checked before reading,
    anything else (a device, a pipe: ``/dev/zero`` never ends) is read up to ``limit + 1``
    bytes. ``InputTooLarge`` past the limit, saying so of ``what`` ("a scenario file")."""
    try:
        size = os.fstat(file.fileno()).st_size
        regular = stat.S_ISREG(os.fstat(file.fileno()).st_mode)
    except (OSError, ValueError):  # not a real file: read it bounded
        size, regular = 0, False
    if regular and size > limit:
        raise InputTooLarge(f"{size:,} bytes, more than the {limit:,} {what} may have")
    data = file.read(limit + 1)
    if len(data) > limit:
        kind = "" if regular else "not a regular file, and "
        raise InputTooLarge(f"{kind}more than the {limit:,} bytes {what} may have")
    return data


def _work(table: Mapping[str, object]) -> int:
    """The events one raw step stands for: itself, plus the page requests it sends. Values
    not yet checked count as their defaults and a step as at most ``MAX_BURST`` requests:
    the step checks report those, and one typo should not read as two problems."""
    if table.get("op") != "page_requests":
        return 1

    def count(key: str, default: int) -> int:
        value = table.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_BURST:
            return value
        return default

    requests = count("groups", 1) * count("group_size", 1) + count("stop_markers", 0)
    return 1 + min(requests, MAX_BURST)


def _too_much(work: int) -> str:
    return (
        f"the file asks for {work:,} events (steps and page requests) per run by here, "
        f"more than the {MAX_WORK:,} a run may do (see docs/scenarios.md)"
    )


def _step_at(table: Mapping[str, object]) -> float:
    value = table.get("at", 0.0)
    return float(value) if isinstance(value, int | float) else 0.0


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: object) -> str:
    """What a TOML value is, in TOML's words, for "expected X, got Y"."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime.date | datetime.time):
        return "a date/time"
    return f"a {type(value).__name__}"


def _num(value: int) -> str:
    """Large bounds read better in hex (they are bit widths: 0xffffffff, 0x4000000)."""
    return f"{value:#x}" if value >= 0x10000 else str(value)


def _known(names: Collection[str], shown: int = 20) -> str:
    """The names, sorted; at most ``shown`` of them (a churn may generate thousands)."""
    if not names:
        return "none declared"
    ordered = sorted(names)
    more = f", ... ({len(ordered) - shown} more)" if len(ordered) > shown else ""
    return ", ".join(ordered[:shown]) + more


def _choose(value: str, choices: tuple[_T, ...]) -> _T | None:
    """``value`` as the Literal it spells, or None; keeps the Literal types for mypy."""
    for choice in choices:
        if choice == value:
            return choice
    return None


@attrs.frozen
class _Pasid:
    """A named PASID that is live at some point of the step list."""

    where: str
    op: str
    device: str | None
    set: str | None = None
    address_space: str | None = None


@attrs.frozen
class _Step:
    """The typed fields of one step table, before the per-op rules are applied."""

    device: str | None = None
    set: str | None = None
    address_space: str | None = None
    owner: str | None = None
    name: str | None = None
    pasid: str | int | None = None
    unit: str | None = None
    vm: str | None = None
    groups: int | None = None
    group_size: int | None = None
    perm: tuple[PermName, ...] | None = None
    stop_markers: int | None = None
    service: bool | None = None
    allocator: str | None = None
    kind: BackendKind | None = None
    share: bool | None = None
    force: bool | None = None
    spid: int | None = None
    source_id: int | None = None


class _Parser:
    """Walks a parsed document in file order, collecting every problem it meets.

    A bad value is recorded and replaced by None, and checking goes on; a name is
    registered as soon as it is well formed, so that one bad entry does not cause a cascade
    of "no such name" problems elsewhere.
    """

    def __init__(self) -> None:
        self.problems: list[ScenarioProblem] = []
        self.capacity = PlatformSpec().capacity
        self.units: dict[str, str] = {}  # name -> key path of its declaration
        self.spaces: dict[str, str] = {}
        self.sets: dict[str, str] = {}
        self.domains: dict[str, str] = {}
        self.device_paths: dict[str, str] = {}
        self.devices: dict[str, str | None] = {}  # name -> its unit (None if that was bad)
        self.seed = 0  # the scenario's, for generators without their own
        self.quota_total = 0  # host IDs reserved so far by set and VM quotas
        self.vms: dict[str, str] = {}  # name -> key path of its declaration
        self.vm_units: dict[str, tuple[str, ...]] = {}  # VM -> its virtual units
        self.vm_capacity: dict[str, int] = {}
        self.processes: dict[str, str] = {}  # a generated process -> its generator's key path
        self.owners: set[str] = set()  # platform.owners: drivers and other non-mm owners

    def bad(self, path: str, text: str) -> None:
        self.problems.append(ScenarioProblem(path, text))

    # ------------------------------------------------------------------ primitives

    def table(self, value: object, path: str) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.bad(path, f"expected a table, got {_describe(value)}")
            return None
        result: dict[str, object] = {}
        for key, item in value.items():
            if isinstance(key, str):
                result[key] = item
            else:
                self.bad(path, f"expected string keys, got {key!r}")
        return result

    def unknown_keys(
        self, table: Mapping[str, object], path: str, allowed: Collection[str]
    ) -> None:
        for key in table:
            if key not in allowed:
                self.bad(_join(path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def missing(self, path: str, key: str, what: str) -> None:
        self.bad(_join(path, key), f"required key is missing (expected {what})")

    def string(
        self, table: Mapping[str, object], path: str, key: str, *, required: bool = False
    ) -> str | None:
        if key not in table:
            if required:
                self.missing(path, key, "a string")
            return None
        value = table[key]
        if not isinstance(value, str):
            self.bad(_join(path, key), f"expected a string, got {_describe(value)}")
            return None
        return value

    def name(
        self, table: Mapping[str, object], path: str, key: str, *, required: bool = False
    ) -> str | None:
        """A string that names something: it may not be empty."""
        if key not in table:
            if required:
                self.missing(path, key, "a non-empty string")
            return None
        value = table[key]
        if not isinstance(value, str) or not value:
            self.bad(_join(path, key), f"expected a non-empty string, got {_describe(value)}")
            return None
        return value

    def integer(
        self,
        table: Mapping[str, object],
        path: str,
        key: str,
        low: int,
        high: int | None = None,
        *,
        required: bool = False,
    ) -> int | None:
        span = f"in {_num(low)}..{_num(high)}" if high is not None else f">= {_num(low)}"
        if key not in table:
            if required:
                self.missing(path, key, f"an integer {span}")
            return None
        value = table[key]
        # bool is an int in Python, never in TOML: `true` where a number belongs is a slip.
        if not isinstance(value, int) or isinstance(value, bool):
            self.bad(_join(path, key), f"expected an integer {span}, got {_describe(value)}")
            return None
        if value < low or (high is not None and value > high):
            self.bad(_join(path, key), f"expected an integer {span}, got {_num(value)}")
            return None
        return value

    def boolean(self, table: Mapping[str, object], path: str, key: str) -> bool | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, bool):
            self.bad(_join(path, key), f"expected a boolean, got {_describe(value)}")
            return None
        return value

    def array(self, table: Mapping[str, object], path: str, key: str) -> list[object]:
        if key not in table:
            return []
        value = table[key]
        if not isinstance(value, list | tuple):
            self.bad(_join(path, key), f"expected an array, got {_describe(value)}")
            return []
        return list(value)

    def tables(
        self, table: Mapping[str, object], path: str, key: str
    ) -> list[tuple[str, Mapping[str, object]]]:
        """An array of tables (``[[platform.units]]``), each with its key path."""
        found = []
        for index, item in enumerate(self.array(table, path, key)):
            where = f"{_join(path, key)}[{index}]"
            entry = self.table(item, where)
            if entry is not None:
                found.append((where, entry))
        return found

    def names(self, table: Mapping[str, object], path: str, key: str) -> list[tuple[str, str]]:
        """An array of names, each with its key path; a repeated name is a problem."""
        found: list[tuple[str, str]] = []
        seen: dict[str, str] = {}
        for index, item in enumerate(self.array(table, path, key)):
            where = f"{_join(path, key)}[{index}]"
            if not isinstance(item, str) or not item:
                self.bad(where, f"expected a non-empty string, got {_describe(item)}")
            elif item in seen:
                self.bad(where, f"{item!r} is listed twice (first at {seen[item]})")
            else:
                seen[item] = where
                found.append((where, item))
        return found

    def declare(
        self, registry: dict[str, str], kind: str, name: str | None, path: str
    ) -> str | None:
        if name is None:
            return None
        first = registry.get(name)
        if first is not None:
            self.bad(_join(path, "name"), f"duplicate {kind} name {name!r} (first at {first})")
            return None
        registry[name] = path
        return name

    def refer(self, registry: Collection[str], kind: str, name: str | None, path: str) -> bool:
        """Whether ``name`` (already type-checked, None if absent or bad) names a ``kind``."""
        if name is None:
            return False
        if name not in registry:
            self.bad(path, f"no {kind} named {name!r} (known: {_known(registry)})")
            return False
        return True

    # ------------------------------------------------------------------ document

    def scenario(self, data: Mapping[str, object], source: str) -> Scenario | None:
        top = self.table(data, "")
        if top is None:
            return None
        self.unknown_keys(top, "", _TOP_KEYS)
        name = self.name(top, "", "name", required=True)
        description = self.string(top, "", "description")
        seed = self.integer(top, "", "seed", 0)
        platform = PlatformSpec()
        if "platform" in top:
            table = self.table(top["platform"], "platform")
            if table is not None:
                platform = self.platform(table)
        vendor_options = self.vendor_options(top)
        latency = self.latency(top)
        generators = self.generators(top, seed or 0)
        steps = self.steps(top, generators)
        if name is None:
            return None
        if self.processes:
            spawned = tuple(AddressSpaceSpec(name=n, kind="process") for n in self.processes)
            platform = attrs.evolve(platform, address_spaces=platform.address_spaces + spawned)
        self.check_owners(platform, steps)
        defaults = Scenario(name=name)
        return Scenario(
            name=name,
            description=defaults.description if description is None else description,
            seed=defaults.seed if seed is None else seed,
            platform=platform,
            vendor_options=vendor_options,
            steps=steps,
            latency=latency,
            source=source,
        )

    def check_owners(self, platform: PlatformSpec, steps: Sequence[Step]) -> None:
        """Every owner named (a device's, a domain's, a driver object's) is declared: an
        address space or a VM (each its own owner), or one of ``platform.owners`` (drivers
        and other owners that are not address spaces). A typo in an owner would otherwise
        change the cross-owner counts in silence."""
        declared = {a.name for a in platform.address_spaces} | set(self.vms) | self.owners
        named = [(f"platform.devices[{i}].owner", d.owner) for i, d in enumerate(platform.devices)]
        named += [(f"platform.domains[{i}].owner", d.owner) for i, d in enumerate(platform.domains)]
        reported: set[tuple[str, str]] = set()
        for step in steps:
            if step.owner is not None:
                # A generated step is reported at its generator (generators[i]/n -> [i]).
                where = step.where.split("/", 1)[0]
                named.append((_join(where, "owner"), step.owner))
        for where, owner in named:
            if owner in declared or (where, owner) in reported:
                continue
            reported.add((where, owner))
            self.bad(
                where,
                f"no owner named {owner!r}: an owner is an address space, a VM or one of "
                f"platform.owners (declared: {_known(declared)})",
            )

    # ------------------------------------------------------------------ latency

    def latency(self, top: Mapping[str, object]) -> tuple[tuple[LatencyOp, Distribution], ...]:
        """``[latency]``: each modelled operation's distribution, e.g.
        ``alloc = { dist = "uniform", low_us = 1, high_us = 4 }``."""
        if "latency" not in top:
            return ()
        table = self.table(top["latency"], "latency")
        if table is None:
            return ()
        self.unknown_keys(table, "latency", LATENCY_OPS)
        found: list[tuple[LatencyOp, Distribution]] = []
        for op in LATENCY_OPS:
            if op in table:
                dist = self.distribution(table[op], f"latency.{op}")
                if dist is not None:
                    found.append((op, dist))
        return tuple(found)

    def distribution(self, value: object, path: str) -> Distribution | None:
        entry = self.table(value, path)
        if entry is None:
            return None
        name = self.string(entry, path, "dist", required=True)
        if name is not None and name not in DISTRIBUTIONS:
            self.bad(
                _join(path, "dist"), f"expected one of {', '.join(DISTRIBUTIONS)}, got {name!r}"
            )
        if name is None or name not in DISTRIBUTIONS:
            self.unknown_keys(entry, path, {"dist", *_ALL_PARAMS})
            return None
        build, keys = DISTRIBUTIONS[name]
        self.unknown_keys(entry, path, {"dist", *keys})
        params: list[float] = []
        for key in keys:
            what = (
                "a number >= 0 (the spread of log(time))"
                if key == "sigma"
                else ("a number of microseconds >= 0")
            )
            if key not in entry:
                self.missing(path, key, f"{what}: dist {name!r} needs it")
                continue
            number = entry[key]
            limit = MAX_SIGMA if key == "sigma" else MAX_TIME_US
            if isinstance(number, int | float) and math.isfinite(number) and number > limit:
                self.bad(_join(path, key), f"expected at most {limit:g}, got {number:g}")
                continue
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not math.isfinite(number)
                or number < 0
            ):
                numeric = isinstance(number, int | float) and not isinstance(number, bool)
                shown = number if numeric else _describe(number)
                self.bad(_join(path, key), f"expected {what}, got {shown}")
                continue
            params.append(float(number))
        if len(params) != len(keys):
            return None
        if name == "uniform" and params[0] > params[1]:
            self.bad(
                _join(path, "high_us"),
                f"expected high_us >= low_us ({params[0]:g}), got {params[1]:g}",
            )
            return None
        return build(*params)

    def platform(self, table: Mapping[str, object]) -> PlatformSpec:
        path = "platform"
        self.unknown_keys(table, path, _PLATFORM_KEYS)
        capacity = self.integer(table, path, "capacity", 1, MAX_CAPACITY)
        if capacity is not None:
            self.capacity = capacity
        units = self.entries(table, "units", self.units, "unit", self.unit)
        spaces = self.entries(table, "address_spaces", self.spaces, "address space", self.space)
        # Sets and domains are all declared before any reference to them is checked, so
        # the order of the tables in the file does not matter.
        set_entries = self.declared(table, "sets", self.sets, "set")
        domain_entries = self.declared(table, "domains", self.domains, "domain")
        sets = self.set_specs(set_entries)
        domains = tuple(d for d in (self.domain(*e) for e in domain_entries) if d is not None)
        devices = self.device_specs(self.declared(table, "devices", self.device_paths, "device"))
        vms = self.entries(table, "vms", self.vms, "VM", self.vm)
        for index, item in enumerate(self.array(table, path, "owners")):
            if isinstance(item, str) and item:
                self.owners.add(item)
            else:
                where = f"platform.owners[{index}]"
                self.bad(where, f"expected a non-empty string, got {_describe(item)}")
        return PlatformSpec(
            capacity=self.capacity,
            units=units,
            address_spaces=spaces,
            sets=sets,
            domains=domains,
            devices=devices,
            vms=vms,
        )

    def declared(
        self, table: Mapping[str, object], key: str, registry: dict[str, str], kind: str
    ) -> list[tuple[str, Mapping[str, object], str | None]]:
        """The tables of ``platform.<key>``, each with its path and its (declared) name.

        The name is None when it is missing, malformed or a duplicate (all reported).
        """
        found = []
        for path, entry in self.tables(table, "platform", key):
            name = self.name(entry, path, "name", required=True)
            found.append((path, entry, self.declare(registry, kind, name, path)))
        return found

    def entries(
        self,
        table: Mapping[str, object],
        key: str,
        registry: dict[str, str],
        kind: str,
        build: Callable[[str, Mapping[str, object], str | None], _T | None],
    ) -> tuple[_T, ...]:
        built = (build(*e) for e in self.declared(table, key, registry, kind))
        return tuple(spec for spec in built if spec is not None)

    def unit(self, path: str, table: Mapping[str, object], name: str | None) -> UnitSpec | None:
        self.unknown_keys(table, path, _UNIT_KEYS)
        bits = self.integer(table, path, "pasid_bits", 0, MAX_PASID_BITS)
        entries = self.integer(table, path, "queue_entries", MIN_QUEUE_ENTRIES, MAX_QUEUE_ENTRIES)
        if name is None:
            return None
        defaults = UnitSpec(name=name)
        return UnitSpec(
            name=name,
            pasid_bits=defaults.pasid_bits if bits is None else bits,
            queue_entries=defaults.queue_entries if entries is None else entries,
        )

    def space(
        self, path: str, table: Mapping[str, object], name: str | None
    ) -> AddressSpaceSpec | None:
        self.unknown_keys(table, path, _SPACE_KEYS)
        kind = self.choice(table, path, "kind", _KINDS)
        if name is None:
            return None
        return AddressSpaceSpec(name=name, kind=kind or AddressSpaceSpec(name=name).kind)

    def choice(
        self, table: Mapping[str, object], path: str, key: str, choices: tuple[_T, ...]
    ) -> _T | None:
        """A string that must be one of ``choices``; None if absent or bad (reported)."""
        value = self.string(table, path, key)
        if value is None:
            return None
        chosen = _choose(value, choices)
        if chosen is None:
            listed = ", ".join(str(c) for c in choices)
            self.bad(_join(path, key), f"expected one of {listed}, got {value!r}")
        return chosen

    def set_specs(
        self, entries: list[tuple[str, Mapping[str, object], str | None]]
    ) -> tuple[SetSpec, ...]:
        specs = []
        sva_at: str | None = None
        mm_sets: dict[str, str] = {}  # address space -> its mm set's key path
        for path, table, name in entries:
            self.unknown_keys(table, path, _SET_KEYS)
            kind = self.choice(table, path, "type", _SET_TYPES)
            type_ok = kind is not None or "type" not in table
            kind = kind or SetSpec(name="").type
            token = self.name(table, path, "token")
            token_path = _join(path, "token")
            if not type_ok:
                token = None  # which token rule applies is unknown: say nothing more
            elif kind == "mm" and "token" not in table:
                self.missing(path, "token", "the name of an address space: an 'mm' set has one")
            elif kind == "null" and "token" in table:
                self.bad(
                    token_path,
                    "a set of type 'null' takes no token (type = \"mm\" is an address space's set)",
                )
                token = None
            if token is not None and self.refer(self.spaces, "address space", token, token_path):
                first = mm_sets.setdefault(token, path)
                if first != path:
                    self.bad(
                        token_path,
                        f"address space {token!r} already has an 'mm' set ({first}): one each",
                    )
            quota = self.quota(table, path)
            sva = self.boolean(table, path, "sva")
            if sva and sva_at is not None:
                self.bad(_join(path, "sva"), f"at most one set may have sva = true ({sva_at})")
            elif sva:
                sva_at = path
            if name is not None:
                specs.append(SetSpec(name=name, type=kind, token=token, quota=quota, sva=bool(sva)))
        return tuple(specs)

    def quota(self, table: Mapping[str, object], path: str) -> int | None:
        """A set's or a VM's quota: it reserves host IDs, so all of them must fit."""
        quota = self.integer(table, path, "quota", 0)
        if quota is not None:
            over = self.quota_total <= self.capacity < self.quota_total + quota
            self.quota_total += quota
            if over:
                self.bad(
                    _join(path, "quota"),
                    f"quotas add up to {_num(self.quota_total)} here, more than the capacity "
                    f"({_num(self.capacity)}): a quota reserves its IDs up front",
                )
        return quota

    def vm(self, path: str, table: Mapping[str, object], name: str | None) -> VmSpec | None:
        self.unknown_keys(table, path, _VM_KEYS)
        quota = self.quota(table, path)
        # A guest PASID is at most 20 bits wide, and PASID 0 is never allocated.
        capacity = self.integer(table, path, "capacity", 2, WIRE_PASID_LIMIT)
        units = tuple(unit for _, unit in self.names(table, path, "units"))
        if name is None:
            return None
        defaults = VmSpec(name=name)
        self.vm_units[name] = units
        self.vm_capacity[name] = defaults.capacity if capacity is None else capacity
        return VmSpec(
            name=name,
            quota=quota,
            capacity=self.vm_capacity[name],
            units=units,
        )

    def vendor_options(
        self, top: Mapping[str, object]
    ) -> tuple[tuple[str, tuple[tuple[str, OptionValue], ...]], ...]:
        """``[vendor.<name>]`` tables of plain values, or arrays of them (at most
        ``MAX_OPTION_ITEMS``, kept as tuples); each vendor checks its own keys."""
        if "vendor" not in top:
            return ()
        sections = self.table(top["vendor"], "vendor")
        if sections is None:
            return ()
        found = []
        for vendor, value in sections.items():
            where = _join("vendor", vendor)
            options = self.table(value, where)
            if options is None:
                continue
            plain: list[tuple[str, OptionValue]] = []
            for key, item in options.items():
                if isinstance(item, str | int | float | bool):
                    plain.append((key, item))
                elif isinstance(item, list) and len(item) > MAX_OPTION_ITEMS:
                    self.bad(
                        _join(where, key),
                        f"an array of {len(item)} items; at most {MAX_OPTION_ITEMS}",
                    )
                elif isinstance(item, list) and all(
                    isinstance(one, str | int | float | bool) for one in item
                ):
                    plain.append((key, tuple(item)))
                else:
                    self.bad(
                        _join(where, key),
                        "expected a string, number or boolean, or an array of them, "
                        f"got {_describe(item)}",
                    )
            found.append((vendor, tuple(plain)))
        return tuple(found)

    def domain(self, path: str, table: Mapping[str, object], name: str | None) -> DomainSpec | None:
        self.unknown_keys(table, path, _DOMAIN_KEYS)
        owner = self.name(table, path, "owner", required=True)
        sets = tuple(
            set_name
            for where, set_name in self.names(table, path, "sets")
            if self.refer(self.sets, "set", set_name, where)
        )
        if name is None or owner is None:
            return None
        return DomainSpec(name=name, owner=owner, sets=sets)

    def device_specs(
        self, entries: list[tuple[str, Mapping[str, object], str | None]]
    ) -> tuple[DeviceSpec, ...]:
        specs = []
        sources: dict[tuple[str, int], str] = {}  # (unit, source ID) -> the device's key path
        for path, table, name in entries:
            self.unknown_keys(table, path, _DEVICE_KEYS)
            unit = self.name(table, path, "unit", required=True)
            if not self.refer(self.units, "unit", unit, _join(path, "unit")):
                unit = None
            source_id = self.integer(table, path, "source_id", 0, MAX_SOURCE_ID, required=True)
            owner = self.name(table, path, "owner", required=True)
            domain = self.name(table, path, "domain")
            self.refer(self.domains, "domain", domain, _join(path, "domain"))
            bits = self.integer(table, path, "pasid_bits", 0, MAX_PASID_BITS)
            pasid_required = self.boolean(table, path, "prg_response_pasid_required")
            if unit is not None and source_id is not None:
                first = sources.setdefault((unit, source_id), path)
                if first != path:
                    self.bad(
                        _join(path, "source_id"),
                        f"source ID {source_id:#x} behind unit {unit!r} is taken ({first})",
                    )
            if name is None:
                continue
            self.devices[name] = unit
            if unit is not None and source_id is not None and owner is not None:
                specs.append(
                    DeviceSpec(
                        name=name,
                        unit=unit,
                        source_id=source_id,
                        owner=owner,
                        domain=domain,
                        pasid_bits=bits,
                        prg_response_pasid_required=bool(pasid_required),
                    )
                )
        return tuple(specs)

    # ------------------------------------------------------------------ steps

    def steps(
        self, top: Mapping[str, object], generators: Sequence[tuple[str, GeneratorSpec]] = ()
    ) -> tuple[Step, ...]:
        """The explicit steps merged with the generated ones, all checked in time order.

        Generated steps go through the same checks as written ones, so a generated PASID
        name that collides with a live one, or a stream that uses a name before it is
        bound, is reported at ``generators[i]/<n>``.
        """
        explicit = self.tables(top, "", "steps")
        generated = self.bounded_expansion(generators, sum(_work(t) for _, t in explicit))
        merged = merge_steps(explicit, generated)
        return _StepChecker(self, {where for where, _ in generated}).run(merged)

    def bounded_expansion(
        self, generators: Sequence[tuple[str, GeneratorSpec]], work: int
    ) -> list[tuple[str, Mapping[str, object]]]:
        """The generators' steps (as ``expand_all`` gives them), expanded one generator at a
        time so that a file asking for more than ``MAX_WORK`` events per run (``work``: its
        written steps') is stopped at the generator that crosses the bound, before the rest
        is expanded or anything runs."""
        if work > MAX_WORK:
            self.bad("steps", _too_much(work))
            return []
        generated: list[tuple[str, Mapping[str, object]]] = []
        for path, spec in generators:
            part = expand_all([(path, spec)], self.seed)
            work += sum(_work(table) for _, table in part)
            if work > MAX_WORK:
                self.bad(path, _too_much(work))
                return []
            generated += part
        # Stable: ties keep generator order, then each generator's own (as expand_all does).
        generated.sort(key=lambda item: _step_at(item[1]))
        return generated

    # ------------------------------------------------------------------ generators

    def generators(self, top: Mapping[str, object], seed: int) -> list[tuple[str, GeneratorSpec]]:
        """Each well-formed ``[[generators]]`` entry with its key path; the bad ones are
        reported and left out (so they expand into nothing)."""
        self.seed = seed
        found = []
        for path, table in self.tables(top, "", "generators"):
            spec = self.generator(path, table)
            if spec is not None:
                found.append((path, spec))
        return found

    def generator(self, path: str, table: Mapping[str, object]) -> GeneratorSpec | None:
        kind = self.string(table, path, "kind", required=True)
        if kind is not None and kind not in _GEN_KEYS:
            self.bad(_join(path, "kind"), f"expected one of {', '.join(_GEN_KEYS)}, got {kind!r}")
            kind = None
        if kind is None:
            return None
        required, optional = _GEN_KEYS[kind]
        self.unknown_keys(table, path, _GEN_COMMON | required | optional)
        for key in sorted(required - table.keys()):
            self.missing(path, key, f"generator kind {kind!r} needs it")
        at = self.number(table, path, "at", positive=False)
        seed = self.integer(table, path, "seed", 0)
        problems = len(self.problems)
        if kind == "churn":
            spec: GeneratorSpec | None = self.churn(path, table, at, seed)
        elif kind == "page_request_stream":
            spec = self.stream(path, table, at, seed)
        elif kind == "guest_allocations":
            spec = self.guest_allocations(path, table, at, seed)
        elif kind == "driver_pasids":
            spec = self.driver_pasids(path, table, at, seed)
        elif kind == "hotplug":
            spec = self.hotplug(path, table, at, seed)
        elif kind == "allocator_swaps":
            spec = self.allocator_swaps(path, table, at, seed)
        else:
            spec = self.storm(path, table, at, seed)
        return spec if len(self.problems) == problems and at is not None else None

    def number(
        self, table: Mapping[str, object], path: str, key: str, *, positive: bool
    ) -> float | None:
        """Microseconds: ``at`` and ``delay`` may be 0 (default), an ``interval`` may not."""
        if key not in table:
            return None if positive else 0.0
        value = table[key]
        span = "> 0" if positive else ">= 0"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.bad(
                _join(path, key),
                f"expected a number of microseconds {span}, got {_describe(value)}",
            )
            return None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            self.bad(_join(path, key), f"expected a finite number {span}, got {value}")
            return None
        if value > MAX_TIME_US:
            self.bad(_join(path, key), f"expected at most {MAX_TIME_US:g} µs, got {value:g}")
            return None
        return float(value)

    def size_range(self, table: Mapping[str, object], path: str, key: str) -> tuple[int, int]:
        """An integer >= 1, or ``[min, max]`` with 1 <= min <= max; (1, 1) when absent."""
        value = table.get(key, 1)
        where = _join(path, key)
        expected = "an integer >= 1 or [min, max]"
        if isinstance(value, list | tuple):
            ok = len(value) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_BURST
                for v in value
            )
            if ok and value[0] <= value[1]:
                return (int(value[0]), int(value[1]))
            self.bad(
                where,
                f"expected {expected} with 1 <= min <= max <= {_num(MAX_BURST)}, "
                f"got {list(value)!r}",
            )
            return (1, 1)
        size = self.integer(table, path, key, 1, MAX_BURST)
        return (1, 1) if size is None else (size, size)

    def device_list(self, table: Mapping[str, object], path: str) -> tuple[str, ...]:
        found = self.names(table, path, "devices")
        if "devices" in table and isinstance(table["devices"], list | tuple) and not found:
            self.bad(_join(path, "devices"), "expected at least one device name")
        return tuple(
            name for where, name in found if self.refer(self.devices, "device", name, where)
        )

    def pasid_refs(self, value: object, where: str) -> tuple[str | int, ...]:
        """An array of PASID names or numbers (names are checked where they are used)."""
        if not isinstance(value, list | tuple) or not value:
            self.bad(
                where,
                f"expected a non-empty array of PASID names or numbers, got "
                f"{_describe(value) if not isinstance(value, list | tuple) else 'an empty array'}",
            )
            return ()
        refs: list[str | int] = []
        for index, item in enumerate(value):
            is_name = isinstance(item, str) and item != ""
            is_number = (
                isinstance(item, int)
                and not isinstance(item, bool)
                and 0 <= item < WIRE_PASID_LIMIT
            )
            if isinstance(item, str | int) and (is_name or is_number):
                refs.append(item)
            else:
                self.bad(
                    f"{where}[{index}]",
                    f"expected a PASID name or a number in 0..{_num(WIRE_PASID_LIMIT - 1)}, "
                    f"got {_describe(item)}",
                )
        return tuple(refs)

    def guest_allocations(
        self, path: str, table: Mapping[str, object], at: float | None, seed: int | None
    ) -> GuestAllocationsSpec | None:
        vm = self.name(table, path, "vm")
        self.refer(self.vms, "VM", vm, _join(path, "vm"))
        count = self.integer(table, path, "count", 1, MAX_GENERATED)
        interval = self.number(table, path, "interval", positive=True)
        free = self.fraction(table, path, "free")
        drain = self.boolean(table, path, "drain")
        owner = self.name(table, path, "owner")
        prefix = self.string(table, path, "prefix")
        if at is None or vm is None or count is None or interval is None or free is None:
            return None
        return GuestAllocationsSpec(
            at=at,
            vm=vm,
            count=count,
            interval=interval,
            free=free,
            drain=bool(drain),
            owner=owner,
            prefix=f"guest{path.removeprefix('generators')}." if prefix is None else prefix,
            seed=seed,
            where=path,
        )

    def fraction(self, table: Mapping[str, object], path: str, key: str) -> float | None:
        """A probability in 0..1 (default 0.5)."""
        value = table.get(key, 0.5)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            shown = (
                _describe(value)
                if isinstance(value, bool) or not isinstance(value, int | float)
                else value
            )
            self.bad(_join(path, key), f"expected a number in 0..1, got {shown}")
            return None
        return float(value)

    def churn(
        self, path: str, table: Mapping[str, object], at: float | None, seed: int | None
    ) -> ChurnSpec | None:
        device = self.name(table, path, "device")
        self.refer(self.devices, "device", device, _join(path, "device"))
        set_name = self.name(table, path, "set")
        self.refer(self.sets, "set", set_name, _join(path, "set"))
        spaces = self.churn_spaces(path, table)
        processes = bool(self.boolean(table, path, "processes"))
        given = [k for k in ("address_space", "address_spaces") if k in table]
        if processes:
            given.append("processes")
        if len(given) != 1:
            self.bad(
                path,
                "churn takes one of address_space, address_spaces or processes = true (who "
                f"binds), got {' and '.join(given) or 'none'}",
            )
        count = self.integer(table, path, "count", 1, MAX_GENERATED)
        live = self.integer(table, path, "live", 1)
        interval = self.number(table, path, "interval", positive=True)
        jitter = self.integer(table, path, "jitter", 0) or 0
        prefix = self.string(table, path, "prefix")
        index = path.removeprefix("generators")
        prefix = f"churn{index}." if prefix is None else prefix
        if processes and count is not None:
            self.spawn(path, table, [f"{prefix}proc{n}" for n in range(count)])
        if (
            at is None
            or device is None
            or set_name is None
            or (not spaces and not processes)
            or count is None
            or live is None
            or interval is None
        ):
            return None
        return ChurnSpec(
            at=at,
            device=device,
            set=set_name,
            address_spaces=spaces,
            processes=processes,
            count=count,
            live=live,
            interval=interval,
            jitter=jitter,
            prefix=prefix,
            seed=seed,
            where=path,
        )

    def churn_spaces(self, path: str, table: Mapping[str, object]) -> tuple[str, ...]:
        """``address_space`` (one), or ``address_spaces`` (a pool, cycled), all declared."""
        if "address_space" in table:
            space = self.name(table, path, "address_space")
            ok = self.refer(self.spaces, "address space", space, _join(path, "address_space"))
            return (space,) if ok and space is not None else ()
        found = self.names(table, path, "address_spaces")
        if "address_spaces" in table and isinstance(table["address_spaces"], list) and not found:
            self.bad(_join(path, "address_spaces"), "expected at least one address space name")
        refs = [(w, n) for w, n in found if self.refer(self.spaces, "address space", n, w)]
        return tuple(name for _, name in refs) if len(refs) == len(found) else ()

    def spawn(self, path: str, table: Mapping[str, object], names: list[str]) -> None:
        """Declare a churn's generated processes; a name already taken is reported once."""
        for name in names:
            first = self.spaces.get(name)
            if first is not None:
                key = "prefix" if "prefix" in table else "processes"
                self.bad(
                    _join(path, key),
                    f"generated process {name!r} is already an address space ({first}): "
                    "pick another prefix",
                )
                return
        for name in names:
            self.spaces[name] = path
            self.processes[name] = path

    def hotplug(
        self, path: str, table: Mapping[str, object], at: float | None, seed: int | None
    ) -> HotplugSpec | None:
        """A host unit, or with ``vm`` one of that VM's; the step checks then apply the
        life-cycle rules (alternation, devices gone, a VM's last unit) to every cycle."""
        vm = self.name(table, path, "vm")
        unit = self.name(table, path, "unit")
        key = _join(path, "unit")
        if vm is not None:
            if self.refer(self.vm_units, "VM", vm, _join(path, "vm")):
                self.refer(self.vm_units[vm], f"virtual unit of VM {vm!r}", unit, key)
        elif "vm" not in table:
            self.refer(self.units, "unit", unit, key)
        count = self.integer(table, path, "count", 1, MAX_GENERATED)
        interval = self.number(table, path, "interval", positive=True)
        jitter = self.integer(table, path, "jitter", 0) or 0
        if at is None or unit is None or count is None or interval is None:
            return None
        return HotplugSpec(
            at=at,
            unit=unit,
            vm=vm,
            count=count,
            interval=interval,
            jitter=jitter,
            seed=seed,
            where=path,
        )

    def allocator_swaps(
        self, path: str, table: Mapping[str, object], at: float | None, seed: int | None
    ) -> AllocatorSwapsSpec | None:
        kinds: list[BackendKind] = []
        listed = self.array(table, path, "kinds")
        for index, name in enumerate(listed):  # a kind may come back in the cycle
            kind = _choose(name, BACKEND_KINDS) if isinstance(name, str) else None
            if kind is None:
                shown = repr(name) if isinstance(name, str) else _describe(name)
                self.bad(
                    f"{path}.kinds[{index}]",
                    f"expected one of {', '.join(BACKEND_KINDS)}, got {shown}",
                )
            else:
                kinds.append(kind)
        if "kinds" in table and isinstance(table["kinds"], list) and not listed:
            self.bad(_join(path, "kinds"), "expected at least one allocator backend")
        count = self.integer(table, path, "count", 1, MAX_GENERATED)
        interval = self.number(table, path, "interval", positive=True)
        jitter = self.integer(table, path, "jitter", 0) or 0
        force = self.boolean(table, path, "force")
        prefix = self.string(table, path, "prefix")
        if at is None or not kinds or count is None or interval is None:
            return None  # (a bad kind was reported: the generator is dropped)
        return AllocatorSwapsSpec(
            at=at,
            kinds=tuple(kinds),
            count=count,
            interval=interval,
            jitter=jitter,
            force=bool(force),
            prefix=f"swap{path.removeprefix('generators')}." if prefix is None else prefix,
            seed=seed,
            where=path,
        )

    def driver_pasids(
        self, path: str, table: Mapping[str, object], at: float | None, seed: int | None
    ) -> DriverPasidsSpec | None:
        set_name = self.name(table, path, "set")
        self.refer(self.sets, "set", set_name, _join(path, "set"))
        owner = self.name(table, path, "owner")
        count = self.integer(table, path, "count", 1, MAX_GENERATED)
        live = self.integer(table, path, "live", 1)
        interval = self.number(table, path, "interval", positive=True)
        jitter = self.integer(table, path, "jitter", 0) or 0
        device = self.name(table, path, "device", required=False)
        self.refer(self.devices, "device", device, _join(path, "device"))
        groups = self.integer(table, path, "groups", 0, MAX_GENERATED) or 0
        if groups and "device" not in table:
            self.missing(path, "device", "the device that sends the groups' page requests")
        prefix = self.string(table, path, "prefix")
        if (
            at is None
            or set_name is None
            or owner is None
            or count is None
            or live is None
            or interval is None
        ):
            return None
        return DriverPasidsSpec(
            at=at,
            set=set_name,
            owner=owner,
            count=count,
            live=live,
            interval=interval,
            jitter=jitter,
            device=device,
            groups=groups,
            prefix=f"driver{path.removeprefix('generators')}." if prefix is None else prefix,
            seed=seed,
            where=path,
        )

    def stream(
        self, path: str, table: Mapping[str, object], at: float | None, seed: int | None
    ) -> PageRequestStreamSpec | None:
        devices = self.device_list(table, path)
        count = self.integer(table, path, "count", 1, MAX_GENERATED)
        interval = self.number(table, path, "interval", positive=True)
        group_size = self.size_range(table, path, "group_size")
        mix = self.mix(table, path)
        weights = dict(mix)
        pools: list[tuple[str, tuple[str | int, ...]]] = []
        pasids_path = _join(path, "pasids")
        if "pasids" in table:
            value = table["pasids"]
            if isinstance(value, Mapping):
                per_device = self.table(value, pasids_path) or {}
                for device, refs in per_device.items():
                    where = _join(pasids_path, device)
                    if device not in devices:
                        self.bad(where, f"not one of this stream's devices ({_known(devices)})")
                    pools.append((device, self.pasid_refs(refs, where)))
                for device in devices:
                    if device not in per_device and (weights.get("valid") or weights.get("stop")):
                        self.bad(
                            pasids_path,
                            f"no PASIDs for device {device!r}: valid and stop requests need some",
                        )
            else:
                shared = self.pasid_refs(value, pasids_path)
                pools = [(device, shared) for device in devices]
        elif weights.get("valid") or weights.get("stop"):
            self.missing(path, "pasids", "PASID names or numbers: the mix has valid or stop")
        foreign: tuple[str | int, ...] = ()
        if "foreign_pasids" in table:
            foreign = self.pasid_refs(table["foreign_pasids"], _join(path, "foreign_pasids"))
        elif weights.get("foreign"):
            self.missing(path, "foreign_pasids", "PASID names or numbers: the mix has foreign")
        perm = _StepChecker(self).perm(path, table)
        service = self.boolean(table, path, "service")
        if at is None or count is None or interval is None or not devices or not mix:
            return None
        return PageRequestStreamSpec(
            at=at,
            devices=devices,
            count=count,
            group_size=group_size,
            interval=interval,
            mix=mix,
            pasids=tuple(pools),
            foreign_pasids=foreign,
            perm=perm or ("read",),
            service=True if service is None else service,
            seed=seed,
            where=path,
        )

    def mix(
        self, table: Mapping[str, object], path: str
    ) -> tuple[tuple[Literal["valid", "unknown", "foreign", "stop"], float], ...]:
        """The weight of each request kind: numbers >= 0, at least one of them > 0."""
        if "mix" not in table:
            return ()
        where = _join(path, "mix")
        weights = self.table(table["mix"], where)
        if weights is None:
            return ()
        self.unknown_keys(weights, where, _MIX_KINDS)
        mix: list[tuple[Literal["valid", "unknown", "foreign", "stop"], float]] = []
        for kind in _MIX_KINDS:
            if kind not in weights:
                continue
            weight = self.number(weights, where, kind, positive=False)
            if weight is not None and weight > 0:
                mix.append((kind, weight))
        if not mix and not any(p.key_path.startswith(where) for p in self.problems):
            self.bad(where, f"expected a weight > 0 for at least one of {', '.join(_MIX_KINDS)}")
        return tuple(mix)

    def storm(
        self, path: str, table: Mapping[str, object], at: float | None, seed: int | None
    ) -> StormSpec | None:
        devices = self.device_list(table, path)
        pasids: tuple[str | int, ...] = ()
        if "pasids" in table:
            pasids = self.pasid_refs(table["pasids"], _join(path, "pasids"))
            if devices and pasids and len(pasids) != len(devices):
                self.bad(
                    _join(path, "pasids"),
                    f"expected one PASID per device ({len(devices)}), got {len(pasids)}",
                )
        groups = self.integer(table, path, "groups", 1, MAX_GENERATED)
        group_size = self.size_range(table, path, "group_size")
        unit = self.name(table, path, "unit")
        if self.refer(self.units, "unit", unit, _join(path, "unit")):
            for device in devices:
                if self.devices.get(device) not in (None, unit):
                    self.bad(
                        _join(path, "devices"),
                        f"device {device!r} is behind unit {self.devices[device]!r}, not "
                        f"{unit!r}: the storm services {unit!r} only",
                    )
        delay = self.number(table, path, "delay", positive=False)
        perm = _StepChecker(self).perm(path, table)
        if at is None or groups is None or unit is None or delay is None or not devices:
            return None
        return StormSpec(
            at=at,
            devices=devices,
            pasids=pasids,
            groups=groups,
            group_size=group_size,
            unit=unit,
            delay=delay,
            perm=perm or ("read",),
            seed=seed,
            where=path,
        )


class _StepChecker:
    """Checks the steps in order, tracking what is live: named PASIDs and plugged units."""

    def __init__(self, parser: _Parser, generated: Collection[str] = ()) -> None:
        self.p = parser
        self.generated = generated
        """Key paths of generated steps: their ``at`` comes sorted from the merge."""
        self.live: dict[str, _Pasid] = {}
        self.dead: dict[str, str] = {}  # PASID name -> "freed at steps[4]"
        self.unplugged: dict[str, str] = {}  # unit -> key path of the unplug step
        self.unbound: dict[str, str] = {}  # bound PASID name -> how its binding went
        self.sva_names: dict[str, dict[str, _Pasid]] = {}
        """Address space -> its live bind names: the references on its one SVA PASID."""
        self.exited: dict[str, str] = {}  # generated process -> the step its last bind went at
        # Per VM: its plugged virtual units, and its live / freed guest PASID names.
        self.vm_plugged = {vm: set(units) for vm, units in parser.vm_units.items()}
        self.guest_live: dict[str, dict[str, str]] = {vm: {} for vm in parser.vm_units}
        self.guest_dead: dict[str, dict[str, str]] = {vm: {} for vm in parser.vm_units}
        self.allocators: dict[str, tuple[BackendKind | None, str]] = {}  # name -> kind, where
        self.spids: dict[tuple[str, int], tuple[str, str]] = {}
        """(set, SPID) -> (the attach step, the step that allocated the PASID)."""
        self.spid_of: dict[str, int] = {}  # a PASID's identity (see pasid_id) -> its SPID
        self.unregistered: set[str] = set()
        self.last_at = 0.0
        self.last_at_path: str | None = None

    def run(self, entries: list[tuple[str, Mapping[str, object]]]) -> tuple[Step, ...]:
        steps = []
        for path, table in entries:
            step = self.step(path, table)
            if step is not None:
                steps.append(step)
        return tuple(steps)

    def step(self, path: str, table: Mapping[str, object]) -> Step | None:
        p = self.p
        op_name = p.string(table, path, "op", required=True)
        op = _choose(op_name, _OPS) if op_name is not None else None
        if op_name is not None and op is None:
            p.bad(_join(path, "op"), f"expected one of {', '.join(_OPS)}, got {op_name!r}")
        if op is not None:
            required, optional = _OP_KEYS[op]
            takes = _STEP_COMMON | required | optional
            for key in table:
                if key in takes:
                    continue
                if key in _STEP_KEYS:
                    p.bad(
                        _join(path, key),
                        f"op {op!r} takes no {key!r} (it takes: {', '.join(sorted(takes))})",
                    )
                else:
                    p.bad(
                        _join(path, key),
                        f"unknown key (allowed for op {op!r}: {', '.join(sorted(takes))})",
                    )
            for key in sorted(required - table.keys()):
                p.missing(path, key, f"{_STEP_WHAT[key]}: op {op!r} needs it")
        else:
            p.unknown_keys(table, path, _STEP_KEYS)
        at = self.at(path, table)
        fields = self.fields(path, table)
        if op is None:
            return None
        self.semantics(op, path, table, fields)
        defaults = _STEP_DEFAULTS
        return Step(
            op=op,
            at=at,
            device=fields.device,
            set=fields.set,
            address_space=fields.address_space,
            owner=fields.owner,
            name=fields.name,
            pasid=fields.pasid,
            unit=fields.unit,
            vm=fields.vm,
            groups=defaults.groups if fields.groups is None else fields.groups,
            group_size=defaults.group_size if fields.group_size is None else fields.group_size,
            perm=defaults.perm if fields.perm is None else fields.perm,
            stop_markers=(
                defaults.stop_markers if fields.stop_markers is None else fields.stop_markers
            ),
            service=defaults.service if fields.service is None else fields.service,
            allocator=fields.allocator,
            kind=fields.kind,
            share=bool(fields.share),
            force=bool(fields.force),
            spid=fields.spid,
            source_id=fields.source_id,
            where=path,
        )

    def at(self, path: str, table: Mapping[str, object]) -> float:
        """The step's time: a finite number >= 0, never before the previous step's."""
        value = table.get("at", _STEP_DEFAULTS.at)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.p.bad(
                _join(path, "at"), f"expected a number of microseconds, got {_describe(value)}"
            )
            return self.last_at
        at = float(value)
        # A generated step's time comes from its generator's at, interval and count: checked
        # too, so no sum of them can reach infinity.
        if not math.isfinite(at) or at < 0:
            self.p.bad(_join(path, "at"), f"expected a finite number >= 0, got {value}")
            return self.last_at
        if at > MAX_TIME_US:
            self.p.bad(_join(path, "at"), f"expected at most {MAX_TIME_US:g} µs, got {at:g}")
            return self.last_at
        if path in self.generated:
            return at  # merged by time already; explicit steps keep their own order check
        if at < self.last_at:
            given = "" if "at" in table else " (absent, so the default)"
            self.p.bad(
                _join(path, "at"),
                f"expected at >= {self.last_at:g} ({self.last_at_path}.at), got {at:g}{given}: "
                "steps run in file order and time never goes back",
            )
            return self.last_at
        self.last_at = at
        self.last_at_path = path
        return at

    def fields(self, path: str, table: Mapping[str, object]) -> _Step:
        """Every key's type and range, whatever the op (so a bad op hides no other slip)."""
        p = self.p
        return _Step(
            device=p.name(table, path, "device"),
            set=p.name(table, path, "set"),
            address_space=p.name(table, path, "address_space"),
            owner=p.name(table, path, "owner"),
            name=p.name(table, path, "name"),
            pasid=self.pasid_value(path, table),
            unit=p.name(table, path, "unit"),
            vm=p.name(table, path, "vm"),
            groups=p.integer(table, path, "groups", 1, MAX_BURST),
            group_size=p.integer(table, path, "group_size", 1, MAX_BURST),
            perm=self.perm(path, table),
            stop_markers=p.integer(table, path, "stop_markers", 0, MAX_BURST),
            service=p.boolean(table, path, "service"),
            allocator=p.name(table, path, "allocator"),
            kind=p.choice(table, path, "kind", BACKEND_KINDS),
            share=p.boolean(table, path, "share"),
            force=p.boolean(table, path, "force"),
            spid=p.integer(table, path, "spid", 0, INVALID_IOASID - 1),
            source_id=p.integer(table, path, "source_id", 0, MAX_SOURCE_ID),
        )

    def pasid_value(self, path: str, table: Mapping[str, object]) -> str | int | None:
        if "pasid" not in table:
            return None
        value = table["pasid"]
        if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
            self.p.bad(
                _join(path, "pasid"),
                f"expected a PASID name (a string) or number (an integer), got {_describe(value)}",
            )
            return None
        return value

    def perm(self, path: str, table: Mapping[str, object]) -> tuple[PermName, ...] | None:
        if "perm" not in table:
            return None
        value = table["perm"]
        if not isinstance(value, list | tuple):
            self.p.bad(_join(path, "perm"), f"expected an array of strings, got {_describe(value)}")
            return None
        if not value:
            # Neither read nor write is what a stop marker looks like: ask for those by name.
            self.p.bad(
                _join(path, "perm"),
                f"expected at least one of {', '.join(_PERMS)} (use stop_markers for stop markers)",
            )
            return None
        perms: list[PermName] = []
        ok = True
        for index, item in enumerate(value):
            where = f"{path}.perm[{index}]"
            chosen = _choose(item, _PERMS) if isinstance(item, str) else None
            if chosen is None:
                shown = repr(item) if isinstance(item, str) else _describe(item)
                self.p.bad(where, f"expected one of {', '.join(_PERMS)}, got {shown}")
                ok = False
            elif chosen in perms:
                self.p.bad(where, f"{chosen!r} is listed twice")
                ok = False
            else:
                perms.append(chosen)
        return tuple(perms) if ok else None

    # ------------------------------------------------------------------ meaning

    def semantics(self, op: Op, path: str, table: Mapping[str, object], f: _Step) -> None:
        """References, and the life cycle of named PASIDs and units, for a step of ``op``."""
        p = self.p
        if op == "page_requests":
            burst = (f.groups or 1) * (f.group_size or 1) + (f.stop_markers or 0)
            if burst > MAX_BURST:
                p.bad(
                    path,
                    f"a step sends at most {_num(MAX_BURST)} page requests; groups x "
                    f"group_size + stop_markers is {_num(burst)} (split it into steps)",
                )
        if op in ("bind", "unbind", "page_requests"):
            self.device(f.device, _join(path, "device"))
        if op in ("bind", "alloc"):
            p.refer(p.sets, "set", f.set, _join(path, "set"))
            if p.refer(p.spaces, "address space", f.address_space, _join(path, "address_space")):
                self.address_space(op, path, f)
        if op == "alloc":
            if "owner" in table and "address_space" in table:
                p.bad(
                    path,
                    "alloc takes owner (a driver object's owner) or address_space, not both",
                )
            elif "owner" not in table and "address_space" not in table:
                p.missing(
                    path,
                    "owner",
                    "a driver's name, or address_space instead: the PASID's private data",
                )
        if op in ("guest_alloc", "guest_free") or (op in ("plug", "unplug") and "vm" in table):
            self.guest(op, path, f)
            return
        if op == "plug":
            self.plug_host_unit(path, f.unit)
        if op in ("service", "unplug") and p.refer(p.units, "unit", f.unit, _join(path, "unit")):
            assert f.unit is not None
            if f.unit in self.unplugged:
                p.bad(
                    _join(path, "unit"),
                    f"unit {f.unit!r} was unplugged at {self.unplugged[f.unit]}",
                )
            elif op == "unplug":
                self.unplugged[f.unit] = path
                self.unbound_by_unplug(f.unit, path)
        if op in ("unbind", "free", "page_requests"):
            self.use_pasid(op, path, f)
        if op in ("register_allocator", "unregister_allocator"):
            self.swap(op, path, f)
        if op in ("attach_spid", "detach_spid", "page_requests"):
            self.spid(op, path, table, f)
        if op in ("bind", "alloc") and f.name is not None:
            before = self.live.get(f.name)
            if before is not None:
                p.bad(
                    _join(path, "name"),
                    f"{f.name!r} already names a live PASID (from {before.where}); unbind or "
                    "free it first, or pick another name",
                )
            else:
                pasid = _Pasid(path, op, f.device, f.set, f.address_space)
                self.live[f.name] = pasid
                self.dead.pop(f.name, None)
                if op == "bind" and f.address_space in p.spaces:
                    self.sva_names.setdefault(f.address_space, {})[f.name] = pasid

    def address_space(self, op: Op, path: str, f: _Step) -> None:
        """A generated process exists until its last binding goes; an address space has one
        SVA PASID, so every bind of it while it holds one names that PASID's set."""
        assert f.address_space is not None
        key = _join(path, "address_space")
        if f.address_space in self.exited:
            self.p.bad(
                key,
                f"process {f.address_space!r} has exited (its last binding went at "
                f"{self.exited[f.address_space]})",
            )
            return
        bound = self.sva_names.get(f.address_space)
        if op != "bind" or not bound or f.set is None:
            return
        name, first = next(iter(bound.items()))
        if first.set is not None and first.set != f.set:
            self.p.bad(
                _join(path, "set"),
                f"address space {f.address_space!r} already has its PASID in set {first.set!r} "
                f"({name!r}, bound at {first.where}): a second bind shares that PASID, so it "
                "names that set",
            )

    def guest(self, op: Op, path: str, f: _Step) -> None:
        """A VM's step: its units plugged or not, its guest PASID names live or not."""
        p = self.p
        if not p.refer(p.vm_units, "VM", f.vm, _join(path, "vm")):
            return
        assert f.vm is not None
        if op in ("plug", "unplug"):
            self.vm_unit(op, path, f.vm, f.unit)
        elif op == "guest_alloc" and f.name is not None:
            before = self.guest_live[f.vm].get(f.name)
            if before is not None:
                p.bad(
                    _join(path, "name"),
                    f"{f.name!r} already names a live guest PASID of VM {f.vm!r} (from "
                    f"{before}); free it first, or pick another name",
                )
            else:
                self.guest_live[f.vm][f.name] = path
                self.guest_dead[f.vm].pop(f.name, None)
        elif op == "guest_free":
            self.guest_pasid(path, f.vm, f.pasid)

    def vm_unit(self, op: Op, path: str, vm: str, unit: str | None) -> None:
        p = self.p
        key = _join(path, "unit")
        if not p.refer(p.vm_units[vm], f"virtual unit of VM {vm!r}", unit, key):
            return
        assert unit is not None
        plugged = self.vm_plugged[vm]
        if op == "plug":
            if unit in plugged:
                p.bad(key, f"unit {unit!r} of VM {vm!r} is plugged already")
            plugged.add(unit)
        elif unit not in plugged:
            p.bad(key, f"unit {unit!r} of VM {vm!r} is not plugged here")
        elif len(plugged) == 1 and self.guest_live[vm]:
            # VT-d would have to orphan the PASIDs its allocator handed out (kernel-facts §1.8).
            p.bad(
                key,
                f"unit {unit!r} is VM {vm!r}'s last one and the guest still holds PASIDs "
                f"({_known(self.guest_live[vm])}): free them first",
            )
        else:
            plugged.remove(unit)

    def guest_pasid(self, path: str, vm: str, ref: str | int | None) -> None:
        key = _join(path, "pasid")
        if isinstance(ref, int):
            limit = self.p.vm_capacity[vm]
            if not 0 <= ref < limit:
                self.p.bad(key, f"expected a PASID in 0..{_num(limit - 1)} (VM {vm!r}'s capacity)")
            return
        if ref is None:
            return
        live, dead = self.guest_live[vm], self.guest_dead[vm]
        if ref in live:
            del live[ref]
            dead[ref] = f"freed at {path}"
        elif ref in dead:
            self.p.bad(key, f"guest PASID {ref!r} was {dead[ref]}; it is no longer live")
        else:
            self.p.bad(
                key,
                f"no guest PASID named {ref!r} in VM {vm!r}: a name must come from an earlier "
                f"guest_alloc of that VM (live: {_known(live)})",
            )

    def device(self, name: str | None, path: str) -> None:
        p = self.p
        if not p.refer(p.devices, "device", name, path) or name is None:
            return
        unit = p.devices[name]
        if unit is not None and unit in self.unplugged:
            p.bad(
                path,
                f"device {name!r} is gone: its unit {unit!r} was unplugged at "
                f"{self.unplugged[unit]}",
            )

    def plug_host_unit(self, path: str, unit: str | None) -> None:
        """A host unit comes back: it must have been unplugged (a VM's unit needs ``vm``)."""
        p, key = self.p, _join(path, "unit")
        owners = [vm for vm, units in p.vm_units.items() if unit in units]
        if unit not in p.units and owners:
            p.bad(key, f"no host unit named {unit!r}; for VM {owners[0]!r}'s, add vm")
        elif p.refer(p.units, "unit", unit, key) and self.unplugged.pop(unit or "", None) is None:
            p.bad(key, f"unit {unit!r} is plugged already")

    def unbound_by_unplug(self, unit: str, path: str) -> None:
        """Host unit ``unit`` goes at ``path``: the bindings on its devices go with it (their
        PASIDs stay allocated: free them, they cannot be unbound any more)."""
        for name, pasid in self.live.items():
            if pasid.op == "bind" and self.p.devices.get(pasid.device or "") == unit:
                # The first unplug took it; a later one of the same unit finds it gone.
                self.unbound.setdefault(
                    name, f"its binding on {pasid.device!r} went with unit {unit!r} at {path}"
                )

    def use_pasid(self, op: Op, path: str, f: _Step) -> None:
        """A ``pasid`` reference: a number in range, or a name that is live here."""
        key = _join(path, "pasid")
        ref = f.pasid
        if isinstance(ref, int) and op == "unbind":
            # A bind's name stands for one reference; a number would not say which one.
            self.p.bad(key, f"expected the name of the bind to undo, got the number {ref}")
            return
        if isinstance(ref, int):
            limit = WIRE_PASID_LIMIT if op == "page_requests" else self.p.capacity
            if ref >= limit or ref < 0:
                why = "a page request carries 20 bits" if op == "page_requests" else "capacity"
                self.p.bad(key, f"expected a PASID in 0..{_num(limit - 1)} ({why}), got {ref}")
            return
        if ref is None:
            return
        pasid = self.live.get(ref)
        if pasid is None:
            if ref in self.dead:
                self.p.bad(key, f"PASID {ref!r} was {self.dead[ref]}; it is no longer live")
            else:
                known = _known(self.live)
                self.p.bad(
                    key,
                    f"no PASID named {ref!r}: a name must come from an earlier bind or alloc "
                    f"step's name (live: {known})",
                )
            return
        if op == "unbind" and ref in self.unbound:
            self.p.bad(key, f"PASID {ref!r} is not bound any more: {self.unbound[ref]}; free it")
            return
        if op == "unbind":
            if pasid.op != "bind":
                self.p.bad(
                    key,
                    f"PASID {ref!r} was allocated (at {pasid.where}), not bound: free it instead",
                )
                return
            if f.device is not None and pasid.device != f.device:
                self.p.bad(
                    key,
                    f"PASID {ref!r} is bound to device {pasid.device!r} (at {pasid.where}), "
                    f"not {f.device!r}",
                )
                return
        if op in ("unbind", "free"):
            gone = {ref: f"{'unbound' if op == 'unbind' else 'freed'} at {path}"}
            space = pasid.address_space if pasid.op == "bind" else None
            if op == "free" and space is not None:
                # One PASID per address space: freeing it ends every bind name of it.
                for other in self.sva_names.get(space, {}):
                    gone.setdefault(other, f"freed at {path} (with {ref!r}, the same PASID)")
            for name, how in gone.items():
                del self.live[name]
                self.unbound.pop(name, None)
                self.dead[name] = how
                if space is not None:
                    self.drop_reference(space, name, path)

    def drop_reference(self, space: str, name: str, path: str) -> None:
        """Bind name ``name`` of ``space`` is gone; a generated process exits with its last."""
        names = self.sva_names.get(space, {})
        names.pop(name, None)
        if not names:
            self.sva_names.pop(space, None)
            if space in self.p.processes:
                self.exited[space] = path

    def swap(self, op: Op, path: str, f: _Step) -> None:
        """Allocator registrations: a name is registered once until it is unregistered, and
        ``share`` needs a live registration of the same kind to join. An unregister without
        ``force`` may be refused at replay time (the backend holds IDs), so unregistering a
        name again is a retry, not a mistake."""
        key = _join(path, "allocator")
        if f.allocator is None:
            return
        current = self.allocators.get(f.allocator)
        if op == "unregister_allocator":
            if current is None and f.allocator not in self.unregistered:
                self.p.bad(
                    key,
                    f"no allocator registered as {f.allocator!r} here "
                    f"(registered: {_known(self.allocators)})",
                )
            elif current is not None:
                del self.allocators[f.allocator]
                self.unregistered.add(f.allocator)
            return
        if current is not None:
            self.p.bad(key, f"{f.allocator!r} is already registered (at {current[1]})")
            return
        if (
            f.share
            and f.kind is not None
            and not any(kind == f.kind for kind, _ in self.allocators.values())
        ):
            self.p.bad(
                _join(path, "share"),
                f"no live {f.kind!r} allocator to share with: register one first",
            )
        self.allocators[f.allocator] = (f.kind, path)

    def spid(self, op: Op, path: str, table: Mapping[str, object], f: _Step) -> None:
        """SPIDs: unique within their set, one per PASID, used only while attached."""
        p = self.p
        if op == "page_requests":
            if "spid" not in table and "set" not in table:
                return
            if "pasid" in table:
                p.bad(path, "page_requests takes pasid, or set and spid (a guest PASID), not both")
                return
            if "spid" not in table:
                p.missing(path, "spid", "a guest PASID: set names the guest's set")
                return
            if "set" not in table:
                p.missing(path, "set", "the name of a set: the guest set the SPID belongs to")
                return
        if op == "attach_spid":
            self.attach_spid(path, f)
            return
        if not p.refer(p.sets, "set", f.set, _join(path, "set")) or f.spid is None:
            return
        assert f.set is not None
        attached = self.spids.get((f.set, f.spid))
        if attached is None:
            p.bad(
                _join(path, "spid"),
                f"SPID {f.spid} is not attached in set {f.set!r} here: an attach_spid step "
                "must come first",
            )
        elif op == "detach_spid":
            del self.spids[(f.set, f.spid)]
            self.spid_of.pop(attached[1], None)

    def attach_spid(self, path: str, f: _Step) -> None:
        key = _join(path, "pasid")
        if isinstance(f.pasid, int):
            self.p.bad(key, "expected the name of a live PASID: attach_spid needs to know its set")
            return
        if f.pasid is None or f.spid is None:
            return
        pasid = self.live.get(f.pasid)
        if pasid is None:
            self.use_pasid("attach_spid", path, f)  # says why the name is not live
            return
        if pasid.set is None:
            return  # its set was bad (reported there)
        identity = self.pasid_id(pasid)
        old = self.spid_of.get(identity)
        if old is not None:
            self.p.bad(key, f"PASID {f.pasid!r} already has SPID {old}: detach it first")
            return
        other = self.spids.get((pasid.set, f.spid))
        if other is not None:
            self.p.bad(
                _join(path, "spid"),
                f"SPID {f.spid} is already attached in set {pasid.set!r} (at {other[0]})",
            )
            return
        self.spids[(pasid.set, f.spid)] = (path, identity)
        self.spid_of[identity] = f.spid

    def pasid_id(self, pasid: _Pasid) -> str:
        """What tells PASIDs apart: its allocating step, except that every bind name of one
        address space stands for the same PASID (one per address space)."""
        if pasid.op == "bind" and pasid.address_space is not None:
            return f"address space {pasid.address_space!r}"
        return pasid.where
