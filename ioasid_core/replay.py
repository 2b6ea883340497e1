"""Replay one scenario under one vendor and one lookup policy, and count what happens.

Plain Python from start to end: the vendor's codec and rules were collected once (through
the ``ioasid_prq_vendors`` hook) and are called directly. Runs share nothing, so a comparison
can hand them to any ``concurrent.futures.Executor``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Final

import attrs

from ioasid_core.allocators import AllocatorOps
from ioasid_core.backends import Registrations
from ioasid_core.errors import (
    AllocatorBusyError,
    AllocatorError,
    AllocatorNoSpaceError,
    BusyError,
    InvalidArgumentError,
    IoasidError,
    NoSpaceError,
    QuotaExceededError,
)
from ioasid_core.guest import GuestIommu, GuestVm, attach_checked, guest_path
from ioasid_core.latency import LATENCY_OPS, DriverClock, LatencyOp
from ioasid_core.metrics import Metrics
from ioasid_core.pasid_names import PasidNames
from ioasid_core.platform import AddressSpace, Platform
from ioasid_core.plugins import Hooks
from ioasid_core.prq.discipline import Discipline, discipline_of
from ioasid_core.prq.hardware import hardware_rules
from ioasid_core.prq.pipeline import PrqPipeline
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.types import Perm, RequestRow, ResponseCode, ResponseRow, response_row
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.scenario.processes import ProcessNames
from ioasid_core.scenario.schema import Scenario, Step, VmSpec
from ioasid_core.scenario.stream import StepStream
from ioasid_core.scenario.vendors import checked_options
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace
from ioasid_core.types import INVALID_IOASID, SetType
from ioasid_core.units import IommuUnit
from ioasid_core.vendor_options import unit_model

__all__ = ["DriverObject", "RunResult", "replay", "scenario_work", "step_work"]

_PERMS = {"read": Perm.READ, "write": Perm.WRITE, "exec": Perm.EXEC, "priv": Perm.PRIV}
_PERM_OF: dict[tuple[str, ...], Perm] = {}
"""A step's ``perm`` names -> their ``Perm``, worked out once per combination (``IntFlag``
arithmetic per step costs more than the rest of building a request)."""


def _perm_of(names: tuple[str, ...]) -> Perm:
    perm = Perm.NONE
    for name in names:
        perm |= _PERMS[name]
    return perm


_GROUP_INDEX_MASK = 0x1FF  # PCIe page request group index: 9 bits
_PAGE = 0x1000
_SUCCESS: Final = ResponseCode.SUCCESS
_TIMED_STEPS: dict[str, LatencyOp] = {op: op for op in LATENCY_OPS if op != "page_request_service"}


@attrs.define(eq=False)
class DriverObject:
    """A device driver's private object, stored as the private data of its own PASID."""

    owner: str
    dying: bool = False


@attrs.frozen
class RunResult:
    """One (vendor, policy) run of a scenario."""

    scenario: str
    vendor: str
    policy: LookupPolicy
    seed: int
    metrics: Metrics
    native: bool = False
    """The policy is the vendor's own (``default_policy``): with its answer discipline, the
    rule its driver followed."""
    discipline: Discipline = Discipline.IOPF
    """The vendor's answer discipline (the same under every policy)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "vendor": self.vendor,
            "policy": self.policy.value,
            "native": self.native,
            "discipline": self.discipline.value,
            "seed": self.seed,
            "metrics": self.metrics.as_dict(),
        }


@attrs.define(eq=False)
class _Sva:
    """One address space's SVA PASID and the bonds that hold it: the SVA layer's per-mm
    state (``mm->pasid`` and VT-d's svm with its device list). One PASID for every device
    the address space is bound to; it is freed when the last reference goes."""

    name: str
    pasid: int
    space: AddressSpace
    """The address space (a generated process lives while it holds its PASID)."""
    bonds: dict[str, int] = attrs.field(factory=dict)
    """Device -> binds of the address space on it not yet unbound (each takes a reference)."""
    lost: int = 0
    """References whose bond went with its unit (hot-unplug) and that no ``free`` dropped."""


@attrs.define(eq=False)
class _Vm:
    """A VM of one replay: its guest space, its own set there, its vendor-modelled vIOMMU."""

    name: str
    space: IoasidSpace
    set: IoasidSet
    host_set: IoasidSet
    iommu: GuestIommu
    active: AllocatorOps[Any] | None = None
    pasids: PasidNames = attrs.field(factory=PasidNames)


class _Run:
    """The state of one replay."""

    def __init__(
        self,
        scenario: Scenario,
        vendor: VendorPrq,
        policy: LookupPolicy,
        hooks: Hooks | None,
        seed: int,
        *,
        ending: _Ending | None = None,
    ) -> None:
        spec = scenario.platform
        self.hooks, self.ending = hooks, ending or _Ending(hooks)
        options = checked_options(scenario, vendor)
        model = unit_model(vendor)
        shapes = {u.name: model.shape(u.pasid_bits, u.queue_entries, options) for u in spec.units}
        self.metrics = Metrics()
        self.space = IoasidSpace(spec.capacity)
        if hooks is not None:
            hooks.attach(self.space)  # subscribes only if a plugin listens to set/event hooks
        self.platform = Platform(self.space, hooks)  # units are probed through the plugins
        self.ending.spaces.append(self.space)
        self.address_spaces = {a.name: AddressSpace(a.name, a.kind) for a in spec.address_spaces}
        self.processes = ProcessNames(spec.processes)
        self.sets: dict[str, IoasidSet] = {}
        sva: IoasidSet | None = None
        for s in spec.sets:
            token = self.address_spaces[s.token] if s.token is not None else None
            kind = SetType.MM if s.type == "mm" else SetType.NULL
            self.sets[s.name] = self.space.create_set(token, quota=s.quota, type=kind)
            if s.sva:
                sva = self.sets[s.name]
        for d in spec.domains:
            self.platform.add_domain(d.name, d.owner, [self.sets[n] for n in d.sets])
        if sva is None and policy is LookupPolicy.SET:
            # A vendor searching "its SVA set" needs one: an empty set finds nothing.
            sva = self.space.create_set()
        self.vendor, self.policy, self.sva, self.shapes = vendor, policy, sva, shapes
        self.options = options
        self.devices_of = {
            u.name: [d for d in spec.devices if d.unit == u.name] for u in spec.units
        }
        self.pipelines: dict[str, PrqPipeline] = {}
        for u in spec.units:
            self._plug_unit(u.name)
        self.pasids = PasidNames()
        # (unit, source, group index) -> (when its LAST came in, its PASID, and the stamp of
        # the PASID's allocation then: None if no PASID or never allocated)
        self.submitted: dict[tuple[str, int, int], tuple[float, int, int | None]] = {}
        self.stamps: dict[int, int] = {}  # PASID -> the allocation that handed it out last
        self.next_group: dict[str, int] = {}  # device -> next page request group index
        self.now = 0.0
        self.sva_of: dict[str, _Sva] = {}  # address space -> its SVA PASID and bonds
        self.sva_by_pasid: dict[int, _Sva] = {}
        self.active = self.space.active_allocator
        self.allocators = Registrations(self.space, seed)
        self.reclaimed: dict[int, tuple[float, int]] = {}  # ID -> (when, allocations by then)
        self.lost_names: dict[str, str] = {}  # PASID name -> the forced unregister's step
        self.clock = DriverClock(dict(scenario.latency), seed) if scenario.latency else None
        if self.clock is not None:
            self.metrics.latency_us = {op: self.clock.samples[op] for op, _ in scenario.latency}
        self.vms = self._start_vms(scenario, vendor, options)
        self.handlers: dict[str, Callable[[Step], None]] = {}
        """Step op -> its ``_op_`` method, found once per op (not by name per step)."""

    def _plug_unit(self, name: str) -> None:
        """Probe host unit ``name`` as the vendor shapes it, with the devices behind it (none
        bound yet) and an empty page request queue: at start, and when hot-plugged again."""
        shape = self.shapes[name]
        self.platform.probe_unit(
            IommuUnit(name=name, vendor=self.vendor.name, pasid_bits=shape.pasid_bits)
        )
        cap = shape.device_pasid_bits
        for dev in self.devices_of[name]:
            self.platform.add_device(
                dev.name,
                unit=name,
                source_id=dev.source_id,
                owner=dev.owner,
                domain=dev.domain,
                pasid_bits=dev.pasid_bits if cap is None else min(cap, dev.pasid_bits or cap),
                prg_response_pasid_required=dev.prg_response_pasid_required,
            )
        self.pipelines[name] = PrqPipeline(
            self.platform,
            name,
            self.vendor,
            policy=self.policy,
            sva_set=self.sva,
            ring_entries=shape.queue_entries,
            hardware=hardware_rules(self.vendor, self.platform, name, self.options),
        )

    def _start_vms(
        self, scenario: Scenario, vendor: VendorPrq, options: Mapping[str, object]
    ) -> dict[str, _Vm]:
        """Each VM's guest space and virtual units, through the vendor's guest path."""
        path = guest_path(vendor)
        attach = partial(attach_checked, path)
        return {vm.name: self._start_vm(vm, attach, options) for vm in scenario.platform.vms}

    def _start_vm(
        self,
        vm: VmSpec,
        attach: Callable[[GuestVm], GuestIommu],
        options: Mapping[str, object],
    ) -> _Vm:
        # The VM is the token of its MM set in the host: its own object, whatever else is named.
        host_set = self.space.create_set(
            AddressSpace(vm.name, "vm"), quota=vm.quota, type=SetType.MM
        )
        space = IoasidSpace(vm.capacity)
        if self.hooks is not None:
            self.hooks.attach(space)  # the guest's sets and events reach the listeners too
        guest = GuestVm(
            name=vm.name,
            host=self.space,
            host_set=host_set,
            space=space,
            options=options,
            hooks=self.hooks,
            vendor=self.vendor.name,
        )
        iommu = attach(guest)
        self.ending.iommus.append(iommu)
        for unit in vm.units:
            iommu.plug(unit)
        return _Vm(vm.name, space, space.create_set(), host_set, iommu, space.active_allocator)

    # ------------------------------------------------------------------ steps

    def run(self, steps: Iterable[Step], progress: Callable[[int], None] | None = None) -> Metrics:
        clock = self.clock
        pending = 0
        handlers = self.handlers
        observed = False
        for step in steps:
            op = step.op
            # With a [latency] table, the driver's steps wait for it; a device's page
            # requests enter the ring at their own ``at`` (their service waits, see _service).
            if clock is None or op == "page_requests":
                self.now = step.at
            else:
                self.now = clock.start(step.at)
            handler = handlers.get(op)
            if handler is None:
                handler = handlers[op] = getattr(self, f"_op_{op}")
            try:
                handler(step)
            except _StepSkipped as skipped:
                self.metrics.add_step_error(f"{step.where}: {skipped}")
            if clock is not None:
                timed = _TIMED_STEPS.get(op)
                if timed is not None:
                    clock.spend(timed, self.now, step.at)
            # What _observe samples, page requests and their service only read: once it
            # has been sampled, a step of theirs leaves nothing new to see.
            if not observed or op not in _READS_ONLY:
                self._observe()
                observed = True
            if progress is not None:
                pending += step_work(step)
                if pending >= _PROGRESS_EVERY:
                    progress(pending)
                    pending = 0
        if progress is not None and pending:
            progress(pending)
        self._finish()
        return self.metrics

    def _observe(self) -> None:
        m = self.metrics
        m.peak_live_ioasids = max(m.peak_live_ioasids, len(self.space))
        active = self.space.active_allocator
        if active is not self.active:
            # A shared group's next member taking over keeps the ID space: no switch.
            if not _same_group(active, self.active):
                m.allocator_switches += 1
            self.active = active
        if self.vms:
            held = 0
            for vm in self.vms.values():
                held += vm.host_set.count
                # Members of one group take turns as its face: only a change of group counts.
                guest_active = vm.space.active_allocator
                if not _same_group(guest_active, vm.active):
                    m.allocator_switches += 1
                vm.active = guest_active
            m.host_pasids_peak = max(m.host_pasids_peak, held)

    def _alloc(
        self, step: Step, set_name: str, private: object, limit: int | None = None
    ) -> int | None:
        """Allocate in ``[1, limit - 1]`` (PASID 0 is DMA without PASID); None if it fails."""
        owner = self.sets[set_name]
        top = self.space.capacity if limit is None else min(limit, self.space.capacity)
        try:
            pasid = self.space.alloc(owner, 1, top - 1, private)
        except _ALLOC_FAILURES as exc:
            reason = _failure_reason(exc)
        else:
            m = self.metrics
            if self.reclaimed:
                freed = self.reclaimed.pop(pasid, None)
                if freed is not None:
                    m.pasid_reuses += 1
                    m.reuse_gap_us.add(self.now - freed[0])
                    m.reuse_distance.add(float(m.allocations - freed[1]))
            self.stamps[pasid] = m.allocations
            m.allocations += 1
            if step.name is not None:
                self.pasids.set(step.name, pasid)
            return pasid
        self.metrics.allocation_failures[reason] += 1
        if step.name is not None:
            self.pasids.drop(step.name)
        return None

    def _pasid(self, step: Step) -> int:
        if step.spid is not None:
            return self._by_spid(step)
        ref = step.pasid
        if isinstance(ref, int):
            return ref
        if ref is None:
            raise _StepSkipped("no PASID given")
        pasid = self.pasids.get(ref)
        if pasid is None:
            if ref in self.lost_names:
                raise _StepSkipped(f"PASID {ref!r} was reclaimed by {self.lost_names[ref]}")
            raise _StepSkipped(f"PASID {ref!r} was never allocated (its allocation or bind failed)")
        return pasid

    def _by_spid(self, step: Step) -> int:
        """The host PASID that guest PASID ``step.spid`` of ``step.set`` maps to."""
        assert step.set is not None and step.spid is not None
        try:
            return self.space.find_by_spid(self.sets[step.set], step.spid)
        except IoasidError as exc:
            raise _StepSkipped(str(exc)) from exc

    def _op_bind(self, step: Step) -> None:
        """SVA bind: the address space's first bind allocates its PASID within the device's
        width; later binds attach that PASID to another device or take one more reference
        on the same device (kernel-facts §1.9: one PASID per mm)."""
        assert step.set is not None and step.address_space is not None
        assert step.device is not None and step.name is not None
        target = self.address_spaces.get(step.address_space) or self._process(step.address_space)
        device = self.platform.device(step.device)
        sva = self.sva_of.get(step.address_space)
        if sva is None:
            # SVA bind allocates within what the device can carry (1 .. 2^bits - 1).
            pasid = self._alloc(step, step.set, target, device.pasid_limit)
            if pasid is None:
                return
            sva = _Sva(step.address_space, pasid, target)
            self.sva_of[sva.name] = sva
            self.sva_by_pasid[pasid] = sva
        elif sva.pasid >= device.pasid_limit:
            # The address space's PASID is beyond this device's width (the kernel's EOVERFLOW).
            self.metrics.allocation_failures["pasid_too_wide"] += 1
            self.pasids.drop(step.name)
            return
        held = sva.bonds.get(device.name, 0)
        if not held:
            self.platform.bind(device.name, sva.pasid, target)
        sva.bonds[device.name] = held + 1
        self.pasids.set(step.name, sva.pasid)
        self.metrics.sva_binds += 1

    def _op_unbind(self, step: Step) -> None:
        """Drops one reference of (device, address space); the last one of the address
        space frees its PASID (the IOASID-era behaviour, kernel-facts §1.9)."""
        assert step.device is not None
        pasid = self._pasid(step)
        sva = self.sva_by_pasid.get(pasid)
        held = sva.bonds.get(step.device, 0) if sva is not None else 0
        if sva is None or not held or step.device not in self.platform.devices:
            raise _StepSkipped(f"device {step.device!r} has no PASID {pasid:#x} bound")
        if held == 1 and len(sva.bonds) == 1 and not sva.lost:
            self._free(pasid)  # may fail: nothing has changed yet
            self._drop_sva(sva)
            return
        if held == 1:
            self.platform.unbind(step.device, pasid)
            del sva.bonds[step.device]
        else:
            sva.bonds[step.device] = held - 1
        self._forget(step)

    def _forget(self, step: Step) -> None:
        """The step's PASID name is gone (its reference was dropped; the PASID lives on)."""
        if isinstance(step.pasid, str):
            self.pasids.drop(step.pasid)

    def _op_alloc(self, step: Step) -> None:
        assert step.set is not None
        if step.address_space is not None:
            name = step.address_space
            private: object = self.address_spaces.get(name) or self._process(name)
        else:
            private = DriverObject(step.owner or "unknown")
        self._alloc(step, step.set, private)

    def _op_free(self, step: Step) -> None:
        """The owner gives the number back. An address space's SVA PASID goes whole: every
        binding of it (references that went with a unit too) and every name of it."""
        pasid = self._pasid(step)
        sva = self.sva_by_pasid.get(pasid)
        self._free(pasid)
        if sva is not None:
            self._drop_sva(sva)

    def _drop_sva(self, sva: _Sva) -> None:
        """The address space's PASID is gone (freed, or reclaimed by a forced unregister):
        its bindings go, and its next bind allocates afresh."""
        del self.sva_of[sva.name]
        del self.sva_by_pasid[sva.pasid]
        for device in sva.bonds:
            self.platform.unbind(device, sva.pasid)

    def _process(self, name: str) -> AddressSpace:
        """A churn's generated process (not a declared address space): the one holding its
        SVA PASID, else made now (a file may stand for millions of processes, a few live
        at a time: none is kept beyond its PASID)."""
        sva = self.sva_of.get(name)
        if sva is not None:
            return sva.space
        if name not in self.processes:
            raise KeyError(name)
        return AddressSpace(name, "process")

    def _free(self, pasid: int) -> None:
        try:
            self.space.free(self.space.find_set(pasid), pasid)
        except IoasidError as exc:
            raise _StepSkipped(str(exc)) from exc
        self.metrics.frees += 1
        if pasid not in self.space:  # else FREE_PENDING: reclaimed when the last put comes
            self.reclaimed[pasid] = (self.now, self.metrics.allocations)
        else:
            self.metrics.deferred_frees += 1
        self.pasids.drop_pasid(pasid)

    def _op_page_requests(self, step: Step) -> None:
        """One burst from one device: ``groups`` groups of ``group_size`` requests, then the
        stop markers, written to the unit's ring as rows (no object per request)."""
        assert step.device is not None
        device = self.platform.device(step.device)
        pipeline = self.pipelines[device.unit]
        valid = step.pasid is not None or step.spid is not None
        pasid = self._pasid(step) if valid else INVALID_IOASID
        if step.spid is not None:
            self.metrics.spid_requests += step.groups * step.group_size + step.stop_markers
        perm = _PERM_OF.get(step.perm)
        if perm is None:
            perm = _PERM_OF[step.perm] = _perm_of(step.perm)
        source = device.source_id if step.source_id is None else step.source_id
        first = self.next_group.get(device.name, 0)
        groups, size = step.groups, step.group_size
        self.next_group[device.name] = (first + groups) & _GROUP_INDEX_MASK
        mask = _GROUP_INDEX_MASK
        rows: list[RequestRow]
        if groups == 1:  # what generators make: one group a step
            rows = [
                (source, pasid, valid, first, i == size - 1, perm, i * _PAGE, False, None)
                for i in range(size)
            ]
        elif size == 1:
            rows = [
                (source, pasid, valid, (first + g) & mask, True, perm, g * _PAGE, False, None)
                for g in range(groups)
            ]
        else:
            end = size - 1
            rows = [
                (
                    source,
                    pasid,
                    valid,
                    (first + g) & mask,
                    i == end,
                    perm,
                    (g * size + i) * _PAGE,
                    False,
                    None,
                )
                for g in range(groups)
                for i in range(size)
            ]
        if step.stop_markers:
            rows += [(source, pasid, valid, 0, True, Perm.NONE, 0, False, None)] * step.stop_markers
        taken = pipeline.submit_rows(rows)
        # A group is waiting for its answer if its LAST request made it into the ring.
        unit, sent = device.unit, (self.now, pasid, self.stamps.get(pasid) if valid else None)
        if groups == 1:
            if taken >= size:
                self.submitted[unit, source, first] = sent
        else:
            self.submitted.update(
                ((unit, source, (first + g) & mask), sent)
                for g in range(min(groups, taken // size))
            )
        if step.service:
            self._service(device.unit)

    def _op_service(self, step: Step) -> None:
        assert step.unit is not None
        self._service(step.unit)

    def _service(self, unit: str) -> None:
        responses = self.pipelines[unit].service_rows()
        if self.clock is None:
            self._record(unit, responses)
        else:
            self._record_timed(unit, responses, self.clock)

    def _record_timed(
        self, unit: str, responses: Sequence[ResponseRow], clock: DriverClock
    ) -> None:
        """Answer the groups one after another on the driver, each taking its sampled
        ``page_request_service`` time after the driver is free: a group's latency is when
        its answer goes out, less when its LAST request came in."""
        pop = self.submitted.pop
        add = self.metrics.request_latency_us.add
        done = clock.start(self.now)
        stamps = self.stamps
        stale = 0
        for response in responses:
            done = clock.spend("page_request_service", done, done)
            if not response[6]:
                continue  # answered before its group closed: the group still waits
            sent = pop((unit, response[0], response[1]), None)
            if sent is not None:
                add(done - sent[0])
                stamp = sent[2]
                if stamp is not None and response[2] is _SUCCESS and stamps.get(sent[1]) != stamp:
                    stale += 1
        self.metrics.stale_pasid_hits += stale

    def _record(self, unit: str, responses: Sequence[ResponseRow]) -> None:
        pop = self.submitted.pop
        now = self.now
        add = self.metrics.request_latency_us.add
        stamps = self.stamps
        stale = 0
        for response in responses:
            if not response[6]:
                continue  # answered before its group closed: the group still waits
            sent = pop((unit, response[0], response[1]), None)
            if sent is not None:
                add(now - sent[0])
                stamp = sent[2]
                # Answered "success" for a PASID allocated again since the group was queued:
                # the new owner served the old one's request (what VT-d's drain on unbind,
                # §7.10, exists to prevent).
                if stamp is not None and response[2] is _SUCCESS and stamps.get(sent[1]) != stamp:
                    stale += 1
        self.metrics.stale_pasid_hits += stale

    # ------------------------------------------------------------------ guests

    def _op_guest_alloc(self, step: Step) -> None:
        assert step.vm is not None and step.name is not None
        vm = self.vms[step.vm]
        if not vm.iommu.scalable_mode:
            reason = "scalable_mode_off"  # the guest driver runs without PASIDs
        else:
            private = DriverObject(step.owner or vm.name)
            try:
                pasid = vm.space.alloc(vm.set, 1, vm.space.capacity - 1, private)
            except AllocatorNoSpaceError:
                # The guest only hears "no PASID"; the model knows whether the quota said so.
                quota = vm.host_set.quota
                reason = "quota" if quota is not None and vm.host_set.count >= quota else "no_space"
            except _ALLOC_FAILURES as exc:
                reason = _failure_reason(exc)
            else:
                self.metrics.guest_allocations += 1
                vm.pasids.set(step.name, pasid)
                return
        self.metrics.guest_allocation_failures[reason] += 1
        vm.pasids.drop(step.name)

    def _op_guest_free(self, step: Step) -> None:
        assert step.vm is not None
        vm = self.vms[step.vm]
        ref = step.pasid
        pasid = vm.pasids.get(ref) if isinstance(ref, str) else ref
        if pasid is None:
            raise _StepSkipped(f"guest PASID {ref!r} was never allocated (its allocation failed)")
        if pasid not in vm.space:
            raise _StepSkipped(f"VM {vm.name!r} has no PASID {pasid:#x} allocated")
        # The guest's unbind clears the private data before the free (VT-d's free hook
        # refuses an ID that still has some); put it back if the free fails.
        private = vm.space.find(None, pasid)
        try:
            vm.space.detach_data_in(vm.set, pasid)  # the guest's own PASIDs only
        except IoasidError as exc:
            raise _StepSkipped(str(exc)) from exc
        try:
            vm.space.free(vm.set, pasid)
        except IoasidError as exc:
            if private is not None:
                vm.space.set_data_in(vm.set, pasid, private)
            raise _StepSkipped(str(exc)) from exc
        self.metrics.guest_frees += 1
        vm.pasids.drop_pasid(pasid)

    def _op_plug(self, step: Step) -> None:
        assert step.unit is not None
        if step.vm is None:
            self._plug_unit(step.unit)  # the loader checked it was unplugged
            return
        try:
            self.vms[step.vm].iommu.plug(step.unit)
        except IoasidError as exc:
            raise _StepSkipped(str(exc)) from exc

    def _op_unplug(self, step: Step) -> None:
        assert step.unit is not None
        if step.vm is not None:
            try:
                self.vms[step.vm].iommu.unplug(step.unit)
            except IoasidError as exc:
                raise _StepSkipped(str(exc)) from exc
            return
        pipeline = self.pipelines[step.unit]
        for device in list(self.platform.devices.values()):
            if device.unit == step.unit:
                for pasid in device.bindings:
                    # The bond goes with the device; its references are leaked until freed.
                    sva = self.sva_by_pasid[pasid]
                    sva.lost += sva.bonds.pop(device.name)
                answered = pipeline.remove_device(device.source_id)
                self._record(step.unit, [response_row(r) for r in answered])
        pipeline.discard_queue()  # unread requests go with the unit's queue
        self.platform.remove_unit(step.unit)
        self._collect(pipeline)
        del self.pipelines[step.unit]

    # ------------------------------------------------------------------ allocator swaps

    def _op_register_allocator(self, step: Step) -> None:
        assert step.allocator is not None and step.kind is not None
        try:
            self.allocators.register(step.allocator, step.kind, share=step.share)
        except AllocatorBusyError as exc:
            self.metrics.allocator_refusals["default_busy"] += 1
            raise _StepSkipped(str(exc)) from exc
        except IoasidError as exc:
            raise _StepSkipped(str(exc)) from exc

    def _op_unregister_allocator(self, step: Step) -> None:
        assert step.allocator is not None
        try:
            reclaimed = self.allocators.unregister(step.allocator, force=step.force)
        except BusyError as exc:
            self.metrics.allocator_refusals["holds_ids"] += 1
            raise _StepSkipped(str(exc)) from exc
        except IoasidError as exc:
            raise _StepSkipped(str(exc)) from exc
        if not reclaimed:
            return
        self.metrics.forced_reclaims += len(reclaimed)
        for pasid in reclaimed:
            self.reclaimed[pasid] = (self.now, self.metrics.allocations)
            sva = self.sva_by_pasid.get(pasid)
            if sva is not None:
                self._drop_sva(sva)  # the SVA layer hears the FREE
            for name in self.pasids.drop_pasid(pasid):
                self.lost_names[name] = f"the forced unregister at {step.where}"

    # ------------------------------------------------------------------ SPIDs

    def _op_attach_spid(self, step: Step) -> None:
        """A VMM maps a guest PASID to a host one; the mapping holds a reference, so a
        free by the owner leaves the ID FREE_PENDING until the SPID is detached."""
        assert step.spid is not None
        pasid = self._pasid(attrs.evolve(step, spid=None))
        try:
            owner = self.space.find_set(pasid)
            self.space.attach_spid_in(owner, pasid, step.spid)
        except IoasidError as exc:
            raise _StepSkipped(str(exc)) from exc
        try:
            self.space.find_by_spid(owner, step.spid, get=True)
        except IoasidError as exc:
            self.space.detach_spid_in(owner, pasid)  # a failed step changes nothing
            raise _StepSkipped(str(exc)) from exc

    def _op_detach_spid(self, step: Step) -> None:
        assert step.set is not None
        pasid = self._by_spid(step)
        owner = self.sets[step.set]
        self.space.detach_spid_in(owner, pasid)
        if self.space.put(owner, pasid):
            self.reclaimed[pasid] = (self.now, self.metrics.allocations)

    # ------------------------------------------------------------------ totals

    def _collect(self, pipeline: PrqPipeline) -> None:
        m = self.metrics
        c = pipeline.counters
        m.page_requests += c.page_requests + c.overflow_dropped + c.hardware_rejected
        for code, count in c.responses.items():
            m.responses[code.name.lower()] += count
        for outcome, count in c.outcomes.items():
            m.outcomes[outcome.value] += count
        m.cross_owner_hits += c.cross_owner_hits
        m.type_confusions += c.type_confusions
        m.vendor_rejects += c.vendor_rejects
        m.unanswered_groups += c.unanswered_groups
        m.premature_responses += c.premature_responses
        m.auto_responses += sum(c.auto_responses.values())
        for code, count in c.auto_responses.items():
            m.auto_response_codes[code.name.lower()] += count
        m.dropped["overflow"] += c.overflow_dropped
        m.dropped["hardware"] += c.hardware_rejected
        m.dropped["malformed"] += c.malformed
        for kind, count in c.unhandled_events.items():
            m.unhandled_events[kind.value] += count
        m.dropped["unit_removed"] += c.lost_on_removal
        iopf = pipeline.iopf.counters
        m.dropped["stop_markers"] += iopf.stop_markers
        m.dropped["unmatched"] += iopf.unmatched_responses
        m.dropped["discarded_partial"] += iopf.discarded_partial

    def _finish(self) -> None:
        for pipeline in self.pipelines.values():
            self._collect(pipeline)
        m = self.metrics
        for vm in self.vms.values():
            m.vcmd_commands += vm.iommu.commands
            m.vm_exits += vm.iommu.exits
            m.scalable_mode_off += not vm.iommu.scalable_mode
        # An SVA PASID a bond of which went with its unit (the device may be back without
        # it), still allocated: its last reference is never dropped, nobody will free it.
        self.metrics.orphaned_ids = sum(1 for sva in self.sva_of.values() if sva.lost)
        self.metrics.pending_frees = sum(
            1 for rec in self.space.records_view().values() if rec is not None and rec[3]
        )


def _same_group(a: AllocatorOps[Any] | None, b: AllocatorOps[Any] | None) -> bool:
    """Whether two active allocators are one group (the default counts as one, None)."""
    if a is None or b is None:
        return a is b
    return a.alloc == b.alloc and a.free == b.free


_ALLOC_FAILURES: Final = (NoSpaceError, AllocatorError, InvalidArgumentError)
"""What an allocation step may meet and count (anything else is a bug, raised)."""


def _failure_reason(exc: Exception) -> str:
    """The ``allocation_failures`` reason of a failed allocation (the first match wins:
    ``QuotaExceededError`` is a ``NoSpaceError``)."""
    for kind, reason in (
        (QuotaExceededError, "quota"),
        (NoSpaceError, "no_space"),
        (AllocatorError, "allocator"),
    ):
        if isinstance(exc, kind):
            return reason
    return "invalid"


@attrs.define(eq=False)
class _Ending:
    """What a run sets up outside itself, let go of when it ends (done or failed): each
    VM's virtual IOMMU is closed, the plugin manager forgets the host's units."""

    hooks: Hooks | None
    spaces: list[IoasidSpace] = attrs.field(factory=list)
    iommus: list[GuestIommu] = attrs.field(factory=list)

    def close(self, failure: BaseException | None = None) -> None:
        """A close that raises is noted on ``failure`` (the run's own error stays the one
        raised); without one, it is raised after every other close."""
        errors: list[Exception] = []
        for iommu in self.iommus:
            try:
                iommu.close()
            except Exception as raised:
                errors.append(raised)
        if self.hooks is not None:
            for space in self.spaces:
                self.hooks.forget(space)
        if failure is not None:
            for error in errors:
                failure.add_note(f"and when the run ended, a guest path's close raised {error!r}")
        elif len(errors) == 1:
            raise errors[0]
        elif errors:
            said = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            raise ExceptionGroup(f"guest paths' close raised when the run ended: {said}", errors)


class _StepSkipped(Exception):
    """A step that cannot run in this replay (it is counted, the replay goes on)."""


_READS_ONLY: Final = frozenset({"page_requests", "service"})
"""Step ops that change nothing ``_Run._observe`` samples (live IDs, active allocators, VMs'
host PASIDs): requests go to a ring and are looked up, never allocated or freed."""

_PROGRESS_EVERY: Final = 1 << 14
"""Events between two progress reports of a run (a few milliseconds of replay)."""


def step_work(step: Step) -> int:
    """The events a step stands for: itself, and each page request it sends. A file's
    total is bounded at load (``MAX_WORK``); progress inside a run is counted in these."""
    if step.op == "page_requests":
        return 1 + step.groups * step.group_size + step.stop_markers
    return 1


def scenario_work(scenario: Scenario) -> int:
    """The events one run of ``scenario`` stands for (see :func:`step_work`); counted at
    loading for a file with generators (its steps are not held)."""
    if isinstance(scenario.steps, StepStream):
        return scenario.steps.work
    return sum(step_work(step) for step in scenario.steps)


def replay(
    scenario: Scenario,
    vendor: VendorPrq,
    policy: LookupPolicy | None = None,
    *,
    seed: int | None = None,
    hooks: Hooks | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Run ``scenario`` once under ``vendor`` and ``policy`` (the vendor's own by default).
    ``progress`` is told, every few thousand events, how many more were done (the events
    of :func:`step_work`; they add up to :func:`scenario_work`)."""
    chosen = policy if policy is not None else vendor.default_policy
    run_seed = scenario.seed if seed is None else seed
    ending = _Ending(hooks)
    try:
        metrics = _Run(scenario, vendor, chosen, hooks, run_seed, ending=ending).run(
            scenario.steps, progress
        )
    except BaseException as failure:
        ending.close(failure)
        raise
    ending.close()
    return RunResult(
        scenario.name,
        vendor.name,
        chosen,
        run_seed,
        metrics,
        native=chosen is vendor.default_policy,
        discipline=discipline_of(vendor),
    )
