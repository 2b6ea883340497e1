"""The parsed form of a scenario file: frozen attrs types, validated before anything runs.

A scenario names no vendor: the same ``Scenario`` is replayed once per (vendor, policy).
Every name a step uses (unit, device, set, address space, PASID name) refers to something
declared earlier in the file; the loader checks that, so the replay never meets a dangling
name. Each generator kind's spec lives with its kind, in :mod:`ioasid_core.scenario.generators`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from ioasid_core.backends import BackendKind
from ioasid_core.latency import Distribution, LatencyOp

__all__ = [
    "AddressSpaceSpec",
    "DeviceSpec",
    "DomainSpec",
    "GeneratedProcesses",
    "OptionValue",
    "PlatformSpec",
    "Scenario",
    "SetSpec",
    "Step",
    "UnitSpec",
    "VmSpec",
    "process_name",
]

PermName = Literal["read", "write", "exec", "priv"]
OptionValue = str | int | float | bool | tuple[str | int | float | bool, ...]
"""A ``[vendor.<name>]`` option's value: a plain value, or an array of them."""
Op = Literal[
    "bind",
    "unbind",
    "alloc",
    "free",
    "page_requests",
    "service",
    "unplug",
    "plug",
    "guest_alloc",
    "guest_free",
    "register_allocator",
    "unregister_allocator",
    "attach_spid",
    "detach_spid",
]


@attrs.frozen(kw_only=True)
class UnitSpec:
    name: str
    pasid_bits: int = 20
    queue_entries: int = 2048


@attrs.frozen(kw_only=True)
class AddressSpaceSpec:
    name: str
    kind: Literal["process", "vm"] = "process"


@attrs.frozen(kw_only=True)
class GeneratedProcesses:
    """A churn's fresh processes (``processes = true``): ``<prefix>proc0`` ..
    ``<prefix>proc<count - 1>``, each an address space of kind ``process`` from its first
    bind until it exits (declared as a range: a file may stand for millions of them)."""

    prefix: str
    count: int
    where: str
    """The key path of the churn that makes them (``generators[0]``)."""

    def name(self, n: int) -> str:
        return process_name(self.prefix, n)


def process_name(prefix: str, n: int) -> str:
    """The name of a churn's ``n``-th generated process."""
    return f"{prefix}proc{n}"


@attrs.frozen(kw_only=True)
class SetSpec:
    name: str
    type: Literal["null", "mm"] = "null"
    token: str | None = None
    """MM sets: the name of an address space."""
    quota: int | None = None
    sva: bool = False
    """The vendor's SVA set: the one the ``SET`` policy searches. At most one."""


@attrs.frozen(kw_only=True)
class DomainSpec:
    name: str
    owner: str
    sets: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class DeviceSpec:
    name: str
    unit: str
    source_id: int
    owner: str
    domain: str | None = None
    pasid_bits: int | None = None
    prg_response_pasid_required: bool = False
    """PCIe PRI "PRG Response PASID Required": responses to its PASID-carrying requests
    must carry the PASID (default clear, as PCIe has it)."""


@attrs.frozen(kw_only=True)
class VmSpec:
    """A virtual machine: its own guest PASID space, behind virtual IOMMU units.

    Where the guest's PASIDs come from is the vendor's business (``ioasid_core.guest``): from
    the host through the VT-d virtual command interface, or from the guest's own space.
    """

    name: str
    quota: int | None = None
    """Host PASIDs the VM may hold: the quota of its MM set in the host space (token = the VM)."""
    capacity: int = 1 << 20
    """The size of the guest's own PASID space."""
    units: tuple[str, ...] = ()
    """Its virtual IOMMU units (caching mode), plugged when the run starts."""


@attrs.frozen(kw_only=True)
class PlatformSpec:
    capacity: int = 1 << 20
    units: tuple[UnitSpec, ...] = ()
    address_spaces: tuple[AddressSpaceSpec, ...] = ()
    """The declared ones (``[[platform.address_spaces]]``)."""
    processes: tuple[GeneratedProcesses, ...] = ()
    """The churns' generated processes, one range a churn with ``processes = true``."""
    sets: tuple[SetSpec, ...] = ()
    domains: tuple[DomainSpec, ...] = ()
    devices: tuple[DeviceSpec, ...] = ()
    vms: tuple[VmSpec, ...] = ()


@attrs.frozen(kw_only=True)
class Step:
    """One operation of the workload. Which fields matter depends on ``op``:

    - ``bind``: ``device``, ``set``, ``address_space``, ``name`` (SVA bind: the address
      space's one PASID, allocated in ``set`` by its first bind with the address space as
      private data, bound on the device; ``name`` stands for this bind's reference).
    - ``unbind``: ``device``, ``pasid`` (drops that reference; the address space's last one
      frees the PASID).
    - ``alloc``: ``set``, ``owner`` (private data: a driver object of that owner) or
      ``address_space``, ``name``.
    - ``free``: ``pasid`` (a bind's name: the address space's PASID, every binding of it).
    - ``page_requests``: ``device``, ``pasid`` (a name, a number, or None for no PASID) or
      ``set`` and ``spid`` (a guest PASID, mapped to its host PASID through the set's SPIDs),
      ``groups``, ``group_size``, ``perm``, ``stop_markers``; serviced at once unless
      ``service`` is False; ``source_id`` sends them with another source ID than the
      device's own (a requester the driver does not know).
    - ``service``: ``unit``.
    - ``unplug``: ``unit``, or ``vm`` and ``unit`` (one of that VM's virtual units).
    - ``plug``: ``vm`` and ``unit`` (a virtual unit of that VM comes back).
    - ``guest_alloc``: ``vm``, ``name``, optional ``owner`` (the guest driver's object).
    - ``guest_free``: ``vm``, ``pasid`` (a guest PASID name of that VM, or a number).
    - ``register_allocator``: ``allocator`` (a name for the registration), ``kind`` (a
      built-in backend), ``share`` (join the first live registration of the same kind).
    - ``unregister_allocator``: ``allocator``, ``force`` (reclaim the IDs it still holds).
    - ``attach_spid``: ``pasid``, ``spid`` (the mapping holds a reference on the PASID).
    - ``detach_spid``: ``set``, ``spid`` (drops the mapping and its reference).
    """

    op: Op
    at: float = 0.0
    """Modelled time in microseconds; steps run in file order, ``at`` never decreases."""
    device: str | None = None
    set: str | None = None
    address_space: str | None = None
    owner: str | None = None
    name: str | None = None
    pasid: str | int | None = None
    unit: str | None = None
    vm: str | None = None
    groups: int = 1
    group_size: int = 1
    perm: tuple[PermName, ...] = ("read",)
    stop_markers: int = 0
    service: bool = True
    allocator: str | None = None
    kind: BackendKind | None = None
    share: bool = False
    force: bool = False
    spid: int | None = None
    source_id: int | None = None
    """``page_requests`` only: the source ID the requests carry, instead of the device's."""
    where: str = ""
    """The key path of this step in its file (``steps[3]``), for messages at replay time."""


@attrs.frozen(kw_only=True)
class Scenario:
    name: str
    description: str = ""
    seed: int = 0
    platform: PlatformSpec = PlatformSpec()
    vendor_options: tuple[tuple[str, tuple[tuple[str, OptionValue], ...]], ...] = ()
    """``[vendor.<name>]`` sections: options only that vendor reads (it checks them itself)."""
    steps: Sequence[Step] = ()
    """The explicit steps and the generators' expansions, merged by time. Loaded from a file
    with generators: a ``StepStream`` (``ioasid_core.scenario.stream``), which holds the
    written steps and the generators' specs and makes the generated steps again, lazily,
    each time it is walked."""
    latency: tuple[tuple[LatencyOp, Distribution], ...] = ()
    """``[latency]``: the modelled operations that take time, in file order (none: no
    operation takes time, and requests are answered when their unit is serviced)."""
    source: str = "<memory>"
    """The file it was read from."""
