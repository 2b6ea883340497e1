"""One contract, checked once; one broken plugin never takes the others down.

A vendor's members are checked when it is collected (its profile); a vendor that does not
conform is one error naming the plugin (distribution and entry point), the vendor and each
missing or ill-typed member. ``ioasid plugins --strict`` exits 1 on it; ``compare`` runs the
other vendors, writes their results and exits 1 naming it; ``--vendors x`` for a vendor that
is missing says why and points to ``ioasid plugins``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ioasid_core.guest import GUEST_OWNED
from ioasid_core.markers import hookimpl
from ioasid_core.plugins import new_plugin_manager
from ioasid_core.profile import NonConformingVendor, build_profile, profile_of
from ioasid_core.prq.discipline import Discipline
from ioasid_core.prq.generic import GenericPrq
from ioasid_core.prq.types import PageRequest
from ioasid_core.scenario.reader import ScenarioError
from ioasid_core.scenario.schema import PlatformSpec, Scenario, UnitSpec
from ioasid_core.scenario.vendors import check_queue_sizes
from ioasid_core.testing import invoke_cli
from ioasid_core.units import VendorInfo
from ioasid_core.vendor_options import NEUTRAL_UNITS, UnitShape

# tests/plugin_fakes.py: ``tests.plugin_fakes`` at run time, ``plugin_fakes`` to mypy.
if TYPE_CHECKING:
    from plugin_fakes import FakeEntryPoint
else:
    from tests.plugin_fakes import FakeEntryPoint


Install = Callable[..., None]


class _HalfBaked:
    """No decode_batch, entry_size as text, the policy by name: three problems."""

    name = "half"
    entry_size = "32"
    default_policy = "set"
    expected = object

    def encode_request(self, request: PageRequest) -> bytes:
        return b""

    def check(self, request: PageRequest) -> None:
        return None

    def encode_responses(self, responses: Sequence[object]) -> bytes:
        return b""


class _Offers:
    """A plugin offering ``vendors`` (or raising ``error``) from ``ioasid_prq_vendors``."""

    def __init__(self, *vendors: object, error: Exception | None = None) -> None:
        self.vendors = list(vendors)
        self.error = error

    @hookimpl
    def ioasid_vendor_info(self) -> VendorInfo:
        return VendorInfo(name="fake", description="a fake vendor plugin")

    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[object]:
        if self.error is not None:
            raise self.error
        return self.vendors


HALF_PROBLEM = (
    "plugin 'halfbaked' (ioasid-halfbaked, entry point ioasid_halfbaked.plugin): vendor 'half' "
    "does not conform to VendorPrq: entry_size is '32' (str), not an int > 0; default_policy "
    "is 'set' (str), not a LookupPolicy; missing decode_batch"
)


class _Renamed(GenericPrq):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


def test_a_non_conforming_vendor_is_one_error_naming_plugin_vendor_and_each_member(
    install: Install,
) -> None:
    install(FakeEntryPoint("halfbaked", _Offers(_HalfBaked(), _Renamed("fine"))))
    collection = new_plugin_manager().hooks.collect_vendors()
    assert [p.message for p in collection.problems] == [HALF_PROBLEM]
    assert collection.offered["halfbaked"] == ("fine",)  # its conforming vendor stays
    assert {"vtd", "smmuv3", "fine"} <= set(collection.profiles)  # the others too
    assert isinstance(collection.problems[0].error, NonConformingVendor)


def test_optional_members_of_the_wrong_type_are_named_each() -> None:
    class Odd(GenericPrq):
        source_id_bits = "16"
        option_section = 3
        dump_formats = ("merged",)
        discipline = "lifo"
        log_unhandled = 5

        class unit_model:  # a class where an instance with shape() belongs
            option_keys = frozenset[str]()

    with pytest.raises(NonConformingVendor) as caught:
        build_profile(Odd())
    assert caught.value.problems == (
        "log_unhandled is not callable",
        "dump_formats is ('merged',) (tuple), not a sequence of DumpFormat",
        "unit_model lacks option_problems, shape",
        "source_id_bits is '16' (str), not an int in 1..64",
        "option_section is 3 (int), not a str",
        "discipline 'lifo' is not an answer discipline (known: iopf, per-request, device-tables)",
    )


def test_the_profile_fills_in_the_defaults_once() -> None:
    vendor = GenericPrq()
    profile = profile_of(vendor)
    assert profile_of(vendor) is profile  # resolved once
    assert profile.rows is vendor  # written on rows: no adapter
    assert profile.guest_path is GUEST_OWNED and profile.unit_model is NEUTRAL_UNITS
    assert (profile.source_id_bits, profile.option_section) == (32, "generic")
    assert profile.discipline is Discipline.IOPF and profile.log_unhandled is None
    assert profile.dump_formats == ()


def test_a_hook_that_raises_leaves_out_that_plugin_only(install: Install) -> None:
    install(FakeEntryPoint("raiser", _Offers(error=RuntimeError("no hardware"))))
    collection = new_plugin_manager().hooks.collect_vendors()
    assert [p.message for p in collection.problems] == [
        "plugin 'raiser' (ioasid-raiser, entry point ioasid_raiser.plugin): "
        "ioasid_prq_vendors failed: RuntimeError: no hardware"
    ]
    assert "vtd" in collection.profiles


def test_a_name_offered_twice_names_both_plugins(install: Install) -> None:
    install(FakeEntryPoint("copycat", _Offers(_Renamed("vtd"))))
    collection = new_plugin_manager().hooks.collect_vendors()
    (problem,) = collection.problems
    assert problem.message.startswith("plugin ")
    assert "page-request vendor 'vtd' is offered twice (first by plugin " in problem.message
    assert {"copycat", "vtd"} <= {problem.origin.plugin, *problem.message.split("'")}
    assert collection.profiles["vtd"].vendor.name == "vtd"


def test_plugins_strict_exits_1_on_a_non_conforming_vendor(install: Install) -> None:
    install(FakeEntryPoint("halfbaked", _Offers(_HalfBaked())))
    listing = invoke_cli("plugins")
    assert listing.exit_code == 0
    assert "vendors left out (they do not conform):" in listing.stdout
    assert HALF_PROBLEM in listing.stdout
    strict = invoke_cli("plugins", "--strict")
    assert strict.exit_code == 1
    report = json.loads(invoke_cli("plugins", "--json").stdout)
    assert report["vendor_problems"] == [
        {
            "plugin": "halfbaked",
            "distribution": "ioasid-halfbaked",
            "entry_point": "ioasid_halfbaked.plugin",
            "error": HALF_PROBLEM,
        }
    ]


def test_compare_runs_the_others_writes_them_and_exits_1_naming_the_broken_one(
    install: Install, tmp_path: Path
) -> None:
    install(FakeEntryPoint("halfbaked", _Offers(_HalfBaked())))
    out = tmp_path / "out.json"
    result = invoke_cli("compare", "null-set-search", "--policies", "set", "--json", str(out))
    assert result.exit_code == 1
    assert f"ioasid: left out: {HALF_PROBLEM}" in result.stderr
    assert "1 plugin problem(s) left vendors out: " + HALF_PROBLEM in result.stderr
    assert "vtd" in result.stdout  # the others' table
    vendors = {run["vendor"] for run in json.loads(out.read_text())["results"]}
    assert {"generic", "vtd", "smmuv3"} <= vendors and "half" not in vendors


def test_compare_of_a_vendor_whose_plugin_failed_to_load_says_why(install: Install) -> None:
    install(FakeEntryPoint("gpu", ImportError("libgpu.so: cannot open shared object file")))
    result = invoke_cli("compare", "null-set-search", "--vendors", "gpu")
    assert result.exit_code == 2
    assert (
        "ioasid: left out: plugin 'gpu' (ioasid-gpu, entry point ioasid_gpu.plugin) failed to "
        "load: ImportError: libgpu.so: cannot open shared object file"
    ) in result.stderr
    assert "no vendor named 'gpu'" in result.stderr
    assert "see `ioasid plugins` for each plugin and its vendors" in result.stderr


def test_a_named_vendor_that_does_not_conform_is_left_out_and_the_others_named_run(
    install: Install, tmp_path: Path
) -> None:
    install(FakeEntryPoint("halfbaked", _Offers(_HalfBaked())))
    out = tmp_path / "out.json"
    result = invoke_cli(
        "compare", "null-set-search", "--vendors", "half,vtd", "--policies", "set",
        "--json", str(out),
    )  # fmt: skip
    assert result.exit_code == 1  # a plugin failed: not "no vendor named 'half'" (exit 2)
    assert "no vendor named" not in result.stderr
    assert f"ioasid: left out: {HALF_PROBLEM}\n" in result.stderr
    assert result.stderr.endswith(f"1 plugin problem(s) left vendors out: {HALF_PROBLEM}\n")
    assert "vtd" in result.stdout
    assert [run["vendor"] for run in json.loads(out.read_text())["results"]] == ["vtd"]


@pytest.mark.parametrize(
    "command",
    [
        ("compare", "null-set-search", "--vendors", "half"),
        ("run", "null-set-search", "--vendor", "half"),
    ],
)
def test_a_command_naming_only_a_vendor_that_does_not_conform_exits_1_naming_it(
    install: Install, command: tuple[str, ...]
) -> None:
    install(FakeEntryPoint("halfbaked", _Offers(_HalfBaked())))
    result = invoke_cli(*command)
    assert result.exit_code == 1
    assert result.stderr == (
        f"ioasid: left out: {HALF_PROBLEM}\n"
        "ioasid: nothing to run: 'half' left out (the plugin problem is above; `ioasid "
        "plugins` lists each plugin and its vendors)\n"
    )


def test_decode_with_a_vendor_that_does_not_conform_exits_1_naming_it(
    install: Install, tmp_path: Path
) -> None:
    install(FakeEntryPoint("halfbaked", _Offers(_HalfBaked())))
    dump = tmp_path / "q.bin"
    dump.write_bytes(bytes(32))
    result = invoke_cli("decode", "half", str(dump))
    assert result.exit_code == 1
    assert HALF_PROBLEM in result.stderr and "nothing to run: 'half' left out" in result.stderr


def test_compare_of_healthy_vendors_named_is_not_failed_by_another_plugin(
    install: Install,
) -> None:
    install(FakeEntryPoint("halfbaked", _Offers(_HalfBaked())))
    result = invoke_cli("compare", "null-set-search", "--vendors", "vtd", "--policies", "set")
    assert result.exit_code == 0, result.stderr
    assert HALF_PROBLEM in result.stderr  # still said


class _DeepUnits:
    """A unit model whose deepest queue is ``most`` (counting how often it is read)."""

    option_keys = frozenset[str]()

    def __init__(self, most: object) -> None:
        self._most = most
        self.reads = 0

    @property
    def max_queue_entries(self) -> object:
        self.reads += 1
        return self._most

    def option_problems(self, options: object) -> list[tuple[str, str]]:
        return []

    def shape(self, pasid_bits: int, queue_entries: int, options: object) -> UnitShape:
        return UnitShape(pasid_bits=pasid_bits, queue_entries=queue_entries)


class _Shallow(GenericPrq):
    def __init__(self, name: str, most: object) -> None:
        super().__init__()
        self.name = name
        self.unit_model = _DeepUnits(most)


@pytest.mark.parametrize(
    ("most", "shown"), [("16", "'16' (str)"), (True, "True (bool)"), (0, "0 (int)")]
)
def test_an_ill_typed_max_queue_entries_is_named_at_collection(
    install: Install, most: object, shown: str
) -> None:
    install(FakeEntryPoint("shallow", _Offers(_Shallow("shallow", most))))
    collection = new_plugin_manager().hooks.collect_vendors()
    assert [p.message for p in collection.problems] == [
        "plugin 'shallow' (ioasid-shallow, entry point ioasid_shallow.plugin): vendor "
        f"'shallow' does not conform to VendorPrq: unit_model.max_queue_entries is {shown}, "
        "not an int > 0"
    ]
    assert "vtd" in collection.profiles  # the others stay


def test_the_queue_depth_check_reads_the_profile_not_the_model() -> None:
    vendor = _Shallow("shallow", 64)
    profile = profile_of(vendor)
    assert profile.max_queue_entries == 64
    model = vendor.unit_model
    assert isinstance(model, _DeepUnits)
    read_at_collection = model.reads
    deep = Scenario(
        name="deep",
        platform=PlatformSpec(units=(UnitSpec(name="u0", queue_entries=128),)),
    )
    for _ in range(3):
        with pytest.raises(ScenarioError) as caught:
            check_queue_sizes(deep, [vendor])
        assert str(caught.value).endswith(
            "platform.units[0].queue_entries: vendor 'shallow' hardware queues hold at most "
            "64 entries, got 128 (a [vendor.shallow] section can size its queue)"
        )
    assert model.reads == read_at_collection  # checked once, when profiled
    fits = Scenario(
        name="fits", platform=PlatformSpec(units=(UnitSpec(name="u0", queue_entries=64),))
    )
    check_queue_sizes(fits, [vendor])
    assert profile_of(GenericPrq()).max_queue_entries is None  # no model: no limit
