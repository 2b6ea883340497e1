"""Every hook specification of the ``ioasid`` project, typed and documented.

Hooks are for wiring: probing a unit, registering allocators, following events. The hot paths
(one allocation, one page request) call the objects these hooks hand over directly, never
``pm.hook``. Call them through :class:`ioasid_core.plugins.Hooks`, which checks the results.

An implementation may take any subset of a spec's parameters, so adding a parameter later does
not break existing plugins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ioasid_core.errors import IoasidError
from ioasid_core.markers import hookspec
from ioasid_core.units import IommuUnit, VendorInfo

if TYPE_CHECKING:
    from ioasid_core.allocators import AllocatorOps
    from ioasid_core.events import Event
    from ioasid_core.figures import BenchmarkFigure
    from ioasid_core.logs.format import LogFormat
    from ioasid_core.prq.vendor import VendorPrq
    from ioasid_core.sets import IoasidSet
    from ioasid_core.space import IoasidSpace

__all__ = [
    "ioasid_allocator_refused",
    "ioasid_allocators_for_unit",
    "ioasid_benchmarks",
    "ioasid_event",
    "ioasid_log_formats",
    "ioasid_prq_vendors",
    "ioasid_set_created",
    "ioasid_set_freed",
    "ioasid_unit_removed",
    "ioasid_vendor_info",
]


# Allocator hooks: a unit comes and goes (probe, hot-unplug).


@hookspec
def ioasid_allocators_for_unit(
    unit: IommuUnit, space: IoasidSpace
) -> Sequence[AllocatorOps[Any]] | None:
    """Offer custom allocators for ``unit``, which is being probed into ``space``.

    Return ``None`` or an empty sequence when ``unit`` is not yours. The core registers each
    offered ops with ``space.register_allocator`` and remembers it for the unit, so that
    :func:`ioasid_unit_removed` follows its withdrawal. Don't register them yourself.

    :param unit: the unit being probed; look at ``unit.vendor`` and ``unit.caps``.
    :param space: the space the unit's IDs come from (e.g. a guest's space for a virtual unit).
    :return: the ops to register, in the order they should be registered.
    """


@hookspec
def ioasid_allocator_refused(
    unit: IommuUnit, space: IoasidSpace, ops: AllocatorOps[Any], error: IoasidError
) -> None:
    """The core could not register ``ops``, offered for ``unit``; react if it is yours.

    Typical cause: ``AllocatorBusyError`` because the default allocator already holds IDs, upon
    which VT-d falls back from scalable mode. Every plugin is told; compare ``ops`` with
    what you offered.

    :param unit: the unit whose probe offered ``ops``.
    :param space: the space that refused it.
    :param ops: the refused allocator, exactly as offered.
    :param error: why it was refused.
    """


@hookspec
def ioasid_unit_removed(unit: IommuUnit, space: IoasidSpace) -> None:
    """``unit`` is gone (hot-unplug); the core has already unregistered its allocators.

    Called even when none of the unit's allocators were accepted, so a vendor can free
    whatever else it set up at probe time.

    :param unit: the removed unit.
    :param space: the space it was probed into.
    """


# Set hooks.


@hookspec
def ioasid_set_created(space: IoasidSpace, set: IoasidSet) -> None:
    """A set was created in ``space`` (its ``SET_ALLOC`` event).

    Runs as a space subscriber: don't call ``space`` synchronously, use ``space.defer``.

    :param space: the space holding the set.
    :param set: the new set.
    """


@hookspec
def ioasid_set_freed(space: IoasidSpace, set: IoasidSet) -> None:
    """A set of ``space`` was destroyed (its ``SET_FREE`` event).

    Runs as a space subscriber: don't call ``space`` synchronously, use ``space.defer``.

    :param space: the space that held the set.
    :param set: the destroyed set.
    """


# Event hooks.


@hookspec
def ioasid_event(space: IoasidSpace, event: Event) -> None:
    """Every notifier event of ``space``, delivered at ``Priority.LAST``.

    Only delivered for spaces bridged with ``Hooks.attach``. Runs under the space's lock: don't
    call ``space`` synchronously (``ReentrancyError``), use ``space.defer``. An exception is
    collected into the ``ExceptionGroup`` the space raises and does not undo the operation.

    :param space: the space the event happened in.
    :param event: what happened.
    """


# Page-request hooks.


@hookspec
def ioasid_prq_vendors() -> Sequence[VendorPrq] | None:
    """Hand over this plugin's page-request codecs and handler rules, once.

    Each :class:`~ioasid_core.prq.vendor.VendorPrq` decodes the vendor's raw queue entries
    into page requests, says what its handler checks before any lookup and which lookup
    policy its driver followed, and encodes the responses. The pipeline calls these objects
    directly for every batch; this hook is called only to collect them.

    :return: the plugin's vendors, or ``None`` for a plugin that has none.
    """


# Reading real logs.


@hookspec
def ioasid_log_formats() -> Sequence[LogFormat] | None:
    """Hand over parsers for what this vendor's driver prints (``ioasid logs``), once.

    Each :class:`~ioasid_core.logs.LogFormat` names the vendor, the words that pick its lines
    (``triggers``), its rate-limited printers and a factory of per-stream parsers. A plugin
    whose hook raises or returns something else is reported and left out; the others are read.

    :return: the plugin's formats, or ``None`` for a plugin that reads no logs.
    """


# Reporting.


@hookspec
def ioasid_benchmarks() -> Sequence[BenchmarkFigure] | None:
    """Add figures to ``ioasid bench`` (e.g. a vendor's decode-resolve-respond ratio).

    Each figure is a ratio against a baseline measured in the same process; use
    :func:`ioasid_core.figures.chunked_ratio` so that every figure is measured the same way.

    :return: the plugin's figures, or ``None``.
    """


@hookspec
def ioasid_vendor_info() -> VendorInfo | None:
    """Say which vendor this plugin drives, for ``ioasid plugins``.

    :return: the vendor's name and a one-line description, or ``None`` for a plugin that
        drives no vendor (a tracer, a test helper).
    """
