"""Which Python modules a machine's ``python:`` key may name, and how they are bound.

A machine file is data; the Python modules it names are code. So the loader never imports
whatever a file asks for: it resolves each name to a *file inside an allowed root* first
(by default the machine's project, the folder holding ``machines/``), and only then, if
the caller's policy allows it, imports that file. Stdlib and installed modules (``sys``,
``os``, ``builtins``) are not files of the project, so they can never be named; absolute
paths and paths leaving the root are refused before anything is read.

The policies (the ``python=`` argument of :func:`statechart.load`):

``"project"``
    import the named modules of the machine's project (the default for YAML files).
``"static"``
    resolve the same files, but read them with :mod:`ast` instead of importing them: the
    top-level names are collected so unknown actions and guards are still reported, and
    each is bound to a stand-in that refuses to run. For commands that only read a machine.
``"refuse"``
    any ``python:`` key is a load problem (the default for SCXML documents).
a list of folders
    import named modules found inside any of these folders (an explicit allow-list).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import keyword
import os
import stat
import sys
import types
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence, Union

import attrs

from .errors import PythonNotImportedError
from .quoting import quote_repr

__all__ = ["PythonPolicy", "ModuleRefused", "project_root", "resolve_policy",
           "bind_module", "MAX_MODULE_BYTES"]

#: The ``python=`` argument: a named policy or the folders modules may come from.
PythonPolicy = Union[Literal["project", "static", "refuse"], Sequence[Union[str, "os.PathLike[str]"]]]

#: The largest module file read by the static check (the same bound as SCXML ``src`` files).
MAX_MODULE_BYTES = 1024 * 1024


class ModuleRefused(Exception):
    """A module name the policy does not allow; ``message`` and ``hint`` become a located problem."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@attrs.frozen
class _Policy:
    mode: Literal["import", "static", "refuse"]
    roots: tuple[Path, ...] | None  # None: the machine's project


@attrs.frozen
class _NotImported:
    """Stands for a function the static check found: it has a name, and refuses to run."""

    module: str
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise PythonNotImportedError(self.module, self.name)


def resolve_policy(python: Any, *, default: str) -> _Policy:
    """The ``python=`` argument as a policy; ``None`` means ``default``."""
    python = default if python is None else python
    if python == "project":
        return _Policy("import", None)
    if python in ("static", "refuse"):
        return _Policy(python, None)
    if isinstance(python, (str, bytes)) or not isinstance(python, Iterable):
        raise ValueError(f"python= must be 'project', 'static', 'refuse' or a list of folders, not {python!r}")
    return _Policy("import", tuple(Path(root).resolve() for root in python))


def project_root(folder: Path) -> Path:
    """The project of a machine in ``folder``: the folder holding ``machines/`` when the machine
    is inside one, else ``folder`` itself."""
    folder = folder.resolve()
    for candidate in (folder, *folder.parents):
        if candidate.name == "machines":
            return candidate.parent
    return folder


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _locate(name: str, base_dir: Path, roots: tuple[Path, ...]) -> Path:
    """The file a module name stands for, inside one of ``roots``; raises :class:`ModuleRefused`."""
    try:
        return _locate_file(name, base_dir, roots)
    except (OSError, ValueError) as error:  # a NUL byte, a name too long for the file system, a loop of links
        reason = getattr(error, "strerror", None) or error
        raise ModuleRefused(f"the Python module {quote_repr(name)} cannot be looked up: {reason}",
                            "name a .py file beside the machine file or a dotted module of the project") from None


def _locate_file(name: str, base_dir: Path, roots: tuple[Path, ...]) -> Path:
    where = " or ".join(str(root) for root in roots)
    if name.endswith(".py"):
        if Path(name).is_absolute() or name.startswith(("/", "\\", "~")):
            raise ModuleRefused(f"the Python module {quote_repr(name)} is an absolute path",
                                "name a .py file relative to the machine file, inside its project")
        path = (base_dir / name).resolve()  # symlinks resolved: a link cannot lead outside
        if not any(_inside(path, root) for root in roots):
            raise ModuleRefused(f"the Python module {quote_repr(name)} is outside the project ({where})",
                                "only modules inside the machine's project can be named; pass "
                                "python=[folder, ...] to statechart.load() to allow another folder")
        if not path.is_file():
            raise ModuleRefused(f"there is no file {quote_repr(name)} in {base_dir}",
                                "a .py file is looked up in the folder of the machine file")
        return path
    parts = name.split(".")
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        raise ModuleRefused(f"{quote_repr(name)} is not a module name",
                            "a dotted module (myapp.actions) or a .py file beside the machine file (actions.py)")
    for root in roots:
        for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
            resolved = candidate.resolve()
            if candidate.is_file() and _inside(resolved, root):
                return resolved
    raise ModuleRefused(f"{quote_repr(name)} is not a module of the project ({where})",
                        "a dotted name must be a module file inside the project (myapp/actions.py); stdlib and "
                        "installed modules (sys, os, builtins ...) cannot be named")


def _read_source(path: Path) -> str:
    """A module file's text for the static check: a regular file, at most MAX_MODULE_BYTES, UTF-8."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ModuleRefused(f"{path} is not a regular file", "name a .py file")
    with path.open("rb") as handle:
        data = handle.read(MAX_MODULE_BYTES + 1)
    if len(data) > MAX_MODULE_BYTES:
        raise ModuleRefused(f"{path} is larger than {MAX_MODULE_BYTES} bytes", "split the module")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleRefused(f"{path} is not UTF-8 text", "a Python module is UTF-8 text") from None


def top_level_names(source: str) -> list[str]:
    """Names a module defines at top level, as far as can be told without running it: functions,
    classes, imported names and assigned names (an assignment may hold a callable)."""
    tree = ast.parse(source)
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.extend(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _static(name: str, path: Path) -> types.SimpleNamespace:
    source = _read_source(path)
    try:
        names = top_level_names(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        line = getattr(error, "lineno", None)
        raise ModuleRefused(f"cannot read Python module {quote_repr(name)}: invalid syntax"
                            + (f" at line {line}" if line else ""), f"fix {path}") from None
    return types.SimpleNamespace(**{n: _NotImported(name, n) for n in names if not n.startswith("_")})


def _import(name: str, path: Path) -> Any:
    """Import the module file (the host's own import of it when it already has one)."""
    if not name.endswith(".py"):
        existing = sys.modules.get(name)
        existing_file = getattr(existing, "__file__", None)
        if existing_file and Path(existing_file).resolve() == path:
            return existing
    module_name = f"statechart_user_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a spec
        raise ModuleRefused(f"cannot import {quote_repr(name)}", "name a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def bind_module(name: str, base_dir: Path, policy: _Policy) -> Any:
    """The module object (or its static stand-in) for ``name``; raises :class:`ModuleRefused`
    when the policy does not allow it, and whatever the module raises while it is imported."""
    if policy.mode == "refuse":
        raise ModuleRefused(f"the machine names the Python module {quote_repr(name)}, and Python modules are "
                            "not allowed here",
                            "a caller that trusts this machine passes python='project' to statechart.load() "
                            "(CLI: --allow-python)")
    roots = policy.roots if policy.roots is not None else (project_root(base_dir),)
    path = _locate(name, base_dir, roots)
    if policy.mode == "static":
        return _static(name, path)
    return _import(name, path)
