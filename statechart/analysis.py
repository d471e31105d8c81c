"""Static analysis of a compiled machine: defects found before any instance runs, and test plans.

Everything works from the compiled model (``machine.model``). The configurations an instance
can be in are enumerated with the interpreter's own planning interface
(:func:`~statechart.interpreter.plan_microstep`, the structural half of a microstep), guards
ignored, so the set over-approximates what real instances reach: a state reported
unreachable here is unreachable whatever the data. Transitions that can never be
selected (shadowed by an unguarded transition that always wins) are pruned while enumerating.

    findings = check_machine(machine)           # [Finding(kind, message, location, subject)]
    plans = shortest_paths(machine)             # {state id: Path([...event names...])}

Finding kinds: ``unreachable``, ``dead-end``, ``trap``, ``shadowed``, ``unhandled-event``,
``unfinishable-parallel``, ``truncated`` (the configuration space was too big to enumerate;
the checks that need all of it were skipped), and the authoring checks of
:mod:`statechart.authoring_checks`: ``reentry-effect``, ``constant-guard`` and
``unread-assignment``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Iterator

import attrs
import networkx as nx

from .action_specs import model_actions, walk_actions
from .authoring_checks import constant_guards, reentry_effects, unread_assignments
from .durations import format_delay
from .findings import Finding
from .interpreter import plan_microstep
from .machine import Machine
from .model import ROOT, Location, State, StateKind, Transition
from .resting import done_events, passing_reason

__all__ = ["Finding", "Path", "StateSpace", "explore", "check_machine", "shortest_paths", "covers",
           "produced_events"]

DEFAULT_LIMIT = 20_000

_Node = tuple[frozenset[str], frozenset]


class Path(list):
    """The events that lead from the start to a state: a list of event names, plus what to know.

    Timer steps read ``after 30m`` (advance a VirtualClock by that long); eventless and done
    transitions happen on their own and add no step. ``guards`` lists the guarded transitions
    on the way as ``(transition id, guard text)``: the path works only when those guards hold
    (guards are ignored while searching). ``transient`` is True when the state is only passed
    through within a step (it shows in the trace, never in ``instance.configuration``)."""

    def __init__(self, steps: Iterable[str] = (), *, transitions: tuple[str, ...] = (),
                 guards: tuple[tuple[str, str], ...] = (), transient: bool = False) -> None:
        super().__init__(steps)
        self.transitions = transitions
        self.guards = guards
        self.transient = transient

    def to_dict(self) -> dict[str, Any]:
        return {"events": list(self), "transitions": list(self.transitions),
                "guards": [{"transition": t, "guard": g} for t, g in self.guards], "transient": self.transient}


# ---------------------------------------------------------------------------------------------
# descriptors and transition selection


def covers(wide: str | None, narrow: str | None) -> bool:
    """True when every event matching descriptor ``narrow`` also matches ``wide``.

    ``None`` stands for "eventless": only an eventless transition covers another."""
    if wide is None or narrow is None:
        return wide is None and narrow is None
    if wide == "*":
        return True
    if narrow == "*":
        return False
    return narrow == wide or narrow.startswith(wide + ".")


def _descriptors(transition: Transition) -> tuple[str | None, ...]:
    return transition.events if transition.events else (None,)


def _unguarded(transition: Transition) -> bool:
    return transition.check is None and transition.cond_text is None and transition.guard_name is None


def _earlier_shadow(state: State, transition: Transition, descriptor: str | None) -> Transition | None:
    """An earlier unguarded transition of the same state that always wins for ``descriptor``."""
    for other in state.transitions:
        if other is transition:
            return None
        if _unguarded(other) and any(covers(d, descriptor) for d in _descriptors(other)):
            return other
    return None


def _state_shadow(state: State, descriptor: str | None) -> Transition | None:
    """An unguarded transition of ``state`` that always handles ``descriptor`` (None if none)."""
    for other in state.transitions:
        if _unguarded(other) and any(covers(d, descriptor) for d in _descriptors(other)):
            return other
    return None


def _path_shadow(states: dict[str, State], atomic: str, source: str, descriptor: str | None) -> Transition | None:
    """The unguarded transition on the way from ``atomic`` up to (not including) ``source``
    that the interpreter picks before any of ``source``'s transitions, or None."""
    for state_id in (atomic,) + states[atomic].ancestors:
        if state_id == source:
            return None
        found = _state_shadow(states[state_id], descriptor)
        if found is not None:
            return found
    return None


def _selectable(states: dict[str, State], configuration: frozenset[str], transition: Transition,
                descriptor: str | None) -> bool:
    if _earlier_shadow(states[transition.source], transition, descriptor) is not None:
        return False
    atomics = [s for s in configuration if states[s].is_atomic
               and (s == transition.source or transition.source in states[s].ancestors)]
    return any(_path_shadow(states, a, transition.source, descriptor) is None for a in atomics)


def _step_name(transition: Transition, descriptor: str) -> str:
    if transition.delay is not None:
        return f"after {format_delay(transition.delay)}"
    return descriptor


def _internal_descriptor(descriptor: str) -> bool:
    return descriptor.startswith("done.") or descriptor == "done"


# ---------------------------------------------------------------------------------------------
# the configuration space


@attrs.define
class StateSpace:
    """Every configuration reachable with guards ignored, as a networkx DiGraph.

    Nodes are ``(configuration, history)`` pairs (history as a frozenset of items); each edge
    keeps the ``transition`` taken, its ``step`` (event name, ``after 2d``, or None for a step
    that needs no event) and its ``cost`` (1 for an event or timer, 0 otherwise)."""

    machine: Machine
    graph: nx.DiGraph
    start: _Node
    exhaustive: bool
    order: list[_Node]  # discovery order

    def configurations(self) -> Iterator[frozenset[str]]:
        for node in self.order:
            yield node[0]

    def resting(self, node: _Node) -> bool:
        return passing_reason(self.machine.model, node[0]) is None

    def terminal(self, node: _Node) -> bool:
        states = self.machine.model.states
        return any(states[s].kind is StateKind.FINAL and states[s].parent == ROOT for s in node[0])

    def reached_states(self) -> set[str]:
        found: set[str] = set()
        for configuration in self.configurations():
            found |= configuration
        return found


def _edges(machine: Machine, configuration: frozenset[str]) -> Iterator[tuple[Transition, str | None, int]]:
    """(transition, step, cost) for every transition that can be selected in ``configuration``."""
    states = machine.model.states
    if any(states[s].kind is StateKind.FINAL and states[s].parent == ROOT for s in configuration):
        return  # a finished instance takes no more transitions
    passing = passing_reason(machine.model, configuration)
    pending_done = {f"done.state.{p}" for p in done_events(machine.model, configuration)}
    for state_id in sorted(configuration, key=lambda s: states[s].order):
        for transition in states[state_id].transitions:
            if not transition.events:
                if _selectable(states, configuration, transition, None):
                    yield transition, None, 0
                continue
            if passing == "eventless":
                continue  # eventless transitions are taken before any event is looked at
            for descriptor in transition.events:
                if _internal_descriptor(descriptor):
                    if any(covers(descriptor, e) or covers(e, descriptor) for e in pending_done) \
                            and _selectable(states, configuration, transition, descriptor):
                        yield transition, None, 0
                        break
                    continue
                if passing == "done":
                    continue  # the pending done event is processed first
                if _selectable(states, configuration, transition, descriptor):
                    yield transition, _step_name(transition, descriptor), 1
                    break


def explore(machine: Machine, limit: int = DEFAULT_LIMIT) -> StateSpace:
    """Enumerate the configurations reachable from the start, guards ignored (at most ``limit``)."""
    engine = machine.engine
    root = machine.model.states[ROOT]
    first = plan_microstep(engine, frozenset(), (root.initial,), {})  # type: ignore[arg-type]
    start: _Node = (first.configuration, frozenset(dict(first.history_updates).items()))
    graph = nx.DiGraph()
    graph.add_node(start)
    order = [start]
    queue = deque([start])
    exhaustive = True
    while queue:
        node = queue.popleft()
        configuration, history_key = node
        history = dict(history_key)
        for transition, step, cost in _edges(machine, configuration):
            plan = plan_microstep(engine, configuration, (transition,), history)
            new_history = {**history, **dict(plan.history_updates)}
            target: _Node = (plan.configuration, frozenset(new_history.items()))
            if target not in graph:
                if graph.number_of_nodes() >= limit:
                    exhaustive = False
                    continue
                graph.add_node(target)
                order.append(target)
                queue.append(target)
            previous = graph.get_edge_data(node, target)
            if previous is None or previous["cost"] > cost:
                graph.add_edge(node, target, transition=transition, step=step, cost=cost)
    return StateSpace(machine, graph, start, exhaustive, order)


# ---------------------------------------------------------------------------------------------
# shortest paths


def shortest_paths(machine: Machine, to: str | None = None, *, space: StateSpace | None = None) -> dict[str, Path]:
    """The shortest event sequence that reaches each reachable state (or only ``to``).

    Search is over reachable configurations with guards ignored; a path whose transitions are
    guarded says so in ``Path.guards``. Unreachable states are left out of the result."""
    states = machine.model.states
    if to is not None and (to not in states or to == ROOT):
        raise KeyError(f"{machine.name} has no state {to!r}")
    space = space or explore(machine)
    graph = space.graph
    index = {node: i for i, node in enumerate(space.order)}
    distance: dict[_Node, int] = {space.start: 0}
    parent: dict[_Node, _Node] = {}
    queue = deque([space.start])
    done: set[_Node] = set()
    while queue:  # 0-1 BFS: eventless and done steps are free
        node = queue.popleft()
        if node in done:
            continue
        done.add(node)
        for _, target, edge in sorted(graph.out_edges(node, data=True), key=lambda e: index[e[1]]):
            candidate = distance[node] + edge["cost"]
            if candidate < distance.get(target, 1 << 60):
                distance[target] = candidate
                parent[target] = node
                (queue.appendleft if edge["cost"] == 0 else queue.append)(target)
    wanted = [to] if to is not None else [s for s in states if s != ROOT and states[s].kind is not StateKind.HISTORY]
    best: dict[str, tuple[int, bool, int, _Node]] = {}
    for node, cost in distance.items():
        transient = not space.resting(node) and not space.terminal(node)
        for state_id in node[0]:
            key = (cost, transient, index[node], node)
            if state_id not in best or key[:3] < best[state_id][:3]:
                best[state_id] = key
    result: dict[str, Path] = {}
    for state_id in wanted:
        if state_id not in best:
            continue
        cost, transient, _, node = best[state_id]
        edges = []
        while node in parent:
            before = parent[node]
            edges.append(graph.edges[before, node])
            node = before
        edges.reverse()
        taken = [e["transition"] for e in edges]
        guards = tuple((t.id, t.cond_text or t.guard_name) for t in taken if t.cond_text or t.guard_name)
        result[state_id] = Path([e["step"] for e in edges if e["step"] is not None],
                                transitions=tuple(t.id for t in taken), guards=guards, transient=transient)
    return result


# ---------------------------------------------------------------------------------------------
# checks


def check_machine(machine: Machine, *, limit: int = DEFAULT_LIMIT) -> list[Finding]:
    """Every defect found in ``machine``, in document order within each kind."""
    model = machine.model
    states = model.states
    space = explore(machine, limit)
    findings: list[Finding] = []
    if not space.exhaustive:
        findings.append(Finding("truncated", f"more than {limit} configurations; reachability was computed "
                                "on the state graph and the trap and parallel checks were skipped",
                                states[ROOT].location, model.name))
        reached = _structurally_reachable(machine)
    else:
        reached = space.reached_states()
    real = [s for s in states.values() if s.id != ROOT and s.kind is not StateKind.HISTORY]

    # (a) unreachable states
    for state in real:
        if state.id not in reached:
            findings.append(Finding("unreachable", f"state {state.id!r} can never be entered: no sequence of "
                                    "events leads to it (guards ignored)", state.location, state.id))

    # (b) dead ends and traps
    dead_ends = set()
    for state in real:
        if state.kind is not StateKind.ATOMIC or state.id not in reached:
            continue
        chain = (state,) + tuple(states[a] for a in state.ancestors if a != ROOT)
        if not any(t.targets for s in chain for t in s.transitions):
            dead_ends.add(state.id)
            findings.append(Finding("dead-end", f"state {state.id!r} is not final and has no transition out of "
                                    "it or its ancestors: an instance that gets here stays forever",
                                    state.location, state.id))
    unfinishable = _unfinishable(machine, reached) if space.exhaustive else []
    if space.exhaustive:
        # states inside a parallel that can never finish are stuck because of it: reported there
        inside = {s for s in states if any(f.subject in states[s].ancestors for f in unfinishable)}
        findings.extend(_traps(space, dead_ends | inside))

    # (c) transitions that can never fire
    findings.extend(_shadowed(machine, space if space.exhaustive else None, reached))

    # (d) raised or sent events that nothing handles
    descriptors = {d for s in states.values() for t in s.transitions for d in t.events}
    for name, action_location, verb in produced_events(machine):
        if not any(covers(d, name) for d in descriptors):
            findings.append(Finding("unhandled-event", f"event {name!r} is {verb} by the machine but no "
                                    "transition handles it", action_location, name))

    # (e) parallel states whose done event never comes
    findings.extend(unfinishable)

    # (f) slips of authoring: effects repeated on every resume through history, guards whose
    # value is fixed by data nothing changes, assignments to keys nothing reads or declares
    findings.extend(reentry_effects(model))
    findings.extend(constant_guards(model))
    findings.extend(unread_assignments(model))
    return findings


def _structurally_reachable(machine: Machine) -> set[str]:
    """States reachable in the state-level graph (entering a state enters its ancestors, its
    initial child, every region of a parallel); the fallback when configurations are too many."""
    states = machine.model.states
    graph = nx.DiGraph()
    for state in states.values():
        graph.add_node(state.id)
        if state.kind is StateKind.PARALLEL:
            for child in state.children:
                if states[child].kind is not StateKind.HISTORY:
                    graph.add_edge(state.id, child)
        for transition in ((state.initial,) if state.initial else ()) + state.transitions:
            for target in transition.targets:
                graph.add_edge(state.id, target)
                for ancestor in states[target].ancestors:
                    graph.add_edge(state.id, ancestor)
        if state.kind is StateKind.HISTORY and state.parent in states:
            for descendant in states:
                if state.parent in states[descendant].ancestors:
                    graph.add_edge(state.id, descendant)
    return set(nx.descendants(graph, ROOT)) | {ROOT}


def _traps(space: StateSpace, dead_ends: set[str]) -> list[Finding]:
    states = space.machine.model.states
    graph = space.graph
    finals = [n for n in graph if space.terminal(n)]
    if not any(s.kind is StateKind.FINAL and s.parent == ROOT for s in states.values()):
        return []
    can_finish: set = set(finals)
    for node in finals:
        can_finish |= nx.ancestors(graph, node)
    stuck = [n for n in graph if n not in can_finish]
    if not stuck:
        return []
    containing: dict[str, list] = {}
    for node in graph:
        for state_id in node[0]:
            if states[state_id].kind is StateKind.ATOMIC:
                containing.setdefault(state_id, []).append(node)
    trapped = sorted((s for s, nodes in containing.items() if all(n not in can_finish for n in nodes)),
                     key=lambda s: states[s].order)
    groups: dict[frozenset[str], list[str]] = {}
    for state_id in trapped:
        if state_id in dead_ends:
            continue
        onward: set[str] = set()
        for node in containing[state_id]:
            for later in nx.descendants(graph, node) | {node}:
                onward |= {s for s in later[0] if states[s].kind is StateKind.ATOMIC}
        if onward <= dead_ends | {state_id} and onward & dead_ends:
            continue  # it only leads into dead ends, which are reported already
        groups.setdefault(frozenset(onward - dead_ends), []).append(state_id)
    findings = []
    for onward, members in groups.items():
        first = states[members[0]]
        names = ", ".join(sorted(onward, key=lambda s: states[s].order))
        subject = (f"state {first.id!r}" if len(members) == 1
                   else "states " + ", ".join(repr(m) for m in members))
        if set(onward) <= set(members):
            message = f"{subject} can never reach a final state: they only lead to each other"
            if len(members) == 1:
                message = f"{subject} can never reach a final state"
        else:
            message = f"{subject} can never reach a final state: from there only {names} can be reached"
        findings.append(Finding("trap", message, first.location, first.id))
    return findings


def _shadowed(machine: Machine, space: StateSpace | None, reached: set[str]) -> list[Finding]:
    states = machine.model.states
    findings = []
    for state in states.values():
        if state.id != ROOT and state.id not in reached:
            continue  # unreachable: reported already
        for transition in state.transitions:
            earlier = [_earlier_shadow(state, transition, d) for d in _descriptors(transition)]
            if all(e is not None for e in earlier):
                winner = earlier[0]
                assert winner is not None
                findings.append(Finding(
                    "shadowed", f"transition {transition.id!r} ({transition.label}) can never fire: the earlier "
                    f"transition {winner.id!r} at {winner.location} has no guard and always wins",
                    transition.location, transition.id))
                continue
            if state.is_atomic:
                continue
            atomics = [s for s in reached if states[s].is_atomic and state.id in states[s].ancestors]
            if not atomics:
                continue
            winners: dict[str, Transition] = {}
            blocked = True
            for descriptor in _descriptors(transition):
                for atomic in atomics:
                    found = _path_shadow(states, atomic, state.id, descriptor)
                    if found is None:
                        blocked = False
                        break
                    winners.setdefault(found.id, found)
                if not blocked:
                    break
            if blocked:
                shown = ", ".join(f"{t.id!r} at {t.location}" for t in
                                  sorted(winners.values(), key=lambda t: (states[t.source].order, t.order)))
                findings.append(Finding(
                    "shadowed", f"transition {transition.id!r} ({transition.label}) can never fire: in every state "
                    f"inside {state.id!r} an unguarded transition takes the event first ({shown})",
                    transition.location, transition.id))
    return findings


def produced_events(machine: Machine) -> list[tuple[str, Location | None, str]]:
    """(event name, location, "raised"|"sent") for each `raise` and internal `send` written in the
    machine (sends to another target and computed event names are left out; timers too)."""
    found = []
    for action in model_actions(machine.model):
        if action.verb not in ("raise", "send", "if", "foreach"):
            continue
        for verb, body in walk_actions(action.spec, ("raise", "send")):
            if verb == "raise":
                name = body if isinstance(body, str) else body.get("event") if isinstance(body, dict) else None
                if isinstance(name, str):
                    found.append((name, action.location, "raised"))
            elif isinstance(body, dict) and isinstance(body.get("event"), str):
                if body.get("target") not in (None, "#_internal") or "target_expr" in body:
                    continue
                found.append((body["event"], action.location, "sent"))
    return found


def _unfinishable(machine: Machine, reached: set[str]) -> list[Finding]:
    states = machine.model.states
    findings = []
    listened = {d for s in states.values() for t in s.transitions for d in t.events}
    for state in states.values():
        if state.kind is not StateKind.PARALLEL or state.id not in reached:
            continue
        regions = [states[c] for c in state.children if states[c].kind is not StateKind.HISTORY]
        finishing = {r.id for r in regions if _can_finish(states, r, reached)}
        stuck = [r for r in regions if r.id not in finishing]
        waited = any(covers(d, f"done.state.{state.id}") for d in listened)
        if not stuck or not (waited or finishing):
            continue  # all regions finish, or none can and nothing waits: regions that run forever
        names = ", ".join(repr(r.id) for r in stuck)
        findings.append(Finding(
            "unfinishable-parallel", f"parallel state {state.id!r} can never finish: region{'s' if len(stuck) > 1 else ''} "
            f"{names} {'have' if len(stuck) > 1 else 'has'} no reachable final state, so "
            f"done.state.{state.id} never comes", state.location, state.id))
    return findings


def _can_finish(states: dict[str, State], region: State, reached: set[str]) -> bool:
    if region.kind is StateKind.FINAL:
        return region.id in reached
    if region.kind is StateKind.COMPOUND:
        return any(states[c].kind is StateKind.FINAL and c in reached for c in region.children)
    if region.kind is StateKind.PARALLEL:
        return all(_can_finish(states, states[c], reached) for c in region.children
                   if states[c].kind is not StateKind.HISTORY)
    return False
