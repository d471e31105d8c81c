"""What changed between two versions of a machine: states and transitions added, removed, changed."""

from __future__ import annotations

import difflib

import attrs

from ..machine import Machine
from ..model import ROOT, State, Transition

__all__ = ["MachineDiff", "diff_machines", "rename_candidates", "state_changes"]


@attrs.frozen
class MachineDiff:
    states_added: tuple[str, ...]
    states_removed: tuple[str, ...]
    states_changed: tuple[tuple[str, str], ...]  # (state, what changed)
    transitions_added: tuple[str, ...]
    transitions_removed: tuple[str, ...]
    transitions_changed: tuple[tuple[str, str], ...]
    data_added: tuple[str, ...]
    data_removed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not any(attrs.astuple(self))

    def lines(self) -> list[str]:
        out = [f"+ state {s}" for s in self.states_added] + [f"- state {s}" for s in self.states_removed]
        out += [f"~ state {s}: {why}" for s, why in self.states_changed]
        out += [f"+ transition {t}" for t in self.transitions_added]
        out += [f"- transition {t}" for t in self.transitions_removed]
        out += [f"~ transition {t}: {why}" for t, why in self.transitions_changed]
        out += [f"+ data {k}" for k in self.data_added] + [f"- data {k}" for k in self.data_removed]
        return out


def _describe(transition: Transition) -> str:
    target = ", ".join(transition.targets) or "(no target)"
    return f"{transition.label} -> {target}"


def state_changes(old: State, new: State) -> list[str]:
    """How a state kept across two versions changed (kind, parent, entry or exit actions, initial
    state), one short phrase each: the diff lists them, the risk report weighs them."""
    changes = []
    if old.kind is not new.kind:
        changes.append(f"{old.kind.value} -> {new.kind.value}")
    if old.parent != new.parent:
        changes.append(f"moved from {old.parent.replace(ROOT, '(top)')} to {new.parent.replace(ROOT, '(top)')}")
    if [[a.text for a in b] for b in old.entry] != [[a.text for a in b] for b in new.entry]:
        changes.append("entry actions")
    if [[a.text for a in b] for b in old.exit] != [[a.text for a in b] for b in new.exit]:
        changes.append("exit actions")
    if (old.initial and old.initial.targets) != (new.initial and new.initial.targets):
        changes.append("initial state")
    return changes


def diff_machines(old: Machine, new: Machine) -> MachineDiff:
    old_states, new_states = old.states, new.states
    old_transitions = {t.id: t for s in old_states.values() for t in s.transitions}
    new_transitions = {t.id: t for s in new_states.values() for t in s.transitions}
    changed_transitions = []
    for tid in old_transitions.keys() & new_transitions.keys():
        before, after = old_transitions[tid], new_transitions[tid]
        reasons = []
        if before.targets != after.targets:
            reasons.append(f"target {', '.join(before.targets) or '-'} -> {', '.join(after.targets) or '-'}")
        if (before.cond_text, before.guard_name) != (after.cond_text, after.guard_name):
            reasons.append(f"guard {before.cond_text or before.guard_name or '-'} -> "
                           f"{after.cond_text or after.guard_name or '-'}")
        if [a.text for a in before.actions] != [a.text for a in after.actions]:
            reasons.append("actions")
        if before.internal != after.internal:
            reasons.append("type")
        if reasons:
            changed_transitions.append((tid, "; ".join(reasons)))
    changed_states = []
    for sid in old_states.keys() & new_states.keys():
        reasons = state_changes(old_states[sid], new_states[sid])
        if reasons:
            changed_states.append((sid, "; ".join(reasons)))
    order = {sid: s.order for sid, s in new_states.items()} | {sid: s.order for sid, s in old_states.items()}
    return MachineDiff(
        states_added=tuple(sorted(new_states.keys() - old_states.keys(), key=order.get)),
        states_removed=tuple(sorted(old_states.keys() - new_states.keys(), key=order.get)),
        states_changed=tuple(sorted(changed_states, key=lambda c: order[c[0]])),
        transitions_added=tuple(f"{t} ({_describe(new_transitions[t])})"
                                for t in sorted(new_transitions.keys() - old_transitions.keys())),
        transitions_removed=tuple(f"{t} ({_describe(old_transitions[t])})"
                                  for t in sorted(old_transitions.keys() - new_transitions.keys())),
        transitions_changed=tuple(sorted(changed_transitions)),
        data_added=tuple(sorted(new.model.data_spec.keys() - old.model.data_spec.keys())),
        data_removed=tuple(sorted(old.model.data_spec.keys() - new.model.data_spec.keys())),
    )


def _signature(state: State) -> set[str]:
    """What a state does, without its name: its outgoing transitions and actions (a transition
    back to the state itself written as such; the timers of ``after``, named after the state, left
    out: their transitions say the same)."""
    parts = {f"on {t.label} -> {','.join('(itself)' if x == state.id else x for x in t.targets)}"
             for t in state.transitions}
    parts |= {f"entry {a.text}" for b in state.entry for a in b if not a.verb.startswith("timer")}
    parts |= {f"exit {a.text}" for b in state.exit for a in b if not a.verb.startswith("timer")}
    parts.add(f"kind {state.kind.value}")
    return parts


def rename_candidates(old: Machine, new: Machine) -> dict[str, str]:
    """Removed states that look renamed: a unique added state with a similar name or the same
    behaviour (transitions and actions). A proposal for a person to confirm, never applied silently."""
    diff = diff_machines(old, new)
    removed, added = list(diff.states_removed), list(diff.states_added)
    proposals: dict[str, str] = {}
    for name in removed:
        scores = []
        for candidate in added:
            if candidate in proposals.values():
                continue
            a, b = _signature(old.states[name]), _signature(new.states[candidate])
            behaviour = len(a & b) / max(len(a | b), 1)
            similarity = difflib.SequenceMatcher(None, name, candidate).ratio()
            scores.append((max(behaviour, similarity), candidate))
        scores.sort(reverse=True)
        if scores and scores[0][0] >= 0.6 and (len(scores) == 1 or scores[1][0] < scores[0][0]):
            proposals[name] = scores[0][1]
    return proposals
