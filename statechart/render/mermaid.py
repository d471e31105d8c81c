"""Statechart diagrams as Mermaid ``stateDiagram-v2`` text, built from the compiled model.

Mermaid draws less than Graphviz (see docs/diagrams.md): no history pseudo-states (a history
state becomes a plain state labelled ``H``/``H*`` with an arrow to its default), no distinction
for eventless or delayed transitions beyond their labels, and a named final state is drawn as a
state with an arrow to ``[*]``. Each transition is written inside the innermost composite state
that contains both of its ends, which is where Mermaid lays it out best.
"""

from __future__ import annotations

import re
from typing import Any

from ..model import ROOT, MachineModel, State, StateKind, Transition
from .graphviz import CLOCK, actions_text, block_actions_text, edge_label, model_of

__all__ = ["render_mermaid", "mermaid_id"]

INDENT = "    "


def mermaid_id(state: str) -> str:
    """A Mermaid-safe identifier for a state id (word characters only)."""
    return re.sub(r"\W", "_", state)


_ENTITIES = {";": "#59;", ":": "#58;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "#": "#35;"}


def _text(text: str) -> str:
    """Label text Mermaid accepts: no newlines, and `;`, `:`, `<`, `>`, `&`, `#` written as entity
    codes. Mermaid reads a raw ``<`` as the start of markup and drops the label (``[retries < 3]``
    vanished from the rendered chart, which mermaid-cli showed: tests/test_mermaid_render.py)."""
    return re.sub(r"[;:<>&#]", lambda match: _ENTITIES[match.group(0)], text.replace("\n", " "))


class _Writer:
    def __init__(self, model: MachineModel, actions: bool) -> None:
        self.model = model
        self.states = model.states
        self.actions = actions
        self.edges: dict[str, list[str]] = {}  # scope (composite id or ROOT) -> lines

    def scope(self, a: str, b: str) -> str:
        """The innermost compound/parallel state containing both (ROOT when none)."""
        chain_a = self.states[a].ancestors
        for candidate in chain_a:
            if candidate == ROOT or candidate == b or candidate in self.states[b].ancestors:
                # a parallel state's children are regions: their shared scope is the region's parent
                return candidate
        return ROOT

    def add_edge(self, scope: str, line: str) -> None:
        self.edges.setdefault(scope, []).append(line)

    def collect(self) -> None:
        for state in self.states.values():
            if state.id == ROOT:
                continue
            if state.kind is StateKind.HISTORY:
                for target in (state.initial.targets if state.initial else ()):
                    self.add_edge(self.scope(state.id, target),
                                  f"{mermaid_id(state.id)} --> {mermaid_id(target)} : default")
                continue
            loops = []
            for t in state.transitions:
                for target in t.targets:
                    if target == state.id:
                        loops.append(self.transition_line(t, target))
                    else:
                        self.add_edge(self.scope(state.id, target), self.transition_line(t, target))
            if loops:  # Mermaid draws one label per self-loop and drops the others: one loop, one line each
                head = f"{mermaid_id(state.id)} --> {mermaid_id(state.id)}"
                labels = [line.split(" : ", 1)[1] for line in loops if " : " in line]
                self.add_edge(self.scope(state.id, state.id), f"{head} : {'<br/>'.join(labels)}" if labels else head)

    def transition_line(self, t: Transition, target: str) -> str:
        label = edge_label(t, self.actions)
        if t.delay is not None:
            label = label.replace(CLOCK + " ", "")  # Mermaid's fonts may lack the clock
        if not t.events and not label:
            label = "always"
        elif not t.events and t.delay is None:
            label = f"always {label}"
        line = f"{mermaid_id(t.source)} --> {mermaid_id(target)}"
        return f"{line} : {_text(label)}" if label else line

    def write(self) -> str:
        self.collect()
        lines = ["stateDiagram-v2"]
        if self.model.description:
            lines.insert(0, f"%% {self.model.name} v{self.model.version}: {_text(self.model.description)}")
        else:
            lines.insert(0, f"%% {self.model.name} v{self.model.version}")
        self.body(self.states[ROOT], lines, 1)
        return "\n".join(lines) + "\n"

    def body(self, parent: State, lines: list[str], level: int) -> None:
        pad = INDENT * level
        if parent.kind is StateKind.PARALLEL:
            for index, child in enumerate(parent.children):
                if index:
                    lines.append(f"{pad}--")
                self.state(self.states[child], lines, level)
            lines.extend(pad + line for line in self.edges.get(parent.id, []))
            return
        if parent.initial is not None:
            for target in parent.initial.targets:
                label = actions_text(parent.initial.actions) if self.actions else ""
                lines.append(f"{pad}[*] --> {mermaid_id(target)}" + (f" : / {_text(label)}" if label else ""))
        for child in parent.children:
            self.state(self.states[child], lines, level)
        lines.extend(pad + line for line in self.edges.get(parent.id, []))
        for child in parent.children:
            if self.states[child].kind is StateKind.FINAL:
                lines.append(f"{pad}{mermaid_id(child)} --> [*]")

    def state(self, state: State, lines: list[str], level: int) -> None:
        pad = INDENT * level
        ident = mermaid_id(state.id)
        if state.kind is StateKind.HISTORY:
            lines.append(f'{pad}state "{"H*" if state.history_deep else "H"}" as {ident}')
            return
        if ident != state.id or (self.descriptions(state) and state.kind not in (StateKind.COMPOUND,
                                                                                 StateKind.PARALLEL)):
            # a state with descriptions but no declared title is drawn by Mermaid without its name
            lines.append(f'{pad}state "{state.id}" as {ident}')
        if state.kind in (StateKind.COMPOUND, StateKind.PARALLEL):
            lines.append(f"{pad}state {ident} {{")
            self.body(state, lines, level + 1)
            lines.append(f"{pad}}}")
        elif ident == state.id and not self.descriptions(state):
            lines.append(f"{pad}{ident}")
        for description in self.descriptions(state):
            lines.append(f"{pad}{ident} : {_text(description)}")

    def descriptions(self, state: State) -> list[str]:
        """Entry/exit actions and targetless transitions, as Mermaid state descriptions."""
        out = []
        if self.actions:
            entry, exit_ = block_actions_text(state.entry), block_actions_text(state.exit)
            if entry:
                out.append(f"entry / {entry}")
            if exit_:
                out.append(f"exit / {exit_}")
        out.extend(edge_label(t, self.actions) for t in state.transitions if t.targetless)
        return out


def render_mermaid(machine: Any, *, actions: bool = False) -> str:
    """The machine as Mermaid ``stateDiagram-v2`` text."""
    return _Writer(model_of(machine), actions).write()
