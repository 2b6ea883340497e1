"""Comparisons in a process pool: every vendor pickles, the results (and their order) are
the serial ones, and a vendor that fails in a worker is still named."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from ioasid_core.bits import Buffer
from ioasid_core.cli import cli
from ioasid_core.compare import VendorFailure, available_vendors, compare
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.prq import GenericPrq, PageRequest
from ioasid_core.prq.policy import LookupPolicy
from ioasid_core.scenario import load_scenario

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VENDORS = available_vendors(new_plugin_manager().hooks)


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_every_vendor_pickles_and_comes_back_equivalent(name: str) -> None:
    vendor = VENDORS[name]
    again = pickle.loads(pickle.dumps(vendor))
    assert (again.name, again.entry_size, again.default_policy) == (
        vendor.name,
        vendor.entry_size,
        vendor.default_policy,
    )
    request = PageRequest(0x10, 5, True, 3, True, addr=0x1000)
    assert again.encode_request(request) == vendor.encode_request(request)


def test_a_process_pool_gives_the_serial_results_in_the_serial_order() -> None:
    scenario = load_scenario(EXAMPLES / "guest-vcmd.toml")
    vendors = list(VENDORS.values())
    serial = compare(scenario, vendors)
    with ProcessPoolExecutor(2) as pool:
        parallel = compare(scenario, vendors, executor=pool)
    assert [r.as_dict() for r in parallel] == [r.as_dict() for r in serial]


class Exploding(GenericPrq):
    name = "exploding"

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        raise RuntimeError("decoder exploded")


def test_a_vendor_failing_in_a_worker_is_named_in_the_parent() -> None:
    scenario = load_scenario(EXAMPLES / "null-set-search.toml")
    with ProcessPoolExecutor(1) as pool, pytest.raises(VendorFailure) as caught:
        compare(scenario, [Exploding()], [LookupPolicy.GLOBAL], executor=pool)
    assert caught.value.vendor == "exploding"
    assert caught.value.policy is LookupPolicy.GLOBAL
    assert str(caught.value).endswith("RuntimeError: decoder exploded")


def test_vendor_failure_pickles() -> None:
    failure = VendorFailure("v", LookupPolicy.SET, KeyError("k"))
    again = pickle.loads(pickle.dumps(failure))
    assert (again.vendor, again.policy, str(again)) == ("v", LookupPolicy.SET, str(failure))


def test_compare_jobs_gives_the_same_json(tmp_path: Path) -> None:
    outputs: list[str] = []
    for jobs in ("1", "2"):
        out = tmp_path / f"{jobs}.json"
        args: Sequence[str] = [
            "compare",
            str(EXAMPLES / "prq-storm.toml"),
            "--jobs",
            jobs,
            "--json",
            str(out),
        ]
        result = CliRunner().invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]
