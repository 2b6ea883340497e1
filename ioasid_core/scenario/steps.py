"""Steps: each op's keys in one table, every step checked in time order.

:class:`StepChecker` walks the explicit and the generated steps merged by time, tracking what
is live (named PASIDs, plugged units, a VM's guest PASIDs, allocator registrations, SPIDs), so
that the replay never meets a dangling name. ``OP_KEYS`` is the one table of what each op
takes; a new op is a line there, a ``Step`` field if it needs one, and its rules in
``StepChecker.semantics``.

A written step is a table: every key's type and range is checked. A generated step is a
``Step`` its generator built from a spec checked once, when the entry was read: only what
can differ from one step to the next is checked again (its time, the names made from a
prefix), then the same rules. It is not kept: the scenario's ``StepStream`` makes it again
when a replay walks it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Container, Iterable, Mapping
from typing import Any, Final, get_args

import attrs

from ioasid_core.backends import BACKEND_KINDS, BackendKind
from ioasid_core.scenario.bounds import MAX_BURST, MAX_SOURCE_ID, MAX_TIME_US, WIRE_PASID_LIMIT
from ioasid_core.scenario.platform import Declared
from ioasid_core.scenario.reader import Reader, choose, describe, join, known, num
from ioasid_core.scenario.schema import Op, PermName, Step
from ioasid_core.types import INVALID_IOASID

__all__ = ["OPS", "OP_KEYS", "STEP_KEYS", "STEP_WHAT", "NeedsHistory", "StepChecker"]

OPS: Final[tuple[Op, ...]] = get_args(Op)

STEP_KEYS: Final = frozenset(f.name for f in attrs.fields(Step)) - {"where"}
"""Every key a step may have under some op (``where`` is the loader's, not the file's)."""

STEP_COMMON: Final = frozenset({"op", "at"})

STEP_DEFAULTS: Final = Step(op=OPS[0])

OP_KEYS: Final[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = {
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

STEP_WHAT: Final[Mapping[str, str]] = {
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


class _Present:
    """``key in`` a generated step: whether its generator gave it that key (a generator sets
    exactly the keys a file would write for the op, and none of them to None)."""

    __slots__ = ("step",)

    def __init__(self, step: Step) -> None:
        self.step = step

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and getattr(self.step, key, None) is not None


_PREFIXED: Final = ("address_space", "name", "allocator")
"""A generated step's fields made from the user's ``prefix`` (``<prefix><n>``,
``<prefix>proc<n>``): the only ones whose name check can fail for one step and not another
(every other field is a value of its spec, checked once), in the order ``fields`` checks."""


class NeedsHistory(Exception):
    """A step names a PASID that is not live, or a generated process that has exited:
    saying why (freed where, or never made; exited where) needs the names that are gone,
    which a checker without ``history`` does not keep."""


class StepChecker:
    """Checks the steps in order, tracking what is live: named PASIDs and plugged units.

    With ``history``, it also keeps every name that is gone and how it went, for the message
    of a step that uses one. Without, what it keeps is what is live (a workload's names come
    and go by the million: their record would grow with its length): a step naming a PASID
    that is not live raises :class:`NeedsHistory`, and the loader checks the file again with
    ``history``. A file without that mistake is checked once, and its problems are the same
    either way."""

    def __init__(self, reader: Reader, declared: Declared, *, history: bool = False) -> None:
        self.p = reader
        self.d = declared
        self.history = history
        self.generated_steps = 0
        """Generated steps checked (not kept)."""
        self.owners: dict[tuple[str, str], None] = {}
        """(key path, owner) of each owner the steps name, in step order, once each: a
        generated step's at its generator (``generators[i]``)."""
        self.live: dict[str, _Pasid] = {}
        self.dead: dict[str, str] = {}  # PASID name -> "freed at steps[4]" (with history)
        self.unplugged: dict[str, str] = {}  # unit -> key path of the unplug step
        self.unbound: dict[str, str] = {}  # bound PASID name -> how its binding went
        self.sva_names: dict[str, dict[str, _Pasid]] = {}
        """Address space -> its live bind names: the references on its one SVA PASID."""
        self.exits: dict[str, bytearray] = {}
        """A churn's prefix -> a byte per generated process, set when it has exited (a
        range's worth of bytes, not an entry per process)."""
        self.exited: dict[str, str] = {}  # exited process -> where its last binding went (history)
        # Per VM: its plugged virtual units, and its live / freed guest PASID names.
        self.vm_plugged = {vm: set(units) for vm, units in declared.vm_units.items()}
        self.guest_live: dict[str, dict[str, str]] = {vm: {} for vm in declared.vm_units}
        self.guest_dead: dict[str, dict[str, str]] = {vm: {} for vm in declared.vm_units}
        self.allocators: dict[str, tuple[BackendKind | None, str]] = {}  # name -> kind, where
        self.spids: dict[tuple[str, int], tuple[str, str]] = {}
        """(set, SPID) -> (the attach step, the step that allocated the PASID)."""
        self.spid_of: dict[str, int] = {}  # a PASID's identity (see pasid_id) -> its SPID
        self.unregistered: set[str] = set()
        self.last_at = 0.0
        self.last_at_path: str | None = None

    def run(self, entries: Iterable[tuple[str, Mapping[str, object]] | Step]) -> tuple[Step, ...]:
        """Check every entry in order: a written step's (key path, table), or a generated
        ``Step``. The written steps come back; the generated ones are only counted."""
        steps = []
        owners = self.owners
        generated = self.generated
        for entry in entries:
            if isinstance(entry, Step):
                generated(entry)
                if entry.owner is not None:
                    # Reported at its generator (generators[i]/n -> generators[i]).
                    owners[(entry.where.split("/", 1)[0], entry.owner)] = None
                continue
            step = self.step(*entry)
            if step is not None:
                steps.append(step)
                if step.owner is not None:
                    owners[(step.where, step.owner)] = None
        return tuple(steps)

    def generated(self, step: Step) -> None:
        """Check a generated step: what can differ per step, then the op's rules."""
        self.generated_steps += 1
        path = step.where
        at = step.at
        if not (0 <= at <= MAX_TIME_US):  # (a NaN is neither)
            self.at(path, {"at": at})  # the written steps' message
        fields = step
        bad = [key for key in _PREFIXED if not _printable(getattr(step, key))]
        if bad:
            for key in bad:
                self.p.name({key: getattr(step, key)}, path, key)  # says why
            cleared: dict[str, Any] = dict.fromkeys(bad)  # as fields() reads a bad name
            fields = attrs.evolve(step, **cleared)
        self.semantics(step.op, path, _Present(step), fields)

    def step(self, path: str, table: Mapping[str, object]) -> Step | None:
        p = self.p
        op_name = p.string(table, path, "op", required=True)
        op = choose(op_name, OPS) if op_name is not None else None
        if op_name is not None and op is None:
            p.bad(join(path, "op"), f"expected one of {', '.join(OPS)}, got {op_name!r}")
        if op is not None:
            required, optional = OP_KEYS[op]
            takes = STEP_COMMON | required | optional
            for key in table:
                if key in takes:
                    continue
                if key in STEP_KEYS:
                    p.bad(
                        join(path, key),
                        f"op {op!r} takes no {key!r} (it takes: {', '.join(sorted(takes))})",
                    )
                else:
                    p.bad(
                        join(path, key),
                        f"unknown key (allowed for op {op!r}: {', '.join(sorted(takes))})",
                    )
            for key in sorted(required - table.keys()):
                p.missing(path, key, f"{STEP_WHAT[key]}: op {op!r} needs it")
        else:
            p.unknown_keys(table, path, STEP_KEYS)
        at = self.at(path, table)
        fields = self.fields(path, table)
        if op is None:
            return None
        self.semantics(op, path, table, fields)
        defaults = STEP_DEFAULTS
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
        value = table.get("at", STEP_DEFAULTS.at)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.p.bad(
                join(path, "at"), f"expected a number of microseconds, got {describe(value)}"
            )
            return self.last_at
        at = float(value)
        # A generated step's time comes from its generator's at, interval and count: checked
        # too (``generated``), so no sum of them can reach infinity.
        if not math.isfinite(at) or at < 0:
            self.p.bad(join(path, "at"), f"expected a finite number >= 0, got {value}")
            return self.last_at
        if at > MAX_TIME_US:
            self.p.bad(join(path, "at"), f"expected at most {MAX_TIME_US:g} µs, got {at:g}")
            return self.last_at
        if at < self.last_at:
            given = "" if "at" in table else " (absent, so the default)"
            self.p.bad(
                join(path, "at"),
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
            perm=p.perm(path, table),
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
                join(path, "pasid"),
                f"expected a PASID name (a string) or number (an integer), got {describe(value)}",
            )
            return None
        return value

    # ------------------------------------------------------------------ meaning

    def refer(
        self, registry: Collection[str], kind: str, name: str | None, path: str, key: str
    ) -> bool:
        """``Reader.refer`` at ``path.key``, the key path joined only for a message."""
        if name is not None and name in registry:
            return True
        return self.p.refer(registry, kind, name, join(path, key))

    def semantics(self, op: Op, path: str, table: Container[str], f: _Step | Step) -> None:
        """References, and the life cycle of named PASIDs and units, for a step of ``op``
        (``table``: the keys it was given; ``f``: its typed values, None where bad)."""
        p, d = self.p, self.d
        if op == "page_requests":
            burst = (f.groups or 1) * (f.group_size or 1) + (f.stop_markers or 0)
            if burst > MAX_BURST:
                p.bad(
                    path,
                    f"a step sends at most {num(MAX_BURST)} page requests; groups x "
                    f"group_size + stop_markers is {num(burst)} (split it into steps)",
                )
        if op in ("bind", "unbind", "page_requests"):
            self.device(f.device, path)
        if op in ("bind", "alloc"):
            self.refer(d.sets, "set", f.set, path, "set")
            space = f.address_space
            if space in d.spaces or self.refer(
                d.all_spaces, "address space", space, path, "address_space"
            ):
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
        if op in ("service", "unplug") and self.refer(d.units, "unit", f.unit, path, "unit"):
            assert f.unit is not None
            if f.unit in self.unplugged:
                p.bad(
                    join(path, "unit"),
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
                    join(path, "name"),
                    f"{f.name!r} already names a live PASID (from {before.where}); unbind or "
                    "free it first, or pick another name",
                )
            else:
                pasid = _Pasid(path, op, f.device, f.set, f.address_space)
                self.live[f.name] = pasid
                self.dead.pop(f.name, None)
                space = f.address_space
                if (
                    op == "bind"
                    and space is not None
                    and (space in d.spaces or space in d.processes)
                ):
                    self.sva_names.setdefault(space, {})[f.name] = pasid

    def address_space(self, op: Op, path: str, f: _Step | Step) -> None:
        """A generated process exists until its last binding goes; an address space has one
        SVA PASID, so every bind of it while it holds one names that PASID's set."""
        assert f.address_space is not None
        if self.exits and self.has_exited(f.address_space):
            if not self.history:
                raise NeedsHistory
            self.p.bad(
                join(path, "address_space"),
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
                join(path, "set"),
                f"address space {f.address_space!r} already has its PASID in set {first.set!r} "
                f"({name!r}, bound at {first.where}): a second bind shares that PASID, so it "
                "names that set",
            )

    def guest(self, op: Op, path: str, f: _Step | Step) -> None:
        """A VM's step: its units plugged or not, its guest PASID names live or not."""
        p, d = self.p, self.d
        if not self.refer(d.vm_units, "VM", f.vm, path, "vm"):
            return
        assert f.vm is not None
        if op in ("plug", "unplug"):
            self.vm_unit(op, path, f.vm, f.unit)
        elif op == "guest_alloc" and f.name is not None:
            before = self.guest_live[f.vm].get(f.name)
            if before is not None:
                p.bad(
                    join(path, "name"),
                    f"{f.name!r} already names a live guest PASID of VM {f.vm!r} (from "
                    f"{before}); free it first, or pick another name",
                )
            else:
                self.guest_live[f.vm][f.name] = path
                self.guest_dead[f.vm].pop(f.name, None)
        elif op == "guest_free":
            self.guest_pasid(path, f.vm, f.pasid)

    def vm_unit(self, op: Op, path: str, vm: str, unit: str | None) -> None:
        p, d = self.p, self.d
        key = join(path, "unit")
        if unit is None or unit not in d.vm_units[vm]:
            p.refer(d.vm_units[vm], f"virtual unit of VM {vm!r}", unit, key)
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
                f"({known(self.guest_live[vm])}): free them first",
            )
        else:
            plugged.remove(unit)

    def guest_pasid(self, path: str, vm: str, ref: str | int | None) -> None:
        if isinstance(ref, int):
            limit = self.d.vm_capacity[vm]
            if not 0 <= ref < limit:
                self.p.bad(
                    join(path, "pasid"),
                    f"expected a PASID in 0..{num(limit - 1)} (VM {vm!r}'s capacity)",
                )
            return
        if ref is None:
            return
        live, dead = self.guest_live[vm], self.guest_dead[vm]
        if ref in live:
            del live[ref]
            if self.history:
                dead[ref] = f"freed at {path}"
        elif not self.history:
            raise NeedsHistory
        elif ref in dead:
            self.p.bad(
                join(path, "pasid"), f"guest PASID {ref!r} was {dead[ref]}; it is no longer live"
            )
        else:
            self.p.bad(
                join(path, "pasid"),
                f"no guest PASID named {ref!r} in VM {vm!r}: a name must come from an earlier "
                f"guest_alloc of that VM (live: {known(live)})",
            )

    def device(self, name: str | None, path: str) -> None:
        """Step ``path``'s device: declared, and its unit not unplugged."""
        p, d = self.p, self.d
        if not self.refer(d.devices, "device", name, path, "device") or name is None:
            return
        unit = d.devices[name]
        if unit is not None and unit in self.unplugged:
            p.bad(
                join(path, "device"),
                f"device {name!r} is gone: its unit {unit!r} was unplugged at "
                f"{self.unplugged[unit]}",
            )

    def plug_host_unit(self, path: str, unit: str | None) -> None:
        """A host unit comes back: it must have been unplugged (a VM's unit needs ``vm``)."""
        p, d, key = self.p, self.d, join(path, "unit")
        owners = [vm for vm, units in d.vm_units.items() if unit in units]
        if unit not in d.units and owners:
            p.bad(key, f"no host unit named {unit!r}; for VM {owners[0]!r}'s, add vm")
        elif p.refer(d.units, "unit", unit, key) and self.unplugged.pop(unit or "", None) is None:
            p.bad(key, f"unit {unit!r} is plugged already")

    def unbound_by_unplug(self, unit: str, path: str) -> None:
        """Host unit ``unit`` goes at ``path``: the bindings on its devices go with it (their
        PASIDs stay allocated: free them, they cannot be unbound any more)."""
        for name, pasid in self.live.items():
            if pasid.op == "bind" and self.d.devices.get(pasid.device or "") == unit:
                # The first unplug took it; a later one of the same unit finds it gone.
                self.unbound.setdefault(
                    name, f"its binding on {pasid.device!r} went with unit {unit!r} at {path}"
                )

    def use_pasid(self, op: Op, path: str, f: _Step | Step) -> None:
        """A ``pasid`` reference: a number in range, or a name that is live here."""
        ref = f.pasid
        if ref is None:
            return
        pasid = self.live.get(ref) if isinstance(ref, str) else None
        if pasid is not None and op == "page_requests":
            return  # the common case, with nothing to say
        key = join(path, "pasid")
        if isinstance(ref, int) and op == "unbind":
            # A bind's name stands for one reference; a number would not say which one.
            self.p.bad(key, f"expected the name of the bind to undo, got the number {ref}")
            return
        if isinstance(ref, int):
            limit = WIRE_PASID_LIMIT if op == "page_requests" else self.d.capacity
            if ref >= limit or ref < 0:
                why = "a page request carries 20 bits" if op == "page_requests" else "capacity"
                self.p.bad(key, f"expected a PASID in 0..{num(limit - 1)} ({why}), got {ref}")
            return
        if pasid is None:
            if not self.history:
                raise NeedsHistory
            if ref in self.dead:
                self.p.bad(key, f"PASID {ref!r} was {self.dead[ref]}; it is no longer live")
            else:
                live = known(self.live)
                self.p.bad(
                    key,
                    f"no PASID named {ref!r}: a name must come from an earlier bind or alloc "
                    f"step's name (live: {live})",
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
            space = pasid.address_space if pasid.op == "bind" else None
            gone = [ref]
            if op == "free" and space is not None:
                # One PASID per address space: freeing it ends every bind name of it.
                gone += [other for other in self.sva_names.get(space, {}) if other != ref]
            for name in gone:
                del self.live[name]
                self.unbound.pop(name, None)
                if self.history:
                    how = "unbound" if op == "unbind" else "freed"
                    with_ref = f" (with {ref!r}, the same PASID)" if name != ref else ""
                    self.dead[name] = f"{how} at {path}{with_ref}"
                if space is not None:
                    self.drop_reference(space, name, path)

    def drop_reference(self, space: str, name: str, path: str) -> None:
        """Bind name ``name`` of ``space`` is gone; a generated process exits with its last."""
        names = self.sva_names.get(space, {})
        names.pop(name, None)
        if not names:
            self.sva_names.pop(space, None)
            found = None if space in self.d.spaces else self.d.processes.find(space)
            if found is not None:
                processes, n = found
                marks = self.exits.get(processes.prefix)
                if marks is None:
                    marks = self.exits[processes.prefix] = bytearray(processes.count)
                marks[n] = 1
                if self.history:
                    self.exited[space] = path

    def has_exited(self, space: str) -> bool:
        """Whether ``space`` is a generated process that has exited."""
        if space in self.d.spaces or not self.exits:
            return False
        found = self.d.processes.find(space)
        if found is None:
            return False
        marks = self.exits.get(found[0].prefix)
        return marks is not None and marks[found[1]] == 1

    def swap(self, op: Op, path: str, f: _Step | Step) -> None:
        """Allocator registrations: a name is registered once until it is unregistered, and
        ``share`` needs a live registration of the same kind to join. An unregister without
        ``force`` may be refused at replay time (the backend holds IDs), so unregistering a
        name again is a retry, not a mistake."""
        key = join(path, "allocator")
        if f.allocator is None:
            return
        current = self.allocators.get(f.allocator)
        if op == "unregister_allocator":
            if current is None and f.allocator not in self.unregistered:
                self.p.bad(
                    key,
                    f"no allocator registered as {f.allocator!r} here "
                    f"(registered: {known(self.allocators)})",
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
                join(path, "share"),
                f"no live {f.kind!r} allocator to share with: register one first",
            )
        self.allocators[f.allocator] = (f.kind, path)

    def spid(self, op: Op, path: str, table: Container[str], f: _Step | Step) -> None:
        """SPIDs: unique within their set, one per PASID, used only while attached."""
        p, d = self.p, self.d
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
        if not p.refer(d.sets, "set", f.set, join(path, "set")) or f.spid is None:
            return
        assert f.set is not None
        attached = self.spids.get((f.set, f.spid))
        if attached is None:
            p.bad(
                join(path, "spid"),
                f"SPID {f.spid} is not attached in set {f.set!r} here: an attach_spid step "
                "must come first",
            )
        elif op == "detach_spid":
            del self.spids[(f.set, f.spid)]
            self.spid_of.pop(attached[1], None)

    def attach_spid(self, path: str, f: _Step | Step) -> None:
        key = join(path, "pasid")
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
                join(path, "spid"),
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


def _printable(name: str | None) -> bool:
    """What ``Reader.name`` accepts of a string (or an absent value)."""
    return name is None or (name != "" and name.isprintable())
