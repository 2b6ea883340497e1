"""What every test directory shares: the core's, the plugins' and the example plugin's.

The suite runs in the environment CI gives it, whatever the caller's shell exports: without
``$COLUMNS`` and ``$LINES`` (a width exported for a terminal narrowed rich's tables, in the
test process and in the commands the tests start: lines the tests read whole wrapped),
``$FORCE_COLOR`` and ``$NO_COLOR`` (escape codes in text compared as plain), rich's
``$TTY_COMPATIBLE`` and ``$TTY_INTERACTIVE``, and the plugins blocked by
``$IOASID_BLOCK_PLUGINS`` (every plugin is under test). A test that needs one sets it.

Hypothesis runs without a deadline. Its default fails an example that takes longer than
200 ms, and a machine whose cores other jobs share stalls a run that long now and then (a
``Flaky`` or ``DeadlineExceeded`` that says nothing about the code); the project measures
speed in ``ioasid bench``, never in a unit test. For the same reason the ``too_slow`` health
check, which times the drawing of examples, is off.

In CI (``CI`` set, as ``.ci/run`` runs) the profile is Hypothesis' own ``ci``: the same
settings, and derandomized besides, with no example database: every run draws the same
examples, so CI fails only on a real failure, found again every run, never on a new draw;
the blob to reproduce a failure is printed. Elsewhere the draws stay random (and failing
examples are kept in ``.hypothesis/``), so developers' runs keep exploring.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CALLERS_ONLY = (
    "COLUMNS",
    "LINES",
    "FORCE_COLOR",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "IOASID_BLOCK_PLUGINS",
)
"""What a developer's environment may hold and CI's does not, each changing what a command
prints or loads."""

for name in CALLERS_ONLY:
    os.environ.pop(name, None)

settings.register_profile("ioasid-dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "ioasid-dev")
