"""``ioasid logs --scenario``: a scenario that replays a log's page requests and faults.

"Replay my machine's fault storm under each driver's rules": every recognised page request
and fault with a source ID becomes a ``page_requests`` step of its device, at the time the log
printed it. Units are named as printed; devices by source ID behind their unit; one address
space per (device, PASID), bound to that device through the SVA set before the first
request. The file says in comments what was guessed: a scenario cannot carry everything a
log does (addresses, fault reasons), and the model allocates its own PASID numbers.

Memory is bounded: at most :data:`MAX_DEVICES` devices and :data:`MAX_SPACES` (device,
PASID) pairs are modelled and :data:`MAX_STEPS` steps written; what is left out is counted
in the file's comments.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Final

import attrs

from ioasid_core.logs.record import LogRecord, Unrecognised
from ioasid_core.printable import printable

__all__ = ["MAX_DEVICES", "MAX_SPACES", "MAX_STEPS", "ScenarioWriter", "seconds"]

MAX_DEVICES: Final = 1024
MAX_SPACES: Final = 4096
MAX_STEPS: Final = 10_000
_MAX_GROUPS: Final = 0x10000
_MAX_AT: Final = 1e15  # the loader's bound on ``at`` (µs)
_SOURCE_BITS: Final = 16  # every vendor's queue format carries a 16-bit source ID (VT-d's RID)
_REPLAYED: Final = ("page_request", "fault")
_PERMS: Final = {"r": "read", "w": "write", "x": "exec", "p": "priv"}

_KERNEL: Final = re.compile(r"\d+\.\d+")
_RELATIVE: Final = re.compile(r"[+-]\s*\d+\.\d+")
_FORMATS: Final = ("%a %b %d %H:%M:%S %Y",)  # dmesg -T
_YEARLESS: Final = (
    "%Y %b %d %H:%M:%S",  # syslog, journal
    "%Y %b %d %H:%M:%S.%f",  # journalctl -o short-precise
    "%Y %b %d %H:%M",  # dmesg --human's first line ("%b%e %H:%M": "Aug 4 09:48")
    "%Y %b%d %H:%M",  # the same for a day from 10 on: "Oct14 06:51"
)


def seconds(stamp: str | None) -> tuple[float | None, str]:
    """The time a printed timestamp stands for, in seconds, and its clock: ``"relative"``
    (to the line before, ``dmesg -d``), ``"uptime"`` (kernel and ftrace seconds), ``"wall"``
    (a date with its year), ``"yearless"`` (a date without one: read in leap year 2000, so
    Feb 29 is a date); ``(None, "")`` when it cannot be read. Times of two clocks cannot be
    compared."""
    if stamp is None:
        return None, ""
    text = stamp.strip()
    if _RELATIVE.fullmatch(text):
        return float(text.replace(" ", "")), "relative"
    first = text.split()[0]
    if _KERNEL.fullmatch(first):
        return float(first), "uptime"
    for fmt in _FORMATS:
        try:
            return (datetime.strptime(text, fmt) - datetime(1900, 1, 1)).total_seconds(), "wall"
        except ValueError:
            continue
    for fmt in _YEARLESS:
        try:
            when = datetime.strptime(f"2000 {text}", fmt)
        except ValueError:
            continue
        return (when - datetime(1900, 1, 1)).total_seconds(), "yearless"
    try:
        when = datetime.fromisoformat(text.replace(",", "."))
    except ValueError:
        return None, ""
    return (when.replace(tzinfo=None) - datetime(1900, 1, 1)).total_seconds(), "wall"


@attrs.define
class _Step:
    at: float
    device: str
    pasid: str | None
    perm: tuple[str, ...]
    kind: str
    line: int
    groups: int = 1


class ScenarioWriter:
    """Collects the records a scenario replays, then writes it (``write``)."""

    def __init__(self, name: str, sources: list[str]) -> None:
        # Names the loader takes are printable: the output file's name and a unit's name as
        # the log printed it (a bell is left in a line) are escaped, or the file won't load.
        self.name = printable(name)
        self.sources = sources
        self.units: dict[str, str] = {}  # printed name -> scenario name
        self.devices: dict[tuple[str, int], str] = {}
        self.device_unit: dict[str, str] = {}
        self.device_source: dict[str, int] = {}
        self.spaces: dict[tuple[str, int], str] = {}
        self.steps: list[_Step] = []
        self.skipped: Counter[str] = Counter()
        self.guessed: set[str] = set()
        self._origin: float | None = None
        self._last_abs: float | None = None
        self._last_at = 0.0
        self._clock = ""

    def add(self, item: LogRecord | Unrecognised) -> None:
        if not isinstance(item, LogRecord):
            return
        if item.kind not in _REPLAYED:
            self.skipped[f"{item.kind} records (not replayed: no request in them)"] += 1
            return
        if item.source_id is None:
            self.skipped["records without a source ID"] += 1
            return
        if len(self.steps) >= MAX_STEPS:
            self.skipped[f"records past the first {MAX_STEPS} steps"] += 1
            return
        device = self._device(item)
        if device is None:
            self.skipped[f"records of devices past the first {MAX_DEVICES}"] += 1
            return
        pasid = None
        if item.pasid is not None:
            pasid = self._space(device, item.pasid)
            if pasid is None:
                self.skipped[f"records of (device, PASID) pairs past the first {MAX_SPACES}"] += 1
                return
        perm = tuple(_PERMS[c] for c in (item.access or "") if c in _PERMS)
        if "read" not in perm and "write" not in perm:
            self.guessed.add(
                "access: a record printing neither read nor write is replayed as a read"
            )
            perm = ("read", *perm)
        at = self._at(item)
        last = self.steps[-1] if self.steps else None
        if (
            last is not None
            and (last.at, last.device, last.pasid, last.perm, last.kind)
            == (at, device, pasid, perm, item.kind)
            and last.groups < _MAX_GROUPS
        ):
            last.groups += 1
            return
        self.steps.append(_Step(at, device, pasid, perm, item.kind, item.line))

    def _unit(self, record: LogRecord) -> str:
        printed = record.unit
        if printed is None:
            printed = f"{record.vendor}-unit"
            self.guessed.add(
                f"unit: records that name no IOMMU unit are behind one unit, {printed!r}"
            )
        return self.units.setdefault(printed, printable(printed))

    def _device(self, record: LogRecord) -> str | None:
        unit = self._unit(record)
        assert record.source_id is not None
        key = (unit, record.source_id)
        name = self.devices.get(key)
        if name is None:
            if len(self.devices) >= MAX_DEVICES:
                return None
            base = record.device or f"source {record.source_id:#x}"
            name = base if base not in self.device_unit else f"{base} on {unit}"
            self.devices[key] = name
            self.device_unit[name] = unit
            self.device_source[name] = record.source_id
        return name

    def _space(self, device: str, pasid: int) -> str | None:
        key = (device, pasid)
        name = self.spaces.get(key)
        if name is None:
            if len(self.spaces) >= MAX_SPACES:
                return None
            name = self.spaces[key] = f"{device} pasid {pasid:#x}"
        return name

    def _at(self, record: LogRecord) -> float:
        value, clock = seconds(record.timestamp)
        if value is None:
            self.guessed.add(
                "time: records without a readable timestamp are 1 µs after the one before"
            )
            at = self._last_at + (1.0 if self.steps else 0.0)
        else:
            if clock == "relative":
                if self._last_abs is None:
                    self.guessed.add("time: relative timestamps count from the first record")
                value += self._last_abs or 0.0
            else:
                if self._clock and clock != self._clock:
                    self.guessed.add(
                        "time: where the log changes clock (uptime, date), time goes on from "
                        "the record before"
                    )
                    self._origin = None
                self._clock = clock
            self._last_abs = value
            if self._origin is None:
                self._origin = value - self._last_at / 1e6
            at = (value - self._origin) * 1e6
            if at < self._last_at:
                self.guessed.add(
                    "time: timestamps that go back (pasted excerpts) are moved to the time "
                    "before them"
                )
                at = self._last_at
        if at > _MAX_AT:  # every path, the untimed one's +1 µs too: the loader's bound holds
            self.guessed.add("time: the log spans more than the model's time; clamped")
            at = _MAX_AT
        self._last_at = at
        return round(at, 3)

    # -- writing

    def write(self, path: Path) -> None:
        path.write_text(self.text(), encoding="utf-8")

    def text(self) -> str:
        lines = [
            f"# Written by `ioasid logs --scenario` from {', '.join(self.sources)}.",
            "# Each page request and fault read from the log is a page_requests step of its",
            "# device, at the time the log printed it (in µs from the first one).",
            "#",
            "# What was guessed:",
            "# - PASIDs: each (device, PASID) of the log is an address space bound to that device",
            "#   through the SVA set before the first request; the model allocates its own PASID",
            "#   number, so the number differs from the log's (the name keeps the log's).",
            "# - faults are replayed as page requests: the model has no unrecoverable-fault step;",
            "#   one without a PASID is a request without a PASID.",
            "# - addresses, fault reasons and stall tags are not replayed (no step carries them).",
        ]
        lines += [f"# - {g}" for g in sorted(self.guessed)]
        renumber = any(s >> _SOURCE_BITS for s in self.device_source.values())
        if renumber:
            lines.append(
                "# - source IDs: some are wider than 16 bits (VT-d's requester ID), so every "
                "device is renumbered 1, 2, ... (the log's ID is in its comment)"
            )
        if self.skipped:
            lines.append("# Not replayed:")
            lines += [f"# - {n} {what}" for what, n in sorted(self.skipped.items())]
        lines += [
            "",
            f"name = {_s(self.name)}",
            f"description = {_s('Page requests and faults read from ' + ', '.join(self.sources))}",
            "seed = 0",
            "",
        ]
        units = list(dict.fromkeys(self.device_unit.values())) or ["iommu0"]
        for unit in units:
            lines += ["[[platform.units]]", f"name = {_s(unit)}", ""]
        owners = {device: f"{device} owner" for device in self.device_unit}
        for name in [*owners.values(), *self.spaces.values()]:
            lines += ["[[platform.address_spaces]]", f"name = {_s(name)}", ""]
        lines += ["[[platform.sets]]", 'name = "sva"', "sva = true", ""]
        for number, (device, unit) in enumerate(self.device_unit.items(), 1):
            source = self.device_source[device]
            sid = number if renumber else source
            lines += [
                "[[platform.devices]]",
                f"name = {_s(device)}",
                f"unit = {_s(unit)}",
                f"source_id = {sid:#x}" + (f"  # {source:#x} in the log" if renumber else ""),
                f"owner = {_s(owners[device])}",
                "",
            ]
        for (device, pasid), space in self.spaces.items():
            lines += [
                "[[steps]]",
                "at = 0",
                'op = "bind"',
                f"device = {_s(device)}",
                'set = "sva"',
                f"address_space = {_s(space)}",
                f"name = {_s(space)}  # PASID {pasid:#x} in the log",
                "",
            ]
        for step in self.steps:
            lines += [
                "[[steps]]",
                f"at = {step.at!r}",
                'op = "page_requests"',
                f"device = {_s(step.device)}",
            ]
            if step.pasid is not None:
                lines.append(f"pasid = {_s(step.pasid)}")
            if step.groups > 1:
                lines.append(f"groups = {step.groups}")
            perm = ", ".join(_s(p) for p in step.perm)
            lines += [f"perm = [{perm}]  # {step.kind}, log line {step.line}", ""]
        return "\n".join(lines)


def _s(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)
