"""Every number a user types on the command line is checked before any work starts: 0,
negative, huge (10**30, 5,000 digits), not a number, ``nan``, full-width digits. Each is
exit 2 with a message naming the option and its bounds; nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.cli_types import MAX_SEED, BoundedFloat, BoundedInt

HOSTILE = ["0", "-1", "10" + "0" * 29, "9" * 5000, "abc", "", "1.5", "nan", "inf", "\uff11", "0x10"]
"""What a hostile user types where a whole number belongs (not all are bad everywhere)."""


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


def _bad_for(low: int, high: int) -> list[str]:
    def good(v: str) -> bool:
        return v.isascii() and v.isdigit() and len(v) < 30 and low <= int(v) <= high

    return [v for v in HOSTILE if not good(v)]


OPTIONS = [
    # (command before the option, option, low, high, command after it)
    (["run", "null-set-search"], "--seed", 0, MAX_SEED),
    (["compare", "null-set-search"], "--seed", 0, MAX_SEED),
    (["compare", "null-set-search"], "--jobs", 1, 64),
    (["sweep", "SWEEP", "--out", "OUT"], "--jobs", 1, 256),
    (["sweep", "SWEEP", "--out", "OUT"], "--batch", 1, 10_000),
]


@pytest.mark.parametrize(("command", "option", "low", "high"), OPTIONS)
def test_a_bad_number_is_exit_2_naming_the_option_and_its_bounds_and_nothing_is_written(
    command: list[str], option: str, low: int, high: int, tmp_path: Path
) -> None:
    sweep = Path(__file__).parent.parent / "examples" / "sweeps" / "queue-depth.toml"
    out = tmp_path / "out"
    args = [{"SWEEP": str(sweep), "OUT": str(out)}.get(a, a) for a in command]
    if args[0] == "compare":
        args += ["--json", str(out)]
    for value in _bad_for(low, high):
        code, stderr = invoke(*args, option, value)
        assert code == 2, (option, value)
        assert f"Invalid value for '{option}': expected a whole number in {low}..{high}" in stderr
        assert len(stderr) < 500, stderr  # 5,000 digits are not echoed back
        assert not out.exists()


def test_the_extreme_seeds_are_taken_and_reported_as_given() -> None:
    for seed in (0, MAX_SEED):
        result = CliRunner().invoke(cli, ["run", "null-set-search", "--seed", str(seed), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["results"][0]["seed"] == seed


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "0", "0.05", "601", "1e400", "x"])
def test_a_sweep_connect_timeout_that_is_not_in_range_is_refused_before_work(
    value: str, tmp_path: Path
) -> None:
    # nan passed click's FloatRange (a comparison with nan is false) and failed later, in
    # Dask, as "KeyError: 'Invalid time unit: nan...'".
    sweep = Path(__file__).parent.parent / "examples" / "sweeps" / "queue-depth.toml"
    out = tmp_path / "out"
    args = ["sweep", str(sweep), "--out", str(out), "--executor", "dask-local"]
    code, stderr = invoke(*args, "--connect-timeout", value)
    assert code == 2, stderr
    assert "Invalid value for '--connect-timeout': expected a number in 0.1..600" in stderr
    assert not out.exists()


def test_bounded_int_takes_ascii_decimal_in_range_only() -> None:
    seed = BoundedInt(0, MAX_SEED)
    assert seed.convert("42", None, None) == 42
    assert seed.convert(" 7 ", None, None) == 7
    assert seed.convert(str(MAX_SEED), None, None) == MAX_SEED
    assert seed.convert("0009", None, None) == 9  # leading zeros are not digits of size
    assert seed.convert("0" * 5000 + "9", None, None) == 9  # nor past int()'s digit limit
    assert seed.convert("-" + "0" * 5000, None, None) == 0
    for bad in (
        "1_000",
        "\uff14\uff12",
        "+",
        "",
        "1e3",
        str(MAX_SEED + 1),
        "-0x1",
        "-" + "0" * 5000 + "1",
    ):
        with pytest.raises(click.BadParameter, match=r"expected a whole number in 0\.\."):
            seed.convert(bad, None, None)


def test_bounded_int_shortens_and_escapes_what_it_echoes() -> None:
    with pytest.raises(click.BadParameter) as caught:
        BoundedInt(1, 64).convert("\x1b[31m" + "x" * 100, None, None)
    message = caught.value.message
    assert "\x1b" not in message and "\\x1b[31m" in message and "(105 characters)" in message


def test_bounded_float_refuses_nan_and_infinities() -> None:
    seconds = BoundedFloat(0.1, 600)
    assert seconds.convert("2.5", None, None) == 2.5
    assert seconds.convert("600", None, None) == 600.0
    for bad in ("nan", "inf", "-inf", "1_0", "\uff11", "0.01", "600.5"):
        with pytest.raises(click.BadParameter, match=r"expected a number in 0\.1\.\.600"):
            seconds.convert(bad, None, None)
    with pytest.raises(click.BadParameter):
        seconds.convert(float("nan"), None, None)
