"""Moving one snapshot through one step: map the states, map the data, check the result.

Pure: a snapshot in, a snapshot out (or a MigrationError saying what and why). No action runs,
no entry action of a newly entered state: a migration is not an event.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from ..interpreter import ActionContext, PendingSend, _PlanBuilder
from ..machine import Machine, legal_configuration_problems
from ..model import ROOT, StateKind
from ..snapshot import Snapshot
from .chain import TODO, InstanceView, MigrationError, Step

__all__ = ["migrate_snapshot", "complete_configuration", "view_of"]


_LEAVES: dict[tuple[str, frozenset[str]], frozenset[str]] = {}


def view_of(snapshot: Snapshot, machine: Machine, instance_id: str) -> InstanceView:
    key = (machine.definition_hash, snapshot.configuration)
    leaves = _LEAVES.get(key)
    if leaves is None:
        states = machine.model.states
        leaves = frozenset(s for s in snapshot.configuration
                           if not any(c in snapshot.configuration for c in states[s].children))
        if len(_LEAVES) > 100_000:
            _LEAVES.clear()
        _LEAVES[key] = leaves
    return InstanceView(instance_id, snapshot.machine, snapshot.version, snapshot.configuration,
                        dict(snapshot.history), _copy_json(snapshot.data), leaves)


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


def _check_json(value: Any, path: str = "data") -> None:
    """Raise TypeError/ValueError where ``value`` is not JSON data (cheaper than encoding it)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{path} is {value}, which JSON cannot hold")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has the key {key!r}; JSON keys are strings")
            _check_json(item, f"{path}[{key!r}]")
        return
    raise TypeError(f"{path} is a {type(value).__name__}, which JSON cannot hold")


def complete_configuration(machine: Machine, targets: Iterable[str]) -> frozenset[str]:
    """Targets plus their ancestors, and default entries below any compound or parallel target,
    exactly as entering those states would choose (history states use their defaults)."""
    builder = _PlanBuilder(machine.engine, frozenset(), {})
    to_enter: dict[str, None] = {}
    for target in targets:
        builder.add_descendant_states_to_enter(target, to_enter, set(), {})
        builder.add_ancestor_states_to_enter(target, ROOT, to_enter, set(), {})
    return frozenset(to_enter)


def _lookup(table: Any, state: str, machine: Machine) -> Any:
    """A table entry for the state or, failing that, for its nearest ancestor that has one."""
    for candidate in (state,) + machine.model.states[state].ancestors[:-1]:
        if candidate in table:
            return table[candidate]
    return None


def _targets(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise MigrationError(f"{where} must give a state id or a list of state ids, not {value!r}")


def _map_states(step: Step, view: InstanceView, old: Machine) -> list[str]:
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
        mapped = _lookup(step.states, leaf, old)
        if mapped is None:
            raise MigrationError(f"state {leaf!r} has no entry in STATES (nor has any of its ancestors)")
        if mapped == TODO:
            raise MigrationError(f"STATES[{leaf!r}] is still {TODO!r}: decide where these instances go")
        targets.extend(_targets(mapped, f"STATES[{leaf!r}]"))
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
        if step.states is not None:
            mapped = []
            for state in value:
                entry = _lookup(step.states, state, old)
                if entry is None or entry == TODO:
                    raise MigrationError(f"history {history_id!r} remembers {state!r}, which STATES does not map")
                mapped.extend(_targets(entry, f"STATES[{state!r}]"))
        else:
            configuration = frozenset(a for s in value for a in (s,) + old.model.states[s].ancestors[:-1])
            view = InstanceView(instance_id, snapshot.machine, snapshot.version, configuration, {},
                                _copy_json(snapshot.data), frozenset(value))
            mapped = _map_states(step, view, old)
        _check_targets(mapped, new)
        parent = states[history_id].parent
        outside = [s for s in mapped if parent not in states[s].ancestors]
        if outside:
            raise MigrationError(f"history {history_id!r} would remember {outside}, outside its parent {parent!r}")
        if states[history_id].history_deep:
            complete = complete_configuration(new, mapped)
            history[history_id] = frozenset(s for s in complete if states[s].is_atomic and parent in states[s].ancestors)
        else:
            history[history_id] = frozenset(
                next(a for a in (s,) + states[s].ancestors if states[a].parent == parent) for s in mapped)
    return history


def _map_timers(step: Step, pending: Sequence[PendingSend], old: Machine, new: Machine,
                configuration: frozenset[str]) -> tuple[PendingSend, ...]:
    """``TIMERS = "keep"``: an author's delayed sends keep their id and due time; an ``after`` timer
    moves with its state when the state maps to one state that has the same ``after`` entry, and is
    dropped otherwise. ``"cancel"``: every pending send is dropped."""
    if step.timers == "cancel" or not pending:
        return ()
    kept = []
    for send in pending:
        if not send.id.startswith("after."):
            kept.append(send)
            continue
        _, index, state = send.id.split(".", 2)
        if state not in old.model.states:
            continue
        mapped = _lookup(step.states, state, old) if step.states is not None else state
        if not isinstance(mapped, str) or mapped not in configuration:
            continue
        event = f"after.{index}.{mapped}"
        if any(event in t.events for t in new.model.states[mapped].transitions):
            kept.append(PendingSend(event, event, send.data, send.due, send.seq, send.internal_id))
    return tuple(kept)


def _check_at_rest(new: Machine, configuration: frozenset[str], data: dict[str, Any], instance_id: str) -> None:
    """A stored instance is always at rest: no eventless transition enabled. A migration runs none,
    so a mapping onto a state an eventless transition would leave at once is refused."""
    selection = new.engine._selections.get((configuration, None)) or new.engine._build_selection(configuration, None)
    if not selection.groups:
        return  # no eventless transition at all here: nothing could fire
    ctx = ActionContext(new.model, dict(data), {"_sessionid": instance_id, "_name": new.name,
                                                 "_ioprocessors": {}}, 0.0, (), 0)
    ctx.In = configuration.__contains__
    enabled, _ = new.engine.select_transitions(configuration, None, ctx, {})
    if enabled:
        raise MigrationError(f"{sorted(configuration)} is not a resting configuration in {new.name} "
                             f"v{new.version}: {enabled[0].id} would fire at once, and a migration runs no "
                             f"transition; map to where it leads instead")


def _structure(step: Step, snapshot: Snapshot, view: InstanceView, old: Machine, new: Machine,
               instance_id: str) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    targets = _map_states(step, view, old)
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
            _check_json(data)
        except (TypeError, ValueError) as error:
            raise MigrationError(f"map_data returned data that is not JSON-compatible: {error}") from None
    else:
        data = view.data
    _check_at_rest(new, configuration, data, instance_id)
    done = any(new.model.states[s].kind is StateKind.FINAL and new.model.states[s].parent == ROOT
               for s in configuration)
    return Snapshot(
        machine=new.name, version=new.version, definition_hash=new.definition_hash, configuration=configuration,
        history=history, data=data, done=done, session_id=snapshot.session_id,
        pending_sends=_map_timers(step, snapshot.pending_sends, old, new, configuration),
        send_counter=snapshot.send_counter,
        bound_states=frozenset(s for s in snapshot.bound_states if s in new.model.states),
    )
