"""Where the example project (``machines/`` and ``migrations/``) is, however statechart was installed.

The examples are kept once, at the top of the repository. A wheel carries a copy in
``statechart/example_project/`` (setup.py's build hook puts it there); an editable install or a
source checkout reads them where they are.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["examples_root", "EXAMPLE_FOLDERS"]

EXAMPLE_FOLDERS = ("machines", "migrations")


def examples_root() -> Path:
    """The folder holding the example ``machines/`` and ``migrations/``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "example_project", package.parent):
        if all((candidate / folder).is_dir() for folder in EXAMPLE_FOLDERS):
            return candidate
    raise FileNotFoundError(
        f"the example machines are missing from this installation ({package / 'example_project'}); "
        "reinstall statechart from a wheel or a source checkout")
