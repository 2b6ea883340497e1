"""examples/amd-riscv.toml, as AMD has it: the stranger and the overflow go unanswered."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioasid_core.plugin import LookupPolicy, new_plugin_manager
from ioasid_core.testing import available_vendors, compare, load_scenario

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "amd-riscv.toml"


@pytest.mark.parametrize("name", ["amd-vi", "amd-vi-iopf"])
def test_amd_answers_neither_the_stranger_nor_the_overflow(name: str) -> None:
    vendors = available_vendors(new_plugin_manager().hooks)
    (result,) = compare(load_scenario(EXAMPLE), [vendors[name]], [LookupPolicy.DEVICE])
    m = result.metrics
    assert m.page_requests == 2 * 2 + 24
    # The stranger's two groups: read from the log, never answered (no device state / no
    # pci_dev), nothing premature either.
    assert m.unanswered_groups == 2
    assert m.premature_responses == 0
    assert m.dropped["hardware"] == 0
    # 15 of the 24 fit the 16-entry log; the other 9 are lost, and nobody answers them.
    assert m.dropped["overflow"] == 9
    assert m.auto_responses == 0
    assert dict(m.responses) == {"success": 15}
