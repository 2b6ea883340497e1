"""The realistic mixed workload at any size: what the scale figures and tests replay.

The mix of ``examples/churn-and-stream.toml`` (SVA bind/unbind churn on one accelerator
while a second one streams page requests of groups of 1 to 4, with unknown and foreign
PASIDs and stop markers among them), in lanes of independent device pairs on one unit, as
many lanes as the size asks. A lane is at most ``LANE_STEPS`` generated steps (its
generators stay within the loader's per-generator ``count`` bound), lanes run side by side
in modelled time, so a bigger workload has more devices, not a longer lane.

Written as scenario text, so it is loaded (and its loading measured) like a user's file.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LANE_STEPS", "mixed_workload_toml"]

LANE_STEPS: Final = 1 << 16
"""Generated steps of one full lane: a churn of 1/4 of them binds (each bind and its unbind
are two steps) and a stream of the other half."""

_POOL: Final = 4  # address spaces a lane's churn cycles through: one more than live


def _lane(index: int, steps: int) -> tuple[str, str, str, str]:
    """A lane's platform, first steps (the two long-lived binds), generators, last steps."""
    binds = max(1, steps // 4)
    groups = max(1, steps - 2 * binds)
    a, b = f"acc-a{index}", f"acc-b{index}"
    pool = ", ".join(f'"c{index}-{k}"' for k in range(_POOL))
    names = (f"pa-proc{index}", f"pb-proc{index}", *(f"c{index}-{k}" for k in range(_POOL)))
    platform = "".join(f'[[platform.address_spaces]]\nname = "{name}"\n' for name in names)
    platform += "".join(
        f"""[[platform.domains]]
name = "dom-{x}{index}"
owner = "p{x}-proc{index}"
sets = ["sva"]
[[platform.devices]]
name = "acc-{x}{index}"
unit = "iommu0"
source_id = {0x100 + 2 * index + k}
owner = "p{x}-proc{index}"
domain = "dom-{x}{index}"
"""
        for k, x in enumerate("ab")
    )
    first = "".join(
        f"""[[steps]]
at = 0
op = "bind"
device = "acc-{x}{index}"
set = "sva"
address_space = "p{x}-proc{index}"
name = "p{x}{index}"
"""
        for x in "ab"
    )
    generators = f"""[[generators]]
kind = "churn"
at = 10
device = "{a}"
set = "sva"
address_spaces = [{pool}]
count = {binds}
live = {_POOL - 1}
interval = 2
jitter = 3
prefix = "a{index}."

[[generators]]
kind = "page_request_stream"
at = 11
devices = ["{b}"]
count = {groups}
group_size = [1, 4]
interval = 1
pasids = ["pb{index}"]
foreign_pasids = ["pa{index}"]
perm = ["read", "write"]
mix = {{ valid = 6, unknown = 1, foreign = 2, stop = 1 }}
"""
    last = "".join(
        f"""[[steps]]
at = 1e9
op = "unbind"
device = "acc-{x}{index}"
pasid = "p{x}{index}"
"""
        for x in "ba"
    )
    return platform, first, generators, last


def mixed_workload_toml(events: int, *, seed: int = 11) -> str:
    """Scenario text of about ``events`` steps (at least one lane of a few steps): lanes of
    ``LANE_STEPS`` generated steps, the last one shorter, plus four written steps a lane."""
    if events < 1:
        raise ValueError(f"a workload needs at least one event, got {events}")
    lanes: list[int] = []
    left = events
    while left > 0:
        lanes.append(min(left, LANE_STEPS))
        left -= LANE_STEPS
    head = f"""name = "mixed-{events}"
description = "churn and page request streams in {len(lanes)} lane(s), about {events} events"
seed = {seed}

[platform]
capacity = 0x100000

[[platform.units]]
name = "iommu0"
pasid_bits = 20
queue_entries = 64

[[platform.sets]]
name = "sva"
sva = true
"""
    parts = [_lane(index, steps) for index, steps in enumerate(lanes)]
    return head + "".join("".join(part[k] for part in parts) for k in range(4))
