"""How CLI commands load machines: the options that decide what loading may do.

Commands that only read a machine (validate, check, paths, render, diff, export, import,
makemigration) load it with ``python="static"``: the ``python:`` modules are read with
:mod:`ast` so unknown action and guard names are still reported, but nothing is imported
unless ``--allow-python`` is given. Commands that run machines (run, fuzz, the store
commands, demo, migrate, migrations check) import the project's modules as a host program
would. SCXML ``src`` files are read only from ``--src-dir``.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from ..scxml_sources import MAX_SRC_BYTES

__all__ = ["allow_python_option", "read_only_policy", "src_options"]


def allow_python_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--allow-python``: import the machine's project modules instead of only reading them."""
    return click.option(
        "--allow-python", is_flag=True,
        help="Import the Python modules the machine names (python:). By default they are only read "
             "(to check action and guard names) and never run.")(function)


def read_only_policy(allow_python: bool) -> str:
    """The ``python=`` policy of a command that only reads machines."""
    return "project" if allow_python else "static"


def src_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--src-dir`` and ``--max-src-bytes``: where SCXML ``src`` attributes may read files."""
    function = click.option(
        "--max-src-bytes", type=click.IntRange(min=0), default=MAX_SRC_BYTES, show_default=True, metavar="N",
        help="The largest file an SCXML src may read.")(function)
    return click.option(
        "--src-dir", type=click.Path(exists=True, file_okay=False), metavar="DIR",
        help="Let SCXML <data src> and <script src> read regular files inside DIR (refused without it).")(function)
