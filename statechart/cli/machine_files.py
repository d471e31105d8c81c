"""Where the migration commands find their files: ``machines/<name>/v<N>.yaml`` and ``migrations/<name>/``.

``statechart diff``, ``makemigration``, ``migrate``, ``migrations check/status`` and ``review`` all
read the same two folders; the options that name them, the lookup of a machine's versions and the
loading of one version (which reports every problem and exits 1, never a traceback) live here so
each command module uses one public helper instead of another command module's private names.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from ..errors import LoadError
from ..machine import Machine, load
from ..migrate.chain import MigrationError

__all__ = ["VERSION_FILE", "machines_option", "migrations_option", "explicit_folder", "machine_versions",
           "load_machine_file"]

#: The name of one version of a machine in its folder: ``v3.yaml`` or ``v3.yml``.
VERSION_FILE = re.compile(r"^v(\d+)\.ya?ml$")


def migrations_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--migrations DIR``: the folder of ``migrations/<name>/v<N>_to_v<N+1>.py`` steps."""
    return click.option("--migrations", "migrations_dir", default="migrations", show_default=True, metavar="DIR",
                        help="Folder of migrations/<name>/v<N>_to_v<N+1>.py steps.")(command)


def machines_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--machines DIR``: the folder of ``machines/<name>/v<N>.yaml`` files."""
    return click.option("--machines", "machines_dir", default="machines", show_default=True, metavar="DIR",
                        help="Folder of machines/<name>/v<N>.yaml files.")(command)


def explicit_folder(name: str, value: str) -> None:
    """Refuse a folder given on the command line that does not exist (the defaults may be absent,
    so that a command run outside a project says which machine is missing instead)."""
    context = click.get_current_context()
    if context.get_parameter_source(name) is not ParameterSource.DEFAULT and not Path(value).is_dir():
        raise click.BadParameter(f"{value!r} is not a folder", param_hint=f"'--{name.removesuffix('_dir')}'")


def machine_versions(machines_dir: str, name: str) -> dict[int, Path]:
    """Every ``machines/<name>/v<N>.yaml`` by version, oldest first.

    Raises :class:`MigrationError` naming the folder looked in (and the machines that are there)
    when there is none.
    """
    explicit_folder("machines_dir", machines_dir)
    folder = Path(machines_dir) / name
    found = {int(m.group(1)): p for p in sorted(folder.glob("v*.y*ml")) if (m := VERSION_FILE.match(p.name))}
    if not found:
        known = sorted(p.name for p in Path(machines_dir).glob("*") if p.is_dir())
        raise MigrationError(f"no machine {name!r} in {machines_dir}/ (no {folder}/v<N>.yaml files"
                             + (f"; machines there: {', '.join(known)})" if known else ")"))
    return dict(sorted(found.items()))


def load_machine_file(path: Path, python: str = "project") -> Machine:
    """Load one machine file for a command; when it does not load, print every problem to stderr
    and exit 1 (a user error, so no traceback)."""
    try:
        return load(path, python=python)
    except LoadError as error:
        click.echo(click.style("FAIL ", fg="red", bold=True) + f"{path} does not load:", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        raise click.exceptions.Exit(1) from None
