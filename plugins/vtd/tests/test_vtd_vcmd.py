"""The virtual command interface at register level: the VMM's emulator and the guest's side."""

from __future__ import annotations

import logging
import sys
import threading

import attrs
import pytest

from ioasid_core import INVALID_IOASID, IoasidSet, IoasidSpace, SetType
from ioasid_core.plugin import DecodeError, InvalidArgumentError, NoSpaceError
from ioasid_vtd.registers import (
    CAP_OFFSET,
    ECAP_OFFSET,
    GUEST_VIOMMU,
    LAYOUT_3_1,
    LAYOUT_3_3,
    VcmdCommand,
    VcmdLayout,
    VtdCapabilities,
    vtd_caps,
)
from ioasid_vtd.vcmd import (
    HISTORY_MAX,
    HOST_PASID_MAX,
    IoasidInUseError,
    VcmdCompletion,
    VcmdEmulator,
    VcmdError,
    VcmdGuestUnit,
    VcmdTimeoutError,
    read_unit,
    vcmd_alloc,
    vcmd_free,
)

LAYOUTS = pytest.mark.parametrize("layout", [LAYOUT_3_1, LAYOUT_3_3], ids=["3.1", "3.3"])
ALLOC = VcmdCommand.ALLOC
FREE = VcmdCommand.FREE


@attrs.define(eq=False)
class VM:
    """A VM object: the token of its MM set in the host."""

    name: str


@attrs.define(eq=False)
class Recorder:
    """A register interface that forwards to another and records every access."""

    inner: VcmdEmulator
    log: list[tuple[str, int, int]] = attrs.field(factory=list)

    def read64(self, offset: int) -> int:
        value = self.inner.read64(offset)
        self.log.append(("r", offset, value))
        return value

    def write64(self, offset: int, value: int) -> None:
        self.log.append(("w", offset, value))
        self.inner.write64(offset, value)


@attrs.define(eq=False)
class Scripted:
    """Registers that answer every VCRSP read with one fixed value (a misbehaving VMM)."""

    layout: VcmdLayout
    vcrsp: int
    writes: list[tuple[int, int]] = attrs.field(factory=list)

    def read64(self, offset: int) -> int:
        if offset == CAP_OFFSET:
            return GUEST_VIOMMU.cap
        if offset == ECAP_OFFSET:
            return GUEST_VIOMMU.ecap
        if offset == self.layout.vccap:
            return GUEST_VIOMMU.vccap
        return self.vcrsp if offset == self.layout.vcrsp else 0

    def write64(self, offset: int, value: int) -> None:
        self.writes.append((offset, value))


@pytest.fixture
def host() -> IoasidSpace:
    return IoasidSpace()


@pytest.fixture
def vm_set(host: IoasidSpace) -> IoasidSet:
    return host.create_set(VM("vm1"), quota=2, type=SetType.MM)


def emulator(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout, **kw: object
) -> VcmdEmulator:
    return VcmdEmulator(host, vm_set, layout=layout, **kw)  # type: ignore[arg-type]


def run(emu: VcmdEmulator, layout: VcmdLayout, command: int, operand: int = 0) -> int:
    """Write one command and poll VCRSP until IP clears; the raw VCRSP value."""
    emu.write64(layout.vcmd, layout.encode_command(command, operand))
    for _ in range(100):
        raw = emu.read64(layout.vcrsp)
        if not raw & 1:
            return raw
    raise AssertionError("IP never cleared")


def guest_unit(
    regs: object, layout: VcmdLayout, space: IoasidSpace | None = None, **kw: object
) -> VcmdGuestUnit:
    unit = read_unit("dmar0", regs, layout)  # type: ignore[arg-type]
    return VcmdGuestUnit(unit, regs, layout, IoasidSpace() if space is None else space, **kw)  # type: ignore[arg-type]


# -- host side: the emulated registers


@LAYOUTS
def test_alloc_puts_the_host_pasid_in_the_result_field(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout)
    raw = run(emu, layout, ALLOC)
    # The host's first free ID >= 1 is 1: result 1 << 8 (3.1) or 1 << 16 (3.3), status 0, IP 0.
    assert raw == {"3.1": 0x100, "3.3": 0x1_0000}[layout.name]
    assert vm_set.ioasids() == [1]
    assert emu.read64(layout.vcmd) == ALLOC
    assert list(emu.history) == [VcmdCompletion(ALLOC, 0, 0, 1)]


@LAYOUTS
def test_in_progress_is_visible_until_the_latency_runs_out(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout, latency=2)
    emu.write64(layout.vcmd, layout.encode_command(ALLOC))
    assert emu.in_progress
    assert emu.read64(layout.vcrsp) == 0x1  # IP only
    assert emu.read64(layout.vcrsp) == 0x1
    assert vm_set.count == 0  # the host changes only when IP clears
    assert layout.decode_response(emu.read64(layout.vcrsp)).result == 1
    assert not emu.in_progress and vm_set.ioasids() == [1]
    assert not emu.step()  # nothing pending any more


@LAYOUTS
def test_manual_completion_waits_for_step(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout, latency=None)
    emu.write64(layout.vcmd, layout.encode_command(ALLOC))
    assert [emu.read64(layout.vcrsp) for _ in range(50)] == [0x1] * 50
    assert vm_set.count == 0
    assert emu.step()
    assert layout.decode_response(emu.read64(layout.vcrsp)).result == 1
    assert not emu.step()


@LAYOUTS
def test_writes_while_in_progress_are_ignored(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout, latency=None)
    first = layout.encode_command(ALLOC)
    emu.write64(layout.vcmd, first)
    emu.write64(layout.vcmd, layout.encode_command(FREE, 1))
    assert emu.ignored_writes == 1
    assert emu.read64(layout.vcmd) == first
    emu.step()
    assert [c.command for c in emu.history] == [ALLOC]
    assert vm_set.ioasids() == [1]


@LAYOUTS
def test_writes_without_pas_are_ignored(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    caps = VtdCapabilities.build(caching_mode=True, pasid=True, pss=19, vcs=True, pas=False)
    emu = emulator(host, vm_set, layout, caps=caps)
    emu.write64(layout.vcmd, layout.encode_command(ALLOC))
    assert emu.ignored_writes == 1
    assert emu.read64(layout.vcrsp) == 0 and emu.read64(layout.vccap) == 0
    assert vm_set.count == 0 and not emu.history


@LAYOUTS
def test_without_vcs_the_vcmd_registers_do_not_exist(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    caps = VtdCapabilities.build(caching_mode=True, pasid=True, pss=19, vcs=False, pas=True)
    emu = emulator(host, vm_set, layout, caps=caps)
    assert emu.read64(layout.vccap) == 0  # VCCAP.PAS is set but unreachable
    emu.write64(layout.vcmd, layout.encode_command(ALLOC))
    assert emu.read64(layout.vcrsp) == 0 and emu.read64(layout.vcmd) == 0
    assert vm_set.count == 0


@LAYOUTS
def test_no_pasid_when_the_quota_is_used_up(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout)
    run(emu, layout, ALLOC)
    run(emu, layout, ALLOC)
    raw = run(emu, layout, ALLOC)
    # 3.1: status 2 << 1 = 0x4.  3.3: status 16 << 1 = 0x20.  No result.
    assert raw == {"3.1": 0x4, "3.3": 0x20}[layout.name]
    assert vm_set.ioasids() == [1, 2]


@LAYOUTS
def test_no_pasid_when_the_host_space_is_full(layout: VcmdLayout) -> None:
    host = IoasidSpace(capacity=3)  # IDs 0..2; the emulator asks for [1, 2]
    vm_set = host.create_set(VM("vm"), type=SetType.MM)
    emu = emulator(host, vm_set, layout)
    results = [layout.decode_response(run(emu, layout, ALLOC)) for _ in range(3)]
    assert [(r.status, r.result) for r in results] == [(0, 1), (0, 2), (layout.status_no_pasid, 0)]


@pytest.mark.parametrize(
    ("capacity", "top"), [(1 << 20, HOST_PASID_MAX), (1 << 24, 0xFFFFF), (16, 15)]
)
def test_the_host_range_is_qemus_narrowed_to_the_host(
    monkeypatch: pytest.MonkeyPatch, capacity: int, top: int
) -> None:
    host = IoasidSpace(capacity)
    vm_set = host.create_set(VM("vm"), type=SetType.MM)
    asked: list[tuple[int, int]] = []
    real_alloc = host.alloc

    def alloc(set: IoasidSet, lo: int, hi: int, private: object = None) -> int:
        asked.append((lo, hi))
        return real_alloc(set, lo, hi, private)

    monkeypatch.setattr(host, "alloc", alloc)
    emu = emulator(host, vm_set, LAYOUT_3_3)
    assert LAYOUT_3_3.decode_response(run(emu, LAYOUT_3_3, ALLOC)).result == 1
    assert asked == [(1, top)]


@LAYOUTS
def test_free_returns_the_pasid_to_the_host(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout)
    run(emu, layout, ALLOC)
    assert run(emu, layout, FREE, 1) == 0
    assert vm_set.count == 0 and 1 not in host
    assert emu.history[-1] == VcmdCompletion(FREE, 1, 0, 0)


@LAYOUTS
def test_free_of_an_unknown_pasid_is_invalid(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout)
    raw = run(emu, layout, FREE, 0x42)
    assert layout.decode_response(raw).status == layout.status_invalid_pasid
    assert raw == {"3.1": 0x4, "3.3": 0x20}[layout.name]


@LAYOUTS
def test_free_of_another_vms_pasid_is_invalid_and_frees_nothing(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    other_set = host.create_set(VM("vm2"), quota=2, type=SetType.MM)
    other = emulator(host, other_set, layout)
    mine = emulator(host, vm_set, layout)
    theirs = layout.decode_response(run(other, layout, ALLOC)).result
    raw = run(mine, layout, FREE, theirs)
    assert layout.decode_response(raw).status == layout.status_invalid_pasid
    assert other_set.ioasids() == [theirs]


@LAYOUTS
@pytest.mark.parametrize("command", [0, 3, 0x7F, 0xFF])
def test_unknown_commands_are_undefined(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout, command: int
) -> None:
    emu = emulator(host, vm_set, layout)
    raw = run(emu, layout, command, 1)
    assert raw == 0x2  # status 1 << 1, both layouts
    assert vm_set.count == 0


@LAYOUTS
def test_a_command_with_reserved_bits_is_undefined(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    emu = emulator(host, vm_set, layout)
    emu.write64(layout.vcmd, layout.encode_command(ALLOC) | 1 << 63)
    assert emu.read64(layout.vcrsp) == 0x2
    assert vm_set.count == 0 and emu.history[-1].status == 1


@LAYOUTS
def test_other_registers(host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout) -> None:
    emu = emulator(host, vm_set, layout)
    assert emu.read64(CAP_OFFSET) == GUEST_VIOMMU.cap
    assert emu.read64(ECAP_OFFSET) == GUEST_VIOMMU.ecap
    assert emu.read64(layout.vccap) == 1
    for offset in (0x0, 0x18, 0xE08, 0xE40, 0x1000):
        assert emu.read64(offset) == 0
    for offset in (layout.vccap, layout.vcrsp, 0x18, 0xE40):  # read-only or undefined
        emu.write64(offset, layout.encode_command(ALLOC))
    assert emu.ignored_writes == 4
    assert emu.read64(layout.vccap) == 1 and emu.read64(layout.vcrsp) == 0
    assert vm_set.count == 0


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0xE04, 0, "0xe04|3588"),
        (-8, 0, "-8"),
        (0xE00, -1, "value -1"),
        (0xE00, 1 << 64, "value 18446744073709551616"),
    ],
)
def test_bad_accesses_are_errors(
    host: IoasidSpace, vm_set: IoasidSet, offset: int, value: int, message: str
) -> None:
    emu = emulator(host, vm_set, LAYOUT_3_3)
    with pytest.raises(InvalidArgumentError, match=message):
        emu.write64(offset, value)
    if value == 0:
        with pytest.raises(InvalidArgumentError, match="8-byte-aligned"):
            emu.read64(offset)


def test_the_vm_set_must_be_an_mm_set(host: IoasidSpace) -> None:
    with pytest.raises(InvalidArgumentError, match="not an MM-type set"):
        VcmdEmulator(host, host.create_set())
    with pytest.raises(InvalidArgumentError, match="latency -1"):
        VcmdEmulator(host, host.create_set(VM("v"), type=SetType.MM), latency=-1)


# -- guest side, called directly (the core's calls are in test_vtd_plugin)


@LAYOUTS
def test_read_unit_reads_cap_ecap_and_vccap(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    regs = Recorder(emulator(host, vm_set, layout))
    unit = read_unit("dmar7", regs, layout)
    assert vtd_caps(unit) == GUEST_VIOMMU and unit.pasid_bits == 20
    assert [(op, off) for op, off, _ in regs.log] == [
        ("r", CAP_OFFSET),
        ("r", ECAP_OFFSET),
        ("r", layout.vccap),
    ]


def test_read_unit_skips_vccap_without_vcs(host: IoasidSpace, vm_set: IoasidSet) -> None:
    caps = VtdCapabilities.build(caching_mode=True, pasid=True, pss=4, pas=True)
    regs = Recorder(emulator(host, vm_set, LAYOUT_3_3, caps=caps))
    unit = read_unit("dmar0", regs, LAYOUT_3_3)
    assert unit.caps["vccap"] == 0 and unit.pasid_bits == 5
    assert len(regs.log) == 2


@LAYOUTS
def test_guest_alloc_polls_until_ip_clears(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    regs = Recorder(emulator(host, vm_set, layout, latency=3))
    unit = guest_unit(regs, layout)
    regs.log.clear()
    assert vcmd_alloc(1, 0xFFFFF, unit) == 1
    assert regs.log[0] == ("w", layout.vcmd, 0x1)
    polls = [value for op, off, value in regs.log[1:] if op == "r" and off == layout.vcrsp]
    assert polls[:3] == [0x1, 0x1, 0x1] and not polls[3] & 1 and len(polls) == 4
    assert unit.last_status == 0


@LAYOUTS
def test_guest_alloc_no_pasid_raises_no_space(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    unit = guest_unit(emulator(host, vm_set, layout), layout)
    assert [vcmd_alloc(1, 0xFFFFF, unit) for _ in range(2)] == [1, 2]
    with pytest.raises(NoSpaceError, match="no PASID for this guest"):
        vcmd_alloc(1, 0xFFFFF, unit)
    assert unit.last_status == layout.status_no_pasid


@pytest.mark.parametrize(("lo", "hi"), [(0, 10), (1, 0x100000), (0, 0xFFFFFFFF)])
def test_guest_alloc_refuses_a_range_the_unit_cannot_hold(
    host: IoasidSpace, vm_set: IoasidSet, lo: int, hi: int
) -> None:
    emu = emulator(host, vm_set, LAYOUT_3_3)
    unit = guest_unit(emu, LAYOUT_3_3)
    assert vcmd_alloc(lo, hi, unit) == INVALID_IOASID
    assert not emu.history  # the registers were never touched


def test_guest_alloc_follows_the_units_pasid_size(host: IoasidSpace, vm_set: IoasidSet) -> None:
    caps = VtdCapabilities.build(caching_mode=True, pasid=True, pss=4, vcs=True, pas=True)
    unit = guest_unit(emulator(host, vm_set, LAYOUT_3_3, caps=caps), LAYOUT_3_3)
    assert unit.pasid_max == 31  # 2 << 4 = 32 PASIDs
    assert vcmd_alloc(1, 32, unit) == INVALID_IOASID
    assert vcmd_alloc(1, 31, unit) == 1


@LAYOUTS
def test_guest_gives_up_when_ip_never_clears(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout
) -> None:
    unit = guest_unit(emulator(host, vm_set, layout, latency=None), layout, max_polls=5)
    with pytest.raises(VcmdTimeoutError, match="IP still set after 5 reads"):
        vcmd_alloc(1, 100, unit)
    with pytest.raises(VcmdTimeoutError):
        vcmd_free(1, unit)


@LAYOUTS
def test_guest_alloc_undefined_command_is_an_error(layout: VcmdLayout) -> None:
    regs = Scripted(layout, vcrsp=0x2)  # status 1: undefined command
    unit = guest_unit(regs, layout)
    with pytest.raises(VcmdError, match=r"status 1 \(undefined command\)"):
        vcmd_alloc(1, 100, unit)
    assert regs.writes == [(layout.vcmd, 0x1)]


def test_guest_rejects_a_response_with_reserved_bits() -> None:
    unit = guest_unit(Scripted(LAYOUT_3_3, vcrsp=0x100), LAYOUT_3_3)
    with pytest.raises(DecodeError, match="reserved bit 8"):
        vcmd_alloc(1, 100, unit)


@LAYOUTS
def test_guest_free(host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout) -> None:
    regs = Recorder(emulator(host, vm_set, layout))
    unit = guest_unit(regs, layout)
    pasid = vcmd_alloc(1, 100, unit)
    regs.log.clear()
    vcmd_free(pasid, unit)
    assert regs.log[0] == ("w", layout.vcmd, layout.encode_command(FREE, pasid))
    assert vm_set.count == 0 and unit.last_status == 0


@LAYOUTS
def test_guest_free_of_an_invalid_pasid_is_only_logged(
    host: IoasidSpace, vm_set: IoasidSet, layout: VcmdLayout, caplog: pytest.LogCaptureFixture
) -> None:
    unit = guest_unit(emulator(host, vm_set, layout), layout)
    with caplog.at_level(logging.WARNING, logger="ioasid_vtd.vcmd"):
        vcmd_free(0x77, unit)
    assert "PASID 0x77 is invalid" in caplog.text
    assert unit.last_status == layout.status_invalid_pasid


def test_guest_free_of_an_undefined_status_is_an_error() -> None:
    unit = guest_unit(Scripted(LAYOUT_3_1, vcrsp=0x6), LAYOUT_3_1)  # status 3: unknown
    with pytest.raises(VcmdError, match=r"status 3 \(unknown status\)"):
        vcmd_free(5, unit)


def test_guest_free_refuses_an_id_with_private_data(host: IoasidSpace, vm_set: IoasidSet) -> None:
    guest = IoasidSpace()
    emu = emulator(host, vm_set, LAYOUT_3_3)
    unit = guest_unit(emu, LAYOUT_3_3, guest)
    guest_set = guest.create_set()
    guest.alloc(guest_set, 5, 5, private="svm")
    done = len(emu.history)
    with pytest.raises(IoasidInUseError, match="IOASID 0x5: it still has private data 'svm'"):
        vcmd_free(5, unit)
    assert len(emu.history) == done  # nothing reached the registers
    guest.detach_data(5)
    vcmd_free(5, unit)  # the host has no 5: only logged
    assert emu.history[-1] == VcmdCompletion(FREE, 5, 16, 0)


@pytest.mark.parametrize("history", [-1, HISTORY_MAX + 1, 2.0, True, "64"])
def test_a_history_size_that_is_not_a_bounded_int_is_refused(
    host: IoasidSpace, vm_set: IoasidSet, history: object
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"history .* is not an int in 0\.\.1048576"):
        emulator(host, vm_set, LAYOUT_3_3, history=history)
    assert emulator(host, vm_set, LAYOUT_3_3, history=0).history == ()


def test_the_history_can_be_read_while_another_thread_runs_commands(
    host: IoasidSpace, vm_set: IoasidSet
) -> None:
    """A walk of the live deque raised "deque mutated during iteration" when a command
    completed between two of its steps; ``history`` is a copy."""
    emu = emulator(host, vm_set, LAYOUT_3_3, history=8)
    layout = LAYOUT_3_3
    done = threading.Event()
    failures: list[str] = []

    def commands() -> None:
        try:
            for _ in range(3000):
                pasid = run(emu, layout, ALLOC) >> 16
                run(emu, layout, FREE, pasid)
        except Exception as exc:  # reported: commands that stopped prove nothing
            failures.append(f"commands raised {exc!r}")
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set():
            try:
                seen = [c.command for c in emu.history for _ in range(3)]
            except RuntimeError as exc:
                failures.append(repr(exc))
                return
            if len(seen) > 3 * 8:
                failures.append(f"{len(seen) // 3} completions kept, history=8")

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=commands), threading.Thread(target=reader)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        sys.setswitchinterval(old)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert len(emu.history) == 8 and emu.history[-1].command == FREE
