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

import html
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import attrs
import graphviz

from ..durations import format_duration
from ..errors import StatechartError
from ..model import ROOT, Action, MachineModel, State, StateKind, Transition

__all__ = ["render_dot", "render_migration_dot", "render_file", "GraphvizMissingError", "edge_label",
           "ChangeMarks", "render_svg", "INSTALL_HINT", "ADDED", "REMOVED", "CHANGED", "UNREACHED",
           "model_of", "actions_text", "block_actions_text"]

INSTALL_HINT = "install Graphviz (apt-get install graphviz / brew install graphviz)"
SYNTHETIC_VERBS = ("timer", "timer-cancel")
FONT = "Helvetica"
ACTIVE_FILL = "#ffd966"
ACTIVE_CLUSTER_FILL = "#fff4cc"
CLOCK = "\u25f7"  # ◷ (DejaVu Sans and most UI fonts have it)
LABEL_WIDTH = 40  # characters per line of a wrapped edge label (the full text is in the tooltip)
STATE_LABEL_WIDTH = 56  # the same inside a state's box
ADDED, ADDED_FILL = "#1a7f37", "#dafbe1"  # review marks: green, red, amber (see ChangeMarks)
REMOVED, REMOVED_FILL = "#c0392b", "#fde0dc"
CHANGED, CHANGED_FILL = "#b7791f", "#fff1c2"
UNREACHED = "#6b46c1"  # new states that no migration arrow reaches


@attrs.frozen
class ChangeMarks:
    """What a review marks on the drawing of a new version (``render_dot(..., changes=)``).

    ``added`` and ``changed`` hold ids of states and transitions of the drawn (new) version;
    ``changed`` says why. ``removed_states`` and ``removed_transitions`` come from the old version
    and are drawn as ghosts where they were: a removed state inside its old parent, a removed
    transition between the states (or ghosts) it joined. Built by
    :func:`statechart.render.review.change_marks` from a :class:`~statechart.migrate.diff.MachineDiff`."""

    added: frozenset[str] = frozenset()
    changed: Mapping[str, str] = attrs.field(factory=dict)
    removed_states: tuple[State, ...] = ()
    removed_transitions: tuple[Transition, ...] = ()

    def mark(self, element: str) -> str | None:
        """``added``, ``changed`` or None for a state or transition id of the new version."""
        if element in self.added:
            return "added"
        if element in self.changed:
            return "changed"
        return None


class GraphvizMissingError(StatechartError):
    """The ``dot`` program is needed (SVG, PNG, PDF) but not installed."""


class _Html(str):
    """An HTML-like label this module built (every piece of machine text inside it escaped)."""


def _plain(value: Any) -> Any:
    """Machine text is data: a label, tooltip or description written ``<...>`` must not become
    an HTML-like label (the graphviz package would emit it unquoted, and DOT would parse it)."""
    return graphviz.nohtml(value) if isinstance(value, str) and not isinstance(value, _Html) else value


class _Digraph(graphviz.Digraph):
    """A Digraph whose attribute values are quoted as plain text unless built as :class:`_Html`."""

    def node(self, name: str, label: str | None = None, **attrs: Any) -> None:
        super().node(name, label=_plain(label), **{k: _plain(v) for k, v in attrs.items()})

    def edge(self, tail_name: str, head_name: str, label: str | None = None, **attrs: Any) -> None:
        super().edge(tail_name, head_name, label=_plain(label), **{k: _plain(v) for k, v in attrs.items()})

    def attr(self, kw: str | None = None, **attrs: Any) -> None:
        super().attr(kw, **{k: _plain(v) for k, v in attrs.items()})


def model_of(machine: Any) -> MachineModel:
    """The compiled model of a :class:`~statechart.machine.Machine`, or the model itself: renderers take either."""
    return machine if isinstance(machine, MachineModel) else machine.model


def actions_text(actions: Iterable[Action]) -> str:
    """Actions as their authors wrote them, ``; ``-separated; the timers the compiler adds for
    delayed transitions are left out, the diagram shows those on the edge."""
    return "; ".join(a.text for a in actions if a.verb not in SYNTHETIC_VERBS)


def block_actions_text(blocks: tuple[tuple[Action, ...], ...]) -> str:
    """:func:`actions_text` of a state's entry or exit blocks, all blocks in order."""
    return actions_text(a for block in blocks for a in block)


def _trim(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _wrap(text: str, width: int = LABEL_WIDTH, indent: str = "  ") -> list[str]:
    """Lines of at most ``width`` characters, broken between words (and after ``;``), never cut:
    an emitted event's name at the end of a long action list stays readable."""
    return textwrap.wrap(text, width, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [text]


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
        body = actions_text(transition.actions)
        if body and wrap:  # every action on the drawing, broken into lines (no ellipsis)
            text = "\n".join(([text] if text else []) + _wrap(f"/ {body}"))
        elif body:
            text = f"{text} / {_trim(body)}" if text else f"/ {_trim(body)}"
    return text


def full_label(transition: Transition) -> str:
    """The whole ``EVENT [guard] / actions`` text on one line, for tooltips."""
    text = edge_label(transition, actions=False)
    body = actions_text(transition.actions)
    return f"{text} / {body}" if text and body else (text or (f"/ {body}" if body else ""))


def _heat(count: float, top: int) -> tuple[str, str]:
    """(fill colour, font colour) for a count on a white -> orange -> red scale; counts above
    ``top`` (a compound state's total) get the darkest colour. The font turns white on dark fills
    so that labels keep their contrast."""
    if count <= 0 or top <= 0:
        return "#ffffff", "black"
    t = min(1.0, count / top)
    low, high = (0xfe, 0xed, 0xde), (0xa6, 0x36, 0x03)
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(low, high))
    return "#%02x%02x%02x" % rgb, ("white" if t > 0.55 else "black")


def _lines(parts: Iterable[str]) -> str:
    """Lines for a tooltip, as a DOT escString (``\\n`` breaks the line in the SVG ``<title>``)."""
    return "\\n".join(part.replace("\\", "\\\\") for part in parts)


def _html(text: str) -> str:
    return html.escape(text, quote=False)


class _Builder:
    def __init__(self, model: MachineModel, *, actions: bool, configuration: Iterable[str] | None,
                 data: Mapping[str, Any] | None, counts: Mapping[str, int] | None, focus: str | None,
                 depth: int | None, instance: str | None = None, revision: int | None = None,
                 pending: Sequence[Any] | None = None, now: float | None = None,
                 changes: ChangeMarks | None = None) -> None:
        self.model = model
        self.states = model.states
        self.actions = actions
        self.active = frozenset(configuration or ())
        self.data = data
        self.counts = dict(counts or {})
        # The heat scale runs over atomic states only: a compound state counts every instance inside
        # it, so scaling over it would darken the whole chart and hide the real hot spots.
        self.top = max((n for s, n in self.counts.items() if s in self.states and self._leaf(s)), default=0)
        self.instance = instance
        self.revision = revision
        self.pending = tuple(pending or ())
        self.now = now
        self.changes = changes
        focus = focus or ROOT
        if focus not in self.states:
            raise StatechartError(f"no state {focus!r} in {model.name} v{model.version}")
        self.focus = focus
        self.depth = depth
        if depth is not None and depth < 1:
            raise StatechartError("--depth must be 1 or more")
        self.base_depth = 0 if focus == ROOT else self.states[focus].depth
        self.outside: dict[str, str] = {}
        self.ghosts: dict[str, str] = {}  # removed state id -> the ghost node that stands for it
        self.graph = _Digraph(model.name)
        self.graph.attr(compound="true", rankdir="TB", fontname=FONT, newrank="true", nodesep="0.35",
                        ranksep="0.45")
        self.graph.attr("node", fontname=FONT, fontsize="11", shape="box", style="rounded,filled",
                        fillcolor="white")
        self.graph.attr("edge", fontname=FONT, fontsize="10")
        if changes is not None:
            self._place_ghosts(changes)

    def _leaf(self, state: str) -> bool:
        return self.states[state].kind not in (StateKind.COMPOUND, StateKind.PARALLEL)

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
        if state not in self.states:  # a removed state of a review: its ghost
            return self.ghosts[state], None
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
                            lines.extend(_wrap(f"{word} / {action.text}", STATE_LABEL_WIDTH))
        for t in state.transitions:
            if t.targetless:
                text = edge_label(t, self.actions)
                lines.extend(_wrap(full_label(t) if self.actions else text, STATE_LABEL_WIDTH))
        return lines

    def tooltip(self, state: State) -> str:
        """The full text of a state: its id, description, actions and internal transitions."""
        parts = [state.id + (f": {state.description}" if state.description else "")]
        if self.actions:
            for word, blocks in (("entry", state.entry), ("exit", state.exit)):
                parts += [f"{word} / {a.text}" for b in blocks for a in b if a.verb not in SYNTHETIC_VERBS]
        parts += [full_label(t) for t in state.transitions if t.targetless]
        mark = self.changes.mark(state.id) if self.changes else None
        if mark == "changed":
            parts.append(f"changed: {self.changes.changed[state.id]}")  # type: ignore[union-attr]
        elif mark:
            parts.append(mark)
        return _lines(parts)

    def fill(self, state: str, cluster: bool = False) -> dict[str, str]:
        mark = self.changes.mark(state) if self.changes else None
        if mark:
            colour, fill = (ADDED, ADDED_FILL) if mark == "added" else (CHANGED, CHANGED_FILL)
            return {"fillcolor": fill, "color": colour, "penwidth": "2.5", "class": f"state {mark}"}
        if self.counts:  # a heat map: states without a count are as cold as zero
            count = self.counts.get(state, 0)
            if cluster:  # a compound state: outlined by its total, its inside left readable
                outline = _heat(max(count, 0.4 * self.top), self.top)[0] if count else "#444444"
                return {"fillcolor": "white", "color": outline, "penwidth": "2.5" if count else "1.3"}
            color, font = _heat(count, self.top)
            return {"fillcolor": color, "fontcolor": font}
        if state in self.active:
            return {"fillcolor": ACTIVE_CLUSTER_FILL if cluster else ACTIVE_FILL, "penwidth": "2"}
        return {"fillcolor": "white"}

    # -- drawing ------------------------------------------------------------------------------------------
    def title(self) -> str:
        head = f"{self.model.name} v{self.model.version}"
        if self.focus != ROOT:
            crumbs = [a for a in reversed(self.states[self.focus].ancestors) if a != ROOT]
            head = " \u203a ".join([head] + crumbs + [self.focus])
        if self.instance is not None:
            head += f" \u2014 instance {self.instance}"
            if self.revision is not None:
                head += f", revision {self.revision}"
        lines = [head]
        if self.model.description and self.focus == ROOT:
            lines += _wrap(self.model.description, 90, indent="")
        return "\\n".join(line.replace("\\", "\\\\") for line in lines)

    def build(self) -> graphviz.Digraph:
        self.graph.attr(label=self.title(), labelloc="t", fontsize="14")
        if self.model.description:
            self.graph.attr(tooltip=self.model.description)
        if self.focus == ROOT:
            self.draw_children(self.graph, self.states[ROOT])
            self.draw_initial(self.graph, self.states[ROOT])
        else:
            self.draw_state(self.graph, self.states[self.focus], in_parallel=False)
        self.draw_transitions()
        if self.changes is not None:
            self.draw_removed_transitions(self.changes)
        if self.data is not None:
            lines = [f"{k} = {_trim(json.dumps(v, default=str), 40)}" for k, v in self.data.items()]
            self.graph.node("__data__", label="data\\l" + "".join(line.replace("\\", "\\\\") + "\\l"
                                                                   for line in lines),
                            shape="note", style="filled", fillcolor="#f5f5f5", fontname="Courier", fontsize="10")
        if self.instance is not None or self.pending:
            self.draw_timers()
        if self.counts:
            self.draw_heat_legend()
        return self.graph

    def draw_timers(self) -> None:
        """The instance's pending timers (delayed sends and ``after`` transitions) in a note."""
        after = {e: t for s in self.states.values() for t in s.transitions if t.delay is not None for e in t.events}
        lines = []
        for send in sorted(self.pending, key=lambda p: (p.due, p.seq)):
            what = (f"{CLOCK} {after[send.event].label.split(' [')[0]} of {after[send.event].source}"
                    if send.event in after else f"send {send.event}")
            when = (f"in {format_duration(send.due - self.now)}" if self.now is not None and send.due >= self.now
                    else "due now" if self.now is not None else f"due at {send.due:g}")
            lines.append(f"{what}  {when}")
        text = "pending timers\\l" + "".join(line.replace("\\", "\\\\") + "\\l" for line in lines or ["(none)"])
        self.graph.node("__timers__", label=text, shape="note", style="filled", fillcolor="#eef4fb",
                        color="#1f5fbf", fontname="Courier", fontsize="10")

    def draw_heat_legend(self) -> None:
        """A legend of the heat scale: what the colours of atomic states and compound outlines mean."""
        top = max(self.top, 1)
        stops = sorted({0, max(1, round(top / 4)), max(1, round(top / 2)), max(1, round(3 * top / 4)), top})
        cells = "".join(f'<td bgcolor="{_heat(n, self.top)[0]}"><font color="{_heat(n, self.top)[1]}">{n}</font></td>'
                        for n in stops)
        label = _Html(f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="4">'
                 f'<tr><td colspan="{len(stops)}" align="left"><b>instances per state</b></td></tr><tr>{cells}</tr>'
                 f'<tr><td colspan="{len(stops)}" align="left">compound states: outline and (total inside)</td></tr>'
                 f'</table>>')
        with self.graph.subgraph(name="legend") as legend:
            legend.attr(rank="sink")
            legend.node("__legend__", label=label, shape="plain", style="")

    def draw_children(self, graph: graphviz.Digraph, parent: State) -> None:
        for child in parent.children:
            self.draw_state(graph, self.states[child], in_parallel=parent.kind is StateKind.PARALLEL)
        if parent.kind is StateKind.PARALLEL:
            self.order_regions(graph, parent)
        for ghost in self.ghost_children.get(parent.id, ()) if self.changes else ():
            self.draw_ghost(graph, ghost)

    def order_regions(self, graph: graphviz.Digraph, parallel: State) -> None:
        """Regions left to right in document order. Left alone, dot's crossing minimisation puts
        sibling clusters in whatever order crosses fewest edges (often reversed). A hidden node above
        the regions points at the top of each, in order, with ``ordering=out``; and the graph gets a
        small ``mclimit`` so that the minimisation keeps that order rather than undo it."""
        regions = [c for c in parallel.children if self.is_cluster(c)]
        if len(regions) < 2:
            return
        fan = f"{parallel.id}__regions"
        graph.node(fan, label="", shape="point", style="invis", width="0.01", height="0.01", ordering="out")
        for region in regions:
            top = self.states[region].initial
            graph.edge(fan, f"{region}__initial" if top is not None and top.targets else f"{region}__anchor",
                       style="invis")
        self.graph.attr(mclimit="0.01")

    def draw_state(self, graph: graphviz.Digraph, state: State, *, in_parallel: bool) -> None:
        if self.is_cluster(state.id):
            with graph.subgraph(name=f"cluster_{state.id}") as sub:
                style = "rounded,dashed,filled" if in_parallel else "rounded,filled"
                lines = self.state_lines(state)
                label = "\\l".join(lines) + "\\l" if len(lines) > 1 else lines[0]
                if state.kind is StateKind.PARALLEL:
                    label = label.replace(state.id, f"{state.id} \u2225", 1)
                attrs = {"label": label, "style": style, "labeljust": "l", "fontsize": "12", "color": "#444444",
                         "penwidth": "1.3", "tooltip": self.tooltip(state), "id": f"state:{state.id}"}
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
                     "width": "0.3", "fixedsize": "true", "xlabel": state.id}
        else:
            lines = self.state_lines(state)
            label = lines[0] if len(lines) == 1 else lines[0] + "\\n" + "\\l".join(lines[1:]) + "\\l"
            attrs = {"label": label}
            if self.collapsed(state.id):
                attrs.update(style="rounded,filled,bold", peripheries="2", label=label + " \u2026"
                             if len(lines) == 1 else label)
        attrs["tooltip"] = self.tooltip(state) + (": collapsed" if self.collapsed(state.id) else "")
        attrs["id"] = f"state:{state.id}"
        attrs.update(self.fill(state.id))
        graph.node(state.id, **attrs)

    def draw_initial(self, graph: graphviz.Digraph, state: State) -> None:
        if state.initial is None or not state.initial.targets or state.kind is StateKind.HISTORY:
            return
        name = "__initial__" if state.id == ROOT else f"{state.id}__initial"
        graph.node(name, label="", shape="point", width="0.12", style="filled", fillcolor="black")
        label = actions_text(state.initial.actions) if self.actions else ""
        for target in state.initial.targets:
            head, lhead = self.endpoint(target)
            attrs = {"label": "\\n".join(_wrap(f"/ {label}"))} if label else {}
            if lhead:
                attrs["lhead"] = lhead
            graph.edge(name, head, **attrs)

    def draw_transitions(self) -> None:
        loops: dict[str, list[Transition]] = {}
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
                        label = actions_text(state.initial.actions) if self.actions else ""
                        if label:
                            attrs["label"] = "\\n".join(_wrap(f"/ {label}"))
                        self.graph.edge(state.id, head, **attrs)
                continue
            source_shown = self.visible(state.id)
            for t in state.transitions:
                if t.targetless:
                    continue
                self.draw_transition(t, source_shown, loops)
        for node, transitions in loops.items():
            self.draw_loops(node, transitions)

    def _mark_attrs(self, element: str) -> dict[str, str]:
        mark = self.changes.mark(element) if self.changes else None
        if mark is None:
            return {}
        colour = ADDED if mark == "added" else CHANGED
        return {"color": colour, "fontcolor": colour, "penwidth": "2.5", "class": f"transition {mark}"}

    def draw_transition(self, t: Transition, source_shown: str | None,
                        loops: dict[str, list[Transition]]) -> None:
        targets_shown = [self.visible(target) for target in t.targets]
        if source_shown is None and all(shown is None for shown in targets_shown):
            return  # entirely outside the focused subtree
        label = edge_label(t, self.actions, wrap=True).replace("\n", "\\n")
        for index, (target, shown) in enumerate(zip(t.targets, targets_shown)):
            if source_shown is not None and shown == source_shown and self.collapsed(shown) and \
                    t.source != shown:
                continue  # inside one collapsed box
            tail, ltail = self.endpoint(t.source)
            head, lhead = self.endpoint(target)
            if tail == head:  # self-loops are gathered: one loop per state, one line per transition
                loops.setdefault(tail, []).append(t)
                continue
            attrs: dict[str, str] = {"label": label, "tooltip": t.id, "labeltooltip": full_label(t),
                                     "id": f"transition:{t.id}:{index}"}
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
            attrs.update(self._mark_attrs(t.id))
            self.graph.edge(tail, head, **attrs)

    def draw_loops(self, node: str, transitions: list[Transition]) -> None:
        """All the self-loops of one state as a single loop whose label has one line per transition.

        Separate loops get labels that dot places on top of each other (and of nearby edges);
        one loop with one label is laid out with room for it. Each line keeps its transition's
        look: blue for delayed, italic for eventless, and the review colours."""
        rows, ids = [], []
        marks = set()
        for t in dict.fromkeys(transitions):  # a transition listing its own state twice is one line
            ids.append(t.id)
            colour = "#1f5fbf" if t.delay is not None else None
            mark = self.changes.mark(t.id) if self.changes else None
            if mark:
                marks.add(mark)
                colour = ADDED if mark == "added" else CHANGED
            for number, line in enumerate(edge_label(t, self.actions, wrap=True).split("\n")):
                text = _html(line)
                if not t.events and number == 0:
                    text = f"<i>{text}</i>"
                if colour:
                    text = f'<font color="{colour}">{text}</font>'
                rows.append(text + '<br align="left"/>')
        attrs = {"label": _Html("<" + "".join(rows) + ">"), "tooltip": "; ".join(ids),
                 "labeltooltip": _lines(full_label(t) for t in dict.fromkeys(transitions)),
                 "id": f"loop:{node}"}
        if all(t.delay is not None for t in transitions):
            attrs.update(style="dashed", color="#1f5fbf")
        if marks:
            mark = "changed" if "changed" in marks else "added"
            colour = ADDED if mark == "added" else CHANGED
            attrs.update(color=colour, penwidth="2.5", **{"class": f"transition {mark}"})
        self.graph.edge(node, node, **attrs)

    # -- review ghosts --------------------------------------------------------------------------------
    def _place_ghosts(self, changes: ChangeMarks) -> None:
        """Where each removed state is drawn: inside its nearest old ancestor that the new version
        still draws as a cluster (else at the top). A removed state inside a removed state is
        represented by its outermost removed ancestor's ghost."""
        removed = {s.id: s for s in changes.removed_states}
        self.ghost_children: dict[str, list[State]] = {}
        for state in changes.removed_states:
            outer = next((a for a in reversed(state.ancestors) if a in removed), None)
            if outer is not None:
                continue
            home = next((a for a in state.ancestors if a == ROOT or (a in self.states and self.is_cluster(a))), ROOT)
            self.ghost_children.setdefault(home, []).append(state)
            self.ghosts[state.id] = f"ghost__{state.id}"
        for state in changes.removed_states:
            if state.id not in self.ghosts:
                outer = next(a for a in reversed(state.ancestors) if a in removed and a in self.ghosts)
                self.ghosts[state.id] = self.ghosts[outer]

    def draw_ghost(self, graph: graphviz.Digraph, state: State) -> None:
        inside = [s.id for s in self.changes.removed_states if state.id in s.ancestors] if self.changes else []
        label = f"{state.id}\\n(removed)" + (f"\\nwith {', '.join(inside)}" if inside else "")
        graph.node(self.ghosts[state.id], label=label, style="rounded,dashed,filled", fillcolor=REMOVED_FILL,
                   color=REMOVED, fontcolor=REMOVED, penwidth="2", tooltip=f"{state.id}: removed",
                   id=f"state:{state.id}", **{"class": "state removed"})

    def draw_removed_transitions(self, changes: ChangeMarks) -> None:
        for t in changes.removed_transitions:
            if t.source not in self.states or t.targetless:
                continue  # the ghost of a removed state stands for its transitions too
            for index, target in enumerate(t.targets):
                if target not in self.states and target not in self.ghosts:
                    continue
                tail, ltail = self.endpoint(t.source)
                head, lhead = self.endpoint(target)
                attrs = {"label": edge_label(t, self.actions, wrap=True).replace("\n", "\\n"),
                         "tooltip": f"{t.id} (removed)", "labeltooltip": f"removed: {full_label(t)}",
                         "style": "dashed", "color": REMOVED, "fontcolor": REMOVED, "penwidth": "2",
                         "constraint": "false", "id": f"transition:{t.id}:{index}:removed",
                         "class": "transition removed"}
                if lhead and not ltail == lhead:
                    attrs["lhead"] = lhead
                if ltail and not ltail == lhead:
                    attrs["ltail"] = ltail
                self.graph.edge(tail, head, **attrs)

    def _backwards(self, source: str, target: str) -> bool:
        """A transition back to a state written earlier (not an ancestor): a retry loop."""
        return (self.states[target].order < self.states[source].order
                and target not in self.states[source].ancestors)

    def _inside(self, state: str, ancestor: str) -> bool:
        return ancestor in self.states[state].ancestors


def render_dot(machine: Any, *, actions: bool = True, configuration: Iterable[str] | None = None,
               data: Mapping[str, Any] | None = None, counts: Mapping[str, int] | None = None,
               focus: str | None = None, depth: int | None = None, instance: str | None = None,
               revision: int | None = None, pending: Sequence[Any] | None = None, now: float | None = None,
               changes: ChangeMarks | None = None) -> str:
    """The machine as Graphviz DOT text (see the module docstring for the conventions).

    ``instance``/``revision`` name a drawn instance in the title and ``pending`` (its
    ``PendingSend`` timers, due times relative to ``now`` when given) lists its timers in a
    note; ``changes`` marks what a review found added, changed and removed."""
    builder = _Builder(model_of(machine), actions=actions, configuration=configuration, data=data, counts=counts,
                       focus=focus, depth=depth, instance=instance, revision=revision, pending=pending, now=now,
                       changes=changes)
    return builder.build().source


# -- migrations -----------------------------------------------------------------------------------------------
def _covered(table: Mapping[str, Any], state: State) -> bool:
    return any(candidate in table for candidate in (state.id,) + state.ancestors[:-1])


def _migration_side(graph: graphviz.Digraph, model: MachineModel, prefix: str, title: str,
                    colours: Mapping[str, str], labels: Mapping[str, str],
                    tooltips: Mapping[str, str] | None = None) -> list[str]:
    """One version as nested clusters; returns the names of the nodes it drew (for the layout)."""
    drawn: list[str] = []
    tooltips = tooltips or {}

    def draw(parent: graphviz.Digraph, state: State, in_parallel: bool) -> None:
        name = f"{prefix}__{state.id}"
        label = labels.get(state.id, state.id)
        colour = colours.get(state.id)
        dashed = colour == UNREACHED
        if state.kind in (StateKind.COMPOUND, StateKind.PARALLEL):
            with parent.subgraph(name=f"cluster_{name}") as sub:
                sub.attr(label=label + (" \u2225" if state.kind is StateKind.PARALLEL else ""),
                         style="rounded,dashed" if in_parallel or dashed else "rounded", labeljust="l",
                         color=colour or "#444444", fontcolor=colour or "black",
                         tooltip=tooltips.get(state.id, state.id))
                sub.node(f"{name}__anchor", label="", shape="point", style="invis", width="0.01", height="0.01")
                drawn.append(f"{name}__anchor")
                for child in state.children:
                    draw(sub, model.states[child], state.kind is StateKind.PARALLEL)
            return
        attrs: dict[str, str] = {"label": label, "tooltip": tooltips.get(state.id, state.id)}
        if state.kind is StateKind.FINAL:
            attrs.update(shape="doublecircle", fontsize="10", margin="0.02")
        elif state.kind is StateKind.HISTORY:
            attrs.update(shape="circle", label="H*" if state.history_deep else "H", xlabel=state.id)
        if dashed:
            attrs.update(color=colour, fontcolor=colour, fillcolor="#f3efff", penwidth="2",
                         style="rounded,dashed,filled")
        elif colour:
            attrs.update(color=colour, fontcolor=colour, fillcolor="#fde0dc", penwidth="2")
        parent.node(name, **attrs)
        drawn.append(name)

    with graph.subgraph(name=f"cluster_{prefix}") as side:
        side.attr(label=title, fontsize="14", style="rounded", color="#999999")
        side.node(f"{prefix}__top", label="", shape="point", style="invis", width="0.01", height="0.01")
        drawn.append(f"{prefix}__top")
        for child in model.states[ROOT].children:
            draw(side, model.states[child], False)
    return drawn


def render_migration_dot(old_machine: Any, new_machine: Any, step: Any,
                         counts: Mapping[str, int] | None = None) -> str:
    """Two versions side by side with the step's state mapping drawn as arrows between them.

    ``step`` is a :class:`statechart.migrate.chain.Step`: a ``STATES`` table gives one arrow per
    (old, new) pair; a ``map_state`` function is code, so only the identities (ids in both
    versions) are drawn, dashed and labelled ``map_state``. Old states that nothing maps are red;
    new states that no arrow reaches are dashed purple, ``(no arrow)``. ``counts`` (old state id
    -> instances, as ``Store.count`` gives them) label the arrows: each atomic state's instances
    on the one arrow that takes them (see :mod:`statechart.migrate.arrows`), so the numbers add up.

    The layout does not depend on the arrows nor the counts: each version is a column in document
    order, the arrows do not constrain it, and counts are tail labels (placed after the layout) and
    pen widths; a drawing made before and after a batch of instances moves keeps every state where
    it was, and a new state that no arrow reaches stays in the new column."""
    from ..migrate.arrows import step_arrows

    old, new = model_of(old_machine), model_of(new_machine)
    mapping = step_arrows(step, old, new, counts)
    graph = _Digraph(f"{old.name}_migration")
    title = f"{old.name}: v{old.version} \u2192 v{new.version}"
    if mapping.instances is not None:
        title += f"  ({mapping.instances} instance{'s' if mapping.instances != 1 else ''} of v{old.version})"
    graph.attr(compound="true", rankdir="LR", fontname=FONT, nodesep="0.25", ranksep="1.6", newrank="true", mclimit="0.01",
               label=title, labelloc="t", fontsize="16")
    graph.attr("node", fontname=FONT, fontsize="11", shape="box", style="rounded,filled", fillcolor="white")
    graph.attr("edge", fontname=FONT, fontsize="10", color="#2b6cb0", fontcolor="#2b6cb0")

    leaf_counts = {s: n for s, n in (counts or {}).items()
                   if s in old.states and old.states[s].kind not in (StateKind.COMPOUND, StateKind.PARALLEL)}
    labels = {s: f"{s} ({n})" for s, n in leaf_counts.items() if n}
    unreached = {s: UNREACHED for s in mapping.unreached}
    old_nodes = _migration_side(graph, old, "old", f"v{old.version}", {s: REMOVED for s in mapping.unmapped},
                                labels)
    new_nodes = _migration_side(graph, new, "new", f"v{new.version}", unreached,
                                {s: f"{s} (no arrow)" for s in mapping.unreached},
                                {s: f"{s}: no old state maps here; only new instances reach it"
                                 for s in mapping.unreached})
    def end(model: MachineModel, prefix: str, state: str) -> tuple[str, str | None]:
        s = model.states.get(state)
        if s is not None and s.kind in (StateKind.COMPOUND, StateKind.PARALLEL) and state != ROOT:
            return f"{prefix}__{state}__anchor", f"cluster_{prefix}__{state}"
        return f"{prefix}__{state}", None

    # The layout comes from the two versions alone: a hidden hub puts the old version in one column
    # and the new one in the next, each top to bottom in document order (ordering=out), and the
    # arrows do not constrain anything. Counts are tail labels and pen widths, placed after layout.
    graph.node("__layout__", label="", shape="point", style="invis", width="0.01", height="0.01",
               ordering="out")
    for name in old_nodes:
        graph.edge("__layout__", name, style="invis")
    for name in new_nodes:
        graph.edge("__layout__", name, style="invis", minlen="2")
    graph.edge("old__top", "new__top", style="invis", weight="100")  # both columns start at the top

    for arrow in mapping.arrows:
        tail, ltail = end(old, "old", arrow.old)
        head, lhead = end(new, "new", arrow.new)
        attrs: dict[str, str] = {"tooltip": f"{arrow.old} -> {arrow.new}", "constraint": "false"}
        if ltail:
            attrs["ltail"] = ltail
        if lhead:
            attrs["lhead"] = lhead
        if arrow.by_function:
            attrs.update(style="dashed", label="map_state")
        if arrow.instances:  # a tail label and a pen width: neither moves anything in the layout
            attrs["taillabel"] = str(arrow.instances)
            attrs["penwidth"] = str(1 + min(4, arrow.instances ** 0.5 / 2))
        if not arrow.known:
            attrs.update(color=REMOVED, fontcolor=REMOVED, label=(attrs.get("label", "") + " (unknown)").strip())
            graph.node(head, label=arrow.new, color=REMOVED, fontcolor=REMOVED, style="rounded,dashed")
        graph.edge(tail, head, **attrs)
    return graph.source


# -- files ----------------------------------------------------------------------------------------------------
def dot_available() -> bool:
    return shutil.which("dot") is not None


def render_svg(dot_source: str) -> str:
    """DOT text laid out by Graphviz as SVG text (for pages that inline their drawings)."""
    if not dot_available():
        raise GraphvizMissingError(f"drawing SVG needs the Graphviz `dot` program: {INSTALL_HINT}")
    try:
        return graphviz.Source(dot_source).pipe(format="svg").decode("utf-8")
    except graphviz.ExecutableNotFound:
        raise GraphvizMissingError(f"drawing SVG needs the Graphviz `dot` program: {INSTALL_HINT}") from None
    except graphviz.CalledProcessError as error:
        raise StatechartError(f"dot failed: {error.stderr.decode(errors='replace').strip()}") from None


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
