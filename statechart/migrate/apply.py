"""Moving one snapshot through one step: map the states, map the data, check the result.

Pure: a snapshot in, a snapshot out (or a MigrationError saying what and why). No action runs,
no entry action of a newly entered state: a migration is not an event.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from ..events import Event
from ..interpreter import ActionContext, PendingSend, default_entry, system_variables
from ..jsonvalues import JSONValueError, copy_json, json_value
from ..machine import Machine, legal_configuration_problems
from ..model import ROOT, StateKind
from ..resting import done_events as _model_done_events
from ..snapshot import Snapshot
from .chain import TODO, InstanceView, MigrationError, Step

__all__ = ["migrate_snapshot", "complete_configuration", "view_of", "done_events"]


_LEAVES: dict[tuple[str, frozenset[str]], frozenset[str]] = {}


def view_of(snapshot: Snapshot, machine: Machine, instance_id: str) -> InstanceView:
    key = (machine.definition_hash, snapshot.configuration)
    leaves = _LEAVES.get(key)
    if leaves is None:
        states = machine.model.states
        unknown = sorted(snapshot.configuration - states.keys())
        if unknown:
            raise MigrationError(f"the instance is in states that {machine.name} v{machine.version} does not "
                                 f"have: {', '.join(unknown)} (was it stored under another definition of it?)")
        leaves = frozenset(s for s in snapshot.configuration
                           if not any(c in snapshot.configuration for c in states[s].children))
        if len(_LEAVES) > 100_000:
            _LEAVES.clear()
        _LEAVES[key] = leaves
    return InstanceView(instance_id, snapshot.machine, snapshot.version, snapshot.configuration,
                        dict(snapshot.history), copy_json(snapshot.data), leaves)


def complete_configuration(machine: Machine, targets: Iterable[str]) -> frozenset[str]:
    """Targets plus their ancestors, and default entries below any compound or parallel target,
    exactly as entering those states would choose (history states use their defaults)."""
    return default_entry(machine.engine, targets)


def _entry(table: Any, state: str, machine: Machine) -> tuple[str | None, Any]:
    """The table entry for the state or, failing that, for its nearest ancestor that has one: (key, value)."""
    for candidate in (state,) + machine.model.states[state].ancestors[:-1]:
        if candidate in table:
            return candidate, table[candidate]
    return None, None


def _resolve(step: Step, state: str, old: Machine, new: Machine) -> list[str]:
    """Where the STATES table sends an instance that is in ``state`` (an active leaf, or a state
    remembered by history).

    An entry for a compound state covers its descendants that have no entry of their own; an
    instance inside it lands on the same-named state inside the target when the new version has
    one there (the deepest such), and on the target's default entry otherwise."""
    assert step.states is not None
    key, value = _entry(step.states, state, old)
    if key is None:
        raise MigrationError(f"state {state!r} has no entry in STATES (nor has any of its ancestors)")
    covering = "" if key == state else f" (the entry covering {state!r})"
    if value == TODO:
        raise MigrationError(f"STATES[{key!r}]{covering} is still {TODO!r}: decide where these instances go")
    targets = _targets(value, f"STATES[{key!r}]")
    new_states = new.model.states
    if key != state and len(targets) == 1 and targets[0] in new_states:
        below = (state,) + old.model.states[state].ancestors[:old.model.states[state].ancestors.index(key)]
        for candidate in below:
            if candidate in new_states and targets[0] in new_states[candidate].ancestors:
                return [candidate]
    return targets


def _targets(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise MigrationError(f"{where} must give a state id or a list of state ids, not {value!r}")


def _map_states(step: Step, view: InstanceView, old: Machine, new: Machine) -> list[str]:
    if step.states is None:
        assert step.map_state is not None
        try:
            result = step.map_state(view)
        except Exception as error:  # noqa: BLE001 - the author's code
            raise MigrationError(f"map_state raised {type(error).__name__}: {error}") from None
        return _targets(result, "map_state")
    order = old.model.states
    targets: list[str] = []
    for leaf in sorted(view.leaves, key=lambda s: order[s].order):
        targets.extend(_resolve(step, leaf, old, new))
    return list(dict.fromkeys(targets))


def _check_targets(targets: Sequence[str], new: Machine) -> None:
    states = new.model.states
    for target in targets:
        if target not in states or target == ROOT:
            raise MigrationError(f"the mapping names {target!r}, which {new.name} v{new.version} does not have")
        if states[target].kind is StateKind.HISTORY:
            raise MigrationError(f"the mapping names history state {target!r}; name the state to be in")


def _map_history(step: Step, snapshot: Snapshot, old: Machine, new: Machine,
                 instance_id: str) -> dict[str, frozenset[str]]:
    states = new.model.states
    history: dict[str, frozenset[str]] = {}
    for history_id, value in snapshot.history.items():
        if history_id not in states or states[history_id].kind is not StateKind.HISTORY:
            continue  # the new version has no such history state: nothing to remember
        unknown = sorted(value - old.model.states.keys())
        if unknown:
            raise MigrationError(f"history {history_id!r} remembers states that {old.name} v{old.version} does not "
                                 f"have: {', '.join(unknown)}")
        if step.states is not None:
            mapped = []
            for state in value:
                try:
                    mapped.extend(_resolve(step, state, old, new))
                except MigrationError as error:
                    raise MigrationError(f"history {history_id!r} remembers {state!r}: {error}") from None
        else:
            configuration = frozenset(a for s in value for a in (s,) + old.model.states[s].ancestors[:-1])
            view = InstanceView(instance_id, snapshot.machine, snapshot.version, configuration, {},
                                copy_json(snapshot.data), frozenset(value))
            mapped = _map_states(step, view, old, new)
        _check_targets(mapped, new)
        parent = states[history_id].parent
        outside = [s for s in mapped if parent not in states[s].ancestors]
        if outside:
            raise MigrationError(f"history {history_id!r} would remember {outside}, outside its parent {parent!r}")
        if states[history_id].history_deep:
            complete = complete_configuration(new, mapped)
            history[history_id] = frozenset(s for s in complete
                                            if states[s].is_atomic and parent in states[s].ancestors)
        else:
            history[history_id] = frozenset(
                next(a for a in (s,) + states[s].ancestors if states[a].parent == parent) for s in mapped)
    return history


def _map_timers(step: Step, pending: Sequence[PendingSend], old: Machine, new: Machine,
                configuration: frozenset[str], done: bool) -> tuple[PendingSend, ...]:
    """``TIMERS = "keep"``: an author's delayed sends keep their id and due time; an ``after`` timer
    moves with its state when the state maps to one state that has the same ``after`` entry (with
    ``map_state``, when its state keeps its id), and is dropped otherwise. ``"cancel"``: every
    pending send is dropped. A finished instance keeps none."""
    if step.timers == "cancel" or done:
        return ()
    kept = []
    for send in pending:
        if not send.id.startswith("after."):
            kept.append(send)
            continue
        _, index, state = send.id.split(".", 2)
        if state not in old.model.states:
            continue
        if step.states is not None:
            try:
                mapped = _resolve(step, state, old, new)
            except MigrationError:
                continue
        else:
            mapped = [state]
        if len(mapped) != 1 or mapped[0] not in configuration:
            continue
        event = f"after.{index}.{mapped[0]}"
        if any(event in t.events for t in new.model.states[mapped[0]].transitions):
            kept.append(PendingSend(event, event, send.data, send.due, send.seq, send.internal_id))
    return tuple(kept)


def _check_at_rest(new: Machine, configuration: frozenset[str], data: dict[str, Any], instance_id: str) -> None:
    """A stored instance is always at rest: no eventless transition enabled, no done event waiting
    for a transition that takes it. A migration runs none, so a mapping onto a state that would be
    left at once is refused."""
    ctx = ActionContext(new.model, dict(data), system_variables(new.name, instance_id), 0.0, (), 0)
    ctx.In = configuration.__contains__
    enabled, _ = new.engine.select_transitions(configuration, None, ctx, {})
    if enabled:
        transition = enabled[0]
        raise MigrationError(f"state {transition.source!r} is not a resting state of {new.name} v{new.version}: "
                             f"its eventless transition {transition.id} would fire at once, and a migration runs "
                             f"no transition; map these instances to where it leads instead")
    for parent in done_events(new, configuration):
        ctx.event = Event(f"done.state.{parent}", None, "internal")
        enabled, _ = new.engine.select_transitions(configuration, ctx.event.name, ctx, {})
        if enabled:
            raise MigrationError(f"{parent!r} is complete in {sorted(configuration)}: entering it raises "
                                 f"done.state.{parent}, which {enabled[0].id} would take at once, and a migration "
                                 f"raises no event; map these instances to where it leads instead")


def done_events(machine: Machine, configuration: frozenset[str]) -> list[str]:
    """The compound and parallel states (not the machine) that are complete in ``configuration``:
    entering it raised ``done.state.<id>`` for each (see :func:`statechart.resting.done_events`)."""
    return _model_done_events(machine.model, configuration)


def _structure(step: Step, snapshot: Snapshot, view: InstanceView, old: Machine, new: Machine,
               instance_id: str) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The new configuration and history: what the mapping decides from the old states alone."""
    targets = _map_states(step, view, old, new)
    _check_targets(targets, new)
    configuration = complete_configuration(new, targets)
    problems = legal_configuration_problems(new.model, configuration)
    if problems:
        raise MigrationError(f"the mapped configuration {sorted(configuration)} is not legal in "
                             f"{new.name} v{new.version}: {'; '.join(problems)}")
    return configuration, _map_history(step, snapshot, old, new, instance_id)


def migrate_snapshot(step: Step, snapshot: Snapshot, old: Machine, new: Machine, instance_id: str,
                     cache: dict[Any, Any] | None = None) -> Snapshot:
    """One step applied to one snapshot; raises MigrationError naming what is wrong.

    ``cache`` (a dict the caller keeps for one run) remembers the state mapping of a STATES table
    per (configuration, history): it cannot depend on anything else, and a large store holds
    the same few configurations many times over."""
    if snapshot.version != step.from_version or old.version != step.from_version or new.version != step.to_version:
        raise MigrationError(f"{step.name} cannot move a v{snapshot.version} instance")
    view = view_of(snapshot, old, instance_id)
    if cache is not None and step.states is not None:
        key = (step.path, snapshot.configuration, frozenset(snapshot.history.items()))
        structure = cache.get(key)
        if structure is None:
            try:
                structure = _structure(step, snapshot, view, old, new, instance_id)
            except MigrationError as error:
                structure = error
            cache[key] = structure
        if isinstance(structure, MigrationError):
            raise MigrationError(str(structure))
        configuration, history = structure
    else:
        configuration, history = _structure(step, snapshot, view, old, new, instance_id)
    if step.map_data is not None:
        try:
            data = step.map_data(view)
        except Exception as error:  # noqa: BLE001 - the author's code
            raise MigrationError(f"map_data raised {type(error).__name__}: {error}") from None
        if not isinstance(data, dict):
            raise MigrationError(f"map_data must return a mapping of data, not {type(data).__name__}")
        try:
            data = json_value(data, "data")
        except JSONValueError as error:
            raise MigrationError(f"map_data of {step.name} ({step.path}) returned data that is not JSON "
                                 f"for instance {instance_id!r}: {error}") from None
    else:
        data = view.data
    done = any(new.model.states[s].kind is StateKind.FINAL and new.model.states[s].parent == ROOT
               for s in configuration)
    if not done:
        _check_at_rest(new, configuration, data, instance_id)
    return Snapshot(
        machine=new.name, version=new.version, definition_hash=new.definition_hash, configuration=configuration,
        history=history, data=data, done=done, session_id=snapshot.session_id,
        pending_sends=_map_timers(step, snapshot.pending_sends, old, new, configuration, done),
        send_counter=snapshot.send_counter,
        bound_states=frozenset(s for s in snapshot.bound_states if s in new.model.states),
    )
