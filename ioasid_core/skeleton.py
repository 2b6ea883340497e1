"""``ioasid new-plugin NAME``: write a vendor plugin's skeleton that installs out of tree.

The skeleton is small but complete: a pyproject with the ``ioasid`` entry point and no
workspace paths (so it installs from anywhere into an environment that has the core), a
vendor with a 20-byte queue format written once as a fast row codec, and tests that run the
conformance kit with a golden vector derived by hand. Replace the format with your
hardware's; docs/writing-a-plugin.md walks through each part.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from string import Template
from typing import Final

import click

from ioasid_core.printable import printable

__all__ = ["NAME_PATTERN", "new_plugin_command", "skeleton_files", "write_skeleton"]

NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""A plugin name: a Python identifier in lower case, at most 40 characters."""

_PYPROJECT = """\
[project]
name = "$dist"
version = "0.1.0"
description = "An ioasid vendor plugin: $name"
requires-python = ">=3.11"
dependencies = ["ioasid-core>=0.1,<0.2"]

# How ioasid finds the plugin: group "ioasid", entry-point name = the plugin's name.
[project.entry-points.ioasid]
$name = "$package.plugin"

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["$package"]
"""

_README = """\
# $dist

An ioasid vendor plugin (vendor `$vendor`), written by `ioasid new-plugin $name`.

Install it into the environment that has ioasid (from the ioasid checkout):

    uv pip install -e $$PATH_TO_THIS_DIRECTORY
    uv run ioasid plugins
    uv run ioasid compare null-set-search --vendors $vendor
    uv run pytest $$PATH_TO_THIS_DIRECTORY/tests

Later syncs must keep it: `uv sync --all-packages --inexact` (a plain `uv sync` removes
packages the lock file does not list). See docs/writing-a-plugin.md in ioasid.
"""

_INIT = '''\
"""The $vendor vendor plugin for ioasid."""

from $package.vendor import ${cls}

__all__ = ["${cls}"]
'''

_PLUGIN = '''\
"""The hook implementations: wiring only (the entry point ``$name`` loads this module)."""

from __future__ import annotations

from collections.abc import Sequence

from ioasid_core.plugin import VendorInfo, VendorPrq, hookimpl

from $package.vendor import ${cls}


@hookimpl
def ioasid_vendor_info() -> VendorInfo:
    """Say what this plugin drives (``ioasid plugins``)."""
    return VendorInfo(name="$vendor", description="$vendor (replace with your hardware)")


@hookimpl
def ioasid_prq_vendors() -> Sequence[VendorPrq]:
    """Hand the page-request codec and rules to the core once; it calls them per batch."""
    return [${cls}()]
'''

_VENDOR = '''\
"""The $vendor page-request queue: its entry format and its handler's rules.

Entry (20 bytes, little-endian; replace with your hardware's layout):

    u32 device   the source ID
    u32 pasid    0 unless PASID_VALID
    u16 grpid    the page request group
    u16 flags    PASID_VALID b0, LAST b1, perm b5:2 (READ, WRITE, EXEC, PRIV); b15:6 reserved
    u64 addr

Response (8 bytes): u32 device, u16 grpid, u16 code (SUCCESS 0, INVALID 1, FAILURE 2).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from ioasid_core.plugin import (
    INVALID_IOASID,
    AddressSpace,
    Buffer,
    DecodeError,
    EncodeError,
    LookupPolicy,
    Perm,
    RequestRow,
    ResponseRow,
    RowCheck,
    RowVendorMixin,
    byte_view,
)

_ENTRY: Final = struct.Struct("<IIHHQ")
_RESPONSE: Final = struct.Struct("<IHH")
_PERMS: Final = tuple(Perm(bits) for bits in range(16))
_RESERVED: Final = 0xFFC0


class ${cls}(RowVendorMixin):
    """Vendor "$vendor": written once, on rows (plain tuples in ``PageRequest`` field
    order); ``RowVendorMixin`` derives the object methods from these."""

    name = "$vendor"
    entry_size = _ENTRY.size
    default_policy = LookupPolicy.SET
    expected: type | tuple[type, ...] = AddressSpace
    row_check: RowCheck | None = None
    """No checks of its own before the lookup (so no call per request). Your driver's
    checks: a module-level function of one ``RequestRow`` returning a ``CheckResult``
    (None: look it up; a ``ResponseCode``; a ``Verdict``), set as
    ``row_check: RowCheck | None = staticmethod(my_check)`` (not a method: mypy then
    refuses the object path's ``check``; a function pickles for ``--jobs``)."""

    def encode_request_rows(self, rows: Sequence[RequestRow]) -> bytes:
        out: list[bytes] = []
        for device, pasid, valid, grpid, last, perm, addr, _needs, _private in rows:
            flags = valid | last << 1 | perm << 2
            try:
                out.append(_ENTRY.pack(device, pasid if valid else 0, grpid, flags, addr))
            except struct.error as exc:
                raise EncodeError(f"$vendor entry: a field does not fit: {exc}") from None
        return b"".join(out)

    def decode_rows(self, data: Buffer) -> list[RequestRow]:
        data = byte_view(data)  # a ring mapped as 64-bit words still counts in bytes here
        size = _ENTRY.size
        if len(data) % size:
            raise DecodeError("$vendor entry", f"{len(data)} bytes: not whole {size}-byte entries")
        rows: list[RequestRow] = []
        for index, (device, pasid, grpid, flags, addr) in enumerate(_ENTRY.iter_unpack(data)):
            valid = flags & 1 == 1
            if flags & _RESERVED or (pasid and not valid):
                raise DecodeError("$vendor entry", f"bad flags {flags:#06x}", offset=index * size)
            perm = _PERMS[flags >> 2 & 0xF]
            row = (device, pasid if valid else INVALID_IOASID, valid, grpid, flags & 2 == 2)
            rows.append((*row, perm, addr, False, None))
        return rows

    def encode_response_rows(self, rows: Sequence[ResponseRow]) -> bytes:
        return b"".join(_RESPONSE.pack(device, grpid, code) for device, grpid, code, *_ in rows)
'''

_TESTS = '''\
"""The $vendor vendor through the core's conformance kit, and through ``ioasid`` itself."""

from __future__ import annotations

from ioasid_core.plugin import PageRequest, PageResponse, Perm, ResponseCode
from ioasid_core.testing import (
    GoldenRequest,
    GoldenResponses,
    assert_conforms,
    invoke_cli,
    new_plugin_manager,
)

from $package import ${cls}

# device 0x42, PASID 0x1234, group 5, last, read+write of 0x7000:
#   flags = PASID_VALID 1 | LAST 1 << 1 | (READ | WRITE = 3) << 2 = 0x0f
#   42000000 | 34120000 | 0500 | 0f00 | 0070000000000000
READ_WRITE = PageRequest(
    device=0x42, pasid=0x1234, pasid_valid=True, grpid=5, perm=Perm.READ | Perm.WRITE, addr=0x7000
)
READ_WRITE_HEX = "42000000 34120000 0500 0f00 0070000000000000"
SUCCESS = PageResponse(device=0x42, grpid=5, code=ResponseCode.SUCCESS)


def test_the_vendor_conforms() -> None:
    samples = [
        READ_WRITE,
        PageRequest(device=7, grpid=9, last=False, perm=Perm.WRITE, addr=0x2000),
        PageRequest(device=7, grpid=9, perm=Perm.NONE),  # a stop marker
    ]
    assert_conforms(
        ${cls}(),
        requests=samples,
        responses=[SUCCESS],
        golden=[GoldenRequest(READ_WRITE, READ_WRITE_HEX)],
        golden_responses=[GoldenResponses((SUCCESS,), "42000000 0500 0000")],
    )


def test_the_plugin_is_found_through_its_entry_point() -> None:
    host = new_plugin_manager()
    assert "$name" in {plugin.name for plugin in host.loaded}
    assert isinstance(host.hooks.prq_vendors()["$vendor"], ${cls})


def test_compare_runs_it() -> None:
    result = invoke_cli("compare", "null-set-search", "--vendors", "$vendor")
    assert result.exit_code == 0, result.stderr
'''


def skeleton_files(name: str) -> dict[str, str]:
    """The skeleton's files for plugin ``name`` (checked by the caller), by relative path."""
    package = f"ioasid_{name}"
    values = {
        "name": name,
        "vendor": name.replace("_", "-"),
        "dist": f"ioasid-{name.replace('_', '-')}",
        "package": package,
        "cls": "".join(part.capitalize() for part in name.split("_")) + "Prq",
    }
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{package}/__init__.py": _INIT,
        f"{package}/plugin.py": _PLUGIN,
        f"{package}/vendor.py": _VENDOR,
        f"{package}/py.typed": "",
        f"tests/test_{name}.py": _TESTS,
    }
    return {path: Template(text).substitute(values) for path, text in files.items()}


def write_skeleton(name: str, dest: Path) -> list[Path]:
    """Write the skeleton into ``dest`` (which must not exist); the paths written.

    ``ValueError`` for a bad name, ``FileExistsError`` if ``dest`` exists: nothing is
    written then.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"plugin name {name!r}: expected a lower-case identifier of at most 40 characters "
            "(letters, digits, '_'; a letter first)"
        )
    files = skeleton_files(name)
    dest.mkdir(parents=True, exist_ok=False)
    written = []
    for relative, text in files.items():
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


@click.command(name="new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write it (must not exist). Default: ./ioasid-NAME.",
)
def new_plugin_command(name: str, directory: str | None) -> None:
    """Write a vendor plugin skeleton NAME: pyproject, package, tests using the kit."""
    dest = Path(directory if directory is not None else f"ioasid-{name.replace('_', '-')}")
    try:
        written = write_skeleton(name, dest)
    except ValueError as exc:
        click.echo(f"ioasid: {exc}", err=True)
        raise click.exceptions.Exit(2) from exc
    except FileExistsError as exc:
        where = printable(str(dest))  # a typed path: its escape sequences shown, not run
        click.echo(f"ioasid: {where}: exists already; choose another --dir", err=True)
        raise click.exceptions.Exit(2) from exc
    except OSError as exc:
        where = printable(str(dest))
        click.echo(f"ioasid: {where}: cannot write it: {exc.strerror or exc}", err=True)
        raise click.exceptions.Exit(2) from exc
    for path in written:
        click.echo(f"wrote {printable(str(path))}")
    # Absolute: the install runs from the ioasid checkout, wherever this ran. Quoted for
    # the shell: a folder with a space in it is still one argument when pasted.
    absolute = printable(shlex.quote(str(dest.resolve())))
    click.echo(f"next, from the ioasid checkout: uv pip install -e {absolute}")
    click.echo("then: uv run ioasid plugins (see its README.md)")
