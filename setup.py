"""Build hook: ship the example project (``machines/`` and ``migrations/``) inside the package.

The examples live once, at the top of the repository, where the README and the docs point; a
wheel copies them to ``statechart/example_project/`` so ``statechart demo`` works from any
directory after ``pip install statechart``. Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLES = ("machines", "migrations")


class build_py_with_examples(build_py):  # noqa: N801 - setuptools command naming
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the examples from the checkout itself
            return
        target = Path(self.build_lib) / "statechart" / "example_project"
        for folder in EXAMPLES:
            shutil.rmtree(target / folder, ignore_errors=True)
            shutil.copytree(folder, target / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": build_py_with_examples})
