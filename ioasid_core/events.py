"""Notifier events and subscriptions, and their delivery order.

Subscribers of one event run in priority order (CPU, IOMMU, DEVICE, LAST), equal priorities
in subscription order; the global subscribers and the event's set's subscribers are merged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from ioasid_core.types import INVALID_IOASID, EventKind, Priority

if TYPE_CHECKING:
    from ioasid_core.sets import IoasidSet

__all__ = ["Event", "Subscription", "merge_subscribers"]


@attrs.frozen
class Event:
    """What happened to an ID (or a set). An absent ID or SPID is ``INVALID_IOASID``."""

    kind: EventKind
    ioasid: int = INVALID_IOASID
    spid: int = INVALID_IOASID
    set: IoasidSet | None = None
    private: object = None


@attrs.define(eq=False)
class Subscription:
    """A registered callback. Keep it to ``unsubscribe`` later."""

    callback: Callable[[Event], object]
    set: IoasidSet | None
    priority: Priority
    seq: int
    active: bool = True


def _order(sub: Subscription) -> tuple[int, int]:
    """Delivery order: higher priority first, then subscription order."""
    return (-sub.priority, sub.seq)


def insert_sorted(subs: list[Subscription], sub: Subscription) -> None:
    """Insert keeping delivery order (new subscriptions have the highest seq)."""
    subs.append(sub)
    subs.sort(key=_order)


def merge_subscribers(
    global_subs: list[Subscription], set_subs: list[Subscription]
) -> list[Subscription]:
    """Every subscriber of one event, in delivery order."""
    if not set_subs:
        return global_subs
    if not global_subs:
        return set_subs
    return sorted(global_subs + set_subs, key=_order)
