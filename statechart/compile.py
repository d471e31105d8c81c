"""Located YAML values -> :class:`model.MachineModel`.

The compiler checks everything it can before a machine runs (keys, ids, targets, expressions,
durations, Python bindings) and reports every problem at once with ``file:line:col`` and a
hint. It resolves targets, assigns document order, and precomputes ancestors and default
entries, so the interpreter never has to look anything up by walking the tree.
The work is split by what is compiled: :mod:`.compile_states`, :mod:`.compile_transitions`,
:mod:`.compile_actions` and :mod:`.compile_data` (expressions, names, data, Python modules), all
over the shared problem list of :mod:`.compile_core`. This module walks the top of the document
and puts the parts together.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .python_modules import resolve_policy
from .quoting import quote_repr
from .compile_actions import ACTION_VERBS, IF_KEYS, SEND_KEYS, ActionCompiler
from .compile_data import DataCompiler
from .compile_states import ALL_STATE_KEYS, STATE_KEYS, StateCompiler
from .compile_transitions import TRANSITION_KEYS, TransitionCompiler
from .jsonvalues import copy_json
from .errors import LoadError, Problem
from .model import ROOT, Action, MachineModel, State, Transition
from .yaml_loader import LocatedMap, Mark

__all__ = ["compile_machine", "definition_hash", "TOP_KEYS", "STATE_KEYS", "ALL_STATE_KEYS", "TRANSITION_KEYS",
           "ACTION_VERBS", "SEND_KEYS", "IF_KEYS"]

MACHINE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
FILE_VERSION = re.compile(r"^v(\d+)\.ya?ml$")

TOP_KEYS = ("machine", "version", "description", "initial", "data", "binding", "script", "python", "states",
            "invariant")


class _Compiler(StateCompiler, TransitionCompiler, DataCompiler, ActionCompiler):
    """The whole compiler: the parts, and the top of the document."""

    # -- the document --------------------------------------------------------------------
    def machine(self, doc: Any) -> MachineModel | None:
        if not isinstance(doc, LocatedMap):
            self.problem(getattr(doc, "mark", Mark(1, 1)), "a machine file must be a mapping",
                         "it needs `machine`, `version` and `states`")
            return None
        self.unknown_keys(doc, TOP_KEYS, "the machine")
        for required in ("machine", "version", "states"):
            if required not in doc:
                self.problem(doc.mark, f"missing required key {quote_repr(required)}")
        name = doc.get("machine")
        if "machine" in doc:
            if not isinstance(name, str) or not MACHINE_NAME.match(name):
                self.problem(doc.value_marks["machine"], f"machine name {quote_repr(name)} is not valid",
                             "use lower case letters, digits and _, starting with a letter")
            else:
                self.machine_name = name
                self.check_folder(name, doc.value_marks["machine"])
        version = doc.get("version")
        if "version" in doc:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                self.problem(doc.value_marks["version"], f"version {quote_repr(version)} is not an integer >= 1",
                             "write a whole number without quotes, counting from 1: `version: 2`")
            else:
                self.check_file_name(version, doc.value_marks["version"])
        for key in ("description", "invariant"):
            self.check_text(doc, key)
        self.root_invariant = None
        if "invariant" in doc and isinstance(doc["invariant"], str):
            self.root_invariant = self.expression(doc["invariant"], doc.value_marks["invariant"], "invariant")
        python_modules = self.load_modules(doc["python"], doc.value_marks["python"]) if "python" in doc else ()

        states = doc.get("states")
        if "states" in doc:
            if not isinstance(states, LocatedMap) or not states:
                self.problem(doc.value_marks["states"], "`states` must be a non-empty mapping of state id -> state")
            else:
                self.collect_states(states, ROOT)
        self.late_binding = self.choice(doc, "binding", ("early", "late"), "binding",
                                        "early: all data is set at start; late: a state's data is set when it "
                                        "is first entered") == "late"
        data_spec = doc.get("data")
        if data_spec is None:
            data_spec = LocatedMap(doc.value_marks.get("data", doc.mark))
        top_data = self.data(data_spec, doc.value_marks.get("data", doc.mark))
        script = None
        if "script" in doc:
            script = self.script_action(doc["script"], doc.value_marks["script"], self.location(doc.value_marks["script"]),
                                        "the machine script")

        built = self.build_states(doc)
        self.check_names()
        if self.problems or built is None:
            return None
        initial_data = _initial_data(top_data, built, self.late_binding, script)
        events = frozenset(e for e in self.events if e != "*")
        return MachineModel(
            name=name,
            version=version,
            states=built,
            initial_data=initial_data,
            data_spec=copy_json(data_spec),
            definition_hash=definition_hash(name, version, built, copy_json(data_spec), self.late_binding,
                                            script.spec["script"] if script is not None else None),
            events=events,
            wildcard=self.wildcard,
            source=self.file,
            description=doc.get("description"),
            python_modules=python_modules,
            raw=doc,
            late_binding=self.late_binding,
            script=script.spec["script"] if script is not None else None,
            names_read=frozenset({name for expression, *_ in self.name_uses for name in expression.names}
                                 | self.script_reads),
        )

    def check_file_name(self, version: int, mark: Mark) -> None:
        """``machines/<name>/v<N>.yaml`` must say ``version: N``."""
        path = Path(self.file)
        match = FILE_VERSION.match(path.name)
        if match and int(match.group(1)) != version:
            self.problem(mark, f"version {version} disagrees with the file name {quote_repr(path.name)}",
                         f"a file named {path.name} must say `version: {int(match.group(1))}`")

    def check_folder(self, name: str, mark: Mark) -> None:
        """``machines/<name>/v<N>.yaml`` must hold the machine called ``name``."""
        path = Path(self.file)
        folder = path.parent.name
        if FILE_VERSION.match(path.name) and path.parent.parent.name == "machines" and folder != name:
            self.problem(mark, f"machine {quote_repr(name)} is stored in machines/{folder}/",
                         f"move it to machines/{name}/ or rename the machine to {quote_repr(folder)}")


def _initial_data(top: Callable[[Any], Any], states: Mapping[str, State], late_binding: bool,
                  script: Action | None) -> Callable[[Any], dict[str, Any]]:
    """SCXML 5.3: early binding sets every <datamodel> at start in document order; late binding
    declares state data as None and sets it when the state is first entered."""
    state_data = [s for s in states.values() if s.data_init is not None]
    declared = [key for s in state_data for key in (s.data_spec or {})]

    def initial_data(ctx: Any) -> dict[str, Any]:
        top(ctx)
        if late_binding:
            for key in declared:
                ctx.data.setdefault(key, None)
        else:
            for state in state_data:
                state.data_init(ctx)
        if script is not None:
            try:
                script.run(ctx)
            except Exception as error:  # noqa: BLE001 - SCXML: error.execution
                ctx.error(error, script.text)
        return ctx.data

    return initial_data


def definition_hash(name: str, version: int, states: Mapping[str, State], data: Any, late_binding: bool,
                    script: str | None) -> str:
    """A hash of what the machine means, not how it was written: sugar, comments, key order of
    YAML mappings and the source format (YAML or SCXML) do not change it; any state, transition,
    action or data change does."""

    def actions(block: Iterable[Action]) -> list[Any]:
        return [[action.verb, action.text, action.spec] for action in block]

    def transition(t: Transition | None) -> Any:
        if t is None:
            return None
        return [t.id, t.events, t.targets, t.internal, t.cond_text, t.guard_name, t.delay, actions(t.actions)]

    canonical = {
        "machine": name, "version": version, "data": data, "late_binding": late_binding, "script": script,
        "states": [[s.id, s.kind.value, s.parent, s.children, transition(s.initial), s.history_deep,
                    [actions(b) for b in s.entry], [actions(b) for b in s.exit],
                    [transition(t) for t in s.transitions], s.done_data_spec, s.data_spec, s.invariant]
                   for s in states.values()],
    }
    text = json.dumps(canonical, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def compile_machine(doc: Any, file: str, *, actions: Mapping[str, Callable] | None = None,
                    guards: Mapping[str, Callable] | None = None, parse_problems: Iterable[Problem] = (),
                    base_dir: Path | None = None, python: Any = None) -> MachineModel:
    """Compile a located document; raises :class:`LoadError` listing every problem.

    ``python`` is the policy for the modules the document names (see :mod:`.python_modules`);
    by default the modules of the machine's project are imported."""
    compiler = _Compiler(file, actions or {}, guards or {}, base_dir or Path(file).parent,
                         resolve_policy(python, default="project"))
    compiler.problems.extend(parse_problems)
    model = compiler.machine(doc) if doc is not None else None
    if compiler.problems or model is None:
        raise LoadError(compiler.problems)
    return model
