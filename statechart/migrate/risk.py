"""The changes between two versions of a machine, each classified by its risk for in-flight
instances (the ones a migration moves from the old version to the new one).

The classes follow the compatibility matrix of docs/migrations.md:

=================  ==================================================================================
``safe``           nothing an in-flight instance does changes: a new terminal state, a new event
``with care``      in-flight instances behave differently from now on, or skip something new
                   instances do: a new intermediate state, a changed guard or action list, a new
                   transition out of an existing state, a new ``after`` timer, new entry actions
``risky``          an in-flight instance follows the new graph to somewhere else: a changed target
``needs mapping``  the migration step must say where instances go: a removed (or renamed) state
``producers``      safe only once nothing sends it any more: an event the new version ignores
=================  ==================================================================================

Pure: reads two compiled machines (and the step, for its timer policy); nothing runs.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs

from ..model import ROOT, MachineModel, State, StateKind, Transition
from .diff import rename_candidates, state_changes

__all__ = ["Change", "RISKS", "classify_changes"]

#: Risk classes, the most urgent first (the order of the review page's change list).
RISKS = ("needs mapping", "risky", "producers", "with care", "safe")

_SYNTHETIC = ("timer", "timer-cancel")


@attrs.frozen
class Change:
    """One change: what it touches (``state``, ``transition``, ``event``, ``timer``, ``entry``,
    ``data``), the element's id, how it changed (``added``, ``removed``, ``changed``), its risk
    class (one of :data:`RISKS`) and a sentence saying why."""

    element: str
    subject: str
    change: str
    risk: str
    why: str

    @property
    def anchor(self) -> str:
        """A stable HTML id for this change (the review page links the drawing to the list)."""
        return f"change-{self.element}-{self.change}-" + "".join(c if c.isalnum() else "_" for c in self.subject)


def _model(machine: Any) -> MachineModel:
    return machine if isinstance(machine, MachineModel) else machine.model


def _texts(blocks: Iterable[Iterable[Any]]) -> list[str]:
    return [a.text for block in blocks for a in block if a.verb not in _SYNTHETIC]


def _describe(t: Transition) -> str:
    event = t.label.split(" [")[0] if t.delay is not None else (" ".join(t.events) if t.events else "always")
    guard = t.cond_text or t.guard_name
    target = ", ".join(t.targets) or "(no target)"
    return f"{event}{f' [{guard}]' if guard else ''} -> {target}"


def _events(model: MachineModel) -> set[str]:
    """Events the machine listens to, as written (without done.*, error.* and timer events)."""
    return {e for s in model.states.values() for t in s.transitions if t.delay is None for e in t.events
            if not e.startswith(("done.", "error.", "after.")) and e != "*"}


def _intermediate(state: State) -> bool:
    return state.kind is not StateKind.FINAL


def classify_changes(old_machine: Any, new_machine: Any, step: Any | None = None) -> list[Change]:
    """Every change from ``old`` to ``new``, most urgent first, then in document order."""
    old, new = _model(old_machine), _model(new_machine)
    changes: list[Change] = []
    renamed = rename_candidates(old_machine, new_machine) if not isinstance(old_machine, MachineModel) else {}
    added_states = [s for s in new.states.values() if s.id not in old.states and s.id != ROOT]
    removed_states = [s for s in old.states.values() if s.id not in new.states and s.id != ROOT]
    for state in removed_states:
        if state.kind is StateKind.HISTORY:
            continue
        to = renamed.get(state.id)
        why = (f"renamed to {to!r}? " if to else "") + (
            "in-flight instances in it (or remembering it in history) need an entry in the step's STATES "
            "table or map_state")
        changes.append(Change("state", state.id, "removed", "needs mapping", why))
    for state in added_states:
        if state.kind is StateKind.HISTORY:
            continue
        if _intermediate(state):
            why = (f"new {state.kind.value} state: in-flight instances reach it only through transitions "
                   "that changed; check that every path in and out is meant")
            changes.append(Change("state", state.id, "added", "with care", why))
        else:
            changes.append(Change("state", state.id, "added", "safe",
                                  "new terminal state: nothing in flight is in it, nothing leaves it"))
    for state in new.states.values():  # kind, parent, exit actions, initial child (entry: below)
        if state.id == ROOT or state.id not in old.states:
            continue
        reasons = [r for r in state_changes(old.states[state.id], state) if r != "entry actions"
                   and not (r == "exit actions" and _texts(old.states[state.id].exit) == _texts(state.exit))]
        if reasons:
            structural = any(r.startswith("moved") or " -> " in r for r in reasons)
            changes.append(Change("state", state.id, "changed", "needs mapping" if structural else "with care",
                                  "; ".join(reasons) + (": instances in it need a mapping to a state of the new "
                                                        "shape" if structural else "")))
    old_transitions = {t.id: t for s in old.states.values() for t in s.transitions}
    new_transitions = {t.id: t for s in new.states.values() for t in s.transitions}
    for tid, t in new_transitions.items():
        if tid in old_transitions:
            before = old_transitions[tid]
            if before.targets != t.targets:
                changes.append(Change("transition", tid, "changed", "risky",
                                      f"target {', '.join(before.targets) or '-'} -> {', '.join(t.targets) or '-'}: "
                                      "in-flight instances follow the new graph"))
            reasons = []
            if (before.cond_text, before.guard_name) != (t.cond_text, t.guard_name):
                reasons.append(f"guard {before.cond_text or before.guard_name or '-'} -> "
                               f"{t.cond_text or t.guard_name or '-'}")
            if [a.text for a in before.actions] != [a.text for a in t.actions]:
                reasons.append("actions " + ("; ".join(a.text for a in t.actions) or "(none)"))
            if before.delay != t.delay:
                reasons.append(f"timer {before.label.split(' [')[0]} -> {t.label.split(' [')[0]}")
            if reasons:
                changes.append(Change("transition", tid, "changed", "with care",
                                      "; ".join(reasons) + ": in-flight instances take it the new way"))
        elif t.source in old.states and t.delay is None:
            changes.append(Change("transition", tid, "added", "with care",
                                  f"{_describe(t)}: new behaviour for instances already in {t.source!r}"))
        elif t.source not in old.states:
            changes.append(Change("transition", tid, "added", "safe", f"{_describe(t)} (of the new state)"))
    for tid, t in old_transitions.items():
        if tid not in new_transitions and t.source in new.states:
            changes.append(Change("transition", tid, "removed", "with care",
                                  f"{_describe(t)}: instances in {t.source!r} no longer take it"))
    # `after` timers an in-flight instance already in the state does not have
    timer_policy = getattr(step, "timers", "keep")
    for tid, t in new_transitions.items():
        if t.delay is None or t.source not in old.states:
            continue
        if tid not in old_transitions or old_transitions[tid].delay != t.delay:
            changes.append(Change("timer", tid, "added" if tid not in old_transitions else "changed", "with care",
                                  f"{t.label.split(' [')[0]} on {t.source!r}: instances migrated while in it have "
                                  f"no such timer (it is set on entry; the step keeps old timers: "
                                  f"TIMERS={timer_policy!r})"))
    # entry actions a migrated instance skips: it is placed in the state, it does not enter it
    for state in new.states.values():
        if state.id == ROOT or state.kind is StateKind.HISTORY:
            continue
        entry = _texts(state.entry)
        before = _texts(old.states[state.id].entry) if state.id in old.states else None
        if before is not None and entry != before and [e for e in entry if e not in before]:
            new_actions = [e for e in entry if e not in before]
            changes.append(Change("entry", state.id, "changed", "with care",
                                  f"new entry actions ({'; '.join(new_actions)}): instances migrated while in "
                                  f"{state.id!r} skip them"))
    for event in sorted(_events(new) - _events(old)):
        changes.append(Change("event", event, "added", "safe", "a new event the machine listens to"))
    for event in sorted(_events(old) - _events(new)):
        changes.append(Change("event", event, "removed", "producers",
                              "no longer handled: remove it once no producer sends it (until then it is ignored, "
                              "or an error in strict mode)"))
    for key in sorted(new.data_spec.keys() - old.data_spec.keys()):
        has_map = getattr(step, "map_data", None) is not None
        changes.append(Change("data", key, "added", "safe" if has_map else "with care",
                              "set by the step's map_data" if has_map else
                              "migrated instances lack it: write map_data to set it"))
    for key in sorted(old.data_spec.keys() - new.data_spec.keys()):
        changes.append(Change("data", key, "removed", "with care", "check that no guard or action still reads it"))
    order = {sid: s.order for sid, s in old.states.items()} | {sid: s.order for sid, s in new.states.items()}

    def position(change: Change) -> tuple[int, int, str]:
        subject = change.subject.split(":", 1)[0] if change.element in ("transition", "timer") else change.subject
        return (RISKS.index(change.risk), order.get(subject, 1 << 20), change.subject)

    return sorted(changes, key=position)
