"""Lookup policies: which PASIDs a page-request handler may resolve, and what it found.

The question the 2019 mailing-list argument was about. ``GLOBAL`` searches every set (the
"NULL set"), as the VT-d driver did; ``SET`` searches only the vendor's SVA set with a getter
that refuses dying address spaces, as the SVA library did for SMMUv3; ``ENDPOINT`` searches
only the sets owned by the requesting endpoint's domain, as virtio-iommu routes; ``DEVICE``
accepts only PASIDs attached to the requesting device, as the kernel does since v6.2.

A :class:`Resolution` says what happened, including the two outcomes a comparison counts: the
request resolved to private data its device has no business with (``cross_owner``), or to an
object of a type the handler does not expect (``type_confusion``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

from ioasid_core.platform import AddressSpace, Platform
from ioasid_core.sets import IoasidSet

__all__ = [
    "FAILED",
    "RESOLVED",
    "LookupPolicy",
    "Outcome",
    "Resolution",
    "Resolver",
    "make_resolver",
]


class LookupPolicy(enum.Enum):
    """Where a page-request handler looks a PASID up."""

    GLOBAL = "global"
    SET = "set"
    ENDPOINT = "endpoint"
    DEVICE = "device"


class Outcome(enum.Enum):
    """What resolving one request found."""

    # Members are singletons compared by identity, so the identity hash is right, and it is
    # computed in C: ``Enum.__hash__`` is Python code, paid on every counted request.
    __hash__ = object.__hash__

    RESOLVED = "resolved"
    NO_PASID = "no_pasid"
    """The request carries no PASID."""
    PASID_TOO_WIDE = "pasid_too_wide"
    """The PASID is beyond the device's width."""
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_PASID = "unknown_pasid"
    """Not allocated."""
    FOREIGN = "foreign"
    """Allocated, but outside what the policy may search (another owner's set)."""
    NOT_BOUND = "not_bound"
    """Not attached to the requesting device (``DEVICE`` policy)."""
    DYING = "dying"
    """Found, but the getter refused it (the address space is exiting)."""


@attrs.frozen(eq=False)
class Resolution:
    """What resolving one request found. Interned: one object per combination, so the
    per-request path allocates nothing; compared (and hashed) by identity, so counting
    them costs a C-level hash. Read the fields to compare."""

    outcome: Outcome
    cross_owner: bool = False
    """Resolved to private data the requesting device's owner does not own."""
    type_confusion: bool = False
    """Resolved to an object of a type the handler does not expect."""
    ok: bool = attrs.field(init=False, eq=False)
    """Resolved to an object of the expected type (the handler may service it). A field,
    not a property: it is read per request, and the resolutions are made once."""

    def __attrs_post_init__(self) -> None:
        ok = self.outcome is Outcome.RESOLVED and not self.type_confusion
        object.__setattr__(self, "ok", ok)


FAILED: dict[Outcome, Resolution] = {
    outcome: Resolution(outcome) for outcome in Outcome if outcome is not Outcome.RESOLVED
}
"""One shared resolution per failure outcome."""

RESOLVED: dict[tuple[bool, bool], Resolution] = {
    (cross, confused): Resolution(Outcome.RESOLVED, cross, confused)
    for cross in (False, True)
    for confused in (False, True)
}
"""The shared successful resolutions, by ``(cross_owner, type_confusion)``."""

Resolver = Callable[[int, bool, int], Resolution]
"""``resolve(source_id, pasid_valid, pasid)``: one request from the queue of the unit the
resolver was made for (the three fields of a request that a lookup reads)."""


def make_resolver(
    platform: Platform,
    unit: str,
    policy: LookupPolicy,
    *,
    sva_set: IoasidSet | None = None,
    expected: Any = AddressSpace,
) -> Resolver:
    """A resolver for one unit under one policy, bound once (no per-request dispatch).

    ``sva_set`` is the vendor's SVA set (needed by ``SET``). ``expected`` is the type (or
    tuple of types) of private data the handler knows how to service; its instances carry
    ``owner`` and ``dying`` attributes, as ``AddressSpace`` and ``Domain`` do. The SVA getter
    (``mmget_not_zero``: refuse an exiting address space) is applied to what the lookup
    returns, which is what the kernel's getter did, without a callback per request.
    """
    if policy is LookupPolicy.SET and sva_set is None:
        raise ValueError("the SET policy needs the vendor's SVA set")
    # The space's own lists of records and data, indexed by ID (records_view.py), not the
    # ``records_view()`` mapping: a list index is a specialised bytecode, a method call is
    # not. Safe because every reader below has checked ``0 <= pasid`` (a negative index
    # would read from the end); a PASID past the mapped IDs is an IndexError, the rare path.
    records = platform.space._records
    privates = platform.space._data
    sources = platform.sources(unit)
    by_set = policy is LookupPolicy.SET
    resolved = RESOLVED
    fine = RESOLVED[False, False]
    cross = RESOLVED[True, False]
    no_pasid = FAILED[Outcome.NO_PASID]
    too_wide = FAILED[Outcome.PASID_TOO_WIDE]
    unknown_device = FAILED[Outcome.UNKNOWN_DEVICE]
    unknown_pasid = FAILED[Outcome.UNKNOWN_PASID]
    foreign = FAILED[Outcome.FOREIGN]
    not_bound = FAILED[Outcome.NOT_BOUND]
    dying = FAILED[Outcome.DYING]
    exact = expected if isinstance(expected, type) else None  # a quicker first check

    def judge(data: Any, device: Any) -> Resolution:
        """What was found, past the fast check below (the rare path: an unexpected type, or
        an expected one without ``dying`` and ``owner``)."""
        confused = not isinstance(data, expected)
        if getattr(data, "dying", False):
            return dying
        return resolved[
            getattr(data, "owner", None) != device.owner and id(data) not in device.bound_ids,
            confused,
        ]

    # One function per policy, with its branches inline: a call per layer (device, lookup,
    # verdict) or a test of the policy per request would cost more than the work (the
    # tail, the same in each, is the SVA getter and the owner check). The records are read
    # as find() reads them.
    def by_device(source_id: int, pasid_valid: bool, pasid: int) -> Resolution:
        try:
            device = sources[source_id]
        except (KeyError, TypeError):
            return unknown_device
        if not pasid_valid:
            return no_pasid
        if not 0 <= pasid < device.pasid_limit:
            return too_wide
        try:
            data: Any = device.bindings[pasid]  # indexed: cheaper than .get() (see above)
        except KeyError:  # (binding to None is refused: a miss is the only "not bound")
            return not_bound
        if data.__class__ is exact or isinstance(data, expected):
            handled: Any = data  # (isinstance narrowed it)
            try:  # handled types carry ``dying`` and ``owner`` (a try costs nothing)
                if handled.dying:  # the SVA getter (mmget_not_zero), or the handler's check
                    return dying
                if handled.owner == device.owner or id(data) in device.bound_ids:
                    return fine
                return cross
            except AttributeError:
                pass
        return judge(data, device)

    def anywhere(source_id: int, pasid_valid: bool, pasid: int) -> Resolution:
        try:
            device = sources[source_id]
        except (KeyError, TypeError):
            return unknown_device
        if not pasid_valid:
            return no_pasid
        if not 0 <= pasid < device.pasid_limit:
            return too_wide
        try:
            rec = records[pasid]  # 0 <= pasid: checked above
        except (IndexError, TypeError):  # never allocated (beyond the mapped IDs); not an int
            return unknown_pasid
        if rec is None:  # not allocated now
            return unknown_pasid
        data: Any = privates[pasid]  # after the tuple, with no call between (records_view.py)
        if data.__class__ is exact or isinstance(data, expected):
            handled: Any = data  # (isinstance narrowed it)
            try:
                if handled.dying:
                    return dying
                if handled.owner == device.owner or id(data) in device.bound_ids:
                    return fine
                return cross
            except AttributeError:
                pass
        return judge(data, device)

    def in_sets(source_id: int, pasid_valid: bool, pasid: int) -> Resolution:
        try:
            device = sources[source_id]
        except (KeyError, TypeError):
            return unknown_device
        if not pasid_valid:
            return no_pasid
        if not 0 <= pasid < device.pasid_limit:
            return too_wide
        try:
            rec = records[pasid]  # 0 <= pasid: checked above
        except (IndexError, TypeError):
            return unknown_pasid
        if rec is None:
            return unknown_pasid
        data: Any = privates[pasid]  # read before any call (``in`` may call ``__eq__``)
        if by_set:
            if rec[0] is not sva_set:
                return foreign
        elif rec[0] not in device.domain_sets:  # by identity
            return foreign
        if data.__class__ is exact or isinstance(data, expected):
            handled: Any = data  # (isinstance narrowed it)
            try:
                if handled.dying:
                    return dying
                if handled.owner == device.owner or id(data) in device.bound_ids:
                    return fine
                return cross
            except AttributeError:
                pass
        return judge(data, device)

    if policy is LookupPolicy.DEVICE:
        return by_device
    if policy is LookupPolicy.GLOBAL:
        return anywhere
    return in_sets
