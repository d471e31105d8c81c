"""Statechart diagrams as Graphviz DOT, built from the compiled model.

Conventions (see docs/diagrams.md):

* compound and parallel states are clusters labelled with their names; the regions of a
  parallel state are dashed clusters;
* a small filled circle points at a compound state's initial child; final states are double
  circles; history states are circles labelled ``H`` (shallow) or ``H*`` (deep), with a dotted
  arrow to their default;
* a transition is an edge labelled ``EVENT [guard] / actions``; eventless ones are dashed with an
  italic label, delayed ones (``after``) are dashed blue with a clock label (``⏱ after 2d``);
  edges to or from a compound state end at its cluster border (``lhead``/``ltail`` on an invisible
  anchor node inside the cluster);
* targetless transitions (which change no state) are listed inside their state, as UML's internal
  transitions compartment: ``ADD / total = ...``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping

import graphviz

from ..errors import StatechartError
from ..model import ROOT, Action, MachineModel, State, StateKind, Transition

__all__ = ["render_dot", "render_migration_dot", "render_file", "GraphvizMissingError", "edge_label",
           "INSTALL_HINT"]

INSTALL_HINT = "install Graphviz (apt-get install graphviz / brew install graphviz)"
SYNTHETIC_VERBS = ("timer", "timer-cancel")
FONT = "Helvetica"
ACTIVE_FILL = "#ffd966"
ACTIVE_CLUSTER_FILL = "#fff4cc"
CLOCK = "\u25f7"  # ◷ (DejaVu Sans and most UI fonts have it)


class GraphvizMissingError(StatechartError):
    """The ``dot`` program is needed (SVG, PNG, PDF) but not installed."""


def _model(machine: Any) -> MachineModel:
    return machine if isinstance(machine, MachineModel) else machine.model


def _actions_text(actions: Iterable[Action]) -> str:
    return "; ".join(a.text for a in actions if a.verb not in SYNTHETIC_VERBS)


def _block_actions(blocks: tuple[tuple[Action, ...], ...]) -> str:
    return _actions_text(a for block in blocks for a in block)


def _trim(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _descriptor(transition: Transition) -> str:
    """The event descriptor as written (``error.*``, ``A B``, ``on_done``), from the transition id
    ``<source>:<descriptor>:<n>``; the event names when the id has another shape."""
    prefix = transition.source + ":"
    if transition.id.startswith(prefix) and transition.id.count(":") >= 2:
        written = transition.id[len(prefix):].rsplit(":", 1)[0]
        if written and written not in ("always",) and not written.startswith("after "):
            return written
    return " ".join(transition.events)


def edge_label(transition: Transition, actions: bool = True, *, wrap: bool = False) -> str:
    """``EVENT [guard] / actions``; ``⏱ after 2d`` for delayed transitions, ``[guard]`` alone for
    eventless ones (which are drawn dashed and italic)."""
    guard = transition.cond_text or transition.guard_name
    if transition.delay is not None:
        head = f"{CLOCK} " + transition.label.split(" [")[0]
    elif transition.events:
        head = _descriptor(transition)
    else:
        head = ""
    text = " ".join(part for part in (head, f"[{guard}]" if guard else "") if part)
    if actions:
        body = _actions_text(transition.actions)
        if body:
            text = f"{text}{chr(10) if wrap else ' '}/ {_trim(body)}" if text else f"/ {_trim(body)}"
    return text


def _heat(count: int, top: int) -> tuple[str, str]:
    """(fill colour, font colour) for a count on a white -> orange -> red scale."""
    if count <= 0 or top <= 0:
        return "#ffffff", "black"
    t = count / top
    low, high = (0xfe, 0xed, 0xde), (0xa6, 0x36, 0x03)
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(low, high))
    return "#%02x%02x%02x" % rgb, ("white" if t > 0.55 else "black")


class _Builder:
    def __init__(self, model: MachineModel, *, actions: bool, configuration: Iterable[str] | None,
                 data: Mapping[str, Any] | None, counts: Mapping[str, int] | None, focus: str | None,
                 depth: int | None) -> None:
        self.model = model
        self.states = model.states
        self.actions = actions
        self.active = frozenset(configuration or ())
        self.data = data
        self.counts = dict(counts or {})
        self.top = max(self.counts.values(), default=0)
        focus = focus or ROOT
        if focus not in self.states:
            raise StatechartError(f"no state {focus!r} in {model.name} v{model.version}")
        self.focus = focus
        self.depth = depth
        if depth is not None and depth < 1:
            raise StatechartError("--depth must be 1 or more")
        self.base_depth = 0 if focus == ROOT else self.states[focus].depth
        self.outside: dict[str, str] = {}
        self.loops: dict[str, int] = {}
        self.graph = graphviz.Digraph(model.name)
        self.graph.attr(compound="true", rankdir="TB", fontname=FONT, newrank="true", nodesep="0.35",
                        ranksep="0.45")
        self.graph.attr("node", fontname=FONT, fontsize="11", shape="box", style="rounded,filled",
                        fillcolor="white")
        self.graph.attr("edge", fontname=FONT, fontsize="10")

    # -- which states are drawn, and how ---------------------------------------------------------------
    def in_subtree(self, state: str) -> bool:
        return self.focus == ROOT or state == self.focus or self.focus in self.states[state].ancestors

    def level(self, state: str) -> int:
        return self.states[state].depth - self.base_depth

    def collapsed(self, state: str) -> bool:
        """A compound/parallel state drawn as one box (the depth limit stops at it)."""
        s = self.states[state]
        return (s.kind in (StateKind.COMPOUND, StateKind.PARALLEL) and self.depth is not None
                and self.level(state) >= self.depth and state != self.focus)

    def is_cluster(self, state: str) -> bool:
        s = self.states[state]
        return s.kind in (StateKind.COMPOUND, StateKind.PARALLEL) and not self.collapsed(state)

    def visible(self, state: str) -> str | None:
        """The drawn state that stands for ``state`` (itself, or the collapsed ancestor hiding it);
        None when it lies outside the focused subtree."""
        if not self.in_subtree(state):
            return None
        chain = (state,) + self.states[state].ancestors
        for candidate in reversed(chain):  # outermost first
            if candidate == ROOT or not self.in_subtree(candidate):
                continue
            if self.collapsed(candidate):
                return candidate
        return state

    def endpoint(self, state: str) -> tuple[str, str | None]:
        """(node name, cluster name for lhead/ltail or None)."""
        shown = self.visible(state)
        if shown is None:
            return self.outside_node(state), None
        if self.is_cluster(shown) and shown != ROOT:
            return f"{shown}__anchor", f"cluster_{shown}"
        return shown, None

    def outside_node(self, state: str) -> str:
        name = f"outside__{state}"
        if state not in self.outside:
            path = " \u203a ".join([a for a in reversed(self.states[state].ancestors) if a != ROOT] + [state])
            self.outside[state] = name
            self.graph.node(name, label=path, style="rounded,dashed,filled", fillcolor="#eeeeee",
                            fontcolor="#555555", color="#888888")
        return name

    # -- labels -------------------------------------------------------------------------------------------
    def state_lines(self, state: State) -> list[str]:
        lines = [state.id]
        if state.id in self.counts:
            lines[0] = f"{state.id} ({self.counts[state.id]})"
        if self.actions:
            for word, blocks in (("entry", state.entry), ("exit", state.exit)):
                for block in blocks:
                    for action in block:
                        if action.verb not in SYNTHETIC_VERBS:
                            lines.append(f"{word} / {_trim(action.text)}")
        for t in state.transitions:
            if t.targetless:
                lines.append(edge_label(t, self.actions))
        return lines

    def fill(self, state: str, cluster: bool = False) -> dict[str, str]:
        if self.counts:  # a heat map: states without a count are as cold as zero
            color, font = _heat(self.counts.get(state, 0), self.top)
            return {"fillcolor": color, "fontcolor": font}
        if state in self.active:
            return {"fillcolor": ACTIVE_CLUSTER_FILL if cluster else ACTIVE_FILL, "penwidth": "2"}
        return {"fillcolor": "white"}

    # -- drawing ------------------------------------------------------------------------------------------
    def build(self) -> graphviz.Digraph:
        if self.focus == ROOT:
            self.graph.attr(label=f"{self.model.name} v{self.model.version}", labelloc="t", fontsize="14")
            self.draw_children(self.graph, self.states[ROOT])
            self.draw_initial(self.graph, self.states[ROOT])
        else:
            crumbs = [a for a in reversed(self.states[self.focus].ancestors) if a != ROOT]
            self.graph.attr(label=" \u203a ".join([f"{self.model.name} v{self.model.version}"] + crumbs
                                                  + [self.focus]), labelloc="t", fontsize="14")
            self.draw_state(self.graph, self.states[self.focus], in_parallel=False)
        self.draw_transitions()
        if self.data is not None:
            lines = [f"{k} = {_trim(json.dumps(v, default=str), 40)}" for k, v in self.data.items()]
            self.graph.node("__data__", label="data\\l" + "".join(line.replace("\\", "\\\\") + "\\l"
                                                                   for line in lines),
                            shape="note", style="filled", fillcolor="#f5f5f5", fontname="Courier", fontsize="10")
        return self.graph

    def draw_children(self, graph: graphviz.Digraph, parent: State) -> None:
        for child in parent.children:
            self.draw_state(graph, self.states[child], in_parallel=parent.kind is StateKind.PARALLEL)

    def draw_state(self, graph: graphviz.Digraph, state: State, *, in_parallel: bool) -> None:
        if self.is_cluster(state.id):
            with graph.subgraph(name=f"cluster_{state.id}") as sub:
                style = "rounded,dashed,filled" if in_parallel else "rounded,filled"
                lines = self.state_lines(state)
                label = "\\l".join(lines) + "\\l" if len(lines) > 1 else lines[0]
                if state.kind is StateKind.PARALLEL:
                    label = label.replace(state.id, f"{state.id} \u2225", 1)
                attrs = {"label": label, "style": style, "labeljust": "l", "fontsize": "12", "color": "#444444",
                         "penwidth": "1.3"}
                attrs.update(self.fill(state.id, cluster=True))
                sub.attr(**attrs)
                sub.node(f"{state.id}__anchor", label="", shape="point", style="invis", width="0.01",
                         height="0.01")
                self.draw_children(sub, state)
                self.draw_initial(sub, state)
            return
        if state.kind is StateKind.FINAL:
            attrs = {"shape": "doublecircle", "label": self.state_lines(state)[0], "fontsize": "10",
                     "width": "0.3", "margin": "0.02"}
        elif state.kind is StateKind.HISTORY:
            attrs = {"shape": "circle", "label": "H*" if state.history_deep else "H", "fontsize": "10",
                     "width": "0.3", "fixedsize": "true", "tooltip": state.id, "xlabel": state.id}
        else:
            lines = self.state_lines(state)
            label = lines[0] if len(lines) == 1 else lines[0] + "\\n" + "\\l".join(lines[1:]) + "\\l"
            attrs = {"label": label}
            if self.collapsed(state.id):
                attrs.update(style="rounded,filled,bold", peripheries="2", label=label + " \u2026"
                             if len(lines) == 1 else label, tooltip=f"{state.id}: collapsed")
        attrs.update(self.fill(state.id))
        graph.node(state.id, **attrs)

    def draw_initial(self, graph: graphviz.Digraph, state: State) -> None:
        if state.initial is None or not state.initial.targets or state.kind is StateKind.HISTORY:
            return
        name = "__initial__" if state.id == ROOT else f"{state.id}__initial"
        graph.node(name, label="", shape="point", width="0.12", style="filled", fillcolor="black")
        label = _actions_text(state.initial.actions) if self.actions else ""
        for target in state.initial.targets:
            head, lhead = self.endpoint(target)
            attrs = {"label": f"/ {_trim(label)}"} if label else {}
            if lhead:
                attrs["lhead"] = lhead
            graph.edge(name, head, **attrs)

    def draw_transitions(self) -> None:
        for state in self.states.values():
            if state.id == ROOT:
                continue
            if state.kind is StateKind.HISTORY and state.initial is not None:
                if self.visible(state.id) == state.id:
                    for target in state.initial.targets:
                        head, lhead = self.endpoint(target)
                        attrs = {"style": "dotted", "arrowhead": "vee", "tooltip": f"{state.id}: default"}
                        if lhead:
                            attrs["lhead"] = lhead
                        label = _actions_text(state.initial.actions) if self.actions else ""
                        if label:
                            attrs["label"] = f"/ {_trim(label)}"
                        self.graph.edge(state.id, head, **attrs)
                continue
            source_shown = self.visible(state.id)
            for t in state.transitions:
                if t.targetless:
                    continue
                self.draw_transition(t, source_shown)

    def draw_transition(self, t: Transition, source_shown: str | None) -> None:
        targets_shown = [self.visible(target) for target in t.targets]
        if source_shown is None and all(shown is None for shown in targets_shown):
            return  # entirely outside the focused subtree
        label = edge_label(t, self.actions, wrap=True).replace("\n", "\\n")
        for target, shown in zip(t.targets, targets_shown):
            if source_shown is not None and shown == source_shown and self.collapsed(shown) and \
                    t.source != shown:
                continue  # inside one collapsed box
            tail, ltail = self.endpoint(t.source)
            head, lhead = self.endpoint(target)
            attrs: dict[str, str] = {"label": label, "tooltip": t.id}
            if tail == head:  # self-loops: external labels, and a second loop on another side
                attrs["xlabel"] = attrs.pop("label")
                loops = self.loops.get(tail, 0)
                self.loops[tail] = loops + 1
                if loops % 2 == 1:
                    attrs.update(tailport="s", headport="se")
            # lhead/ltail only when the other end is outside that cluster (else dot ignores them, noisily)
            if lhead and not (ltail == lhead or self._inside(t.source, target)):
                attrs["lhead"] = lhead
            if ltail and not (ltail == lhead or self._inside(target, t.source)):
                attrs["ltail"] = ltail
            if t.delay is not None:
                attrs.update(style="dashed", color="#1f5fbf", fontcolor="#1f5fbf")
            elif not t.events:
                attrs.update(style="dashed", fontname=f"{FONT}-Oblique")
            if t.internal:
                attrs["arrowhead"] = "open"
            if self._backwards(t.source, target):
                attrs["constraint"] = "false"  # keep the layout in document order, top to bottom
            self.graph.edge(tail, head, **attrs)

    def _backwards(self, source: str, target: str) -> bool:
        """A transition back to a state written earlier (not an ancestor): a retry loop."""
        return (self.states[target].order < self.states[source].order
                and target not in self.states[source].ancestors)

    def _inside(self, state: str, ancestor: str) -> bool:
        return ancestor in self.states[state].ancestors


def render_dot(machine: Any, *, actions: bool = True, configuration: Iterable[str] | None = None,
               data: Mapping[str, Any] | None = None, counts: Mapping[str, int] | None = None,
               focus: str | None = None, depth: int | None = None) -> str:
    """The machine as Graphviz DOT text (see the module docstring for the conventions)."""
    builder = _Builder(_model(machine), actions=actions, configuration=configuration, data=data, counts=counts,
                       focus=focus, depth=depth)
    return builder.build().source


# -- migrations -----------------------------------------------------------------------------------------------
def _covered(table: Mapping[str, Any], state: State) -> bool:
    return any(candidate in table for candidate in (state.id,) + state.ancestors[:-1])


def _migration_side(graph: graphviz.Digraph, model: MachineModel, prefix: str, title: str,
                    colours: Mapping[str, str], labels: Mapping[str, str]) -> None:
    def draw(parent: graphviz.Digraph, state: State, in_parallel: bool) -> None:
        name = f"{prefix}__{state.id}"
        label = labels.get(state.id, state.id)
        colour = colours.get(state.id)
        if state.kind in (StateKind.COMPOUND, StateKind.PARALLEL):
            with parent.subgraph(name=f"cluster_{name}") as sub:
                sub.attr(label=label + (" \u2225" if state.kind is StateKind.PARALLEL else ""),
                         style="rounded,dashed" if in_parallel else "rounded", labeljust="l",
                         color=colour or "#444444", fontcolor=colour or "black")
                sub.node(f"{name}__anchor", label="", shape="point", style="invis", width="0.01", height="0.01")
                for child in state.children:
                    draw(sub, model.states[child], state.kind is StateKind.PARALLEL)
            return
        attrs: dict[str, str] = {"label": label}
        if state.kind is StateKind.FINAL:
            attrs.update(shape="doublecircle", fontsize="10", margin="0.02")
        elif state.kind is StateKind.HISTORY:
            attrs.update(shape="circle", label="H*" if state.history_deep else "H", xlabel=state.id)
        if colour:
            attrs.update(color=colour, fontcolor=colour, fillcolor="#fde0dc", penwidth="2")
        parent.node(name, **attrs)

    with graph.subgraph(name=f"cluster_{prefix}") as side:
        side.attr(label=title, fontsize="14", style="rounded", color="#999999")
        for child in model.states[ROOT].children:
            draw(side, model.states[child], False)


def render_migration_dot(old_machine: Any, new_machine: Any, step: Any,
                         counts: Mapping[str, int] | None = None) -> str:
    """Two versions side by side with the step's state mapping drawn as arrows between them.

    ``step`` is a :class:`statechart.migrate.chain.Step`: a ``STATES`` table gives one arrow per
    (old, new) pair; a ``map_state`` function is code, so only the identities (ids in both
    versions) are drawn, dashed and labelled ``map_state``. Old states that nothing maps are red.
    ``counts`` (old state id -> instances) label the arrows."""
    old, new = _model(old_machine), _model(new_machine)
    counts = dict(counts or {})
    graph = graphviz.Digraph(f"{old.name}_migration")
    graph.attr(compound="true", rankdir="LR", fontname=FONT, nodesep="0.25", ranksep="1.6",
               label=f"{old.name}: v{old.version} \u2192 v{new.version}", labelloc="t", fontsize="16")
    graph.attr("node", fontname=FONT, fontsize="11", shape="box", style="rounded,filled", fillcolor="white")
    graph.attr("edge", fontname=FONT, fontsize="10", color="#2b6cb0", fontcolor="#2b6cb0")

    pairs: list[tuple[str, str, bool]] = []  # (old id, new id, by map_state)
    unmapped: set[str] = set()
    drawable = [s for s in old.states.values() if s.id != ROOT and s.kind is not StateKind.HISTORY]
    if getattr(step, "states", None) is not None:
        table = step.states
        for key, value in table.items():
            for target in ([value] if isinstance(value, str) else list(value)):
                pairs.append((key, target, False))
        for s in drawable:
            if s.is_atomic and not _covered(table, s):
                unmapped.add(s.id)
        for s in drawable:  # a compound state none of whose leaves is covered
            if not s.is_atomic and not _covered(table, s):
                leaves = [d for d in drawable if s.id in d.ancestors and d.is_atomic]
                if leaves and all(d in unmapped for d in (x.id for x in leaves)):
                    unmapped.add(s.id)
    else:
        for s in drawable:
            if s.id in new.states:
                pairs.append((s.id, s.id, True))
            else:
                unmapped.add(s.id)

    labels = {s: f"{s} ({counts[s]})" for s in counts if s in old.states}
    _migration_side(graph, old, "old", f"v{old.version}", {s: "#c0392b" for s in unmapped}, labels)
    _migration_side(graph, new, "new", f"v{new.version}", {}, {})

    def end(model: MachineModel, prefix: str, state: str) -> tuple[str, str | None]:
        s = model.states.get(state)
        if s is not None and s.kind in (StateKind.COMPOUND, StateKind.PARALLEL) and state != ROOT:
            return f"{prefix}__{state}__anchor", f"cluster_{prefix}__{state}"
        return f"{prefix}__{state}", None

    for source, target, by_function in pairs:
        tail, ltail = end(old, "old", source)
        head, lhead = end(new, "new", target)
        attrs: dict[str, str] = {"tooltip": f"{source} -> {target}"}
        if ltail:
            attrs["ltail"] = ltail
        if lhead:
            attrs["lhead"] = lhead
        if by_function:
            attrs.update(style="dashed", label="map_state")
        if source in counts:
            attrs["label"] = (attrs.get("label", "") + f" {counts[source]}").strip()
            attrs["penwidth"] = str(1 + min(4, counts[source] ** 0.5 / 2))
        if target not in new.states:
            attrs.update(color="#c0392b", fontcolor="#c0392b", label=(attrs.get("label", "") + " (unknown)").strip())
            graph.node(head, label=target, color="#c0392b", fontcolor="#c0392b", style="rounded,dashed")
        graph.edge(tail, head, **attrs)
    return graph.source


# -- files ----------------------------------------------------------------------------------------------------
def dot_available() -> bool:
    return shutil.which("dot") is not None


def render_file(dot_source: str, output: str | Path) -> Path:
    """Write DOT text as ``output``: ``.dot`` as it is, ``.svg``/``.png``/``.pdf`` through Graphviz."""
    path = Path(output)
    fmt = path.suffix.lower().lstrip(".")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("dot", "gv"):
        path.write_text(dot_source, encoding="utf-8")
        return path
    if fmt not in ("svg", "png", "pdf"):
        raise StatechartError(f"{output}: the output must end in .svg, .png, .pdf, .dot or .mmd")
    if not dot_available():
        raise GraphvizMissingError(f"rendering {output} needs the Graphviz `dot` program: {INSTALL_HINT}")
    try:
        data = graphviz.Source(dot_source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissingError(f"rendering {output} needs the Graphviz `dot` program: {INSTALL_HINT}") from None
    except graphviz.CalledProcessError as error:
        raise StatechartError(f"dot failed on {output}: {error.stderr.decode(errors='replace').strip()}") from None
    path.write_bytes(data)
    return path
