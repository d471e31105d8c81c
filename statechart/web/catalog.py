"""The machines a server offers: every ``<name>/v<N>.yaml`` of one folder, loaded once.

Requests pick a machine by name and version, which are keys of this catalog, so no request
parameter ever becomes a file path (no path traversal), and a file that does not load is
reported on the page instead of stopping the server.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ..errors import LoadError, StatechartError
from ..machine import Machine, load

__all__ = ["Catalog", "UnknownMachineError", "load_catalog"]

PROBLEMS_PER_FILE = 5


class UnknownMachineError(StatechartError):
    """A request named a machine version the server did not load."""


@attrs.frozen
class Catalog:
    """Loaded machines by (name, version), and the files that failed to load with their reason."""

    folder: str
    machines: dict[tuple[str, int], Machine] = attrs.field(factory=dict)
    problems: tuple[str, ...] = ()

    def get(self, name: str, version: int | None = None) -> Machine:
        """The machine ``name`` at ``version`` (default: its latest loaded version)."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise UnknownMachineError(f"no machine {name!r} in {self.folder} (loaded: {known})")
        chosen = max(versions) if version is None else version
        if chosen not in versions:
            raise UnknownMachineError(f"no version {chosen} of {name!r} in {self.folder} "
                                      f"(versions: {', '.join(map(str, versions))})")
        return self.machines[(name, chosen)]

    def names(self) -> list[str]:
        return sorted({name for name, _ in self.machines})

    def versions(self, name: str) -> list[int]:
        return sorted(version for n, version in self.machines if n == name)


def _machine_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return sorted(folder.glob("*/v*.yaml")) + sorted(folder.glob("*/v*.yml")) + sorted(folder.glob("v*.yaml"))


def load_catalog(folder: str | Path) -> Catalog:
    """Load every machine file under ``folder`` (or the one file ``folder`` names).

    Raises StatechartError when the folder does not exist or holds no machine file at all; a
    file that fails to load becomes problem lines (``file:line:col: what``) and is skipped.
    """
    path = Path(folder)
    if not path.exists():
        raise StatechartError(f"{folder}: no such folder; give the folder of <name>/v<N>.yaml machine files")
    files = _machine_files(path)
    if not files:
        raise StatechartError(f"{folder}: no machine files (<name>/v<N>.yaml) found there")
    machines: dict[tuple[str, int], Machine] = {}
    problems: list[str] = []
    for file in files:
        try:
            machine = load(file)
        except LoadError as error:  # each problem already says file:line:col
            problems.extend(str(problem) for problem in error.problems[:PROBLEMS_PER_FILE])
            if len(error.problems) > PROBLEMS_PER_FILE:
                problems.append(f"{file}: {len(error.problems) - PROBLEMS_PER_FILE} more problems "
                                f"(statechart validate {file} lists them all)")
            continue
        except StatechartError as error:
            problems.append(f"{file}: {error}")
            continue
        key = (machine.name, machine.version)
        if key in machines:
            problems.append(f"{file}: {machine.name} v{machine.version} is already loaded from another file")
            continue
        machines[key] = machine
    return Catalog(str(folder), machines, tuple(problems))
