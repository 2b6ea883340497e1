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

import attrs

from ioasid_core.errors import AccessDeniedError, NotFoundError
from ioasid_core.platform import AddressSpace, Device, Platform
from ioasid_core.prq.types import PageRequest
from ioasid_core.sets import IoasidSet

__all__ = ["FAILED", "LookupPolicy", "Outcome", "Resolution", "Resolver", "make_resolver"]


class LookupPolicy(enum.Enum):
    """Where a page-request handler looks a PASID up."""

    GLOBAL = "global"
    SET = "set"
    ENDPOINT = "endpoint"
    DEVICE = "device"


class Outcome(enum.Enum):
    """What resolving one request found."""

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


@attrs.define(slots=True)
class Resolution:
    """The result of resolving one request; ``target`` is set when ``RESOLVED``.

    Treat as immutable: the failures are shared singletons (``FAILED[outcome]``).
    """

    outcome: Outcome
    target: object = None
    cross_owner: bool = False
    type_confusion: bool = False

    @property
    def ok(self) -> bool:
        """Resolved to an object of the expected type (the handler may service it)."""
        return self.outcome is Outcome.RESOLVED and not self.type_confusion


FAILED: dict[Outcome, Resolution] = {
    outcome: Resolution(outcome) for outcome in Outcome if outcome is not Outcome.RESOLVED
}
"""One shared resolution per failure outcome: a failed lookup allocates nothing."""

Resolver = Callable[[str, PageRequest], Resolution]
"""``resolve(unit_name, request)``: one request from a unit's queue."""


def _alive(data: object) -> bool:
    """The SVA getter (``mmget_not_zero``): refuses an address space that is exiting."""
    return not getattr(data, "dying", False)


def make_resolver(
    platform: Platform,
    policy: LookupPolicy,
    *,
    sva_set: IoasidSet | None = None,
    expected: type | tuple[type, ...] = AddressSpace,
) -> Resolver:
    """A resolver for one policy, bound once (no per-request dispatch on the policy).

    ``sva_set`` is the vendor's SVA set (needed by ``SET``); ``expected`` is the type of
    private data the handler knows how to service.
    """
    if policy is LookupPolicy.SET and sva_set is None:
        raise ValueError("the SET policy needs the vendor's SVA set")
    space = platform.space
    find = space.find
    device_by_source = platform.device_by_source
    serves = platform.serves
    binding = platform.binding

    def judge(device: Device, data: object) -> Resolution:
        return Resolution(
            Outcome.RESOLVED, data, not serves(device, data), not isinstance(data, expected)
        )

    def lookup_global(device: Device, pasid: int) -> Resolution:
        try:
            data = find(None, pasid)
        except NotFoundError:
            return FAILED[Outcome.UNKNOWN_PASID]
        return judge(device, data)

    def lookup_set(device: Device, pasid: int) -> Resolution:
        try:
            data = find(sva_set, pasid, _alive)
        except NotFoundError:
            return FAILED[Outcome.UNKNOWN_PASID]
        except AccessDeniedError:
            return FAILED[Outcome.FOREIGN]
        if data is None:
            return FAILED[Outcome.DYING]
        return judge(device, data)

    def lookup_endpoint(device: Device, pasid: int) -> Resolution:
        try:
            owner = space.find_set(pasid)
        except NotFoundError:
            return FAILED[Outcome.UNKNOWN_PASID]
        domain = device.domain
        if domain is None or not any(s is owner for s in domain.sets):
            return FAILED[Outcome.FOREIGN]
        try:
            data = find(owner, pasid, _alive)
        except (NotFoundError, AccessDeniedError):  # freed meanwhile
            return FAILED[Outcome.UNKNOWN_PASID]
        if data is None:
            return FAILED[Outcome.DYING]
        return judge(device, data)

    def lookup_device(device: Device, pasid: int) -> Resolution:
        target = binding(device.name, pasid)
        if target is None:
            return FAILED[Outcome.NOT_BOUND]
        if not _alive(target):
            return FAILED[Outcome.DYING]
        return judge(device, target)

    lookup = {
        LookupPolicy.GLOBAL: lookup_global,
        LookupPolicy.SET: lookup_set,
        LookupPolicy.ENDPOINT: lookup_endpoint,
        LookupPolicy.DEVICE: lookup_device,
    }[policy]

    def resolve(unit: str, request: PageRequest) -> Resolution:
        device = device_by_source(unit, request.device)
        if device is None:
            return FAILED[Outcome.UNKNOWN_DEVICE]
        if not request.pasid_valid:
            return FAILED[Outcome.NO_PASID]
        pasid = request.pasid
        if not 0 <= pasid < 1 << device.pasid_bits:
            return FAILED[Outcome.PASID_TOO_WIDE]
        return lookup(device, pasid)

    return resolve
