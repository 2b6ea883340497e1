"""The VT-d virtual command interface: the VMM's emulated registers and the guest's allocator.

A guest with a virtual IOMMU must not pick PASIDs itself: the PASID namespace is system-wide
(ENQCMD shared work queues need one PASID across devices), so the guest asks the host through
two registers, VCMD and VCRSP (kernel-facts §3.1, §2.8).

Host side, :class:`VcmdEmulator`: the register pair as a VMM provides it, backed by the host's
``IoasidSpace`` and the VM's MM-type set (token = the VM, quota = what the VM may hold).

- 64-bit accesses only, at 8-byte-aligned offsets; anything else raises
  ``InvalidArgumentError`` (a bug in the caller, not something a guest can provoke silently).
- Offsets the model does not define read 0 and ignore writes, as do the VCMD registers of a
  unit without ``ECAP.VCS``. ``CAP`` (0x08) and ``ECAP`` (0x10) read the unit's capabilities, so
  a guest can build its unit from registers alone (:func:`read_unit`).
- A VCMD write is ignored when ``VCCAP.PAS`` is clear or IP is already set (QEMU's rules).
  Otherwise VCRSP becomes "IP set" and the command runs. ``latency`` decides when: 0 runs it
  inside the write (IP is never seen), ``n`` lets the next ``n`` VCRSP reads still see IP and
  runs it on the read after, ``None`` waits for :meth:`VcmdEmulator.step`. Either way the host
  changes when IP clears, so a test sees no half-done command.
- Allocate: host ``alloc(vm_set, 1, 0xFFFFF)`` (QEMU's ``VTD_HPASID_MIN``..0xFFFFF, narrowed to
  the host's capacity), result in the result field; any refusal (quota, space, a dying set)
  answers "no PASID". Free: host ``free(vm_set, pasid)``; a PASID this VM does not own (another
  VM's, or none at all) answers "invalid PASID" and is never freed. Unknown commands and commands
  with reserved bits set answer "undefined command". Status values: see ``registers``.

Guest side, :func:`vcmd_alloc` / :func:`vcmd_free`: the allocator ops of every virtual unit.
They reach only the registers of the :class:`VcmdGuestUnit` passed as ``pdata``; since every
unit uses the same two functions, all of a guest's units join one allocator group (SPEC "share
one ID space"), whose calls go through the first still-registered unit.

- Allocate rejects ``min < 1`` or ``max`` above the unit's highest PASID, then writes the
  command, polls VCRSP until IP clears (at most ``max_polls`` reads, else
  :class:`VcmdTimeoutError`) and decodes the status. "No PASID" raises ``NoSpaceError`` (the
  kernel's -ENOSPC), so the guest's ``space.alloc`` raises ``AllocatorNoSpaceError``: both an
  ``AllocatorError`` and a ``NoSpaceError`` (``VcmdGuestUnit.last_status`` still holds the
  layout's no-PASID code). Any other status raises :class:`VcmdError` (the kernel's -ENODEV),
  which the core wraps in a plain ``AllocatorError`` (as its ``__cause__``).
- Free refuses an ID that still has private data in the guest's space (the kernel's
  ``ioasid_find(NULL, id)`` check: the guest's SVM unbind clears it first). The kernel only
  logged and then forgot the ID, leaking it at the host; here the refusal raises
  :class:`IoasidInUseError`, so the core keeps the ID and guest and host stay in step. An
  "invalid PASID" answer is only logged (as in the kernel): the host does not hold the ID, so
  forgetting it keeps them in step too.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections import deque
from typing import Final, Protocol

import attrs

from ioasid_core.plugin import (
    INVALID_IOASID,
    BusyError,
    InvalidArgumentError,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    IommuUnit,
    NoSpaceError,
    ReentrancyError,
    SetType,
)
from ioasid_vtd.registers import (
    CAP_OFFSET,
    ECAP_OFFSET,
    GUEST_VIOMMU,
    LAYOUT_3_3,
    U64_MAX,
    VcmdCommand,
    VcmdLayout,
    VcmdResponse,
    VtdCapabilities,
    vtd_caps,
    vtd_unit,
)

__all__ = [
    "DEFAULT_MAX_POLLS",
    "HISTORY_MAX",
    "HOST_PASID_MAX",
    "HOST_PASID_MIN",
    "PASID_MIN",
    "IoasidInUseError",
    "RegisterInterface",
    "VcmdCompletion",
    "VcmdEmulator",
    "VcmdError",
    "VcmdGuestUnit",
    "VcmdTimeoutError",
    "read_unit",
    "vcmd_alloc",
    "vcmd_free",
]

log = logging.getLogger(__name__)

PASID_MIN: Final = 1
"""PASID 0 is RID_PASID (DMA without PASID): a guest never allocates it (§7)."""

HOST_PASID_MIN: Final = 1
HOST_PASID_MAX: Final = 0xFFFFF
"""The host range QEMU's emulation asked for on the guest's behalf (§3.1, §7)."""

DEFAULT_MAX_POLLS: Final = 1000
"""VCRSP reads before a guest gives up on a command (the kernel's operation timeout)."""

HISTORY_MAX: Final = 1 << 20
"""The most completed commands an emulator keeps for tracing (a bound on what a caller can
ask it to hold)."""

_IP: Final = 1  # VCRSP bit 0 in both layouts


class RegisterInterface(Protocol):
    """64-bit MMIO access to one unit's registers."""

    def read64(self, offset: int) -> int: ...

    def write64(self, offset: int, value: int) -> None: ...


class VcmdError(IoasidError):
    """The virtual command interface answered something a guest cannot use."""

    errno = errno.ENODEV


class VcmdTimeoutError(VcmdError):
    """VCRSP.IP never cleared within the guest's polling budget."""

    errno = errno.ETIMEDOUT


class IoasidInUseError(BusyError):
    """A guest free refused: the ID still has private data (an SVM bind) in the guest."""


@attrs.frozen
class VcmdCompletion:
    """One command the emulator completed, for tracing (``VcmdEmulator.history``)."""

    command: int
    operand: int
    status: int
    result: int


def _check_access(offset: object, value: object = 0) -> None:
    if type(offset) is not int or offset < 0 or offset % 8:
        raise InvalidArgumentError(
            f"register offset {offset!r} is not an 8-byte-aligned offset (64-bit access only)"
        )
    if type(value) is not int or not 0 <= value <= U64_MAX:
        raise InvalidArgumentError(f"register value {value!r} is not a 64-bit int")


class VcmdEmulator:
    """A vIOMMU's VCMD/VCRSP pair as a VMM emulates it for one VM (see the module docstring).

    :param host: the host's space, where the PASIDs really come from.
    :param vm_set: the VM's MM-type set in ``host`` (its quota bounds the VM).
    :param layout: which spec revision's register layout to present.
    :param caps: the unit's CAP/ECAP/VCCAP; VCMD exists only with ``vcs``, works only with ``pas``.
    :param latency: VCRSP reads that still see IP before a command completes; ``None``: only
        :meth:`step` completes it.
    :param history: how many completed commands :attr:`history` keeps.
    """

    def __init__(
        self,
        host: IoasidSpace,
        vm_set: IoasidSet,
        *,
        layout: VcmdLayout = LAYOUT_3_3,
        caps: VtdCapabilities = GUEST_VIOMMU,
        latency: int | None = 0,
        history: int = 64,
    ) -> None:
        if not isinstance(vm_set, IoasidSet) or vm_set.type is not SetType.MM:
            raise InvalidArgumentError(f"{vm_set!r} is not an MM-type set (token = the VM)")
        if latency is not None and (latency.__class__ is not int or latency < 0):
            raise InvalidArgumentError(f"latency {latency!r} is not None or an int >= 0")
        if history.__class__ is not int or not 0 <= history <= HISTORY_MAX:
            raise InvalidArgumentError(f"history {history!r} is not an int in 0..{HISTORY_MAX}")
        self.host = host
        self.vm_set = vm_set
        self.layout = layout
        self.caps = caps
        self.latency = latency
        self._history: deque[VcmdCompletion] = deque(maxlen=history)
        self.ignored_writes = 0
        """Writes dropped: read-only or undefined registers, PAS clear, or IP set."""
        self._max = min(HOST_PASID_MAX, host.capacity - 1)
        self._lock = threading.Lock()
        self._vcmd = 0
        self._vcrsp = 0
        self._pending: int | None = None
        self._reads_left = 0

    def __repr__(self) -> str:
        return f"<VcmdEmulator {self.layout.name} for {self.vm_set}>"

    @property
    def history(self) -> tuple[VcmdCompletion, ...]:
        """The last completed commands, oldest first: a copy, taken in one C call, so that
        a reader may walk it while another thread's commands complete (a walk of the live
        deque would raise "deque mutated during iteration")."""
        return tuple(self._history)

    @property
    def in_progress(self) -> bool:
        """VCRSP.IP: a command was accepted and has not completed."""
        return bool(self._vcrsp & _IP)

    def read64(self, offset: int) -> int:
        """Read a register; reading VCRSP may complete the pending command (``latency``)."""
        _check_access(offset)
        layout = self.layout
        with self._lock:
            if offset == CAP_OFFSET:
                return self.caps.cap
            if offset == ECAP_OFFSET:
                return self.caps.ecap
            if not self.caps.vcs:
                return 0
            if offset == layout.vcrsp:
                if self._pending is not None and self.latency is not None:
                    if self._reads_left:
                        self._reads_left -= 1
                    else:
                        self._complete()
                return self._vcrsp
            if offset == layout.vcmd:
                return self._vcmd
            if offset == layout.vccap:
                return self.caps.vccap
            return 0

    def write64(self, offset: int, value: int) -> None:
        """Write a register: only VCMD is writable, and only when PAS is set and IP is clear."""
        _check_access(offset, value)
        with self._lock:
            if offset != self.layout.vcmd or not self.caps.vcs:
                self.ignored_writes += 1
                return
            if not self.caps.pas or self._vcrsp & _IP:
                log.debug("%r: VCMD write %#x ignored (PAS clear or IP set)", self, value)
                self.ignored_writes += 1
                return
            self._vcmd = value
            self._vcrsp = _IP
            self._pending = value
            self._reads_left = self.latency or 0
            if self.latency == 0:
                self._complete()

    def step(self) -> bool:
        """Complete the pending command now; False if there was none."""
        with self._lock:
            if self._pending is None:
                return False
            self._complete()
            return True

    def _complete(self) -> None:
        value = self._pending
        assert value is not None
        self._pending = None
        command, operand, status, result = self._execute(value)
        self._vcrsp = self.layout.encode_response(in_progress=False, status=status, result=result)
        self._history.append(VcmdCompletion(command, operand, status, result))

    def _execute(self, value: int) -> tuple[int, int, int, int]:
        """Run one command against the host: ``(command, operand, status, result)``."""
        layout = self.layout
        try:
            command, operand = layout.decode_command(value)
        except InvalidArgumentError as exc:
            log.info("%r: malformed command %#x: %s", self, value, exc)
            return value & 0xFF, 0, layout.status_undefined, 0
        if command == VcmdCommand.ALLOC:
            try:
                pasid = self.host.alloc(self.vm_set, HOST_PASID_MIN, self._max)
            except ReentrancyError:
                raise
            except IoasidError as exc:
                log.info("%r: no PASID for the guest: %s", self, exc)
                return command, operand, layout.status_no_pasid, 0
            return command, operand, layout.status_success, pasid
        if command == VcmdCommand.FREE:
            try:
                self.host.free(self.vm_set, operand)
            except ReentrancyError:
                raise
            except IoasidError as exc:
                log.info("%r: guest freed PASID %#x it does not own: %s", self, operand, exc)
                return command, operand, layout.status_invalid_pasid, 0
            return command, operand, layout.status_success, 0
        log.info("%r: undefined command %#x", self, command)
        return command, operand, layout.status_undefined, 0


def read_unit(name: str, regs: RegisterInterface, layout: VcmdLayout) -> IommuUnit:
    """Build a unit as a guest driver would: read CAP and ECAP, and VCCAP if ECAP.VCS."""
    probe = VtdCapabilities(regs.read64(CAP_OFFSET), regs.read64(ECAP_OFFSET), 0)
    vccap = regs.read64(layout.vccap) if probe.vcs else 0
    return vtd_unit(name, VtdCapabilities(probe.cap, probe.ecap, vccap))


@attrs.define(eq=False, repr=False)
class VcmdGuestUnit:
    """A guest's view of one virtual VT-d unit: the ``pdata`` of its allocator ops.

    It holds the unit's register interface and the guest's own space (the free hook must look
    up private data there). One lock per unit serialises write-and-poll, like the kernel's
    register lock.
    """

    unit: IommuUnit
    regs: RegisterInterface
    layout: VcmdLayout
    space: IoasidSpace
    max_polls: int = attrs.field(default=DEFAULT_MAX_POLLS, validator=attrs.validators.ge(1))
    pasid_max: int = attrs.field(init=False)
    last_status: int | None = attrs.field(default=None, init=False)
    """The status of the last completed command (how a test or a guest sees "no PASID")."""
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.pasid_max = vtd_caps(self.unit).pasid_max

    def __repr__(self) -> str:
        return f"<VcmdGuestUnit {self.name!r} ({self.layout.name} layout)>"

    @property
    def name(self) -> str:
        return self.unit.name

    def submit(self, command: int, operand: int = 0) -> VcmdResponse:
        """Write one command and poll VCRSP until IP clears; the decoded response."""
        layout = self.layout
        value = layout.encode_command(command, operand)
        with self._lock:
            self.regs.write64(layout.vcmd, value)
            for _ in range(self.max_polls):
                raw = self.regs.read64(layout.vcrsp)
                if not raw & _IP:
                    break
            else:
                raise VcmdTimeoutError(
                    f"VT-d unit {self.name!r}: VCRSP.IP still set after {self.max_polls} "
                    f"reads of {layout.vcrsp:#x} (command {command:#x})"
                )
            response = layout.decode_response(raw)
            self.last_status = response.status
        return response

    def describe(self, status: int) -> str:
        """What ``status`` means in this unit's layout, for messages."""
        layout = self.layout
        if status == layout.status_success:
            return "success"
        if status == layout.status_undefined:
            return "undefined command"
        if status == layout.status_no_pasid:
            return "no PASID available / invalid PASID"
        return "unknown status"


def vcmd_alloc(min: int, max: int, unit: VcmdGuestUnit) -> int:
    """Ask the host for a PASID through ``unit``'s registers.

    ``INVALID_IOASID`` for a range the guest may not ask for; ``NoSpaceError`` when the host
    answers "no PASID available" (the kernel's ``-ENOSPC``).
    """
    if min < PASID_MIN or max > unit.pasid_max:
        log.warning(
            "VT-d unit %r: PASID range [%#x, %#x] outside [%#x, %#x]",
            unit.name,
            min,
            max,
            PASID_MIN,
            unit.pasid_max,
        )
        return INVALID_IOASID
    response = unit.submit(VcmdCommand.ALLOC)
    status = response.status
    if status == unit.layout.status_success:
        return response.result
    if status == unit.layout.status_no_pasid:
        # The kernel's -ENOSPC: the core raises AllocatorNoSpaceError (also a NoSpaceError).
        raise NoSpaceError(
            f"VT-d unit {unit.name!r}: the host has no PASID for this guest (status {status})"
        )
    raise VcmdError(
        f"VT-d unit {unit.name!r}: allocate answered status {status} ({unit.describe(status)})"
    )


def vcmd_free(ioasid: int, unit: VcmdGuestUnit) -> None:
    """Give ``ioasid`` back to the host through ``unit``'s registers, unless it is in use."""
    private = _guest_private(unit.space, ioasid)
    if private is not None:
        log.error("VT-d unit %r: cannot free active IOASID %#x", unit.name, ioasid)
        raise IoasidInUseError(
            f"VT-d guest cannot free IOASID {ioasid:#x}: it still has private data "
            f"{private!r} (unbind first: clear the data, then free)"
        )
    response = unit.submit(VcmdCommand.FREE, ioasid)
    status = response.status
    if status == unit.layout.status_success:
        return
    if status == unit.layout.status_invalid_pasid:
        log.warning("VT-d unit %r: the host says PASID %#x is invalid", unit.name, ioasid)
        return
    raise VcmdError(
        f"VT-d unit {unit.name!r}: free of {ioasid:#x} answered status {status} "
        f"({unit.describe(status)})"
    )


def _guest_private(space: IoasidSpace, ioasid: int) -> object:
    """The guest's private data for ``ioasid`` (the kernel's lock-free ``ioasid_find(NULL, id)``).

    A custom allocator runs inside an operation of its space, where ``find`` refuses re-entry;
    ``records_view`` is the core's lock-free read for exactly this (the kernel's RCU lookup).
    """
    record = space.records_view().get(ioasid)
    return None if record is None else record[1]
