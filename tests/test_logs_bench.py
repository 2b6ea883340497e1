"""``logs_line_ratio``: its log is what it says, and the figure is computed for any set of
vendors (the limit is checked by ``ioasid bench --check``, never in a timed unit test)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ioasid_core.bench import LIMITS
from ioasid_core.logs.bench import (
    FOREIGN_LINES,
    FOREIGN_PER_RECORD,
    baseline_pattern,
    mixed_log,
    run_logs_bench,
)

if TYPE_CHECKING:
    from logs_helpers import installed_formats
else:
    from tests.logs_helpers import installed_formats


def test_the_mixed_log_is_every_example_each_followed_by_foreign_lines() -> None:
    formats = installed_formats()
    examples = [line for fmt in formats for line in fmt.examples]
    log = mixed_log(formats, len(examples) * (FOREIGN_PER_RECORD + 1))
    step = FOREIGN_PER_RECORD + 1
    assert log[::step] == examples
    assert all(line in FOREIGN_LINES for i, line in enumerate(log) if i % step)
    pattern = baseline_pattern(formats)
    assert all(pattern.search(line) for line in examples)
    assert not any(pattern.search(line) for line in FOREIGN_LINES)


def test_the_figure_is_computed_with_and_without_vendors() -> None:
    assert LIMITS["logs_line_ratio"] == 6.0
    for formats in (installed_formats(), []):
        ratio = run_logs_bench(formats, quick=True)["logs_line_ratio"]
        assert ratio > 0
