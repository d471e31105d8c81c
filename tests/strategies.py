"""Hypothesis strategies that generate valid statechart machines and operation sequences.

A generated chart is a tree of states (compound, parallel, atomic, final, shallow and deep
history) up to four levels deep, with transitions on a small event alphabet, guards on a
data counter, eventless transitions that can fire only a bounded number of times, delayed
(`after`) transitions, entry/exit actions and `on_done` transitions. State ids are s0, s1, ...
in document order.

Besides the YAML text, a :class:`Chart` keeps the tree as the generator built it, so tests can
check configurations against the intended structure without going through the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import strategies as st

__all__ = ["EVENTS", "ROOT", "Node", "Chart", "charts", "operations", "chart_from_yaml"]

EVENTS = ("E0", "E1", "E2", "E3", "E4")
DELAYS = ("500ms", "1s", "2s")
ADVANCES = (0.5, 1.0, 1.5, 2.0, 3.0)
ROOT = "$root"


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Plain YAML without anchors and aliases, so a failing example reads like a machine file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_DUMPER = _Dumper

#: Guards on events and delayed transitions (the counters only ever grow).
CONDS = ("n % 2 == 0", "n % 2 == 1", "m > 2", "m % 3 == 0", "n < 2")


@dataclass
class Node:
    id: str
    kind: str  # atomic | compound | parallel | final | history
    parent: str
    depth: int
    children: list[str] = field(default_factory=list)
    history: str | None = None  # shallow | deep, for history states
    default: str | None = None  # the default target, for history states


@dataclass(repr=False)
class Chart:
    """A generated machine: its document, its YAML text, and the tree as generated."""

    document: dict[str, Any]
    yaml: str
    nodes: dict[str, Node]  # includes ROOT (kind "compound")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints a failing chart as the call that rebuilds it from its YAML."""
        printer.text(f"chart_from_yaml({self.yaml!r})")

    def __repr__(self) -> str:
        return f"chart_from_yaml({self.yaml!r})"

    def proper_children(self, state_id: str) -> list[str]:
        return [c for c in self.nodes[state_id].children if self.nodes[c].kind != "history"]

    def ancestors(self, state_id: str) -> list[str]:
        """Proper ancestors, nearest first, ending with ROOT."""
        result = []
        while state_id != ROOT:
            state_id = self.nodes[state_id].parent
            result.append(state_id)
        return result

    def is_descendant(self, state_id: str, ancestor: str) -> bool:
        return ancestor in self.ancestors(state_id)


# --------------------------------------------------------------------------- the tree


_CHILD_COUNTS = st.sampled_from([1, 2, 2, 3])
_LEAF_KINDS = st.sampled_from(["atomic", "atomic", "final"])
_CHILD_KINDS = st.sampled_from(["atomic", "atomic", "compound", "compound", "parallel", "final"])
_REGION_KINDS = st.sampled_from(["atomic", "compound", "compound", "parallel"])


def _pick(draw: Any, items: Any) -> Any:
    """One of ``items`` (shrinks towards the first); cheaper than a fresh sampled_from."""
    return items[draw(st.integers(0, len(items) - 1))]


def _build_tree(draw: Any, max_depth: int, max_states: int, top_final: bool | None) -> dict[str, Node]:
    """The state tree; past ``max_states`` states, new children are atomic or final."""
    nodes: dict[str, Node] = {ROOT: Node(ROOT, "compound", ROOT, 0)}
    counter = [0]

    def new(parent: str, depth: int, kind: str) -> str:
        state_id = f"s{counter[0]}"
        counter[0] += 1
        nodes[state_id] = Node(state_id, kind, parent, depth)
        nodes[parent].children.append(state_id)
        return state_id

    def child_kind(depth: int) -> str:
        if depth >= max_depth or counter[0] >= max_states:
            return draw(_LEAF_KINDS)
        return draw(_CHILD_KINDS)

    def region_kind(depth: int) -> str:
        if depth >= max_depth or counter[0] >= max_states:
            return "atomic"
        return draw(_REGION_KINDS)

    def fill(state_id: str) -> None:
        node = nodes[state_id]
        depth = node.depth + 1
        if node.kind == "compound":
            for _ in range(draw(_CHILD_COUNTS)):
                fill(new(state_id, depth, child_kind(depth)))
            # history children go somewhere among the proper children (document order varies)
            for mode in ("shallow", "deep"):
                if draw(st.integers(0, 3)) == 0:
                    history = new(state_id, depth, "history")
                    nodes[history].history = mode
                    siblings = nodes[state_id].children
                    siblings.remove(history)
                    siblings.insert(draw(st.integers(0, len(siblings))), history)
        elif node.kind == "parallel":
            for _ in range(draw(st.integers(2, 3))):
                fill(new(state_id, depth, region_kind(depth)))

    for _ in range(draw(st.integers(1, 3))):
        fill(new(ROOT, 1, draw(_REGION_KINDS)))
    if top_final if top_final is not None else draw(st.integers(0, 3)) == 0:
        final = new(ROOT, 1, "final")
        siblings = nodes[ROOT].children
        siblings.remove(final)
        siblings.insert(draw(st.integers(1, len(siblings))), final)  # never first: it would end at once
    return nodes


def _renumber(nodes: dict[str, Node]) -> dict[str, Node]:
    """Give ids s0, s1, ... in document order (history insertion shuffles creation order)."""
    order: list[str] = []

    def walk(state_id: str) -> None:
        for child in nodes[state_id].children:
            order.append(child)
            walk(child)

    walk(ROOT)
    rename = {old: f"s{index}" for index, old in enumerate(order)}
    rename[ROOT] = ROOT
    result: dict[str, Node] = {}
    for old in [ROOT, *order]:
        node = nodes[old]
        result[rename[old]] = Node(rename[old], node.kind, rename[node.parent], node.depth,
                                   [rename[c] for c in node.children], node.history)
    return result


# --------------------------------------------------------------------------- content


def _descendants(nodes: dict[str, Node], state_id: str) -> list[str]:
    result = []
    for child in nodes[state_id].children:
        result.append(child)
        result.extend(_descendants(nodes, child))
    return result


_ACTION_CHOICES: list[Any] = [
    {"assign": {"m": "m + 1"}},
    {"assign": {"m": "m + 1"}},
    {"assign": {"n": "n + 1"}},
    {"log": {"label": "m", "expr": "m"}},
    {"log": "n * 10 + m"},
    {"emit": {"event": "out", "data": {"n": "n", "m": "m"}}},
    {"if": "n % 2 == 0", "then": [{"assign": {"m": "m + 2"}}], "else": [{"log": "'odd'"}]},
    # at most four sends per run (k counts them): sends that trigger sends could multiply
    {"if": "k < 4", "then": [{"assign": {"k": "k + 1"}}, {"send": {"event": "E1", "delay": "1s", "id": "timer"}}]},
    {"if": "k < 4", "then": [{"assign": {"k": "k + 1"}},
                             {"send": {"event": "E3", "delay": "500ms", "data": {"v": "n", "w": [1, 2]}}}]},
    {"if": "k < 4", "then": [{"assign": {"k": "k + 1"}}, {"send": {"event": "E0"}}]},  # before send() returns
    {"cancel": "timer"},
    {"log": "m // (n - n)"},  # fails: error.execution, the rest of the block is skipped
]
_RAISES: list[Any] = [{"raise": "E2"}, {"raise": {"event": "E4", "data": {"k": "n"}}}]
_SOME_ACTIONS = st.lists(st.sampled_from(_ACTION_CHOICES * 3 + _RAISES), min_size=1, max_size=2)  # raise: rarely
_SOME_QUIET_ACTIONS = st.lists(st.sampled_from(_ACTION_CHOICES), min_size=1, max_size=1)
_CHANCE = st.integers(0, 7)
_EVENT_SETS = st.lists(st.sampled_from(EVENTS), max_size=2, unique=True)


def _actions(draw: Any, quiet: bool = False) -> list[Any]:
    """No action most of the time, else one or two (``quiet``: one, never a raise)."""
    if draw(_CHANCE) < 5:
        return []
    return draw(_SOME_QUIET_ACTIONS if quiet else _SOME_ACTIONS)


def _target(draw: Any, nodes: dict[str, Node], source: str, internal: bool) -> Any:
    everything = [s for s in nodes if s != ROOT]
    proper = [s for s in everything if nodes[s].kind != "history"]
    histories = [s for s in everything if nodes[s].kind == "history"]
    inside = [s for s in _descendants(nodes, source) if nodes[s].kind != "history"]
    if internal and inside and draw(st.booleans()):
        return _pick(draw, inside)
    options = ["state", "state", "state", "none"]
    if histories:
        options.append("history")
    parallels = [s for s in everything if nodes[s].kind == "parallel"]
    if parallels:
        options.append("pair")
    top_finals = [s for s in nodes[ROOT].children if nodes[s].kind == "final"]
    if top_finals:
        options.append("end")
    choice = _pick(draw, options)
    if choice == "end":
        return _pick(draw, top_finals)
    if choice == "state":
        return _pick(draw, proper)
    if choice == "history":
        return _pick(draw, histories)
    if choice == "pair":
        parallel = _pick(draw, parallels)
        regions = [c for c in nodes[parallel].children if nodes[c].kind != "history"]
        first = _pick(draw, regions)
        second = _pick(draw, [r for r in regions if r != first])
        picks = []
        for region in (first, second):
            within = [region] + [s for s in _descendants(nodes, region) if nodes[s].kind != "history"]
            picks.append(_pick(draw, within))
        return picks
    return None


def _transition(draw: Any, nodes: dict[str, Node], source: str, *, cond: Any = None,
                actions: list[Any] | None = None) -> Any:
    internal = nodes[source].kind == "compound" and draw(st.integers(0, 3)) == 0
    target = _target(draw, nodes, source, internal)
    if cond is None and draw(st.booleans()):
        cond = _pick(draw, CONDS + ("In",))
        if cond == "In":
            cond = f"In('{_pick(draw, sorted(nodes.keys() - {ROOT}))}')"
    if actions is None:
        actions = _actions(draw)
    if cond is None and not actions and not internal and isinstance(target, str) and draw(st.booleans()):
        return target  # the short form
    spec: dict[str, Any] = {}
    if target is not None:
        spec["target"] = target
    if cond is not None:
        spec["cond"] = cond
    if actions:
        spec["actions"] = actions
    if internal:
        spec["type"] = "internal"
    return spec if spec else None


def _transitions(draw: Any, nodes: dict[str, Node], source: str) -> Any:
    count = draw(st.integers(1, 2))
    items = [_transition(draw, nodes, source) for _ in range(count)]
    return items[0] if count == 1 and draw(st.booleans()) else items


def _maybe_bounded(draw: Any, nodes: dict[str, Node], source: str, actions: list[Any]) -> Any:
    """A transition that could re-trigger itself for ever (``on_done``, ``error.*``): usually
    bounded like ``always`` (at most three firings), sometimes left to loop (EventlessLoopError)."""
    if draw(st.integers(0, 3)) == 0:
        return _transition(draw, nodes, source, actions=actions)
    return _transition(draw, nodes, source, cond="d < 3", actions=[{"assign": {"d": "d + 1"}}, *actions])


def _state_body(draw: Any, nodes: dict[str, Node], state_id: str) -> dict[str, Any]:
    node = nodes[state_id]
    body: dict[str, Any] = {}
    proper = [c for c in node.children if nodes[c].kind != "history"]
    if node.kind == "history":
        body["type"] = "history"
        body["history"] = node.history
        within = [s for s in _descendants(nodes, node.parent) if nodes[s].kind != "history"]
        body["target"] = node.default = _pick(draw, within)
        actions = _actions(draw, quiet=True)
        if actions:
            body["actions"] = actions
        return body
    if node.kind in ("parallel", "final") or (node.kind == "atomic" and draw(st.booleans())):
        body["type"] = node.kind
    if node.kind == "compound":
        initial = _pick(draw, proper)
        style = draw(st.integers(0, 3))
        if style == 1 or (style == 0 and initial != proper[0]):
            body["initial"] = initial
        elif style == 2:
            body["initial"] = {"target": initial, "actions": [{"assign": {"m": "m + 1"}}, {"log": "'init'"}]}
        elif style == 3:
            body["type"] = "compound"
            body["initial"] = initial
    for key in ("entry", "exit"):
        actions = _actions(draw)
        if actions:
            body[key] = actions
    if node.kind == "final":
        if node.parent != ROOT and draw(st.booleans()):
            body["done_data"] = {"v": "n", "w": 7}
        return body
    on: dict[str, Any] = {}
    for event in draw(_EVENT_SETS):
        on[event] = _transitions(draw, nodes, state_id)
    if draw(st.integers(0, 5)) == 0:
        on["error.*"] = _maybe_bounded(draw, nodes, state_id, [{"log": {"label": "error", "expr": "m"}}])
    if on:
        body["on"] = on
    if draw(st.integers(0, 4)) == 0:
        body["always"] = _transition(draw, nodes, state_id, cond="n < 3",
                                     actions=[{"assign": {"n": "n + 1"}}, *_actions(draw, quiet=True)])
    if draw(st.integers(0, 4)) == 0:
        delay = _pick(draw, DELAYS)
        body["after"] = {delay: _transitions(draw, nodes, state_id)}
    if node.kind in ("compound", "parallel") and draw(st.integers(0, 2)) == 0:
        body["on_done"] = _maybe_bounded(draw, nodes, state_id, _actions(draw, quiet=True))
    if proper:
        body["states"] = {child: _state_body(draw, nodes, child) for child in node.children}
    return body


@st.composite
def charts(draw: Any, max_depth: int = 4, max_states: int = 12, top_final: bool | None = None) -> Chart:
    """A valid machine document; ``top_final`` forces (True) or forbids (False) a top-level final.

    ``max_states`` is a soft limit (states under way are finished) that keeps loading fast."""
    nodes = _renumber(_build_tree(draw, max_depth, max_states, top_final))
    top = [c for c in nodes[ROOT].children if nodes[c].kind != "final"]
    document: dict[str, Any] = {"machine": "generated", "version": 1}
    initial = _pick(draw, top)
    if initial != nodes[ROOT].children[0] or draw(st.booleans()):
        document["initial"] = initial
    document["data"] = {"n": 0, "m": 0, "k": 0, "d": 0}
    document["states"] = {child: _state_body(draw, nodes, child) for child in nodes[ROOT].children}
    text = yaml.dump(document, Dumper=_DUMPER, sort_keys=False, default_flow_style=None, width=100)
    return Chart(document, text, nodes)


def operations(max_size: int = 10) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """("send", event) and ("advance", seconds) steps, sends more often."""
    step = st.one_of(
        st.tuples(st.just("send"), st.sampled_from(EVENTS)),
        st.tuples(st.just("send"), st.sampled_from(EVENTS)),
        st.tuples(st.just("advance"), st.sampled_from(ADVANCES)),
    )
    return st.lists(step, min_size=1, max_size=max_size)


def chart_from_yaml(text: str) -> Chart:
    """The :class:`Chart` of a machine written by hand (to replay a reported example).

    Name the states s0, s1, ... in document order, as the generator does: the checks use it."""
    document = yaml.safe_load(text)
    nodes: dict[str, Node] = {ROOT: Node(ROOT, "compound", ROOT, 0)}

    def walk(states: dict[str, Any], parent: str, depth: int) -> None:
        for state_id, body in states.items():
            body = body or {}
            kind = body.get("type") or ("compound" if body.get("states") else "atomic")
            nodes[state_id] = Node(state_id, kind, parent, depth, history=body.get("history", "shallow")
                                   if kind == "history" else None, default=body.get("target"))
            nodes[parent].children.append(state_id)
            walk(body.get("states") or {}, state_id, depth + 1)

    walk(document["states"], ROOT, 1)
    return Chart(document, text, nodes)
