"""A raw queue dump decoded entry by entry with a vendor's codec (``ioasid decode``).

Each entry is one of three things: a page request, an unhandled event (well formed, not a
request: the driver logs it, answers nothing) or malformed (the codec refused its bytes).
Only the last makes a dump bad.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import attrs

from ioasid_core.bits import Buffer, DecodeError, byte_view
from ioasid_core.printable import describe
from ioasid_core.profile import profile_of
from ioasid_core.prq.unhandled import UnhandledEvent
from ioasid_core.prq.vendor import DumpFormat, VendorPrq

__all__ = [
    "MAX_DUMP_BYTES",
    "QUEUE_FORMAT",
    "Decoded",
    "DecoderFailure",
    "DumpReport",
    "decode_dump",
    "dump_formats",
    "iter_dump",
]

MAX_DUMP_BYTES = 16 << 20
"""The largest dump ``ioasid decode`` reads (16 MiB): the deepest queue modelled, an SMMUv3
event queue of 2^19 32-byte records, is 16 MiB; ``/dev/zero`` is not a dump."""

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
    formats.update((f.name, f) for f in profile_of(vendor).dump_formats)
    return formats


class DecoderFailure(Exception):
    """A vendor's decoder raised something other than a ``DecodeError``: a bug in the
    plugin, not bad bytes. Names the vendor, its plugin (``origin``, as every other plugin
    failure does; else the codec's package), the entry's offset and the exception (its
    text escaped: it reaches a terminal)."""

    def __init__(
        self, vendor: str, package: str, offset: int, cause: BaseException, origin: object = None
    ) -> None:
        plugin = f"plugin {package}" if origin is None else str(origin)
        super().__init__(
            f"the decoder of vendor {vendor!r} ({plugin}) failed at byte {offset:#x}: "
            f"{describe(cause)}"
        )


def _origin(owner: object) -> object:
    """The plugin a codec's vendor came from, when the codec is a collected vendor's."""
    try:
        return None if owner is None else profile_of(owner).origin
    except Exception:  # a dump format's own decoder object, not a vendor
        return None


Decoded = tuple[Literal["request", "unhandled", "malformed"], dict[str, object] | str]
"""One item of :func:`iter_dump`: a request or unhandled event (as in :class:`DumpReport`),
or a malformed entry's message."""


def iter_dump(fmt: DumpFormat, vendor: str, data: Buffer, *, source: str) -> Iterator[Decoded]:
    """Every whole entry of ``data`` in format ``fmt``, in offset order, one at a time (a
    table of the first few need not hold them all); ``source`` names the dump in messages.
    Trailing bytes come first, as one ``malformed`` item. :class:`DecoderFailure` if the
    codec raises anything but a ``DecodeError``."""
    size = fmt.entry_size
    data = byte_view(data)  # offsets and slices in bytes
    if len(data) % size:
        yield (
            "malformed",
            f"{source}: {len(data)} bytes is not a whole number of {size}-byte entries; "
            f"the last {len(data) % size} bytes are ignored",
        )
    decode = fmt.decode_batch
    for offset in range(0, len(data) - size + 1, size):
        try:
            decoded = decode(data[offset : offset + size])
        except UnhandledEvent as event:
            yield (
                "unhandled",
                {"offset": offset, "kind": event.kind.value, "description": event.what},
            )
            continue
        except DecodeError as exc:
            # The error's own offset is within the one entry decoded: name the file's instead.
            yield ("malformed", f"{source}: {exc.layout} at byte {offset:#x}: {exc.what}")
            continue
        except Exception as exc:
            # The codec's class names its plugin (a mixin's method would name the core).
            owner = getattr(decode, "__self__", None)
            module = type(owner).__module__ if owner is not None else decode.__module__
            raise DecoderFailure(vendor, module.split(".")[0], offset, exc, _origin(owner)) from exc
        for request in decoded:
            yield (
                "request",
                {
                    "offset": offset,
                    "device": request.device,
                    "pasid": request.pasid if request.pasid_valid else None,
                    "grpid": request.grpid,
                    "last": request.last,
                    "perm": str(request.perm.name or "NONE").lower().replace("|", ","),
                    "addr": request.addr,
                    "stop_marker": request.stop_marker,
                },
            )


def decode_dump(fmt: DumpFormat, vendor: str, data: Buffer, *, source: str) -> DumpReport:
    """Every whole entry of ``data`` in format ``fmt``; ``source`` names the dump in errors."""
    entries: list[dict[str, object]] = []
    unhandled: list[dict[str, object]] = []
    errors: list[str] = []
    lists: dict[str, list[Any]] = {"request": entries, "unhandled": unhandled, "malformed": errors}
    for kind, item in iter_dump(fmt, vendor, data, source=source):
        lists[kind].append(item)
    return DumpReport(vendor, fmt.name, entries, unhandled, errors)
