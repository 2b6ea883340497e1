"""A churn's generated processes, as ranges of names rather than one entry per process.

``processes = true`` makes each bind come from a fresh process ``<prefix>proc<n>`` (a new
``mm``: a new owner, whose PASID may reuse a number an exited one freed) that exits after
its unbind. A generator may stand for 65,536 of them and a file for millions, so neither
the loader nor a replay declares them one by one: a churn declares a range
(:class:`~ioasid_core.scenario.schema.GeneratedProcesses`), a name is recognised by its
shape, and a replay makes a process's address space at its first bind and lets it go when
it exits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from ioasid_core.scenario.schema import GeneratedProcesses

__all__ = ["ProcessNames", "WithProcesses", "split_process_name"]

_MARK = "proc"


def split_process_name(name: str) -> tuple[str, int] | None:
    """(prefix, n) when ``name`` is spelt ``<prefix>proc<n>`` (``n`` in decimal without
    leading zeros), else None. The split is unique: the digits end the name and ``proc``
    is not digits, so two ranges with different prefixes never share a name."""
    prefix, mark, digits = name.rpartition(_MARK)
    if not mark or not digits.isascii() or not digits.isdigit():
        return None
    if len(digits) > 1 and digits[0] == "0":
        return None
    return prefix, int(digits)


class ProcessNames(Collection[str]):
    """The generated processes' names: each churn's range, by prefix (one range a prefix)."""

    __slots__ = ("by_prefix",)

    def __init__(self, ranges: tuple[GeneratedProcesses, ...] = ()) -> None:
        self.by_prefix: dict[str, GeneratedProcesses] = {r.prefix: r for r in ranges}

    def add(self, processes: GeneratedProcesses) -> None:
        self.by_prefix[processes.prefix] = processes

    def find(self, name: object) -> tuple[GeneratedProcesses, int] | None:
        """The range ``name`` is in and its number in it, or None."""
        if not isinstance(name, str):
            return None
        split = split_process_name(name)
        if split is None:
            return None
        processes = self.by_prefix.get(split[0])
        if processes is None or split[1] >= processes.count:
            return None
        return processes, split[1]

    def where(self, name: str) -> str | None:
        """The key path of the generator that makes process ``name``, or None."""
        found = self.find(name)
        return None if found is None else found[0].where

    def ranges(self) -> tuple[GeneratedProcesses, ...]:
        return tuple(self.by_prefix.values())

    def __contains__(self, name: object) -> bool:
        return self.find(name) is not None

    def __len__(self) -> int:
        return sum(r.count for r in self.by_prefix.values())

    def __iter__(self) -> Iterator[str]:
        for processes in self.by_prefix.values():
            yield from map(processes.name, range(processes.count))


class WithProcesses(Collection[str]):
    """Some declared names and the generated processes, as one collection (a view: nothing
    is copied): every address space a step may name, or every owner."""

    __slots__ = ("declared", "processes")

    def __init__(self, declared: Collection[str], processes: ProcessNames) -> None:
        self.declared = declared
        self.processes = processes

    def __contains__(self, name: object) -> bool:
        return name in self.declared or name in self.processes

    def __len__(self) -> int:
        return len(self.declared) + len(self.processes)

    def __iter__(self) -> Iterator[str]:
        yield from self.declared
        yield from self.processes
