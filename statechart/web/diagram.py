"""A machine drawn as SVG with its active states marked, cached per (machine, configuration).

The drawing is :func:`statechart.render.render_dot` piped through Graphviz ``dot -Tsvg``. Each
Graphviz group of a state (a node, or the cluster of a compound or parallel state) then gets
``data-state="<state id>"`` and, when the state is active, the class ``active``, and each edge
``data-transition="<transition id>"``: the page and the browser tests find the highlighted states
(and the transitions a step took) by those, not by colours.
"""

from __future__ import annotations

import html
import re
import threading
from collections import OrderedDict
from typing import Iterable

import graphviz

from ..errors import StatechartError
from ..machine import Machine
from ..render import render_dot
from ..render.graphviz import INSTALL_HINT, GraphvizMissingError

__all__ = ["DiagramCache", "mark_states", "svg_diagram"]

# Graphviz writes every node and cluster as <g id="..." class="node|cluster">\n<title>NAME</title>.
_GROUP = re.compile(r'<g id="(?P<id>[^"]*)" class="(?P<kind>node|cluster)(?P<more>[^"]*)">\s*<title>(?P<title>[^<]*)'
                    r'</title>')
# ... and every edge as <g id="ID" class="edge"><title>..</title><g id="a_ID"><a xlink:title="TOOLTIP">,
# where render_dot sets the tooltip to the transition id.
_EDGE = re.compile(r'<g id="(?P<id>[^"]+)" class="edge(?P<more>[^"]*)">(?P<title>\s*<title>[^<]*</title>\s*)'
                   r'<g id="a_(?P=id)"><a xlink:title="(?P<tooltip>[^"]*)">')
_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.S)


def mark_states(svg: str, states: Iterable[str], active: Iterable[str], transitions: Iterable[str] = ()) -> str:
    """Tag the SVG group of each state with ``data-state`` and the class ``state`` (+ ``active``),
    and the group of each edge drawn for one of ``transitions`` with ``data-transition``.

    A node's title is the state id; a cluster's is ``cluster_<state id>``; an edge's tooltip is
    its transition id. Other groups (initial dots, anchors, the data note) are left as they
    are. The XML prologue and DOCTYPE are dropped so the SVG can be placed inside an HTML page.
    The page marks the transitions a step took by these ids, so one drawing per configuration
    serves every step that ends in it.
    """
    known, on, edges = set(states), set(active), set(transitions)

    def tag(match: re.Match[str]) -> str:
        title = html.unescape(match["title"])
        state = title[len("cluster_"):] if match["kind"] == "cluster" and title.startswith("cluster_") else title
        if state not in known:
            return match[0]
        classes = f"{match['kind']}{match['more']} state" + (" active" if state in on else "")
        return (f'<g id="{match["id"]}" class="{classes}" data-state="{html.escape(state)}">'
                f"\n<title>{match['title']}</title>")

    def tag_edge(match: re.Match[str]) -> str:
        transition = html.unescape(match["tooltip"])
        if transition not in edges:
            return match[0]
        return (f'<g id="{match["id"]}" class="edge{match["more"]} transition" '
                f'data-transition="{html.escape(transition)}">{match["title"]}'
                f'<g id="a_{match["id"]}"><a xlink:title="{match["tooltip"]}">')

    return _EDGE.sub(tag_edge, _GROUP.sub(tag, _PROLOGUE.sub("", svg, count=1)))


def svg_diagram(machine: Machine, configuration: Iterable[str] = ()) -> str:
    """The machine as inline SVG with ``configuration`` highlighted (no cache)."""
    active = frozenset(configuration)
    dot_source = render_dot(machine, configuration=active)
    try:
        svg = graphviz.Source(dot_source).pipe(format="svg").decode("utf-8")
    except graphviz.ExecutableNotFound:
        raise GraphvizMissingError(f"drawing {machine.name} v{machine.version} needs the Graphviz `dot` "
                                   f"program: {INSTALL_HINT}") from None
    except graphviz.CalledProcessError as error:
        raise StatechartError(f"dot failed on {machine.name} v{machine.version}: "
                              f"{error.stderr.decode(errors='replace').strip()}") from None
    transitions = (t.id for state in machine.model.states.values() for t in state.transitions)
    return mark_states(svg, machine.states, active, transitions)


class DiagramCache:
    """The last ``size`` diagrams, by (machine, version, definition hash, configuration).

    Running ``dot`` costs tens of milliseconds; clicking back and forth through a machine and
    replaying an audit trail draw the same few configurations again and again.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, int, str, frozenset[str]], str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def svg(self, machine: Machine, configuration: Iterable[str] = ()) -> str:
        active = frozenset(configuration)
        key = (machine.name, machine.version, machine.definition_hash, active)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
        svg = svg_diagram(machine, active)
        with self._lock:
            self.misses += 1
            self._entries[key] = svg
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return svg
