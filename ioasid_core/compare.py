"""Replay one scenario under several vendors and lookup policies.

The vendors are the core's reference vendor (``generic``) and every plugin's, collected once
through the ``ioasid_prq_vendors`` hook. Runs are independent; they go through any
``concurrent.futures.Executor`` (by default they run one after another in this process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from ioasid_core.errors import IoasidError
from ioasid_core.plugins import Hooks
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.prq.vendor import VendorPrq
from ioasid_core.replay import RunResult, replay
from ioasid_core.scenario.schema import Scenario

__all__ = ["VendorFailure", "available_vendors", "compare", "parse_policies"]


class VendorFailure(Exception):
    """A vendor plugin raised during a replay: names the vendor, keeps the cause."""

    def __init__(self, vendor: str, policy: LookupPolicy, cause: BaseException) -> None:
        super().__init__(
            f"vendor {vendor!r} failed under policy {policy.value!r}: "
            f"{type(cause).__name__}: {cause}"
        )
        self.vendor = vendor
        self.policy = policy


def available_vendors(hooks: Hooks | None) -> dict[str, VendorPrq]:
    """``generic`` and every plugin's page-request vendor, by name."""
    vendors: dict[str, VendorPrq] = {"generic": GenericPrq()}
    if hooks is not None:
        for name, vendor in hooks.prq_vendors().items():
            if name in vendors:
                raise ValueError(f"a plugin offers a vendor named {name!r}, which is built in")
            vendors[name] = vendor
    return vendors


def parse_policies(names: Sequence[str]) -> list[LookupPolicy]:
    """Policy names (``global``, ``set``, ``endpoint``, ``device``) to policies."""
    known = {p.value: p for p in LookupPolicy}
    out = []
    for name in names:
        policy = known.get(name.strip().lower())
        if policy is None:
            raise ValueError(f"no lookup policy named {name!r} (known: {', '.join(known)})")
        out.append(policy)
    return out


def _run_one(scenario: Scenario, vendor: VendorPrq, policy: LookupPolicy, seed: int) -> RunResult:
    try:
        return replay(scenario, vendor, policy, seed=seed)
    except IoasidError:
        raise
    except Exception as exc:
        raise VendorFailure(vendor.name, policy, exc) from exc


def compare(
    scenario: Scenario,
    vendors: Sequence[VendorPrq],
    policies: Sequence[LookupPolicy] | None = None,
    *,
    seed: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Every (vendor, policy) run, in that order. ``policies=None``: every policy."""
    chosen = list(policies) if policies is not None else list(LookupPolicy)
    run_seed = scenario.seed if seed is None else seed
    pairs = [(v, p) for v in vendors for p in chosen]
    results: list[RunResult] = []
    if executor is None:
        for vendor, policy in pairs:
            result = _run_one(scenario, vendor, policy, run_seed)
            results.append(result)
            if progress is not None:
                progress(result)
        return results
    futures = [executor.submit(_run_one, scenario, v, p, run_seed) for v, p in pairs]
    for future in futures:
        result = future.result()
        results.append(result)
        if progress is not None:
            progress(result)
    return results
