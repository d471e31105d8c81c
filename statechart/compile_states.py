"""States of a machine: the first pass collects ids, kinds and the tree; the second builds each
:class:`model.State` with its entry and exit blocks, its initial or default transition, and the
transitions :class:`compile_transitions.TransitionCompiler` compiles for it.
"""

from __future__ import annotations

import re
from typing import Any

from .compile_core import CompilerCore, article, closest, describe_value
from .jsonvalues import copy_json
from .model import ROOT, Action, State, StateKind, Transition
from .quoting import quote, quote_repr
from .yaml_loader import LocatedList, LocatedMap, Mark

__all__ = ["StateCompiler", "STATE_KEYS", "ALL_STATE_KEYS", "STATE_ID", "EVENT_LIKE"]

STATE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
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

#: A key written the way events are (upper case, or dotted lower case): ``VOID``, ``order.paid``.
EVENT_LIKE = re.compile(r"^(?:[A-Z][A-Z0-9_]*(?:\.[A-Za-z0-9_]+)*|[a-z][a-z0-9_]*(?:\.[a-z0-9_*]+)+)$")


class StateCompiler(CompilerCore):
    """The state tree and each state (uses ``expression``, ``data``, ``payload`` of the data part,
    ``action_list`` of the action part and ``state_transitions``/``targets`` of the transition part)."""

    def event_outside_on(self, key: str) -> str | None:
        """The hint for a state key that is an event slipped out of ``on:`` (a dedent): written
        like an event (``VOID``, ``order.paid``), or an event some other state handles."""
        if key in self.events or EVENT_LIKE.match(key):
            return (f"{quote_repr(key)} looks like an event: events go under the state's `on:`, indented one "
                    f"level deeper than `on:` (`on: {{{quote(key)}: target}}`)")
        return None

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
                             f"`states` of {quote_repr(state_id)} must be a mapping of state id -> state, got {describe_value(children)}")

    def kind_of(self, state_id: str, body: LocatedMap) -> StateKind:
        has_children = isinstance(body.get("states"), LocatedMap) and bool(body["states"])
        declared = body.get("type")
        if declared is None:
            return StateKind.COMPOUND if has_children else StateKind.ATOMIC
        choices = [k.value for k in StateKind]
        if not isinstance(declared, str):
            self.problem(body.value_marks["type"], f"the `type` of {quote_repr(state_id)} must be a string, got {describe_value(declared)}",
                         f"one of {', '.join(choices)}")
            return StateKind.COMPOUND if has_children else StateKind.ATOMIC
        try:
            kind = StateKind(declared)
        except ValueError:
            self.problem(body.value_marks["type"], f"unknown state type {quote_repr(declared)} for {quote_repr(state_id)}",
                         closest(declared, choices) or f"one of {', '.join(choices)}")
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
                          f"{article(kind.value)} state accepts only: {', '.join(STATE_KEYS[kind])}",
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
            history_deep = self.choice(body, "history", ("shallow", "deep"), "history",
                                       "shallow remembers the active child, deep every active descendant") == "deep"
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
                    hint = closest(str(name), children) or f"the children of {what} are: {', '.join(children)}"
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
