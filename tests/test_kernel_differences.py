"""The core against the kernel's own ``ioasid.c``: every measured difference, replayed.

A differential run of the kernel's ``ioasid.c`` (Intel DCP tree and mainline v5.11-v5.17,
built in user space) against the core found eight undocumented differences (B1-B8) and eight
kernel bugs the model must not copy (C1-C8); ``shared/reference/kernel-diff-findings.md`` lists
them with the kernel call sequences that show them. Each test below replays one sequence, in
that document's notation, on the core and asserts the model's side: the behaviour
``docs/kernel-differences.md`` documents (rows "B1".."B8" and the "kernel bugs" table).

The notation (one op per ``;``): ``cap N`` (a space of N IDs; first op only), ``sa sH TOK Q T``
(create set sH: token mm_TOK or none for 0, quota Q, type 1 NULL / 2 MM), ``sf sH``,
``al S MIN MAX P``, ``fr|ge|pu|fi S ID`` (S ``-`` is None), ``fa sH``, ``as ID SPID``,
``ds ID``, ``fb sH SPID G``, ``ra K Q`` / ``ua K Q`` (register / unregister ops of backend K
with pdata Q; ops of one K share their functions, so one group), ``sc K V`` (backend K's next
alloc returns V), ``gs TAG P`` / ``ss sH TAG P`` (a global / set subscriber with priority P),
``gu TAG`` / ``su TAG`` (unsubscribe).
"""

from __future__ import annotations

import errno
from functools import partial

from ioasid_core import (
    AccessDeniedError,
    AllocatorError,
    AllocatorOps,
    AlreadyRegisteredError,
    Event,
    EventKind,
    InvalidArgumentError,
    IoasidError,
    IoasidSet,
    IoasidSpace,
    IoasidState,
    NoSpaceError,
    NotFoundError,
    Priority,
    SetType,
    Subscription,
    UnknownIoasidError,
)


class Backend:
    """A test backend: the lowest free ID in ``[min, max]``, unless a value is scripted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.used: set[int] = set()
        self.scripted: int | None = None
        self.calls: list[tuple[str, int, object]] = []  # (op, ID, pdata)

    def alloc(self, lo: int, hi: int, pdata: object) -> int:
        if self.scripted is not None:
            picked, self.scripted = self.scripted, None
        else:
            picked = next(n for n in range(lo, hi + 1) if n not in self.used)
        self.used.add(picked)
        self.calls.append(("alloc", picked, pdata))
        return picked

    def free(self, ioasid: int, pdata: object) -> None:
        self.calls.append(("free", ioasid, pdata))
        self.used.discard(ioasid)


class Token:
    """An MM token (an address space), matched by identity."""

    def __init__(self, name: str) -> None:
        self.name = name


class Kernel:
    """Runs kernel call sequences on one space; each op's result is kept (an error too)."""

    def __init__(self) -> None:
        self.space = IoasidSpace()
        self.sets: dict[str, IoasidSet] = {}
        self.tokens: dict[str, Token] = {}
        self.backends = {"A": Backend("A"), "B": Backend("B")}
        self.ops: dict[tuple[str, int], AllocatorOps[object]] = {}
        self.subs: dict[str, Subscription] = {}
        self.heard: list[tuple[str, EventKind, int]] = []  # (tag, kind, ID) per delivery
        self.results: list[object] = []

    def run(self, sequence: str) -> object:
        """Run every op of ``sequence``; return the last op's result (or its error)."""
        for op in sequence.split(";"):
            words = op.split()
            try:
                result = self._op(words[0], words[1:])
            except IoasidError as exc:
                result = exc
            self.results.append(result)
        return self.results[-1]

    def set(self, name: str) -> IoasidSet:
        return self.sets[name]

    def allocator(self, kind: str, pdata: int) -> AllocatorOps[object]:
        ops = self.ops.get((kind, pdata))
        if ops is None:
            backend = self.backends[kind]
            ops = self.ops[kind, pdata] = AllocatorOps(backend.alloc, backend.free, pdata)
        return ops

    def _maybe_set(self, word: str) -> IoasidSet | None:
        return None if word == "-" else self.sets[word]

    def _op(self, name: str, args: list[str]) -> object:
        sp = self.space
        n = [int(a) for a in args if a.lstrip("-").isdigit()]
        if name == "cap":
            assert not self.results, "cap must come first"
            self.space = IoasidSpace(capacity=n[0])
            return None
        if name == "sa":
            tok, quota, kind = args[1], int(args[2]), SetType(int(args[3]))
            token = None if tok == "0" else self.tokens.setdefault(tok, Token(f"mm_{tok}"))
            self.sets[args[0]] = sp.create_set(token, quota=quota, type=kind)
            return self.sets[args[0]]
        if name == "sf":
            return sp.free_set(self.sets[args[0]])
        if name == "fa":
            return sp.free_all(self.sets[args[0]])
        if name == "al":
            target = self._maybe_set(args[0])
            return sp.alloc(target, n[0], n[1], private=n[2])  # type: ignore[arg-type]
        if name == "fr":
            sp.free(self._maybe_set(args[0]), n[0])
        elif name == "ge":
            sp.get(self._maybe_set(args[0]), n[0])
        elif name == "pu":
            return sp.put(self._maybe_set(args[0]), n[0])
        elif name == "fi":
            return sp.find(self._maybe_set(args[0]), n[0])
        elif name == "as":
            sp.attach_spid(n[0], n[1])
        elif name == "ds":
            sp.detach_spid(n[0])
        elif name == "fb":
            return sp.find_by_spid(self.sets[args[0]], n[0], get=bool(n[1]))
        elif name == "ra":
            sp.register_allocator(self.allocator(args[0], n[0]))
        elif name == "ua":
            sp.unregister_allocator(self.allocator(args[0], n[0]))
        elif name == "sc":
            self.backends[args[0]].scripted = n[0]
        elif name in ("gs", "ss"):
            owner = self.sets[args[0]] if name == "ss" else None
            tag, prio = (args[1], args[2]) if name == "ss" else (args[0], args[1])
            hear = partial(self._hear, tag)
            self.subs[tag] = sp.subscribe(hear, set=owner, priority=Priority(int(prio)))
        elif name in ("gu", "su"):
            sp.unsubscribe(self.subs.pop(args[0]))
        else:
            raise AssertionError(f"unknown op {name!r}")
        return None

    def _hear(self, tag: str, event: Event) -> None:
        self.heard.append((tag, event.kind, event.ioasid))


def errno_of(result: object) -> int:
    assert isinstance(result, IoasidError), f"expected an error, got {result!r}"
    return result.errno


# --- B: differences documented in docs/kernel-differences.md ---------------------------------


def test_b1_get_of_an_unknown_id_is_einval_as_in_the_kernel() -> None:
    """The kernel's ``ioasid_get`` answers -EINVAL; the model follows (and stays a
    ``NotFoundError``, SPEC's class for an unknown ID)."""
    k = Kernel()
    got = k.run("sa s0 0 4 1; ge - 34")
    assert isinstance(got, UnknownIoasidError)
    assert isinstance(got, NotFoundError) and isinstance(got, InvalidArgumentError)
    assert errno_of(got) == errno.EINVAL
    assert "0x22" in str(got)
    assert isinstance(k.run("ge s0 34"), UnknownIoasidError)  # with a set too
    assert 34 not in k.space


def test_b1_other_calls_on_an_unknown_id_keep_enoent() -> None:
    """Only ``get`` changed: find (the kernel's -ENOENT too), free and put stay ENOENT."""
    k = Kernel()
    k.run("sa s0 0 4 1")
    for op in ("fi - 34", "fr s0 34", "pu s0 34"):
        got = k.run(op)
        assert type(got) is NotFoundError, op
        assert errno_of(got) == errno.ENOENT


def test_b2_get_through_another_set_on_a_pending_id_is_access_denied() -> None:
    """Kernel: -EBUSY (it checks the pending state first). Model: ownership first (SPEC)."""
    k = Kernel()
    assert k.run("sa s1 0 4 1; al s1 0 0 3") == 0
    k.run("ge - 0; fr s1 0")
    assert k.space.state(0) is IoasidState.FREE_PENDING
    got = k.run("sa s9 4 5 2; ge s9 0")
    assert isinstance(got, AccessDeniedError) and errno_of(got) == errno.EACCES
    assert k.space.refs(0) == 1  # no reference taken


def test_b3_a_second_free_set_of_a_pending_set_is_invalid() -> None:
    """Kernel: -EBUSY again and re-marks it pending. Model: the first call answers False
    (pending); the second is refused, as for a destroyed set, and changes nothing."""
    k = Kernel()
    assert k.run("sa s4 1 2 2; al s4 10 13 2; sf s4") is False
    s4 = k.set("s4")
    got = k.run("sf s4")
    assert isinstance(got, InvalidArgumentError) and errno_of(got) == errno.EINVAL
    assert s4.free_pending and not s4.destroyed and s4.ioasids() == [10]
    assert k.space.find_mm_set(s4.token) is s4


def test_b4_alloc_into_a_pending_set_is_refused_so_the_set_dies() -> None:
    """Kernel: a pending set still takes IDs (kernel 1), so it is never destroyed while its
    owner allocates. Model: EINVAL, and the last put destroys the set."""
    k = Kernel()
    assert k.run("sa s0 0 2 1; al s0 0 9 0") == 0
    assert k.run("sf s0") is False
    for _ in range(2):
        got = k.run("al s0 0 9 0")
        assert isinstance(got, InvalidArgumentError) and errno_of(got) == errno.EINVAL
    s0 = k.set("s0")
    assert s0.ioasids() == [0] and 1 not in k.space
    assert k.run("pu s0 0") is True
    assert s0.destroyed and k.space.sets() == []
    assert k.space.available == k.space.capacity  # its quota went back


def test_b5_free_with_no_set_frees_without_an_ownership_check() -> None:
    """DCP: a NULL set never matches the ID's set, so nothing is freed (a warning). Model:
    SPEC's ``set=None`` is the kernel-internal caller's "no ownership check"."""
    k = Kernel()
    assert k.run("sa s1 0 4 1; al s1 0 20 0") == 0
    assert k.run("fr - 0") is None
    assert 0 not in k.space and k.set("s1").count == 0


def test_b6_free_reaches_set_and_global_subscribers_in_one_priority_order() -> None:
    """Kernel: the whole global chain, then the set's. Model: one order by priority across
    both, so the set's CPU subscriber (KVM) hears FREE before the global IOMMU one."""
    k = Kernel()
    assert k.run("sa s4 0 2 1; al s4 5 25 0") == 5
    k.run("ge s4 5; ss s4 2 3; gs 4 2; fr s4 5")
    assert [(tag, kind) for tag, kind, _ in k.heard] == [
        ("2", EventKind.FREE),
        ("4", EventKind.FREE),
    ]


def test_b7_a_custom_result_outside_the_range_is_refused_and_not_given_back() -> None:
    """Kernel: records and returns 8 for [10, 20]. Model: AllocatorError (EIO); the ID is
    left allocated at the backend (the core frees no ID it did not accept)."""
    k = Kernel()
    got = k.run("sa s3 0 1 1; ra B 1; sc B 8; al s3 10 20 1")
    assert isinstance(got, AllocatorError) and errno_of(got) == errno.EIO
    assert "0x8" in str(got) and "0xa" in str(got) and "0x14" in str(got)
    assert 8 not in k.space and k.set("s3").count == 0
    assert k.backends["B"].calls == [("alloc", 8, 1)]  # no free
    assert k.backends["B"].used == {8}


def test_b8_a_duplicate_mm_token_is_reported_before_the_capacity() -> None:
    """Kernel: -ENOSPC (capacity checked first). Model: EEXIST, the more specific error."""
    k = Kernel()
    k.run("cap 16; sa s0 0 6 1; sa s2 4 5 2; sa s3 1 4 2")
    assert k.space.available == 1
    got = k.run("sa s4 4 4 2")
    assert isinstance(got, AlreadyRegisteredError) and errno_of(got) == errno.EEXIST
    assert k.space.available == 1 and len(k.space.sets()) == 3
    # A bad type also comes before the capacity: a NULL set with a token.
    assert isinstance(k.run("sa s5 7 4 1"), InvalidArgumentError)
    # Without the duplicate, the capacity is what fails.
    assert isinstance(k.run("sa s6 9 4 2"), NoSpaceError)


# --- C: kernel bugs the model does not reproduce ---------------------------------------------


def _group_pdata(k: Kernel, kind: str) -> list[object]:
    """The pdata of each alloc call made by an alloc now (the active group's head)."""
    backend = k.backends[kind]
    backend.calls.clear()
    target = k.space.create_set()
    ioasid = k.space.alloc(target, 0, 15)
    k.space.free(target, ioasid)
    k.space.free_set(target)
    return [pdata for op, _, pdata in backend.calls if op == "alloc"]


def test_c1_a_refused_duplicate_head_leaves_the_group_intact() -> None:
    """Kernel: -EEXIST, but B3's list node points into a freed group; ``ua B 1`` then walks
    freed memory. Model: AlreadyRegisteredError and a group that still works."""
    k = Kernel()
    got = k.run("ra B 3; ra B 1; ra B 3")
    assert isinstance(got, AlreadyRegisteredError) and errno_of(got) == errno.EEXIST
    assert k.run("ua B 1") is None
    assert k.space.active_allocator is k.allocator("B", 3)
    assert _group_pdata(k, "B") == [3]
    assert isinstance(k.run("ua B 1"), NotFoundError)  # really gone


def test_c1_variant_the_group_stays_consistent_after_more_changes() -> None:
    """``dup_register_corrupt2``: after the refused duplicate, ``ua B 3; ra B 2`` leave the
    kernel's list corrupt. Model: group [B1, B2], B1 the head."""
    k = Kernel()
    k.run("ra B 3; ra B 1; ra B 3; ua B 3; ra B 2")
    assert k.results[3:] == [None, None]
    assert k.space.active_allocator is k.allocator("B", 1)
    assert _group_pdata(k, "B") == [1]
    k.run("ua B 1")
    assert k.space.active_allocator is k.allocator("B", 2)
    k.run("ua B 2")
    assert k.space.active_allocator is None


def test_c2_a_non_head_registered_twice_is_refused() -> None:
    """Kernel: accepted (0), the member list links to itself, and ``ua B 2`` (never
    registered) hangs walking it. Model: AlreadyRegisteredError, then NotFoundError."""
    k = Kernel()
    got = k.run("ra B 3; ra B 1; ra B 1")
    assert isinstance(got, AlreadyRegisteredError)
    got = k.run("ua B 2")
    assert isinstance(got, NotFoundError) and errno_of(got) == errno.ENOENT
    k.run("ua B 3")
    assert k.space.active_allocator is k.allocator("B", 1)


def test_c2_variant_members_after_a_refused_duplicate_stay() -> None:
    """``nonhead_dup2``: group [B3, B1, B2]; the kernel's ``ra B 1`` drops B2, whose
    unregister is then a silent no-op. Model: B2 stays a member and unregisters."""
    k = Kernel()
    assert isinstance(k.run("ra B 3; ra B 1; ra B 2; ra B 1"), AlreadyRegisteredError)
    assert k.run("ua B 2") is None
    assert isinstance(k.run("ua B 2"), NotFoundError)  # it was there, and now is not
    k.run("ua B 3")
    assert k.space.active_allocator is k.allocator("B", 1)


def test_c3_unregistering_an_unknown_ops_removes_nothing() -> None:
    """Kernel: B3 was never registered, but it matches B0's one-member group by its
    functions, and that group is deleted (the default allocator comes back). Model: ENOENT."""
    k = Kernel()
    k.run("sa s0 0 4 1; ra B 0; al s0 0 9 0")
    got = k.run("ua B 3")
    assert isinstance(got, NotFoundError) and errno_of(got) == errno.ENOENT
    assert k.space.active_allocator is k.allocator("B", 0)
    assert k.set("s0").ioasids() == [0] and k.backends["B"].used == {0}


def test_c4_the_first_member_of_a_shared_group_can_register_again() -> None:
    """Kernel: the group keeps B3 as its stale head, so ``ra B 3`` is refused (-EEXIST)
    although B3 is not registered. Model: B3 joins the group again, after B1."""
    k = Kernel()
    assert k.run("ra A 3; ra B 3; ra B 1; ua B 3; ra B 3") is None
    assert k.space.active_allocator is k.allocator("A", 3)
    k.run("ua A 3")  # the B group takes over: B1 is its head now, B3 a member
    assert k.space.active_allocator is k.allocator("B", 1)
    assert isinstance(k.run("ra B 3"), AlreadyRegisteredError)
    k.run("ua B 1")
    assert k.space.active_allocator is k.allocator("B", 3)


def test_c5_unsubscribing_a_set_listener_leaves_the_set_alive() -> None:
    """Kernel: removing the notifier of a set holding no ID destroys the live set (its
    quota unreturned, its owner's next call a use-after-free). Model: s0 lives on."""
    k = Kernel()
    k.run("sa s0 0 4 1; ss s0 7 3; su 7")
    s0 = k.set("s0")
    assert not s0.destroyed and not s0.free_pending
    assert k.space.sets() == [s0] and k.space.available == k.space.capacity - 4
    assert k.run("al s0 0 9 0") == 0


def test_c6_the_number_of_sets_is_not_bounded_by_the_capacity_left() -> None:
    """Kernel: set IDs come from [0, capacity available], so a fourth set is -ENOSPC
    although its quota 1 fits the 2 left. Model: created; set IDs are never reused."""
    k = Kernel()
    k.run("cap 8; sa s0 0 2 1; sa s1 0 1 1; sa s2 0 3 1")
    assert k.space.available == 2
    s3 = k.run("sa s3 0 1 1")
    assert isinstance(s3, IoasidSet) and s3.id == 3
    assert k.space.available == 1
    # Many more sets than IDs: quota-less sets reserve nothing.
    extra = [k.space.create_set() for _ in range(20)]
    assert [s.id for s in extra] == list(range(4, 24))
    # The kernel reuses the lowest free set ID; the model never does.
    k.run("sf s0")
    assert k.space.create_set().id == 24


def test_c7_free_all_keeps_a_pending_id_in_its_set_with_its_spid() -> None:
    """Kernel: ``free_all`` drops the pending ID 0 from the set's table, so its SPID is no
    longer found and SPID 101 can go to ID 1 too. Model: ID 0 stays in s0 with its SPID."""
    k = Kernel()
    assert k.run("sa s0 0 4 1; al s0 0 3 0") == 0
    k.run("as 0 101; ge s0 0")
    assert k.run("fa s0") == 1
    assert k.space.state(0) is IoasidState.FREE_PENDING
    s0 = k.set("s0")
    assert s0.ioasids() == [0]
    assert k.run("fb s0 101 0") == 0
    assert k.run("al s0 0 3 0") == 1
    got = k.run("as 1 101")
    assert isinstance(got, InvalidArgumentError) and errno_of(got) == errno.EINVAL
    assert k.run("fb s0 101 0") == 0
    assert s0.ioasids() == [0, 1]


def test_c8_a_backend_duplicate_is_an_error_and_frees_nothing() -> None:
    """DCP: logs, frees ID 2 at the backend (another owner's), and returns 2 to s1 as a
    success. Model: AllocatorError (EIO), no backend free; ID 2 stays s0's."""
    k = Kernel()
    assert k.run("sa s0 0 6 1; sa s1 0 4 1; ra A 0; al s0 2 7 3") == 2
    backend = k.backends["A"]
    backend.calls.clear()
    got = k.run("sc A 2; al s1 2 22 1")
    assert isinstance(got, AllocatorError) and errno_of(got) == errno.EIO
    assert backend.calls == [("alloc", 2, 0)]
    assert backend.used == {2}
    assert k.space.find_set(2) is k.set("s0") and k.space.find(None, 2) == 3
    assert k.set("s1").count == 0


def test_the_notation_runner_reports_errors_as_results() -> None:
    """The runner itself: an op's error is its result, and later ops still run."""
    k = Kernel()
    k.run("sa s0 0 1 1; al s0 0 3 5; al s0 0 3 6; fi s0 0")
    assert k.results[1] == 0
    assert isinstance(k.results[2], NoSpaceError)  # quota 1: EDQUOT
    assert errno_of(k.results[2]) == errno.EDQUOT
    assert k.results[3] == 5
