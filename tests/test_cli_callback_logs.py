"""A plugin whose hook raises inside the space: the command names the failure once, escaped,
and the space's own log of it (a traceback, for library users) stays off the terminal."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner

from ioasid_core.cli import cli
from ioasid_core.markers import hookimpl
from ioasid_core.sets import IoasidSet
from ioasid_core.space import IoasidSpace

if TYPE_CHECKING:
    from plugin_fakes import FakeEntryPoint
else:
    from tests.plugin_fakes import FakeEntryPoint

ROOT = Path(__file__).resolve().parent.parent


class SetBreaker:
    """Raises when a set is made: the space makes it, logs the failure, raises its group."""

    @hookimpl
    def ioasid_set_created(self, space: IoasidSpace, set: IoasidSet) -> None:
        raise RuntimeError("tracer broke")


# The real console script's process, with one fake plugin added to the installed ones (as
# the ``install`` fixture does in-process).
_SCRIPT = textwrap.dedent(
    """
    import importlib.metadata as md, sys
    sys.path.insert(0, {root!r})
    from tests.plugin_fakes import FakeEntryPoint
    from tests.test_cli_callback_logs import SetBreaker
    real = md.entry_points
    def entry_points(*, group):
        found = list(real(group=group))
        return [*found, FakeEntryPoint("breaker", SetBreaker())] if group == "ioasid" else found
    md.entry_points = entry_points
    from ioasid_core.cli import main
    sys.argv = ["ioasid", *sys.argv[1:]]
    main()
    """
)


def test_a_raising_hook_is_named_once_without_the_spaces_traceback() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT.format(root=str(ROOT)),
            "compare",
            "null-set-search",
            "--vendors",
            "generic",
            "--policies",
            "set",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("tracer broke") == 1
    assert "raised by ioasid plugin 'breaker' in hook 'ioasid_set_created'" in done.stderr
    # Every run failed: no empty table with a caption naming no vendor.
    assert done.stdout == "scenario: null-set-search: no run finished (see standard error)\n"


def test_the_space_logs_again_after_a_command(install: Callable[..., None]) -> None:
    install(FakeEntryPoint("breaker", SetBreaker()))
    logger = logging.getLogger("ioasid_core.space")
    assert logger.isEnabledFor(logging.WARNING)
    result = CliRunner().invoke(cli, ["compare", "null-set-search", "--vendors", "generic"])
    assert result.exit_code == 1
    assert logger.isEnabledFor(logging.WARNING)  # a library user of the process keeps it
