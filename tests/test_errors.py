"""Errors: classes, errno values, builtin bases, messages, and which check wins."""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

import ioasid_core
import ioasid_core.errors
from ioasid_core import (
    AccessDeniedError,
    AllocatorBusyError,
    AllocatorError,
    AlreadyRegisteredError,
    BusyError,
    InvalidArgumentError,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    NoSpaceError,
    NotFoundError,
    QuotaExceededError,
    ReentrancyError,
    SetType,
    UnknownIoasidError,
)

Unchanged = Callable[..., AbstractContextManager[None]]

_TABLE: list[tuple[type[IoasidError], int, tuple[type[Exception], ...]]] = [
    (InvalidArgumentError, errno.EINVAL, (ValueError,)),
    (NotFoundError, errno.ENOENT, (LookupError,)),
    (AccessDeniedError, errno.EACCES, ()),
    (BusyError, errno.EBUSY, ()),
    (AllocatorBusyError, errno.EAGAIN, ()),
    (AlreadyRegisteredError, errno.EEXIST, ()),
    (NoSpaceError, errno.ENOSPC, ()),
    (QuotaExceededError, errno.EDQUOT, (NoSpaceError,)),
    (AllocatorError, errno.EIO, ()),
    (ReentrancyError, errno.EDEADLK, (RuntimeError,)),
    (
        UnknownIoasidError,
        errno.EINVAL,
        (NotFoundError, InvalidArgumentError, LookupError, ValueError),
    ),
]


@pytest.mark.parametrize(("cls", "code", "bases"), _TABLE, ids=[c.__name__ for c, _, _ in _TABLE])
def test_error_class_models_its_errno_and_builtin_base(
    cls: type[IoasidError], code: int, bases: tuple[type[Exception], ...]
) -> None:
    assert issubclass(cls, IoasidError)
    assert issubclass(cls, Exception)
    for base in bases:
        assert issubclass(cls, base)
    assert cls.errno == code
    assert cls("message").errno == code


@pytest.mark.parametrize("cls", [c for c, _, _ in _TABLE], ids=lambda c: c.__name__)
def test_error_class_is_exported_from_the_package_and_the_errors_module(
    cls: type[IoasidError],
) -> None:
    assert getattr(ioasid_core, cls.__name__) is cls
    assert getattr(ioasid_core.errors, cls.__name__) is cls
    assert ioasid_core.IoasidError is ioasid_core.errors.IoasidError


# --- messages --------------------------------------------------------------------------------


def _names(message: str, n: int) -> bool:
    """Whether ``message`` names the number ``n`` (in hex like 0x1f3, or in decimal)."""
    return (
        f"{n:#x}" in message.lower() or re.search(rf"(?<![\w.]){n}(?![\w.])", message) is not None
    )


def _space_with_sets(count: int) -> tuple[IoasidSpace, list[IoasidSet]]:
    sp = IoasidSpace(capacity=1024)
    return sp, [sp.create_set() for _ in range(count)]


@pytest.mark.parametrize("method", ["find", "free", "get", "put"])
def test_access_denied_names_the_id_in_hex_the_owner_and_the_set_given(method: str) -> None:
    sp, sets = _space_with_sets(8)
    i = sp.alloc(sets[4], 0x1F3, 0x1F3)
    with pytest.raises(AccessDeniedError) as info:
        getattr(sp, method)(sets[7], i)
    message = str(info.value)
    assert "0x1f3" in message.lower()
    assert re.search(r"\b4\b", message)
    assert re.search(r"\b7\b", message)


_UNKNOWN_ID_CALLS: dict[str, Callable[[IoasidSpace, IoasidSet], object]] = {
    "find": lambda sp, s: sp.find(s, 0x1F3),
    "find-null-set": lambda sp, s: sp.find(None, 0x1F3),
    "free": lambda sp, s: sp.free(s, 0x1F3),
    "get": lambda sp, s: sp.get(s, 0x1F3),
    "put": lambda sp, s: sp.put(None, 0x1F3),
    "state": lambda sp, s: sp.state(0x1F3),
    "find_set": lambda sp, s: sp.find_set(0x1F3),
    "set_data": lambda sp, s: sp.set_data(0x1F3, "x"),
    "attach_data": lambda sp, s: sp.attach_data(0x1F3, "x"),
    "detach_data": lambda sp, s: sp.detach_data(0x1F3),
    "attach_spid": lambda sp, s: sp.attach_spid(0x1F3, 5),
    "detach_spid": lambda sp, s: sp.detach_spid(0x1F3),
}


@pytest.mark.parametrize("call", sorted(_UNKNOWN_ID_CALLS))
def test_not_found_names_the_id_in_hex(call: str) -> None:
    sp, (s,) = _space_with_sets(1)
    with pytest.raises(NotFoundError) as info:
        _UNKNOWN_ID_CALLS[call](sp, s)
    assert "0x1f3" in str(info.value).lower()


def test_unknown_spid_error_names_the_spid_and_the_set() -> None:
    sp, sets = _space_with_sets(4)
    with pytest.raises(NotFoundError) as info:
        sp.find_by_spid(sets[3], 0x65)
    message = str(info.value)
    assert _names(message, 0x65)
    assert re.search(r"\b3\b", message)


def test_busy_get_names_the_pending_id_in_hex() -> None:
    sp, (s,) = _space_with_sets(1)
    i = sp.alloc(s, 0x1F3, 0x1F3)
    sp.get(s, i)
    sp.free(s, i)
    with pytest.raises(BusyError) as info:
        sp.get(s, i)
    assert "0x1f3" in str(info.value).lower()


def test_busy_attach_data_names_the_id_in_hex() -> None:
    sp, (s,) = _space_with_sets(1)
    i = sp.alloc(s, 0x1F3, 0x1F3, private="taken")
    with pytest.raises(BusyError) as info:
        sp.attach_data(i, "other")
    assert "0x1f3" in str(info.value).lower()


def test_quota_exceeded_names_the_set_and_the_quota() -> None:
    sp = IoasidSpace(capacity=1024)
    for _ in range(3):
        sp.create_set()
    s = sp.create_set(quota=5)
    for _ in range(5):
        sp.alloc(s, 0, 1023)
    with pytest.raises(QuotaExceededError) as info:
        sp.alloc(s, 0, 1023)
    message = str(info.value)
    assert re.search(r"\b3\b", message)  # set 3
    assert _names(message, 5)  # its quota


def test_no_space_names_the_range() -> None:
    sp, (s,) = _space_with_sets(1)
    for _ in range(16):
        sp.alloc(s, 0x120, 0x12F)
    with pytest.raises(NoSpaceError) as info:
        sp.alloc(s, 0x120, 0x12F)
    message = str(info.value)
    assert _names(message, 0x120)
    assert _names(message, 0x12F)


def test_bad_range_names_the_range() -> None:
    sp, (s,) = _space_with_sets(1)
    with pytest.raises(InvalidArgumentError) as info:
        sp.alloc(s, 0x130, 0x12F)
    message = str(info.value)
    assert _names(message, 0x130)
    assert _names(message, 0x12F)


def test_second_mm_set_error_names_the_existing_set() -> None:
    sp, _ = _space_with_sets(6)
    tok = object()
    s = sp.create_set(tok, type=SetType.MM)
    with pytest.raises(AlreadyRegisteredError) as info:
        sp.create_set(tok, type=SetType.MM)
    assert re.search(rf"\b{s.id}\b", str(info.value))


# --- ownership before state ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "free", "put", "find"])
def test_ownership_is_reported_before_free_pending_state(
    space: IoasidSpace, unchanged: Unchanged, method: str
) -> None:
    owner, other = space.create_set(), space.create_set()
    i = space.alloc(owner, 0, 63)
    space.get(owner, i)
    space.free(owner, i)
    with unchanged(space, owner, other), pytest.raises(AccessDeniedError):
        getattr(space, method)(other, i)


def test_ownership_is_reported_before_state_on_a_free_pending_set(
    space: IoasidSpace, unchanged: Unchanged
) -> None:
    owner, other = space.create_set(), space.create_set()
    i = space.alloc(owner, 0, 63)
    space.get(owner, i)
    space.free(owner, i)
    space.free_set(owner)
    with unchanged(space, owner, other), pytest.raises(AccessDeniedError):
        space.get(other, i)
