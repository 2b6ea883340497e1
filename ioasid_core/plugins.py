"""The plugin manager: vendor plugins loaded from entry points, and a typed facade over them.

``new_plugin_manager`` builds a fresh manager each time (no import-time global), so every test
and every ``ioasid`` command gets its own. Entry points are loaded one at a time: a vendor that
fails to import, or implements a hook that does not exist, is skipped and reported rather than
taking the host down (``strict=True`` turns that into an error, for CI).

``Hooks`` is the only code that calls ``pm.hook``. It keeps pluggy's untyped results inside one
class, checks them at the boundary, and names the plugin that raised in the exception's notes.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import attrs
import pluggy

from ioasid_core import hookspecs
from ioasid_core.allocators import AllocatorOps
from ioasid_core.errors import (
    AlreadyRegisteredError,
    IoasidError,
    NotFoundError,
    ReentrancyError,
)
from ioasid_core.figures import BenchmarkFigure
from ioasid_core.markers import ENTRY_POINT_GROUP, PROJECT
from ioasid_core.printable import printable
from ioasid_core.profile import VendorOrigin, VendorProfile, build_profile, remember
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.types import EventKind, Priority
from ioasid_core.units import IommuUnit, VendorInfo

if TYPE_CHECKING:
    from ioasid_core.events import Event, Subscription
    from ioasid_core.logs.format import LogFormat
    from ioasid_core.space import IoasidSpace

__all__ = [
    "BLOCK_ENV",
    "Hooks",
    "LoadFailure",
    "LoadedPlugin",
    "PluginHost",
    "PluginLoadError",
    "ProbeReport",
    "Refusal",
    "VendorCollection",
    "VendorProblem",
    "new_plugin_manager",
]

BLOCK_ENV: Final = "IOASID_BLOCK_PLUGINS"
"""Comma-separated entry-point names never to import, added to ``blocked``."""

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class LoadFailure:
    """An entry point that was skipped, and why (``error`` is ``"Type: message"``)."""

    name: str
    distribution: str
    entry_point: str
    error: str


@attrs.frozen(kw_only=True)
class LoadedPlugin:
    """A plugin registered from an entry point, with what it says it drives."""

    name: str
    distribution: str
    version: str
    vendor: VendorInfo | None


class PluginLoadError(Exception):
    """Some entry points failed to load and the manager was built with ``strict=True``."""

    def __init__(self, failures: Sequence[LoadFailure]) -> None:
        self.failures = tuple(failures)
        details = "; ".join(f"{f.name} ({f.distribution}): {f.error}" for f in self.failures)
        super().__init__(f"{len(self.failures)} ioasid plugin(s) failed to load: {details}")


@attrs.frozen(kw_only=True)
class Refusal:
    """An offered allocator the space would not register."""

    ops: AllocatorOps[Any]
    error: IoasidError


@attrs.frozen(kw_only=True)
class ProbeReport:
    """What probing one unit did: the allocators registered and those refused, in order."""

    unit: IommuUnit
    registered: tuple[AllocatorOps[Any], ...]
    refused: tuple[Refusal, ...]


@attrs.define(eq=False)
class _ProbedUnit:
    """The allocators registered for one unit of one space, oldest first.

    Holding the space keeps it alive, so its ``id()`` in the key cannot be reused.
    """

    space: IoasidSpace
    ops: list[AllocatorOps[Any]] = attrs.field(factory=list)


_BRIDGED_HOOKS: Final = ("ioasid_event", "ioasid_set_created", "ioasid_set_freed")


@attrs.frozen(kw_only=True)
class VendorProblem:
    """A plugin's page-request vendors that could not be taken: its hook raised, returned
    something else than a sequence of vendors, or a vendor does not conform or reuses a
    name. ``error`` is the exception, ``message`` its text naming the plugin."""

    origin: VendorOrigin
    message: str
    error: Exception = attrs.field(eq=False)


@attrs.frozen(kw_only=True)
class VendorCollection:
    """Every plugin's vendors that conform (their profiles, by vendor name), the names each
    plugin offered, and the problems, one per vendor (or plugin) left out."""

    profiles: dict[str, VendorProfile]
    offered: dict[str, tuple[str, ...]]
    problems: tuple[VendorProblem, ...]


class Hooks:
    """The typed facade: the only place that calls ``pm.hook``.

    It also remembers which allocators each probed unit registered, so that ``remove_unit``
    can withdraw exactly those, until ``forget`` drops a finished run's space. Probe and
    remove units from one thread (the platform's); the spaces themselves are thread-safe.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._units: dict[tuple[int, str], _ProbedUnit] = {}
        self.origins: dict[str, VendorOrigin] = {}
        """Where each plugin loaded from an entry point came from (the loader fills it)."""
        self._joined: dict[int, list[Any]] = {}  # id(plugin) -> [plugin, joins not left]

    # -- allocator hooks

    def probe_unit(self, unit: IommuUnit, space: IoasidSpace) -> ProbeReport:
        """Register the allocators plugins offer for ``unit`` in ``space``.

        A refused ops (``AllocatorBusyError``, ``AlreadyRegisteredError``...) is reported to
        ``ioasid_allocator_refused`` and in the report; it does not stop the others.
        ``AlreadyRegisteredError`` if ``unit.name`` is probed in ``space`` already.

        A probe that fails (a plugin's hook raised, a caller's re-entry) is rolled back
        completely: the allocators it registered are withdrawn (by force: an ID one of them
        handed out meanwhile is reclaimed) and the unit is forgotten, so probing it again
        works. The error propagates, naming the plugin; a failure of the rollback itself is
        added to it as a note.
        """
        key = (id(space), unit.name)
        if key in self._units:
            raise AlreadyRegisteredError(
                f"IOMMU unit {unit.name!r} is probed in this space already; remove it first"
            )
        offered = self._offered_allocators(unit, space)
        record = self._units[key] = _ProbedUnit(space)
        registered: list[AllocatorOps[Any]] = []
        refused: list[Refusal] = []
        try:
            for ops in offered:
                try:
                    space.register_allocator(ops)
                except ReentrancyError:
                    raise  # a caller's bug, not the space refusing this ops
                except IoasidError as exc:
                    refused.append(Refusal(ops=ops, error=exc))
                    self._call(
                        "ioasid_allocator_refused", unit=unit, space=space, ops=ops, error=exc
                    )
                    continue
                record.ops.append(ops)
                registered.append(ops)
        except BaseException as exc:
            self._roll_back(key, record, exc)
            raise
        return ProbeReport(unit=unit, registered=tuple(registered), refused=tuple(refused))

    def _roll_back(self, key: tuple[int, str], record: _ProbedUnit, failure: BaseException) -> None:
        """Undo a failed probe: withdraw what it registered, newest first; forget the unit."""
        while record.ops:
            ops = record.ops.pop()
            try:
                record.space.unregister_allocator(ops, force=True)
            except NotFoundError:
                pass
            except Exception as exc:  # withdrawn all the same (callbacks failed after)
                failure.add_note(f"while rolling back the probe, unregistering {ops!r}: {exc!r}")
        del self._units[key]

    def remove_unit(
        self, unit: IommuUnit, space: IoasidSpace, *, force: bool = False
    ) -> tuple[AllocatorOps[Any], ...]:
        """Withdraw the allocators ``unit`` registered, then call ``ioasid_unit_removed``.

        Newest first, so that removing a unit never activates one of its own waiting groups on
        the way out. If an unregister fails (``BusyError``: its IDs are still in use and
        ``force`` is false), the allocators not yet withdrawn stay recorded and the hook is not
        called, so a retry with ``force=True`` finishes the job. An ``ExceptionGroup`` from the
        space means it did unregister (subscribers or backend frees failed afterwards): the
        removal goes on and the group is re-raised at the end. Returns the ops this call
        unregistered. ``NotFoundError`` if the unit was not probed in ``space``.

        Once the allocators are withdrawn the removal is complete whatever the hook does: a
        plugin whose ``ioasid_unit_removed`` raises has its error (naming it) re-raised in
        the final ``ExceptionGroup``, after the unit is forgotten.
        """
        key = (id(space), unit.name)
        record = self._units.get(key)
        if record is None:
            raise NotFoundError(f"IOMMU unit {unit.name!r} is not probed in this space")
        withdrawn: list[AllocatorOps[Any]] = []
        late: list[ExceptionGroup[Exception]] = []
        while record.ops:
            ops = record.ops[-1]
            try:
                space.unregister_allocator(ops, force=force)
            except NotFoundError:
                pass  # unregistered behind our back: already where we want it
            except ExceptionGroup as group:
                late.append(group)
                withdrawn.append(ops)
            except Exception as exc:
                for earlier in late:
                    exc.add_note(f"earlier, while removing {unit.name!r}: {earlier!r}")
                raise
            else:
                withdrawn.append(ops)
            record.ops.pop()
        del self._units[key]
        try:
            self._call("ioasid_unit_removed", unit=unit, space=space)
        except Exception as exc:
            late.append(
                ExceptionGroup(
                    f"ioasid_unit_removed failed after unit {unit.name!r} was removed", [exc]
                )
            )
        if len(late) == 1:
            raise late[0]
        if late:
            raise ExceptionGroup(f"callbacks failed while removing {unit.name!r}", late)
        return tuple(withdrawn)

    def forget(self, space: IoasidSpace) -> None:
        """The run owning ``space`` is over and the space goes whole: forget the units probed
        into it. Nothing is withdrawn and no hook is called (nobody unplugged anything); a
        long comparison's manager then keeps no run's space alive."""
        for key in [key for key, record in self._units.items() if record.space is space]:
            del self._units[key]

    def join(self, plugin: object, name: str) -> Callable[[], None]:
        """Make ``plugin`` take part until the function returned is called (once is enough):
        registered now under ``name``, unless it is registered already (from its entry
        point, or by a join that has not left); unregistered when the last join that
        registered it leaves. A vendor's guest path uses it to be sure its own hooks serve
        the units it probes through the run's manager."""
        key = id(plugin)
        if key not in self._joined:
            if self._pm.is_registered(plugin):
                return _stay  # registered by someone else: not ours to remove
            self._pm.register(plugin, name=name)
            self._joined[key] = [plugin, 0]
        self._joined[key][1] += 1
        left = False

        def leave() -> None:
            nonlocal left
            if left:
                return
            left = True
            held = self._joined[key]
            held[1] -= 1
            if held[1] == 0:
                del self._joined[key]
                self._pm.unregister(plugin)

        return leave

    def _offered_allocators(self, unit: IommuUnit, space: IoasidSpace) -> list[AllocatorOps[Any]]:
        """Every plugin's offer, checked before any is registered (a bad one changes nothing)."""
        offered: list[AllocatorOps[Any]] = []
        for result in self._call("ioasid_allocators_for_unit", unit=unit, space=space):
            if not isinstance(result, Sequence) or not all(
                isinstance(ops, AllocatorOps) for ops in result
            ):
                raise TypeError(
                    f"ioasid_allocators_for_unit returned {result!r} for unit {unit.name!r}, "
                    "not a sequence of AllocatorOps"
                )
            offered.extend(result)
        return offered

    # -- set and event hooks

    def attach(self, space: IoasidSpace) -> Subscription | None:
        """Deliver ``space``'s events to the event and set hooks; None if nobody listens.

        One global subscription at ``Priority.LAST``. When no plugin implements any of those
        hooks nothing is subscribed, so allocations never pay for a pluggy call. Plugins
        registered after a successful ``attach`` are served too. Call it once per space.
        """
        if not any(self._hook_caller(name).get_hookimpls() for name in _BRIDGED_HOOKS):
            return None
        event_hook = self._hook_caller("ioasid_event")

        def deliver(event: Event) -> None:
            try:
                if event_hook.get_hookimpls():  # set-only listeners: no call per allocation
                    self._call("ioasid_event", space=space, event=event)
            finally:
                if event.kind is EventKind.SET_ALLOC:
                    self._call("ioasid_set_created", space=space, set=event.set)
                elif event.kind is EventKind.SET_FREE:
                    self._call("ioasid_set_freed", space=space, set=event.set)

        return space.subscribe(deliver, set=None, priority=Priority.LAST)

    # -- reporting

    def collect_vendors(self, reserved: frozenset[str] = frozenset()) -> VendorCollection:
        """Every plugin's page-request vendors, each plugin asked on its own and each vendor
        checked once (its profile, remembered for the pipeline and the others): a plugin
        whose hook fails, or a vendor that does not conform or takes a name already taken
        (``reserved``: the core's own), is a problem naming the plugin; the others stay."""
        found: dict[str, VendorProfile] = {}
        offered: dict[str, tuple[str, ...]] = {}
        problems: list[VendorProblem] = []
        hook = self._hook_caller("ioasid_prq_vendors")
        plugins = self._pm.get_plugins()
        for impl in reversed(hook.get_hookimpls()):  # pluggy's own call order
            name = impl.plugin_name
            origin = self.origins.get(name) or VendorOrigin(
                plugin=name, distribution="?", entry_point="?"
            )
            others = [p for p in plugins if p is not impl.plugin]
            caller = self._pm.subset_hook_caller("ioasid_prq_vendors", remove_plugins=others)
            try:
                results = self._call("ioasid_prq_vendors", caller=caller)
                vendors = [v for result in results for v in _vendor_sequence(result)]
            except Exception as exc:
                note = f"raised by ioasid plugin {name!r} in hook 'ioasid_prq_vendors'"
                if note not in getattr(exc, "__notes__", ()):
                    exc.add_note(note)
                message = f"{origin}: ioasid_prq_vendors failed: {type(exc).__name__}: {exc}"
                problems.append(VendorProblem(origin=origin, message=message, error=exc))
                continue
            names: list[str] = []
            for vendor in vendors:
                try:
                    profile = build_profile(vendor, origin)
                    owner = found.get(profile.name)
                    if owner is not None or profile.name in reserved:
                        by = "the core" if owner is None else owner.origin
                        raise ValueError(
                            f"{origin}: page-request vendor {profile.name!r} is offered twice "
                            f"(first by {by})"
                        )
                except (TypeError, ValueError) as exc:
                    exc.add_note(f"raised by ioasid plugin {name!r} in hook 'ioasid_prq_vendors'")
                    problems.append(VendorProblem(origin=origin, message=str(exc), error=exc))
                    continue
                found[profile.name] = remember(profile)
                names.append(profile.name)
            offered[name] = tuple(names)
        return VendorCollection(profiles=found, offered=offered, problems=tuple(problems))

    def prq_vendors(self) -> dict[str, VendorPrq]:
        """Every plugin's page-request vendors, by name; the first problem of
        :meth:`collect_vendors` is raised (a caller that wants the others, and every problem,
        calls that)."""
        collection = self.collect_vendors()
        if collection.problems:
            raise collection.problems[0].error
        return {name: profile.vendor for name, profile in collection.profiles.items()}

    def log_formats(self) -> tuple[list[LogFormat], list[str]]:
        """Every plugin's log formats, asked one plugin at a time: a plugin whose hook raises
        or returns something else is left out, and said why in the second list."""
        from ioasid_core.logs.format import LogFormat

        found: list[LogFormat] = []
        problems: list[str] = []
        for impl in self._hook_caller("ioasid_log_formats").get_hookimpls():
            name = impl.plugin_name
            try:
                offered = impl.function()
            except Exception as exc:
                problems.append(f"plugin {name!r}: ioasid_log_formats raised {exc!r}")
                continue
            if offered is None:
                continue
            if not isinstance(offered, Sequence) or not all(
                isinstance(f, LogFormat) for f in offered
            ):
                problems.append(
                    f"plugin {name!r}: ioasid_log_formats returned {offered!r}, "
                    "not a sequence of LogFormat"
                )
                continue
            found.extend(offered)
        return found, problems

    def benchmarks(self) -> list[BenchmarkFigure]:
        """Every plugin's benchmark figures."""
        found: list[BenchmarkFigure] = []
        for offered in self._call("ioasid_benchmarks"):
            if offered is None:
                continue
            for figure in offered:
                if not isinstance(figure, BenchmarkFigure):
                    raise TypeError(f"ioasid_benchmarks returned {figure!r}, not a BenchmarkFigure")
                found.append(figure)
        return found

    def vendor_infos(self) -> list[VendorInfo]:
        """What every registered plugin says it drives (plugins answering None left out)."""
        return [_vendor_info(r) for r in self._call("ioasid_vendor_info")]

    def vendor_info_of(self, plugin_name: str) -> VendorInfo | None:
        """What one registered plugin says it drives. ``NotFoundError`` if not registered."""
        plugin = self._pm.get_plugin(plugin_name)
        if plugin is None:
            raise NotFoundError(f"no ioasid plugin named {plugin_name!r} is registered")
        others = [p for p in self._pm.get_plugins() if p is not plugin]
        caller = self._pm.subset_hook_caller("ioasid_vendor_info", remove_plugins=others)
        results = self._call("ioasid_vendor_info", caller=caller)
        return _vendor_info(results[0]) if results else None

    # -- plumbing

    def _hook_caller(self, name: str) -> pluggy.HookCaller:
        caller: pluggy.HookCaller = getattr(self._pm.hook, name)
        return caller

    def _call(self, name: str, *, caller: pluggy.HookCaller | None = None, **kwargs: object) -> Any:
        """Call hook ``name`` (or a subset ``caller`` of it), noting the plugin that raised."""
        hook = self._hook_caller(name) if caller is None else caller
        try:
            return hook(**kwargs)
        except Exception as exc:
            plugin = _culprit(self._hook_caller(name), exc.__traceback__)
            if plugin is not None:
                exc.add_note(f"raised by ioasid plugin {plugin!r} in hook {name!r}")
            raise


def _stay() -> None:
    """Leaving a join that registered nothing."""


def _vendor_sequence(result: object) -> Sequence[object]:
    """One plugin's answer to ``ioasid_prq_vendors``: a sequence of vendors, or None."""
    if result is None:
        return ()
    if isinstance(result, VendorPrq) or not isinstance(result, Sequence) or isinstance(result, str):
        raise TypeError(f"ioasid_prq_vendors must return a sequence of VendorPrq, not {result!r}")
    return result


def _vendor_info(result: object) -> VendorInfo:
    if not isinstance(result, VendorInfo):
        raise TypeError(f"ioasid_vendor_info returned {result!r}, not a VendorInfo")
    return result


def _culprit(hook: pluggy.HookCaller, tb: TracebackType | None) -> str | None:
    """The plugin whose hookimpl frame is innermost in ``tb``, if any."""
    codes = {}
    for impl in hook.get_hookimpls():
        code = getattr(inspect.unwrap(impl.function), "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    found = None
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


@attrs.define(kw_only=True)
class PluginHost:
    """A plugin manager with its facade and the story of how its plugins were loaded."""

    pm: pluggy.PluginManager
    hooks: Hooks
    loaded: list[LoadedPlugin]
    failures: list[LoadFailure]
    blocked: frozenset[str]


def new_plugin_manager(
    *,
    load_entry_points: bool = True,
    blocked: Iterable[str] = (),
    only: Iterable[str] | None = None,
    strict: bool = False,
) -> PluginHost:
    """Build a fresh plugin manager with the ``ioasid`` hook specs and the installed plugins.

    :param load_entry_points: False gives a manager with no plugins (tests register their own).
    :param blocked: entry-point names never imported; ``$IOASID_BLOCK_PLUGINS`` adds to them.
    :param only: if given, import only these entry points; a name not installed is a failure.
    :param strict: raise ``PluginLoadError`` naming every failure instead of skipping them.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    hooks = Hooks(pm)
    blocked_names = frozenset(blocked) | _env_blocked()
    for name in blocked_names:  # before any import: a blocked plugin has no side effects
        pm.set_blocked(name)
    loaded: list[LoadedPlugin] = []
    failures: list[LoadFailure] = []
    if load_entry_points:
        _load_entry_points(pm, hooks, None if only is None else frozenset(only), loaded, failures)
    if failures and strict:
        raise PluginLoadError(failures)
    for failure in failures:  # a stranger's text, to a terminal: escaped
        log.warning(
            "skipping ioasid plugin %s (%s, %s): %s",
            *map(printable, (failure.name, failure.distribution, failure.entry_point)),
            printable(failure.error),
        )
    pm.check_pending()
    return PluginHost(pm=pm, hooks=hooks, loaded=loaded, failures=failures, blocked=blocked_names)


def _env_blocked() -> frozenset[str]:
    names = os.environ.get(BLOCK_ENV, "").split(",")
    return frozenset(name.strip() for name in names if name.strip())


def _load_entry_points(
    pm: pluggy.PluginManager,
    hooks: Hooks,
    only: frozenset[str] | None,
    loaded: list[LoadedPlugin],
    failures: list[LoadFailure],
) -> None:
    """Register each entry point of the group on its own, sorted by name; record failures."""
    entry_points = sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
    )
    for ep in entry_points:
        if pm.is_blocked(ep.name) or (only is not None and ep.name not in only):
            continue
        dist = ep.dist
        dist_name = dist.name if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        if pm.has_plugin(ep.name):
            owner = next((p.distribution for p in loaded if p.name == ep.name), "another plugin")
            failures.append(_failure(ep, dist_name, f"the name {ep.name!r} is taken by {owner}"))
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            pm.check_pending()  # the plugins before this one passed: only it can fail
            vendor = hooks.vendor_info_of(ep.name)
        except Exception as exc:  # one broken vendor must not take the host down
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            error = f"{type(exc).__name__}: {exc}{_did_you_mean(exc)}"
            failures.append(_failure(ep, dist_name, error))
            continue
        loaded.append(
            LoadedPlugin(name=ep.name, distribution=dist_name, version=version, vendor=vendor)
        )
        hooks.origins[ep.name] = VendorOrigin(
            plugin=ep.name, distribution=dist_name, entry_point=ep.value
        )
    if only is not None:
        installed = {ep.name for ep in entry_points}
        for name in sorted(only - installed):
            failures.append(
                LoadFailure(name=name, distribution="?", entry_point="?", error="not installed")
            )


def _did_you_mean(exc: Exception) -> str:
    """For a misspelt hook (pluggy's "unknown hook 'x'"), the hook it may have meant."""
    import difflib

    found = re.search(r"unknown hook '(\w+)'", str(exc))
    if found is None:
        return ""
    names = [name for name in vars(hookspecs) if name.startswith("ioasid_")]
    close = difflib.get_close_matches(found[1], names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _failure(ep: importlib.metadata.EntryPoint, distribution: str, error: str) -> LoadFailure:
    return LoadFailure(name=ep.name, distribution=distribution, entry_point=ep.value, error=error)
