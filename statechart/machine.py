"""Loading a machine file and the :class:`Machine` handle that starts and restores instances."""

from __future__ import annotations

import contextlib
import gc
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .clock import Clock, SystemClock
from .compile import compile_machine
from .errors import DefinitionMismatchError, IllegalSnapshotError, LoadError, PayloadError, Problem
from .instance import Instance
from .jsonvalues import JSONValueError, json_value
from .legality import LegalityCache, legal_configuration_problems, snapshot_problems
from .interpreter import DEFAULT_MICROSTEP_LIMIT, ActionContext, Engine, Status, system_variables
from .model import ROOT, MachineModel, State
from .snapshot import Snapshot
from .python_modules import PythonPolicy
from .scxml_sources import MAX_SRC_BYTES
from .yaml_loader import parse_yaml

__all__ = ["Machine", "load", "loads", "loads_scxml", "legal_configuration_problems"]


class Machine:
    """A compiled machine version: immutable, shareable, and the factory of its instances."""

    def __init__(self, model: MachineModel, *, microstep_limit: int = DEFAULT_MICROSTEP_LIMIT) -> None:
        self.model = model
        self.engine = Engine(model, microstep_limit=microstep_limit)
        #: What :func:`statechart.legality.snapshot_problems` needs to check a snapshot of this version
        #: (restore, and the migration runner before it moves a stored row).
        self.legality = LegalityCache(model)
        #: (state id, text, compiled expression) of every invariant, for checked mode; ROOT = the machine's.
        self.invariants = tuple((sid, s.invariant, s.invariant_check) for sid, s in model.states.items()
                                if s.invariant_check is not None)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> int:
        return self.model.version

    @property
    def definition_hash(self) -> str:
        return self.model.definition_hash

    @property
    def states(self) -> Mapping[str, State]:
        """Every state by id, in document order (the implicit root excluded)."""
        return {sid: s for sid, s in self.model.states.items() if sid != ROOT}

    def __repr__(self) -> str:
        return f"<Machine {self.name} v{self.version} ({len(self.model.states) - 1} states)>"

    def start(self, data: Mapping[str, Any] | None = None, *, clock: Clock | None = None, strict: bool = False,
              checked: bool = False,
              session_id: str | None = None) -> Instance:
        """Create an instance: initial data (overridden by ``data``), then the initial macrostep."""
        clock = clock or SystemClock()
        session_id = session_id or uuid.uuid4().hex
        system = system_variables(self.name, session_id)
        ctx = ActionContext(self.model, {}, system, clock.now(), (), 0)
        self.model.initial_data(ctx)
        if data:
            try:
                ctx.data.update(json_value(dict(data), "start data"))
            except JSONValueError as error:
                raise PayloadError(f"cannot start {self.name!r}: {error}") from None
        status, record, ctx = self.engine.start(ctx)
        return Instance.started(self, status, record, ctx, clock, strict, session_id, checked)

    def restore(self, snapshot: Snapshot | Mapping[str, Any] | str, *, clock: Clock | None = None,
                strict: bool = False, checked: bool = False) -> Instance:
        """Continue an instance from a snapshot; runs no action. The definition must be the same.

        The snapshot is data from outside: it must describe an instance that can exist (a legal
        configuration, history values inside their parents, well-formed pending sends, exact field
        types, JSON data), otherwise :class:`IllegalSnapshotError` lists what is wrong."""
        if isinstance(snapshot, str):
            snapshot = Snapshot.from_json(snapshot)
        elif not isinstance(snapshot, Snapshot):
            snapshot = Snapshot.from_dict(snapshot)
        if snapshot.machine != self.name or snapshot.definition_hash != self.definition_hash:
            raise DefinitionMismatchError(snapshot.machine, snapshot.version, snapshot.definition_hash,
                                          self.version, self.definition_hash)
        problems, data = snapshot_problems(self.legality, snapshot)
        if problems:
            raise IllegalSnapshotError(problems, machine=f"{self.name} v{self.version}")
        assert data is not None
        status = Status(snapshot.configuration, dict(snapshot.history), data,
                        tuple(sorted(snapshot.pending_sends, key=lambda p: (p.due, p.seq))),
                        snapshot.done, snapshot.send_counter, snapshot.bound_states)
        session_id = snapshot.session_id or uuid.uuid4().hex
        return Instance(self, status, clock or SystemClock(), strict, session_id, checked)

    def is_legal(self, configuration: frozenset[str]) -> list[str]:
        """Why ``configuration`` is not a legal configuration of this machine ([] when it is)."""
        return legal_configuration_problems(self.model, configuration)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a chart is read and compiled.

    Loading allocates tens of thousands of long-lived objects (parser events, located
    values, marks, the model) and creates no reference cycles worth collecting; the
    collector's generational passes kept rescanning them as they were built, which made a
    5,000-state chart take twice as long per state as a 1,000-state one. Reentrant, and the
    collector resumes even when loading raises."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def loads(text: str, file: str = "<string>", *, actions: Mapping[str, Callable] | None = None,
          guards: Mapping[str, Callable] | None = None, base_dir: str | Path | None = None,
          microstep_limit: int = DEFAULT_MICROSTEP_LIMIT, python: PythonPolicy | None = None) -> Machine:
    """Compile machine YAML text; raises :class:`LoadError` with every problem located.

    ``python`` decides what the machine's ``python:`` modules may be (see docs/security.md):
    ``"project"`` (the default) imports modules of the machine's project only, the folder
    holding ``machines/``; ``"static"`` checks the names they define without importing them;
    ``"refuse"`` refuses the key; a list of folders imports modules from those folders only.
    """
    with _collector_paused():
        document, problems = parse_yaml(text, file)
        model = compile_machine(document, file, actions=actions, guards=guards, parse_problems=problems,
                                base_dir=Path(base_dir) if base_dir else Path(file).parent,
                                python=python if python is not None else "project")
        return Machine(model, microstep_limit=microstep_limit)


def load(path: str | Path, *, actions: Mapping[str, Callable] | None = None,
         guards: Mapping[str, Callable] | None = None, microstep_limit: int = DEFAULT_MICROSTEP_LIMIT,
         python: PythonPolicy | None = None, src_dir: str | Path | None = None,
         max_src_bytes: int = MAX_SRC_BYTES) -> Machine:
    """Load and compile ``machines/<name>/v<N>.yaml`` (or an ``.scxml`` document); raises
    :class:`LoadError` on any problem.

    ``python`` is the module policy of :func:`loads`; by default a YAML file may import its
    project's modules and an SCXML document may import none. ``src_dir`` and ``max_src_bytes``
    apply to SCXML documents (see :func:`loads_scxml`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError([Problem(str(path), 1, 1, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise LoadError([Problem(str(path), 1, 1, f"cannot read the file: {error}")]) from None
    if path.suffix.lower() == ".scxml":
        return loads_scxml(text, str(path), actions=actions, guards=guards, base_dir=path.parent,
                           microstep_limit=microstep_limit, python=python, src_dir=src_dir,
                           max_src_bytes=max_src_bytes)
    return loads(text, str(path), actions=actions, guards=guards, base_dir=path.parent,
                 microstep_limit=microstep_limit, python=python)


def loads_scxml(text: str, file: str = "<string>.scxml", *, actions: Mapping[str, Callable] | None = None,
                guards: Mapping[str, Callable] | None = None, base_dir: str | Path | None = None,
                microstep_limit: int = DEFAULT_MICROSTEP_LIMIT, python: PythonPolicy | None = None,
                src_dir: str | Path | None = None, max_src_bytes: int = MAX_SRC_BYTES) -> Machine:
    """Compile an SCXML document (Python datamodel); problems point at the .scxml lines.

    An SCXML document is usually someone else's: by default it may name no Python module
    (``python="refuse"``; pass ``"project"`` or ``"static"`` to opt in) and read no file:
    ``<data src>`` and ``<script src>`` are refused unless ``src_dir`` is given, and then read
    only regular UTF-8 files inside it of at most ``max_src_bytes``.
    """
    from .scxml_import import scxml_to_document

    folder = Path(base_dir) if base_dir else Path(file).parent
    with _collector_paused():
        document, problems = scxml_to_document(text, file, folder, src_dir=src_dir, max_src_bytes=max_src_bytes)
        model = compile_machine(document, file, actions=actions, guards=guards, parse_problems=problems,
                                base_dir=folder, python=python if python is not None else "refuse")
        return Machine(model, microstep_limit=microstep_limit)
