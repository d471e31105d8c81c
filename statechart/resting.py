"""Where an instance can be at rest: the done events a configuration raises, and whether the
step that reached it must go on regardless of data.

Both the static analysis and the migration check enumerate configurations with guards
ignored and must leave out the ones an instance only passes through within a step; the
answer depends on the model alone, so it lives here, below both of them.
"""

from __future__ import annotations

from typing import Literal

from .events import descriptor_matches
from .model import ROOT, MachineModel, StateKind

__all__ = ["done_events", "passing_reason"]


def done_events(model: MachineModel, configuration: frozenset[str]) -> list[str]:
    """The compound and parallel states (not the machine) that are complete in ``configuration``:
    entering it raised ``done.state.<id>`` for each."""
    states = model.states
    complete: list[str] = []

    def is_complete(state_id: str) -> bool:
        state = states[state_id]
        children = [c for c in state.children if states[c].kind is not StateKind.HISTORY]
        if state.kind is StateKind.COMPOUND:
            return any(c in configuration and states[c].kind is StateKind.FINAL for c in children)
        if state.kind is StateKind.PARALLEL:
            return all(is_complete(c) for c in children)
        return False

    for state_id in sorted(configuration, key=lambda s: states[s].order):
        if state_id != ROOT and states[state_id].kind in (StateKind.COMPOUND, StateKind.PARALLEL) \
                and is_complete(state_id):
            complete.append(state_id)
    return complete


def passing_reason(model: MachineModel, configuration: frozenset[str]) -> Literal["eventless", "done"] | None:
    """Why an instance cannot rest in ``configuration`` whatever its data, or None when it can.

    ``"eventless"``: an unguarded eventless transition is enabled, so the step goes on;
    ``"done"``: a done event the configuration raised is taken by an unguarded transition.
    A finished machine (a top-level final state active) always rests."""
    states = model.states
    if any(states[s].kind is StateKind.FINAL and states[s].parent == ROOT for s in configuration):
        return None
    atomic = [s for s in configuration if states[s].is_atomic]
    for state_id in atomic:
        for source in (state_id,) + states[state_id].ancestors[:-1]:
            if any(not t.events and t.check is None for t in states[source].transitions):
                return "eventless"
    for parent in done_events(model, configuration):
        event = f"done.state.{parent}"
        for state_id in atomic:
            for source in (state_id,) + states[state_id].ancestors[:-1]:
                if any(t.check is None and any(descriptor_matches(d, event) for d in t.events)
                       for t in states[source].transitions):
                    return "done"
    return None
