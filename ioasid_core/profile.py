"""A vendor's contract, resolved and checked once: the profile every consumer reads.

A ``VendorPrq`` has required members and optional ones (a fast row codec, a driver log of
unhandled events, dump formats, a unit model and the deepest queue it allows, a guest
PASID path, a source-ID width, a shared options section, an answer discipline, checks
bound to the platform, hardware rules). They are all looked at here, once, when the vendor
is collected from its plugin: a member that is missing or of the wrong type is one line of
one :class:`NonConformingVendor` error naming the plugin (distribution and entry point),
the vendor and every such member. The pipeline, replay, guest path, vendor options,
hardware rules, the scenario checks, ``ioasid decode`` and ``compare`` then read the
:class:`VendorProfile`, never ``getattr``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from ioasid_core.guest import GUEST_OWNED, GuestPasidPath
from ioasid_core.prq.discipline import Discipline
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.unhandled import UnhandledEvent
from ioasid_core.prq.vendor import DumpFormat, RowCheck, RowCodec, VendorPrq, row_codec
from ioasid_core.vendor_options import NEUTRAL_UNITS, UnitModel

if TYPE_CHECKING:
    from ioasid_core.platform import Platform
    from ioasid_core.prq.hardware import HardwareRules

__all__ = [
    "NonConformingVendor",
    "VendorOrigin",
    "VendorProfile",
    "build_profile",
    "conformance_problems",
    "profile_of",
]

_METHODS: Final = ("encode_request", "decode_batch", "check", "encode_responses")
_ROW_METHODS: Final = ("encode_request_rows", "decode_rows", "encode_response_rows")
_UNIT_MODEL: Final = ("option_keys", "option_problems", "shape")
_GUEST_PATH: Final = ("name", "option_keys", "option_problems", "attach")


@attrs.frozen(kw_only=True)
class VendorOrigin:
    """Where a vendor came from: the plugin (entry-point name), its distribution and the
    entry point's value."""

    plugin: str
    distribution: str
    entry_point: str

    def __str__(self) -> str:
        if self.distribution == "?":  # registered by hand, not from an entry point
            return f"plugin {self.plugin!r}"
        return f"plugin {self.plugin!r} ({self.distribution}, entry point {self.entry_point})"


class NonConformingVendor(TypeError):
    """A vendor object that does not keep the contract; ``problems`` has one line per member."""

    def __init__(
        self, vendor: str, problems: Sequence[str], origin: VendorOrigin | None = None
    ) -> None:
        self.vendor = vendor
        self.problems = tuple(problems)
        self.origin = origin
        where = f"{origin}: " if origin is not None else ""
        problems_text = "; ".join(self.problems)
        super().__init__(f"{where}vendor {vendor!r} does not conform to VendorPrq: {problems_text}")

    def __reduce__(self) -> tuple[object, ...]:
        return (NonConformingVendor, (self.vendor, self.problems, self.origin))


@attrs.frozen(kw_only=True, eq=False)
class VendorProfile:
    """Everything the core reads from one vendor, resolved: defaults filled in, types checked."""

    vendor: VendorPrq
    name: str
    rows: RowCodec
    """The codec on rows: the vendor's own, or an adapter over its object methods."""
    discipline: Discipline
    log_unhandled: Callable[[UnhandledEvent], None] | None
    dump_formats: tuple[DumpFormat, ...]
    """Formats other than the queue's own (``ioasid decode --format``)."""
    unit_model: UnitModel
    max_queue_entries: int | None
    """The deepest queue the vendor's hardware can have (its unit model's optional
    ``max_queue_entries``); None: no limit of its own."""
    guest_path: GuestPasidPath
    source_id_bits: int
    option_section: str
    row_check_for: Callable[[Platform, str], RowCheck | None] | None
    """Checks bound to the platform (``PlatformCheck``), replacing ``row_check`` per unit."""
    hardware_rules: Callable[[Platform, str, Mapping[str, object]], HardwareRules] | None
    """The hardware's own rules before the queue (``HardwareModel``); None: the defaults."""
    origin: VendorOrigin | None


def _kind(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _lacks(attribute: str, offered: object, members: Sequence[str]) -> str | None:
    missing = [m for m in members if not hasattr(offered, m)]
    if missing:
        return f"{attribute} lacks {', '.join(missing)}"
    not_callable = [m for m in ("option_problems", "shape", "attach") if m in members]
    not_callable = [m for m in not_callable if not callable(getattr(offered, m))]
    if not_callable:
        return f"{attribute}: {', '.join(not_callable)} not callable"
    return None


def conformance_problems(vendor: object) -> list[str]:
    """Each required member ``vendor`` lacks and each member of the wrong type, one line each
    (empty: it conforms)."""
    problems: list[str] = []
    name = getattr(vendor, "name", None)
    if not isinstance(name, str) or not name:
        problems.append("missing name" if name is None else f"name is {_kind(name)}, not a str")
    elif not name.isprintable():  # it reaches terminals in tables, CSV, messages
        problems.append(f"name {name!r} has characters that are not printable")
    size = getattr(vendor, "entry_size", None)
    if size is None:
        problems.append("missing entry_size")
    elif type(size) is not int or size <= 0:
        problems.append(f"entry_size is {_kind(size)}, not an int > 0")
    policy = getattr(vendor, "default_policy", None)
    if policy is None:
        problems.append("missing default_policy")
    elif not isinstance(policy, LookupPolicy):
        problems.append(f"default_policy is {_kind(policy)}, not a LookupPolicy")
    expected = getattr(vendor, "expected", None)
    types = expected if isinstance(expected, tuple) else (expected,)
    if expected is None:
        problems.append("missing expected")
    elif not types or not all(isinstance(t, type) for t in types):
        problems.append(f"expected is {_kind(expected)}, not a type or a tuple of types")
    for method in _METHODS:
        if not hasattr(vendor, method):
            problems.append(f"missing {method}")
        elif not callable(getattr(vendor, method)):
            problems.append(f"{method} is not callable")
    problems += _optional_problems(vendor)
    return problems


def _optional_problems(vendor: object) -> list[str]:
    """The optional members: absent is fine, present must be right."""
    problems: list[str] = []
    rows = [m for m in _ROW_METHODS if hasattr(vendor, m)]
    if rows:
        missing = [m for m in (*_ROW_METHODS, "row_check") if not hasattr(vendor, m)]
        if missing:
            problems.append(f"a row codec ({', '.join(rows)}) lacks {', '.join(missing)}")
        problems += [f"{m} is not callable" for m in rows if not callable(getattr(vendor, m))]
    check = getattr(vendor, "row_check", None)
    if check is not None and not callable(check):
        problems.append(f"row_check is {_kind(check)}, neither None nor callable")
    for method in ("log_unhandled", "row_check_for", "hardware_rules"):
        if getattr(vendor, method, None) is not None and not callable(getattr(vendor, method)):
            problems.append(f"{method} is not callable")
    formats = getattr(vendor, "dump_formats", None)
    if formats is not None and (
        not isinstance(formats, Sequence) or not all(isinstance(f, DumpFormat) for f in formats)
    ):
        problems.append(f"dump_formats is {_kind(formats)}, not a sequence of DumpFormat")
    for attribute, members in (("unit_model", _UNIT_MODEL), ("guest_pasids", _GUEST_PATH)):
        offered = getattr(vendor, attribute, None)
        if offered is not None and (problem := _lacks(attribute, offered, members)):
            problems.append(problem)
    deepest = _max_queue_entries(vendor)
    if deepest is not None and (type(deepest) is not int or deepest <= 0):
        problems.append(f"unit_model.max_queue_entries is {_kind(deepest)}, not an int > 0")
    bits = getattr(vendor, "source_id_bits", None)
    if bits is not None and (
        not isinstance(bits, int) or isinstance(bits, bool) or not 0 < bits <= 64
    ):
        problems.append(f"source_id_bits is {_kind(bits)}, not an int in 1..64")
    section = getattr(vendor, "option_section", None)
    if section is not None and (not isinstance(section, str) or not section):
        problems.append(f"option_section is {_kind(section)}, not a str")
    declared = getattr(vendor, "discipline", None)
    if declared is not None and declared not in set(Discipline):
        known = ", ".join(d.value for d in Discipline)
        problems.append(f"discipline {declared!r} is not an answer discipline (known: {known})")
    return problems


def _max_queue_entries(vendor: object) -> object:
    """The unit model's optional ``max_queue_entries`` as offered (None: not offered)."""
    return getattr(getattr(vendor, "unit_model", None), "max_queue_entries", None)


def build_profile(vendor: object, origin: VendorOrigin | None = None) -> VendorProfile:
    """Check ``vendor`` and resolve its optional members; ``NonConformingVendor`` naming
    every problem (and ``origin``, when known) if it does not conform."""
    problems = conformance_problems(vendor)
    name = getattr(vendor, "name", None)
    shown = name if isinstance(name, str) and name else type(vendor).__name__
    if problems:
        raise NonConformingVendor(shown, problems, origin)
    prq: Any = vendor
    declared = getattr(vendor, "discipline", None)
    return VendorProfile(
        vendor=prq,
        name=prq.name,
        rows=row_codec(prq),
        discipline=Discipline.IOPF if declared is None else Discipline(declared),
        log_unhandled=getattr(vendor, "log_unhandled", None),
        dump_formats=tuple(getattr(vendor, "dump_formats", None) or ()),
        unit_model=getattr(vendor, "unit_model", None) or NEUTRAL_UNITS,
        max_queue_entries=deepest
        if isinstance(deepest := _max_queue_entries(vendor), int)
        else None,
        guest_path=getattr(vendor, "guest_pasids", None) or GUEST_OWNED,
        source_id_bits=getattr(vendor, "source_id_bits", None) or 32,
        option_section=getattr(vendor, "option_section", None) or prq.name,
        row_check_for=getattr(vendor, "row_check_for", None),
        hardware_rules=getattr(vendor, "hardware_rules", None),
        origin=origin,
    )


_PROFILES: dict[int, VendorProfile] = {}
"""Profiles by ``id(vendor)``; each holds its vendor, so an id is never reused while here."""


def profile_of(vendor: object) -> VendorProfile:
    """The vendor's profile: the one made when it was collected, else made now (a vendor
    built directly, in a test or a worker process). ``NonConformingVendor`` if it does not
    conform."""
    profile = _PROFILES.get(id(vendor))
    if profile is None or profile.vendor is not vendor:
        profile = _PROFILES[id(vendor)] = build_profile(vendor)
    return profile


def remember(profile: VendorProfile) -> VendorProfile:
    """Keep ``profile`` (made with its origin at collection) for :func:`profile_of`."""
    _PROFILES[id(profile.vendor)] = profile
    return profile
