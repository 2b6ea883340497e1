"""Replay one scenario under several vendors and lookup policies.

The vendors are the core's reference vendor (``generic``) and every plugin's, collected once
through the ``ioasid_prq_vendors`` hook. Runs are independent; they go through any
``concurrent.futures.Executor`` (by default they run one after another in this process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future
from functools import partial
from typing import Final, Literal, TypeAlias

import attrs

from ioasid_core.plugins import Hooks
from ioasid_core.printable import describe, printable
from ioasid_core.profile import VendorOrigin, profile_of
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.replay import RunResult, replay
from ioasid_core.scenario.reader import ScenarioError
from ioasid_core.scenario.schema import Scenario
from ioasid_core.scenario.stream import hold_steps
from ioasid_core.scenario.vendors import (
    check_queue_sizes,
    check_source_ids,
    check_vendor_sections,
    check_vendors,
)
from ioasid_core.shipping import CargoPool, held

__all__ = [
    "NATIVE",
    "PolicyChoice",
    "VendorFailure",
    "available_vendors",
    "check_queue_sizes",
    "check_source_ids",
    "check_vendor_sections",
    "compare",
    "parse_policies",
    "scenario_pool",
    "vendor_policies",
]

NATIVE: Final = "native"
"""In a list of policies: each vendor's own (its ``default_policy``)."""

PolicyChoice: TypeAlias = LookupPolicy | Literal["native"]


class VendorFailure(Exception):
    """A vendor plugin raised during a replay: names the vendor, the policy, the plugin it
    came from (when known) and the exception (its type and message, control characters
    escaped: the text reaches a terminal)."""

    def __init__(
        self,
        vendor: str,
        policy: LookupPolicy,
        cause: BaseException | str,
        origin: VendorOrigin | None = None,
    ) -> None:
        text = cause if isinstance(cause, str) else _cause_text(cause)
        where = f" ({origin})" if origin is not None else ""
        super().__init__(f"vendor {vendor!r}{where} failed under policy {policy.value!r}: {text}")
        self.vendor = vendor
        self.policy = policy
        self.origin = origin
        self.cause_text = text

    def with_origin(self, origin: VendorOrigin | None) -> VendorFailure:
        """The same failure naming the plugin ``origin`` (known in the parent process)."""
        if origin is None or self.origin is not None:
            return self
        return VendorFailure(self.vendor, self.policy, self.cause_text, origin)

    def __reduce__(self) -> tuple[object, ...]:
        """Rebuilt in the parent process when a run fails in a process pool (the cause is
        carried as its text: its type may not pickle, or not unpickle)."""
        return (VendorFailure, (self.vendor, self.policy, self.cause_text, self.origin))


_HOOK_NOTE: Final = "raised by ioasid plugin "
"""How ``Hooks`` notes the plugin whose hook raised (``plugins.py``)."""


def _cause_text(exc: BaseException) -> str:
    """``Type: message`` of ``exc``; when a plugin's hook raised it (itself, or inside the
    group a space raises once its callbacks are done), what that plugin raised and where:
    the plugin that broke the run is named, not only the vendor that was running."""
    text = describe(exc)
    found = _hooks_raise(exc)
    if found is None:
        return text
    note, raised = found
    if raised is exc:
        return f"{text} ({printable(note)})"
    return f"{text}: {describe(raised)} ({printable(note)})"


def _hooks_raise(exc: BaseException) -> tuple[str, BaseException] | None:
    """The first plugin's note in ``exc`` or the exceptions of its group, with its owner."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_HOOK_NOTE):
            return note, exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _hooks_raise(inner)
            if found is not None:
                return found
    return None


def available_vendors(
    hooks: Hooks | None, problems: list[str] | None = None
) -> dict[str, VendorPrq]:
    """``generic`` and every plugin's page-request vendor, by name. A plugin whose hook
    fails, or a vendor that does not conform or takes a name already taken, raises; given
    ``problems``, it is left out instead and said there (naming plugin, vendor, member)."""
    vendors: dict[str, VendorPrq] = {"generic": GenericPrq()}
    if hooks is None:
        return vendors
    if problems is None:
        for name, vendor in hooks.prq_vendors().items():
            if name in vendors:
                raise ValueError(f"a plugin offers a vendor named {name!r}, which is built in")
            vendors[name] = vendor
        return vendors
    collection = hooks.collect_vendors(reserved=frozenset(vendors))
    problems.extend(problem.message for problem in collection.problems)
    vendors.update((name, profile.vendor) for name, profile in collection.profiles.items())
    return vendors


def parse_policies(names: Sequence[str]) -> list[PolicyChoice]:
    """Policy names (``global``, ``set``, ``endpoint``, ``device``, and ``native``: each
    vendor's own) to policies, in order, each once; ``ValueError`` for an unknown name or
    none at all."""
    known: dict[str, PolicyChoice] = {p.value: p for p in LookupPolicy}
    known[NATIVE] = NATIVE
    out: list[PolicyChoice] = []
    for name in names:
        policy = known.get(name.strip().lower())
        if policy is None:
            raise ValueError(f"no lookup policy named {name!r} (known: {', '.join(known)})")
        if policy not in out:
            out.append(policy)
    if not out:
        raise ValueError(f"no lookup policy given (known: {', '.join(known)})")
    return out


def vendor_policies(
    vendor: VendorPrq, policies: Sequence[PolicyChoice] | None = None
) -> list[LookupPolicy]:
    """The policies ``vendor`` runs under, each once: its own first (when chosen), then the
    others in the order given (``None``: every policy; ``NATIVE``: its own)."""
    own = vendor.default_policy
    wanted = list(LookupPolicy) if policies is None else policies
    chosen = [p if isinstance(p, LookupPolicy) else own for p in wanted]  # NATIVE: its own
    first = [own] if own in chosen else []
    return first + [p for p in dict.fromkeys(chosen) if p is not own]


def _run_one(
    scenario: Scenario,
    vendor: VendorPrq,
    policy: LookupPolicy,
    seed: int,
    *,
    events: Callable[[int], None] | None = None,
    hooks: Hooks | None = None,
) -> RunResult:
    """One run; any failure but the scenario's own (``ScenarioError``) is the vendor's,
    whatever its type: an ``IoasidError`` from its codec (an ``EncodeError``, say) too."""
    try:
        return replay(scenario, vendor, policy, seed=seed, progress=events, hooks=hooks)
    except ScenarioError:
        raise
    except Exception as exc:
        raise VendorFailure(vendor.name, policy, exc) from exc


def scenario_pool(scenario: Scenario, workers: int) -> CargoPool:
    """A process pool whose workers each receive ``scenario`` once, when they start:
    ``compare(scenario, ..., executor=pool)`` then sends a run only its vendor, policy and
    seed, not the scenario (tens of MB for a large generated one) with every run."""
    return CargoPool(workers, f"scenario-{id(scenario):x}", scenario)


def _held(scenario: Scenario) -> Scenario:
    """``scenario`` with its generated steps made once, for several runs in this process to
    share (within ``hold_steps``' limit; above it, the same scenario: each run streams)."""
    steps = hold_steps(scenario.steps)
    return scenario if steps is scenario.steps else attrs.evolve(scenario, steps=steps)


_WORKER_SCENARIOS: dict[str, tuple[Scenario, Scenario]] = {}
"""A worker process's scenario by its pool's key: the one held, and the one its runs use
(its steps made at its first run)."""

_WORKER_HOOKS: list[Hooks] = []
"""A worker process's plugin manager, made at its first run (a manager does not pickle)."""


def _worker_hooks() -> Hooks:
    """This worker process's manager of the installed plugins."""
    if not _WORKER_HOOKS:
        from ioasid_core.plugins import new_plugin_manager

        _WORKER_HOOKS.append(new_plugin_manager().hooks)
    return _WORKER_HOOKS[0]


def _detached(run: Callable[[], RunResult]) -> RunResult:
    """``run()`` in a worker process: a failure crosses to the parent as a fresh
    ``VendorFailure``, its text only. The plugin's own exception (whatever it holds: a
    lambda, a socket) stays here, even where a pickler that follows causes and contexts is
    in place (tblib's, which ``distributed`` installs for the exception types it meets)."""
    try:
        return run()
    except VendorFailure as exc:
        failure = VendorFailure(exc.vendor, exc.policy, exc.cause_text, exc.origin)
    raise failure  # outside the handler: no __context__ either


def _run_held(
    key: str, vendor: VendorPrq, policy: LookupPolicy, seed: int, plugins: bool = False
) -> RunResult:
    cargo: Scenario = held(key)
    known = _WORKER_SCENARIOS.get(key)
    if known is None or known[0] is not cargo:  # (held again under the key: made again)
        known = _WORKER_SCENARIOS[key] = (cargo, _held(cargo))
    scenario = known[1]
    hooks = _worker_hooks() if plugins else None
    return _detached(partial(_run_one, scenario, vendor, policy, seed, hooks=hooks))


def _run_with_plugins(
    scenario: Scenario, vendor: VendorPrq, policy: LookupPolicy, seed: int
) -> RunResult:
    """One run in a worker process, with that process's manager of the installed plugins."""
    return _detached(partial(_run_one, scenario, vendor, policy, seed, hooks=_worker_hooks()))


def _run_plain(scenario: Scenario, vendor: VendorPrq, policy: LookupPolicy, seed: int) -> RunResult:
    """One run in a worker process, without plugins."""
    return _detached(partial(_run_one, scenario, vendor, policy, seed))


def compare(
    scenario: Scenario,
    vendors: Sequence[VendorPrq],
    policies: Sequence[PolicyChoice] | None = None,
    *,
    seed: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[RunResult], None] | None = None,
    events: Callable[[int], None] | None = None,
    hooks: Hooks | None = None,
    failures: list[VendorFailure] | None = None,
) -> list[RunResult]:
    """Every (vendor, policy) run, vendor by vendor, each vendor's own policy first
    (:func:`vendor_policies`). ``policies=None``: every policy; ``NATIVE``: its own.
    ``progress`` hears of each run done; ``events``, of the events done inside the runs
    that run in this process (``replay``'s ``progress``; not through an executor).

    ``hooks``: the plugins that take part in each run: its units are probed through them
    (``ioasid_allocators_for_unit``...) and its space's events reach their set and event
    hooks. Runs in worker processes use each worker's own manager of the installed plugins.

    A vendor that raises during a run is a :class:`VendorFailure` naming it, the policy,
    its plugin and the exception. Without ``failures`` the first one is raised. With it,
    the vendor is left out: its first failure is appended there, its runs are dropped
    (those not yet started are not run), and every other vendor's runs go on. In a process
    pool, a run whose plugin kills its worker process (``os._exit``, a crash in native
    code) breaks the pool and takes the runs in flight along: those are run again one at a
    time in a fresh one-worker pool, so the run that kills it again is named for sure
    ("the worker process running it died (exit status 3)") and the others' results are
    kept, in the same order. A vendor that cannot be sent to a worker (it does not
    pickle) is a ``VendorFailure`` too.

    Each vendor's scenario section is checked first, for all of them at once (one
    ``ScenarioError``), so that nothing runs on a scenario some vendor cannot read; a
    scenario the command checked already (``check_vendors``) is not checked again, and the
    runs get it marked, so that they do not check it either.
    """
    cargo = scenario
    scenario = check_vendors(scenario, vendors)
    run_seed = scenario.seed if seed is None else seed
    pairs = [(v, p) for v in vendors for p in vendor_policies(v, policies)]
    done: list[tuple[int, VendorPrq, RunResult]] = []  # in the order of ``pairs`` at the end
    failed: dict[int, VendorFailure] = {}  # id(vendor) -> its first failure

    def ended(index: int, vendor: VendorPrq, outcome: Callable[[], RunResult]) -> None:
        if id(vendor) in failed:
            return
        try:
            result = outcome()
        except VendorFailure as exc:
            failure = exc.with_origin(profile_of(vendor).origin)
            if failures is None:
                raise failure from exc
            failed[id(vendor)] = failure
            failures.append(failure)
            return
        done.append((index, vendor, result))
        if progress is not None:
            progress(result)

    if executor is None:
        runs = _held(scenario) if len(pairs) > 1 else scenario  # made once, for this call
        for index, (vendor, policy) in enumerate(pairs):
            run = partial(_run_one, runs, vendor, policy, run_seed, events=events, hooks=hooks)
            ended(index, vendor, run)
    else:
        plugins = hooks is not None  # a worker uses its own manager (one does not pickle)
        if isinstance(executor, CargoPool) and (
            executor.cargo is scenario or executor.cargo is cargo
        ):
            # A pool made for the scenario before it was marked: its runs check their own
            # section.
            futures = [
                executor.submit(_run_held, executor.key, v, p, run_seed, plugins) for v, p in pairs
            ]
        else:  # any other executor gets the scenario with each run
            task = _run_with_plugins if plugins else _run_plain
            futures = [executor.submit(task, scenario, v, p, run_seed) for v, p in pairs]
        lost: list[tuple[int, VendorPrq, LookupPolicy]] = []  # runs a dead worker took along
        for index, ((vendor, policy), future) in enumerate(zip(pairs, futures, strict=True)):
            if id(vendor) in failed:
                continue
            if _broke(future):
                lost.append((index, vendor, policy))
                continue
            ended(index, vendor, partial(_received, future, vendor, policy))
            if id(vendor) in failed:  # its runs not yet started need not start
                for (other, _), waiting in zip(pairs, futures, strict=True):
                    if other is vendor:
                        waiting.cancel()

        def left_out(vendor: VendorPrq) -> bool:
            return id(vendor) in failed

        for index, vendor, outcome in _one_by_one(scenario, lost, run_seed, plugins, left_out):
            ended(index, vendor, outcome)
    return [result for _, vendor, result in sorted(done, key=_first) if id(vendor) not in failed]


def _first(item: tuple[int, VendorPrq, RunResult]) -> int:
    return item[0]


def _broke(future: Future[RunResult]) -> bool:
    """Whether the run was lost with its pool (a worker process died: this run's, or
    another's while this one waited)."""
    return isinstance(future.exception(), BrokenExecutor)


def _received(future: Future[RunResult], vendor: VendorPrq, policy: LookupPolicy) -> RunResult:
    """A worker's run; a failure to send the vendor there or its result back (a vendor
    that does not pickle) is the vendor's, as a failure inside the run is."""
    try:
        return future.result()
    except (VendorFailure, ScenarioError):
        raise
    except Exception as exc:
        text = f"its run could not cross to or from a worker process (--jobs): {describe(exc)}"
        raise VendorFailure(vendor.name, policy, text) from None


def _dead(vendor: VendorPrq, policy: LookupPolicy, how: str) -> RunResult:
    raise VendorFailure(vendor.name, policy, f"the worker process running it died ({how})")


def _one_by_one(
    scenario: Scenario,
    runs: Sequence[tuple[int, VendorPrq, LookupPolicy]],
    seed: int,
    plugins: bool,
    skip: Callable[[VendorPrq], bool],
) -> Iterator[tuple[int, VendorPrq, Callable[[], RunResult]]]:
    """The runs a dead worker took along, again, one at a time in a fresh one-worker pool:
    a run that kills its worker again is then known for sure (its vendor is left out,
    named with how the worker ended) and the pool is replaced for the runs after it."""
    pool: CargoPool | None = None
    try:
        for index, vendor, policy in runs:
            if skip(vendor):
                continue
            if pool is None:
                pool = scenario_pool(scenario, 1)
            future = pool.submit(_run_held, pool.key, vendor, policy, seed, plugins)
            if not _broke(future):
                yield index, vendor, partial(_received, future, vendor, policy)
                continue
            how = ", ".join(pool.deaths()) or "it ended abruptly"
            pool.shutdown()
            pool = None
            yield index, vendor, partial(_dead, vendor, policy, how)
    finally:
        if pool is not None:
            pool.shutdown()
