"""Migration steps found by name: ``migrations/<machine>/v<N>_to_v<N+1>.py``.

A step is ordinary Python a reviewer reads in a minute: ``map_state(instance)`` (or a plain
``STATES = {old_id: new_id_or_list}`` table) and, when the data changes shape, ``map_data(instance)``.
``TIMERS = "keep"`` (the default) or ``"cancel"`` says what happens to pending delayed sends.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any, Callable, Mapping

import attrs

from ..errors import StatechartError

__all__ = ["MigrationError", "InstanceView", "Step", "load_chain", "load_step", "TODO"]

STEP_FILE = re.compile(r"^v(\d+)_to_v(\d+)\.py$")
#: The value ``makemigration`` writes for a state a person must decide about; ``check`` fails on it.
TODO = "TODO"


class MigrationError(StatechartError):
    """A migration chain or step that cannot be used as written."""


@attrs.frozen
class InstanceView:
    """What a step sees of the old instance: read-only (data is a private deep copy)."""

    id: str
    machine: str
    version: int
    configuration: frozenset[str]
    history: Mapping[str, frozenset[str]]
    data: dict[str, Any]
    leaves: frozenset[str] = frozenset()  # the active states with no active child


@attrs.frozen
class Step:
    machine: str
    from_version: int
    to_version: int
    path: Path
    map_state: Callable[[InstanceView], Any] | None
    states: Mapping[str, Any] | None
    map_data: Callable[[InstanceView], Any] | None
    timers: str

    @property
    def name(self) -> str:
        return f"{self.machine} v{self.from_version} -> v{self.to_version}"


def _import(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"statechart_migration_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise MigrationError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the author's code: report it, with where
        del sys.modules[module_name]
        raise MigrationError(f"{path}: importing the step failed: {type(error).__name__}: {error}") from None
    return module


def load_step(path: Path, machine: str) -> Step:
    match = STEP_FILE.match(path.name)
    if not match:
        raise MigrationError(f"{path}: a step file is named v<N>_to_v<N+1>.py")
    old, new = int(match.group(1)), int(match.group(2))
    if new != old + 1:
        raise MigrationError(f"{path}: a step goes from one version to the next (v{old}_to_v{old + 1}.py)")
    module = _import(path)
    map_state = getattr(module, "map_state", None)
    states = getattr(module, "STATES", None)
    if map_state is None and states is None:
        raise MigrationError(f"{path}: define map_state(instance) or a STATES = {{old: new}} table")
    if map_state is not None and states is not None:
        raise MigrationError(f"{path}: define map_state or STATES, not both")
    if map_state is not None and not callable(map_state):
        raise MigrationError(f"{path}: map_state must be a function of the old instance")
    if states is not None and not isinstance(states, Mapping):
        raise MigrationError(f"{path}: STATES must be a mapping of old state id -> new id or list of ids")
    for key, value in (states or {}).items():
        if not isinstance(key, str):
            raise MigrationError(f"{path}: STATES keys are old state ids (strings), not {key!r}")
        if not isinstance(value, str) and not (isinstance(value, (list, tuple)) and value
                                               and all(isinstance(v, str) for v in value)):
            raise MigrationError(f"{path}: STATES[{key!r}] must be a state id or a list of state ids, not {value!r}")
    map_data = getattr(module, "map_data", None)
    if map_data is not None and not callable(map_data):
        raise MigrationError(f"{path}: map_data must be a function of the old instance")
    timers = getattr(module, "TIMERS", "keep")
    if timers not in ("keep", "cancel"):
        raise MigrationError(f"{path}: TIMERS must be 'keep' or 'cancel', not {timers!r}")
    return Step(machine, old, new, path, map_state, MappingProxyType(dict(states)) if states is not None else None,
                map_data, timers)


def load_chain(machine: str, migrations: str | Path = "migrations") -> list[Step]:
    """Every step of ``machine``, in version order; gaps are an error (a chain must be walkable).

    Every ``*.py`` file of ``migrations/<machine>/`` not starting with ``_`` must be a step: a
    misnamed step is an error, not silently skipped."""
    folder = Path(migrations) / machine
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    steps = sorted((load_step(p, machine) for p in files), key=lambda s: s.from_version)
    for previous, following in zip(steps, steps[1:]):
        if following.from_version == previous.from_version:
            raise MigrationError(f"{folder}: two steps from v{previous.from_version}: {previous.path.name} and "
                                 f"{following.path.name}")
        if following.from_version != previous.to_version:
            raise MigrationError(f"{folder}: the chain has a gap between v{previous.to_version} and "
                                 f"v{following.from_version}")
    return steps
