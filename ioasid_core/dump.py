"""A raw queue dump decoded entry by entry with a vendor's codec (``ioasid decode``).

Each entry is one of three things: a page request, an unhandled event (well formed, not a
request: the driver logs it, answers nothing) or malformed (the codec refused its bytes).
Only the last makes a dump bad.
"""

from __future__ import annotations

import attrs

from ioasid_core.bits import Buffer, DecodeError
from ioasid_core.prq.unhandled import UnhandledEvent
from ioasid_core.prq.vendor import DumpFormat, DumpFormats, VendorPrq

__all__ = ["QUEUE_FORMAT", "DumpReport", "decode_dump", "dump_formats"]

QUEUE_FORMAT = "queue"
"""The name of a vendor's own queue entry format (the default)."""


@attrs.frozen
class DumpReport:
    """What ``decode_dump`` found; ``entries`` and ``unhandled`` in offset order."""

    vendor: str
    format: str
    entries: list[dict[str, object]]
    """Page requests: offset, device, pasid (None if not valid), grpid, last, perm, addr,
    stop_marker."""
    unhandled: list[dict[str, object]]
    """Unhandled events: offset, kind, description."""
    errors: list[str]
    """Malformed entries (and trailing bytes), each naming its offset."""

    def as_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


def dump_formats(vendor: VendorPrq) -> dict[str, DumpFormat]:
    """The formats ``vendor``'s dumps may be in, its queue's own first."""
    own = DumpFormat(QUEUE_FORMAT, vendor.entry_size, vendor.decode_batch, "the queue's own")
    formats = {QUEUE_FORMAT: own}
    if isinstance(vendor, DumpFormats):
        formats.update((f.name, f) for f in vendor.dump_formats)
    return formats


def decode_dump(fmt: DumpFormat, vendor: str, data: Buffer, *, source: str) -> DumpReport:
    """Every whole entry of ``data`` in format ``fmt``; ``source`` names the dump in errors."""
    size = fmt.entry_size
    entries: list[dict[str, object]] = []
    unhandled: list[dict[str, object]] = []
    errors: list[str] = []
    if len(data) % size:
        errors.append(
            f"{source}: {len(data)} bytes is not a whole number of {size}-byte entries; "
            f"the last {len(data) % size} bytes are ignored"
        )
    for offset in range(0, len(data) - size + 1, size):
        try:
            decoded = fmt.decode_batch(data[offset : offset + size])
        except UnhandledEvent as event:
            unhandled.append(
                {"offset": offset, "kind": event.kind.value, "description": event.what}
            )
            continue
        except DecodeError as exc:
            # The error's own offset is within the one entry decoded: name the file's instead.
            errors.append(f"{source}: {exc.layout} at byte {offset:#x}: {exc.what}")
            continue
        entries += [
            {
                "offset": offset,
                "device": request.device,
                "pasid": request.pasid if request.pasid_valid else None,
                "grpid": request.grpid,
                "last": request.last,
                "perm": str(request.perm.name or "NONE").lower().replace("|", ","),
                "addr": request.addr,
                "stop_marker": request.stop_marker,
            }
            for request in decoded
        ]
    return DumpReport(vendor, fmt.name, entries, unhandled, errors)
