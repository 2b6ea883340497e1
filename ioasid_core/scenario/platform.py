"""The platform a scenario declares: units, address spaces, sets, domains, devices and VMs.

:class:`Declared` reads ``[platform]`` and keeps every declared name with the key path of its
declaration, so that the steps and the generators can check their references against it
(``no device named 'dsa9' (known: dsa0, dsa1)``). A name is registered as soon as it is well
formed, so one bad entry does not cause a cascade of "no such name" problems elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final, Literal, TypeVar

from ioasid_core.scenario.bounds import (
    MAX_CAPACITY,
    MAX_QUEUE_ENTRIES,
    MAX_SOURCE_ID,
    MIN_QUEUE_ENTRIES,
    WIRE_PASID_LIMIT,
)
from ioasid_core.scenario.processes import ProcessNames, WithProcesses
from ioasid_core.scenario.reader import Reader, describe, join, known, num
from ioasid_core.scenario.schema import (
    AddressSpaceSpec,
    DeviceSpec,
    DomainSpec,
    PlatformSpec,
    SetSpec,
    UnitSpec,
    VmSpec,
)
from ioasid_core.units import MAX_PASID_BITS

__all__ = ["Declared"]

_T = TypeVar("_T")

_KINDS: Final[tuple[Literal["process", "vm"], ...]] = ("process", "vm")
_SET_TYPES: Final[tuple[Literal["null", "mm"], ...]] = ("null", "mm")
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


class Declared:
    """Every name the platform declares (and the generators add: a churn's processes), with
    the key path of its declaration; reads ``[platform]`` through ``reader``."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader
        self.capacity = PlatformSpec().capacity
        self.units: dict[str, str] = {}  # name -> key path of its declaration
        self.spaces: dict[str, str] = {}
        self.sets: dict[str, str] = {}
        self.domains: dict[str, str] = {}
        self.device_paths: dict[str, str] = {}
        self.devices: dict[str, str | None] = {}  # name -> its unit (None if that was bad)
        self.quota_total = 0  # host IDs reserved so far by set and VM quotas
        self.vms: dict[str, str] = {}  # name -> key path of its declaration
        self.vm_units: dict[str, tuple[str, ...]] = {}  # VM -> its virtual units
        self.vm_capacity: dict[str, int] = {}
        self.processes = ProcessNames()  # the churns' generated processes, by range
        self.owners: set[str] = set()  # platform.owners: drivers and other non-mm owners
        self.all_spaces = WithProcesses(self.spaces, self.processes)
        """Every address space a step may name: declared, or a churn's process (a view)."""

    def read(self, table: Mapping[str, object]) -> PlatformSpec:
        path = "platform"
        self.r.unknown_keys(table, path, _PLATFORM_KEYS)
        capacity = self.r.integer(table, path, "capacity", 1, MAX_CAPACITY)
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
        for index, item in enumerate(self.r.array(table, path, "owners")):
            if isinstance(item, str) and item:
                self.owners.add(item)
            else:
                where = f"platform.owners[{index}]"
                self.r.bad(where, f"expected a non-empty string, got {describe(item)}")
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
        for path, entry in self.r.tables(table, "platform", key):
            name = self.r.name(entry, path, "name", required=True)
            found.append((path, entry, self.r.declare(registry, kind, name, path)))
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
        self.r.unknown_keys(table, path, _UNIT_KEYS)
        bits = self.r.integer(table, path, "pasid_bits", 0, MAX_PASID_BITS)
        entries = self.r.integer(table, path, "queue_entries", MIN_QUEUE_ENTRIES, MAX_QUEUE_ENTRIES)
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
        self.r.unknown_keys(table, path, _SPACE_KEYS)
        kind = self.r.choice(table, path, "kind", _KINDS)
        if name is None:
            return None
        return AddressSpaceSpec(name=name, kind=kind or AddressSpaceSpec(name=name).kind)

    def set_specs(
        self, entries: list[tuple[str, Mapping[str, object], str | None]]
    ) -> tuple[SetSpec, ...]:
        specs = []
        sva_at: str | None = None
        mm_sets: dict[str, str] = {}  # address space -> its mm set's key path
        for path, table, name in entries:
            self.r.unknown_keys(table, path, _SET_KEYS)
            kind = self.r.choice(table, path, "type", _SET_TYPES)
            type_ok = kind is not None or "type" not in table
            kind = kind or SetSpec(name="").type
            token = self.r.name(table, path, "token")
            token_path = join(path, "token")
            if not type_ok:
                token = None  # which token rule applies is unknown: say nothing more
            elif kind == "mm" and "token" not in table:
                self.r.missing(path, "token", "the name of an address space: an 'mm' set has one")
            elif kind == "null" and "token" in table:
                self.r.bad(
                    token_path,
                    "a set of type 'null' takes no token (type = \"mm\" is an address space's set)",
                )
                token = None
            if token is not None and self.r.refer(self.spaces, "address space", token, token_path):
                first = mm_sets.setdefault(token, path)
                if first != path:
                    self.r.bad(
                        token_path,
                        f"address space {token!r} already has an 'mm' set ({first}): one each",
                    )
            quota = self.quota(table, path)
            sva = self.r.boolean(table, path, "sva")
            if sva and sva_at is not None:
                self.r.bad(join(path, "sva"), f"at most one set may have sva = true ({sva_at})")
            elif sva:
                sva_at = path
            if name is not None:
                specs.append(SetSpec(name=name, type=kind, token=token, quota=quota, sva=bool(sva)))
        return tuple(specs)

    def quota(self, table: Mapping[str, object], path: str) -> int | None:
        """A set's or a VM's quota: it reserves host IDs, so all of them must fit."""
        quota = self.r.integer(table, path, "quota", 0)
        if quota is not None:
            over = self.quota_total <= self.capacity < self.quota_total + quota
            self.quota_total += quota
            if over:
                self.r.bad(
                    join(path, "quota"),
                    f"quotas add up to {num(self.quota_total)} here, more than the capacity "
                    f"({num(self.capacity)}): a quota reserves its IDs up front",
                )
        return quota

    def vm(self, path: str, table: Mapping[str, object], name: str | None) -> VmSpec | None:
        self.r.unknown_keys(table, path, _VM_KEYS)
        quota = self.quota(table, path)
        # A guest PASID is at most 20 bits wide, and PASID 0 is never allocated.
        capacity = self.r.integer(table, path, "capacity", 2, WIRE_PASID_LIMIT)
        units = tuple(unit for _, unit in self.r.names(table, path, "units"))
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

    def domain(self, path: str, table: Mapping[str, object], name: str | None) -> DomainSpec | None:
        self.r.unknown_keys(table, path, _DOMAIN_KEYS)
        owner = self.r.name(table, path, "owner", required=True)
        sets = tuple(
            set_name
            for where, set_name in self.r.names(table, path, "sets")
            if self.r.refer(self.sets, "set", set_name, where)
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
            self.r.unknown_keys(table, path, _DEVICE_KEYS)
            unit = self.r.name(table, path, "unit", required=True)
            if not self.r.refer(self.units, "unit", unit, join(path, "unit")):
                unit = None
            source_id = self.r.integer(table, path, "source_id", 0, MAX_SOURCE_ID, required=True)
            owner = self.r.name(table, path, "owner", required=True)
            domain = self.r.name(table, path, "domain")
            self.r.refer(self.domains, "domain", domain, join(path, "domain"))
            bits = self.r.integer(table, path, "pasid_bits", 0, MAX_PASID_BITS)
            pasid_required = self.r.boolean(table, path, "prg_response_pasid_required")
            if unit is not None and source_id is not None:
                first = sources.setdefault((unit, source_id), path)
                if first != path:
                    self.r.bad(
                        join(path, "source_id"),
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

    def check_owners(self, platform: PlatformSpec, step_owners: Iterable[tuple[str, str]]) -> None:
        """Every owner named (a device's, a domain's, a driver object's) is declared: an
        address space or a VM (each its own owner), or one of ``platform.owners`` (drivers
        and other owners that are not address spaces). A typo in an owner would otherwise
        change the cross-owner counts in silence. ``step_owners``: (key path, owner) of the
        steps that name one, in step order (a generated step's at its generator,
        ``generators[i]``)."""
        listed = {a.name for a in platform.address_spaces} | set(self.vms) | self.owners
        declared = WithProcesses(listed, self.processes)
        named = [(f"platform.devices[{i}].owner", d.owner) for i, d in enumerate(platform.devices)]
        named += [(f"platform.domains[{i}].owner", d.owner) for i, d in enumerate(platform.domains)]
        named += [(join(where, "owner"), owner) for where, owner in step_owners]
        reported: set[tuple[str, str]] = set()
        for where, owner in named:
            if owner in declared or (where, owner) in reported:
                continue
            reported.add((where, owner))
            self.r.bad(
                where,
                f"no owner named {owner!r}: an owner is an address space, a VM or one of "
                f"platform.owners (declared: {known(declared)})",
            )
