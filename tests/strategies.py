"""Hypothesis strategies that generate valid statechart machines and operation sequences.

A generated chart is a tree of states (compound, parallel, atomic, final, shallow and deep
history) up to a few levels deep, with transitions on a small event alphabet, guards on a
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

__all__ = ["EVENTS", "Node", "Chart", "charts", "operations", "ROOT"]

EVENTS = ("E0", "E1", "E2", "E3", "E4")
DELAYS = ("500ms", "1s", "2s")
ADVANCES = (0.5, 1.0, 1.5, 2.0, 3.0)
ROOT = "$root"

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


@dataclass
class Chart:
    """A generated machine: its document, its YAML text, and the tree as generated."""

    document: dict[str, Any]
    yaml: str
    nodes: dict[str, Node]  # includes ROOT (kind "compound")

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


def _build_tree(draw: Any, max_depth: int, top_final: bool | None) -> dict[str, Node]:
    nodes: dict[str, Node] = {ROOT: Node(ROOT, "compound", ROOT, 0)}
    counter = [0]

    def new(parent: str, depth: int, kind: str) -> str:
        state_id = f"s{counter[0]}"
        counter[0] += 1
        nodes[state_id] = Node(state_id, kind, parent, depth)
        nodes[parent].children.append(state_id)
        return state_id

    def child_kind(depth: int) -> str:
        if depth >= max_depth:
            return draw(st.sampled_from(["atomic", "atomic", "final"]))
        return draw(st.sampled_from(["atomic", "atomic", "compound", "compound", "parallel", "final"]))

    def region_kind(depth: int) -> str:
        if depth >= max_depth:
            return "atomic"
        return draw(st.sampled_from(["atomic", "compound", "compound", "parallel"]))

    def fill(state_id: str) -> None:
        node = nodes[state_id]
        depth = node.depth + 1
        if node.kind == "compound":
            for _ in range(draw(st.integers(1, 3))):
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
        fill(new(ROOT, 1, draw(st.sampled_from(["atomic", "compound", "compound", "parallel"]))))
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


def _actions(draw: Any, max_size: int = 2, allow_raise: bool = True) -> list[Any]:
    choices: list[Any] = [
        {"assign": {"m": "m + 1"}},
        {"assign": {"m": "m + 1"}},
        {"assign": {"n": "n + 1"}},
        {"log": {"label": "m", "expr": "m"}},
        {"log": "n * 10 + m"},
        {"emit": {"event": "out", "data": {"n": "n", "m": "m"}}},
        {"if": "n % 2 == 0", "then": [{"assign": {"m": "m + 2"}}], "else": [{"log": "'odd'"}]},
        {"send": {"event": "E1", "delay": "1s", "id": "timer"}},
        {"send": {"event": "E3", "delay": "500ms"}},
        {"cancel": "timer"},
        {"log": "m // (n - n)"},  # fails: error.execution, the rest of the block is skipped
    ]
    if allow_raise:
        choices += [{"raise": "E2"}, {"raise": {"event": "E4", "data": {"k": "n"}}}]
    return draw(st.lists(st.sampled_from(choices), max_size=max_size))


def _target(draw: Any, nodes: dict[str, Node], source: str, internal: bool) -> Any:
    everything = [s for s in nodes if s != ROOT]
    proper = [s for s in everything if nodes[s].kind != "history"]
    histories = [s for s in everything if nodes[s].kind == "history"]
    inside = [s for s in _descendants(nodes, source) if nodes[s].kind != "history"]
    if internal and inside and draw(st.booleans()):
        return draw(st.sampled_from(inside))
    options = ["state", "state", "state", "none"]
    if histories:
        options.append("history")
    parallels = [s for s in everything if nodes[s].kind == "parallel"]
    if parallels:
        options.append("pair")
    choice = draw(st.sampled_from(options))
    if choice == "state":
        return draw(st.sampled_from(proper))
    if choice == "history":
        return draw(st.sampled_from(histories))
    if choice == "pair":
        parallel = draw(st.sampled_from(parallels))
        regions = [c for c in nodes[parallel].children if nodes[c].kind != "history"]
        first, second = draw(st.lists(st.sampled_from(regions), min_size=2, max_size=2, unique=True))
        picks = []
        for region in (first, second):
            within = [region] + [s for s in _descendants(nodes, region) if nodes[s].kind != "history"]
            picks.append(draw(st.sampled_from(within)))
        return picks
    return None


def _transition(draw: Any, nodes: dict[str, Node], source: str, *, cond: Any = None,
                actions: list[Any] | None = None) -> Any:
    internal = nodes[source].kind == "compound" and draw(st.integers(0, 3)) == 0
    target = _target(draw, nodes, source, internal)
    if cond is None and draw(st.booleans()):
        cond = draw(st.sampled_from(CONDS + (f"In('{draw(st.sampled_from(sorted(nodes.keys() - {ROOT})))}')",)))
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


def _state_body(draw: Any, nodes: dict[str, Node], state_id: str) -> dict[str, Any]:
    node = nodes[state_id]
    body: dict[str, Any] = {}
    proper = [c for c in node.children if nodes[c].kind != "history"]
    if node.kind == "history":
        body["type"] = "history"
        body["history"] = node.history
        within = [s for s in _descendants(nodes, node.parent) if nodes[s].kind != "history"]
        body["target"] = draw(st.sampled_from(within))
        actions = _actions(draw, 1, allow_raise=False)
        if actions:
            body["actions"] = actions
        return body
    if node.kind in ("parallel", "final") or (node.kind == "atomic" and draw(st.booleans())):
        body["type"] = node.kind
    if node.kind == "compound":
        initial = draw(st.sampled_from(proper))
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
    for event in draw(st.lists(st.sampled_from(EVENTS), max_size=3, unique=True)):
        on[event] = _transitions(draw, nodes, state_id)
    if draw(st.integers(0, 5)) == 0:
        on["error.*"] = _transition(draw, nodes, state_id, actions=[{"log": {"label": "error", "expr": "m"}}])
    if on:
        body["on"] = on
    if draw(st.integers(0, 4)) == 0:
        body["always"] = _transition(draw, nodes, state_id, cond="n < 3",
                                     actions=[{"assign": {"n": "n + 1"}}, *_actions(draw, 1)])
    if draw(st.integers(0, 4)) == 0:
        delay = draw(st.sampled_from(DELAYS))
        body["after"] = {delay: _transitions(draw, nodes, state_id)}
    if node.kind in ("compound", "parallel") and draw(st.integers(0, 2)) == 0:
        body["on_done"] = _transitions(draw, nodes, state_id)
    if proper:
        body["states"] = {child: _state_body(draw, nodes, child) for child in node.children}
    return body


@st.composite
def charts(draw: Any, max_depth: int = 3, top_final: bool | None = None) -> Chart:
    """A valid machine document; ``top_final`` forces (True) or forbids (False) a top-level final."""
    nodes = _renumber(_build_tree(draw, max_depth, top_final))
    top = [c for c in nodes[ROOT].children if nodes[c].kind != "final"]
    document: dict[str, Any] = {"machine": "generated", "version": 1}
    initial = draw(st.sampled_from(top))
    if initial != nodes[ROOT].children[0] or draw(st.booleans()):
        document["initial"] = initial
    document["data"] = {"n": 0, "m": 0}
    document["states"] = {child: _state_body(draw, nodes, child) for child in nodes[ROOT].children}
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    return Chart(document, text, nodes)


def operations(max_size: int = 10) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """("send", event) and ("advance", seconds) steps, sends more often."""
    step = st.one_of(
        st.tuples(st.just("send"), st.sampled_from(EVENTS)),
        st.tuples(st.just("send"), st.sampled_from(EVENTS)),
        st.tuples(st.just("advance"), st.sampled_from(ADVANCES)),
    )
    return st.lists(step, max_size=max_size)
