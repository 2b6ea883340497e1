"""``ioasid run`` and ``ioasid compare``: output shapes and exit codes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from ioasid_core import cli as cli_module
from ioasid_core.bits import Buffer
from ioasid_core.cli import cli
from ioasid_core.markers import hookimpl
from ioasid_core.plugins import PluginHost, new_plugin_manager
from ioasid_core.prq import GenericPrq, PageRequest
from ioasid_core.prq.discipline import Discipline
from ioasid_core.prq.vendor import VendorPrq

# tests/plugin_fakes.py: ``tests.plugin_fakes`` at run time, ``plugin_fakes`` to mypy.
if TYPE_CHECKING:
    from plugin_fakes import VendorEntryPoint
else:
    from tests.plugin_fakes import VendorEntryPoint

_REQUESTS_AXIS = "requests resolved wrongly, answered early, dropped or by SPID"
EXAMPLE = str(Path(__file__).parent.parent / "examples" / "null-set-search.toml")


def _invoke(*args: str, columns: int = 80) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_compare_prints_a_table_and_writes_json_csv_and_a_png(tmp_path: Path) -> None:
    out = tmp_path / "r"
    code, stdout, _ = _invoke(
        "compare",
        EXAMPLE,
        "--vendors",
        "generic",
        "--json",
        f"{out}.json",
        "--csv",
        f"{out}.csv",
        "--plot",
        f"{out}.png",
    )
    assert code == 0
    assert "cross" in stdout and "req" in stdout  # the column headers
    report = json.loads(Path(f"{out}.json").read_text())
    assert report["scenario"] == "null-set-search"
    assert [(r["vendor"], r["policy"]) for r in report["results"]] == [
        ("generic", p) for p in ("global", "set", "endpoint", "device")
    ]
    by_policy = {r["policy"]: r["metrics"] for r in report["results"]}
    assert by_policy["global"]["cross_owner_hits"] > 0
    assert all(by_policy[p]["cross_owner_hits"] == 0 for p in ("set", "endpoint", "device"))
    rows = list(csv.DictReader(io.StringIO(Path(f"{out}.csv").read_text())))
    assert [row["policy"] for row in rows] == ["global", "set", "endpoint", "device"]
    assert rows[0]["cross_owner_hits"] == str(by_policy["global"]["cross_owner_hits"])
    assert Path(f"{out}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_with_chosen_policies_runs_only_those() -> None:
    code, stdout, _ = _invoke(
        "compare", EXAMPLE, "--vendors", "generic", "--policies", "set,device"
    )
    assert code == 0
    assert "global" not in stdout and "device" in stdout


def test_run_prints_json_for_one_vendor_and_policy() -> None:
    code, stdout, _ = _invoke("run", EXAMPLE, "--policy", "global", "--json")
    assert code == 0
    report = json.loads(stdout)
    assert [(r["vendor"], r["policy"]) for r in report["results"]] == [("generic", "global")]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("compare", "nope.toml"), "nope.toml"),
        (("compare", EXAMPLE, "--vendors", "acme"), "no vendor named 'acme'"),
        (("compare", EXAMPLE, "--policies", "sideways"), "no lookup policy named 'sideways'"),
        (("run", EXAMPLE, "--policy", "sideways"), "no lookup policy named 'sideways'"),
    ],
)
def test_bad_input_exits_2_with_a_message(args: Sequence[str], says: str) -> None:
    code, _, stderr = _invoke(*args)
    assert code == 2
    assert says in stderr


def test_an_invalid_scenario_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[steps]]\nop = "fly"\n')
    code, _, stderr = _invoke("compare", str(bad))
    assert code == 2
    assert "steps[0].op" in stderr


class _BrokenVendor(GenericPrq):
    name = "broken"

    def decode_batch(self, data: Buffer) -> list[PageRequest]:
        raise RuntimeError("decoder exploded")


class _BrokenPlugin:
    @hookimpl
    def ioasid_prq_vendors(self) -> Sequence[VendorPrq]:
        return [_BrokenVendor()]


def test_a_failure_inside_a_plugin_exits_1_naming_the_vendor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def host_with_broken(**kwargs: object) -> PluginHost:
        host = new_plugin_manager(load_entry_points=False)
        host.pm.register(_BrokenPlugin(), name="broken")
        return host

    monkeypatch.setattr(cli_module, "new_plugin_manager", host_with_broken)
    code, _, stderr = _invoke("compare", EXAMPLE, "--vendors", "broken")
    assert code == 1
    assert "vendor 'broken'" in stderr and "decoder exploded" in stderr


# ---------------------------------------------------------------- bad input, found early


def test_an_output_that_cannot_be_written_is_bad_input_found_before_any_run(
    tmp_path: Path,
) -> None:
    for flag in ("--json", "--csv", "--plot"):
        missing = tmp_path / "no" / "such" / "out"
        code, stdout, stderr = _invoke("compare", EXAMPLE, flag, str(missing))
        assert code == 2, flag
        assert f"{flag} '{missing}': its folder" in stderr and "does not exist" in stderr
        assert stdout == ""  # nothing ran
    code, _, stderr = _invoke("compare", EXAMPLE, "--json", str(tmp_path))
    assert code == 2 and "is a directory" in stderr


def test_no_policy_at_all_is_bad_input() -> None:
    code, stdout, stderr = _invoke("compare", EXAMPLE, "--policies", ",")
    assert code == 2 and "no lookup policy given" in stderr and stdout == ""


def test_run_takes_one_policy() -> None:
    code, _, stderr = _invoke("run", EXAMPLE, "--policy", "global,set")
    assert code == 2 and "run takes one policy" in stderr


def test_a_negative_seed_is_refused() -> None:
    code, _, _ = _invoke("run", EXAMPLE, "--seed", "-1")
    assert code == 2


def test_vendors_and_policies_named_twice_run_once(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    code, _, _ = _invoke(
        "compare", EXAMPLE, "--vendors", "generic,generic", "--policies", "set,set,device",
        "--json", str(out),
    )  # fmt: skip
    assert code == 0
    runs = [(r["vendor"], r["policy"]) for r in json.loads(out.read_text())["results"]]
    assert runs == [("generic", "set"), ("generic", "device")]


def test_every_installed_vendors_section_is_checked_even_if_not_chosen(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(Path(EXAMPLE).read_text() + '\n[vendor.smmuv3]\nssidsize = "x"\n')
    code, _, stderr = _invoke("compare", str(path), "--vendors", "generic")
    assert code == 2 and "vendor.smmuv3.ssidsize: expected an integer in 0..20" in stderr


def test_a_source_id_the_chosen_vendor_cannot_carry_is_named_before_any_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(Path(EXAMPLE).read_text().replace("source_id = 0x100", "source_id = 0x10000"))
    code, stdout, stderr = _invoke("compare", str(path), "--vendors", "generic,vtd")
    assert code == 2 and stdout == ""
    assert (
        "platform.devices[0].source_id: vendor 'vtd' carries 16-bit source IDs (at most "
        "0xffff), got 65536 (0x10000)" in stderr
    )
    assert _invoke("compare", str(path), "--vendors", "smmuv3")[0] == 0  # 32-bit stream IDs


def test_no_request_answered_shows_a_dash_not_a_zero_latency(tmp_path: Path) -> None:
    path = tmp_path / "quiet.toml"
    path.write_text('name = "quiet"\n[platform]\nunits = [{ name = "u" }]\n')
    code, stdout, _ = _invoke("run", str(path))
    assert code == 0
    assert stdout.splitlines()[4].split()[-1] == "-", stdout


def test_a_scenario_about_allocation_gets_the_allocation_view(tmp_path: Path) -> None:
    guests = str(Path(EXAMPLE).parent / "guest-vcmd.toml")
    code, stdout, _ = _invoke("compare", guests, "--policies", "device", columns=120)
    assert code == 0
    header = next(line for line in stdout.splitlines() if line.split()[:2] == ["vendor", "policy"])
    # orph: 0 in every run, left out (JSON and CSV have it).
    assert header.split()[2:] == [
        "alloc",
        "fail",
        "swap",
        "galloc",
        "gfail",
        "host",
        "exits",
    ]
    vtd = next(line.split() for line in stdout.splitlines() if line.split()[:1] == ["vtd"])
    assert vtd[6] == "2"  # gfail: vm-b's quota refused two
    assert "(page requests)" not in stdout  # no page requests: one view, no suffix


def test_both_views_when_allocation_is_part_of_the_story() -> None:
    swaps = str(Path(EXAMPLE).parent / "allocator-swap.toml")
    code, stdout, _ = _invoke("compare", swaps, "--vendors", "generic")
    assert code == 0
    assert "scenario: allocator-swap (page requests)" in stdout
    assert "scenario: allocator-swap (allocations)" in stdout
    # A few binds, the same under every vendor and policy: no view of identical bars.
    code, stdout, _ = _invoke("compare", EXAMPLE, "--vendors", "generic")
    assert code == 0 and "(allocations)" not in stdout and "alloc " not in stdout


def test_the_plot_has_a_row_of_panels_per_view() -> None:
    from ioasid_core.compare import available_vendors, compare
    from ioasid_core.plugins import new_plugin_manager
    from ioasid_core.report import plot_figure
    from ioasid_core.scenario import load_scenario

    vendors = available_vendors(new_plugin_manager().hooks)
    examples = Path(EXAMPLE).parent
    for name, expected in (
        ("guest-vcmd.toml", ["PASID allocations (and failures)", "what they cost or left behind"]),
        ("null-set-search.toml", ["page request groups answered (or not)", _REQUESTS_AXIS]),
    ):
        results = compare(load_scenario(examples / name), [vendors["vtd"]])
        figure = plot_figure(name, results)
        assert [axes.get_xlabel() for axes in figure.axes] == expected, name


# -- each vendor's own rule, marked


def test_each_vendors_own_rule_comes_first_and_is_marked(tmp_path: Path) -> None:
    out = tmp_path / "r"
    code, stdout, _ = _invoke(
        "compare",
        EXAMPLE,
        "--vendors",
        "vtd,smmuv3",
        "--json",
        f"{out}.json",
        "--csv",
        f"{out}.csv",
    )
    assert code == 0
    report = json.loads(Path(f"{out}.json").read_text())
    assert [(r["vendor"], r["policy"], r["native"]) for r in report["results"]] == [
        ("vtd", "global", True),
        ("vtd", "set", False),
        ("vtd", "endpoint", False),
        ("vtd", "device", False),
        ("smmuv3", "set", True),  # its own first, the others in the usual order
        ("smmuv3", "global", False),
        ("smmuv3", "endpoint", False),
        ("smmuv3", "device", False),
    ]
    assert {r["vendor"]: r["discipline"] for r in report["results"]} == {
        "vtd": "per-request",
        "smmuv3": "iopf",
    }
    rows = list(csv.DictReader(io.StringIO(Path(f"{out}.csv").read_text())))
    assert [(row["vendor"], row["policy"], row["native"]) for row in rows][:2] == [
        ("vtd", "global", "True"),
        ("vtd", "set", "False"),
    ]
    assert list(rows[0])[:5] == ["vendor", "policy", "native", "discipline", "seed"]
    cells = [line.split()[:2] for line in stdout.splitlines() if len(line.split()) > 2]
    assert [c for c in cells if c[1].endswith("*")] == [["vtd", "global*"], ["smmuv3", "set*"]]
    assert "*: the vendor's own rule" in stdout
    assert "each request on its own: vtd (VT-d 2019)" in stdout


class _PerRequest(GenericPrq):
    """A plugin's vendor answering each request on its own, as VT-d 2019 did: not VT-d."""

    name = "acme"
    discipline = Discipline.PER_REQUEST


class _Tables(GenericPrq):
    """A plugin's vendor of per-device tables, as AMD v2: not AMD."""

    name = "tables"
    discipline = Discipline.DEVICE_TABLES


def test_the_caption_names_a_plugins_vendor_as_itself_not_as_the_bundled_driver(
    install: Callable[..., None],
) -> None:
    install(VendorEntryPoint("acme", _PerRequest()), VendorEntryPoint("tables", _Tables()))
    vendors = "vtd,acme,amd-vi,tables,smmuv3"
    code, stdout, stderr = _invoke(
        "compare", EXAMPLE, "--vendors", vendors, "--policies", "native", columns=300
    )
    assert code == 0, stderr
    words = " ".join(stdout.split())  # the caption wraps at the table's width
    assert words.endswith(
        "Answered as: each request on its own: vtd (VT-d 2019), acme; per-device tables: "
        "amd-vi (AMD v2), tables; IOPF groups, first failure sticky: smmuv3"
    )


def test_policies_native_runs_each_vendor_under_its_own_rule_only() -> None:
    code, stdout, _ = _invoke(
        "compare", EXAMPLE, "--vendors", "vtd,virtio-iommu,upstream-now", "--policies", "native"
    )
    assert code == 0
    rows = [line.split()[:2] for line in stdout.splitlines() if line.strip().endswith(("10", "-"))]
    assert rows == [["vtd", "global*"], ["virtio-iommu", "endpoint*"], ["upstream-now", "device*"]]


def test_native_mixes_with_named_policies_each_run_once() -> None:
    from ioasid_core.compare import NATIVE, parse_policies, vendor_policies
    from ioasid_core.prq import LookupPolicy

    chosen = parse_policies(["device", "native", "global", "NATIVE"])
    assert chosen == [LookupPolicy.DEVICE, NATIVE, LookupPolicy.GLOBAL]
    generic = GenericPrq()  # its own: global
    assert vendor_policies(generic, chosen) == [LookupPolicy.GLOBAL, LookupPolicy.DEVICE]
    assert vendor_policies(generic, [LookupPolicy.SET]) == [LookupPolicy.SET]
    assert vendor_policies(GenericPrq(LookupPolicy.SET)) == [
        LookupPolicy.SET,
        LookupPolicy.GLOBAL,
        LookupPolicy.ENDPOINT,
        LookupPolicy.DEVICE,
    ]


def test_run_takes_native_as_the_vendors_own_policy() -> None:
    code, stdout, _ = _invoke("run", EXAMPLE, "--vendor", "smmuv3", "--policy", "native", "--json")
    assert code == 0
    (result,) = json.loads(stdout)["results"]
    assert (result["policy"], result["native"]) == ("set", True)


def test_the_plot_marks_each_vendors_own_rule() -> None:
    from ioasid_core.compare import available_vendors, compare
    from ioasid_core.report import plot_figure
    from ioasid_core.scenario import load_scenario

    vendors = available_vendors(new_plugin_manager().hooks)
    results = compare(load_scenario(EXAMPLE), [vendors["vtd"], vendors["smmuv3"]])
    figure = plot_figure("null-set-search", results)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert sorted(label for label in labels if label.endswith("(own)")) == [
        "smmuv3 / set (own)",
        "vtd / global (own)",
    ]
    bold = {t.get_text() for t in figure.axes[0].get_yticklabels() if t.get_fontweight() == "bold"}
    assert bold == {"smmuv3 / set (own)", "vtd / global (own)"}


def test_compare_never_cuts_a_cell_when_the_table_is_wider_than_the_terminal() -> None:
    """Every vendor's own rule, with the answer columns: wider than 80 columns, so split
    into tables that each fit (CliRunner's console is 80 wide, as a pipe's is)."""
    code, stdout, _ = _invoke("compare", EXAMPLE, "--policies", "native")
    assert code == 0
    assert "…" not in stdout
    assert all(len(line) <= 80 for line in stdout.splitlines())
    headers = [
        line.split() for line in stdout.splitlines() if line.split()[:2] == ["vendor", "policy"]
    ]
    assert len(headers) == 2 and headers[-1][-2:] == ["drop", "p99"]
    assert "early" in headers[0] + headers[1]  # the case under test (amd-vi's early answers)
    assert "endpoint*" in stdout
