"""What every test directory shares: the core's, the plugins' and the example plugin's.

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

settings.register_profile("ioasid-dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "ioasid-dev")
