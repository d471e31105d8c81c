"""Whether a snapshot describes an instance that can exist: the check ``Machine.restore`` runs.

Snapshots and stored rows are data from outside the trust boundary. Restoring one with two
active siblings, a history value outside its parent or ``done: "yes"`` would not fail at once:
a later event would jump anywhere, or a timer would fire into a finished instance. So restoring
checks the whole value first and lists everything wrong.

It has to be cheap, because the store restores a row on every send. The structural answers
depend only on the configuration (or one history value), and a store holds few distinct ones,
so they are cached per machine; the per-row work is a few type tests and one pass over the data
that also makes the private copy the instance needs anyway.
"""

from __future__ import annotations

import math
from typing import Any

from .interpreter import PendingSend
from .jsonvalues import JSONValueError, json_value
from .model import ROOT, MachineModel, StateKind
from .snapshot import Snapshot

__all__ = ["LegalityCache", "snapshot_problems", "legal_configuration_problems"]

_CACHE_LIMIT = 10_000


class LegalityCache:
    """Structural answers for one machine model, remembered (a Machine owns one)."""

    def __init__(self, model: MachineModel) -> None:
        self.model = model
        self._configurations: dict[frozenset[str], tuple[tuple[str, ...], bool]] = {}
        self._histories: dict[tuple[str, frozenset[str]], tuple[str, ...]] = {}

    def configuration(self, configuration: Any) -> tuple[tuple[str, ...], bool]:
        """The problems of a configuration, and whether a top-level final state is active in it."""
        found = self._configurations.get(configuration)
        if found is None:
            if type(configuration) is not frozenset or not all(type(s) is str for s in configuration):
                return ("configuration must be a set of state ids",), False
            problems = tuple(_configuration_problems(self.model, configuration))
            states = self.model.states
            finished = not problems and any(states[s].parent == ROOT and states[s].kind is StateKind.FINAL
                                            for s in configuration)
            found = (problems, finished)
            if len(self._configurations) >= _CACHE_LIMIT:
                self._configurations.clear()
            self._configurations[configuration] = found
        return found

    def history(self, history_id: Any, value: frozenset[str]) -> tuple[str, ...]:
        key = (history_id, value)
        found = self._histories.get(key)
        if found is None:
            found = tuple(_history_problems(self.model, history_id, value))
            if len(self._histories) >= _CACHE_LIMIT:
                self._histories.clear()
            self._histories[key] = found
        return found


def legal_configuration_problems(model: MachineModel, configuration: frozenset[str]) -> list[str]:
    """Why ``configuration`` is not a legal configuration of ``model`` ([] when it is)."""
    states = model.states
    problems = [f"unknown state {s!r}" for s in configuration if s not in states or s == ROOT]
    if problems:
        return problems
    return _subtree_problems(model, ROOT, configuration | {ROOT})


def _subtree_problems(model: MachineModel, top: str, active: frozenset[str] | set[str]) -> list[str]:
    """Every active state below ``top`` has its parent active; every active compound exactly one
    active child; every active parallel state all its regions; no history state is active."""
    states = model.states
    problems = []
    for state_id in sorted(active, key=lambda s: states[s].order):
        state = states[state_id]
        if state.kind is StateKind.HISTORY:
            problems.append(f"history state {state_id!r} cannot be active")
            continue
        if state_id != top and state.parent not in active:
            problems.append(f"{state_id!r} is active but its parent {state.parent!r} is not")
        children = [c for c in state.children if states[c].kind is not StateKind.HISTORY]
        active_children = [c for c in children if c in active]
        if state.kind is StateKind.COMPOUND and len(active_children) != 1:
            problems.append(f"compound {state_id if state_id != ROOT else 'machine'!r} has "
                            f"{len(active_children)} active children ({', '.join(active_children) or 'none'})")
        if state.kind is StateKind.PARALLEL and len(active_children) != len(children):
            missing = [c for c in children if c not in active]
            problems.append(f"parallel {state_id!r} is missing regions {', '.join(missing)}")
    return problems


def _configuration_problems(model: MachineModel, configuration: frozenset[str]) -> list[str]:
    problems = legal_configuration_problems(model, configuration)
    if problems:
        return problems
    states = model.states
    finals = [s for s in configuration if states[s].parent == ROOT and states[s].kind is StateKind.FINAL]
    return [f"top-level final states {', '.join(sorted(finals))} are active together"] if len(finals) > 1 else []


def _history_problems(model: MachineModel, history_id: Any, value: frozenset[str]) -> list[str]:
    """A shallow history holds children of its parent, a deep one atomic descendants; restoring
    either must give a legal configuration of the parent's subtree."""
    states = model.states
    state = states.get(history_id) if isinstance(history_id, str) else None
    if state is None or state.kind is not StateKind.HISTORY:
        return [f"history names {history_id!r}, which is not a history state"]
    parent = state.parent
    if not value:
        return [f"history {history_id!r} is empty (a recorded history holds the states its parent had)"]
    unknown = sorted(s for s in value if s not in states or s == ROOT)
    if unknown:
        return [f"history {history_id!r} names unknown states {', '.join(unknown)}"]
    if state.history_deep:
        wrong = sorted(s for s in value if not (states[s].is_atomic and parent in states[s].ancestors))
        kind = "atomic descendants"
    else:
        wrong = sorted(s for s in value if states[s].parent != parent or states[s].kind is StateKind.HISTORY)
        kind = "children"
    if wrong:
        return [f"{'deep' if state.history_deep else 'shallow'} history {history_id!r} holds "
                f"{', '.join(wrong)}, which are not {kind} of {parent!r}"]
    active: set[str] = {parent}
    for leaf in value:
        for ancestor in (leaf, *states[leaf].ancestors):
            if ancestor == parent:
                break
            active.add(ancestor)
    if state.history_deep:
        subtree = _subtree_problems(model, parent, active)
    else:  # a shallow value only fixes the children; what lies below them is entered by default
        parent_state = states[parent]
        count = len(value)
        if parent_state.kind is StateKind.COMPOUND and count != 1:
            subtree = [f"compound {parent!r} has {count} active children ({', '.join(sorted(value))})"]
        elif parent_state.kind is StateKind.PARALLEL:
            regions = [c for c in parent_state.children if states[c].kind is not StateKind.HISTORY]
            subtree = [] if set(regions) == set(value) else [f"parallel {parent!r} is missing regions "
                                                             f"{', '.join(c for c in regions if c not in value)}"]
        else:
            subtree = []
    return [f"history {history_id!r} would restore an impossible configuration: {p}" for p in subtree]


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_time(value: Any) -> bool:
    return (type(value) is float and math.isfinite(value)) or type(value) is int


def snapshot_problems(cache: LegalityCache, snapshot: Snapshot) -> tuple[list[str], dict[str, Any] | None]:
    """Everything wrong with ``snapshot`` for this machine, and (when the data is JSON) a private
    copy of its data, checked in the same pass."""
    problems: list[str] = []
    states = cache.model.states
    if type(snapshot.done) is not bool:
        problems.append(f"done is {snapshot.done!r}; it must be true or false")
    if not _is_int(snapshot.send_counter) or snapshot.send_counter < 0:
        problems.append(f"send_counter is {snapshot.send_counter!r}; it must be a whole number >= 0")
    if snapshot.session_id is not None and type(snapshot.session_id) is not str:
        problems.append(f"session_id is {snapshot.session_id!r}; it must be a string")
    if snapshot.internal_queue:
        problems.append("the internal queue is not empty (a snapshot is taken at rest)")
    configuration_problems, finished = cache.configuration(snapshot.configuration)
    if configuration_problems:
        problems.extend(configuration_problems)
    elif type(snapshot.done) is bool and finished != snapshot.done:
        problems.append("done is true but no top-level final state is active" if snapshot.done else
                        "a top-level final state is active but done is false")
    history = snapshot.history
    if not isinstance(history, dict):
        problems.append("history must be a mapping of history state -> state ids")
    elif history:
        for history_id, value in history.items():
            if type(value) is not frozenset or not all(type(s) is str for s in value):
                problems.append(f"history {history_id!r} must be a set of state ids")
            else:
                problems.extend(cache.history(history_id, value))
    bound = snapshot.bound_states
    if type(bound) is not frozenset or (bound and any(s not in states or s == ROOT for s in bound)):
        problems.append(f"bound_states names states the machine does not have: {sorted(map(str, bound))}")
    problems.extend(_pending_problems(snapshot.pending_sends, snapshot.done))
    data: dict[str, Any] | None = None
    if type(snapshot.data) is not dict:
        problems.append(f"data is a {type(snapshot.data).__name__}; it must be a JSON object")
    else:
        try:
            data = json_value(snapshot.data, "data")
        except JSONValueError as error:
            problems.append(str(error))
    return problems, data


def _pending_problems(pending: Any, done: Any) -> list[str]:
    if not pending:
        return []
    if type(pending) is not tuple:
        return ["pending_sends must be a list"]
    problems = []
    seen: set[tuple[Any, Any]] = set()
    for index, send in enumerate(pending):
        where = f"pending_sends[{index}]"
        if type(send) is not PendingSend:
            problems.append(f"{where} is not a pending send")
            continue
        if type(send.id) is not str or not send.id:
            problems.append(f"{where} has the id {send.id!r}; it must be a non-empty string")
        if type(send.event) is not str or not send.event:
            problems.append(f"{where} has the event {send.event!r}; it must be a non-empty string")
        if not _is_time(send.due):
            problems.append(f"{where} is due at {send.due!r}; it must be a finite number of seconds")
        if not _is_int(send.seq) or send.seq < 0:
            problems.append(f"{where} has the sequence number {send.seq!r}; it must be a whole number >= 0")
        if type(send.internal_id) is not bool:
            problems.append(f"{where} has internal_id {send.internal_id!r}; it must be true or false")
        if (send.id, send.seq) in seen:
            problems.append(f"{where} repeats the send {send.id!r} #{send.seq}")
        seen.add((send.id, send.seq))
        try:
            json_value(send.data, f"{where}.data")
        except JSONValueError as error:
            problems.append(str(error))
    if done is True:
        problems.append("a finished instance has pending sends")
    return problems
