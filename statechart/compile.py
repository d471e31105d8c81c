"""Located YAML values -> :class:`model.MachineModel`.

The compiler checks everything it can before a machine runs (keys, ids, targets, expressions,
durations, Python bindings) and reports every problem at once with ``file:line:col`` and a
hint. It resolves targets, assigns document order, and precomputes ancestors and default
entries, so the interpreter never has to look anything up by walking the tree.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import attrs

from .python_modules import ModuleRefused, bind_module, resolve_policy
from .quoting import quote, quote_repr
from . import actions as act
from .compile_actions import ACTION_VERBS, DATA_KEY, IF_KEYS, SEND_KEYS, ActionCompiler, closest as _closest
from .jsonvalues import copy_json, json_value
from .durations import parse_duration
from .errors import CallbackError, LoadError, Problem, StatechartError
from .events import DESCRIPTOR_PATTERN, normalize_descriptor
from .expressions import RESERVED_NAMES, SAFE_BUILTINS, Expression, ExpressionSyntaxError, compile_expression
from .model import ROOT, Action, Location, MachineModel, State, StateKind, Transition
from .yaml_loader import LocatedList, LocatedMap, Mark

__all__ = ["compile_machine", "TOP_KEYS", "STATE_KEYS", "TRANSITION_KEYS", "ACTION_VERBS", "SEND_KEYS",
           "IF_KEYS"]

MACHINE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
STATE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
FILE_VERSION = re.compile(r"^v(\d+)\.ya?ml$")
PLAIN_SECONDS = re.compile(r"^\s*(\d+(\.\d+)?|\.\d+)\s*$")
DURATION_HINT = "write a number and a unit (500ms, 30s, 5m, 2h, 1d), or a number of seconds"

TOP_KEYS = ("machine", "version", "description", "initial", "data", "binding", "script", "python", "states",
            "invariant")
STATE_KEYS = {
    StateKind.ATOMIC: ("type", "description", "invariant", "data", "entry", "exit", "on", "transitions", "always",
                       "after"),
    StateKind.COMPOUND: ("type", "description", "invariant", "initial", "data", "states", "entry", "exit",
                         "on", "transitions", "always", "after", "on_done"),
    StateKind.PARALLEL: ("type", "description", "invariant", "data", "states", "entry", "exit", "on",
                         "transitions", "always", "after", "on_done"),
    StateKind.FINAL: ("type", "description", "data", "entry", "exit", "done_data"),
    StateKind.HISTORY: ("type", "description", "history", "target", "actions"),
}
ALL_STATE_KEYS = sorted({key for keys in STATE_KEYS.values() for key in keys})
TRANSITION_KEYS = ("target", "cond", "guard", "actions", "type", "description")


#: A key written the way events are (upper case, or dotted lower case): ``VOID``, ``order.paid``.
EVENT_LIKE = re.compile(r"^(?:[A-Z][A-Z0-9_]*(?:\.[A-Za-z0-9_]+)*|[a-z][a-z0-9_]*(?:\.[a-z0-9_*]+)+)$")


def _kind(value: Any) -> str:
    """What a YAML value is, in the words of a machine author."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__  # pragma: no cover - YAML gives nothing else


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


class _Compiler(ActionCompiler):
    """Holds the problems found so far and the tables built while walking the document."""

    def __init__(self, file: str, actions: Mapping[str, Callable], guards: Mapping[str, Callable],
                 base_dir: Path, python_policy: Any) -> None:
        self.file = file
        self.base_dir = base_dir
        self.python_policy = python_policy
        self.problems: list[Problem] = []
        self.actions = dict(actions)
        self.guards = dict(guards)
        self.modules: list[Any] = []
        self.machine_name = ""
        # state id -> (raw mapping, kind, parent id, mark of the id)
        self.raw_states: dict[str, tuple[LocatedMap, StateKind, str, Mark]] = {}
        self.children: dict[str, list[str]] = {ROOT: []}
        self.events: set[str] = set()
        self.late_binding = False
        self.label_counts: dict[tuple[str, str], int] = {}
        #: SCXML documents: an invalid location is error.execution at run time, not a load error.
        self.runtime_location_errors = file.lower().endswith(".scxml")
        self.wildcard = False
        #: Names the machine gives data (data keys, assign and script targets, foreach variables,
        #: send id locations), and every expression with where it was written: checked at the end.
        self.declared: set[str] = set()
        self.name_uses: list[tuple[Expression, Any, Mark, str]] = []
        self.script_reads: set[str] = set()

    # -- reporting ---------------------------------------------------------------------
    def problem(self, mark: Mark, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.file, mark.line, mark.column, message, hint))

    def location(self, mark: Mark) -> Location:
        return Location(self.file, mark.line, mark.column)

    def unknown_keys(self, mapping: LocatedMap, allowed: Iterable[str], what: str,
                     extra_hint: str | None = None, *, hint_for: Callable[[str], str | None] | None = None) -> None:
        allowed = tuple(allowed)
        for key in mapping:
            if key not in allowed:
                hint = (_closest(key, allowed) or (hint_for(key) if hint_for else None) or extra_hint
                        or f"{what} accepts: {', '.join(allowed)}")
                self.problem(mapping.key_marks[key], f"unknown key {quote_repr(key)} in {what}", hint)

    def event_outside_on(self, key: str) -> str | None:
        """The hint for a state key that is an event slipped out of ``on:`` (a dedent): written
        like an event (``VOID``, ``order.paid``), or an event some other state handles."""
        if key in self.events or EVENT_LIKE.match(key):
            return (f"{quote_repr(key)} looks like an event: events go under the state's `on:`, indented one "
                    f"level deeper than `on:` (`on: {{{quote(key)}: target}}`)")
        return None

    # -- expressions -------------------------------------------------------------------
    def expression(self, text: Any, mark: Mark, what: str, *, null: bool = False) -> Expression | None:
        """Compile an expression string; a YAML number or boolean (or null, where ``null``) is the
        expression of that literal."""
        if isinstance(text, str):
            source = text
        elif isinstance(text, (bool, int)) or (isinstance(text, float) and math.isfinite(text)) or (
                text is None and null):
            source = repr(text)
        else:
            self.problem(mark, f"{what} must be an expression string, got {_kind(text)}"
                         + (f" ({quote_repr(text)})" if isinstance(text, float) else ""))
            return None
        try:
            expression = compile_expression(source, machine_name=self.machine_name)
        except ExpressionSyntaxError as error:
            self.problem(_mark_in(text, mark, error.offset), f"{what}: {error.message}", f"in {quote_repr(source)}")
            return None
        if expression.names:
            self.name_uses.append((expression, text, mark, what))
        return expression

    def check_names(self) -> None:
        """Every name an expression reads must be one the machine gives data: a misspelled name
        (``amout`` for ``amount``) is a load error here instead of a guard that is silently never
        true. SCXML documents are exempt: there an undefined name is ``error.execution`` at run time
        (SCXML 5.3, 5.9), and documents rely on it."""
        if self.runtime_location_errors:
            return
        known = sorted(self.declared)
        for expression, text, mark, what in self.name_uses:
            for name in sorted(expression.names - self.declared):
                found = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", expression.source)
                hint = _closest(name, known)
                self.problem(_mark_in(text, mark, found.start() if found else 0),
                             f"{what}: unknown name {quote_repr(name)}: no data key, assign or script gives it a value",
                             hint or "declare it under `data:` with an initial value, or assign it first")

    def duration(self, value: Any, mark: Mark) -> float | None:
        """A duration as written (``30s``, ``5m``, or a number of seconds) -> seconds."""
        if isinstance(value, str) and PLAIN_SECONDS.match(value):
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value) or value < 0:
                self.problem(mark, f"{quote_repr(value)} is not a duration", "a duration is a finite number of seconds >= 0")
                return None
        try:
            return parse_duration(value)
        except ValueError:
            shown = f"{quote_repr(value)}" if isinstance(value, str) else _kind(value)
            self.problem(mark, f"{shown} is not a duration", DURATION_HINT)
            return None

    def payload(self, spec: Any, mark: Mark, what: str) -> act.Payload:
        if spec is None:
            return act.make_payload(None)
        if isinstance(spec, LocatedMap):
            compiled: dict[str, Any] = {}
            for key, value in spec.items():
                if isinstance(value, str):
                    compiled[key] = self.expression(value, spec.value_marks[key], f"{what} {quote_repr(key)}")
                else:
                    self.check_json(value, spec.value_marks[key], f"{what} {quote_repr(key)}")
                    compiled[key] = copy_json(value)
            return act.make_payload(compiled)
        if isinstance(spec, str):
            return act.make_payload(self.expression(spec, mark, what))
        self.problem(mark, f"{what} must be a mapping of key -> expression, or one expression")
        return act.make_payload(None)

    def check_json(self, value: Any, mark: Mark, what: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(mark, f"{what}: {quote_repr(value)} is not JSON-compatible", "use a finite number or null")
            return
        if isinstance(value, (str, int, float, bool)) or value is None:
            return
        if isinstance(value, list):
            for item, item_mark in zip(value, getattr(value, "item_marks", [mark] * len(value))):
                self.check_json(item, item_mark, what)
            return
        if isinstance(value, dict):
            for key, item in value.items():
                self.check_json(item, getattr(value, "value_marks", {}).get(key, mark), what)
            return
        self.problem(mark, f"{what}: {quote_repr(value)} is not JSON-compatible")  # pragma: no cover

    # -- python bindings ---------------------------------------------------------------
    def load_modules(self, spec: Any, mark: Mark) -> tuple[str, ...]:
        names = [spec] if isinstance(spec, str) else spec
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            self.problem(mark, "`python` must be a module name or a list of them",
                         "a dotted module (myapp.actions) or a .py file beside the YAML (actions.py)")
            return ()
        marks = getattr(names, "item_marks", [mark] * len(names))
        for name, name_mark in zip(names, marks):
            try:
                self.modules.append(bind_module(name, self.base_dir, self.python_policy))
            except ModuleRefused as refused:
                self.problem(name_mark, refused.message, refused.hint)
            except (Exception, SystemExit) as error:  # noqa: BLE001 - any import failure is the author's to fix
                self.problem(name_mark, f"cannot import Python module {quote_repr(name)}: {quote(str(error))}",
                             "the module raised while it was imported")
        return tuple(names)

    def bound(self, name: str, table: dict[str, Callable], mark: Mark, what: str) -> Callable | None:
        function = table.get(name)
        if function is not None and not callable(function):
            self.problem(mark, f"{what} {quote_repr(name)} is bound to {type(function).__name__}, which is not callable")
            return None
        if function is None:
            for module in self.modules:
                candidate = getattr(module, name, None)
                if callable(candidate):
                    function = candidate
                    break
        if function is None:
            known = set(table) | {n for m in self.modules for n in dir(m) if not n.startswith("_")}
            hint = _closest(name, known) or (
                f"pass {what}s={{{quote_repr(name)}: ...}} to statechart.load() or name a module under `python:`"
            )
            self.problem(mark, f"unknown {what} {quote_repr(name)}", hint)
        return function

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
        binding = doc.get("binding", "early")
        if binding not in ("early", "late"):
            self.problem(doc.value_marks["binding"], f"binding must be 'early' or 'late', not {quote_repr(binding)}",
                         "early: all data is set at start; late: a state's data is set when it is first entered")
        self.late_binding = binding == "late"
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

    def check_text(self, body: LocatedMap, key: str) -> None:
        if key in body and not isinstance(body[key], str):
            self.problem(body.value_marks[key], f"`{key}` must be a string, got {_kind(body[key])}")

    def data(self, spec: Any, mark: Mark) -> Callable[[Any], dict[str, Any]]:
        if not isinstance(spec, LocatedMap):
            self.problem(mark, f"`data` must be a mapping of data key -> initial value, got {_kind(spec)}")
            return lambda ctx: ctx.data
        entries: list[tuple[str, Any, bool]] = []
        for key, value in spec.items():
            key_mark = spec.key_marks[key]
            if not DATA_KEY.match(key) or keyword.iskeyword(key):
                self.problem(key_mark, f"data key {quote_repr(key)} is not a valid name",
                             "use letters, digits and _, not starting with a digit")
            elif key in RESERVED_NAMES or key in SAFE_BUILTINS:
                self.problem(key_mark, f"data key {quote_repr(key)} would hide the built-in name {quote_repr(key)} in expressions",
                             "choose another name")
            self.declared.add(key)
            if isinstance(value, LocatedMap) and set(value) == {"expr"}:
                expression = self.expression(value["expr"], value.value_marks["expr"], f"data {quote_repr(key)}")
                entries.append((key, expression, True))
            else:
                self.check_json(value, spec.value_marks[key], f"data {quote_repr(key)}")
                entries.append((key, copy_json(value), False))

        def initial_data(ctx: Any) -> dict[str, Any]:
            """SCXML 5.3: a value that fails to evaluate leaves the key None and raises error.execution."""
            data: dict[str, Any] = ctx.data
            for key, value, computed in entries:
                if not computed:
                    data[key] = copy_json(value)
                    continue
                try:  # a computed value must be JSON data, like an assigned one
                    data[key] = json_value(value.evaluate(data, ctx.event, ctx.In, ctx.system), f"data {key!r}")
                except Exception as error:  # noqa: BLE001
                    data[key] = None
                    ctx.error(error, f"data {quote_repr(key)}")
            return data

        return initial_data

    # -- states: first pass collects ids, kinds and the tree -----------------------------
    def collect_states(self, states: LocatedMap, parent: str) -> None:
        for state_id, body in states.items():
            mark = states.key_marks[state_id]
            if not STATE_ID.match(state_id):
                self.problem(mark, f"state id {quote_repr(state_id)} is not valid",
                             "use letters, digits, _ and -, starting with a letter or _ (no dots)")
                continue
            if state_id in self.raw_states:
                first = self.raw_states[state_id][3]
                self.problem(mark, f"duplicate state id {quote_repr(state_id)}",
                             f"state ids are unique in the whole machine; first defined at line {first.line}")
                continue
            if body is None:
                body = LocatedMap(states.value_marks[state_id])
            if not isinstance(body, LocatedMap):
                self.problem(states.value_marks[state_id], f"state {quote_repr(state_id)} must be a mapping")
                continue
            kind = self.kind_of(state_id, body)
            self.raw_states[state_id] = (body, kind, parent, mark)
            self.children.setdefault(parent, []).append(state_id)
            self.children.setdefault(state_id, [])
            children = body.get("states")
            if "states" not in body:
                pass
            elif isinstance(children, LocatedMap) and children:
                self.collect_states(children, state_id)
            elif children is None or isinstance(children, LocatedMap):
                self.problem(body.value_marks["states"], f"`states` of {quote_repr(state_id)} is empty",
                             "list its child states, or remove `states` for an atomic state")
            else:
                self.problem(body.value_marks["states"],
                             f"`states` of {quote_repr(state_id)} must be a mapping of state id -> state, got {_kind(children)}")

    def kind_of(self, state_id: str, body: LocatedMap) -> StateKind:
        has_children = isinstance(body.get("states"), LocatedMap) and bool(body["states"])
        declared = body.get("type")
        if declared is None:
            return StateKind.COMPOUND if has_children else StateKind.ATOMIC
        choices = [k.value for k in StateKind]
        if not isinstance(declared, str):
            self.problem(body.value_marks["type"], f"the `type` of {quote_repr(state_id)} must be a string, got {_kind(declared)}",
                         f"one of {', '.join(choices)}")
            return StateKind.COMPOUND if has_children else StateKind.ATOMIC
        try:
            kind = StateKind(declared)
        except ValueError:
            self.problem(body.value_marks["type"], f"unknown state type {quote_repr(declared)} for {quote_repr(state_id)}",
                         _closest(declared, choices) or f"one of {', '.join(choices)}")
            return StateKind.COMPOUND if has_children else StateKind.ATOMIC
        if kind is StateKind.ATOMIC and has_children:
            self.problem(body.value_marks["type"], f"state {quote_repr(state_id)} is declared atomic but has child states",
                         "remove `type: atomic`: a state with child states is compound")
        if kind is StateKind.COMPOUND and "states" not in body:
            self.problem(body.value_marks["type"], f"compound state {quote_repr(state_id)} has no child states",
                         "add `states`, or make it atomic")
        return kind

    # -- states: second pass builds the model ------------------------------------------
    def build_states(self, doc: LocatedMap) -> dict[str, State] | None:
        order = {ROOT: -1}
        ancestors: dict[str, tuple[str, ...]] = {ROOT: ()}
        for index, (state_id, (_, _, parent, _)) in enumerate(self.raw_states.items()):
            order[state_id] = index
            ancestors[state_id] = (parent,) + ancestors[parent]
        self.order, self.ancestors = order, ancestors

        built: dict[str, State] = {}
        root_initial = self.initial(ROOT, doc, doc.mark)
        built[ROOT] = State(
            id=ROOT, kind=StateKind.COMPOUND, parent=ROOT, children=tuple(self.children[ROOT]),
            order=-1, depth=0, ancestors=(), initial=root_initial, entry=(), exit=(), transitions=(),
            invariant=doc.get("invariant"), invariant_check=self.root_invariant, location=self.location(doc.mark),
        )
        for state_id, (body, kind, parent, mark) in self.raw_states.items():
            built[state_id] = self.state(state_id, body, kind, parent, mark)
        return built if not self.problems else None

    def state(self, state_id: str, body: LocatedMap, kind: StateKind, parent: str, mark: Mark) -> State:
        allowed = STATE_KEYS[kind] + (("states",) if kind is StateKind.ATOMIC else ())  # reported by collect_states
        self.unknown_keys(body, allowed, f"{kind.value} state {quote_repr(state_id)}",
                          None if kind in (StateKind.COMPOUND, StateKind.PARALLEL) else
                          f"{_article(kind.value)} state accepts only: {', '.join(STATE_KEYS[kind])}",
                          hint_for=self.event_outside_on)
        for key in ("description", "invariant"):
            self.check_text(body, key)
        invariant_check = None
        if "invariant" in body and isinstance(body["invariant"], str):
            invariant_check = self.expression(body["invariant"], body.value_marks["invariant"],
                                              f"invariant of {quote_repr(state_id)}")
        children = tuple(self.children[state_id])
        parent_kind = self.raw_states[parent][1] if parent != ROOT else StateKind.COMPOUND
        entry: list[tuple[Action, ...]] = []
        exit_: list[tuple[Action, ...]] = []
        transitions: list[Transition] = []
        initial = None
        history_deep = False
        done_data = None

        if kind is StateKind.HISTORY:
            if parent == ROOT or parent_kind not in (StateKind.COMPOUND, StateKind.PARALLEL):
                self.problem(mark, f"history state {quote_repr(state_id)} must be the child of a compound or parallel state",
                             "move it inside the state whose history it keeps")
            mode = body.get("history", "shallow")
            if mode not in ("shallow", "deep"):
                self.problem(body.value_marks["history"], f"history must be 'shallow' or 'deep', not {quote_repr(mode)}",
                             _closest(str(mode), ("shallow", "deep")) or "shallow remembers the active child, "
                             "deep every active descendant")
            history_deep = mode == "deep"
            initial = self.history_default(state_id, body, parent, mark)
        elif kind is StateKind.PARALLEL:
            regions = [c for c in children if self.raw_states[c][1] is not StateKind.HISTORY]
            if len(regions) < 2:
                self.problem(mark, f"parallel state {quote_repr(state_id)} has {len(regions)} region(s)",
                             "a parallel state needs at least two child regions; use a compound state otherwise")
        elif kind is StateKind.COMPOUND:
            if children and all(self.raw_states[c][1] is StateKind.HISTORY for c in children):
                self.problem(mark, f"compound state {quote_repr(state_id)} has only history states as children",
                             "add the child states it can be in")
            initial = self.initial(state_id, body, mark)

        if kind is StateKind.FINAL and "done_data" in body:
            done_data = self.payload(body["done_data"], body.value_marks["done_data"], f"done_data of {quote_repr(state_id)}")

        for key, blocks in (("entry", entry), ("exit", exit_)):
            if key in body:
                blocks.extend(self.blocks(body[key], body.value_marks[key], f"{key} of {quote_repr(state_id)}"))
        data_init = None
        if "data" in body:
            data_init = self.data(body["data"], body.value_marks["data"])

        if kind is not StateKind.HISTORY:
            transitions = self.state_transitions(state_id, body, kind, entry, exit_)

        return State(
            id=state_id,
            kind=kind,
            parent=parent,
            children=children,
            order=self.order[state_id],
            depth=len(self.ancestors[state_id]),
            ancestors=self.ancestors[state_id],
            initial=initial,
            entry=tuple(entry),
            exit=tuple(exit_),
            transitions=tuple(transitions),
            history_deep=history_deep,
            done_data=done_data,
            done_data_spec=copy_json(body.get("done_data")),
            invariant=body.get("invariant"),
            invariant_check=invariant_check,
            description=body.get("description"),
            location=self.location(mark),
            data_init=data_init,
            data_spec=copy_json(body.get("data")),
        )

    def blocks(self, spec: Any, mark: Mark, what: str) -> list[tuple[Action, ...]]:
        """An action list, or a list of action lists: separate blocks, as several SCXML <onentry>.
        A failing action skips the rest of its own block only."""
        if isinstance(spec, LocatedList) and spec and all(isinstance(item, LocatedList) for item in spec):
            return [self.action_list(block, block_mark, what) for block, block_mark in zip(spec, spec.item_marks)]
        actions = self.action_list(spec, mark, what)
        return [actions] if actions else []

    def state_transitions(self, state_id: str, body: LocatedMap, kind: StateKind,
                          entry: list[tuple[Action, ...]], exit_: list[tuple[Action, ...]]) -> list[Transition]:
        transitions: list[Transition] = []
        on = body.get("on")
        if "on" in body:
            if not isinstance(on, LocatedMap):
                self.problem(body.value_marks["on"], "`on` must be a mapping of event -> transition(s)")
            else:
                for key, spec in on.items():
                    events = self.descriptors(key, on.key_marks[key])
                    transitions += self.transition_list(state_id, key, events, spec, on.value_marks[key])
        if "transitions" in body:
            transitions += self.ordered_transitions(state_id, body["transitions"], body.value_marks["transitions"])
        if "always" in body:
            transitions += self.transition_list(state_id, "always", (), body["always"], body.value_marks["always"])
        if "after" in body:
            after = body["after"]
            if not isinstance(after, LocatedMap):
                self.problem(body.value_marks["after"], "`after` must be a mapping of duration -> transition(s)")
            else:
                sends, cancels = [], []
                for index, (key, spec) in enumerate(after.items()):
                    seconds = self.duration(key, after.key_marks[key])
                    if seconds is None:
                        continue
                    event = f"after.{index}.{state_id}"
                    send_id = f"after.{index}.{state_id}"
                    sends.append(Action("timer", f"send {event} after {key}", act.make_simple_send(event, seconds, send_id),
                        {"send": {"event": event, "delay": key, "id": send_id}}, self.location(after.key_marks[key])))
                    cancels.append(Action("timer-cancel", f"cancel {send_id}", act.make_cancel(send_id, None),
                                          {"cancel": send_id}, self.location(after.key_marks[key])))
                    for transition in self.transition_list(state_id, f"after {key}", (event,), spec,
                                                           after.value_marks[key]):
                        transitions.append(_with_delay(transition, seconds))
                if sends:
                    entry.append(tuple(sends))
                    exit_.append(tuple(cancels))
        if "on_done" in body:
            event = f"done.state.{state_id}"
            self.events.add(event)
            transitions += self.transition_list(state_id, "on_done", (event,), body["on_done"],
                                                body.value_marks["on_done"])
        for order, transition in enumerate(transitions):
            transitions[order] = _with_order(transition, order)
        return transitions

    def transition_id(self, source: str, label: str) -> str:
        """``<state>:<event as written>:<n>``, n counting that label's transitions in the state, so the
        id is the same whether a transition was written under `on` or in a `transitions` list."""
        key = (source, label)
        count = self.label_counts.get(key, 0)
        self.label_counts[key] = count + 1
        return f"{source}:{label}:{count}"

    def ordered_transitions(self, state_id: str, spec: Any, mark: Mark) -> list[Transition]:
        """SCXML's single ordered list: each item is a transition mapping with an optional `event`."""
        if not isinstance(spec, LocatedList):
            self.problem(mark, "`transitions` must be a list of transitions, each with an optional `event`")
            return []
        result = []
        for index, (item, item_mark) in enumerate(zip(spec, spec.item_marks)):
            if not isinstance(item, LocatedMap):
                self.problem(item_mark, "each item of `transitions` is a mapping with `event`, `target`, ...")
                continue
            events: tuple[str, ...] = ()
            body = item
            if "event" in item:
                if not isinstance(item["event"], str):
                    self.problem(item.value_marks["event"], f"`event` must be an event name, not {quote_repr(item['event'])}")
                    continue
                events = self.descriptors(item["event"], item.value_marks["event"])
                body = LocatedMap(item.mark)
                for key, value in item.items():
                    if key != "event":
                        body[key] = value
                        body.key_marks[key] = item.key_marks[key]
                        body.value_marks[key] = item.value_marks[key]
            label = " ".join(str(item["event"]).split()) if "event" in item else "always"
            transition = self.transition(state_id, self.transition_id(state_id, label), events, body, item_mark)
            if transition is not None:
                result.append(transition)
        return result

    def descriptors(self, key: str, mark: Mark) -> tuple[str, ...]:
        tokens = key.split()
        if not tokens:
            self.problem(mark, "an empty event name", "write the event name, `*` or a prefix like `error.*`")
        result = []
        for token in tokens:
            if not DESCRIPTOR_PATTERN.match(token):
                self.problem(mark, f"{quote_repr(token)} is not a valid event descriptor",
                             "event names are dotted words: PAY, order.paid, error.* or *")
                continue
            descriptor = normalize_descriptor(token)
            if descriptor == "*":
                self.wildcard = True
            self.events.add(descriptor)
            result.append(descriptor)
        return tuple(result)

    def transition_list(self, source: str, key: str, events: tuple[str, ...], spec: Any,
                        mark: Mark) -> list[Transition]:
        items: list[tuple[Any, Mark]]
        if isinstance(spec, LocatedList):
            items = list(zip(spec, spec.item_marks))
            if not items:
                self.problem(mark, f"the transition list for {quote_repr(key)} is empty")
        else:
            items = [(spec, mark)]
        result = []
        for item, item_mark in items:
            transition = self.transition(source, self.transition_id(source, key), events, item, item_mark)
            if transition is not None:
                result.append(transition)
        return result

    def transition(self, source: str, transition_id: str, events: tuple[str, ...], spec: Any,
                   mark: Mark) -> Transition | None:
        targets: tuple[str, ...] = ()
        check = None
        cond_text = guard_name = description = None
        actions: tuple[Action, ...] = ()
        internal = False
        if isinstance(spec, str):
            targets = self.targets(spec, mark)
        elif isinstance(spec, LocatedMap):
            self.unknown_keys(spec, TRANSITION_KEYS, "a transition")
            if "target" in spec and spec["target"] is not None:
                targets = self.targets(spec["target"], spec.value_marks["target"])
            checks = []  # both `cond` and `guard` must hold; the cond is checked first
            if "cond" in spec:
                expression = self.expression(spec["cond"], spec.value_marks["cond"], "cond")
                if expression is not None:
                    cond_text = expression.source
                    checks.append(_expression_check(expression))
            if "guard" in spec:
                if not isinstance(spec["guard"], str):
                    self.problem(spec.value_marks["guard"],
                                 f"`guard` must name a Python predicate, got {_kind(spec['guard'])}")
                else:
                    guard_name = spec["guard"]
                    function = self.bound(guard_name, self.guards, spec.value_marks["guard"], "guard")
                    if function is not None:
                        checks.append(_guard_check(guard_name, function))
            check = checks[0] if len(checks) == 1 else _all_checks(tuple(checks)) if checks else None
            if "actions" in spec:
                actions = self.action_list(spec["actions"], spec.value_marks["actions"], f"actions of {transition_id}")
            kind = spec.get("type", "external")
            if kind not in ("external", "internal"):
                self.problem(spec.value_marks["type"], f"transition type must be 'external' or 'internal', not {quote_repr(kind)}",
                             _closest(str(kind), ("external", "internal")) or "internal keeps the source state "
                             "active when the targets are its descendants")
            internal = kind == "internal"
            self.check_text(spec, "description")
            description = spec.get("description")
        elif spec is not None:
            self.problem(mark, "a transition is a target state id, a mapping with `target`/`cond`/`actions`, "
                               "or a list of those")
            return None
        return Transition(
            id=transition_id, source=source, events=events, targets=targets, internal=internal,
            cond_text=cond_text, guard_name=guard_name, check=check, actions=actions, order=0,
            location=self.location(mark), description=description,
        )

    def targets(self, spec: Any, mark: Mark) -> tuple[str, ...]:
        if isinstance(spec, str):
            names, marks = [spec], [mark]
        elif isinstance(spec, LocatedList) and all(isinstance(s, str) for s in spec) and spec:
            names, marks = list(spec), spec.item_marks
        else:
            self.problem(mark, "a target must be a state id, a dotted path, or a list of state ids")
            return ()
        resolved = []
        for name, name_mark in zip(names, marks):
            state = self.resolve(name, name_mark)
            if state is not None:
                resolved.append(state)
        if len(resolved) == len(names) and len(resolved) > 1:
            self.check_orthogonal(resolved, mark)
        return tuple(resolved)

    def resolve(self, name: str, mark: Mark) -> str | None:
        parts = name.split(".")
        last = parts[-1]
        if last not in self.raw_states:
            self.problem(mark, f"target {quote_repr(name)} does not exist",
                         _closest(last, self.raw_states) or "targets name a state id of this machine")
            return None
        chain = [last] + [a for a in self.ancestors[last] if a != ROOT]
        if parts[:-1] and chain[1 : len(parts)][::-1] != parts[:-1]:
            actual = ".".join(reversed(chain))
            self.problem(mark, f"target path {quote_repr(name)} does not match the state tree", f"{quote_repr(last)} is at {quote_repr(actual)}")
            return None
        return last

    def check_orthogonal(self, targets: list[str], mark: Mark,
                         hint: str = "several targets must lie in different regions of a parallel state") -> None:
        """Targets can be active together when each pair meets in a parallel state, neither
        containing the other. Checked in one walk up from each target (linear in the targets
        times the depth, not quadratic: a list of 50,000 targets took minutes); the first
        conflicting pair is reported."""
        passed_by: dict[str, str] = {}  # state -> the first target whose ancestor chain went through it
        for target in targets:
            chain = (target,) + self.ancestors[target]
            for index, state in enumerate(chain):
                earlier = passed_by.get(state)
                if earlier is None:
                    continue
                kind = self.raw_states[state][1] if state != ROOT else StateKind.COMPOUND
                if state in (target, earlier) or kind is not StateKind.PARALLEL:
                    self.problem(mark, f"targets {quote_repr(earlier)} and {quote_repr(target)} cannot be active "
                                       "together", hint)
                    return
                break
            else:
                index = len(chain)
            for state in chain[:index]:
                passed_by[state] = target

    def initial(self, state_id: str, body: LocatedMap, mark: Mark) -> Transition | None:
        children = self.children[state_id]
        proper = [c for c in children if self.raw_states[c][1] is not StateKind.HISTORY]
        what = "the machine" if state_id == ROOT else f"state {quote_repr(state_id)}"
        actions: tuple[Action, ...] = ()
        if "initial" in body:
            spec, spec_mark = body["initial"], body.value_marks["initial"]
            deeper_allowed = isinstance(spec, LocatedMap)
            if isinstance(spec, LocatedMap):
                self.unknown_keys(spec, ("target", "actions"), "an initial transition")
                if "actions" in spec:
                    actions = self.action_list(spec["actions"], spec.value_marks["actions"], f"initial of {what}")
                target_spec, spec_mark = spec.get("target"), spec.value_marks.get("target", spec_mark)
            else:
                target_spec = spec
            names = target_spec if isinstance(target_spec, list) else [target_spec]
            if not names:
                self.problem(spec_mark, f"the initial list of {what} is empty")
            targets = []
            for name in names:
                if deeper_allowed and isinstance(name, str) and name in self.raw_states \
                        and state_id in self.ancestors[name] and self.raw_states[name][1] is not StateKind.HISTORY:
                    targets.append(name)  # SCXML's <initial> transition may enter a deeper state directly
                elif not isinstance(name, str) or name not in children:
                    hint = _closest(str(name), children) or f"the children of {what} are: {', '.join(children)}"
                    if not deeper_allowed and isinstance(name, str) and name in self.raw_states \
                            and state_id in self.ancestors[name]:
                        hint = f"{quote_repr(name)} is deeper down; to start there write `initial: {{target: {quote(name)}}}`"
                    self.problem(spec_mark, f"initial {quote_repr(name)} of {what} is not one of its child states", hint)
                else:
                    targets.append(name)
            if not targets:
                return None
            if len(targets) == len(names) and len(targets) > 1:
                self.check_orthogonal(targets, spec_mark, f"{what} starts in one of its child states; name one")
        elif proper:
            targets = [proper[0]]
        else:
            return None
        return Transition(id=f"{state_id}:initial", source=state_id, events=(), targets=tuple(targets),
                          internal=False, cond_text=None, guard_name=None, check=None, actions=actions,
                          order=0, location=self.location(mark))

    def history_default(self, state_id: str, body: LocatedMap, parent: str, mark: Mark) -> Transition | None:
        actions: tuple[Action, ...] = ()
        if "actions" in body:
            actions = self.action_list(body["actions"], body.value_marks["actions"], f"default of {quote_repr(state_id)}")
        if "target" in body:
            targets = self.targets(body["target"], body.value_marks["target"])
            for target in targets:
                if parent not in self.ancestors[target]:
                    self.problem(body.value_marks["target"],
                                 f"default target {quote_repr(target)} of history {quote_repr(state_id)} is not inside {quote_repr(parent)}")
        else:
            proper = [c for c in self.children.get(parent, []) if self.raw_states[c][1] is not StateKind.HISTORY]
            parent_body = self.raw_states[parent][0] if parent in self.raw_states else {}
            initial = parent_body.get("initial") if isinstance(parent_body, dict) else None
            targets = (initial,) if isinstance(initial, str) and initial in proper else tuple(proper[:1])
            if parent in self.raw_states and self.raw_states[parent][1] is StateKind.PARALLEL:
                targets = tuple(proper)
        return Transition(id=f"{state_id}:default", source=state_id, events=(), targets=targets, internal=False,
                          cond_text=None, guard_name=None, check=None, actions=actions, order=0,
                          location=self.location(mark))

def _mark_in(text: Any, mark: Mark, offset: int) -> Mark:
    """Where character ``offset`` of an expression written at ``mark`` is in the file."""
    if not isinstance(text, str):
        return mark
    if "\n" in text and not mark.segments:
        return Mark(mark.line, mark.column + (1 if mark.quoted else 0))
    return mark.at(max(0, min(offset, len(text))))


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


def _expression_check(expression: Expression) -> Callable[[Any], bool]:
    evaluate = expression.evaluate

    def check(ctx: Any) -> bool:
        return bool(evaluate(ctx.data, ctx.event, ctx.In, ctx.system))

    return check


def _all_checks(checks: tuple[Callable[[Any], bool], ...]) -> Callable[[Any], bool]:
    def check(ctx: Any) -> bool:
        return all(part(ctx) for part in checks)

    return check


def _guard_check(name: str, function: Callable[[Any], Any]) -> Callable[[Any], bool]:
    def check(ctx: Any) -> bool:
        ctx.prepare_for_python()
        try:
            return bool(function(ctx))
        except StatechartError:  # already says what and where
            raise
        except Exception as error:  # noqa: BLE001 - named, located, then counted as false by the caller
            raise CallbackError("guard", name, function, error) from error

    return check


def _with_order(transition: Transition, order: int) -> Transition:
    return attrs.evolve(transition, order=order)


def _with_delay(transition: Transition, seconds: float) -> Transition:
    return attrs.evolve(transition, delay=seconds)


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
